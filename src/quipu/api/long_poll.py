"""Long polls of ``GET /scanner/jobs?wait=S``: scanners waiting for work, woken when a
notification says work for them exists (from any node), so an idle fleet costs a request
per scanner every S seconds instead of one per second."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager

IDLE_TRUST_S = 60.0
"""How long a scanner's "no work" is trusted without a claim to check it."""


class WorkWaiters:
    """The long polls of this process, by scanner id. ``notified`` may be called from any
    thread (the notification listener's, or the one that committed on SQLite)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._waiting: dict[int, set[asyncio.Event]] = {}
        # What this process knows of scanners without work (loop thread only): the
        # announcement counter, the last one naming each scanner, and the scanners whose
        # claim found nothing with no announcement since (counter before it, and when).
        self._seq = 0
        self._announced: dict[int, int] = {}
        self._all_announced = 0
        self._idle: dict[int, tuple[int, float]] = {}
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
        self._seq += 1
        parts = payload.split(",")
        if "*" in parts:
            self._all_announced = self._seq
            self._idle.clear()
            events = [e for waiting in self._waiting.values() for e in waiting]
        else:
            ids = [int(part) for part in parts if part.isdigit()]
            for scanner_id in ids:
                self._announced[scanner_id] = self._seq
                self._idle.pop(scanner_id, None)
            events = [e for scanner_id in ids for e in self._waiting.get(scanner_id, ())]
        for event in events:
            event.set()

    def before_claim(self) -> int:
        """The announcement counter, taken before a claim for :meth:`found_nothing`."""
        return self._seq

    def found_nothing(self, scanner_id: int, *, since: int) -> None:
        """A claim for ``scanner_id`` (begun at counter ``since``) found no work: until work
        is announced for it, its long polls need not claim before they wait."""
        if max(self._announced.get(scanner_id, 0), self._all_announced) <= since:
            self._idle[scanner_id] = (since, time.monotonic())

    def known_idle(self, scanner_id: int) -> bool:
        """No work for ``scanner_id`` was announced since a claim of its found none, less than
        ``IDLE_TRUST_S`` ago (work made claimable without an announcement is found then)."""
        idle = self._idle.get(scanner_id)
        return idle is not None and time.monotonic() - idle[1] < IDLE_TRUST_S

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
