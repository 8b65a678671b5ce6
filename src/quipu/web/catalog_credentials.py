"""Credential pages: the list with search and paging, add and edit with each type's fields,
delete. Secrets are write-only: no page ever holds one, only whether it is set."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from quipu.domain.errors import InvalidInput, NotFound, QuipuError
from quipu.domain.source_types import Auth, rules_of, source_type_of
from quipu.domain.states import SourceType
from quipu.services import credentials
from quipu.store.secrets import SecretBox
from quipu.web.catalog_forms import (
    Form,
    Refusal,
    form_of,
    list_page,
    redirect,
    refusal,
    store_of,
)
from quipu.web.render import page
from quipu.web.session import SignedIn, server_now

router = APIRouter(include_in_schema=False)

TYPES = [t.value for t in SourceType]
VAULT = list(credentials.VAULT_FIELDS)
SECRETS = set(credentials.SECRET_FIELDS)
_FIELDS_BY_AUTH = {
    Auth.SSH: [
        "username",
        "password",
        "ssh_key",
        "ssh_passphrase",
        "become_method",
        "become_user",
        "become_password",
    ],
    Auth.USERNAME_PASSWORD: ["username", "password"],
    Auth.TOKEN: ["auth_token"],
    Auth.TOKEN_OR_USERNAME_PASSWORD: ["username", "password", "auth_token"],
}


def fields_of(cred_type: str) -> list[str]:
    """The form fields of a credential type, after its name."""
    return [*_FIELDS_BY_AUTH[rules_of(cred_type).auth], *VAULT]


def _box(request: Request) -> SecretBox:
    box: SecretBox = request.app.state.secrets
    return box


def _logins(view: credentials.CredentialView) -> list[str]:
    """What is set of a credential's secrets, in words."""
    found = [
        label
        for flag, label in (
            (view.has_password, "password"),
            (view.has_ssh_key, "SSH key"),
            (view.has_ssh_passphrase, "passphrase"),
            (view.has_auth_token, "token"),
            (view.has_become_password, "become password"),
        )
        if flag
    ]
    if view.vault_secret_path:
        found.append(f"{view.auth_type.replace('_', ' ')} in Vault")
    return found


@router.get("/credentials")
def credential_list(
    request: Request, viewer: SignedIn, search: str = "", page_no: str = "1"
) -> HTMLResponse:
    return list_page(
        request,
        viewer,
        template="credentials.html",
        lister=credentials.list_credentials,
        search=search,
        page_no=page_no,
        rows="credentials",
        shown=lambda views: [(v, _logins(v)) for v in views],
        types=TYPES,
    )


def _form_page(
    request: Request,
    viewer: SignedIn,
    *,
    cred_type: str,
    values: dict[str, Any],
    view: credentials.CredentialView | None = None,
    problem: Refusal | None = None,
) -> HTMLResponse:
    shown = fields_of(cred_type)
    return page(
        request,
        "credentials_form.html",
        viewer=viewer,
        status_code=400 if problem else 200,
        cred_type=cred_type,
        auth=rules_of(cred_type).auth.value,
        shown=shown,
        values={k: v for k, v in values.items() if k not in SECRETS},
        credential=view,
        problem=problem or Refusal(""),
        become_methods=credentials.BECOME_METHODS,
        default_become_user=credentials.DEFAULT_BECOME_USER,
    )


@router.get("/credentials/new", response_model=None)
def new_credential(
    request: Request, viewer: SignedIn, cred_type: str = ""
) -> HTMLResponse | RedirectResponse:
    try:
        kind = source_type_of(cred_type, field="cred_type").value
    except InvalidInput as refused:
        return redirect(request, "/credentials", kind="error", text=str(refused))
    return _form_page(request, viewer, cred_type=kind, values={"become_method": "sudo"})


def _submitted(form: Form, *, cred_type: str) -> dict[str, Any]:
    values: dict[str, Any] = {"name": form.text("name")}
    for name in fields_of(cred_type):
        values[name] = form.secret(name) if name in SECRETS else form.text(name)
    return values


@router.post("/credentials/new", response_model=None)
async def add_credential(request: Request, viewer: SignedIn) -> Response:
    form = await form_of(request)
    try:
        cred_type = source_type_of(form.raw("cred_type"), field="cred_type").value
    except InvalidInput as refused:
        return redirect(request, "/credentials", kind="error", text=str(refused))
    values = _submitted(form, cred_type=cred_type)
    try:
        fields = credentials.CredentialFields(cred_type=cred_type, **values)
        view = await run_in_threadpool(
            lambda: credentials.add_credential(
                store_of(request), box=_box(request), fields=fields, now=server_now(request)
            )
        )
    except QuipuError as refused:
        return _form_page(
            request, viewer, cred_type=cred_type, values=values, problem=refusal(refused)
        )
    return redirect(request, "/credentials", text=f'Credential "{view.name}" added.')


def _current_values(view: credentials.CredentialView) -> dict[str, Any]:
    return {
        "name": view.name,
        "username": view.username,
        "become_method": view.become_method,
        "become_user": view.become_user,
        "vault_secret_path": view.vault_secret_path,
        "vault_secret_key": view.vault_secret_key,
        "vault_mount_point": view.vault_mount_point,
    }


@router.get("/credentials/{credential_id}/edit", response_model=None)
def edit_credential_page(
    request: Request, credential_id: int, viewer: SignedIn
) -> HTMLResponse | RedirectResponse:
    try:
        view = credentials.get_credential(store_of(request), credential_id=credential_id)
    except NotFound as missing:
        return redirect(request, "/credentials", kind="error", text=str(missing))
    return _form_page(
        request, viewer, cred_type=view.cred_type, values=_current_values(view), view=view
    )


def _changes(form: Form, *, cred_type: str) -> dict[str, Any]:
    """The edit: every field of the type as shown, and only the secrets typed in (a secret
    left empty is kept). A new SSH key comes with its own passphrase, or none."""
    changes = _submitted(form, cred_type=cred_type)
    for name in SECRETS & set(changes):
        if changes[name] is None:
            del changes[name]
    if "ssh_key" in changes and "ssh_passphrase" not in changes:
        changes["ssh_passphrase"] = None
    if form.checked("clear_become_password") and "become_password" not in changes:
        changes["become_password"] = None
    return changes


@router.post("/credentials/{credential_id}/edit", response_model=None)
async def edit_credential(request: Request, credential_id: int, viewer: SignedIn) -> Response:
    form = await form_of(request)
    store = store_of(request)
    try:
        current = await run_in_threadpool(
            lambda: credentials.get_credential(store, credential_id=credential_id)
        )
    except NotFound as missing:
        return redirect(request, "/credentials", kind="error", text=str(missing))
    changes = _changes(form, cred_type=current.cred_type)
    try:
        view = await run_in_threadpool(
            lambda: credentials.edit_credential(
                store,
                box=_box(request),
                credential_id=credential_id,
                changes=changes,
                now=server_now(request),
            )
        )
    except QuipuError as refused:
        return _form_page(
            request,
            viewer,
            cred_type=current.cred_type,
            values={**_current_values(current), **changes},
            view=current,
            problem=refusal(refused),
        )
    return redirect(request, "/credentials", text=f'Credential "{view.name}" saved.')


@router.post("/credentials/{credential_id}/delete")
async def delete_credential(
    request: Request, credential_id: int, viewer: SignedIn
) -> RedirectResponse:
    store = store_of(request)
    try:
        view = await run_in_threadpool(
            lambda: credentials.get_credential(store, credential_id=credential_id)
        )
        await run_in_threadpool(
            lambda: credentials.delete_credential(store, credential_id=credential_id)
        )
    except QuipuError as refused:
        return redirect(request, "/credentials", kind="error", text=str(refused))
    return redirect(request, "/credentials", text=f'Credential "{view.name}" deleted.')
