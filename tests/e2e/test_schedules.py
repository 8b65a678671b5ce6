"""Schedules: a firing starts one scan job, even with two ingest nodes on one database."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from quipu.store import Store
from quipu.store.tables import ScanJob, ScanJobEvent
from tests.databases import pg_database
from tests.e2e.scans import created
from tests.servers import RunningServer, TestClock, start_server

CLOSED = 2244  # nothing listens: a fired job fails at once, which is all a firing needs
ENV = {"QUIPU_DISPATCH_INTERVAL_S": "0.2"}


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[tuple[RunningServer, RunningServer, Store, TestClock]]:
    clock = TestClock(tmp_path / "clock")
    env = {**ENV, **clock.env}
    with pg_database() as url:
        first = start_server(data_dir=tmp_path / "node-1", database_url=url, env=env)
        second = start_server(
            data_dir=tmp_path / "node-2",
            database_url=url,
            env=env,
            args=("--no-builtin-scanner",),
        )
        store = Store.from_url(url)
        try:
            yield first, second, store, clock
        finally:
            store.dispose()
            first.stop()
            second.stop()


def scheduled_scan(api: httpx.Client, schedule: dict[str, str]) -> dict[str, Any]:
    credential = created(
        api.post(
            "/api/v2/credentials/",
            json={"name": "c", "cred_type": "network", "username": "u", "password": "p"},
        )
    )
    source = created(
        api.post(
            "/api/v2/sources/",
            json={
                "name": "closed",
                "source_type": "network",
                "hosts": ["127.0.244.1"],
                "port": CLOSED,
                "credentials": [credential["id"]],
            },
        )
    )
    return created(
        api.post(
            "/api/v1/scans/",
            json={"name": "nightly", "sources": [source["id"]], "schedule": schedule},
        )
    )


def jobs_of(store: Store) -> list[tuple[int, str, str]]:
    with store.transaction() as s:
        rows = s.execute(select(ScanJob.id, ScanJob.trigger, ScanJob.status).order_by(ScanJob.id))
        return [tuple(r) for r in rows]  # type: ignore[misc]


def wait_for_jobs(store: Store, count: int, *, timeout: float = 30) -> list[tuple[int, str, str]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        jobs = jobs_of(store)
        if len(jobs) >= count and all(status in ("failed", "completed") for *_, status in jobs):
            return jobs
        time.sleep(0.2)
    raise AssertionError(f"expected {count} ended jobs, have {jobs_of(store)}")


def test_two_nodes_fire_each_firing_once(
    nodes: tuple[RunningServer, RunningServer, Store, TestClock],
) -> None:
    first, second, store, clock = nodes
    with first.client() as api:
        scan = scheduled_scan(api, {"cron": "0 3 * * *", "timezone": "Europe/Paris"})
    firings = [datetime.fromisoformat(t) for t in scan["schedule"]["next_firings"]]
    assert firings[1] - firings[0] == timedelta(days=1)
    assert firings[0].astimezone().utcoffset() is not None
    for n, firing in enumerate(firings[:3], start=1):
        clock.set(firing + timedelta(seconds=1))
        wait_for_jobs(store, n)
        time.sleep(1.0)  # several ticks of both nodes after the firing
        assert len(jobs_of(store)) == n
    assert {trigger for _, trigger, _ in jobs_of(store)} == {"schedule"}
    with store.transaction() as s:
        first_entries = s.execute(
            select(ScanJobEvent.scan_job_id, ScanJobEvent.actor, ScanJobEvent.action)
            .where(ScanJobEvent.action == "create")
            .order_by(ScanJobEvent.id)
        ).all()
    assert [actor for _, actor, _ in first_entries] == ["schedule"] * 3
    with second.client() as api:
        shown = api.get(f"/api/v1/scans/{scan['id']}/").json()["schedule"]
    assert datetime.fromisoformat(shown["next_firings"][0]) == firings[3]


def test_missed_firings_while_down_run_once(tmp_path: Path) -> None:
    clock = TestClock(tmp_path / "clock")
    with pg_database() as url:
        server = start_server(
            data_dir=tmp_path / "node", database_url=url, env={**ENV, **clock.env}
        )
        store = Store.from_url(url)
        try:
            with server.client() as api:
                scan = scheduled_scan(api, {"cron": "*/10 * * * *", "timezone": "UTC"})
            server.stop()
            first = datetime.fromisoformat(scan["schedule"]["next_firings"][0])
            clock.set(first + timedelta(minutes=45))  # five firings missed
            server = start_server(
                data_dir=tmp_path / "node", database_url=url, env={**ENV, **clock.env}
            )
            wait_for_jobs(store, 1)
            time.sleep(1.5)
            assert len(jobs_of(store)) == 1
        finally:
            store.dispose()
            server.stop()
