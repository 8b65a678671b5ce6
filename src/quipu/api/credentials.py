"""Routes for credentials (``/api/v2/credentials/``); secrets are write-only."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from quipu.api.deps import CurrentUser, Now, StoreDep
from quipu.api.pagination import Page, Paging, page_of
from quipu.api.params import BodyId, Id
from quipu.domain.states import SourceType
from quipu.services import credentials
from quipu.store.secrets import SecretBox

router = APIRouter(prefix="/api/v2/credentials", tags=["credentials"])


def get_secrets(request: Request) -> SecretBox:
    box: SecretBox = request.app.state.secrets
    return box


SecretsDep = Annotated[SecretBox, Depends(get_secrets)]

CredType = SourceType
"""A credential's type is the type of source it is for."""
BecomeMethod = Literal["sudo", "su", "pbrun", "pfexec", "doas", "dzdo", "ksu", "runas"]
Name = Annotated[str, Field(min_length=1, max_length=64)]
SECRET_MAX = 65_536
"""Characters of a password, token or private key: a 16,384-bit RSA key takes 13,000."""
Secret = Annotated[
    str,
    Field(
        min_length=1,
        max_length=SECRET_MAX,
        json_schema_extra={"format": "password", "writeOnly": True},
    ),
]
NameQuery = Annotated[str | None, Query(description="Exact name.")]
SearchQuery = Annotated[str | None, Query(description="Names containing this text, ignoring case.")]
VaultPath = Annotated[
    str,
    Field(
        min_length=1,
        max_length=512,
        description="The login secret is read from HashiCorp Vault (KV version 2) at this "
        "path when a scan uses the credential: the auth_token of a token login (no username), "
        "else the password.",
    ),
]
VaultMount = Annotated[
    str, Field(min_length=1, max_length=255, description="KV version 2 engine; default secret.")
]
VaultKey = Annotated[
    str, Field(min_length=1, max_length=255, description="Key of the value in that secret.")
]


class CredentialCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    cred_type: CredType
    username: Annotated[str, Field(min_length=1, max_length=255)] | None = None
    password: Secret | None = None
    ssh_key: Annotated[Secret, Field(description="Private key text.")] | None = None
    ssh_passphrase: Secret | None = None
    auth_token: Secret | None = None
    become_method: BecomeMethod | None = Field(None, description="Network only; default sudo.")
    become_user: Annotated[str, Field(min_length=1, max_length=64)] | None = Field(
        None, description="Network only; default root."
    )
    become_password: Secret | None = None
    vault_secret_path: VaultPath | None = None
    vault_mount_point: VaultMount | None = None
    vault_secret_key: VaultKey | None = None


class CredentialUpdate(BaseModel):
    """A partial edit; a secret given as null is cleared."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    cred_type: CredType | None = None
    username: Annotated[str, Field(min_length=1, max_length=255)] | None = None
    password: Secret | None = None
    ssh_key: Secret | None = None
    ssh_passphrase: Secret | None = None
    auth_token: Secret | None = None
    become_method: BecomeMethod | None = None
    become_user: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    become_password: Secret | None = None
    vault_secret_path: VaultPath | None = None
    vault_mount_point: VaultMount | None = None
    vault_secret_key: VaultKey | None = None


class RefPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str


class CredentialPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    cred_type: str
    username: str | None
    become_method: str | None
    become_user: str | None
    has_password: bool
    has_ssh_key: bool
    has_ssh_passphrase: bool
    has_auth_token: bool
    has_become_password: bool
    auth_type: str
    sources: list[RefPublic]
    created_at: datetime
    updated_at: datetime
    vault_mount_point: str | None
    vault_secret_key: str | None
    vault_secret_path: str | None
    # The established server's field for key files on its own disk; Quipu has none.
    ssh_keyfile: None = None


class BulkDelete(BaseModel):
    ids: list[BodyId] | Literal["all"] = Field(description='Ids to delete, or "all".')

    @field_validator("ids", mode="before")
    @classmethod
    def _ids(cls, value: Any) -> Any:
        if value == "all":
            return value
        if (
            not isinstance(value, list)
            or not value
            or not all(isinstance(i, int) and not isinstance(i, bool) for i in value)
        ):
            raise PydanticCustomError("ids", 'give a non-empty list of ids, or "all"')
        return value


class SkippedPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    reason: str


class BulkDeletedPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    message: str
    deleted: list[int]
    skipped: list[SkippedPublic]
    missing: list[int]


class SkippedCredentialPublic(SkippedPublic):
    """A credential left alone, also as the established server names it."""

    credential: int
    sources: list[int] = Field(description="Ids of the sources using it.")


class CredentialsBulkDeletedPublic(BulkDeletedPublic):
    skipped: list[SkippedCredentialPublic]  # type: ignore[assignment]


def credentials_bulk_public(result: credentials.BulkDeleted) -> CredentialsBulkDeletedPublic:
    skipped = [
        SkippedCredentialPublic(
            id=s.id, name=s.name, reason=s.reason, credential=s.id, sources=list(s.users)
        )
        for s in result.skipped
    ]
    return CredentialsBulkDeletedPublic(
        message=result.message, deleted=result.deleted, skipped=skipped, missing=result.missing
    )


@router.get("/")
def list_credentials(
    request: Request,
    store: StoreDep,
    user: CurrentUser,
    paging: Paging,
    name: NameQuery = None,
    search_by_name: SearchQuery = None,
    cred_type: CredType | None = None,
) -> Page[CredentialPublic]:
    """List credentials, ordered by name."""
    count, views = credentials.list_credentials(
        store,
        name=name,
        search_by_name=search_by_name,
        cred_type=cred_type,
        offset=paging.offset,
        limit=paging.page_size,
    )
    results = [CredentialPublic.model_validate(v) for v in views]
    return page_of(request, params=paging, count=count, results=results)


@router.post("/", status_code=201)
def add_credential(
    body: CredentialCreate, store: StoreDep, box: SecretsDep, user: CurrentUser, now: Now
) -> CredentialPublic:
    """Add a credential."""
    fields = credentials.CredentialFields(**dict(body))
    view = credentials.add_credential(store, box=box, fields=fields, now=now)
    return CredentialPublic.model_validate(view)


@router.post("/bulk_delete/")
def bulk_delete_credentials(
    body: BulkDelete, store: StoreDep, user: CurrentUser
) -> CredentialsBulkDeletedPublic:
    """Delete several credentials; those used by a source are skipped."""
    return credentials_bulk_public(credentials.bulk_delete_credentials(store, ids=body.ids))


@router.get("/{credential_id}/")
def get_credential(credential_id: Id, store: StoreDep, user: CurrentUser) -> CredentialPublic:
    """Show one credential."""
    view = credentials.get_credential(store, credential_id=credential_id)
    return CredentialPublic.model_validate(view)


@router.put("/{credential_id}/")
def replace_credential(
    credential_id: Id,
    body: CredentialCreate,
    store: StoreDep,
    box: SecretsDep,
    user: CurrentUser,
    now: Now,
) -> CredentialPublic:
    """Replace a credential; secrets left out are kept."""
    given = body.model_fields_set
    changes = {k: v for k, v in body if k not in credentials.SECRET_FIELDS or k in given}
    view = credentials.edit_credential(
        store, box=box, credential_id=credential_id, changes=changes, now=now
    )
    return CredentialPublic.model_validate(view)


@router.patch("/{credential_id}/")
def edit_credential(
    credential_id: Id,
    body: CredentialUpdate,
    store: StoreDep,
    box: SecretsDep,
    user: CurrentUser,
    now: Now,
) -> CredentialPublic:
    """Change some fields of a credential."""
    changes = {k: getattr(body, k) for k in body.model_fields_set}
    view = credentials.edit_credential(
        store, box=box, credential_id=credential_id, changes=changes, now=now
    )
    return CredentialPublic.model_validate(view)


@router.delete("/{credential_id}/", status_code=204)
def delete_credential(credential_id: Id, store: StoreDep, user: CurrentUser) -> None:
    """Delete a credential no source uses."""
    credentials.delete_credential(store, credential_id=credential_id)
