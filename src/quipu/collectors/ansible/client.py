"""One automation controller's REST API: where it serves it, bounded paged listings, failures
in plain words.

The controller serves its API under ``/api/v2/`` (AAP 2.4 and before) or, behind AAP 2.5's
platform gateway, under ``/api/controller/v2/``: :meth:`ControllerClient.discover` follows
``GET /api/`` to the version root, which lists every endpoint, as the established server
does.

Exceptions::

    SourceUnavailable (quipu.collectors.base)  the controller cannot be used at all
    PartUnknown                                one listing could not be read
        NotServed                              the controller does not serve that endpoint
    Stopped (quipu.collectors.http)            the job was told to stop
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx

from quipu.collectors.base import SourceUnavailable
from quipu.collectors.http import ApiClient, Stopped, json_or_none

log = logging.getLogger(__name__)

PAGE_SIZE = 200
"""Results asked per page: the controller's own ceiling (its ``MAX_PAGE_SIZE``)."""
LOGS = "see the controller's /var/log/tower/tower.log, then scan again"

__all__ = ["ControllerClient", "NotServed", "PartUnknown", "Stopped"]


class PartUnknown(Exception):
    """One listing could not be read (a 403, a 5xx, a slow or malformed answer): the facts it
    feeds are unknown, the rest stand. The message says why, for the controller's result."""


class NotServed(PartUnknown):
    """The controller answers HTTP 404 for the endpoint: its release does not have it."""


class ControllerClient(ApiClient):
    """The API of the controller ``source`` names (see ApiClient): a bearer token or basic auth."""

    product = "AAP controller"
    service = "the automation controller's web server (nginx)"

    endpoints: dict[str, str]
    """Endpoint paths by name (``ping``, ``me``, ``hosts``, ``jobs``, ``host_metrics`` ...), as
    the version root lists them; filled by :meth:`discover`."""

    async def __aenter__(self) -> ControllerClient:
        self.endpoints = {}
        return self

    def refused(self, response: httpx.Response) -> str | None:
        """Why the controller turned the credential away, or None when it did not."""
        path = response.request.url.path if response.request is not None else ""
        if response.status_code == 401:
            if self.source.token:
                return (
                    f"{self.what} refused the credential's token (HTTP 401 to GET {path}): "
                    "it has expired or was revoked; create a new token for the user (Users > "
                    "Tokens) and set it as the credential's auth_token."
                )
            return (
                f"{self.what} refused the login of user {self.source.username!r} (HTTP 401 "
                f"to GET {path}): check the credential's username and password."
            )
        if response.status_code == 403:
            return (
                f"{self.what} denied {self.login} access to GET {path} (HTTP 403): give the "
                "user the System Auditor role, which may read every inventory, job and host "
                "metric, or use another credential."
            )
        return None

    async def fetch(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """The JSON of a 200 answer to ``GET path``.

        SourceUnavailable when the controller cannot be reached or refuses the credential
        (401); NotServed for a 404; PartUnknown for a 403, another status, a timeout or a
        body that is not JSON.
        """
        where = f"GET {path}"
        page = (params or {}).get("page")
        if page is not None and page != 1:
            where += f" (page {page})"
        try:
            response = await self.get(path, params)
        except httpx.TimeoutException:
            raise PartUnknown(
                f"{self.what} did not answer {where} within {self.source.timeout_s:g} s: "
                "it may be overloaded; raise QUIPU_ANSIBLE_TIMEOUT_S on the scanner or scan "
                "when it is less busy."
            ) from None
        except httpx.TransportError as error:
            raise SourceUnavailable(self.unreachable(error)) from None
        if response.status_code == 401:
            raise SourceUnavailable(self.refused(response) or "")
        if response.status_code == 403:
            raise PartUnknown(self.refused(response) or "")
        if response.status_code == 404:
            raise NotServed(f"{self.what} does not serve {where} (HTTP 404).")
        if response.status_code != 200:
            raise PartUnknown(
                f"{self.what} answered HTTP {response.status_code} to {where}: {LOGS}."
            )
        body = json_or_none(response)
        if body is None:
            raise PartUnknown(f"{self.what} sent malformed JSON for {where}: {LOGS}.")
        return body

    async def required(self, path: str, *, hint: str) -> dict[str, Any]:
        """The JSON object at ``path``, which the source cannot be used without: any failure
        is SourceUnavailable (``hint``: what to check then)."""
        try:
            body = await self.fetch(path)
        except NotServed as failure:
            raise SourceUnavailable(f"{str(failure)[:-1]}: {hint}") from None
        except PartUnknown as failure:
            raise SourceUnavailable(str(failure)) from None
        if not isinstance(body, dict):
            raise SourceUnavailable(f"{self.what} sent malformed JSON for GET {path}: {hint}")
        return body

    async def discover(self) -> None:
        """Find where the controller serves its API version 2, and the endpoints it lists."""
        not_a_controller = (
            "check that the source's host and port are the automation controller's (or AAP "
            "2.5's platform gateway's)."
        )
        api = await self.required("/api/", hint=not_a_controller)
        apis = api.get("apis")
        if isinstance(apis, dict) and isinstance(apis.get("controller"), str):
            # AAP 2.5's platform gateway lists its services; the controller is one.
            api = await self.required(apis["controller"], hint=not_a_controller)
        versions = api.get("available_versions")
        root = versions.get("v2") if isinstance(versions, dict) else None
        if not isinstance(root, str) or not root.startswith("/"):
            raise SourceUnavailable(
                f"{self.where} does not list API version 2 in GET /api/ as an automation "
                f"controller does: {not_a_controller}"
            )
        listing = await self.required(root, hint=not_a_controller)
        self.endpoints = {
            name: path
            for name, path in listing.items()
            if isinstance(path, str) and path.startswith("/")
        }
        # A controller behind a proxy may not list every endpoint it serves: host_metrics
        # is asked for anyway, and a 404 then tells it is not there.
        for name in ("ping", "me", "hosts", "jobs", "host_metrics"):
            self.endpoints.setdefault(name, f"{root}{name}/")
        log.debug("%s serves API version 2 at %s", self.what, root)

    async def listing(
        self, name: str, *, path: str | None = None, params: Mapping[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """Every result of the paged listing ``name`` (or at ``path``), each once.

        After the first page, the count and the page size it was given tell how many pages
        remain; those are asked for at once, as many in flight as the client has lanes.
        Without a count, the ``next`` links are followed one by one.
        """
        path = path or self.endpoints[name]
        base = dict(params or {})
        first = await self._page(path, {**base, "page_size": PAGE_SIZE})
        found = list(first["results"])
        count, size = first.get("count"), len(found)
        if not first.get("next"):
            return _unique(found)
        if type(count) is int and size:
            pages = math.ceil(count / size)
            bodies = await asyncio.gather(
                *(
                    self._page(path, {**base, "page": n, "page_size": size})
                    for n in range(2, pages + 1)
                ),
                return_exceptions=True,
            )
            # Every page ends (within the timeout) before a failure is raised: cancelling
            # a request in its TLS handshake would leave its socket open.
            failures = [b for b in bodies if isinstance(b, BaseException)]
            for kind in (Stopped, SourceUnavailable, BaseException):
                failure = next((f for f in failures if isinstance(f, kind)), None)
                if failure is not None:
                    raise failure
            for body in bodies:
                if isinstance(body, dict):
                    found.extend(body["results"])
            return _unique(found)
        link: Any = first.get("next")
        while isinstance(link, str) and link:
            target = urlsplit(link)
            # Only the path and query of a link are followed: the credential goes nowhere
            # but to the source's own host and port.
            body = await self._page(target.path, dict(parse_qsl(target.query)))
            found.extend(body["results"])
            link = body.get("next")
        return _unique(found)

    async def _page(self, path: str, params: Mapping[str, Any]) -> dict[str, Any]:
        body = await self.fetch(path, params)
        if not isinstance(body, dict) or not isinstance(body.get("results"), list):
            page = params.get("page") or 1
            raise PartUnknown(
                f"{self.what} sent a malformed page {page} of GET {path} (not the "
                f"count/next/previous/results page the controller sends): {LOGS}."
            )
        body["results"] = [item for item in body["results"] if isinstance(item, dict)]
        return body


def _unique(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each result once, by id: a row added while paging shifts the pages after it."""
    seen: set[Any] = set()
    unique = []
    for item in items:
        key = item.get("id")
        if key is not None:
            if key in seen:
                continue
            seen.add(key)
        unique.append(item)
    return unique
