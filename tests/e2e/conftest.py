"""End-to-end fixtures: a real server process per test, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.servers import RunningServer, running_server


@pytest.fixture(params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunningServer]:
    """A ``quipu server`` subprocess with its own data dir and database; a test module may
    set ``SERVER_ENV`` (environment) and ``SERVER_ARGS`` (command-line arguments)."""
    with running_server(
        kind=request.param,
        data_dir=tmp_path / "data",
        env=getattr(request.module, "SERVER_ENV", None),
        args=getattr(request.module, "SERVER_ARGS", ()),
    ) as running:
        yield running


@pytest.fixture
def api(server: RunningServer) -> Iterator[httpx.Client]:
    """A client of ``server``, logged in as its admin."""
    with server.client() as client:
        yield client
