"""End-to-end fixtures: a real server process per test, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.databases import pg_database
from tests.servers import RunningServer, start_server


@pytest.fixture(params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunningServer]:
    """A ``quipu server`` subprocess with its own data dir and database."""
    data_dir = tmp_path / "data"
    if request.param == "sqlite":
        running = start_server(data_dir=data_dir, database_url=f"sqlite:///{data_dir / 'quipu.db'}")
        try:
            yield running
        finally:
            running.stop()
        return
    with pg_database() as url:
        running = start_server(data_dir=data_dir, database_url=url)
        try:
            yield running
        finally:
            running.stop()
