"""A fake HashiCorp Vault: TLS certificate login and KV version 2 reads over HTTPS on loopback.

It answers what Quipu asks of a Vault, in the shapes of Vault's HTTP API documentation:
``POST /v1/auth/cert/login`` (the TLS certificate auth method: the client certificate the
TLS handshake verified against the client CA is the login; without one, 403) answers
``auth.client_token``; ``GET /v1/{mount}/data/{path}`` with ``X-Vault-Token`` answers
``data.data`` and ``data.metadata``, 404 for a path that holds no secret, 403 for a path
the token's policy denies or without a valid token.

Switches turn on the faults a real Vault shows: a refused login, HTTP 500 (a sealed or
broken Vault), and cut-off JSON.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import secrets
import tempfile
import threading
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from quipu.lab.https import (
    FakeService,
    Reply,
    Request,
    json_reply,
    serving,
    write_certificate,
    write_client_certificate,
)

DENIED = ["1 error occurred:\n\t* permission denied\n\n"]
LEASE_S = 2764800


class FakeVault(FakeService):
    """Secrets by mount point and path; tokens issued by certificate logins."""

    name = "fake vault"

    def __init__(self, *, mounts: tuple[str, ...] = ("secret",), latency_s: float = 0.0) -> None:
        super().__init__(latency_s=latency_s)
        self.mounts = set(mounts)
        self._secrets: dict[tuple[str, str], tuple[dict[str, Any], str, int]] = {}
        self._denied: set[tuple[str, str]] = set()
        self._tokens: set[str] = set()
        self._guard = threading.Lock()
        self.refuse_login = False
        """Every login answers 403, as when no cert role trusts the certificate."""
        self.server_error = False
        """Every request answers 500."""
        self.malformed = False
        """Every answer is cut-off JSON."""
        self.logins = 0

    def put_secret(self, path: str, data: Mapping[str, Any], *, mount: str = "secret") -> None:
        """Store ``data`` at ``mount``/``path`` (a new version when it exists)."""
        key = (mount, path.strip("/"))
        with self._guard:
            version = self._secrets[key][2] + 1 if key in self._secrets else 1
            created = datetime.datetime.now(datetime.UTC).isoformat().replace("+00:00", "Z")
            self._secrets[key] = (dict(data), created, version)

    def deny(self, path: str, *, mount: str = "secret") -> None:
        """The token's policy does not allow reading ``mount``/``path``."""
        with self._guard:
            self._denied.add((mount, path.strip("/")))

    def route(self, request: Request) -> Reply:
        if self.server_error:
            return json_reply(500, {"errors": ["internal error"]})
        reply = self._answer(request)
        if self.malformed:
            return Reply(reply.status, reply.body[: max(1, len(reply.body) // 2)])
        return reply

    def _answer(self, request: Request) -> Reply:
        if request.method == "POST" and request.path == "/v1/auth/cert/login":
            return self._login(request)
        parts = request.path.split("/")
        # /v1/{mount}/data/{path...}
        if request.method == "GET" and len(parts) >= 5 and parts[1] == "v1" and parts[3] == "data":
            return self._read(request, mount=parts[2], path="/".join(parts[4:]))
        return json_reply(404, {"errors": [f"no handler for route {request.path.lstrip('/')!r}"]})

    def _login(self, request: Request) -> Reply:
        certificate = request.client_certificate
        if certificate is None or self.refuse_login:
            return json_reply(403, {"errors": ["permission denied"]})
        common_name = next(
            (
                value
                for rdn in certificate.get("subject", ())
                for key, value in rdn
                if key == "commonName"
            ),
            "",
        )
        token = f"hvs.{secrets.token_urlsafe(18)}"
        with self._guard:
            self._tokens.add(token)
            self.logins += 1
        return json_reply(
            200,
            {
                "request_id": str(uuid.uuid4()),
                "lease_id": "",
                "renewable": False,
                "lease_duration": 0,
                "data": None,
                "wrap_info": None,
                "warnings": None,
                "auth": {
                    "client_token": token,
                    "accessor": secrets.token_urlsafe(18),
                    "policies": ["default", "quipu"],
                    "token_policies": ["default", "quipu"],
                    "metadata": {"cert_name": "quipu", "common_name": common_name},
                    "lease_duration": LEASE_S,
                    "renewable": True,
                    "entity_id": str(uuid.uuid4()),
                    "token_type": "service",
                    "orphan": True,
                },
            },
        )

    def _read(self, request: Request, *, mount: str, path: str) -> Reply:
        with self._guard:
            valid = request.headers.get("X-Vault-Token") in self._tokens
            denied = (mount, path) in self._denied
            stored = self._secrets.get((mount, path))
        if not valid or denied:
            return json_reply(403, {"errors": DENIED})
        if mount not in self.mounts:
            return json_reply(404, {"errors": [f"no handler for route '{mount}/data/{path}'"]})
        if stored is None:
            return json_reply(404, {"errors": []})
        data, created, version = stored
        return json_reply(
            200,
            {
                "request_id": str(uuid.uuid4()),
                "lease_id": "",
                "renewable": False,
                "lease_duration": 0,
                "data": {
                    "data": data,
                    "metadata": {
                        "created_time": created,
                        "custom_metadata": None,
                        "deletion_time": "",
                        "destroyed": False,
                        "version": version,
                    },
                },
                "wrap_info": None,
                "warnings": None,
                "auth": None,
            },
        )


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class RunningVault:
    """A fake Vault that is up, and the files a client logs in to it with."""

    host: str
    port: int
    ca_cert_path: Path
    """The Vault's own (self-signed) server certificate: the CA a client verifies it with."""
    client_cert_path: Path
    client_key_path: Path
    """Quipu's client certificate (signed by the client CA the Vault trusts) and its key."""
    vault: FakeVault


@contextlib.contextmanager
def running_vault(
    *, port: int = 0, directory: Path | None = None, common_name: str = "quipu"
) -> Iterator[RunningVault]:
    """A fake Vault on ``127.0.0.1:port`` (0: any free port), stopped on exit; the client
    certificate and key (and a copy of the server certificate) are written to ``directory``
    (default: a temporary one, removed on exit)."""
    with contextlib.ExitStack() as stack:
        if directory is None:
            directory = Path(
                stack.enter_context(tempfile.TemporaryDirectory(prefix="quipu-vault-"))
            )
        directory.mkdir(parents=True, exist_ok=True)
        client_ca = write_certificate(
            directory, stem="client-ca", common_name="Quipu lab client CA"
        )
        client_cert, client_key = write_client_certificate(
            directory, ca=client_ca, common_name=common_name
        )
        vault = FakeVault()
        served = stack.enter_context(serving(vault, port=port, client_ca=client_ca[0]))
        ca_cert = directory / "vault-ca.crt"
        ca_cert.write_bytes(served.cert_path.read_bytes())
        yield RunningVault(
            host=served.host,
            port=served.port,
            ca_cert_path=ca_cert,
            client_cert_path=client_cert,
            client_key_path=client_key,
            vault=vault,
        )
