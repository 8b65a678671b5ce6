"""Credential use cases: add, edit, read, list and delete, with secrets encrypted at rest."""

from __future__ import annotations

import dataclasses
import logging
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, TypeVar

import asyncssh
from sqlalchemy import ColumnElement, Select, delete, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from quipu.domain.errors import InUse, InvalidInput, NotFound
from quipu.domain.source_types import Auth, rules_of, source_type_of
from quipu.domain.states import SCAN_JOB_FINAL
from quipu.services import vault
from quipu.store import Store
from quipu.store.secrets import SecretBox
from quipu.store.tables import Credential, Scan, ScanJob, Source, SourceCredential, Task

log = logging.getLogger(__name__)

T = TypeVar("T")

BECOME_METHODS = ("sudo", "su", "pbrun", "pfexec", "doas", "dzdo", "ksu", "runas")
DEFAULT_BECOME_METHOD = "sudo"
DEFAULT_BECOME_USER = "root"
VAULT_STAND_IN = "(held in vault)"
"""Stands in for a Vault-held secret while a type's rules are checked; never stored."""
SECRET_FIELDS = ("password", "ssh_key", "ssh_passphrase", "auth_token", "become_password")
VAULT_FIELDS = ("vault_secret_path", "vault_mount_point", "vault_secret_key")
NETWORK_ONLY_FIELDS = (
    "ssh_key",
    "ssh_passphrase",
    "become_method",
    "become_user",
    "become_password",
)


@dataclass(frozen=True, slots=True)
class Ref:
    """Another object named in a view: its id and name."""

    id: int
    name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CredentialFields:
    """A credential as written by an operator, secrets in plain text (never returned)."""

    name: str
    cred_type: str
    username: str | None = None
    password: str | None = None
    ssh_key: str | None = None
    ssh_passphrase: str | None = None
    auth_token: str | None = None
    become_method: str | None = None
    become_user: str | None = None
    become_password: str | None = None
    vault_secret_path: str | None = None
    """The credential's secret is held in HashiCorp Vault at this path, not by Quipu."""
    vault_mount_point: str | None = None
    vault_secret_key: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CredentialView:
    """A credential as shown: which secrets are set, never the secrets."""

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
    vault_secret_path: str | None
    vault_mount_point: str | None
    vault_secret_key: str | None
    sources: list[Ref]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Skipped:
    """An object a bulk delete left alone, and why."""

    id: int
    name: str
    reason: str
    users: tuple[int, ...] = ()
    """The ids of the objects that use it (sources of a credential, scans of a source)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class BulkDeleted:
    deleted: list[int]
    skipped: list[Skipped]
    missing: list[int]
    """Ids asked for that do not exist."""
    message: str


AllOrIds = Literal["all"] | Sequence[int]


def add_credential(
    store: Store, *, box: SecretBox, fields: CredentialFields, now: datetime
) -> CredentialView:
    fields = checked(fields)
    with store.transaction() as s:
        _check_name_free(s, name=fields.name)
        _check_vault_configured(s, fields=fields)
        row = Credential(created_at=now, updated_at=now)
        _write(row, fields=fields, box=box)
        s.add(row)
        s.flush()
        view = _views(s, rows=[row])[0]
    log.info("credential %s (%s) added", view.id, view.name)
    return view


def edit_credential(
    store: Store,
    *,
    box: SecretBox,
    credential_id: int,
    changes: Mapping[str, Any],
    now: datetime,
) -> CredentialView:
    """Apply ``changes`` (field -> value; a secret set to None is cleared) to a credential.

    On a network credential, a new password replaces the SSH key (and its passphrase) and a
    new SSH key replaces the password, so switching the way of logging in is one edit; the
    same holds for a password and an auth token on the other types; a Vault secret path
    replaces the secret held by Quipu, and a new secret replaces the Vault secret path.
    """
    unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(CredentialFields)})
    if unknown:
        raise InvalidInput(f"Unknown credential field: {', '.join(unknown)}.", field=unknown[0])
    with store.transaction() as s:
        row = _get(s, credential_id=credential_id)
        current = _read(row, box=box)
        if "cred_type" in changes and changes["cred_type"] != current.cred_type:
            raise InvalidInput(
                f'cred_type cannot be changed (credential "{row.name}" is {row.cred_type}); '
                "add a new credential instead.",
                field="cred_type",
            )
        fields = checked(dataclasses.replace(current, **_switched(current, changes=changes)))
        if fields.name != row.name:
            _check_name_free(s, name=fields.name)
        if fields.vault_secret_path != row.vault_secret_path:
            _check_vault_configured(s, fields=fields)
        _write(row, fields=fields, box=box)
        row.updated_at = now
        s.flush()
        view = _views(s, rows=[row])[0]
    log.info("credential %s (%s) edited", view.id, view.name)
    return view


def get_credential(store: Store, *, credential_id: int) -> CredentialView:
    with store.transaction() as s:
        return _views(s, rows=[_get(s, credential_id=credential_id)])[0]


def list_credentials(
    store: Store,
    *,
    name: str | None = None,
    search_by_name: str | None = None,
    cred_type: str | None = None,
    offset: int = 0,
    limit: int = 100,
) -> tuple[int, list[CredentialView]]:
    """One page of credentials ordered by name, and how many match in all."""
    conditions = name_filters(Credential.name, name=name, search_by_name=search_by_name)
    if cred_type is not None:
        conditions.append(Credential.cred_type == cred_type)
    with store.transaction() as s:
        count, rows = page(
            s,
            query=select(Credential),
            order=Credential.name,
            conditions=conditions,
            offset=offset,
            limit=limit,
        )
        return count, _views(s, rows=rows)


def delete_credential(store: Store, *, credential_id: int) -> None:
    with store.transaction() as s:
        row = _get(s, credential_id=credential_id)
        users = [name for _, name in _users(s, ids=[row.id]).get(row.id, [])]
        if users:
            raise InUse(
                f'Credential "{row.name}" is used by {quoted_names("source", names=users)}; '
                f"remove it from {'them' if len(users) > 1 else 'that source'} first."
            )
        jobs = _jobs_using(s, ids=[row.id]).get(row.id)
        if jobs:
            raise InUse(
                f'Credential "{row.name}" is used by {_jobs_named(jobs)}, which started with it; '
                "cancel it or let it end first."
            )
        s.delete(row)
    log.info("credential %s deleted", credential_id)


def bulk_delete_credentials(store: Store, *, ids: AllOrIds) -> BulkDeleted:
    """Delete the credentials no source uses; the others are skipped, naming their sources."""
    with store.transaction() as s:
        found, missing = find_ids(s, model=Credential, ids=ids)
        users = _users(s, ids=list(found))
        jobs = _jobs_using(s, ids=[i for i in found if i not in users])
        skipped = [
            Skipped(
                id=i,
                name=found[i],
                reason=f"used by {quoted_names('source', names=[n for _, n in users[i]])}",
                users=tuple(sorted(u for u, _ in users[i])),
            )
            for i in found
            if i in users
        ] + [Skipped(id=i, name=found[i], reason=f"used by {_jobs_named(jobs[i])}") for i in jobs]
        deleted = [i for i in found if i not in users and i not in jobs]
        if deleted:
            s.execute(delete(Credential).where(Credential.id.in_(deleted)))
    log.info("credentials %s deleted", deleted)
    return bulk_result(noun="credentials", deleted=deleted, skipped=skipped, missing=missing)


def _jobs_using(s: Session, *, ids: Iterable[int]) -> dict[int, list[int]]:
    """The scan jobs not yet ended whose tasks use each of ``ids``, by credential id: a job
    keeps the credentials it started with (a source edited since does not free them)."""
    wanted = set(ids)
    using: dict[int, list[int]] = {}
    if not wanted:
        return using
    rows = s.execute(
        select(Task.scan_job_id, Task.source)
        .join(ScanJob, ScanJob.id == Task.scan_job_id)
        .where(ScanJob.status.not_in([st.value for st in SCAN_JOB_FINAL]))
        .order_by(Task.scan_job_id)
    )
    for job_id, source in rows:
        for credential_id in wanted & set(source.get("credential_ids") or []):
            if job_id not in using.setdefault(credential_id, []):
                using[credential_id].append(job_id)
    return using


def _jobs_named(job_ids: Sequence[int]) -> str:
    plural = "scan job" if len(job_ids) == 1 else "scan jobs"
    return f"{plural} " + ", ".join(str(i) for i in job_ids)


def checked(fields: CredentialFields) -> CredentialFields:
    """``fields`` with the defaults of its type, or InvalidInput naming what is wrong."""
    auth = rules_of(source_type_of(fields.cred_type, field="cred_type")).auth
    check_name(fields.name)
    for secret in (*SECRET_FIELDS, *VAULT_FIELDS):
        if getattr(fields, secret) == "":
            raise InvalidInput(f"{secret} cannot be empty.", field=secret)
    if fields.vault_secret_path is not None:
        return _checked_vault(fields, auth=auth)
    for name in ("vault_secret_key", "vault_mount_point"):
        if getattr(fields, name) is not None:
            raise InvalidInput(f"{name} is allowed only with a vault_secret_path.", field=name)
    return _checked_login(fields, auth=auth)


def _checked_login(fields: CredentialFields, *, auth: Auth) -> CredentialFields:
    if auth == Auth.SSH:
        return _checked_ssh(fields)
    return _checked_api(fields, auth=auth)


def vault_stands_for(*, cred_type: str, username: str | None) -> str:
    """Which secret a Vault-held secret is: ``auth_token`` for a token login (a type that
    takes a token, without a username), else ``password``."""
    auth = rules_of(cred_type).auth
    if auth.takes_token and (not username or not auth.takes_password):
        return "auth_token"
    return "password"


def _checked_vault(fields: CredentialFields, *, auth: Auth) -> CredentialFields:
    """A credential whose login secret is in Vault: the secret path, the key of the value in
    that secret, and the mount point (default ``secret``); never the secret itself too.

    The Vault secret stands in for the type's login secret (see :func:`vault_stands_for`),
    so every rule of the type applies as if that secret were given.
    """
    for name in ("password", "auth_token", "ssh_key", "ssh_passphrase"):
        if getattr(fields, name) is not None:
            raise InvalidInput(
                f"A credential takes its secret from Vault (vault_secret_path) or holds it "
                f"({name}), not both.",
                field=name,
            )
    if not fields.vault_secret_key:
        raise InvalidInput(
            "vault_secret_key is required with a vault_secret_path: the key of the value "
            "in that secret.",
            field="vault_secret_key",
        )
    path = fields.vault_secret_path or ""
    if path.strip("/") != path or "//" in path or " " in path:
        raise InvalidInput(
            f"vault_secret_path must be a path such as team/satellite, without leading or "
            f"trailing slashes or spaces (got {path!r}).",
            field="vault_secret_path",
        )
    mount = fields.vault_mount_point or vault.DEFAULT_MOUNT_POINT
    if "/" in mount.strip("/") or " " in mount:
        raise InvalidInput(
            f"vault_mount_point must name one KV version 2 engine, such as secret (got {mount!r}).",
            field="vault_mount_point",
        )
    stand_in = vault_stands_for(cred_type=fields.cred_type, username=fields.username)
    given: dict[str, Any] = {stand_in: VAULT_STAND_IN}
    result = _checked_login(dataclasses.replace(fields, **given), auth=auth)
    cleared: dict[str, Any] = {stand_in: None, "vault_mount_point": mount.strip("/")}
    return dataclasses.replace(result, **cleared)


def _check_vault_configured(s: Session, *, fields: CredentialFields) -> None:
    if fields.vault_secret_path is not None and not vault.is_configured(s):
        raise InvalidInput(
            "vault_secret_path needs a HashiCorp Vault, and none is configured: "
            "add one with `qpc vault add` first.",
            field="vault_secret_path",
        )


def _require_username(fields: CredentialFields) -> None:
    if not fields.username:
        raise InvalidInput("username is required.", field="username")


def _checked_ssh(fields: CredentialFields) -> CredentialFields:
    _require_username(fields)
    if fields.auth_token is not None:
        raise InvalidInput(
            "auth_token is not allowed for a network credential: use password or ssh_key.",
            field="auth_token",
        )
    if fields.password is None and fields.ssh_key is None:
        raise InvalidInput("A network credential needs a password or an ssh_key.", field="password")
    if fields.password is not None and fields.ssh_key is not None:
        raise InvalidInput(
            "A network credential takes a password or an ssh_key, not both.", field="ssh_key"
        )
    if fields.ssh_passphrase is not None and fields.ssh_key is None:
        raise InvalidInput(
            "ssh_passphrase is allowed only with an ssh_key.", field="ssh_passphrase"
        )
    if fields.ssh_key is not None:
        check_private_key(fields.ssh_key, passphrase=fields.ssh_passphrase)
    method = fields.become_method or DEFAULT_BECOME_METHOD
    if method not in BECOME_METHODS:
        raise InvalidInput(
            f"become_method must be one of {', '.join(BECOME_METHODS)} (got {method!r}).",
            field="become_method",
        )
    return dataclasses.replace(
        fields, become_method=method, become_user=fields.become_user or DEFAULT_BECOME_USER
    )


def _checked_api(fields: CredentialFields, *, auth: Auth) -> CredentialFields:
    """An API source's credential: a username and a password, a token, or either."""
    kind = fields.cred_type
    for name in NETWORK_ONLY_FIELDS:
        if getattr(fields, name) is not None:
            raise InvalidInput(
                f"{name} is allowed only for network credentials, not {kind}.", field=name
            )
    token = fields.auth_token is not None
    if token and not auth.takes_token:
        raise InvalidInput(
            f"auth_token is not allowed for a {kind} credential: "
            f"{kind} logs in with a username and a password.",
            field="auth_token",
        )
    if not auth.takes_password:
        for name in ("username", "password"):
            if getattr(fields, name):
                raise InvalidInput(
                    f"{name} is not allowed for a {kind} credential: {kind} takes an auth_token.",
                    field=name,
                )
        if not token:
            raise InvalidInput(f"A {kind} credential needs an auth_token.", field="auth_token")
        return fields
    if token:
        if fields.username or fields.password is not None:
            raise InvalidInput(
                f"A {kind} credential takes an auth_token, or a username and a password, not both.",
                field="auth_token",
            )
        return fields
    if auth.takes_token and not fields.username and fields.password is None:
        raise InvalidInput(
            f"A {kind} credential needs an auth_token, or a username and a password.",
            field="auth_token",
        )
    _require_username(fields)
    if fields.password is None:
        raise InvalidInput(f"A {kind} credential needs a password.", field="password")
    return fields


KEY_ERRORS = (asyncssh.KeyImportError, asyncssh.KeyEncryptionError)


def check_private_key(key: str, *, passphrase: str | None) -> None:
    """InvalidInput unless ``key`` is a private key that ``passphrase`` opens.

    A passphrase for a key that has none is refused too: it is most likely the wrong key.
    """
    try:
        asyncssh.import_private_key(key)
    except KEY_ERRORS as error:
        # asyncssh says so when a key is fine but encrypted; anything else is not a key.
        if "passphrase must be specified" not in str(error).lower():
            raise InvalidInput(
                f"ssh_key is not a private key ({error}); give the text of an OpenSSH, "
                "PKCS#1 or PKCS#8 private key.",
                field="ssh_key",
            ) from None
    else:
        if passphrase is not None:
            raise InvalidInput(
                "ssh_passphrase was given but the ssh_key is not encrypted; leave it out.",
                field="ssh_passphrase",
            )
        return
    if passphrase is None:
        raise InvalidInput(
            "The ssh_key is encrypted: give its ssh_passphrase.", field="ssh_passphrase"
        )
    try:
        asyncssh.import_private_key(key, passphrase)
    except KEY_ERRORS as error:
        raise InvalidInput(
            f"ssh_passphrase does not open the ssh_key ({error}).", field="ssh_passphrase"
        ) from None


def check_name(name: str | None) -> None:
    if not name or not name.strip():
        raise InvalidInput("name cannot be blank.", field="name")
    if len(name) > 64:
        raise InvalidInput("name can be at most 64 characters long.", field="name")
    for position, char in enumerate(name, start=1):
        if unicodedata.category(char).startswith("C"):
            # Invisible: "lab" and "lab\u200b" would look like one name twice.
            raise InvalidInput(
                f"name may not contain invisible or control characters (U+{ord(char):04X} "
                f"at position {position}).",
                field="name",
            )


def _switched(current: CredentialFields, *, changes: Mapping[str, Any]) -> dict[str, Any]:
    """``changes`` plus the clearing of the login secret a new one replaces."""
    result = dict(changes)
    given = {k for k, v in changes.items() if v is not None}
    if "vault_secret_path" in given:
        for name in ("password", "auth_token", "ssh_key", "ssh_passphrase"):
            if name not in given:
                result.setdefault(name, None)
        return result
    if given & {"password", "auth_token", "ssh_key"} and "vault_secret_path" not in changes:
        result.update(dict.fromkeys(VAULT_FIELDS))
    if rules_of(current.cred_type).auth == Auth.SSH:
        if "password" in given and "ssh_key" not in given:
            result.setdefault("ssh_key", None)
            result.setdefault("ssh_passphrase", None)
        if "ssh_key" in given and "password" not in given:
            result.setdefault("password", None)
    else:
        if "password" in given and "auth_token" not in given:
            result.setdefault("auth_token", None)
        if "auth_token" in given and "password" not in given:
            result.setdefault("password", None)
            if "username" not in given:
                result.setdefault("username", None)
    return result


def _check_name_free(s: Session, *, name: str) -> None:
    if s.scalar(select(Credential.id).where(Credential.name == name)) is not None:
        # The established server's words for a taken name, so its clients read the same.
        raise InvalidInput("credential with this name already exists.", field="name")


def _get(s: Session, *, credential_id: int) -> Credential:
    row = s.get(Credential, credential_id)
    if row is None:
        raise NotFound(f"Credential {credential_id} does not exist.")
    return row


def _write(row: Credential, *, fields: CredentialFields, box: SecretBox) -> None:
    def sealed(secret: str | None) -> bytes | None:
        return None if secret is None else box.encrypt(secret)

    row.name = fields.name
    row.cred_type = fields.cred_type
    row.username = fields.username
    row.become_method = fields.become_method
    row.become_user = fields.become_user
    row.password_enc = sealed(fields.password)
    row.ssh_key_enc = sealed(fields.ssh_key)
    row.ssh_passphrase_enc = sealed(fields.ssh_passphrase)
    row.auth_token_enc = sealed(fields.auth_token)
    row.become_password_enc = sealed(fields.become_password)
    row.vault_secret_path = fields.vault_secret_path
    row.vault_mount_point = fields.vault_mount_point
    row.vault_secret_key = fields.vault_secret_key


def _read(row: Credential, *, box: SecretBox) -> CredentialFields:
    def opened(token: bytes | None) -> str | None:
        return None if token is None else box.decrypt(token)

    return CredentialFields(
        name=row.name,
        cred_type=row.cred_type,
        username=row.username,
        password=opened(row.password_enc),
        ssh_key=opened(row.ssh_key_enc),
        ssh_passphrase=opened(row.ssh_passphrase_enc),
        auth_token=opened(row.auth_token_enc),
        become_method=row.become_method,
        become_user=row.become_user,
        become_password=opened(row.become_password_enc),
        vault_secret_path=row.vault_secret_path,
        vault_mount_point=row.vault_mount_point,
        vault_secret_key=row.vault_secret_key,
    )


def _users(s: Session, *, ids: Sequence[int]) -> dict[int, list[tuple[int, str]]]:
    """The sources (id, name) using each of ``ids`` (only those used by one), by name."""
    users: dict[int, list[tuple[int, str]]] = {}
    rows = s.execute(
        select(SourceCredential.credential_id, Source.id, Source.name)
        .join(Source, Source.id == SourceCredential.source_id)
        .where(SourceCredential.credential_id.in_(ids))
        .order_by(Source.name)
    )
    for credential_id, source_id, source_name in rows:
        users.setdefault(credential_id, []).append((source_id, source_name))
    return users


def _views(s: Session, *, rows: Sequence[Credential]) -> list[CredentialView]:
    used_by: dict[int, list[Ref]] = {}
    links = s.execute(
        select(SourceCredential.credential_id, Source.id, Source.name)
        .join(Source, Source.id == SourceCredential.source_id)
        .where(SourceCredential.credential_id.in_([r.id for r in rows]))
        .order_by(Source.name)
    )
    for credential_id, source_id, source_name in links:
        used_by.setdefault(credential_id, []).append(Ref(id=source_id, name=source_name))
    return [
        CredentialView(
            id=r.id,
            name=r.name,
            cred_type=r.cred_type,
            username=r.username,
            become_method=r.become_method,
            become_user=r.become_user,
            has_password=r.password_enc is not None,
            has_ssh_key=r.ssh_key_enc is not None,
            has_ssh_passphrase=r.ssh_passphrase_enc is not None,
            has_auth_token=r.auth_token_enc is not None,
            has_become_password=r.become_password_enc is not None,
            auth_type=_auth_type(r),
            vault_secret_path=r.vault_secret_path,
            vault_mount_point=r.vault_mount_point,
            vault_secret_key=r.vault_secret_key,
            sources=used_by.get(r.id, []),
            created_at=r.created_at,
            updated_at=r.updated_at,
        )
        for r in rows
    ]


def _auth_type(row: Credential) -> str:
    if row.vault_secret_path is not None:
        return vault_stands_for(cred_type=row.cred_type, username=row.username)
    if row.ssh_key_enc is not None:
        return "ssh_key"
    if row.password_enc is None and row.auth_token_enc is not None:
        return "auth_token"
    return "password"


# Shared by the catalog services (credentials, sources, scans): filters, pages, bulk deletes.


def name_filters(
    column: InstrumentedAttribute[str], *, name: str | None, search_by_name: str | None
) -> list[ColumnElement[bool]]:
    """``name`` matches exactly; ``search_by_name`` is a case-insensitive substring."""
    conditions: list[ColumnElement[bool]] = []
    if name is not None:
        conditions.append(column == name)
    if search_by_name:
        conditions.append(func.lower(column).contains(search_by_name.lower(), autoescape=True))
    return conditions


def page(
    s: Session,
    *,
    query: Select[T],
    order: InstrumentedAttribute[str],
    conditions: Iterable[ColumnElement[bool]],
    offset: int,
    limit: int,
) -> tuple[int, list[T]]:
    """How many rows match ``conditions``, and the page of them from ``offset``."""
    query = query.where(*conditions)
    count = s.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = s.scalars(query.order_by(order, "id").offset(offset).limit(limit)).all()
    return count, list(rows)


def find_ids(
    s: Session, *, model: type[Credential | Source | Scan], ids: AllOrIds
) -> tuple[dict[int, str], list[int]]:
    """The ``ids`` that exist (id -> name, in id order) and those that do not."""
    query = select(model.id, model.name).order_by(model.id)
    if ids != "all":
        query = query.where(model.id.in_(list(ids)))
    found: dict[int, str] = dict(s.execute(query).all())
    missing = [] if ids == "all" else [i for i in dict.fromkeys(ids) if i not in found]
    return found, missing


def bulk_result(
    *, noun: str, deleted: list[int], skipped: list[Skipped], missing: list[int]
) -> BulkDeleted:
    not_deleted = len(skipped) + len(missing)
    return BulkDeleted(
        deleted=deleted,
        skipped=skipped,
        missing=missing,
        message=f"Successfully deleted {len(deleted)} {noun}. "
        f"{not_deleted} {noun} could not be deleted.",
    )


def quoted_names(noun: str, *, names: Sequence[str]) -> str:
    """``source "a"`` or ``sources "a", "b"``."""
    plural = noun if len(names) == 1 else f"{noun}s"
    return f"{plural} " + ", ".join(f'"{n}"' for n in names)
