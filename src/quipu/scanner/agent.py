"""The scanner agent: heartbeats, claims jobs, runs their collectors, reports, obeys stop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from typing import Any

import quipu
from quipu import wire
from quipu.collectors.base import Run, SourceUnavailable
from quipu.scanner.client import ProtocolError, ScannerClient

log = logging.getLogger(__name__)

Collector = Run
"""Runs one job: calls ``emit`` with each per-system result; returns early when stop is set."""


class Agent:
    """Pulls jobs from a server and runs up to ``concurrency`` of them at once."""

    def __init__(
        self,
        *,
        client: ScannerClient,
        collector: Collector,
        concurrency: int = 2,
        heartbeat_s: float = 15,
        poll_s: float = 1.0,
        wait_s: float = 20,
        progress_s: float = 1.0,
        batch_size: int = 100,
    ) -> None:
        self.client = client
        self.collector = collector
        self.concurrency = concurrency
        self.heartbeat_s = heartbeat_s
        self.poll_s = poll_s
        """The pause between claims when the server does not hold them (no long poll)."""
        self.wait_s = wait_s
        """How long a claim waits at the server for work (a long poll); 0: it does not."""
        self.progress_s = progress_s
        self.batch_size = batch_size
        self.agent_id = uuid.uuid4().hex
        self.shutdown = asyncio.Event()
        self._running: dict[int, asyncio.Task[None]] = {}
        self._job_ended = asyncio.Event()

    async def run(self) -> None:
        """Work until :attr:`shutdown` is set; then release unfinished jobs and return."""
        await self.client.heartbeat(
            version=quipu.__version__, capacity=self.concurrency, agent_id=self.agent_id
        )
        beats = asyncio.create_task(self._heartbeats())
        try:
            while not self.shutdown.is_set():
                free = self.concurrency - len(self._running)
                if free <= 0:
                    # No claim while every slot is busy: a job's end frees one.
                    self._job_ended.clear()
                    await _first_of(self._job_ended, self.shutdown)
                    continue
                await self._claim(free)
        finally:
            if self._running:
                await asyncio.gather(*self._running.values(), return_exceptions=True)
            beats.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beats

    async def _claim(self, free: int) -> None:
        """One claim (a long poll), then the jobs it brought start.

        A shutdown does not wait out a long poll: after a second's grace the request is
        dropped. The server claims nothing for a long poll whose client has left, so only a
        claim made in the very instant of leaving can hold jobs for a scanner that never saw
        them, and those go back to pending once its heartbeats stop. What a claim brings after
        the shutdown began is given back.
        """
        began = time.monotonic()
        jobs: list[wire.Job] = []
        request = asyncio.ensure_future(self.client.claim(limit=free, wait=self.wait_s))
        await _first_of(request, self.shutdown)
        if not request.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(request), 1.0)
            request.cancel()
        try:
            jobs = await request
        except asyncio.CancelledError:
            if not request.cancelled():
                raise
        except (ProtocolError, ConnectionError, OSError) as error:
            log.warning("claim failed: %s", error)
        if self.shutdown.is_set():
            for job in jobs:
                await self._give_back(job)
            return
        for job in jobs:
            self._spawn(job)
        held = time.monotonic() - began
        if not jobs and (self.wait_s <= 0 or held < self.wait_s / 2):
            # Empty much sooner than asked: a failure, a server that does not hold claims
            # (older, or stopping), or no long poll at all. Pause, so as not to spin.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.shutdown.wait(), self.poll_s)

    async def _give_back(self, job: wire.Job) -> None:
        job_id = job.job_id
        try:
            await self.client.release(job_id)
        except (ProtocolError, ConnectionError, OSError) as error:
            log.warning("scanner job %s not given back: %s", job_id, error)
        else:
            log.info("scanner job %s released: claimed as the scanner shut down", job_id)

    def _spawn(self, job: wire.Job) -> None:
        job_id = job.job_id
        task = asyncio.create_task(self._run_job(job))
        self._running[job_id] = task

        def forget(_: asyncio.Task[None]) -> None:
            self._running.pop(job_id, None)
            self._job_ended.set()

        task.add_done_callback(forget)

    async def _heartbeats(self) -> None:
        switched = self.client.switched
        while True:
            # A move to another server is announced there at once, not a period later.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(switched.wait(), self.heartbeat_s)
            switched.clear()
            try:
                await self.client.heartbeat(
                    version=quipu.__version__, capacity=self.concurrency, agent_id=self.agent_id
                )
            except (ProtocolError, ConnectionError, OSError) as error:
                log.warning("heartbeat failed: %s", error)

    async def _run_job(self, job: wire.Job) -> None:
        job_id = job.job_id
        run = JobRun(self, job)
        try:
            await self.client.start(job_id)
            await run.execute()
        except ProtocolError as error:
            # The job is no longer ours (re-assigned, or the server refused it): drop it.
            log.warning("scanner job %s abandoned: %s", job_id, error)
        except Exception:
            log.exception("scanner job %s crashed", job_id)
            with contextlib.suppress(Exception):
                await run.flush()
                await self.client.complete(
                    job_id,
                    status="failed",
                    result_count=run.uploaded,
                    error_message="The scanner hit an unexpected error; see its log.",
                )


class JobRun:
    """One job on this scanner: results are batched, progress reported, stop obeyed."""

    def __init__(self, agent: Agent, job: wire.Job) -> None:
        self.agent = agent
        self.client = agent.client
        self.job = job
        self.job_id = job.job_id
        self.stop = asyncio.Event()
        self.pending: list[wire.SystemResult] = []
        self.seen = 0
        self.uploaded = 0
        self.stopped_by_server = False
        self.lost = False
        self._lock = asyncio.Lock()
        self._last_flush = time.monotonic()

    async def execute(self) -> None:
        reporter = asyncio.create_task(self._report())
        watcher = asyncio.create_task(self._watch_shutdown())
        error_message = None
        try:
            await self.agent.collector(self.job, self.emit, self.stop)
        except SourceUnavailable as error:
            error_message = str(error)
        finally:
            reporter.cancel()
            watcher.cancel()
            for task in (reporter, watcher):
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self.lost:
            return
        await self.flush()
        if self.stopped_by_server or self.agent.shutdown.is_set():
            # Not a failure of the work: the server pends it again (paused, or restarted
            # since) or cancels it, by the state of its scan job when it hears back.
            await self.client.release(self.job_id)
            why = "told to stop" if self.stopped_by_server else "the scanner is shutting down"
            log.info("scanner job %s released: %s", self.job_id, why)
            return
        await self.client.complete(
            self.job_id,
            status="failed" if error_message else "completed",
            result_count=self.uploaded,
            error_message=error_message,
        )
        log.info("scanner job %s done: %d results", self.job_id, self.uploaded)

    async def emit(self, result: wire.SystemResult) -> None:
        self.pending.append(result)
        self.seen += 1
        if len(self.pending) >= self.agent.batch_size:
            await self.flush()

    async def flush(self) -> None:
        async with self._lock:
            batch, self.pending = self.pending, []
            if batch:
                await self.client.results(self.job_id, batch)
                self.uploaded += len(batch)
            self._last_flush = time.monotonic()

    async def _report(self) -> None:
        while True:
            await asyncio.sleep(self.agent.progress_s)
            try:
                await self.flush()
                directive = await self.client.progress(
                    self.job_id, progress_count=self.seen, result_count=self.uploaded
                )
            except ProtocolError as error:
                # Re-assigned to another scanner, or refused: this scanner's work is void.
                log.warning("scanner job %s lost: %s", self.job_id, error)
                self.lost = True
                self.stop.set()
                return
            if directive == "stop":
                log.info("scanner job %s told to stop", self.job_id)
                self.stopped_by_server = True
                self.stop.set()
                return

    async def _watch_shutdown(self) -> None:
        await self.agent.shutdown.wait()
        self.stop.set()


async def _first_of(*waitables: asyncio.Event | asyncio.Future[Any]) -> None:
    """Returns when any of ``waitables`` (events are waited for until set) is done."""
    waits = [
        asyncio.ensure_future(w.wait()) if isinstance(w, asyncio.Event) else w for w in waitables
    ]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait, given in zip(waits, waitables, strict=True):
            if isinstance(given, asyncio.Event):
                wait.cancel()
