"""Rendering pages: one Jinja environment that escapes everything, and the page frame."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse

import quipu
from quipu.web.session import CSRF_FIELD, FLASH_COOKIE, Viewer

_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).with_name("templates")),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def when(value: datetime | None) -> str:
    """A time as operators read it: UTC, to the second."""
    if value is None:
        return "—"
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def percent(done: int, total: int) -> int:
    return 100 if total <= 0 else min(100, round(100 * done / total))


_ENV.filters["when"] = when
_ENV.globals.update(percent=percent, version=quipu.__version__, csrf_field=CSRF_FIELD)


def _flash(request: Request) -> dict[str, str] | None:
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return None
    try:
        found = json.loads(unquote(raw))
    except ValueError:
        return None
    if not isinstance(found, dict):
        return None
    return {"kind": str(found.get("kind", "notice")), "text": str(found.get("text", ""))}


def render(name: str, **context: Any) -> str:
    return _ENV.get_template(name).render(**context)


def page(
    request: Request,
    name: str,
    *,
    viewer: Viewer | None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """A whole page: the frame (navigation, the flash message) around template ``name``."""
    flash = _flash(request)
    html = render(name, request=request, viewer=viewer, flash=flash, **context)
    response = HTMLResponse(html, status_code=status_code)
    if flash is not None:
        response.delete_cookie(FLASH_COOKIE, path="/", httponly=True, samesite="strict")
    response.headers["Cache-Control"] = "no-store"
    return response
