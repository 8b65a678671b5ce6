"""Schedules: a firing starts one scan job, even with two ingest nodes on one database; a
minutely schedule fires in real time on the real clock; ``qpc`` adds, shows and edits a
schedule and refuses a bad one naming the field."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import select

from quipu.lab import Lab
from quipu.store import Store
from quipu.store.tables import ScanJob, ScanJobEvent
from tests.databases import pg_database
from tests.e2e.qpc import Qpc, logged_in
from tests.e2e.scans import add_lab_source, created, network_source
from tests.labs import running_lab
from tests.servers import RunningServer, TestClock, start_server

NET = "127.0.244"
PORT = 2244
CLOSED_HOST = f"{NET}.200"  # outside the lab: nothing listens, a fired job fails at once
ENV = {"QUIPU_DISPATCH_INTERVAL_S": "0.2"}
SERVER_ENV = ENV
PARIS = ZoneInfo("Europe/Paris")
LAB_HOSTS = 2


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    root = tmp_path_factory.mktemp("schedules-lab") / "lab"
    with running_lab(root=root, hosts=LAB_HOSTS, net=NET, port=PORT) as lab:
        yield lab


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
    source = network_source(api, name="closed", hosts=[CLOSED_HOST], port=PORT)
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


@pytest.mark.lab
def test_a_minutely_schedule_fires_in_real_time_and_its_job_completes(
    server: RunningServer, lab: Lab
) -> None:
    """No test clock here: the server's own clock, a real minute."""
    store = Store.from_url(server.database_url)
    try:
        with server.client() as api:
            source_id = add_lab_source(
                api,
                lab,
                name="lab",
                credential_name="k",
                hosts=[h.address for h in lab.hosts],
                port=PORT,
            )
            scan = created(
                api.post(
                    "/api/v1/scans/",
                    json={
                        "name": "minutely",
                        "sources": [source_id],
                        "schedule": {"cron": "* * * * *", "timezone": "UTC"},
                    },
                )
            )
            first, second = (
                datetime.fromisoformat(t) for t in scan["schedule"]["next_firings"][:2]
            )
            assert second - first == timedelta(minutes=1)
            assert timedelta(0) < first - datetime.now(UTC) <= timedelta(seconds=61)
            assert (first.second, first.microsecond) == (0, 0)

            deadline = time.monotonic() + 70
            while not jobs_of(store):
                assert time.monotonic() < deadline, "the schedule never fired"
                time.sleep(0.2)
            fired_at = datetime.now(UTC)
            assert first <= fired_at < first + timedelta(seconds=10)
            [(job_id, trigger, _)] = jobs_of(store)
            assert trigger == "schedule"
            deadline = time.monotonic() + 45
            while (job := api.get(f"/api/v1/jobs/{job_id}/").json())["status"] not in (
                "completed",
                "failed",
            ):
                assert time.monotonic() < deadline, job
                time.sleep(0.2)
            assert job["status"] == "completed", job["status_message"]
            assert (job["trigger"], job["systems_scanned"]) == ("schedule", LAB_HOSTS)
            # Exactly one job for that firing, and the scan now shows the next one.
            assert datetime.now(UTC) < second, "too slow to tell one firing from the next"
            assert [j for j, *_ in jobs_of(store)] == [job_id]
            shown = api.get(f"/api/v1/scans/{scan['id']}/").json()["schedule"]
            assert datetime.fromisoformat(shown["next_firings"][0]) == second
            # Stop further firings before the server goes down.
            api.patch(f"/api/v1/scans/{scan['id']}/", json={"schedule": None})
    finally:
        store.dispose()


def firings(qpc: Qpc, name: str) -> tuple[dict[str, Any], list[datetime]]:
    scan = qpc.ok("scan", "show", "--name", name).json()
    return scan, [datetime.fromisoformat(t) for t in scan["schedule"]["next_firings"]]


def test_qpc_adds_shows_and_edits_a_schedule_and_refuses_a_bad_one(
    server: RunningServer, tmp_path: Path
) -> None:
    qpc = logged_in(server, config_home=tmp_path / "qpc")
    qpc.ok(
        "cred", "add", "--name", "c", "--type", "network", "--username", "u", "--password",
        input="p\n",
    )  # fmt: skip
    qpc.ok(
        "source", "add", "--name", "s", "--type", "network", "--hosts", CLOSED_HOST,
        "--port", str(PORT), "--cred", "c",
    )  # fmt: skip
    added = qpc.ok(
        "scan", "add", "--name", "nightly", "--sources", "s",
        "--schedule", "0 2 * * 1-5", "--timezone", "Europe/Paris",
    )  # fmt: skip
    assert added.stdout == 'Scan "nightly" was added.\n'

    scan, times = firings(qpc, "nightly")
    assert (scan["schedule"]["cron"], scan["schedule"]["timezone"]) == (
        "0 2 * * 1-5",
        "Europe/Paris",
    )
    assert len(times) == 5 and times == sorted(times) and times[0] > datetime.now(UTC)
    for when in times:
        local = when.astimezone(PARIS)
        assert (local.hour, local.minute, local.second) == (2, 0, 0)
        assert local.weekday() < 5  # Monday to Friday
    assert all(t.utcoffset() == timedelta(0) for t in times)  # shown in UTC

    edited = qpc.ok("scan", "edit", "--name", "nightly", "--schedule", "30 6 * * *")
    assert edited.stdout == 'Scan "nightly" was updated.\n'
    scan, times = firings(qpc, "nightly")
    assert (scan["schedule"]["cron"], scan["schedule"]["timezone"]) == (
        "30 6 * * *",
        "Europe/Paris",
    )
    assert [t.astimezone(PARIS).time().isoformat() for t in times] == ["06:30:00"] * 5
    days = {
        (b.astimezone(PARIS).date() - a.astimezone(PARIS).date()).days for a, b in pairwise(times)
    }
    assert days == {1}

    # A bad cron expression or time zone is refused, naming the field; nothing changes.
    before = qpc.ok("scan", "show", "--name", "nightly").stdout
    bad_cron = qpc.fails("scan", "edit", "--name", "nightly", "--schedule", "61 * * * *")
    assert bad_cron.stderr.startswith(
        "schedule '61 * * * *' is not a valid cron expression (Bad minute); it needs 5 fields: "
    ), bad_cron.stderr
    bad_zone = qpc.fails("scan", "edit", "--name", "nightly", "--timezone", "Mars/Olympus")
    assert bad_zone.stderr == (
        "schedule.timezone 'Mars/Olympus' is not a time zone; use an IANA time zone name such "
        "as 'UTC', 'Europe/Paris' or 'America/New_York'.\n"
    )
    assert qpc.ok("scan", "show", "--name", "nightly").stdout == before
    refused = qpc.fails(
        "scan", "add", "--name", "other", "--sources", "s", "--schedule", "0 2 * *",
    )  # fmt: skip
    assert refused.stderr.startswith("schedule must have 5 fields: "), refused.stderr
    assert refused.stderr.endswith("; '0 2 * *' has 4.\n"), refused.stderr
    assert "other" not in qpc.ok("scan", "list").stdout
    refused_zone = qpc.fails(
        "scan", "add", "--name", "other", "--sources", "s",
        "--schedule", "0 2 * * *", "--timezone", "Europe/Atlantis",
    )  # fmt: skip
    assert refused_zone.stderr.startswith(
        "schedule.timezone 'Europe/Atlantis' is not a time zone"
    ), refused_zone.stderr
    assert "other" not in qpc.ok("scan", "list").stdout
