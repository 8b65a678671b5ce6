"""The web UI's session cookie and CSRF token, through the real app on both databases."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest

from quipu.api.app import create_app
from quipu.settings import Settings
from quipu.web.session import COOKIE, csrf_token

PASSWORD = "web-admin-Secret-123"
Body = Callable[[httpx.AsyncClient], Awaitable[None]]


@pytest.fixture
def settings(tmp_path: Path, empty_database_url: str) -> Settings:
    return Settings(data_dir=tmp_path, database_url=empty_database_url, admin_password=PASSWORD)


def run(settings: Settings, body: Body, *, scheme: str = "https") -> None:
    """``body`` with a client of the app (started and stopped around it) over ``scheme``."""
    app = create_app(settings, dispatch=False)

    async def main() -> None:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url=f"{scheme}://testserver"
            ) as client:
                await body(client)

    asyncio.run(main())


async def sign_in(c: httpx.AsyncClient, *, next_url: str = "/jobs") -> httpx.Response:
    return await c.post(
        "/login", data={"username": "admin", "password": PASSWORD, "next": next_url}
    )


def test_the_cookie_is_httponly_strict_and_secure_under_https(settings: Settings) -> None:
    async def body(c: httpx.AsyncClient) -> None:
        answer = await sign_in(c)
        assert answer.status_code == 303 and answer.headers["location"] == "/jobs"
        cookie = answer.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "secure" in cookie

    run(settings, body)


def test_over_plain_http_the_cookie_is_not_marked_secure(settings: Settings) -> None:
    async def body(c: httpx.AsyncClient) -> None:
        cookie = (await sign_in(c)).headers["set-cookie"].lower()
        assert "httponly" in cookie and "secure" not in cookie

    run(settings, body, scheme="http")


def test_a_move_needs_the_token_of_its_own_session(settings: Settings) -> None:
    async def body(c: httpx.AsyncClient) -> None:
        await sign_in(c)
        token = c.cookies[COOKIE]
        assert (await c.post("/logout")).status_code == 403
        other = csrf_token("another-session")
        assert (await c.post("/logout", data={"csrf_token": other})).status_code == 403
        # Still signed in: the refused requests changed nothing.
        assert (await c.get("/jobs")).status_code == 200
        out = await c.post("/logout", headers={"X-CSRF-Token": csrf_token(token)})
        assert out.status_code == 303
        assert (await c.get("/jobs")).headers["location"] == "/login?next=/jobs"

    run(settings, body)


@pytest.mark.parametrize("target", ["https://elsewhere.example/", "//elsewhere.example/", "jobs"])
def test_sign_in_never_sends_the_browser_to_another_site(settings: Settings, target: str) -> None:
    async def body(c: httpx.AsyncClient) -> None:
        assert (await sign_in(c, next_url=target)).headers["location"] == "/"

    run(settings, body)


def test_pages_forbid_outside_resources_and_framing(settings: Settings) -> None:
    async def body(c: httpx.AsyncClient) -> None:
        policy = (await c.get("/login")).headers["content-security-policy"]
        assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy

    run(settings, body)
