"""Alarms the dispatcher raised (such as scan-stuck), for operators to read."""

from __future__ import annotations

from sqlalchemy import func, select

from quipu.store import Store
from quipu.store.tables import Alarm


def list_alarms(store: Store, *, offset: int, limit: int) -> tuple[int, list[Alarm]]:
    """One page of alarms, newest first, and how many there are."""
    with store.transaction() as s:
        count = s.scalar(select(func.count()).select_from(Alarm)) or 0
        rows = s.scalars(select(Alarm).order_by(Alarm.id.desc()).offset(offset).limit(limit))
        return count, list(rows)
