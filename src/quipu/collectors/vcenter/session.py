"""Sessions with a vCenter: the API version, login and logout, and what each failure means.

A session is opened with pyVmomi's SOAP stub rather than ``pyVim.connect.SmartConnect``:
SmartConnect reads the server's API versions with no timeout at all (a host that accepts
the connection and never answers would hold the scanner forever), and this module bounds
every request by the source's timeout. Everything here blocks: call it in a worker thread,
or through :func:`call`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import http.client
import logging
import socket
import ssl
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit
from xml.etree import ElementTree

from pyVmomi import SoapAdapter, VmomiSupport, vim, vmodl

from quipu.collectors.base import ApiSource, SourceUnavailable
from quipu.collectors.vcenter.soap import PropertyReader

logger = logging.getLogger(__name__)

T = TypeVar("T")

# pyVmomi's type stubs leave these untyped: they are used as the dynamic objects they are.
_SOAP: Any = SoapAdapter
_SUPPORT: Any = VmomiSupport
_SERVICE_INSTANCE: Any = vim.ServiceInstance

SDK_PATH = "/sdk"
_VERSIONS_LIMIT = 1 << 20
"""Bytes of ``vimServiceVersions.xml`` read at most: the real document is under 1 KB."""


class NotVcenter(Exception):
    """The server answered, but not as a vCenter does."""


@dataclasses.dataclass(frozen=True, slots=True)
class Session:
    """A logged-in session: the service content (root folder, property collector...)."""

    source: ApiSource
    stub: Any
    content: Any

    @property
    def reader(self) -> PropertyReader:
        return PropertyReader(stub=self.stub, collector=self.content.propertyCollector)

    def close(self) -> None:
        """Log out and drop the connections; a session that is already gone is fine."""
        try:
            self.content.sessionManager.Logout()
        except Exception as error:
            # Closing must not hide the outcome of the work the session did.
            logger.debug("logout from %s failed: %s", where(self.source), error)
        finally:
            self.stub.DropConnections()


def where(source: ApiSource) -> str:
    host = f"[{source.host}]" if ":" in source.host else source.host
    return f"{host}:{source.port}"


def _proxy(source: ApiSource) -> tuple[str, int] | None:
    if not source.proxy_url:
        return None
    url = source.proxy_url if "://" in source.proxy_url else f"http://{source.proxy_url}"
    parts = urlsplit(url)
    if not parts.hostname:
        raise SourceUnavailable(
            f"The proxy_url {source.proxy_url!r} of source {source.source_name!r} names no "
            "host: give it as http://host:port."
        )
    return parts.hostname, parts.port or 80


def _http_connection(
    source: ApiSource, context: ssl.SSLContext | None
) -> http.client.HTTPConnection:
    proxy = _proxy(source)
    host, port = proxy or (source.host, source.port)
    connection: http.client.HTTPConnection
    if context is None:
        connection = http.client.HTTPConnection(host, port, timeout=source.timeout_s)
    else:
        connection = http.client.HTTPSConnection(
            host, port, timeout=source.timeout_s, context=context
        )
    if proxy is not None:
        connection.set_tunnel(source.host, source.port)
    return connection


def api_version(source: ApiSource, context: ssl.SSLContext | None) -> str:
    """The newest vSphere API version both the server and this pyVmomi speak.

    vCenter lists its versions in ``/sdk/vimServiceVersions.xml``; pyVmomi knows its own,
    newest first.
    """
    connection = _http_connection(source, context)
    try:
        connection.request("GET", f"{SDK_PATH}/vimServiceVersions.xml")
        with connection.getresponse() as response:
            body = response.read(_VERSIONS_LIMIT)
    finally:
        connection.close()
    if response.status != 200:
        raise NotVcenter(
            f"it answered HTTP {response.status} {response.reason} for "
            f"{SDK_PATH}/vimServiceVersions.xml"
        )
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError:
        raise NotVcenter(f"{SDK_PATH}/vimServiceVersions.xml is not XML") from None
    offered = {
        (version.text or "").strip()
        for namespace in root.iter("namespace")
        if (namespace.findtext("name") or "").strip() == "urn:vim25"
        for version in [*namespace.findall("version"), *namespace.findall("priorVersions/version")]
    }
    for name in _SUPPORT.GetServiceVersions("vim25"):
        if _SUPPORT.versionIdMap.get(name) in offered:
            return str(name)
    listed = ", ".join(sorted(offered)) or "none"
    raise NotVcenter(f"it offers no vSphere API version this scanner speaks (it offers {listed})")


def open_session(source: ApiSource) -> Session:
    """Connect and log in; raises SourceUnavailable saying what went wrong and what to do."""
    try:
        context = None if source.disable_ssl else source.ssl_context()
        version = api_version(source, context)
        proxy = _proxy(source)
        stub = _SOAP.SoapStubAdapter(
            host=source.host,
            # pyVmomi's way of asking for plain HTTP is a negative port.
            port=-source.port if source.disable_ssl else source.port,
            path=SDK_PATH,
            version=version,
            sslContext=context,
            httpProxyHost=proxy[0] if proxy else None,
            httpProxyPort=proxy[1] if proxy else 80,
            httpConnectionTimeout=source.timeout_s,
        )
        content = _SERVICE_INSTANCE("ServiceInstance", stub).RetrieveContent()
    except Exception as error:
        raise unavailable(source, error) from error
    try:
        content.sessionManager.Login(source.username, source.password, None)
    except Exception as error:
        stub.DropConnections()
        raise unavailable(source, error) from error
    return Session(source=source, stub=stub, content=content)


async def call(source: ApiSource, function: Callable[..., T], *args: Any) -> T:
    """``function(*args)`` in a worker thread, with vCenter failures as SourceUnavailable."""
    try:
        return await asyncio.to_thread(function, *args)
    except SourceUnavailable:
        raise
    except Exception as error:
        raise unavailable(source, error) from error


def unavailable(source: ApiSource, error: BaseException) -> SourceUnavailable | BaseException:
    """The SourceUnavailable that tells an operator what ``error`` means for ``source``.

    An error that says nothing about the source (a bug here) is returned as it is.
    """
    message = describe(source, error)
    return error if message is None else SourceUnavailable(message)


def describe(source: ApiSource, error: BaseException) -> str | None:
    """What ``error`` means for ``source``, in words an operator can act on; None if unknown."""
    vcenter = f"vCenter {where(source)}"
    proxy = f" through the proxy {source.proxy_url}" if source.proxy_url else ""
    if isinstance(error, SourceUnavailable):
        return str(error)
    if isinstance(error, vim.fault.InvalidLogin):
        return (
            f"{vcenter} refused the login of user {source.username!r}: check the "
            "credential's username and password."
        )
    if isinstance(error, (vim.fault.NoPermission, vmodl.fault.SecurityError)):
        return (
            f"User {source.username!r} may not read the inventory of {vcenter} "
            f"({_fault_text(error)}): give the user at least the Read-only role on the "
            "vCenter root."
        )
    if isinstance(error, vmodl.MethodFault):
        return f"{vcenter} failed a request ({_fault_text(error)}): see its logs."
    if isinstance(error, NotVcenter):
        return (
            f"{where(source)} does not answer as a vCenter ({error}): check the source's host "
            "and port, and disable_ssl (set it only when vCenter serves plain HTTP)."
        )
    if isinstance(error, socket.gaierror):
        return (
            f"{vcenter} could not be found: the name {source.host!r} does not resolve "
            f"({error.strerror}). Check the source's host and the scanner's DNS."
        )
    if isinstance(error, ssl.SSLCertVerificationError):
        return (
            f"{vcenter}'s TLS certificate could not be verified ({error.verify_message}): "
            "install its CA on the scanner, or set ssl_cert_verify to false."
        )
    if isinstance(error, ssl.SSLError):
        return (
            f"The TLS handshake with {vcenter} failed ({error.reason or error}): check the "
            "source's ssl_protocol, or set disable_ssl if vCenter serves plain HTTP."
        )
    if isinstance(error, TimeoutError):
        return (
            f"{vcenter} did not answer within {source.timeout_s:g} s{proxy}: check the "
            "source's host and port, and any firewall or proxy on the way."
        )
    if isinstance(error, ConnectionRefusedError):
        if source.proxy_url:
            return f"The proxy {source.proxy_url} refused the connection: check proxy_url."
        return (
            f"{vcenter} refused the connection: check the source's host and port, and that "
            "vCenter is running."
        )
    if isinstance(error, OSError) and str(error).startswith("Tunnel connection failed"):
        return (
            f"The proxy {source.proxy_url} could not reach {vcenter} ({error}): check "
            "proxy_url and the proxy's rules."
        )
    if isinstance(error, OSError | http.client.HTTPException):
        return (
            f"The connection to {vcenter}{proxy} failed ({type(error).__name__}: {error}): "
            "check the source's host, port and proxy_url."
        )
    return None


def _fault_text(fault: BaseException) -> str:
    text = getattr(fault, "msg", None) or str(fault).strip()
    return f"{type(fault).__name__}: {text}" if text else type(fault).__name__
