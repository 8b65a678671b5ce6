"""Throwaway databases for tests: SQLite files and cloned PostgreSQL databases."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from sqlalchemy.engine import make_url

PG_URL = os.environ.get("QUIPU_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
"""A PostgreSQL database the tests may use to create and drop their own databases."""


def _admin() -> psycopg.Connection[tuple[object, ...]]:
    url = make_url(PG_URL)
    return psycopg.connect(
        host=url.host or "127.0.0.1",
        port=url.port or 5432,
        user=url.username or "postgres",
        password=url.password,
        dbname=url.database or "postgres",
        autocommit=True,
    )


def pg_url(name: str) -> str:
    return make_url(PG_URL).set(database=name).render_as_string(hide_password=False)


def create_pg_database(*, template: str | None = None, prefix: str = "quipu_test") -> str:
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with _admin() as conn:
        clause = f" TEMPLATE {template}" if template else ""
        conn.execute(f'CREATE DATABASE "{name}"{clause}')  # type: ignore[arg-type]
    return name


def drop_pg_database(name: str) -> None:
    with _admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[arg-type]


@contextmanager
def pg_database(*, template: str | None = None) -> Iterator[str]:
    """A new PostgreSQL database (optionally cloned from ``template``), dropped afterwards."""
    name = create_pg_database(template=template)
    try:
        yield pg_url(name)
    finally:
        drop_pg_database(name)
