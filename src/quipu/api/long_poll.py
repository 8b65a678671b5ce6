"""Long polls of ``GET /scanner/jobs?wait=S``: scanners waiting for work, woken when a
notification says work for them exists (from any node), so an idle fleet costs a request
per scanner every S seconds instead of one per second."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager


class WorkWaiters:
    """The long polls of this process, by scanner id. ``notified`` may be called from any
    thread (the notification listener's, or the one that committed on SQLite)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._waiting: dict[int, set[asyncio.Event]] = {}
        self.closing = False
        """Set when the server stops: every long poll answers at once, and new ones do not
        wait, so a shutdown is not held up by scanners waiting for work."""

    def notified(self, payload: str) -> None:
        self._loop.call_soon_threadsafe(self._wake, payload)

    def close(self) -> None:
        """Answer every long poll now (the server is stopping); may be called from a signal
        handler."""
        self._loop.call_soon_threadsafe(self._close)

    def _close(self) -> None:
        self.closing = True
        self._wake("*")

    def _wake(self, payload: str) -> None:
        if payload == "*" or "*" in payload.split(","):
            events = [e for waiting in self._waiting.values() for e in waiting]
        else:
            events = [
                e
                for part in payload.split(",")
                if part.isdigit()
                for e in self._waiting.get(int(part), ())
            ]
        for event in events:
            event.set()

    @contextmanager
    def waiting(self, scanner_id: int) -> Iterator[asyncio.Event]:
        """An event set when work for ``scanner_id`` may exist. Register before the first
        claim, so that work announced between that claim and the wait is not missed."""
        event = asyncio.Event()
        self._waiting.setdefault(scanner_id, set()).add(event)
        try:
            yield event
        finally:
            waiting = self._waiting.get(scanner_id)
            if waiting is not None:
                waiting.discard(event)
                if not waiting:
                    del self._waiting[scanner_id]

    def count(self) -> int:
        """Long polls waiting now."""
        return sum(len(w) for w in self._waiting.values())
