"""The HashiCorp Vault that holds credentials' secrets: its configuration (one per server).

Reading a secret from it is ``services.vault_secrets``.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import logging
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy import select
from sqlalchemy.orm import Session

from quipu.domain.errors import Conflict, InvalidInput, NotFound
from quipu.store import Store
from quipu.store.secrets import SecretBox
from quipu.store.tables import Credential, Vault

log = logging.getLogger(__name__)

DEFAULT_PORT = 8200
DEFAULT_MOUNT_POINT = "secret"
TIMEOUT_S = 5.0
"""Per request to Vault: a claim waits on it, and the scanner's claim call gives up at 30 s."""
NOT_CONFIGURED = "No HashiCorp Vault is configured: add one with `qpc vault add`."


class VaultUnavailable(Exception):
    """A secret could not be read from Vault; ``str()`` is the operator's sentence."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class VaultFields:
    """A Vault as written by an operator: PEM texts, the client key in plain text."""

    address: str
    port: int = DEFAULT_PORT
    ssl_verify: bool = True
    ca_cert: str | None = None
    client_cert: str
    client_key: str = dataclasses.field(repr=False)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class VaultView:
    """A Vault as shown: never the client key, nor the certificates' text."""

    address: str
    port: int
    ssl_verify: bool
    has_ca_cert: bool
    client_cert_subject: str
    client_cert_not_after: datetime
    created_at: datetime
    updated_at: datetime


def pem_text(value: str, *, field: str) -> str:
    """A PEM text given as is or base64-encoded (as the established client sends files)."""
    text = value.strip()
    if text.startswith("-----BEGIN"):
        return text + "\n"
    try:
        decoded = base64.b64decode(text, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise InvalidInput(
            f"{field} must be a PEM file's text, or that text base64-encoded.", field=field
        ) from None
    if not decoded.lstrip().startswith("-----BEGIN"):
        raise InvalidInput(f"{field} is not a PEM file (no -----BEGIN line).", field=field)
    return decoded.strip() + "\n"


def checked(fields: VaultFields) -> VaultFields:
    """``fields`` with PEM texts decoded, or InvalidInput naming the field that is wrong."""
    address = fields.address.strip()
    if not address:
        raise InvalidInput("address cannot be blank.", field="address")
    if "://" in address or "/" in address or " " in address:
        raise InvalidInput(
            f"address must be a host name or IP address, without scheme or path (got {address!r}).",
            field="address",
        )
    if not 1 <= fields.port <= 65535:
        raise InvalidInput(f"port must be 1 to 65535 (got {fields.port}).", field="port")
    cert_text = pem_text(fields.client_cert, field="client_cert")
    key_text = pem_text(fields.client_key, field="client_key")
    ca_text = None if fields.ca_cert is None else pem_text(fields.ca_cert, field="ca_cert")
    cert = _certificate(cert_text, field="client_cert")
    try:
        key = serialization.load_pem_private_key(key_text.encode(), password=None)
    except (ValueError, TypeError) as error:
        raise InvalidInput(
            f"client_key is not an unencrypted PEM private key ({error}).", field="client_key"
        ) from None
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(
        serialization.Encoding.PEM, public
    ) != cert.public_key().public_bytes(serialization.Encoding.PEM, public):
        raise InvalidInput(
            "client_key does not belong to client_cert: give the key of that certificate.",
            field="client_key",
        )
    if ca_text is not None:
        try:
            x509.load_pem_x509_certificates(ca_text.encode())
        except ValueError as error:
            raise InvalidInput(
                f"ca_cert is not a PEM certificate bundle ({error}).", field="ca_cert"
            ) from None
    return dataclasses.replace(
        fields, address=address, client_cert=cert_text, client_key=key_text, ca_cert=ca_text
    )


def _certificate(text: str, *, field: str) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(text.encode())
    except ValueError as error:
        raise InvalidInput(f"{field} is not a PEM certificate ({error}).", field=field) from None


def set_vault(
    store: Store, *, box: SecretBox, fields: VaultFields, now: datetime
) -> tuple[VaultView, bool]:
    """Configure the Vault (replacing the one configured); the view, and whether it is new."""
    fields = checked(fields)
    with store.transaction() as s:
        row = s.get(Vault, 1)
        created = row is None
        if row is None:
            row = Vault(id=1, created_at=now)
            s.add(row)
        row.address = fields.address
        row.port = fields.port
        row.ssl_verify = fields.ssl_verify
        row.ca_cert = fields.ca_cert
        row.client_cert = fields.client_cert
        row.client_key_enc = box.encrypt(fields.client_key)
        row.updated_at = now
        s.flush()
        view = _view(row)
    log.info(
        "HashiCorp Vault %s:%s %s", view.address, view.port, "added" if created else "replaced"
    )
    return view, created


def get_vault(store: Store) -> VaultView:
    with store.transaction() as s:
        row = s.get(Vault, 1)
        if row is None:
            raise NotFound(NOT_CONFIGURED)
        return _view(row)


def clear_vault(store: Store) -> None:
    """Forget the Vault; refused while a credential names a secret in it."""
    with store.transaction() as s:
        row = s.get(Vault, 1)
        if row is None:
            raise NotFound(NOT_CONFIGURED)
        users = list(
            s.scalars(
                select(Credential.name)
                .where(Credential.vault_secret_path.is_not(None))
                .order_by(Credential.name)
            )
        )
        if users:
            names = ", ".join(f'"{n}"' for n in users)
            noun = "credential" if len(users) == 1 else "credentials"
            raise Conflict(
                f"The HashiCorp Vault cannot be cleared: {noun} {names} "
                f"{'takes its secret' if len(users) == 1 else 'take their secrets'} from it; "
                "edit or remove them first."
            )
        s.delete(row)
    log.info("HashiCorp Vault cleared")


def is_configured(s: Session) -> bool:
    return s.get(Vault, 1) is not None


def load_fields(s: Session, *, box: SecretBox) -> VaultFields | None:
    """The configured Vault with its client key opened (for reading secrets), or None."""
    row = s.get(Vault, 1)
    if row is None:
        return None
    return VaultFields(
        address=row.address,
        port=row.port,
        ssl_verify=row.ssl_verify,
        ca_cert=row.ca_cert,
        client_cert=row.client_cert,
        client_key=box.decrypt(row.client_key_enc),
    )


def _view(row: Vault) -> VaultView:
    cert = x509.load_pem_x509_certificate(row.client_cert.encode())
    return VaultView(
        address=row.address,
        port=row.port,
        ssl_verify=row.ssl_verify,
        has_ca_cert=row.ca_cert is not None,
        client_cert_subject=cert.subject.rfc4514_string(),
        client_cert_not_after=cert.not_valid_after_utc,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )
