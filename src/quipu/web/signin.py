"""Signing in and out of the web UI, with the API's users and login rules."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from quipu.domain.errors import Unauthenticated
from quipu.services import auth
from quipu.settings import Settings
from quipu.store import Store
from quipu.web.render import page
from quipu.web.session import SignedIn, clear_session, server_now, set_session

router = APIRouter(include_in_schema=False)


def _safe_next(value: str | None) -> str:
    """Only a path of this server: never another site (``//host`` or ``https://...``)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


@router.get("/login")
def sign_in_page(request: Request, next: str = "/") -> HTMLResponse:
    return page(request, "login.html", viewer=None, next=_safe_next(next), error=None, username="")


@router.post("/login", response_model=None)
async def sign_in(
    request: Request,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    store: Store = request.app.state.store
    settings: Settings = request.app.state.settings
    delay = await run_in_threadpool(auth.login_delay, store, username=username)
    if delay:
        await asyncio.sleep(delay)
    try:
        token = await run_in_threadpool(
            lambda: auth.login(
                store,
                username=username,
                password=password,
                now=server_now(request),
                ttl_s=settings.token_ttl_s,
            )
        )
    except Unauthenticated as refused:
        return page(
            request,
            "login.html",
            viewer=None,
            status_code=401,
            next=_safe_next(next),
            error=str(refused),
            username=username,
        )
    response = RedirectResponse(_safe_next(next), status_code=303)
    set_session(response, request, token=token, ttl_s=settings.token_ttl_s)
    return response


@router.post("/logout")
def sign_out(request: Request, viewer: SignedIn) -> RedirectResponse:
    store: Store = request.app.state.store
    auth.logout(store, principal=viewer.principal, now=server_now(request))
    response = RedirectResponse("/login", status_code=303)
    clear_session(response)
    return response
