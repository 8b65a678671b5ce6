"""Reading credentials' secrets from HashiCorp Vault when a job is handed to a scanner.

Quipu logs in to Vault with the TLS certificate auth method (``POST /v1/auth/cert/login``
with its client certificate, which answers ``auth.client_token``) and reads secrets from
the KV version 2 engine (``GET /v1/{mount}/data/{path}`` with ``X-Vault-Token``; the value
is ``data.data[key]``). A secret read from Vault lives in memory only, for the one claim
that needs it: nothing is written to disk, not even the client key (it reaches OpenSSL
through an in-memory file).

Every failure is a :class:`VaultUnavailable` whose sentence says which Vault, what it
answered and what to check, for the status message of the scanner job it fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import ssl
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from quipu import wire
from quipu.services.credentials import vault_stands_for
from quipu.services.vault import (
    DEFAULT_MOUNT_POINT,
    NOT_CONFIGURED,
    TIMEOUT_S,
    VaultFields,
    VaultUnavailable,
)
from quipu.store.tables import Credential


@contextlib.contextmanager
def _in_memory_file(data: bytes) -> Iterator[str]:
    """A path OpenSSL can read ``data`` from, kept off the disk where the system allows."""
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("quipu-vault", os.MFD_CLOEXEC)
        try:
            os.write(fd, data)
            yield f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)
        return
    with tempfile.NamedTemporaryFile() as f:  # pragma: no cover - systems without memfd
        f.write(data)
        f.flush()
        yield f.name


def tls_context(fields: VaultFields) -> ssl.SSLContext:
    """The TLS set-up that presents Quipu's client certificate and checks Vault's."""
    context = ssl.create_default_context(cadata=fields.ca_cert)
    if not fields.ssl_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    with (
        _in_memory_file(fields.client_cert.encode()) as cert,
        _in_memory_file(fields.client_key.encode()) as key,
    ):
        context.load_cert_chain(certfile=cert, keyfile=key)
    return context


class VaultReader:
    """Reads KV v2 secrets from one Vault for one claim (closed right after): logs in once,
    and answers a secret asked again, or a failure met again, from memory."""

    def __init__(self, fields: VaultFields, *, timeout_s: float = TIMEOUT_S) -> None:
        self.where = f"{fields.address}:{fields.port}"
        self._client = httpx.Client(
            base_url=f"https://{fields.address}:{fields.port}",
            verify=tls_context(fields),
            timeout=timeout_s,
            trust_env=False,
        )
        self._token: str | None = None
        self._secrets: dict[tuple[str, str], dict[str, Any] | VaultUnavailable] = {}
        self._login_failure: VaultUnavailable | None = None
        """A failed login is not tried again by this reader: one slow Vault costs one wait."""

    def close(self) -> None:
        self._client.close()
        self._secrets.clear()

    def __enter__(self) -> VaultReader:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def read(self, *, mount_point: str, path: str, key: str) -> str:
        """The value of ``key`` in the secret at ``mount_point``/``path``."""
        location = f"{mount_point}/data/{path.strip('/')}"
        data = self._secrets.get((mount_point, path))
        if data is None:
            try:
                data = self._read_secret(location)
            except VaultUnavailable as error:
                data = error
            self._secrets[(mount_point, path)] = data
        if isinstance(data, VaultUnavailable):
            raise data
        if key not in data:
            known = ", ".join(repr(k) for k in sorted(data)) or "none"
            raise VaultUnavailable(
                f"The secret at {location} in Vault {self.where} has no key {key!r} "
                f"(its keys: {known}); check the credential's vault_secret_key."
            )
        value = data[key]
        if not isinstance(value, str) or not value:
            raise VaultUnavailable(
                f"The secret at {location} in Vault {self.where} holds no text under key "
                f"{key!r}; store the secret there as a string."
            )
        return value

    def _login(self) -> str:
        if self._token is not None:
            return self._token
        if self._login_failure is not None:
            raise self._login_failure
        try:
            self._token = self._new_token()
        except VaultUnavailable as error:
            self._login_failure = error
            raise
        return self._token

    def _new_token(self) -> str:
        response = self._send("POST", "/v1/auth/cert/login", what="the login")
        if response.status_code in (401, 403):
            raise VaultUnavailable(
                f"Vault {self.where} refused the login (HTTP {response.status_code}): check "
                "that its cert auth method trusts Quipu's client certificate "
                "(`qpc vault show`)."
            )
        body = self._json(response, what="the login")
        token = (body.get("auth") or {}).get("client_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise VaultUnavailable(
                f"Vault {self.where} answered the login without auth.client_token; "
                "check that the address and port are Vault's."
            )
        return token

    def _read_secret(self, location: str) -> dict[str, Any]:
        token = self._login()
        response = self._send(
            "GET", f"/v1/{location}", what=f"reading {location}", headers={"X-Vault-Token": token}
        )
        if response.status_code == 404:
            raise VaultUnavailable(
                f"Vault {self.where} has no secret at {location}: check the credential's "
                "vault_mount_point and vault_secret_path (a KV version 2 engine)."
            )
        if response.status_code in (401, 403):
            raise VaultUnavailable(
                f"Vault {self.where} refused reading {location} (HTTP "
                f"{response.status_code}): the policy of Quipu's certificate must allow "
                "read on that path."
            )
        body = self._json(response, what=f"reading {location}")
        data = (body.get("data") or {}).get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict):
            raise VaultUnavailable(
                f"Vault {self.where} answered reading {location} without data.data; check "
                f"that {location.split('/')[0]!r} is a KV version 2 engine."
            )
        return data

    def _send(
        self, method: str, path: str, *, what: str, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        try:
            response = self._client.request(method, path, headers=headers)
        except httpx.TransportError as error:
            raise self._unavailable(error, what=what) from None
        if response.status_code >= 500:
            raise VaultUnavailable(
                f"Vault {self.where} failed {what} (HTTP {response.status_code}); "
                "check Vault's log (is it sealed?)."
            )
        return response

    def _unavailable(self, error: httpx.TransportError, *, what: str) -> VaultUnavailable:
        """The sentence for a request that got no HTTP answer."""
        reason = _reason(error)
        if "ALERT" in reason.upper():
            # Vault's TLS end refused the client certificate (signed by a CA it does not trust).
            return VaultUnavailable(
                f"Vault {self.where} refused Quipu's client certificate in the TLS handshake "
                f"for {what} ({reason}): check that Vault trusts the CA that signed it."
            )
        if isinstance(error, httpx.ConnectError) and (
            "CERTIFICATE" in reason.upper() or "SSL" in reason.upper()
        ):
            return VaultUnavailable(
                f"Vault {self.where} failed the TLS handshake for {what} ({reason}): "
                "check its CA certificate and ssl_verify (`qpc vault add`)."
            )
        if isinstance(error, httpx.ConnectError):
            return VaultUnavailable(
                f"Vault {self.where} cannot be reached for {what} ({reason}): check the "
                "address and port (`qpc vault show`) and that Vault is running."
            )
        if isinstance(error, httpx.TimeoutException):
            return VaultUnavailable(
                f"Vault {self.where} did not answer {what} within {self._client.timeout.read} "
                "seconds."
            )
        return VaultUnavailable(f"Vault {self.where} failed {what} ({reason}).")

    def _json(self, response: httpx.Response, *, what: str) -> Any:
        if response.status_code != 200:
            raise VaultUnavailable(
                f"Vault {self.where} answered {what} with HTTP {response.status_code}."
            )
        try:
            return response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise VaultUnavailable(
                f"Vault {self.where} answered {what} with a body that is not JSON; check "
                "that the address and port are Vault's."
            ) from None


def _reason(error: Exception) -> str:
    return str(error) or type(error).__name__


@dataclass(frozen=True, slots=True)
class VaultRef:
    """Where a credential's secret lives in HashiCorp Vault, and which field it fills."""

    mount_point: str
    path: str
    key: str
    field: str
    """``password`` or ``auth_token``."""


def reference(c: Credential) -> VaultRef | None:
    """Where ``c`` takes its secret from in Vault; None when it keeps it itself."""
    if c.vault_secret_path is None:
        return None
    return VaultRef(
        mount_point=c.vault_mount_point or DEFAULT_MOUNT_POINT,
        path=c.vault_secret_path,
        key=c.vault_secret_key or "",
        field=vault_stands_for(cred_type=c.cred_type, username=c.username),
    )


def fill(
    credentials: Mapping[int, wire.Credential],
    refs: Mapping[int, VaultRef],
    *,
    fields: VaultFields | None,
) -> tuple[dict[int, wire.Credential], dict[int, str]]:
    """Read each Vault-held secret once (in memory only): the credentials with their secrets,
    and the credentials whose secret could not be read, with the reason (which becomes the
    error message of the scanner jobs that use them)."""
    filled = dict(credentials)
    failures: dict[int, str] = {}
    reader: VaultReader | None = None
    try:
        for credential_id, ref in refs.items():
            credential = credentials[credential_id]
            try:
                if fields is None:
                    raise VaultUnavailable(
                        f'Credential "{credential.name}" takes its secret from '
                        f"HashiCorp Vault, but none is configured: {NOT_CONFIGURED}"
                    )
                if reader is None:
                    reader = VaultReader(fields)
                secret = reader.read(mount_point=ref.mount_point, path=ref.path, key=ref.key)
                filled[credential_id] = credential.model_copy(update={ref.field: secret})
            except VaultUnavailable as error:
                failures[credential_id] = (
                    f'Credential "{credential.name}": {error}' if fields is not None else str(error)
                )
            except (ssl.SSLError, ValueError, OSError) as error:
                failures[credential_id] = (
                    f'Credential "{credential.name}": the client certificate or key of '
                    f"the HashiCorp Vault cannot be used ({error}); add it again with "
                    "`qpc vault add`."
                )
    finally:
        if reader is not None:
            reader.close()
    return filled, failures
