"""Notifications between ingest nodes: PostgreSQL LISTEN/NOTIFY, or in-process on SQLite.

A notification is sent inside the transaction that makes it true and delivered only when that
transaction commits (PostgreSQL queues NOTIFY until COMMIT; on SQLite the store delivers it
after the commit), so a listener never hears of a change it cannot read yet. On PostgreSQL
every node, and every worker process of a node, has one listening connection and hears every
node's notifications, its own included; on SQLite there is one process.

Channels carry short text payloads (PostgreSQL allows up to 8,000 bytes).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

import psycopg
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

WORK = "quipu_work"
"""Pending work exists for the scanners named (comma-separated ids): wake their long polls."""
SCANNERS = "quipu_scanners"
"""A scanner was disabled, re-keyed, re-bound or deleted (its id): forget its cached key."""
DISPATCH = "quipu_dispatch"
"""A scan job may advance (its id): wake the dispatcher."""

CHANNELS = (WORK, SCANNERS, DISPATCH)
_MAX_PAYLOAD = 7_900
_PENDING = "quipu_notifications"

Listener = Callable[[str], None]


def notify(session: Session, channel: str, payloads: Iterable[str]) -> None:
    """Send ``payloads`` on ``channel`` when ``session``'s transaction commits.

    Payloads are joined with commas into notifications under PostgreSQL's size limit."""
    for payload in _chunks(payloads):
        if session.get_bind().dialect.name == "postgresql":
            session.execute(
                text("SELECT pg_notify(:channel, :payload)"),
                {
                    "channel": channel,
                    "payload": payload,
                },
            )
        else:
            session.info.setdefault(_PENDING, []).append((channel, payload))


def _chunks(payloads: Iterable[str]) -> Iterable[str]:
    chunk: list[str] = []
    size = 0
    for payload in dict.fromkeys(payloads):
        if chunk and size + len(payload) + 1 > _MAX_PAYLOAD:
            yield ",".join(chunk)
            chunk, size = [], 0
        chunk.append(payload)
        size += len(payload) + 1
    if chunk:
        yield ",".join(chunk)


def committed(session: Session) -> list[tuple[str, str]]:
    """The in-process notifications of a session that just committed (SQLite), taken."""
    pending: list[tuple[str, str]] = session.info.pop(_PENDING, [])
    return pending


class Bus:
    """Delivers notifications to this process's listeners, each called with the payload.

    Listeners run on the bus's thread (PostgreSQL) or the committing thread (SQLite): they
    must be quick and thread-safe (hand over to an event loop with ``call_soon_threadsafe``).
    """

    def __init__(self) -> None:
        self._listeners: dict[str, list[Listener]] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._connection: psycopg.Connection[Any] | None = None

    def subscribe(self, channel: str, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` with each payload on ``channel``; returns the unsubscribe."""
        with self._lock:
            self._listeners.setdefault(channel, []).append(listener)

        def unsubscribe() -> None:
            with self._lock:
                listeners = self._listeners.get(channel, [])
                if listener in listeners:
                    listeners.remove(listener)

        return unsubscribe

    def deliver(self, channel: str, payload: str) -> None:
        with self._lock:
            listeners = list(self._listeners.get(channel, ()))
        for listener in listeners:
            try:
                listener(payload)
            except Exception:
                log.exception("a listener of %s failed", channel)

    def listen(self, engine: Engine) -> None:
        """On PostgreSQL, start the thread that LISTENs on every channel (idempotent)."""
        if engine.dialect.name != "postgresql" or self._thread is not None:
            return
        dsn = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._stop.clear()
        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(dsn, ready), name="quipu-listener", daemon=True
        )
        self._thread.start()
        ready.wait(10)

    def close(self) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(5)

    def _run(self, dsn: str, ready: threading.Event) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(dsn, autocommit=True) as connection:
                    for channel in CHANNELS:
                        connection.execute(f"LISTEN {channel}")
                    ready.set()
                    # Missed notifications while reconnecting: wake everything once.
                    self._wake_all()
                    while not self._stop.is_set():
                        for note in connection.notifies(timeout=1.0):
                            self.deliver(note.channel, note.payload)
            except psycopg.Error as error:
                ready.set()
                if self._stop.is_set():
                    return
                log.warning("listening for notifications failed (%s); reconnecting", error)
                self._stop.wait(1.0)

    def _wake_all(self) -> None:
        self.deliver(WORK, "*")
        self.deliver(SCANNERS, "*")
        self.deliver(DISPATCH, "*")
