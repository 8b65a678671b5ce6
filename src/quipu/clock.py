"""Where a server process reads the time: the system clock, or one a test moves.

Every "now" on the server (API, web UI, dispatcher, schedules, windows, expiry) comes from
the process's clock, so a test can run a real server whose hours pass in seconds.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class ShiftedClock:
    """Test tooling: the system time plus the seconds written in a file (read on every call,
    so a test moves a running server's time by writing the file; missing or empty: 0)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def now(self) -> datetime:
        try:
            raw = self.path.read_text().strip()
        except FileNotFoundError:
            raw = ""
        return datetime.now(UTC) + timedelta(seconds=float(raw or 0))


def clock_for(path: Path | None) -> Clock:
    return SystemClock() if path is None else ShiftedClock(path)
