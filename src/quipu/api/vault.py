"""Routes for the HashiCorp Vault that holds secrets (``/api/v2/auth/hashicorp-vault/``).

One Vault or none, at the established server's path. Certificates and the key are sent as
PEM text, or base64-encoded PEM as the established client sends files; the key is never
returned.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from quipu.api.credentials import SecretsDep
from quipu.api.deps import CurrentUser, Now, StoreDep
from quipu.services import vault

router = APIRouter(prefix="/api/v2/auth/hashicorp-vault", tags=["vault"])

Pem = Annotated[str, Field(min_length=1, description="PEM text, or base64-encoded PEM.")]


class VaultSet(BaseModel):
    model_config = ConfigDict(extra="forbid")

    address: Annotated[str, Field(min_length=1, max_length=255, description="Host or IP.")]
    port: Annotated[int, Field(ge=1, le=65535)] = vault.DEFAULT_PORT
    ssl_verify: bool = Field(True, description="Check Vault's certificate (with ca_cert).")
    ca_cert: Pem | None = Field(None, description="CA of Vault's certificate; default: system.")
    client_cert: Pem = Field(description="Certificate for Vault's TLS certificate auth method.")
    client_key: Annotated[
        str, Field(min_length=1, json_schema_extra={"format": "password", "writeOnly": True})
    ] = Field(description="The client certificate's private key (stored encrypted).")


class VaultPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    address: str
    port: int
    ssl_verify: bool
    has_ca_cert: bool
    client_cert_subject: str
    client_cert_not_after: datetime
    created_at: datetime
    updated_at: datetime


@router.get("/")
def show_vault(store: StoreDep, user: CurrentUser) -> VaultPublic:
    """Show the HashiCorp Vault (404 when none is configured)."""
    return VaultPublic.model_validate(vault.get_vault(store))


@router.post("/", status_code=201)
@router.put("/", status_code=201)
def set_vault(
    body: VaultSet,
    store: StoreDep,
    box: SecretsDep,
    user: CurrentUser,
    now: Now,
    response: Response,
) -> VaultPublic:
    """Configure the HashiCorp Vault (201), or replace the one configured (200)."""
    fields = vault.VaultFields(**dict(body))
    view, created = vault.set_vault(store, box=box, fields=fields, now=now)
    response.status_code = 201 if created else 200
    return VaultPublic.model_validate(view)


@router.delete("/", status_code=204)
def clear_vault(store: StoreDep, user: CurrentUser) -> None:
    """Forget the HashiCorp Vault; refused (409) while a credential takes a secret from it."""
    vault.clear_vault(store)
