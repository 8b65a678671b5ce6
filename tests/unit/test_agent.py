"""The agent against an in-memory client: long polls, busy slots, early answers, shutdown."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable
from typing import Any

from quipu import wire
from quipu.collectors.base import Emit
from quipu.scanner.agent import Agent


class FakeClient:
    """The scanner client's methods, on jobs held in memory. ``holds``: an empty claim waits
    for work up to its ``wait`` (a long poll), else it answers at once (an older server)."""

    def __init__(self, *, holds: bool = True) -> None:
        self.holds = holds
        self.pending: list[wire.Job] = []
        self.work = asyncio.Event()
        self.claims: list[tuple[float, int, float]] = []
        """(monotonic time, limit, wait) of each claim."""
        self.claims_answered = 0
        self.beats = 0
        self.started: list[int] = []
        self.completed: dict[int, str] = {}
        self.released: list[int] = []
        self.stopping = False
        self.switched = asyncio.Event()

    def add(self, *job_ids: int) -> None:
        self.pending += [
            wire.Job(job_id=n, scan_id=1, kind="connect", source_type="network", targets=[])
            for n in job_ids
        ]
        self.work.set()

    async def heartbeat(self, *, version: str, capacity: int, agent_id: str) -> None:
        self.beats += 1

    async def claim(self, *, limit: int, wait: float = 0) -> list[wire.Job]:
        self.claims.append((time.monotonic(), limit, wait))
        if not self.pending and self.holds and wait > 0:
            self.work.clear()
            try:
                await asyncio.wait_for(self.work.wait(), wait)
            except TimeoutError:
                pass
        jobs, self.pending = self.pending[:limit], self.pending[limit:]
        self.claims_answered += 1
        return jobs

    async def start(self, job_id: int) -> None:
        self.started.append(job_id)

    async def progress(self, job_id: int, *, progress_count: int, result_count: int) -> str:
        return "continue"

    async def results(self, job_id: int, results: list[wire.SystemResult]) -> int:
        return len(results)

    async def complete(
        self, job_id: int, *, status: str, result_count: int, error_message: str | None = None
    ) -> None:
        self.completed[job_id] = status

    async def release(self, job_id: int) -> None:
        self.released.append(job_id)

    async def aclose(self) -> None:
        pass


class Gate:
    """A collector whose jobs run until the test lets them end (or they are told to stop)."""

    def __init__(self) -> None:
        self.end: dict[int, asyncio.Event] = {}

    async def __call__(self, job: wire.Job, emit: Emit, stop: asyncio.Event) -> None:
        end = self.end.setdefault(job.job_id, asyncio.Event())
        await emit(wire.SystemResult(system=f"10.0.0.{job.job_id}", status="unreachable"))
        ended = asyncio.create_task(end.wait())
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait({ended, stopped}, return_when=asyncio.FIRST_COMPLETED)
        ended.cancel()
        stopped.cancel()


def agent(client: FakeClient, **options: Any) -> Agent:
    defaults: dict[str, Any] = {"concurrency": 2, "heartbeat_s": 60, "progress_s": 60}
    made = Agent(client=client, collector=Gate(), **{**defaults, **options})  # type: ignore[arg-type]
    return made


async def until(check: Callable[[], bool], timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(scenario(), 20))


def test_claims_wait_at_the_server_for_work() -> None:
    async def scenario() -> None:
        client = FakeClient()
        worker = agent(client, wait_s=0.4, poll_s=5)
        running = asyncio.create_task(worker.run())
        await asyncio.sleep(1.0)
        worker.shutdown.set()
        await running
        assert {wait for _, _, wait in client.claims} == {0.4}
        # Held at the server, not re-sent in a loop (nor paced by poll_s, which is 5 s).
        assert 1 <= len(client.claims) <= 4, client.claims

    run(scenario)


def test_no_claim_while_every_slot_is_busy() -> None:
    async def scenario() -> None:
        client = FakeClient()
        worker = agent(client, wait_s=0.05, poll_s=0.01)
        collector = worker.collector
        assert isinstance(collector, Gate)
        client.add(1, 2)
        running = asyncio.create_task(worker.run())
        await until(lambda: client.started == [1, 2])
        claims = len(client.claims)
        await asyncio.sleep(0.5)
        assert len(client.claims) == claims, "claimed with every slot busy"
        collector.end[1].set()
        await until(lambda: len(client.claims) > claims)
        assert client.claims[claims][1] == 1, "one slot free: one job asked for"
        assert client.completed == {1: "completed"}
        worker.shutdown.set()
        await running

    run(scenario)


def test_a_long_poll_answered_early_falls_back_to_poll_s() -> None:
    async def scenario() -> None:
        client = FakeClient(holds=False)
        worker = agent(client, wait_s=10, poll_s=0.1)
        running = asyncio.create_task(worker.run())
        await asyncio.sleep(0.55)
        worker.shutdown.set()
        await running
        times = [t for t, _, _ in client.claims]
        assert 2 <= len(times) <= 7, f"{len(times)} claims in 0.55 s"
        assert min(b - a for a, b in itertools.pairwise(times)) >= 0.09

    run(scenario)


def test_shutdown_releases_unfinished_jobs() -> None:
    async def scenario() -> None:
        client = FakeClient()
        worker = agent(client, wait_s=0.2)
        client.add(1, 2)
        running = asyncio.create_task(worker.run())
        await until(lambda: client.started == [1, 2])
        worker.shutdown.set()
        await running
        assert sorted(client.released) == [1, 2]
        assert client.completed == {}

    run(scenario)


def test_shutdown_waits_for_a_claim_in_flight_and_gives_its_jobs_back() -> None:
    async def scenario() -> None:
        client = FakeClient()
        worker = agent(client, wait_s=5)
        running = asyncio.create_task(worker.run())
        await until(lambda: len(client.claims) == 1)
        worker.shutdown.set()
        await asyncio.sleep(0.1)
        assert not running.done(), "the claim in flight was abandoned"
        client.add(7)  # what the server claimed for that request
        await running
        assert client.claims_answered == 1
        assert (client.started, client.released) == ([], [7])

    run(scenario)


def test_a_move_to_another_server_is_announced_by_a_heartbeat_at_once() -> None:
    async def scenario() -> None:
        client = FakeClient()
        worker = agent(client, wait_s=1)
        running = asyncio.create_task(worker.run())
        await until(lambda: client.beats == 1)
        client.switched.set()
        await until(lambda: client.beats == 2, timeout=1)
        worker.shutdown.set()
        await running

    run(scenario)
