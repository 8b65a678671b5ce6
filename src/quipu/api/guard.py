"""Bounds on what a request may carry, checked before any route sees it.

- A body above its limit is refused with 413 before it is read whole: the limit is
  ``QUIPU_MAX_REQUEST_BYTES`` (default 10 MiB) for every request but the two that carry
  many systems at once, a report upload and a scanner's results, which have
  ``QUIPU_MAX_UPLOAD_BYTES`` (default 1 GiB). A report upload is streamed as it comes; other
  bodies are read here (they are read whole by their route anyway) and handed on.
- A NUL character in the query, the path or a JSON body is refused (400, or 422 on the
  scanner API) naming the field: PostgreSQL cannot store one in text, and no name, host or
  secret has one. A scanner's results are the exception: a NUL read from a system's files
  becomes U+FFFD, so that no result is lost.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl, unquote

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

from quipu.api.errors import error_response

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

MIB = 1024 * 1024


def _limit(name: str, default: int) -> int:
    value = os.environ.get(name, str(default))
    if not value.isdigit() or int(value) < 1024:
        raise ValueError(f"{name} must be a whole number of bytes, at least 1024, not {value!r}")
    return int(value)


def _is_upload(method: str, path: str) -> bool:
    """A request that carries many systems: a report upload, or a scanner's results."""
    if method not in ("POST", "PUT"):
        return False
    if path in ("/api/v1/reports/", "/api/v2/reports/"):
        return True
    return path.startswith("/scanner/jobs/") and path.endswith("/results")


class RequestGuard:
    """ASGI middleware: body size limits and NUL characters (see the module)."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.max_request = _limit("QUIPU_MAX_REQUEST_BYTES", 10 * MIB)
        self.max_upload = _limit("QUIPU_MAX_UPLOAD_BYTES", 1024 * MIB)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        upload = _is_upload(method, path)
        limit = self.max_upload if upload else self.max_request
        problem = _nul_in_target(scope)
        if problem is not None:
            await self._refuse(scope, receive, send, status=400, field=problem, nul=True)
            return
        length = _content_length(scope)
        if length is not None and length > limit:
            await self._refuse(scope, receive, send, status=413, limit=limit)
            return
        if upload and path.startswith("/api/"):
            # A report upload is streamed by its route: count what passes, never hold it.
            await self.app(scope, _counting(receive, limit), send)
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay(b"", message, receive), send)
                return
            body += message.get("body", b"")
            if len(body) > limit:
                await self._refuse(scope, receive, send, status=413, limit=limit)
                return
            if not message.get("more_body", False):
                break
        data = bytes(body)
        if b"\\u0000" in data:
            if upload:
                data = _NUL_ESCAPE.sub(rb"\1\\ufffd", data)  # the same length: U+FFFD
            elif (field := _nul_in_json(data)) is not None:
                await self._refuse(scope, receive, send, status=400, field=field, nul=True)
                return
        await self.app(scope, _replay(data, None, receive), send)

    async def _refuse(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        *,
        status: int,
        field: str | None = None,
        limit: int = 0,
        nul: bool = False,
    ) -> None:
        request = Request(scope, receive)
        if nul:
            where = field or "body"
            scanner = scope["path"].startswith("/scanner/")
            response = error_response(
                request,
                status=422 if scanner else status,
                code="INVALID_INPUT",
                message=f"{where}: may not contain a NUL character (\\u0000).",
                field=where,
            )
        else:
            response = _too_large_response(request, limit=limit)
        await response(scope, receive, send)


def _too_large_response(request: Request, *, limit: int) -> Response:
    upload = _is_upload(request.method, request.url.path)
    variable = "QUIPU_MAX_UPLOAD_BYTES" if upload else "QUIPU_MAX_REQUEST_BYTES"
    return error_response(
        request,
        status=413,
        code="TOO_LARGE",
        message=f"The request body is larger than {limit:,} bytes, this server's limit "
        f"({variable}).",
    )


_NUL_ESCAPE = re.compile(rb"(?<!\\)((?:\\\\)*)\\u0000")
"""A JSON escape of NUL: ``\\u0000`` after an even number of backslashes (an odd one makes
it the text "\\u0000")."""


class TooLarge(Exception):
    """A streamed body went past its limit."""


def install(app: FastAPI) -> None:
    app.add_middleware(RequestGuard)

    @app.exception_handler(TooLarge)
    async def _too_large(request: Request, error: TooLarge) -> Response:
        return _too_large_response(request, limit=int(error.args[0]))


def _counting(receive: Receive, limit: int) -> Receive:
    seen = 0

    async def counted() -> Message:
        nonlocal seen
        message = await receive()
        seen += len(message.get("body", b""))
        if seen > limit:
            raise TooLarge(limit)
        return message

    return counted


def _replay(body: bytes, pending: Message | None, receive: Receive) -> Receive:
    """``receive`` with the body already read given first (or the message read instead)."""
    first: Message | None = pending or {"type": "http.request", "body": body, "more_body": False}

    async def replayed() -> Message:
        nonlocal first
        if first is not None:
            message, first = first, None
            return message
        return await receive()

    return replayed


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _nul_in_target(scope: Scope) -> str | None:
    """The query parameter (or "path") whose text holds a NUL, if any."""
    if "\x00" in scope["path"] or b"%00" in scope.get("raw_path", b""):
        return "path"
    query = scope.get("query_string", b"")
    if b"%00" not in query and b"\x00" not in query:
        return None
    for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        if "\x00" in name or "\x00" in value:
            return unquote(name).replace("\x00", "") or "query"
    return "query"


def _nul_in_json(body: bytes) -> str | None:
    """The dotted path of the first JSON member whose key or text holds a NUL, if any."""
    try:
        document = json.loads(body)
    except ValueError:
        return None  # not JSON: the route says what is wrong with it

    def walk(value: Any, path: list[str]) -> str | None:
        if isinstance(value, str):
            return ".".join(path) or "body" if "\x00" in value else None
        if isinstance(value, dict):
            for key, item in value.items():
                if "\x00" in key:
                    return ".".join([*path, key.replace("\x00", "")]) or "body"
                found = walk(item, [*path, key])
                if found is not None:
                    return found
        if isinstance(value, list):
            for index, item in enumerate(value):
                found = walk(item, [*path, str(index)])
                if found is not None:
                    return found
        return None

    return walk(document, [])
