"""Quipu's store: tables, engines, named statements and migrations (SQLite and PostgreSQL)."""

from quipu.store.db import Store

__all__ = ["Store"]
