"""One OpenShift cluster's API over HTTPS: logging in, paged listings, failures in plain words.

A token credential is sent as a bearer token. A username and password are exchanged for a
token the way ``oc login`` does: the OAuth server is found at
``/.well-known/oauth-authorization-server``, and its authorization endpoint, asked with basic
auth and ``X-CSRF-Token`` for the ``openshift-challenging-client``, redirects to a URL whose
fragment carries ``access_token``.

Exceptions::

    SourceUnavailable (quipu.collectors.base)  the cluster cannot be used at all
    PartFailed                                 one part of the cluster's facts could not be read
    Stopped (quipu.collectors.http)            the job was told to stop
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from quipu.collectors.base import SourceUnavailable
from quipu.collectors.http import ApiClient, Stopped, json_or_none

log = logging.getLogger(__name__)

PAGE_SIZE = 500
"""Items per page of a listing, as ``oc get`` and ``kubectl get`` ask (``--chunk-size``)."""
CLUSTER_VERSION = "/apis/config.openshift.io/v1/clusterversions/version"
NODES = "/api/v1/nodes"
OAUTH_DISCOVERY = "/.well-known/oauth-authorization-server"
OAUTH_CLIENT = "openshift-challenging-client"
TIMEOUT_ENV = "QUIPU_OPENSHIFT_TIMEOUT_S"
"""Scanner environment variable: seconds one request to the cluster may take."""
CLUSTER_READER = (
    "give it the cluster-reader role (oc adm policy add-cluster-role-to-user cluster-reader <user>)"
)

__all__ = ["OpenShiftClient", "PartFailed", "Stopped"]


class PartFailed(Exception):
    """One part of the cluster's facts (operators, workloads) could not be read; the nodes
    and the other parts stand."""

    def __init__(self, message: str, *, status: int | None = None, reason: str | None = None):
        super().__init__(message)
        self.status = status
        self.reason = reason


def resource_of(path: str) -> str:
    """The resource a path names, as Kubernetes names it in its messages:
    ``nodes``, ``clusteroperators.config.openshift.io``."""
    parts = [p for p in urlsplit(path).path.split("/") if p]
    if len(parts) >= 3 and parts[0] == "api":
        return parts[2]
    if len(parts) >= 4 and parts[0] == "apis":
        return f"{parts[3]}.{parts[1]}"
    return path


def server_says(response: httpx.Response) -> str:
    """The message of the Kubernetes ``Status`` a refusal or error carries, or ''."""
    body = json_or_none(response)
    message = body.get("message") if isinstance(body, dict) else None
    return message.strip() if isinstance(message, str) else ""


class OpenShiftClient(ApiClient):
    """The API of the OpenShift cluster ``source`` names (see ApiClient)."""

    product = "OpenShift"
    service = "the cluster's API server (kube-apiserver)"

    async def __aenter__(self) -> OpenShiftClient:
        return self

    def refused(self, response: httpx.Response) -> str | None:
        """Why the cluster turned the credential away, or None when it did not."""
        if response.status_code == 401:
            if self.source.token:
                return (
                    f"{self.what} refused the credential's token (HTTP 401): it is invalid or "
                    "has expired; get a new one (oc whoami -t, or a service account's token) "
                    "and update the credential."
                )
            return (
                f"{self.what} refused the token its OAuth server gave user "
                f"{self.source.username!r} (HTTP 401): check the cluster's authentication "
                "operator (oc get clusteroperator authentication) and scan again."
            )
        if response.status_code == 403:
            path = response.request.url.path
            said = server_says(response)
            return (
                f"{self.what} denied {self.login} access to {resource_of(path)} (GET {path}: "
                f"HTTP 403{': ' + said if said else ''}): {CLUSTER_READER}, or use another "
                "credential."
            )
        return None

    # Logging in.

    async def log_in(self) -> None:
        """Obtain a token for the credential's username and password (a token credential
        needs none); SourceUnavailable says why when the cluster does not give one."""
        if self.source.token:
            return
        if not self.source.username:
            raise SourceUnavailable(
                f"The credential of source {self.source.source_name!r} has neither a token nor "
                "a username: give it an auth_token, or a username and password."
            )
        discovery = await self.required_json(
            OAUTH_DISCOVERY,
            missing=(
                f"{self.what} does not announce an OAuth server (GET {OAUTH_DISCOVERY}: HTTP "
                "404), so a username and password cannot log in: use a token credential."
            ),
        )
        endpoint = discovery.get("authorization_endpoint") if isinstance(discovery, dict) else None
        if not isinstance(endpoint, str) or not endpoint.startswith(("https://", "http://")):
            raise SourceUnavailable(
                f"{self.what} announces no authorization_endpoint at {OAUTH_DISCOVERY}: check "
                "the cluster's authentication operator, or use a token credential."
            )
        self.use_token(await self._token_from(endpoint))

    async def _token_from(self, endpoint: str) -> str:
        user = self.source.username
        server = urlsplit(endpoint).netloc
        try:
            response = await self.request(
                "GET",
                endpoint,
                params={"client_id": OAUTH_CLIENT, "response_type": "token"},
                headers={"X-CSRF-Token": "1"},
            )
        except httpx.TransportError as error:
            reason = self.unreachable(error)
            raise SourceUnavailable(
                f"The OAuth server {server} of {self.what} could not log in user {user!r}: {reason}"
            ) from None
        if response.status_code == 401:
            raise SourceUnavailable(
                f"{self.what} refused the login of user {user!r} (HTTP 401 from its OAuth "
                f"server {server}): check the credential's username and password, and that "
                "the cluster has an identity provider that takes passwords (htpasswd, LDAP)."
            )
        location = response.headers.get("Location") or ""
        if response.status_code not in (302, 303) or not location:
            raise SourceUnavailable(
                f"The OAuth server {server} of {self.what} answered HTTP "
                f"{response.status_code} to the login of user {user!r}, where a redirect "
                "carrying a token was expected: check the cluster's authentication operator "
                "(oc get clusteroperator authentication), or use a token credential."
            )
        url = urlsplit(location)
        answer = {**parse_qs(url.query), **parse_qs(url.fragment)}
        token = (answer.get("access_token") or [""])[0]
        if not token:
            said = (answer.get("error_description") or answer.get("error") or ["no token"])[0]
            raise SourceUnavailable(
                f"The OAuth server {server} of {self.what} gave user {user!r} no token "
                f"({said}): check that the user may log in (oc login), or use a token "
                "credential."
            )
        return token

    # Requests.

    async def required_json(
        self, path: str, params: Mapping[str, Any] | None = None, *, missing: str = ""
    ) -> Any:
        """The JSON of an answer the job cannot do without; SourceUnavailable says why not
        (``missing``: the message for HTTP 404)."""
        response = await self.source_get(path, params)
        if response.status_code == 404 and missing:
            raise SourceUnavailable(missing)
        if response.status_code == 410:
            raise SourceUnavailable(self._gone(path))
        if response.status_code != 200:
            raise SourceUnavailable(self._error(path, response))
        body = json_or_none(response)
        if not isinstance(body, dict):
            raise SourceUnavailable(self._malformed(path))
        return body

    async def part_json(
        self, path: str, params: Mapping[str, Any] | None = None, *, optional: bool = False
    ) -> dict[str, Any] | None:
        """The JSON of an answer one part of the facts needs; PartFailed says why not. An
        ``optional`` resource the cluster does not serve (HTTP 404) is None. A refused token
        still fails the job: nothing else would be read either."""
        try:
            response = await self.get(path, params)
        except httpx.TransportError as error:
            reason = "Timeout" if isinstance(error, httpx.TimeoutException) else "Unreachable"
            raise PartFailed(self.unreachable(error), reason=reason) from None
        status = response.status_code
        if status == 401:
            raise SourceUnavailable(self.refused(response) or "")
        if status == 403:
            raise PartFailed(self.refused(response) or "", status=403, reason="Forbidden")
        if status == 404 and optional:
            return None
        if status == 410:
            raise PartFailed(self._gone(path), status=410, reason="Expired")
        if status != 200:
            raise PartFailed(self._error(path, response), status=status, reason="Error")
        body = json_or_none(response)
        if not isinstance(body, dict):
            raise PartFailed(self._malformed(path), status=status, reason="MalformedJSON")
        return body

    async def items(
        self, path: str, *, part: bool = False, optional: bool = False
    ) -> AsyncGenerator[dict[str, Any], None]:
        """Every item of a listing, page by page (``limit`` and ``continue``, as Kubernetes
        pages); a failure is PartFailed for a ``part``, else SourceUnavailable."""
        token: str | None = None
        while True:
            params: dict[str, Any] = {"limit": PAGE_SIZE}
            if token:
                params["continue"] = token
            body = (
                await self.part_json(path, params, optional=optional)
                if part
                else await self.required_json(path, params)
            )
            if body is None:
                return
            items = body.get("items")
            if not isinstance(items, list):
                message = self._malformed(path)
                raise (
                    PartFailed(message, reason="MalformedJSON")
                    if part
                    else SourceUnavailable(message)
                )
            for item in items:
                if isinstance(item, dict):
                    yield item
            metadata = body.get("metadata")
            following = metadata.get("continue") if isinstance(metadata, dict) else None
            if not isinstance(following, str) or not following or following == token:
                return
            token = following

    # Messages.

    def unreachable(self, error: httpx.TransportError) -> str:
        """Why the cluster cannot be talked to; a timeout names the request and the
        scanner's setting that allows a slower cluster."""
        if not isinstance(error, httpx.TimeoutException):
            return super().unreachable(error)
        try:
            path = f"GET {error.request.url.path} "
        except RuntimeError:  # an error raised without its request
            path = ""
        return (
            f"{self.what} did not answer {path}within {self.source.timeout_s:g} s: check that "
            f"it is up and that this scanner can reach port {self.source.port} (firewall, "
            f"proxy); for a cluster that is only slow, raise {TIMEOUT_ENV} on the scanner."
        )

    def _error(self, path: str, response: httpx.Response) -> str:
        said = server_says(response)
        return (
            f"{self.what} answered HTTP {response.status_code} to GET {path}"
            f"{' (' + said + ')' if said else ''}: check the cluster's health (oc get "
            "clusteroperators) and scan again."
        )

    def _malformed(self, path: str) -> str:
        return (
            f"{self.what} sent malformed JSON for GET {path} (not the Kubernetes API's "
            "answer): check that the source's host and port are the cluster's API server "
            "(port 6443), and any proxy between."
        )

    def _gone(self, path: str) -> str:
        return (
            f"{self.what} expired its listing of {resource_of(path)} while it was being paged "
            f"(GET {path}: HTTP 410): the cluster changed too fast; scan again."
        )
