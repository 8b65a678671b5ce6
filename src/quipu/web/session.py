"""Who is signed in to the web UI: the session cookie, its CSRF token, and flash messages.

The cookie holds a login token of :mod:`quipu.services.auth` (the API's own kind, so an
ingest node that did not sign the user in still knows them). It is HttpOnly,
SameSite=Strict, and Secure when the page came over HTTPS. The CSRF token is an HMAC of
that token: a page that cannot read the cookie cannot make it, and any node can check it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.responses import Response

from quipu.clock import Clock
from quipu.domain.errors import Forbidden, QuipuError
from quipu.services import auth
from quipu.store import Store

COOKIE = "quipu_session"
FLASH_COOKIE = "quipu_flash"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"


class SignInNeeded(Exception):
    """The request has no valid session: the browser is sent to the sign-in page."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


def csrf_token(session_token: str) -> str:
    return hmac.new(session_token.encode(), b"quipu-csrf", hashlib.sha256).hexdigest()


def set_session(response: Response, request: Request, *, token: str, ttl_s: float) -> None:
    response.set_cookie(
        COOKIE,
        token,
        max_age=int(ttl_s),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )


def clear_session(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")


def flash(response: Response, request: Request, *, text: str, kind: str = "notice") -> None:
    """A message shown once, on the next page this browser opens (after a redirect)."""
    response.set_cookie(
        FLASH_COOKIE,
        quote(json.dumps({"kind": kind, "text": text})),
        max_age=60,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )


class Viewer:
    """The signed-in user of one request."""

    def __init__(self, principal: auth.Principal, token: str) -> None:
        self.principal = principal
        self.csrf = csrf_token(token)

    @property
    def username(self) -> str:
        return self.principal.username


def server_now(request: Request) -> datetime:
    """The server's time, from its clock (the system's, or a test's)."""
    clock: Clock = request.app.state.clock
    return clock.now()


def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def signed_in_viewer(request: Request) -> Viewer | None:
    """The signed-in user of ``request``, or None (no CSRF check: for showing, not acting)."""
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    try:
        principal = auth.authenticate(_store(request), token=token, now=server_now(request))
    except QuipuError:
        return None
    return Viewer(principal, token)


async def viewer(request: Request) -> Viewer:
    """The signed-in user; CSRF checked on every request that may change state."""
    found = signed_in_viewer(request)
    if found is None:
        raise SignInNeeded(request.url.path)
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        sent = request.headers.get(CSRF_HEADER)
        if sent is None and _is_form(request):
            field = (await request.form()).get(CSRF_FIELD)  # kept: handlers read it again
            sent = field if isinstance(field, str) else None
        if not sent or not hmac.compare_digest(sent, found.csrf):
            raise Forbidden("The request has no valid CSRF token: reload the page and try again.")
    return found


def _is_form(request: Request) -> bool:
    kind = request.headers.get("content-type", "")
    return kind.startswith(("application/x-www-form-urlencoded", "multipart/form-data"))


SignedIn = Annotated[Viewer, Depends(viewer)]
