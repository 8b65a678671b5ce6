"""One Satellite 6 server's API over HTTPS: bounded requests, paging, failures in plain words.

Exceptions::

    SourceUnavailable (quipu.collectors.base)  the server cannot be used at all
    HostFailed                                 one host could not be read
    SubscriptionsUnknown                       one host has no subscriptions listing
    Stopped (quipu.collectors.http)            the job was told to stop
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from typing import Any

import httpx

from quipu.collectors.base import SourceUnavailable
from quipu.collectors.http import ApiClient, Stopped, json_or_none

log = logging.getLogger(__name__)

API_VERSION = 2
"""The API version Satellite 6 reports in ``/api/status``."""
PER_PAGE = 1000
"""Hosts per page of the listing; a thin page of this size is cheap for Satellite."""


class HostFailed(Exception):
    """One host could not be read; the message says why, for that host's result."""


class SubscriptionsUnknown(Exception):
    """Satellite lists no subscriptions for one host (HTTP 400 or 404): its entitlements
    are unknown, the rest of its facts stand."""


__all__ = ["HostFailed", "SatelliteClient", "Stopped", "SubscriptionsUnknown"]


class SatelliteClient(ApiClient):
    """The API of the Satellite ``source`` names (see ApiClient): HTTP basic auth."""

    product = "Satellite"
    service = "Satellite's web server (httpd)"

    async def __aenter__(self) -> SatelliteClient:
        return self

    def refused(self, response: httpx.Response) -> str | None:
        """Why Satellite turned the credential away, or None when it did not."""
        user = self.source.username
        if response.status_code == 401:
            return (
                f"Satellite {self.where} refused the login of user {user!r} (HTTP 401): "
                "check the credential's username and password."
            )
        if response.status_code == 403:
            return (
                f"Satellite {self.where} denied user {user!r} access (HTTP 403): give the "
                "user a role that may view hosts (Viewer does), or use another credential."
            )
        return None

    async def check_api(self) -> None:
        """Log in and check the server speaks Satellite 6's API; SourceUnavailable if not."""
        response = await self.source_get("/api/status")
        body = json_or_none(response) if response.status_code == 200 else None
        if response.status_code == 404 or (response.status_code == 200 and body is None):
            raise SourceUnavailable(
                f"{self.where} does not answer GET /api/status as Satellite does (HTTP "
                f"{response.status_code}): check that the source's host and port are "
                "Satellite's."
            )
        if response.status_code != 200:
            raise SourceUnavailable(
                f"Satellite {self.where} answered HTTP {response.status_code} to GET "
                "/api/status: check its health (satellite-maintain health check)."
            )
        version = body.get("api_version") if isinstance(body, dict) else None
        if str(version) != str(API_VERSION):
            raise SourceUnavailable(
                f"Satellite {self.where} reports API version {version}; Quipu reads API "
                f"version {API_VERSION} (Satellite 6): check that the source is a Satellite 6 "
                "server."
            )

    async def hosts(self) -> AsyncGenerator[tuple[int, str], None]:
        """(id, name) of every host Satellite manages, page by page, each host once."""
        seen: set[int] = set()
        page = 1
        while True:
            body = await self._hosts_page(page)
            results: list[Any] = body["results"]
            new = 0
            for item in results:
                host_id = item.get("id") if isinstance(item, dict) else None
                name = item.get("name") if isinstance(item, dict) else None
                if type(host_id) is not int or not isinstance(name, str) or not name.strip():
                    log.warning(
                        "Satellite %s lists a host without id or name: %r", self.where, item
                    )
                    continue
                if host_id in seen:
                    continue
                seen.add(host_id)
                new += 1
                yield host_id, name.strip()
            per_page = body.get("per_page")
            per_page = per_page if type(per_page) is int and per_page > 0 else PER_PAGE
            total = body.get("subtotal", body.get("total"))
            # Hosts added or removed while paging shift the pages: stop at a page that
            # brings nothing new rather than trust the total alone.
            if not new or len(results) < per_page:
                return
            if type(total) is int and page * per_page >= total:
                return
            page += 1

    async def _hosts_page(self, page: int) -> dict[str, Any]:
        params = {"page": page, "per_page": PER_PAGE, "thin": 1}
        response = await self.source_get("/api/v2/hosts", params)
        if response.status_code != 200:
            raise SourceUnavailable(
                f"Satellite {self.where} answered HTTP {response.status_code} to GET "
                f"/api/v2/hosts (page {page}): check its health (satellite-maintain health "
                "check) and run the scan again."
            )
        body = json_or_none(response)
        if not isinstance(body, dict) or not isinstance(body.get("results"), list):
            raise SourceUnavailable(
                f"Satellite {self.where} sent a malformed page {page} of its hosts (GET "
                "/api/v2/hosts is not the JSON Satellite 6 sends): check its health and run "
                "the scan again."
            )
        return body

    async def _host_get(self, path: str, *, what: str) -> httpx.Response:
        """A request about one host; its failure fails that host only."""
        try:
            response = await self.get(path, {"fields": "full"} if what == "details" else None)
        except httpx.TimeoutException:
            raise HostFailed(
                f"Satellite {self.where} did not answer GET {path} (the host's {what}) within "
                f"{self.source.timeout_s:g} s."
            ) from None
        except httpx.TransportError as error:
            raise HostFailed(self.unreachable(error)) from None
        refusal = self.refused(response)
        if refusal is not None:
            raise HostFailed(refusal)
        return response

    async def host(self, host_id: int) -> dict[str, Any]:
        """The details of one host, with its facets and facts."""
        path = f"/api/v2/hosts/{host_id}"
        response = await self._host_get(path, what="details")
        if response.status_code == 404:
            raise HostFailed(
                f"Satellite {self.where} no longer knows host id {host_id} (GET {path}: HTTP "
                "404): it was deleted after the hosts were listed."
            )
        if response.status_code != 200:
            raise HostFailed(
                f"Satellite {self.where} answered HTTP {response.status_code} to GET {path}: "
                "see Satellite's /var/log/foreman/production.log, then scan again."
            )
        body = json_or_none(response)
        if not isinstance(body, dict):
            raise HostFailed(f"Satellite {self.where} sent malformed JSON for GET {path}.")
        return body

    async def subscriptions(self, host_id: int) -> list[Any]:
        """The results of one host's subscriptions listing."""
        path = f"/api/v2/hosts/{host_id}/subscriptions"
        response = await self._host_get(path, what="subscriptions")
        if response.status_code in (400, 404):
            raise SubscriptionsUnknown(
                f"Satellite answered HTTP {response.status_code} to GET {path}, as it does for "
                "a host not registered with subscription-manager: its entitlements are unknown."
            )
        if response.status_code != 200:
            raise HostFailed(
                f"Satellite {self.where} answered HTTP {response.status_code} to GET {path}: "
                "see Satellite's /var/log/foreman/production.log, then scan again."
            )
        body = json_or_none(response)
        results = body.get("results") if isinstance(body, dict) else None
        if not isinstance(results, list):
            raise HostFailed(f"Satellite {self.where} sent malformed JSON for GET {path}.")
        return results
