"""One place where errors become HTTP: status codes and the two error body shapes.

The user API (``/api/...``) answers ``{"detail": "..."}`` as the established server does; the
scanner API (``/scanner/...``) answers ``{"error": {"code": "...", "message": "..."}}``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from quipu.domain.errors import (
    AlreadyExists,
    Conflict,
    Forbidden,
    InUse,
    InvalidInput,
    NotFound,
    QuipuError,
    Unauthenticated,
)

log = logging.getLogger(__name__)

STATUS: list[tuple[type[QuipuError], int]] = [
    (InvalidInput, 400),
    (AlreadyExists, 400),
    (InUse, 400),
    (NotFound, 404),
    (Conflict, 409),
    (Unauthenticated, 401),
    (Forbidden, 403),
]


HTTP_CODES = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 413: "TOO_LARGE"}


def status_of(error: QuipuError) -> int:
    return next((code for kind, code in STATUS if isinstance(error, kind)), 500)


def is_scanner_path(request: Request) -> bool:
    return request.url.path.startswith("/scanner/")


def is_page_path(request: Request) -> bool:
    """A page of the web UI (not the user API, the scanner API or a static file)."""
    return not request.url.path.startswith(("/api/", "/scanner/", "/static/"))


def error_response(
    request: Request,
    *,
    status: int,
    code: str,
    message: str,
    field: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    page_error = getattr(request.app.state, "page_error", None)
    if page_error is not None and is_page_path(request):
        # The web UI answers its own errors as a page, in the same words.
        response: Response = page_error(request, status=status, message=message)
        return response
    if is_scanner_path(request):
        body: dict[str, object] = {"error": {"code": code, "message": message}}
        if field:
            body["error"] = {"code": code, "message": message, "field": field}
    else:
        body = {"detail": message}
        if field:
            body[field] = [message]
    headers = {**(headers or {}), **({"WWW-Authenticate": "Token"} if status == 401 else {})}
    return JSONResponse(body, status_code=status, headers=headers or None)


def format_validation_error(error: RequestValidationError) -> tuple[str, str]:
    """The first problem of a request body or query as (field, sentence)."""
    first = error.errors()[0]
    if first.get("type") == "json_invalid":
        # Its location is a character offset, not a field.
        reason = (first.get("ctx") or {}).get("error", "not JSON")
        return "body", f"body: malformed JSON ({reason}) at character {first['loc'][-1]}."
    location = [
        str(part)
        for part in first.get("loc", ())
        # pydantic names the member of a union it tried ("list[constrained-int]"): not a field
        if part not in ("body", "query", "path") and "[" not in str(part)
    ]
    field = ".".join(location) or "body"
    return field, f"{field}: {first.get('msg', 'invalid value')}."


def install(app: FastAPI) -> None:
    @app.exception_handler(QuipuError)
    async def _quipu_error(request: Request, error: QuipuError) -> Response:
        field = error.field if isinstance(error, InvalidInput | AlreadyExists) else None
        status = status_of(error)
        if status == 400 and field and is_scanner_path(request):
            status = 422
        return error_response(
            request, status=status, code=error.code, message=error.message, field=field
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(request: Request, error: RequestValidationError) -> Response:
        field, message = format_validation_error(error)
        status = 422 if is_scanner_path(request) else 400
        return error_response(
            request, status=status, code="INVALID_INPUT", message=message, field=field
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, error: StarletteHTTPException) -> Response:
        return error_response(
            request,
            status=error.status_code,
            code=HTTP_CODES.get(error.status_code, "HTTP_ERROR"),
            message=str(error.detail),
            headers=error.headers,  # a 405's Allow
        )

    @app.exception_handler(Exception)
    async def _crash(request: Request, error: Exception) -> Response:
        # Logged with its traceback by the server; the client gets the contract's shape.
        return error_response(
            request,
            status=500,
            code="INTERNAL_ERROR",
            message="The server hit an unexpected error; its log says more.",
        )
