"""The dispatcher loop: a thread per server process that ticks, or wakes when poked."""

from __future__ import annotations

import logging
import socket
import threading
import time
import uuid
from datetime import datetime

from quipu.clock import Clock, SystemClock
from quipu.dispatch.dispatcher import advance, running_job_ids, start_queued_jobs
from quipu.dispatch.schedules import fire_due
from quipu.dispatch.stalls import watch
from quipu.dispatch.sweeps import hold_lease, sweep_heartbeats
from quipu.dispatch.windows import defer_closed
from quipu.services.scan_jobs import expire_held
from quipu.settings import Settings
from quipu.store import Store

log = logging.getLogger(__name__)

SWEEPER_LEASE = "heartbeat-sweeper"


class DispatchLoop:
    """Runs :meth:`tick` every ``dispatch_interval_s``, and at once after :meth:`poke`."""

    def __init__(self, store: Store, *, settings: Settings, clock: Clock | None = None) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock or SystemClock()
        self.node = f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}"
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def tick(self, now: datetime | None = None, *, sweep: bool = True) -> None:
        """One pass; ``sweep``: also re-assign silent scanners' work and watch for stalls
        (the loop does that at most once an interval, however often it is poked)."""
        now = now or self.clock.now()
        fire_due(self.store, settings=self.settings, now=now)
        expire_held(self.store, now=now)
        defer_closed(self.store, now=now)
        start_queued_jobs(self.store, max_running=self.settings.max_running_jobs, now=now)
        for job_id in running_job_ids(self.store):
            advance(self.store, job_id=job_id, settings=self.settings, now=now)
        lease_s = max(3 * self.settings.dispatch_interval_s, 5.0)
        if sweep and hold_lease(
            self.store, name=SWEEPER_LEASE, holder=self.node, now=now, ttl_s=lease_s
        ):
            if sweep_heartbeats(self.store, settings=self.settings, now=now):
                self.poke()
            watch(self.store, settings=self.settings, now=now)
        # Jobs that ended this tick free a slot for the next queued one.
        start_queued_jobs(self.store, max_running=self.settings.max_running_jobs, now=now)

    def poke(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="quipu-dispatcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        log.info("dispatcher %s started", self.node)
        swept = 0.0
        while not self._stop.is_set():
            self._wake.clear()
            sweep = time.monotonic() - swept >= self.settings.dispatch_interval_s
            if sweep:
                swept = time.monotonic()
            try:
                self.tick(sweep=sweep)
            except Exception:
                log.exception("dispatcher tick failed; retrying")
            self._wake.wait(self.settings.dispatch_interval_s)
        log.info("dispatcher %s stopped", self.node)
