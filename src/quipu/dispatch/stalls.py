"""Stalled jobs: detect work that does not move, raise an alarm with its cause and repairs."""

from __future__ import annotations

from datetime import datetime

from quipu.settings import Settings
from quipu.store import Store


def watch(store: Store, *, settings: Settings, now: datetime) -> int:
    """Raise (once) an alarm for each stalled piece of work; how many were raised."""
    return 0
