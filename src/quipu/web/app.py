"""Mounting the web UI on the server's app: its routers, static files and sign-in redirect."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from quipu.web import catalog, jobs, overview, reports, scanners, signin
from quipu.web.render import page
from quipu.web.session import SignInNeeded, signed_in_viewer

_SECURITY_HEADERS = {
    # Everything the UI loads comes from this server; nothing may frame it.
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


class SecurityHeaders:
    """Adds the UI's security headers to every page (not to the APIs): plain ASGI, so the
    API's calls and long polls pay nothing for it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(("/api/", "/scanner/")):
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for header, value in _SECURITY_HEADERS.items():
                    if header not in headers:
                        headers[header] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


def error_page(request: Request, *, status: int, message: str) -> HTMLResponse:
    """A refusal or an error of a page, as a page: the server's sentence and a way back."""
    return page(
        request,
        "error.html",
        viewer=signed_in_viewer(request),
        status_code=status,
        status=status,
        message=message,
    )


def install(app: FastAPI) -> None:
    for module in (signin, overview, jobs, catalog, reports, scanners):
        app.include_router(module.router)
    app.mount(
        "/static",
        StaticFiles(directory=Path(__file__).with_name("static")),
        name="static",
    )

    app.state.page_error = error_page

    @app.exception_handler(SignInNeeded)
    async def sign_in_first(request: Request, error: SignInNeeded) -> RedirectResponse:
        return RedirectResponse(f"/login?next={quote(error.next_url)}", status_code=303)

    app.add_middleware(SecurityHeaders)
