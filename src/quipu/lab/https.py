"""Fake API servers over real HTTPS on loopback: the plumbing every lab peer shares.

A peer (Satellite, OpenShift, AAP, RHACS, Vault) is a :class:`FakeService` that turns one
:class:`Request` into one :class:`Reply`; :func:`serving` runs it on ``127.0.0.1`` behind the
standard library's threading HTTP server (one thread per connection, so it answers as many
requests at once as clients open connections) with a fresh self-signed certificate, and
counts what it serves. Faults that a real server shows (latency, a slow answer) are the
service's own business; :meth:`FakeService.pause` waits without holding up a shutdown.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import ipaddress
import json
import logging
import ssl
import tempfile
import threading
from collections.abc import Iterator, Mapping
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

log = logging.getLogger(__name__)

ADDRESS = "127.0.0.1"
JSON = "application/json; charset=utf-8"
MAX_BODY = 16 * 1024 * 1024
"""Request bodies larger than this are refused with 413 (a fake has no use for them)."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Request:
    """One HTTP request as a fake service sees it."""

    method: str
    path: str
    """The path without its query string."""
    query: Mapping[str, str]
    """Each query parameter's last value."""
    headers: Message
    body: bytes = b""
    client_certificate: Mapping[str, Any] | None = None
    """The TLS client certificate the client presented and the server verified, as
    :meth:`ssl.SSLSocket.getpeercert` gives it; None without one."""

    def json(self) -> Any:
        """The body as JSON; ValueError when it is not."""
        return json.loads(self.body or b"null")


@dataclasses.dataclass(frozen=True, slots=True)
class Reply:
    """One HTTP answer."""

    status: int
    body: bytes = b""
    content_type: str = JSON
    headers: tuple[tuple[str, str], ...] = ()


def json_reply(status: int, value: Any, *, headers: tuple[tuple[str, str], ...] = ()) -> Reply:
    """An answer whose body is ``value`` as JSON."""
    return Reply(status, json.dumps(value).encode(), JSON, headers)


class FakeService:
    """The base of a fake API: subclasses implement :meth:`route`.

    ``latency_s`` is added to every request before it is answered (a remote, busy server).
    Counts of requests and of requests answered at once are kept for tests and benchmarks.
    """

    name = "fake service"

    def __init__(self, *, latency_s: float = 0.0) -> None:
        self.latency_s = latency_s
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.in_flight = 0
        self.max_in_flight = 0
        """The most requests it was answering at one time."""
        self.requests = 0
        self.paths: dict[str, int] = {}
        """Requests served per path (without query), for tests that check what was asked."""

    def route(self, request: Request) -> Reply:
        raise NotImplementedError

    def pause(self, seconds: float) -> None:
        """Wait ``seconds``, cut short when the server stops."""
        self._stopping.wait(seconds)

    def stop(self) -> None:
        """Cut short every delay, so that stopping the server does not wait on them."""
        self._stopping.set()

    def take_counts(self) -> dict[str, int]:
        """``requests`` and ``max_in_flight`` since the last call, which starts them anew."""
        with self._lock:
            counts = {"requests": self.requests, "max_in_flight": self.max_in_flight}
            self.requests, self.max_in_flight = 0, self.in_flight
        return counts

    def answer(self, handler: BaseHTTPRequestHandler) -> None:
        url = urlsplit(handler.path)
        with self._lock:
            self.requests += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self.paths[url.path] = self.paths.get(url.path, 0) + 1
        try:
            length = int(handler.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                reply = json_reply(413, {"message": "Request body too large"})
                handler.close_connection = True
            else:
                body = handler.rfile.read(length) if length > 0 else b""
                if self.latency_s:
                    self.pause(self.latency_s)
                peer = getattr(handler.connection, "getpeercert", None)
                request = Request(
                    method=handler.command,
                    path=url.path,
                    query={key: values[-1] for key, values in parse_qs(url.query).items()},
                    headers=handler.headers,
                    body=body,
                    client_certificate=(peer() or None) if peer is not None else None,
                )
                reply = self.route(request)
            handler.send_response(reply.status)
            handler.send_header("Content-Type", reply.content_type)
            handler.send_header("Content-Length", str(len(reply.body)))
            for name, value in reply.headers:
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(reply.body)
        except (ConnectionError, TimeoutError, ssl.SSLError):
            # The client gave up (its timeout is shorter than a slow answer's delay).
            handler.close_connection = True
        finally:
            with self._lock:
                self.in_flight -= 1


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    """Headers and body go out in two writes: with Nagle's algorithm, the client's delayed
    ACK would hold the second one back for tens of milliseconds."""
    timeout = 30
    """An idle keep-alive connection's thread ends after this many seconds."""
    server: _Server

    def do_GET(self) -> None:
        self.server.service.answer(self)

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        log.debug(f"{self.server.service.name}: " + format, *args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(
        self, address: tuple[str, int], *, service: FakeService, tls: ssl.SSLContext | None
    ) -> None:
        self.service = service
        self.tls = tls
        super().__init__(address, _Handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        # The TLS handshake runs here, in the connection's own thread, so that one client
        # that never completes it cannot hold up the others.
        request.settimeout(_Handler.timeout)
        if self.tls is None:
            super().finish_request(request, client_address)
            return
        try:
            secure = self.tls.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as error:
            log.debug(
                "%s: TLS handshake with %s failed: %s", self.service.name, client_address, error
            )
            return
        try:
            super().finish_request(secure, client_address)
        finally:
            secure.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug(
            "%s: connection from %s ended badly", self.service.name, client_address, exc_info=True
        )


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Quipu lab"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def _write(
    directory: Path, stem: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey
) -> tuple[Path, Path]:
    cert_path, key_path = directory / f"{stem}.crt", directory / f"{stem}.key"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def write_certificate(
    directory: Path, *, stem: str = "server", common_name: str = "lab.invalid"
) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost, and its key, in ``directory``.

    The certificate is its own CA, so pointing ``SSL_CERT_FILE`` at it makes it trusted.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(common_name)
    now = datetime.datetime.now(datetime.UTC)
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(ADDRESS))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    return _write(directory, stem, cert, key)


def write_client_certificate(
    directory: Path, *, ca: tuple[Path, Path], stem: str = "client", common_name: str = "quipu"
) -> tuple[Path, Path]:
    """A TLS client certificate signed by the CA ``(cert, key)`` (e.g. one from
    :func:`write_certificate`), and its key, in ``directory``."""
    ca_cert = x509.load_pem_x509_certificate(ca[0].read_bytes())
    ca_key = serialization.load_pem_private_key(ca[1].read_bytes(), password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise ValueError("the CA key must be an EC key (as write_certificate writes)")
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(ca=False), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return _write(directory, stem, cert, key)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Served:
    """A fake service that is up."""

    host: str
    port: int
    cert_path: Path
    """The server's self-signed certificate (PEM), usable as a CA file."""
    key_path: Path
    """Its key: with ``cert_path``, a CA that :func:`write_client_certificate` signs with."""
    tls: bool

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"


@contextlib.contextmanager
def serving(
    service: FakeService,
    *,
    port: int = 0,
    tls: bool = True,
    tls_version: ssl.TLSVersion | None = None,
    client_ca: Path | None = None,
    common_name: str = "lab.invalid",
) -> Iterator[Served]:
    """``service`` on ``127.0.0.1:port`` (0: any free port) until the block ends.

    ``tls`` False serves plain HTTP; ``tls_version`` accepts that TLS version only;
    ``client_ca`` asks clients for a certificate (optional) and verifies it against that CA.
    """
    with tempfile.TemporaryDirectory(prefix="quipu-fake-") as directory:
        cert_path, key_path = write_certificate(Path(directory), common_name=common_name)
        context = None
        if tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(cert_path, key_path)
            if tls_version is not None:
                context.minimum_version = context.maximum_version = tls_version
            if client_ca is not None:
                context.verify_mode = ssl.CERT_OPTIONAL
                context.load_verify_locations(cafile=client_ca)
        server = _Server((ADDRESS, port), service=service, tls=context)
        thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        thread.start()
        try:
            yield Served(
                host=ADDRESS,
                port=server.server_address[1],
                cert_path=cert_path,
                key_path=key_path,
                tls=tls,
            )
        finally:
            service.stop()
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)
