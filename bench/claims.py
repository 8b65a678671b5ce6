"""Claim benchmark: scanner job cycles per second (claim, start, complete) against PgQueuer.

Run: ``python -m bench.claims [--smoke] [--jobs N] [--http-jobs N] [--output PATH]``.

Three measures, each at 1, 8 and 32 concurrent claimers, on the local PostgreSQL:

* ``claims-direct-C``: C threads share one scanner's pending jobs, all of one running scan
  job. Each claims up to ``--batch`` jobs in one transaction with ``claim_scanner_jobs`` (the
  one-statement ``FOR UPDATE SKIP LOCKED`` claim), then moves each job with the service
  functions the scanner API calls, ``protocol.start`` and ``protocol.complete`` (one
  transaction each), until nothing is left. Figure: jobs seeded / seconds to drain.
* ``claims-http-C``: a real ``quipu server --http --no-builtin-scanner`` process; C scanners
  registered through the API, each with its own share of the jobs, and one claimer per
  scanner doing ``GET /scanner/jobs?limit=batch``, ``POST .../start``, ``POST .../complete``
  until drained (asyncio and httpx, uvloop when installed).
* the reference: PgQueuer's drain benchmark (its repository's ``tools/benchmark.py
  --strategy drain``, which the package does not install) rebuilt with PgQueuer's public
  API, on a database of its own: jobs enqueued in one call as its benchmark does (half to an
  ``asyncfetch`` entrypoint, half to ``syncfetch``, whose thread PgQueuer 1.x no longer
  starts itself, so the entrypoint does), then C ``PgQueuer`` consumers, each with its own
  asyncpg connection, ``run(batch_size=batch, mode=drain)`` until the queue is empty.

Sizes: 5,000 jobs per direct round, 20,000 per PgQueuer round (its own default is 50,000),
1,024 per HTTP round (one /16 network's connection task at 64 systems per job); batch 10
(PgQueuer's default, and the scanner API's cap); three rounds each, alternating Quipu and
PgQueuer, median reported. ``--smoke``: a few hundred jobs, one round, and PgQueuer skipped
when it is not installed. The server runs as shipped (log level info, dispatcher on).

Every round checks that each job was claimed exactly once (the claimers' records, and the
``attempts`` column) and that none is left unfinished: ``double_claims`` and ``lost``; the
run exits 1 if either is not 0. Goals (reported, never asserted): direct >= 1.0x PgQueuer,
HTTP >= 0.3x PgQueuer, both at 32.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psycopg
from psycopg import sql
from sqlalchemy import func, insert, select
from sqlalchemy.engine import make_url

from bench.machine import machine, version
from quipu.domain.states import ScanJobStatus, ScannerJobStatus, TaskKind, TaskStatus
from quipu.services import protocol
from quipu.store import Store
from quipu.store.engine import create_engine
from quipu.store.migrate import upgrade
from quipu.store.statements import claim_scanner_jobs
from quipu.store.tables import Scan, ScanJob, Scanner, ScannerJob, Task

RESULTS = Path(__file__).parent / "results"
CONCURRENCY = (1, 8, 32)
BATCH = 10
PG_URL = (
    os.environ.get("QUIPU_BENCH_PG_URL")
    or os.environ.get("QUIPU_TEST_PG_URL")
    or "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
"""A database of the PostgreSQL server to measure on; the benchmark makes and drops its own."""

T = TypeVar("T")


def _now() -> datetime:
    return datetime.now(UTC)


def loop_name() -> str:
    """``uvloop`` when it is installed (as the scanner and PgQueuer's benchmark use it)."""
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"


def run_async(coroutine: Coroutine[Any, Any, T]) -> T:
    if loop_name() == "uvloop":
        import uvloop

        return uvloop.run(coroutine)
    return asyncio.run(coroutine)


# PostgreSQL databases of the benchmark's own ------------------------------------------------


def _admin(pg_url: str) -> psycopg.Connection[tuple[Any, ...]]:
    url = make_url(pg_url)
    return psycopg.connect(
        host=url.host or "127.0.0.1",
        port=url.port or 5432,
        user=url.username or "postgres",
        password=url.password,
        dbname=url.database or "postgres",
        autocommit=True,
    )


def serverversion(pg_url: str) -> str:
    with _admin(pg_url) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return str(row[0]) if row else "unknown"


@contextlib.contextmanager
def fresh_database(pg_url: str, *, prefix: str) -> Iterator[str]:
    """A new empty database on the server of ``pg_url``, dropped afterwards; yields its URL."""
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with _admin(pg_url) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield make_url(pg_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with _admin(pg_url) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def libpq_dsn(url: str) -> str:
    """The plain ``postgresql://`` DSN asyncpg takes, for a SQLAlchemy URL."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


# A real server process ------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    """A ``quipu server --http`` subprocess on a free loopback port."""

    url: str
    password: str
    process: subprocess.Popen[bytes]
    log_path: Path
    env: dict[str, str]

    @classmethod
    def start(
        cls,
        *,
        data_dir: Path,
        database_url: str,
        env: Mapping[str, str] | None = None,
        args: Sequence[str] = ("--no-builtin-scanner",),
    ) -> Server:
        """Start it and wait until it answers (or raise with its log)."""
        port = free_port()
        data_dir.mkdir(parents=True, exist_ok=True)
        password = secrets.token_urlsafe(18)
        full_env = {
            **os.environ,
            "QUIPU_DATA_DIR": str(data_dir),
            "QUIPU_DATABASE_URL": database_url,
            "QUIPU_ADMIN_PASSWORD": password,
            **(env or {}),
        }
        log_path = data_dir / "server.log"
        command = [sys.executable, "-m", "quipu.cli.quipu", "server", "--http"]
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [*command, "--port", str(port), *args],
                env=full_env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a group of its own, worker processes included
            )
        server = cls(f"http://127.0.0.1:{port}", password, process, log_path, full_env)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(
                    f"quipu server exited with {process.returncode}:\n{server.log()}"
                )
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{server.url}/api/v1/status/", timeout=1).status_code == 200:
                    return server
            time.sleep(0.1)
        server.stop()
        raise RuntimeError(f"quipu server did not answer within 60 s:\n{server.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:]

    def admin(self) -> httpx.Client:
        """An HTTP client logged in as admin."""
        response = httpx.post(
            f"{self.url}/api/v1/token/", json={"username": "admin", "password": self.password}
        )
        response.raise_for_status()
        token = response.json()["token"]
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Token {token}"}, timeout=60
        )

    def kill(self) -> None:
        """SIGKILL the server and its worker processes at once: a node lost."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


# Seeding ---------------------------------------------------------------------------------------


def seed(store: Store, *, scanner_ids: Sequence[int], per_scanner: int) -> int:
    """A running scan job with one running connection task and ``per_scanner`` pending jobs for
    each scanner (interleaved, as the dispatcher assigns them); returns the scan job's id."""
    now = _now()
    with store.transaction() as s:
        scan = Scan(
            name=f"bench-{uuid.uuid4().hex[:12]}", options={}, created_at=now, updated_at=now
        )
        s.add(scan)
        s.flush()
        job = ScanJob(
            scan_id=scan.id,
            scan_name=scan.name,
            status=ScanJobStatus.RUNNING.value,
            options={},
            created_at=now,
            start_time=now,
            updated_at=now,
        )
        s.add(job)
        s.flush()
        task = Task(
            scan_job_id=job.id,
            source_id=None,
            source_name="bench",
            source_type="network",
            source={"scanner_ids": list(scanner_ids)},
            kind=TaskKind.CONNECT.value,
            status=TaskStatus.RUNNING.value,
            start_time=now,
        )
        s.add(task)
        s.flush()
        rows = [
            {
                "scan_job_id": job.id,
                "task_id": task.id,
                "scanner_id": scanner_id,
                "kind": TaskKind.CONNECT.value,
                "status": ScannerJobStatus.PENDING.value,
                "targets": [{"range": f"127.0.100.{n % 250 + 1}", "ports": [22]}],
                "max_probes_per_second": 0.0,
                "created_at": now,
            }
            for n in range(per_scanner)
            for scanner_id in scanner_ids
        ]
        s.execute(insert(ScannerJob), rows)
        return job.id


@dataclass
class Check:
    """Every job claimed exactly once and finished: what a round must show."""

    jobs: int
    claims: int
    double_claims: int
    lost: int

    @property
    def ok(self) -> bool:
        return self.double_claims == 0 and self.lost == 0 and self.claims == self.jobs


def check(store: Store, *, scan_job_id: int, claimed: Sequence[int]) -> Check:
    """Double claims: jobs the claimers got more than once, or claimed more than once in the
    database (``attempts`` > 1); lost: jobs not completed."""
    recorded = sum(1 for n in Counter(claimed).values() if n > 1)
    with store.transaction() as s:
        total, completed, reclaimed = s.execute(
            select(
                func.count(),
                func.count().filter(ScannerJob.status == ScannerJobStatus.COMPLETED.value),
                func.count().filter(ScannerJob.attempts > 1),
            ).where(ScannerJob.scan_job_id == scan_job_id)
        ).one()
    return Check(
        jobs=total, claims=len(claimed), double_claims=recorded + reclaimed, lost=total - completed
    )


# Quipu, through the store ----------------------------------------------------------------------


@dataclass
class Round:
    """One drain at one concurrency."""

    concurrency: int
    jobs: int
    seconds: float
    double_claims: int
    lost: int
    errors: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.jobs / self.seconds if self.seconds else 0.0


def _direct_claimer(
    store: Store, *, scanner: Scanner, batch: int, go: threading.Barrier, claimed: list[int]
) -> None:
    go.wait()
    while True:
        with store.transaction() as s:
            jobs = claim_scanner_jobs(
                s, scanner_id=scanner.id, limit=batch, now=_now(), by=f"scanner:{scanner.name}"
            )
        if not jobs:
            return
        for job in jobs:
            claimed.append(job.id)
            protocol.start(store, scanner=scanner, job_id=job.id, now=_now())
            protocol.complete(
                store,
                scanner=scanner,
                job_id=job.id,
                status="completed",
                result_count=0,
                error_message=None,
                now=_now(),
            )


def direct_round(
    store: Store, *, scanner: Scanner, concurrency: int, jobs: int, batch: int
) -> Round:
    scan_job_id = seed(store, scanner_ids=[scanner.id], per_scanner=jobs)
    go = threading.Barrier(concurrency + 1)
    records: list[list[int]] = [[] for _ in range(concurrency)]
    errors: list[str] = []

    def claimer(claimed: list[int]) -> None:
        try:
            _direct_claimer(store, scanner=scanner, batch=batch, go=go, claimed=claimed)
        except Exception as error:  # reported with the figure, not raised in a thread
            errors.append(f"{type(error).__name__}: {error}")

    threads = [threading.Thread(target=claimer, args=(r,), daemon=True) for r in records]
    for thread in threads:
        thread.start()
    go.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    result = check(store, scan_job_id=scan_job_id, claimed=[i for r in records for i in r])
    return Round(concurrency, result.jobs, seconds, result.double_claims, result.lost, errors)


def direct_scanner(store: Store) -> Scanner:
    now = _now()
    with store.transaction() as s:
        scanner = Scanner(
            name="bench-direct",
            api_key_hash=uuid.uuid4().hex,
            bind=[],
            created_at=now,
            last_heartbeat=now,
        )
        s.add(scanner)
    return scanner


# Quipu, over HTTP ------------------------------------------------------------------------------


async def _http_claimer(
    client: httpx.AsyncClient, *, batch: int, go: asyncio.Event, claimed: list[int]
) -> None:
    await go.wait()
    while True:
        response = await client.get("/scanner/jobs", params={"limit": batch})
        response.raise_for_status()
        jobs = response.json()["jobs"]
        if not jobs:
            return
        for job in jobs:
            job_id = job["jobId"]
            claimed.append(job_id)
            (await client.post(f"/scanner/jobs/{job_id}/start")).raise_for_status()
            (
                await client.post(
                    f"/scanner/jobs/{job_id}/complete",
                    json={"status": "completed", "resultCount": 0},
                )
            ).raise_for_status()


async def _heartbeat(client: httpx.AsyncClient) -> None:
    (await client.post("/scanner/heartbeat", json={"version": "bench"})).raise_for_status()


async def _heartbeats(client: httpx.AsyncClient) -> None:
    """As an agent does: the server must keep seeing the scanner online."""
    while True:
        await asyncio.sleep(10)
        with contextlib.suppress(httpx.HTTPError):
            await _heartbeat(client)


async def _http_drain(
    url: str,
    *,
    keys: Sequence[str],
    batch: int,
    records: list[list[int]],
    seed_jobs: Callable[[], int],
) -> tuple[float, int, list[str]]:
    """Bring the scanners online, seed their jobs, then time the claimers draining them."""
    go = asyncio.Event()
    clients = [
        httpx.AsyncClient(base_url=url, headers={"X-API-Key": key}, timeout=120) for key in keys
    ]
    beats: list[asyncio.Task[None]] = []
    try:
        # Online first: the heartbeat sweep hands the pending work of a silent scanner to
        # another one, which would blur both the figure and the per-scanner split.
        await asyncio.gather(*(_heartbeat(client) for client in clients))
        beats = [asyncio.create_task(_heartbeats(client)) for client in clients]
        scan_job_id = await asyncio.to_thread(seed_jobs)
        claimers = [
            asyncio.create_task(_http_claimer(c, batch=batch, go=go, claimed=r))
            for c, r in zip(clients, records, strict=True)
        ]
        await asyncio.sleep(0)
        started = time.perf_counter()
        go.set()
        outcomes = await asyncio.gather(*claimers, return_exceptions=True)
        seconds = time.perf_counter() - started
    finally:
        for beat in beats:
            beat.cancel()
        await asyncio.gather(*beats, return_exceptions=True)
        for client in clients:
            await client.aclose()
    errors = [f"{type(o).__name__}: {o}" for o in outcomes if isinstance(o, BaseException)]
    return seconds, scan_job_id, errors


def register_scanners(server: Server, *, count: int) -> list[tuple[int, str]]:
    """``count`` scanners registered through the API: (id, API key) each."""
    scanners = []
    with server.admin() as admin:
        for n in range(count):
            response = admin.post("/api/v1/scanners/", json={"name": f"bench-{n}"})
            response.raise_for_status()
            body = response.json()
            scanners.append((int(body["id"]), str(body["api_key"])))
    return scanners


def http_round(
    server: Server,
    store: Store,
    *,
    scanners: Sequence[tuple[int, str]],
    concurrency: int,
    jobs: int,
    batch: int,
) -> Round:
    used = scanners[:concurrency]
    per_scanner = max(1, jobs // concurrency)
    records: list[list[int]] = [[] for _ in used]
    seconds, scan_job_id, errors = run_async(
        _http_drain(
            server.url,
            keys=[k for _, k in used],
            batch=batch,
            records=records,
            seed_jobs=lambda: seed(
                store, scanner_ids=[i for i, _ in used], per_scanner=per_scanner
            ),
        )
    )
    result = check(store, scan_job_id=scan_job_id, claimed=[i for r in records for i in r])
    return Round(concurrency, result.jobs, seconds, result.double_claims, result.lost, errors)


# The reference: PgQueuer's drain benchmark -----------------------------------------------------


def pgqueuer_available() -> bool:
    try:
        _reference()
    except ImportError:
        return False
    return True


def _reference() -> tuple[Any, Any, Any]:
    """asyncpg, pgqueuer and its types: imported when used, since only the bench environment
    has them (and untyped as far as this module is concerned)."""
    return (
        importlib.import_module("asyncpg"),
        importlib.import_module("pgqueuer"),
        importlib.import_module("pgqueuer.types"),
    )


async def pgqueuer_install(dsn: str) -> None:
    asyncpg, pgqueuer, _ = _reference()
    connection = await asyncpg.connect(dsn=dsn)
    try:
        await pgqueuer.Queries(pgqueuer.AsyncpgDriver(connection)).install()
    finally:
        await connection.close()


async def pgqueuer_drain(dsn: str, *, workers: int, jobs: int, batch: int) -> Round:
    """Enqueue ``jobs`` and time ``workers`` PgQueuer consumers draining them, as PgQueuer's
    own ``tools/benchmark.py --strategy drain --driver apg`` does."""
    asyncpg, pgqueuer, types = _reference()
    producer = await asyncpg.connect(dsn=dsn)
    connections = [await asyncpg.connect(dsn=dsn) for _ in range(workers)]
    try:
        queries = pgqueuer.Queries(pgqueuer.AsyncpgDriver(producer))
        await queries.clear_queue()
        entrypoints = ["syncfetch", "asyncfetch"] * jobs
        await queries.enqueue(
            random.sample(entrypoints, k=jobs), [b"" for _ in range(jobs)], [0] * jobs
        )
        handled: list[int] = []

        async def asyncfetch(job: Any) -> None:
            handled.append(int(job.id))

        # PgQueuer's benchmark has a sync entrypoint too; PgQueuer 1.x no longer runs sync
        # functions itself and asks for what it used to do for them: a worker thread.
        async def syncfetch(job: Any) -> None:
            await asyncio.to_thread(handled.append, int(job.id))

        consumers = []
        for connection in connections:
            pgq = pgqueuer.PgQueuer(pgqueuer.AsyncpgDriver(connection))
            pgq.entrypoint("asyncfetch")(asyncfetch)
            pgq.entrypoint("syncfetch")(syncfetch)
            consumers.append(pgq)
        started = time.perf_counter()
        await asyncio.gather(
            *(pgq.run(batch_size=batch, mode=types.QueueExecutionMode.drain) for pgq in consumers)
        )
        seconds = time.perf_counter() - started
        left = sum(row.count for row in await queries.queue_size() if row.status == "queued")
    finally:
        for connection in [producer, *connections]:
            await connection.close()
    doubles = sum(1 for n in Counter(handled).values() if n > 1)
    return Round(workers, jobs, seconds, doubles, left + jobs - len(set(handled)))


# Figures ---------------------------------------------------------------------------------------


@dataclass
class Figure:
    name: str
    quipu: Round
    reference: Round | None
    batch: int

    def line(self) -> str:
        quipu = f"{self.quipu.rate:.0f}"
        reference = f"{self.reference.rate:.0f}" if self.reference else "n/a"
        ratio = "n/a" if self.ratio is None else _ratio(self.ratio)
        return (
            f"bench {self.name}: quipu={quipu} jobs/s reference={reference} jobs/s "
            f"ratio={ratio} batch={self.batch} double_claims={self.quipu.double_claims} "
            f"lost={self.quipu.lost}"
        )

    @property
    def ratio(self) -> float | None:
        if self.reference is None or not self.reference.rate:
            return None
        return self.quipu.rate / self.reference.rate

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "unit": "jobs/s",
            "batch": self.batch,
            "quipu": self.quipu.rate,
            "reference": self.reference.rate if self.reference else None,
            "ratio": self.ratio,
            "quipu_round": asdict(self.quipu),
            "reference_round": asdict(self.reference) if self.reference else None,
        }


def _ratio(value: float) -> str:
    """Two decimals, or three below 0.1 so that a small ratio does not read as zero."""
    return f"{value:.3f}" if value < 0.1 else f"{value:.2f}"


def _median(rounds: Sequence[Round]) -> Round:
    """The median round by rate (the one whose integrity figures are reported with it)."""
    ordered = sorted(rounds, key=lambda r: r.rate)
    median = ordered[(len(ordered) - 1) // 2]
    worst = max(rounds, key=lambda r: (r.double_claims, r.lost, len(r.errors)))
    # A round that broke the guarantee must show, whatever its speed.
    if (worst.double_claims, worst.lost, len(worst.errors)) > (0, 0, 0):
        return Round(
            median.concurrency,
            median.jobs,
            median.seconds,
            worst.double_claims,
            worst.lost,
            worst.errors,
        )
    return median


def _measure(
    *,
    concurrency: int,
    rounds: int,
    quipu: Callable[[int], Round],
    reference: Callable[[int], Round] | None,
) -> tuple[list[Round], list[Round]]:
    """Quipu and the reference alternately, ``rounds`` times each."""
    ours: list[Round] = []
    theirs: list[Round] = []
    for _ in range(rounds):
        ours.append(quipu(concurrency))
        if reference is not None:
            theirs.append(reference(concurrency))
    return ours, theirs


def _print(line: str) -> None:
    print(line, flush=True)


def run(args: argparse.Namespace) -> tuple[dict[str, Any], list[Figure]]:
    with_reference = pgqueuer_available()
    if not with_reference and not args.smoke:
        raise SystemExit(
            "PgQueuer is not installed here: run scripts/bench, which installs the reference "
            "tools into .venv-bench (or pass --smoke to measure Quipu alone)."
        )
    jobs = args.jobs or (300 if args.smoke else 5_000)
    reference_jobs = args.reference_jobs or (300 if args.smoke else 20_000)
    http_jobs = args.http_jobs or (160 if args.smoke else 1_024)
    rounds = args.rounds or (1 if args.smoke else 3)
    info = machine(
        postgresql=serverversion(args.pg_url),
        pgqueuer=version("pgqueuer"),
        asyncpg=version("asyncpg"),
        sqlalchemy=version("sqlalchemy"),
        psycopg=version("psycopg"),
        loop=loop_name(),
    )
    _print(
        f"bench machine: cores={info['cores']} memory={info['memory_gib']}GiB "
        f"python={info['python']} postgresql={info['postgresql']} "
        f"pgqueuer={info['pgqueuer'] or 'missing'} loop={info['loop']}"
    )
    if not with_reference:
        _print("bench note: PgQueuer is not installed here: its reference was skipped")
    figures: list[Figure] = []
    runs: dict[str, Any] = {}
    with contextlib.ExitStack() as stack:
        quipu_url = stack.enter_context(fresh_database(args.pg_url, prefix="quipu_bench_claims"))
        engine = create_engine(quipu_url)
        upgrade(engine)
        engine.dispose()
        store = Store.from_url(quipu_url)
        stack.callback(store.dispose)
        scanner = direct_scanner(store)
        reference: Callable[[int], Round] | None = None
        if with_reference:
            dsn = libpq_dsn(stack.enter_context(fresh_database(args.pg_url, prefix="pgq_bench")))
            run_async(pgqueuer_install(dsn))

            def reference(workers: int) -> Round:
                return run_async(
                    pgqueuer_drain(dsn, workers=workers, jobs=reference_jobs, batch=args.batch)
                )

        def direct(concurrency: int) -> Round:
            return direct_round(
                store, scanner=scanner, concurrency=concurrency, jobs=jobs, batch=args.batch
            )

        references: dict[int, Round | None] = {}
        for concurrency in CONCURRENCY:
            ours, theirs = _measure(
                concurrency=concurrency, rounds=rounds, quipu=direct, reference=reference
            )
            references[concurrency] = _median(theirs) if theirs else None
            figure = Figure(
                f"claims-direct-{concurrency}", _median(ours), references[concurrency], args.batch
            )
            figures.append(figure)
            runs[figure.name] = {
                "quipu": [asdict(r) for r in ours],
                "reference": [asdict(r) for r in theirs],
            }
            _print(figure.line())
        data_dir = Path(tempfile.mkdtemp(prefix="quipu-bench-claims-"))
        stack.callback(shutil.rmtree, data_dir, ignore_errors=True)
        server = Server.start(data_dir=data_dir, database_url=quipu_url)
        stack.callback(server.stop)
        scanners = register_scanners(server, count=max(CONCURRENCY))
        for concurrency in CONCURRENCY:
            http_rounds = [
                http_round(
                    server,
                    store,
                    scanners=scanners,
                    concurrency=concurrency,
                    jobs=http_jobs,
                    batch=args.batch,
                )
                for _ in range(rounds)
            ]
            figure = Figure(
                f"claims-http-{concurrency}",
                _median(http_rounds),
                references[concurrency],
                args.batch,
            )
            figures.append(figure)
            runs[figure.name] = {"quipu": [asdict(r) for r in http_rounds]}
            _print(figure.line())
    for figure in figures:
        for error in sorted(set(figure.quipu.errors)):
            _print(f"bench warning: {figure.name}: {error}")
    _print(_goals(figures))
    report = {
        "benchmark": "claims",
        "machine": info,
        "smoke": args.smoke,
        "jobs_direct": jobs,
        "jobs_reference": reference_jobs,
        "jobs_http": http_jobs,
        "rounds": rounds,
        "batch": args.batch,
        "reference": (
            "PgQueuer drain benchmark (tools/benchmark.py --strategy drain --driver apg) "
            "rebuilt with pgqueuer's public API; same job count and batch, one asyncpg "
            "connection per consumer"
        ),
        "figures": [figure.as_json() for figure in figures],
        "runs": runs,
    }
    return report, figures


def _goals(figures: Sequence[Figure]) -> str:
    by_name = {figure.name: figure for figure in figures}
    parts = []
    for name, goal in (("claims-direct-32", 1.0), ("claims-http-32", 0.3)):
        ratio = by_name[name].ratio if name in by_name else None
        if ratio is None:
            parts.append(f"{name} ratio=n/a (goal >= {goal:.1f})")
        else:
            verdict = "met" if ratio >= goal else "missed"
            parts.append(f"{name} ratio={_ratio(ratio)} (goal >= {goal:.1f}: {verdict})")
    integrity = all(f.quipu.double_claims == 0 and f.quipu.lost == 0 for f in figures)
    return f"bench claims-goals: {'; '.join(parts)}; integrity={'ok' if integrity else 'BROKEN'}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.claims", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one round")
    parser.add_argument("--jobs", type=int, help="jobs per direct round (default 5,000)")
    parser.add_argument(
        "--reference-jobs", type=int, help="jobs per PgQueuer round (default 20,000)"
    )
    parser.add_argument("--http-jobs", type=int, help="jobs per HTTP round (default 1,024)")
    parser.add_argument("--rounds", type=int, help="rounds per figure (median is reported)")
    parser.add_argument("--batch", type=int, default=BATCH, help="jobs claimed per claim")
    parser.add_argument("--pg-url", default=PG_URL, help="a database on the server to use")
    parser.add_argument("--output", type=Path, help="where to write the figures as JSON")
    args = parser.parse_args(argv)
    # Stopped from outside (the runner, a timeout): unwind, so the server is stopped and the
    # databases are dropped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    report, figures = run(args)
    output = args.output or RESULTS / ("claims-smoke.json" if args.smoke else "claims.json")
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=4, sort_keys=True) + "\n")
    _print(f"bench results: {output}")
    # Speed is only reported; a double claim or a lost job is a failure of the run.
    broken = any(f.quipu.double_claims or f.quipu.lost or f.quipu.errors for f in figures)
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
