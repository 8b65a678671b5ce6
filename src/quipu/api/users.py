"""Routes for logging in and out and for the current user."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from quipu.api.deps import CurrentUser, Now, SettingsDep, StoreDep
from quipu.services import auth

router = APIRouter(prefix="/api/v1", tags=["users"])


class Login(BaseModel):
    username: str = Field(min_length=1, max_length=150)
    password: str = Field(max_length=1024)


class TokenOut(BaseModel):
    token: str


class UserOut(BaseModel):
    username: str


@router.post("/token/")
async def create_token(body: Login, store: StoreDep, settings: SettingsDep, now: Now) -> TokenOut:
    """Log in: a token for ``Authorization: Token ...``."""
    delay = await run_in_threadpool(auth.login_delay, store, username=body.username)
    if delay:
        await asyncio.sleep(delay)
    token = await run_in_threadpool(
        lambda: auth.login(
            store,
            username=body.username,
            password=body.password,
            now=now,
            ttl_s=settings.token_ttl_s,
        )
    )
    return TokenOut(token=token)


@router.get("/users/current/")
def current(user: CurrentUser) -> UserOut:
    """The logged-in user."""
    return UserOut(username=user.username)


@router.put("/users/logout/")
def logout(user: CurrentUser, store: StoreDep, now: Now) -> dict[str, str]:
    """Revoke the token of this request."""
    auth.logout(store, principal=user, now=now)
    return {"detail": "Logged out."}
