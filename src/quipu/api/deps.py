"""Dependencies shared by routes: the store, settings, the clock and the caller."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Depends, Header, Request

from quipu.clock import Clock
from quipu.domain.errors import Unauthenticated
from quipu.services import auth
from quipu.settings import Settings
from quipu.store import Store

# Dependencies that only read the app's state are ``async``: FastAPI runs a plain ``def``
# dependency in its thread pool, a hop that costs more than what it computes.


async def get_store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def utc_now(request: Request) -> datetime:
    """The server's time (its clock: the system's, or a test's)."""
    clock: Clock = request.app.state.clock
    return clock.now()


def actor(principal: auth.Principal) -> str:
    """How a user appears as the cause of a move in a job's log."""
    return f"user:{principal.username}"


StoreDep = Annotated[Store, Depends(get_store)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
Now = Annotated[datetime, Depends(utc_now)]


def current_user(
    store: StoreDep,
    now: Now,
    authorization: Annotated[str | None, Header()] = None,
) -> auth.Principal:
    if not authorization:
        raise Unauthenticated("Authentication credentials were not provided.")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() not in ("token", "bearer") or not token.strip():
        raise Unauthenticated("Invalid token header: use 'Authorization: Token <token>'.")
    return auth.authenticate(store, token=token.strip(), now=now)


CurrentUser = Annotated[auth.Principal, Depends(current_user)]
