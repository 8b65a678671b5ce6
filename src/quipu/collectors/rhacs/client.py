"""One RHACS Central's REST API over HTTPS with an API token: its calls, failures in plain words.

Exceptions::

    SourceUnavailable (quipu.collectors.base)  the Central cannot be used at all
    PartUnknown                                one answer could not be read; the rest stands
    Stopped (quipu.collectors.http)            the job was told to stop
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

import httpx

from quipu.collectors.base import SourceUnavailable
from quipu.collectors.http import ApiClient, Stopped, json_or_none

__all__ = ["TIMEOUT_ENV", "PartUnknown", "RhacsClient", "Stopped"]

TIMEOUT_ENV = "QUIPU_RHACS_TIMEOUT_S"
"""Scanner environment variable: seconds one request to Central may take."""

METADATA = "/v1/metadata"
AUTH_STATUS = "/v1/auth/status"
USAGE_CURRENT = "/v1/administration/usage/secured-units/current"
USAGE_MAX = "/v1/administration/usage/secured-units/max"
CLUSTERS = "/v1/clusters"

HISTORY_START = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
"""The start of the range the peak usage is asked for: all the history Central keeps, as
Central itself reads a range without a start."""

_PERMISSIONS = {USAGE_CURRENT: "Administration", USAGE_MAX: "Administration", CLUSTERS: "Cluster"}
"""The permission set resource each call needs read access to."""
_ROLE_HINT = (
    "give the token a role that may read Administration and Cluster (Analyst does), or use "
    "another token."
)
_CENTRAL_LOG = "see Central's log (oc -n stackrox logs deploy/central), then scan again"


class PartUnknown(Exception):
    """One answer could not be read (its message says which and why); the Central's other
    facts stand."""


def _rfc3339(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _said(response: httpx.Response) -> str:
    """What Central said in an error answer ({code, message, details}), or nothing."""
    body = json_or_none(response)
    message = body.get("message") if isinstance(body, Mapping) else None
    if not isinstance(message, str) or not message.strip():
        return ""
    return f', saying "{message.strip()[:200]}"'


class RhacsClient(ApiClient):
    """The API of the Central ``source`` names (see ApiClient): the credential's API token
    as a bearer token."""

    product = "RHACS Central"
    service = "Central (the central deployment, in the stackrox namespace)"

    async def __aenter__(self) -> RhacsClient:
        return self

    def unreachable(self, error: httpx.TransportError) -> str:
        message = super().unreachable(error)
        if isinstance(error, httpx.TimeoutException):
            message += (
                f" A busy Central may need more time: set {TIMEOUT_ENV} (seconds) on the scanner."
            )
        return message

    def refused(self, response: httpx.Response) -> str | None:
        """Why Central turned the token away, or None when it did not."""
        path = response.request.url.path
        if response.status_code == 401:
            return (
                f"{self.what} refused the credential's API token (HTTP 401 to GET {path})"
                f"{_said(response)}: the token has expired or was revoked; generate a new "
                "one (Platform Configuration > Integrations > API Token) and put it in the "
                "credential's auth_token."
            )
        if response.status_code == 403:
            permission = _PERMISSIONS.get(path, "this resource")
            return (
                f"{self.what} denied the credential's API token access to GET {path} (HTTP 403)"
                f"{_said(response)}: the token's role "
                f"lacks read access to {permission}; {_ROLE_HINT}"
            )
        return None

    async def metadata(self) -> dict[str, Any]:
        """``GET /v1/metadata``; SourceUnavailable if the server does not answer as Central."""
        response = await self.source_get(METADATA)
        if response.status_code not in (200, 404):
            raise SourceUnavailable(
                f"{self.what} answered HTTP {response.status_code} to GET {METADATA}"
                f"{_said(response)}: {_CENTRAL_LOG}."
            )
        body = json_or_none(response)
        if response.status_code == 404 or not isinstance(body, dict):
            raise SourceUnavailable(
                f"{self.where} does not answer GET {METADATA} as RHACS Central does (HTTP "
                f"{response.status_code}): check that the source's host and port are "
                "Central's (its route or load balancer, usually port 443)."
            )
        return body

    async def check_token(self) -> None:
        """``GET /v1/auth/status``: Central accepts the token (the metadata is open to anyone,
        so it proves nothing about the token)."""
        response = await self.source_get(AUTH_STATUS)
        if response.status_code != 200:
            raise SourceUnavailable(
                f"{self.what} answered HTTP {response.status_code} to GET {AUTH_STATUS}"
                f"{_said(response)}: {_CENTRAL_LOG}."
            )
        # A token whose role cannot read the usage is told now, not after the connection
        # phase; a Central that does not list the permission is left to the usage call.
        body = json_or_none(response)
        user = body.get("userInfo") if isinstance(body, Mapping) else None
        permissions = user.get("permissions") if isinstance(user, Mapping) else None
        access = permissions.get("resourceToAccess") if isinstance(permissions, Mapping) else None
        if isinstance(access, Mapping) and access.get("Administration") == "NO_ACCESS":
            raise SourceUnavailable(
                f"{self.what} gives the credential's API token no read access to "
                f"Administration (GET {AUTH_STATUS}), which the secured units need: "
                f"{_ROLE_HINT}"
            )

    async def needed(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """The JSON answer to ``GET path``, which the scan cannot do without: any failure
        raises SourceUnavailable saying which."""
        response = await self.source_get(path, params)
        return self._body(response, path, failure=SourceUnavailable)

    async def optional(self, path: str) -> Any:
        """The JSON answer to ``GET path``, which the scan can do without: a refused token
        (401) still raises SourceUnavailable, any other failure PartUnknown."""
        try:
            response = await self.get(path)
        except httpx.TransportError as error:
            raise PartUnknown(self.unreachable(error)) from None
        refusal = self.refused(response)
        if refusal is not None:
            # A refused token fails the job; a role that cannot read this part leaves it out.
            raise (SourceUnavailable if response.status_code == 401 else PartUnknown)(refusal)
        return self._body(response, path, failure=PartUnknown)

    def _body(self, response: httpx.Response, path: str, *, failure: type[Exception]) -> Any:
        """The JSON of a 200 answer to ``GET path``; ``failure`` saying why otherwise."""
        if response.status_code != 200:
            raise failure(
                f"{self.what} answered HTTP {response.status_code} to GET {path}"
                f"{_said(response)}: {_CENTRAL_LOG}."
            )
        body = json_or_none(response)
        if body is None:
            raise failure(self.malformed(path))
        return body

    def malformed(self, path: str, why: str = "") -> str:
        """An answer that is not JSON, or (``why``) JSON not in the API's shape, and what to
        check."""
        what = f"malformed JSON for GET {path}"
        if why:
            what = f"an answer to GET {path} that is not the RHACS API's ({why})"
        return (
            f"{self.what} sent {what}: check that nothing between this scanner and Central "
            f"(a proxy, a login page) rewrites its answers, and {_CENTRAL_LOG}."
        )

    async def usage_current(self) -> Any:
        """The secured units now: what the scan is for, so its failure fails the job."""
        return await self.needed(USAGE_CURRENT)

    async def usage_max(self, *, now: datetime.datetime) -> Any:
        """The peak usage from the start of Central's history to ``now``."""
        params = {"from": _rfc3339(HISTORY_START), "to": _rfc3339(now)}
        return await self.needed(USAGE_MAX, params)

    async def clusters(self) -> Any:
        """The secured clusters: context for the units, so a failure leaves them unknown."""
        return await self.optional(CLUSTERS)
