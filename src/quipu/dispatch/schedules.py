"""Scan schedules: each firing starts a scan job once, whichever ingest node sees it first."""

from __future__ import annotations

from datetime import datetime

from quipu.settings import Settings
from quipu.store import Store


def fire_due(store: Store, *, settings: Settings, now: datetime) -> list[int]:
    """Start a scan job for every scan whose next firing is due; the started job ids."""
    return []
