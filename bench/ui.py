"""Benchmark: the web UI's page of a 100,000-system report, cold and warm.

Run ``python -m bench.ui [--smoke] [--systems N] [--rounds R] [--results PATH]``. A
throwaway SQLite store gets one report of ``--systems`` systems (the synthetic estate of
``bench.reports``), stored as ``services.reports.build`` stores it: the details report and
the deployments report (one system per line) gzip-compressed in a ``reports`` row of a
completed fingerprint job. The server's real app (``quipu.api.app.create_app``) then
answers over httpx's ``ASGITransport`` in this process, signed in through ``POST /login``
with a real session cookie:

- **cold**: the report's first page as the first request after start, when the UI's table
  cache is empty (it parses the stored deployments blob);
- **warm**: the same page again, ``--rounds`` times, median;
- a search with filters (the first search of a table makes its rows' search texts, later
  ones reuse them) and a sort by another column (its first request orders the rows, later
  ones reuse the order): first, and warm (median);
- a system's page (its facts from the deployments blob, its raw facts from the details
  report): first (which indexes the details report's records) and warm, median of 3;
- **reference**, in the same run: ``GET /api/v1/reports/{id}/deployments/`` with an API
  token, the established client's way to see the systems, median of 3 (1 at full size: it
  answers the whole 366 MB document).

The table cache's memory is the process's resident set after the cold page minus before
it. The goal, printed and never asserted: the first page under 1 s warm (and cold
reported beside it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

import quipu
from bench.machine import machine, version
from bench.reports import synthetic_sources
from quipu.api.app import create_app
from quipu.domain.states import ReportOrigin, ScanJobStatus, ScanJobType
from quipu.services import auth
from quipu.services.reports import fill
from quipu.settings import Settings
from quipu.store import Store
from quipu.store.migrate import upgrade
from quipu.store.tables import Report, ScanJob

SYSTEMS = 100_000
SMOKE_SYSTEMS = 1_000
RESULTS = Path(__file__).parent / "results"
PASSWORD = "bench-ui-Secret-123"
GOAL_S = 1.0
_PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


def _rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * _PAGE_KIB / 1024


def store_report(store: Store, *, systems: int) -> tuple[int, int]:
    """One report of ``systems`` synthetic systems, stored as ``services.reports.build``
    stores one; returns (report id, its deployments)."""
    sources, _ = synthetic_sources(systems)
    now = datetime.now(UTC)
    with store.transaction() as s:
        job = ScanJob(
            scan_type=ScanJobType.FINGERPRINT.value,
            scan_id=None,
            scan_name="bench ui",
            status=ScanJobStatus.COMPLETED.value,
            status_message="",
            options={},
            created_at=now,
            queued_at=None,
            start_time=now,
            end_time=now,
            updated_at=now,
        )
        s.add(job)
        s.flush()
        platform_id = str(uuid.uuid4())
        report = Report(
            scan_job_id=job.id,
            origin=ReportOrigin.UPLOADED.value,
            report_version=quipu.__version__,
            report_platform_id=platform_id,
            systems_count=0,
            deployments_count=0,
            details_gz=b"",
            deployments_gz=b"",
            created_at=now,
        )
        s.add(report)
        s.flush()
        fill(report, sources=lambda: sources)
        return report.id, report.deployments_count


async def timed(call: Callable[[], Awaitable[httpx.Response]]) -> tuple[float, httpx.Response]:
    began = time.perf_counter()
    response = await call()
    seconds = time.perf_counter() - began
    response.raise_for_status()
    return seconds, response


async def median_of(rounds: int, call: Callable[[], Awaitable[httpx.Response]]) -> float:
    return statistics.median([(await timed(call))[0] for _ in range(rounds)])


def _check_page(response: httpx.Response, *, rows: int) -> None:
    if response.url.path == "/login" or response.text.count("/systems/") != rows:
        raise SystemExit(f"bench warning: the report page did not show {rows} systems")


async def measure(
    store: Store, settings: Settings, *, report_id: int, systems: int, rounds: int
) -> dict[str, Any]:
    app = create_app(settings, store=store, dispatch=False)
    transport = httpx.ASGITransport(app=app)
    figures: dict[str, Any] = {}
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as ui:
        signed = await ui.post(
            "/login", data={"username": "admin", "password": PASSWORD, "next": "/reports"}
        )
        if signed.status_code != 303 or "quipu_session" not in ui.cookies:
            raise SystemExit(f"bench warning: sign-in failed ({signed.status_code})")
        first = f"/reports/{report_id}"
        before = _rss_mib()
        figures["cold_s"], response = await timed(lambda: ui.get(first))
        figures["cache_mib"] = round(_rss_mib() - before, 1)
        _check_page(response, rows=50)
        figures["warm_s"] = await median_of(rounds, lambda: ui.get(first))
        figures["page_bytes"] = len(response.content)
        last = f"{first}?page_no=1000000&per_page=100"
        figures["last_page_s"] = await median_of(rounds, lambda: ui.get(last))
        query = f"{first}?q=host1&infra=virtualized&source=vcenter"
        figures["search_first_s"], _ = await timed(lambda: ui.get(query))
        figures["search_s"] = await median_of(rounds, lambda: ui.get(query))
        sort = f"{first}?sort=ip_addresses&dir=desc"
        figures["sort_first_s"], _ = await timed(lambda: ui.get(sort))
        figures["sort_warm_s"] = await median_of(rounds, lambda: ui.get(sort))
        system = f"{first}/systems/{max(1, systems // 2)}"
        figures["system_first_s"], _ = await timed(lambda: ui.get(system))
        figures["system_s"] = await median_of(3, lambda: ui.get(system))
        overview_s, overview = await timed(lambda: ui.get("/"))
        if "By operating system" not in overview.text:
            raise SystemExit("bench warning: the overview shows no estate chart")
        figures["overview_s"] = overview_s

        token = auth.login(
            store, username="admin", password=PASSWORD, now=datetime.now(UTC), ttl_s=3600
        )
        api = {"Authorization": f"Token {token}"}
        reference_rounds = 1 if systems > 10_000 else 3
        url = f"/api/v1/reports/{report_id}/deployments/"
        times = []
        for _ in range(reference_rounds):
            seconds, body = await timed(lambda: ui.get(url, headers=api))
            times.append(seconds)
            if len(json.loads(body.content)["system_fingerprints"]) != systems:
                raise SystemExit("bench warning: the API and the page disagree on the systems")
            del body
        figures["reference_s"] = statistics.median(times)
        figures["reference_rounds"] = reference_rounds
    return figures


def _settings(data_dir: Path) -> Settings:
    return Settings(
        data_dir=data_dir,
        database_url=f"sqlite:///{data_dir / 'quipu.db'}",
        admin_password=PASSWORD,
    )


def build(data_dir: Path, *, systems: int) -> int:
    """The store of the benchmark in ``data_dir``: migrated, user admin, one report."""
    settings = _settings(data_dir)
    store = Store.from_url(settings.database_url)
    try:
        upgrade(store.engine)
        auth.ensure_admin(store, data_dir=data_dir, password=PASSWORD, now=datetime.now(UTC))
        began = time.perf_counter()
        report_id, deployments = store_report(store, systems=systems)
        seconds = time.perf_counter() - began
    finally:
        store.dispose()
    print(json.dumps({"report_id": report_id, "deployments": deployments, "seconds": seconds}))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ui", description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help=f"{SMOKE_SYSTEMS:,} systems, 3 rounds")
    parser.add_argument("--systems", type=int, help=f"systems in the report (default {SYSTEMS:,})")
    parser.add_argument("--rounds", type=int, help="warm requests per figure (default 7)")
    parser.add_argument("--results", "--output", dest="results", type=Path)
    parser.add_argument("--build", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    size = args.systems or (SMOKE_SYSTEMS if args.smoke else SYSTEMS)
    if args.build is not None:
        return build(args.build, systems=size)
    rounds = args.rounds or (3 if args.smoke else 7)
    described = machine(httpx=version("httpx"), database="sqlite")
    print(
        f"bench machine: cores={described['cores']} memory={described['memory_gib']}GiB "
        f"python={described['python']} httpx={described['httpx']} database=sqlite "
        f"transport=asgi",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="quipu-bench-ui-") as tmp:
        settings = _settings(Path(tmp))
        # Built in another interpreter, so this one (the server) starts as a server does:
        # without the memory a 100,000-system build leaves behind.
        built = subprocess.run(
            [sys.executable, "-m", "bench.ui", "--build", tmp, "--systems", str(size)],
            cwd=Path(__file__).resolve().parent.parent,
            capture_output=True,
            text=True,
            check=False,
        )
        if built.returncode != 0:
            raise SystemExit(f"bench warning: building the report failed: {built.stderr[-2000:]}")
        stored = json.loads(built.stdout.strip().splitlines()[-1])
        print(
            f"ui: stored report {stored['report_id']}: {stored['deployments']} systems "
            f"in {stored['seconds']:.1f} s"
        )
        store = Store.from_url(settings.database_url)
        try:
            figures = asyncio.run(
                measure(
                    store,
                    settings,
                    report_id=stored["report_id"],
                    systems=stored["deployments"],
                    rounds=rounds,
                )
            )
        finally:
            store.dispose()
    ratio = figures["reference_s"] / figures["warm_s"]
    print(
        f"bench ui-report-{size}: cold={figures['cold_s']:.3f} s warm={figures['warm_s']:.3f} s "
        f"reference={figures['reference_s']:.3f} s ratio={ratio:.1f} rounds={rounds} "
        f"page=50 rows cache={figures['cache_mib']:.1f} MiB"
    )
    print(
        f"bench ui-report-{size}-queries: last_page={figures['last_page_s']:.3f} s "
        f"search_first={figures['search_first_s']:.3f} s "
        f"search+filters={figures['search_s']:.3f} s sort_first={figures['sort_first_s']:.3f} s "
        f"sort_warm={figures['sort_warm_s']:.3f} s system_first={figures['system_first_s']:.3f} s "
        f"system_warm={figures['system_s']:.3f} s "
        f"overview={figures['overview_s']:.3f} s"
    )
    met = "met" if figures["warm_s"] < GOAL_S else "missed"
    cold_met = "met" if figures["cold_s"] < GOAL_S else "missed"
    print(
        f"bench ui-goal: warm first page < {GOAL_S:.0f} s: {met}; cold < {GOAL_S:.0f} s: {cold_met}"
    )
    results = args.results or RESULTS / ("ui-smoke.json" if args.smoke else "ui.json")
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(
        json.dumps(
            {
                "benchmark": "ui",
                "smoke": args.smoke,
                "systems": size,
                "rounds": rounds,
                "machine": described,
                "figures": figures,
            },
            indent=4,
            sort_keys=True,
        )
        + "\n"
    )
    print(f"bench results: {results}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
