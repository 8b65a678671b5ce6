"""The store: an engine, its sessions, and database errors turned into Quipu's typed errors."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from quipu.domain.errors import AlreadyExists, InUse, InvalidInput, NotFound, QuipuError
from quipu.store.engine import create_engine
from quipu.store.notify import Bus, committed


class Store:
    """Owns an engine; ``transaction()`` is the unit of work every service uses."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self.bus = Bus()
        """This process's notifications (``store.notify``); PostgreSQL's reach every node."""

    @classmethod
    def from_url(cls, url: str) -> Store:
        return cls(create_engine(url))

    @property
    def kind(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session committed on success and rolled back on any error.

        Integrity errors leave as typed errors, so a bad write is refused and changes nothing.
        """
        session = self._sessions()
        try:
            yield session
            session.commit()
        except IntegrityError as error:
            session.rollback()
            raise translate_integrity_error(error) from error
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()
        for channel, payload in committed(session):
            self.bus.deliver(channel, payload)

    @contextmanager
    def autocommit(self) -> Iterator[Connection]:
        """A connection whose every statement commits on its own: for a call that is one
        statement, it saves the round trips of BEGIN and COMMIT (on PostgreSQL a third of
        the call). Nothing is delivered to this process's bus from it: on PostgreSQL a
        statement's NOTIFY reaches every listener, this process's included."""
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            try:
                yield conn
            except IntegrityError as error:
                raise translate_integrity_error(error) from error

    def dispose(self) -> None:
        self.bus.close()
        self.engine.dispose()


_SQLITE_UNIQUE = re.compile(r"UNIQUE constraint failed: (\S+?)\.(\S+)")
_PG_KEY = re.compile(r"Key \((?P<columns>[^)]*)\)=\((?P<values>.*)\)")


def translate_integrity_error(error: IntegrityError) -> QuipuError:
    """The typed error for a constraint the database refused."""
    text = str(error.orig)
    diag = getattr(error.orig, "diag", None)
    sqlstate = getattr(error.orig, "sqlstate", None)
    if sqlstate == "23505" or "UNIQUE constraint failed" in text:
        return AlreadyExists(_unique_message(text, diag), field=_unique_field(text, diag))
    if sqlstate == "23503" or "FOREIGN KEY constraint failed" in text:
        detail = getattr(diag, "message_detail", None) or ""
        if "is still referenced" in detail:
            return InUse(f"Cannot delete: {detail}")
        if detail:
            return NotFound(detail.replace("is not present in table", "does not exist in"))
        return NotFound("A referenced object does not exist, or is still in use.")
    if sqlstate == "23514" or "CHECK constraint failed" in text:
        constraint = getattr(diag, "constraint_name", None) or text.rsplit(":", 1)[-1].strip()
        field = constraint.rsplit("_", 1)[-1] if constraint else "value"
        return InvalidInput(f"A value is out of range ({constraint}).", field=field)
    if sqlstate == "23502" or "NOT NULL constraint failed" in text:
        column = getattr(diag, "column_name", None) or text.rsplit(".", 1)[-1]
        return InvalidInput(f"{column} is required.", field=column)
    return QuipuError(f"The database refused the change: {text.splitlines()[0]}")


def _unique_message(text: str, diag: object) -> str:
    detail = getattr(diag, "message_detail", None) or ""
    if match := _PG_KEY.search(detail):
        table = getattr(diag, "table_name", "") or "object"
        columns, values = match.group("columns"), match.group("values")
        return f"A {_singular(table)} with {columns} {values!r} already exists."
    if match := _SQLITE_UNIQUE.search(text):
        return f"A {_singular(match.group(1))} with this {match.group(2)} already exists."
    return "An object with this name already exists."


def _unique_field(text: str, diag: object) -> str:
    """The column a unique constraint refused (the first of several; "name" if unknown)."""
    detail = getattr(diag, "message_detail", None) or ""
    if match := _PG_KEY.search(detail):
        return match.group("columns").split(",")[0].strip().strip('"') or "name"
    if match := _SQLITE_UNIQUE.search(text):
        return match.group(2).rstrip(",") or "name"
    return "name"


def _singular(table: str) -> str:
    return table[:-1].replace("_", " ") if table.endswith("s") else table
