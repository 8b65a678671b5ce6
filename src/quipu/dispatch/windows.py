"""Time windows: running jobs whose window closed are deferred to the next opening."""

from __future__ import annotations

from datetime import datetime

from quipu.store import Store


def defer_closed(store: Store, *, now: datetime) -> list[int]:
    """Defer (running -> pending) every running job outside its time windows; their ids."""
    return []
