"""Routes that need no login: server status and ping."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel

import quipu

router = APIRouter(prefix="/api/v1", tags=["status"])


class Status(BaseModel):
    api_version: int
    server_version: str
    database: str


@router.get("/status/")
def get_status(request: Request) -> Status:
    """Server version and database kind."""
    return Status(
        api_version=1,
        server_version=quipu.__version__,
        database=request.app.state.store.kind,
    )


@router.get("/ping/")
def ping() -> dict[str, str]:
    """Answers while the server is up."""
    return {"ping": "pong"}
