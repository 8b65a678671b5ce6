"""Fleet benchmark: 10,000 simulated scanners on two ingest nodes, and one node SIGKILLed.

Run: ``python -m bench.fleet [--smoke] [--scanners N] [--busy N] [--workers N] [--output PATH]``.

Two ``quipu server --http --no-builtin-scanner`` processes (the ingest nodes) share one new
PostgreSQL database. One process of this benchmark (asyncio, uvloop when installed) plays
every scanner, each on one persistent HTTP/1.1 connection of its own (a small client on
asyncio streams: httpx's per-request cost would be the bottleneck at this rate), half of them
on each node, with both nodes' URLs to fail over to. Each scanner does what ``quipu scanner
run`` does: a heartbeat every 15 s; between heartbeats a long poll
(``GET /scanner/jobs?wait=S``) that the server answers as soon as work for it exists; a job
that comes is started, reports progress, uploads its result (one system) and completes; while
work comes, the next claim does not wait. A failed request moves the scanner to the other
node at once, where it heartbeats and repeats the request (a claim under its claim id).

Phases: ramp (scanners connect and heartbeat, spread over one heartbeat interval), idle (no
work: the cost of an idle fleet), work (a running scan job whose jobs go to ``--busy``
scanners, kept topped up so that each always has work, claimed and completed), the SIGKILL of
the first node (its process group, every worker), work on the survivor, then a drain: no new
work, every job finishes. Figures:

* ``fleet-idle``: requests/s and the CPU the nodes spend per 1,000 idle scanners (percent of
  one core, from /proc utime+stime), and PostgreSQL's and this client's beside it;
* ``fleet-<call>`` for heartbeat, claim (one that does not wait), start, progress, results and
  complete while work flows on two nodes: p50, p99 and max latency, count, errors (goal p99 <
  50 ms, zero errors); long polls are counted, not timed;
* ``fleet-kill``: jobs/s completed in the window before the kill and in the one after it (from
  2 s after, when the scanners have moved), their ratio (goal >= 0.95), and how long the first
  node's scanners took to be answered on the survivor, p50/p99/max (goal <= 5 s);
* ``fleet-integrity``: every job completed, each claimed once (``attempts``), every result
  a scanner was told was accepted is in the database; the run exits 1 otherwise.

``--smoke``: 200 scanners, 20 busy, a 2 s heartbeat and phases of a few seconds. There is no
reference tool for a fleet: the goals above stand beside the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import secrets
import shutil
import signal
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import func, insert, select

from bench.claims import PG_URL, Server, fresh_database, loop_name, run_async, seed, serverversion
from bench.machine import machine, version
from quipu.domain.states import ScannerJobStatus, TaskKind
from quipu.services.scanners import key_digest
from quipu.store import Store, notify
from quipu.store.tables import Scanner, ScannerJob, SystemResult, Task

RESULTS = Path(__file__).parent / "results"
CALLS = ("heartbeat", "claim", "start", "progress", "results", "complete")
GOAL_P99_MS = 50.0
GOAL_KEPT = 0.95
GOAL_SWITCH_S = 5.0
OPEN = (ScannerJobStatus.PENDING.value, ScannerJobStatus.CLAIMED.value, "running")
TICK = os.sysconf("SC_CLK_TCK")
UNAVAILABLE = frozenset({502, 503, 504})
"""Answers that move a scanner to its next server, as ``quipu scanner run`` does."""


def _print(line: str) -> None:
    print(line, flush=True)


@dataclass
class Plan:
    scanners: int
    busy: int
    heartbeat_s: float
    ramp_s: float
    idle_s: float
    before_s: float
    after_s: float
    drain_s: float
    job_s: float
    workers: int

    @classmethod
    def of(cls, args: argparse.Namespace) -> Plan:
        smoke = args.smoke
        return cls(
            scanners=args.scanners or (200 if smoke else 10_000),
            busy=args.busy or (20 if smoke else 500),
            heartbeat_s=2.0 if smoke else 15.0,
            ramp_s=2.0 if smoke else 15.0,
            idle_s=4.0 if smoke else 30.0,
            before_s=4.0 if smoke else 30.0,
            after_s=4.0 if smoke else 30.0,
            drain_s=60.0 if smoke else 180.0,
            job_s=args.job_s if args.job_s is not None else (0.5 if smoke else 5.0),
            workers=args.workers,
        )


# The simulated scanners' HTTP client ------------------------------------------------------------


class Failed(Exception):
    """A request that failed for good: an error status, or every server failing for 60 s."""


@dataclass
class Stats:
    """What the scanners saw, per phase and call."""

    phase: str = "ramp"
    latencies: dict[tuple[str, str], list[float]] = field(default_factory=lambda: defaultdict(list))
    requests: Counter[str] = field(default_factory=Counter)
    errors: Counter[tuple[str, str]] = field(default_factory=Counter)
    failovers: int = 0
    long_polls: Counter[str] = field(default_factory=Counter)
    completed_at: list[float] = field(default_factory=list)
    accepted_systems: set[str] = field(default_factory=set)
    claimed: list[int] = field(default_factory=list)
    killed_at: float | None = None
    switched_s: list[float] = field(default_factory=list)
    began: float = 0.0

    def record(self, call: str, seconds: float) -> None:
        self.requests[self.phase] += 1
        if call != "long poll":
            self.latencies[(self.phase, call)].append(seconds * 1000)


class Connection:
    """One scanner's keep-alive connection to the first of its servers that answers."""

    def __init__(self, servers: Sequence[tuple[str, int]], key: str, stats: Stats) -> None:
        self.servers = list(servers)
        self.current = 0
        self.key = key
        self.stats = stats
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.moved_after_kill = False

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def call(
        self, call: str, method: str, target: str, body: Any = None, *, timeout: float = 30
    ) -> Any:
        """The answer's JSON body; a failure moves to the next server at once (heartbeating
        there first) and repeats the request, backing off once every server failed."""
        delay, gave_up_at = 0.25, time.monotonic() + 60
        failed_in_turn = 0
        while True:
            began = time.perf_counter()
            try:
                status, answer = await asyncio.wait_for(
                    self._exchange(method, target, body), timeout
                )
            except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as error:
                self.close()
                if time.monotonic() > gave_up_at:
                    self.stats.errors[(call, type(error).__name__)] += 1
                    raise Failed(f"{call}: {error!r}") from error
                self.stats.failovers += 1
                self.current = (self.current + 1) % len(self.servers)
                failed_in_turn += 1
                if failed_in_turn >= len(self.servers):
                    failed_in_turn = 0
                    await asyncio.sleep(delay * (0.5 + random.random()))
                    delay = min(delay * 2, 5)
                if call != "heartbeat":
                    with contextlib.suppress(Failed):
                        await self.call("heartbeat", "POST", "/scanner/heartbeat", BEAT)
                continue
            if status in UNAVAILABLE:
                self.close()
                self.current = (self.current + 1) % len(self.servers)
                self.stats.failovers += 1
                await asyncio.sleep(delay * random.random())
                continue
            self.stats.record(call, time.perf_counter() - began)
            if self.stats.killed_at is not None and self.current != 0 and not self.moved_after_kill:
                self.moved_after_kill = True
                self.stats.switched_s.append(time.monotonic() - self.stats.killed_at)
            if status >= 400:
                self.stats.errors[(call, str(status))] += 1
                raise Failed(f"{call}: HTTP {status} {answer}")
            return answer

    async def _exchange(self, method: str, target: str, body: Any) -> tuple[int, Any]:
        if self.writer is None:
            host, port = self.servers[self.current]
            self.reader, self.writer = await asyncio.open_connection(host, port)
        assert self.reader is not None
        data = b"" if body is None else json.dumps(body).encode()
        self.writer.write(
            f"{method} {target} HTTP/1.1\r\nHost: fleet\r\nX-API-Key: {self.key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n".encode()
            + data
        )
        head = (await self.reader.readuntil(b"\r\n\r\n")).lower()
        status = int(head[9:12])
        at = head.find(b"content-length:")
        if at < 0:
            raise ValueError("an answer without content-length")
        length = int(head[at + 15 : head.index(b"\r\n", at)])
        answer = json.loads(await self.reader.readexactly(length)) if length else None
        if b"connection: close" in head:
            self.close()
        return status, answer


BEAT = {"version": "fleet-bench", "capacity": 1}


async def simulated_scanner(
    connection: Connection,
    *,
    delay: float,
    heartbeat_s: float,
    job_s: float,
    stopping: asyncio.Event,
) -> None:
    """A scanner of capacity 1 on one connection: heartbeats, long polls between them, jobs."""
    await asyncio.sleep(delay)
    loop = asyncio.get_running_loop()
    stats = connection.stats
    next_beat = 0.0
    working = False
    while not stopping.is_set():
        try:
            now = loop.time()
            if now >= next_beat:
                await connection.call("heartbeat", "POST", "/scanner/heartbeat", BEAT)
                next_beat = max(next_beat + heartbeat_s, now + heartbeat_s / 2)
                continue
            claim = f"/scanner/jobs?limit=1&claimId={uuid.uuid4().hex}"
            if working:
                answer = await connection.call("claim", "GET", claim)
            else:
                wait = min(20.0, next_beat - now)
                if wait < 0.5:
                    await asyncio.sleep(wait)
                    continue
                answer = await connection.call(
                    "long poll", "GET", f"{claim}&wait={wait:.1f}", timeout=wait + 30
                )
                stats.long_polls["with work" if answer["jobs"] else "empty"] += 1
            jobs = answer["jobs"]
            working = bool(jobs)
            for job in jobs:
                await _work(connection, job["jobId"], job_s=job_s)
        except Failed:
            working = False
            await asyncio.sleep(1)


async def _work(connection: Connection, job_id: int, *, job_s: float) -> None:
    """A job as a scanner runs one: start, progress, work (``job_s`` on average), result,
    complete."""
    stats = connection.stats
    stats.claimed.append(job_id)
    path = f"/scanner/jobs/{job_id}"
    system = f"fleet-{job_id}.example"
    await connection.call("start", "POST", f"{path}/start")
    await connection.call(
        "progress", "POST", f"{path}/progress", {"progressCount": 1, "resultCount": 1}
    )
    await asyncio.sleep(job_s * (0.5 + random.random()))  # jobs differ: no lockstep
    await connection.call(
        "results",
        "POST",
        f"{path}/results",
        {"results": [{"system": system, "status": "success", "port": 22}]},
    )
    stats.accepted_systems.add(system)
    await connection.call(
        "complete", "POST", f"{path}/complete", {"status": "completed", "resultCount": 1}
    )
    stats.completed_at.append(time.monotonic())


# Work, the database, and CPU -----------------------------------------------------------------


def add_scanners(store: Store, count: int) -> list[tuple[int, str]]:
    """``count`` scanners, inserted as registration leaves them: (id, API key) each."""
    keys = [f"fleet-{n}-{secrets.token_hex(12)}" for n in range(count)]
    now = datetime.now(UTC)
    with store.transaction() as s:
        ids = s.scalars(
            insert(Scanner).returning(Scanner.id),
            [
                {
                    "name": f"fleet-{n}",
                    "api_key_hash": key_digest(key),
                    "bind": [],
                    "created_at": now,
                }
                for n, key in enumerate(keys)
            ],
        ).all()
    return list(zip(ids, keys, strict=True))


class Feeder:
    """Keeps each busy scanner's open jobs topped up (as a dispatcher handing out a large
    scan would), announcing new work as the server does, so long polls wake at once."""

    LOW, DEPTH = 2, 3

    def __init__(self, store: Store, busy: Sequence[int]) -> None:
        self.store = store
        self.busy = list(busy)
        self.scan_job_id = seed(store, scanner_ids=self.busy, per_scanner=self.DEPTH)
        with store.transaction() as s:
            self.task_id = s.scalar(select(Task.id).where(Task.scan_job_id == self.scan_job_id))
            notify.notify(s, notify.WORK, (str(i) for i in self.busy))

    def top_up(self) -> int:
        now = datetime.now(UTC)
        with self.store.transaction() as s:
            open_jobs = dict(
                s.execute(
                    select(ScannerJob.scanner_id, func.count())
                    .where(ScannerJob.task_id == self.task_id, ScannerJob.status.in_(OPEN))
                    .group_by(ScannerJob.scanner_id)
                ).all()
            )
            low = [i for i in self.busy if open_jobs.get(i, 0) < self.LOW]
            if not low:
                return 0
            s.execute(
                insert(ScannerJob),
                [
                    {
                        "scan_job_id": self.scan_job_id,
                        "task_id": self.task_id,
                        "scanner_id": scanner_id,
                        "kind": TaskKind.CONNECT.value,
                        "status": ScannerJobStatus.PENDING.value,
                        "targets": [{"range": "127.0.100.1", "ports": [22]}],
                        "max_probes_per_second": 0.0,
                        "created_at": now,
                    }
                    for scanner_id in low
                    for _ in range(self.DEPTH)
                ],
            )
            notify.notify(s, notify.WORK, (str(i) for i in low))
        return len(low) * self.DEPTH

    def open_jobs(self) -> int:
        with self.store.transaction() as s:
            return int(
                s.scalar(
                    select(func.count()).where(
                        ScannerJob.task_id == self.task_id, ScannerJob.status.in_(OPEN)
                    )
                )
                or 0
            )

    def integrity(self, stats: Stats) -> dict[str, int]:
        with self.store.transaction() as s:
            total, completed, reclaimed = s.execute(
                select(
                    func.count(),
                    func.count().filter(ScannerJob.status == ScannerJobStatus.COMPLETED.value),
                    func.count().filter(ScannerJob.attempts > 1),
                ).where(ScannerJob.task_id == self.task_id)
            ).one()
            stored = set(
                s.scalars(select(SystemResult.system).where(SystemResult.task_id == self.task_id))
            )
        double = sum(1 for n in Counter(stats.claimed).values() if n > 1)
        return {
            "jobs": total,
            "completed": completed,
            "unfinished": total - completed,
            "double_claims": double + reclaimed,
            "results_accepted": len(stats.accepted_systems),
            "results_lost": len(stats.accepted_systems - stored),
        }


def cpu_seconds(pids: Iterable[int]) -> float:
    """User and system CPU of ``pids`` and all their descendants, from /proc."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            parents[int(entry.name)] = int(fields[1])
            times[int(entry.name)] = (int(fields[11]) + int(fields[12])) / TICK
    wanted = set(pids)
    grew = True
    while grew:
        more = {pid for pid, parent in parents.items() if parent in wanted} - wanted
        grew = bool(more)
        wanted |= more
    return sum(times.get(pid, 0.0) for pid in wanted)


def server_errors(node: Server) -> list[str]:
    """Each kind of exception a node's log shows, with how often."""
    seen: Counter[str] = Counter()
    lines = node.log_path.read_text(errors="replace").splitlines()
    for n, line in enumerate(lines):
        if line.startswith("Traceback"):
            last = next((x for x in lines[n + 1 :] if x and not x.startswith((" ", "\t"))), "")
            seen[last[:200]] += 1
    return [f"{count} x {what}" for what, count in seen.most_common()]


def postgres_pids() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() == "postgres":
                    pids.append(int(entry.name))
    return pids


@dataclass
class Meter:
    """CPU seconds of the nodes, PostgreSQL and this process over a wall-clock window."""

    nodes: Sequence[int]
    began: float = 0.0
    node_cpu: float = 0.0
    pg_cpu: float = 0.0
    own_cpu: float = 0.0

    def start(self) -> None:
        self.began = time.monotonic()
        self.node_cpu = cpu_seconds(self.nodes)
        self.pg_cpu = cpu_seconds(postgres_pids())
        self.own_cpu = time.process_time()

    def shares(self) -> tuple[float, float, float, float]:
        """Seconds of the window, then each one's share of one core over it."""
        wall = time.monotonic() - self.began
        return (
            wall,
            (cpu_seconds(self.nodes) - self.node_cpu) / wall,
            (cpu_seconds(postgres_pids()) - self.pg_cpu) / wall,
            (time.process_time() - self.own_cpu) / wall,
        )


# The run ----------------------------------------------------------------------------------------


def _quantiles(values: Sequence[float]) -> tuple[float, float, float]:
    if not values:
        return 0.0, 0.0, 0.0
    if len(values) == 1:
        return values[0], values[0], values[0]
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[49], cuts[98], max(values)


def _elapsed(stats: Stats) -> str:
    return f"{time.monotonic() - stats.began:.0f} s ({stats.requests[stats.phase]} requests)"


def _rate(times: Sequence[float], begin: float, end: float) -> float:
    return sum(1 for t in times if begin <= t < end) / (end - begin) if end > begin else 0.0


async def _phase(stats: Stats, name: str, seconds: float) -> float:
    stats.phase = name
    began = time.monotonic()
    await asyncio.sleep(seconds)
    return time.monotonic() - began


async def simulate(
    plan: Plan, nodes: Sequence[Server], store: Store, scanners: Sequence[tuple[int, str]]
) -> dict[str, Any]:
    stats = Stats()
    stats.began = time.monotonic()
    stopping = asyncio.Event()
    addresses = []
    for node in nodes:
        parts = urlsplit(node.url)
        addresses.append((parts.hostname or "127.0.0.1", parts.port or 80))
    connections = []
    for n, (_, key) in enumerate(scanners):
        own = n % len(addresses)  # half on each node, the other to fail over to
        connections.append(Connection(addresses[own:] + addresses[:own], key, stats))
    runners = [
        asyncio.create_task(
            simulated_scanner(
                c,
                delay=plan.ramp_s * n / len(connections),
                heartbeat_s=plan.heartbeat_s,
                job_s=plan.job_s,
                stopping=stopping,
            )
        )
        for n, c in enumerate(connections)
    ]
    meter = Meter([node.process.pid for node in nodes])
    out: dict[str, Any] = {}
    try:
        await _phase(stats, "ramp", plan.ramp_s + plan.heartbeat_s / 2)
        requests_before = stats.requests["idle"]
        meter.start()
        await _phase(stats, "idle", plan.idle_s)
        wall, node_share, pg_share, own_share = meter.shares()
        _print(f"bench note: idle phase done at {_elapsed(stats)}")
        out["idle"] = {
            "seconds": wall,
            "requests_per_s": (stats.requests["idle"] - requests_before) / wall,
            "node_cpu_per_1000": 100 * node_share * 1000 / plan.scanners,
            "pg_cpu_per_1000": 100 * pg_share * 1000 / plan.scanners,
            "client_cpu_per_1000": 100 * own_share * 1000 / plan.scanners,
        }
        feeder = await asyncio.to_thread(
            Feeder, store, [scanner_id for scanner_id, _ in scanners[: plan.busy]]
        )
        feeding = asyncio.create_task(_feed(feeder, stopping))
        # The scan's first jobs all start at once: measure once they have drifted apart.
        await _phase(stats, "warm", min(3 * plan.job_s + 5, plan.before_s))
        meter.start()
        began = time.monotonic()
        await _phase(stats, "work", plan.before_s)
        wall, node_share, pg_share, own_share = meter.shares()
        out["work"] = {
            "seconds": wall,
            "requests_per_s": stats.requests["work"] / wall,
            "node_cpu": 100 * node_share,
            "pg_cpu": 100 * pg_share,
            "client_cpu": 100 * own_share,
        }
        before = _rate(stats.completed_at, began, time.monotonic())
        _print(f"bench note: work phase done at {_elapsed(stats)}, {before:.0f} jobs/s")
        stats.phase = "kill"
        stats.killed_at = time.monotonic()
        nodes[0].kill()
        settle = min(2.0, plan.after_s / 2)
        await asyncio.sleep(settle)
        began = time.monotonic()
        await _phase(stats, "after", plan.after_s)
        after = _rate(stats.completed_at, began, time.monotonic())
        _print(f"bench note: after the kill at {_elapsed(stats)}, {after:.0f} jobs/s")
        moving = sum(1 for n in range(len(connections)) if n % len(addresses) == 0)
        out["kill"] = {"before_jobs_per_s": before, "after_jobs_per_s": after, "moving": moving}
        feeding.cancel()
        stats.phase = "drain"
        deadline = time.monotonic() + plan.drain_s
        while time.monotonic() < deadline and await asyncio.to_thread(feeder.open_jobs):
            await asyncio.sleep(0.5)
        stopping.set()
        out["integrity"] = await asyncio.to_thread(feeder.integrity, stats)
    finally:
        stopping.set()
        for runner in runners:
            runner.cancel()
        await asyncio.gather(*runners, return_exceptions=True)
        for connection in connections:
            connection.close()
    out["stats"] = stats
    return out


async def _feed(feeder: Feeder, stopping: asyncio.Event) -> None:
    while not stopping.is_set():
        await asyncio.to_thread(feeder.top_up)
        await asyncio.sleep(0.5)


def _ms(value: float) -> str:
    return f"{value:.1f}ms"


def report_lines(plan: Plan, out: dict[str, Any]) -> tuple[list[str], bool]:
    """The figure lines, and whether the run kept its integrity."""
    stats: Stats = out["stats"]
    lines = []
    idle = out["idle"]
    lines.append(
        f"bench fleet-idle: scanners={plan.scanners} requests={idle['requests_per_s']:.0f}/s "
        f"node_cpu={idle['node_cpu_per_1000']:.1f}% pg_cpu={idle['pg_cpu_per_1000']:.1f}% "
        f"client_cpu={idle['client_cpu_per_1000']:.1f}% (of one core, per 1,000 idle scanners)"
    )
    work = out["work"]
    lines.append(
        f"bench fleet-work: scanners={plan.scanners} busy={plan.busy} nodes=2 "
        f"workers={plan.workers} requests={work['requests_per_s']:.0f}/s "
        f"node_cpu={work['node_cpu']:.0f}% pg_cpu={work['pg_cpu']:.0f}% "
        f"client_cpu={work['client_cpu']:.0f}% (of one core)"
    )
    for call in CALLS:
        p50, p99, top = _quantiles(stats.latencies[("work", call)])
        errors = sum(n for (c, _), n in stats.errors.items() if c == call)
        verdict = "met" if p99 < GOAL_P99_MS and not errors else "missed"
        lines.append(
            f"bench fleet-{call}: p50={_ms(p50)} p99={_ms(p99)} max={_ms(top)} "
            f"n={len(stats.latencies[('work', call)])} errors={errors} "
            f"(goal p99 < {GOAL_P99_MS:.0f} ms, no errors: {verdict})"
        )
    kill = out["kill"]
    kept = kill["after_jobs_per_s"] / kill["before_jobs_per_s"] if kill["before_jobs_per_s"] else 0
    s50, s99, stop = _quantiles(stats.switched_s)
    all_moved = len(stats.switched_s) == kill["moving"]
    lines.append(
        f"bench fleet-kill: before={kill['before_jobs_per_s']:.0f} jobs/s "
        f"after={kill['after_jobs_per_s']:.0f} jobs/s kept={kept:.2f} "
        f"(goal >= {GOAL_KEPT:.2f}: {'met' if kept >= GOAL_KEPT else 'missed'}) "
        f"switched={len(stats.switched_s)}/{kill['moving']} p50={s50:.2f}s p99={s99:.2f}s "
        f"max={stop:.2f}s (goal <= {GOAL_SWITCH_S:.0f} s: "
        f"{'met' if stop <= GOAL_SWITCH_S and all_moved else 'missed'}) "
        f"failovers={stats.failovers}"
    )
    integrity = out["integrity"]
    ok = (
        integrity["unfinished"] == 0
        and integrity["double_claims"] == 0
        and integrity["results_lost"] == 0
        and integrity["jobs"] > 0
    )
    lines.append(
        "bench fleet-integrity: "
        + " ".join(f"{k}={v}" for k, v in integrity.items())
        + f" errors={sum(stats.errors.values())}"
        + f" long_polls={stats.long_polls['with work']}+{stats.long_polls['empty']}"
        + f" ({'ok' if ok else 'BROKEN'})"
    )
    return lines, ok


def run(args: argparse.Namespace) -> tuple[dict[str, Any], list[str], bool]:
    plan = Plan.of(args)
    info = machine(
        postgresql=serverversion(args.pg_url),
        sqlalchemy=version("sqlalchemy"),
        psycopg=version("psycopg"),
        uvicorn=version("uvicorn"),
        loop=loop_name(),
    )
    _print(
        f"bench machine: cores={info['cores']} memory={info['memory_gib']}GiB "
        f"python={info['python']} postgresql={info['postgresql']} loop={info['loop']}"
    )
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(fresh_database(args.pg_url, prefix="quipu_bench_fleet"))
        data = Path(tempfile.mkdtemp(prefix="quipu-bench-fleet-"))
        stack.callback(shutil.rmtree, data, ignore_errors=True)
        node_args = ["--no-builtin-scanner", "--workers", str(plan.workers)]
        nodes = []
        for n in range(2):
            node = Server.start(
                data_dir=data / f"node-{n}",
                database_url=url,
                args=node_args,
                # Small in smoke runs, which share the database server with other tests.
                env={"QUIPU_DB_POOL_SIZE": "8" if args.smoke else "40"},
            )
            stack.callback(node.stop)
            nodes.append(node)
        store = Store.from_url(url)
        stack.callback(store.dispose)
        scanners = add_scanners(store, plan.scanners)
        out = run_async(simulate(plan, nodes, store, scanners))
        for n, node in enumerate(nodes):
            for line in server_errors(node):
                _print(f"bench warning: node {n}: {line}")
    lines, ok = report_lines(plan, out)
    for line in lines:
        _print(line)
    stats: Stats = out.pop("stats")
    for (call, why), count in sorted(stats.errors.items()):
        _print(f"bench warning: {call} failed {count} times: {why}")
    report = {
        "benchmark": "fleet",
        "machine": info,
        "smoke": args.smoke,
        "plan": plan.__dict__,
        "figures": lines,
        **out,
        "latency_ms": {
            f"{phase}/{call}": dict(zip(("p50", "p99", "max"), _quantiles(values), strict=True))
            for (phase, call), values in sorted(stats.latencies.items())
        },
        "errors": {f"{call}/{why}": n for (call, why), n in stats.errors.items()},
        "switch_s": dict(zip(("p50", "p99", "max"), _quantiles(stats.switched_s), strict=True)),
    }
    return report, lines, ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.fleet", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument("--smoke", action="store_true", help="a small fleet, short phases")
    parser.add_argument("--scanners", type=int, help="simulated scanners (default 10,000)")
    parser.add_argument("--busy", type=int, help="scanners that get work (default 500)")
    parser.add_argument(
        "--job-s", type=float, help="seconds a simulated job works (default 5; smoke 0.5)"
    )
    parser.add_argument("--workers", type=int, default=1, help="processes per ingest node")
    parser.add_argument("--pg-url", default=PG_URL, help="a database on the server to use")
    parser.add_argument("--output", type=Path, help="where to write the figures as JSON")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    report, _, ok = run(args)
    output = args.output or RESULTS / ("fleet-smoke.json" if args.smoke else "fleet.json")
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=4, sort_keys=True, default=str) + "\n")
    _print(f"bench results: {output}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
