"""One Satellite 6 server's API over HTTPS: bounded requests, paging, failures in plain words.

Exceptions::

    SourceUnavailable (quipu.collectors.base)  the server cannot be used at all
    HostFailed                                 one host could not be read
    SubscriptionsUnknown                       one host has no subscriptions listing
    Stopped                                    the job was told to stop
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import AsyncGenerator, Iterator
from typing import Any

import httpx

from quipu.collectors.base import ApiSource, SourceUnavailable

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


class Stopped(Exception):
    """The job was told to stop while a request was waiting for its answer."""


def _causes(error: BaseException) -> Iterator[BaseException]:
    """``error`` and what it was raised from: httpx wraps the socket's or TLS's own error."""
    stack, seen = [error], set()
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        if isinstance(current, BaseExceptionGroup):
            stack.extend(current.exceptions)
        stack.extend(e for e in (current.__cause__, current.__context__) if e is not None)


def _first(error: BaseException, kind: type[BaseException]) -> BaseException | None:
    return next((cause for cause in _causes(error) if isinstance(cause, kind)), None)


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


class SatelliteClient:
    """The API of the Satellite ``source`` names; at most ``concurrency`` requests at once.

    Every request gives up when ``stop`` is set (raising :class:`Stopped`), so that a job
    told to stop does not wait for a slow answer.
    """

    def __init__(self, source: ApiSource, *, concurrency: int, stop: asyncio.Event) -> None:
        self.source = source
        self.where = f"{source.host}:{source.port}"
        self._stop = stop
        tls = source.ssl_context()
        # One single-connection client per request in flight, not one client with a pool
        # of that size: httpcore's pool re-examines every connection on each request and
        # each response, so its CPU cost per request grows with the pool (at 50
        # connections it, not Satellite, set the pace). A lane is also the bound itself.
        self._lanes = [self._lane(tls) for _ in range(concurrency)]
        self._idle: asyncio.Queue[httpx.AsyncClient] = asyncio.Queue()
        for lane in self._lanes:
            self._idle.put_nowait(lane)

    def _lane(self, tls: ssl.SSLContext) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.source.base_url,
            auth=httpx.BasicAuth(self.source.username, self.source.password),
            verify=tls,
            proxy=self.source.proxy_url,
            timeout=httpx.Timeout(self.source.timeout_s),
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            headers={"Accept": "application/json"},
            # The source's proxy_url is the one proxy that applies: a proxy in the scanner's
            # environment is meant for reaching its server, not the estate's Satellite.
            trust_env=False,
        )

    async def __aenter__(self) -> SatelliteClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await asyncio.gather(*(lane.aclose() for lane in self._lanes))

    async def _get(self, path: str, params: dict[str, Any] | None = None) -> httpx.Response:
        if self._stop.is_set():
            raise Stopped
        lane = await self._idle.get()
        try:
            request = asyncio.ensure_future(lane.get(path, params=params))
            stopped = asyncio.ensure_future(self._stop.wait())
            try:
                await asyncio.wait({request, stopped}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                stopped.cancel()
                if not request.done():
                    request.cancel()
                    await asyncio.gather(request, return_exceptions=True)
            if request.cancelled():
                raise Stopped
            return request.result()
        finally:
            self._idle.put_nowait(lane)

    def unreachable(self, error: httpx.TransportError) -> str:
        """Why the server cannot be talked to, and what to check, for ``error``."""
        where, port = f"Satellite {self.where}", self.source.port
        if isinstance(error, httpx.TimeoutException):
            return (
                f"{where} did not answer within {self.source.timeout_s:g} s: check that it "
                f"is up and that this scanner can reach port {port} (firewall, proxy)."
            )
        if isinstance(error, httpx.ProxyError):
            return (
                f"The proxy {self.source.proxy_url} did not take the connection to {where} "
                f"({error}): check the source's proxy_url."
            )
        untrusted = _first(error, ssl.SSLCertVerificationError)
        if isinstance(untrusted, ssl.SSLCertVerificationError):
            return (
                f"{where} presented a TLS certificate this scanner does not trust "
                f"({untrusted.verify_message}): install Satellite's CA certificate on the "
                "scanner machine (or point SSL_CERT_FILE at it), or set the source's "
                "ssl_cert_verify to false."
            )
        handshake = _first(error, ssl.SSLError)
        if isinstance(handshake, ssl.SSLError):
            return (
                f"The TLS handshake with {where} failed ({handshake.reason or handshake}): "
                f"check the source's ssl_protocol, and that port {port} serves HTTPS "
                "(disable_ssl is for a server that speaks plain HTTP)."
            )
        unresolved = _first(error, socket.gaierror)
        if isinstance(unresolved, socket.gaierror):
            return (
                f"The Satellite host name {self.source.host!r} does not resolve "
                f"({unresolved.strerror}): check the source's host and this scanner's DNS."
            )
        if _first(error, ConnectionRefusedError) is not None:
            return (
                f"{where} refused the connection: check the source's host and port, and "
                "that Satellite's web server (httpd) is running."
            )
        if isinstance(error, httpx.ReadError | httpx.WriteError | httpx.RemoteProtocolError):
            return (
                f"{where} closed the connection without answering: check that port {port} "
                "is Satellite's HTTPS port, and the source's disable_ssl (Satellite speaks "
                "HTTPS; plain HTTP gets no answer)."
            )
        return (
            f"{where} cannot be reached ({str(error) or type(error).__name__}): check the "
            "network between this scanner and Satellite."
        )

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

    async def _source_get(self, path: str, params: dict[str, Any] | None = None) -> httpx.Response:
        """A request whose failure means the source cannot be used."""
        try:
            response = await self._get(path, params)
        except httpx.TransportError as error:
            raise SourceUnavailable(self.unreachable(error)) from None
        refusal = self.refused(response)
        if refusal is not None:
            raise SourceUnavailable(refusal)
        return response

    async def check_api(self) -> None:
        """Log in and check the server speaks Satellite 6's API; SourceUnavailable if not."""
        response = await self._source_get("/api/status")
        body = _json(response) if response.status_code == 200 else None
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
        response = await self._source_get("/api/v2/hosts", params)
        if response.status_code != 200:
            raise SourceUnavailable(
                f"Satellite {self.where} answered HTTP {response.status_code} to GET "
                f"/api/v2/hosts (page {page}): check its health (satellite-maintain health "
                "check) and run the scan again."
            )
        body = _json(response)
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
            response = await self._get(path, {"fields": "full"} if what == "details" else None)
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
        body = _json(response)
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
        body = _json(response)
        results = body.get("results") if isinstance(body, dict) else None
        if not isinstance(results, list):
            raise HostFailed(f"Satellite {self.where} sent malformed JSON for GET {path}.")
        return results
