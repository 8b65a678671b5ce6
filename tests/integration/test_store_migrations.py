"""Migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import re

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import CheckConstraint, Connection, inspect

from quipu.domain.states import SourceType
from quipu.store.engine import create_engine
from quipu.store.migrate import upgrade
from quipu.store.tables import Base


def test_models_and_migrations_agree(empty_database_url: str) -> None:
    engine = create_engine(empty_database_url)
    try:
        upgrade(engine)
        upgrade(engine)  # idempotent: a second upgrade is a no-op
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(context, Base.metadata)
            tables = set(inspect(conn).get_table_names())
        assert diff == []
        assert set(Base.metadata.tables) <= tables
    finally:
        engine.dispose()


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine = create_engine(f"sqlite:///{tmp_path / 'q.db'}")
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        engine.dispose()


_LITERAL = re.compile(r"'([^']*)'|\b(\d+)\b")


def _terms(sql: str) -> set[str]:
    """What a CHECK allows, as its literals (PostgreSQL rewrites the expression around them)."""
    return {text or number for text, number in _LITERAL.findall(sql)}


def _model_checks() -> dict[str, set[str]]:
    checks = {}
    for table in Base.metadata.tables.values():
        for constraint in table.constraints:
            if isinstance(constraint, CheckConstraint):
                checks[str(constraint.name)] = _terms(str(constraint.sqltext))
    return checks


def _database_checks(conn: Connection) -> dict[str, set[str]]:
    if conn.dialect.name == "postgresql":
        rows = conn.exec_driver_sql(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE contype = 'c' AND connamespace = 'public'::regnamespace"
        )
        return {name: _terms(definition) for name, definition in rows}
    checks = {}
    for (sql,) in conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE type = 'table'"):
        for name, body in re.findall(r"CONSTRAINT (\w+) CHECK \((.*)\)", sql or ""):
            checks[name] = _terms(body)
    return checks


def test_check_constraints_allow_what_the_models_allow(empty_database_url: str) -> None:
    """Alembic does not compare CHECK constraints: a new source type (or status) in the domain
    needs a migration that rewrites its constraints, and this names the ones missing."""
    engine = create_engine(empty_database_url)
    try:
        upgrade(engine)
        with engine.connect() as conn:
            database = _database_checks(conn)
    finally:
        engine.dispose()
    model = _model_checks()
    assert sorted(model) == sorted(database)
    differing = {
        name: (model[name], database[name]) for name in model if model[name] != database[name]
    }
    assert differing == {}, "write a migration that brings these CHECK constraints in line"


def test_every_source_type_column_is_checked_against_the_enum() -> None:
    columns = [
        (table.name, column.name)
        for table in Base.metadata.tables.values()
        for column in table.columns
        if column.name in ("source_type", "cred_type")
    ]
    checked = {
        name for name, terms in _model_checks().items() if terms == {t.value for t in SourceType}
    }
    assert columns
    assert {f"ck_{table}_{column}" for table, column in columns} <= checked
