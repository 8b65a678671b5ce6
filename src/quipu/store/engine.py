"""Engines for SQLite (embedded, WAL, serialized writes) and PostgreSQL (psycopg 3)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url


def create_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url``; SQLite gets its pragmas and ``BEGIN IMMEDIATE`` transactions."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url, **kwargs)
    if parsed.get_backend_name() != "postgresql":
        raise ValueError(
            f"Unsupported database {parsed.get_backend_name()!r}: "
            "use sqlite:///PATH or postgresql+psycopg://..."
        )
    # As many kept connections as the server's threads that may use one at once (AnyIO's
    # default 40): an overflow connection is opened and closed per use, and a PostgreSQL
    # backend costs milliseconds to start.
    kwargs.setdefault("pool_size", _pool_size())
    kwargs.setdefault("max_overflow", 5)
    # No pre-ping: it is a round trip on every checkout, on every protocol call. A
    # connection the database dropped fails one request and the pool replaces it.
    kwargs.setdefault("pool_pre_ping", False)
    return sa.create_engine(url, **kwargs)


def _pool_size() -> int:
    """``QUIPU_DB_POOL_SIZE`` (default 40): fewer where many processes share one PostgreSQL."""
    value = os.environ.get("QUIPU_DB_POOL_SIZE", "40")
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"QUIPU_DB_POOL_SIZE must be a whole number of at least 1, not {value!r}")
    return int(value)


def _sqlite_engine(url: str, **kwargs: Any) -> Engine:
    database = make_url(url).database
    if database and database != ":memory:":
        path = Path(database)
        path.parent.mkdir(parents=True, exist_ok=True)
        # It holds password and token hashes: its owner's alone (SQLite gives its -wal and
        # -shm files the database file's mode).
        path.touch(mode=0o600, exist_ok=True)
        if path.stat().st_mode & 0o077:
            path.chmod(0o600)
    kwargs.setdefault("connect_args", {"check_same_thread": False, "timeout": 30})
    engine = sa.create_engine(url, **kwargs)

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite's own is deferred).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in (
            "journal_mode=WAL",
            "foreign_keys=ON",
            "synchronous=NORMAL",
            "busy_timeout=30000",
        ):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        # Writers take the lock up front, so two transactions never deadlock upgrading a
        # read lock: this is what serializes claims on SQLite.
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine
