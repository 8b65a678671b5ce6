"""The HTTPS client every API collector shares: bounded requests that stop when told, and
transport failures and refusals in words an operator can act on.

A product's client (Satellite, OpenShift, AAP, RHACS) subclasses :class:`ApiClient`, names
its product and the service that answers (for the messages), and adds its own calls.

Exceptions::

    SourceUnavailable (quipu.collectors.base)  the server cannot be used at all
    Stopped                                    the job was told to stop
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Generator, Iterator, Mapping
from typing import Any, ClassVar

import httpx

from quipu.collectors.base import ApiSource, SourceUnavailable


class Stopped(Exception):
    """The job was told to stop while a request was waiting for its answer."""


def causes(error: BaseException) -> Iterator[BaseException]:
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


def first_cause(error: BaseException, kind: type[BaseException]) -> BaseException | None:
    return next((cause for cause in causes(error) if isinstance(cause, kind)), None)


def json_or_none(response: httpx.Response) -> Any:
    """The response's JSON body, or None when it is not JSON."""
    try:
        return response.json()
    except ValueError:
        return None


class BearerAuth(httpx.Auth):
    """An API token sent as ``Authorization: Bearer ...``."""

    def __init__(self, token: str) -> None:
        self._header = f"Bearer {token}"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self._header
        yield request


class ApiClient:
    """The API of the server ``source`` names; at most ``concurrency`` requests at once.

    Every request gives up when ``stop`` is set (raising :class:`Stopped`), so that a job
    told to stop does not wait for a slow answer. Requests carry the credential's token as
    a bearer token when it has one, else its username and password (HTTP basic).
    """

    product: ClassVar[str] = "The server"
    """The product's name in messages: "Satellite", "OpenShift" ..."""
    service: ClassVar[str] = "its web server"
    """What must run on the server for it to answer, in messages."""

    def __init__(self, source: ApiSource, *, concurrency: int, stop: asyncio.Event) -> None:
        self.source = source
        self.where = f"{source.host}:{source.port}"
        self._stop = stop
        tls = source.ssl_context()
        # One single-connection client per request in flight, not one client with a pool
        # of that size: httpcore's pool re-examines every connection on each request and
        # each response, so its CPU cost per request grows with the pool (at 50
        # connections it, not the server, set the pace). A lane is also the bound itself.
        self._lanes = [self._lane(tls) for _ in range(max(1, concurrency))]
        self._idle: asyncio.Queue[httpx.AsyncClient] = asyncio.Queue()
        for lane in self._lanes:
            self._idle.put_nowait(lane)

    def _lane(self, tls: ssl.SSLContext) -> httpx.AsyncClient:
        source = self.source
        auth: httpx.Auth | None = None
        if source.token:
            auth = BearerAuth(source.token)
        elif source.username:
            auth = httpx.BasicAuth(source.username, source.password)
        return httpx.AsyncClient(
            base_url=source.base_url,
            auth=auth,
            verify=tls,
            proxy=source.proxy_url,
            timeout=httpx.Timeout(source.timeout_s),
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            headers={"Accept": "application/json"},
            # The source's proxy_url is the one proxy that applies: a proxy in the scanner's
            # environment is meant for reaching its server, not the estate's own servers.
            trust_env=False,
        )

    def use_token(self, token: str) -> None:
        """Send ``token`` as the bearer token from now on (one obtained by logging in)."""
        for lane in self._lanes:
            lane.auth = BearerAuth(token)

    async def __aenter__(self) -> ApiClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await asyncio.gather(*(lane.aclose() for lane in self._lanes))

    @property
    def what(self) -> str:
        """The server in messages: "Satellite 127.0.0.1:443"."""
        return f"{self.product} {self.where}"

    @property
    def login(self) -> str:
        """The credential in messages."""
        if self.source.token:
            return "the credential's token"
        return f"user {self.source.username!r}"

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        data: Mapping[str, Any] | None = None,
        follow_redirects: bool = False,
    ) -> httpx.Response:
        """One request on a free lane; Stopped when the job is told to stop meanwhile."""
        if self._stop.is_set():
            raise Stopped
        lane = await self._idle.get()
        try:
            request = asyncio.ensure_future(
                lane.request(
                    method,
                    path,
                    params=params,
                    headers=headers,
                    data=data,
                    follow_redirects=follow_redirects,
                )
            )
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

    async def get(self, path: str, params: Mapping[str, Any] | None = None) -> httpx.Response:
        return await self.request("GET", path, params=params)

    def unreachable(self, error: httpx.TransportError) -> str:
        """Why the server cannot be talked to, and what to check, for ``error``."""
        where, port, product = self.what, self.source.port, self.product
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
        untrusted = first_cause(error, ssl.SSLCertVerificationError)
        if isinstance(untrusted, ssl.SSLCertVerificationError):
            return (
                f"{where} presented a TLS certificate this scanner does not trust "
                f"({untrusted.verify_message}): install {product}'s CA certificate on the "
                "scanner machine (or point SSL_CERT_FILE at it), or set the source's "
                "ssl_cert_verify to false."
            )
        handshake = first_cause(error, ssl.SSLError)
        if isinstance(handshake, ssl.SSLError):
            return (
                f"The TLS handshake with {where} failed ({handshake.reason or handshake}): "
                f"check the source's ssl_protocol, and that port {port} serves HTTPS "
                "(disable_ssl is for a server that speaks plain HTTP)."
            )
        unresolved = first_cause(error, socket.gaierror)
        if isinstance(unresolved, socket.gaierror):
            return (
                f"The {product} host name {self.source.host!r} does not resolve "
                f"({unresolved.strerror}): check the source's host and this scanner's DNS."
            )
        if first_cause(error, ConnectionRefusedError) is not None:
            return (
                f"{where} refused the connection: check the source's host and port, and "
                f"that {self.service} is running."
            )
        if isinstance(error, httpx.ReadError | httpx.WriteError | httpx.RemoteProtocolError):
            return (
                f"{where} closed the connection without answering: check that port {port} "
                f"is {product}'s HTTPS port, and the source's disable_ssl ({product} speaks "
                "HTTPS; plain HTTP gets no answer)."
            )
        return (
            f"{where} cannot be reached ({str(error) or type(error).__name__}): check the "
            f"network between this scanner and {product}."
        )

    def refused(self, response: httpx.Response) -> str | None:
        """Why the server turned the credential away, or None when it did not.

        Products override this to name the role or permission the user lacks.
        """
        if response.status_code == 401:
            what = "token" if self.source.token else "username and password"
            return (
                f"{self.what} refused the login of {self.login} (HTTP 401): check the "
                f"credential's {what} (a token may have expired)."
            )
        if response.status_code == 403:
            return (
                f"{self.what} denied {self.login} access (HTTP 403): give it a role that "
                "may read this, or use another credential."
            )
        return None

    async def source_get(
        self, path: str, params: Mapping[str, Any] | None = None
    ) -> httpx.Response:
        """A request whose failure means the source cannot be used (SourceUnavailable)."""
        try:
            response = await self.get(path, params)
        except httpx.TransportError as error:
            raise SourceUnavailable(self.unreachable(error)) from None
        refusal = self.refused(response)
        if refusal is not None:
            raise SourceUnavailable(refusal)
        return response

    async def source_json(
        self, path: str, params: Mapping[str, Any] | None = None, *, hint: str = ""
    ) -> Any:
        """The JSON of a 200 answer that the source cannot be used without; any other status
        or a body that is not JSON raises SourceUnavailable saying which (``hint``: what to
        check then)."""
        response = await self.source_get(path, params)
        tail = f": {hint}" if hint else ""
        if response.status_code != 200:
            raise SourceUnavailable(
                f"{self.what} answered HTTP {response.status_code} to GET {path}{tail}."
            )
        body = json_or_none(response)
        if body is None:
            raise SourceUnavailable(f"{self.what} sent malformed JSON for GET {path}{tail}.")
        return body
