"""Merges of reports and uploads of details reports, on both databases."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from quipu.dispatch.dispatcher import running_job_ids, start_queued_jobs
from quipu.domain.errors import InvalidInput
from quipu.domain.states import ScanJobStatus, SystemStatus, TaskKind, TaskStatus
from quipu.services import report_imports, reports
from quipu.store import Store
from quipu.store.tables import Report, ScanJob, ScanJobEvent, SystemResult, Task
from tests.estates import DB_UUID, SERVER_ID, established_details, network
from tests.integration import factories
from tests.integration.factories import NOW

LATER = NOW + timedelta(hours=1)


def scanned(store: Store, *, name: str, kind: str, facts: list[dict[str, Any]]) -> tuple[int, int]:
    """A completed scan job of one source with these systems' facts, and its report: what a
    scan leaves behind. Returns (scan job id, report id)."""
    with store.transaction() as s:
        job = factories.scan_job(
            s, scan_row=factories.scan(s, name=name), status=ScanJobStatus.COMPLETED
        )
        task = Task(
            scan_job_id=job.id,
            source_id=None,
            source_name=name,
            source_type=kind,
            source={},
            kind=TaskKind.INSPECT.value,
            status=TaskStatus.COMPLETED.value,
        )
        s.add(task)
        s.flush()
        for one in facts:
            s.add(
                SystemResult(
                    scan_job_id=job.id,
                    task_id=task.id,
                    system=one["system"],
                    status=SystemStatus.SUCCESS.value,
                    facts={k: v for k, v in one.items() if k != "system"},
                    created_at=NOW,
                )
            )
        s.flush()
        report = reports.build(s, job=job, now=NOW)
        return job.id, report.id


def counts(store: Store) -> dict[str, int]:
    with store.transaction() as s:
        return {
            table.__tablename__: s.scalar(select(func.count()).select_from(table)) or 0
            for table in (ScanJob, Task, SystemResult, Report)
        }


def deployments_of(store: Store, report_id: int) -> list[dict[str, Any]]:
    systems: list[dict[str, Any]] = json.loads(
        reports.deployments_json(store, report_id=report_id)
    )["system_fingerprints"]
    return systems


def details_of(store: Store, report_id: int) -> dict[str, Any]:
    details: dict[str, Any] = json.loads(reports.details_json(store, report_id=report_id))
    return details


WEB1 = network(
    system="127.0.216.1",
    uname_hostname="web1",
    etc_machine_id="11" * 16,
    dmi_system_uuid="4c4c4544-0001-4000-8000-00000000c001",
    ifconfig_mac_addresses=["52:54:00:01:00:01"],
    cpu_count=2,
)
DB1 = network(
    system="127.0.216.2",
    uname_hostname="db1",
    etc_machine_id="22" * 16,
    dmi_system_uuid=DB_UUID,
    ifconfig_mac_addresses=["a0:36:9f:02:00:01"],
    cpu_socket_count=2,
)
DB1_AGAIN = {**DB1, "system": "127.0.217.2", "has_sudo": False, "dmi_system_uuid": None}
CLONE = network(
    system="127.0.217.3",
    uname_hostname="clone-a",
    etc_machine_id="33" * 16,
    ifconfig_mac_addresses=["52:54:00:0a:00:01"],
)


def two_reports(store: Store) -> tuple[tuple[int, int], tuple[int, int]]:
    """Two scans that both saw db1 (once with sudo, once without, at another address)."""
    first = scanned(store, name="east", kind="network", facts=[WEB1, DB1])
    second = scanned(store, name="west", kind="network", facts=[DB1_AGAIN, CLONE])
    return first, second


def test_a_merge_deduplicates_the_systems_two_reports_saw(store: Store) -> None:
    (_, first), (_, second) = two_reports(store)

    made = report_imports.merge(store, report_ids=[first, str(second)], now=LATER, by="user:admin")

    assert (made.scan_type, made.status, made.status_message) == ("fingerprint", "completed", "")
    with store.transaction() as s:
        job = s.get_one(ScanJob, made.job_id)
        assert (job.scan_id, job.scan_name) == (None, f"merge of reports {first}, {second}")
        assert (job.start_time, job.end_time) == (LATER, LATER)
        assert (job.systems_count, job.systems_scanned, job.systems_failed) == (4, 4, 0)
        log = [
            (e.kind, e.action, e.to_status, e.actor, e.message)
            for e in s.scalars(select(ScanJobEvent).where(ScanJobEvent.scan_job_id == job.id))
        ]
        assert log == [
            (
                "scan_job",
                "merged",
                "completed",
                "user:admin",
                f"Report {made.report_id} merged from other reports: 4 systems.",
            )
        ]
        tasks = [(t.kind, t.status, t.source_id, t.source_name, t.systems_count) for t in job.tasks]
        assert tasks == [
            ("inspect", "completed", None, "east", 2),
            ("inspect", "completed", None, "west", 2),
        ]
        report = s.get_one(Report, made.report_id)
        assert (report.origin, report.scan_job_id) == ("merged", made.job_id)
        assert (report.systems_count, report.deployments_count) == (4, 3)
    systems = {d["name"]: d for d in deployments_of(store, made.report_id)}
    assert sorted(systems) == ["clone-a", "db1", "web1"]
    assert [s["source_name"] for s in systems["db1"]["sources"]] == ["east", "west"]
    assert systems["db1"]["cpu_socket_count"] == 2
    details = details_of(store, made.report_id)
    assert [(s["source_name"], s["source_type"]) for s in details["sources"]] == [
        ("east", "network"),
        ("west", "network"),
    ]
    assert [f["system"] for f in details["sources"][1]["facts"]] == ["127.0.217.2", "127.0.217.3"]
    assert details["sources"][0]["facts"][0]["uname_hostname"] == "web1"
    # The inputs are untouched and the merge is no work for the dispatcher.
    assert len(deployments_of(store, first)) == 2
    assert running_job_ids(store) == []
    assert start_queued_jobs(store, max_running=5, now=LATER) == []


def test_a_merge_of_scan_jobs_takes_their_reports(store: Store) -> None:
    (first_job, _), (second_job, _) = two_reports(store)

    made = report_imports.merge_jobs(
        store, job_ids=[second_job, first_job], now=LATER, by="user:admin"
    )

    sources = [s["source_name"] for s in details_of(store, made.report_id)["sources"]]
    assert sources == ["west", "east"]
    assert len(deployments_of(store, made.report_id)) == 3


def test_a_merged_report_merges_again(store: Store) -> None:
    (_, first), (_, second) = two_reports(store)
    merged = report_imports.merge(store, report_ids=[first, second], now=LATER, by="user:admin")
    third = scanned(store, name="north", kind="network", facts=[{**WEB1, "system": "10.1.0.1"}])[1]

    again = report_imports.merge(
        store, report_ids=[merged.report_id, third], now=LATER, by="user:admin"
    )

    assert [d["name"] for d in deployments_of(store, again.report_id)] == [
        "clone-a",
        "db1",
        "web1",
    ]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (None, "This field is required"),
        ("1,2", "This field must be a list of report ids."),
        ([1], "Two or more scan report ids are required."),
        ([1, "two"], "Scan report ids must be integers."),
        ([1, True], "Scan report ids must be integers."),
        ([1, 1], "Set of ids must be unique."),
        ([1, 998, 999], "Not all scan report ids exist. Scan reports not found: 998, 999"),
    ],
)
def test_a_merge_of_wrong_report_ids_is_refused_and_changes_nothing(
    store: Store, value: Any, message: str
) -> None:
    two_reports(store)
    before = counts(store)
    with pytest.raises(InvalidInput) as refused:
        report_imports.merge(store, report_ids=value, now=LATER, by="user:admin")
    assert (refused.value.field, refused.value.message) == ("reports", message)
    assert counts(store) == before


def test_a_merge_of_a_scan_job_without_a_report_is_refused(store: Store) -> None:
    (first_job, _), _ = two_reports(store)
    with store.transaction() as s:
        running = factories.scan_job(s, status=ScanJobStatus.RUNNING).id
    before = counts(store)
    with pytest.raises(InvalidInput) as refused:
        report_imports.merge_jobs(store, job_ids=[first_job, running], now=LATER, by="user:admin")
    assert refused.value.field == "jobs"
    assert refused.value.message == (
        "Not all scan jobs have a report; only completed scan jobs have one. "
        f"Scan jobs without a report: {running}"
    )
    with pytest.raises(InvalidInput, match="Scan jobs not found: 4242") as unknown:
        report_imports.merge_jobs(store, job_ids=[first_job, 4242], now=LATER, by="user:admin")
    assert unknown.value.field == "jobs"
    assert counts(store) == before


def upload(store: Store, document: Any) -> report_imports.ImportedJob:
    body = document if isinstance(document, bytes) else json.dumps(document).encode()
    return report_imports.upload(store, body=io.BytesIO(body), now=LATER, by="user:admin")


def test_an_established_details_report_uploads_as_a_report_of_its_own(store: Store) -> None:
    document = established_details()

    made = upload(store, document)

    with store.transaction() as s:
        job = s.get_one(ScanJob, made.job_id)
        assert (job.scan_type, job.status, job.scan_id) == ("fingerprint", "completed", None)
        assert [(t.source_name, t.source_type, t.systems_count) for t in job.tasks] == [
            ("lab", "network", 5),
            ("sat", "satellite", 3),
            ("vc", "vcenter", 2),
        ]
        assert job.tasks[0].source == {
            "server_id": SERVER_ID,
            "report_version": document["report_version"],
        }
        report = s.get_one(Report, made.report_id)
        assert (report.origin, report.systems_count, report.deployments_count) == (
            "uploaded",
            10,
            5,
        )
    systems = {d["name"]: d for d in deployments_of(store, made.report_id)}
    assert sorted(systems) == ["app1.example.com", "clone-a", "clone-b", "db1", "web1"]
    web = systems["web1"]
    assert [(s["source_type"], s["source_name"]) for s in web["sources"]] == [
        ("network", "lab"),
        ("satellite", "sat"),
        ("vcenter", "vc"),
    ]
    assert (web["cpu_count"], web["os_version"]) == (4, "9.2")
    assert systems["db1"]["ip_addresses"] == ["10.0.0.20", "10.0.1.20"]
    assert [s["source_type"] for s in systems["app1.example.com"]["sources"]] == [
        "satellite",
        "vcenter",
    ]
    details = details_of(store, made.report_id)
    given = document["sources"]
    for stored, sent in zip(details["sources"], given, strict=True):
        assert (stored["source_name"], stored["source_type"]) == (
            sent["source_name"],
            sent["source_type"],
        )
        # Each system's facts come back as sent, named by the address they were reached at.
        assert [{k: v for k, v in f.items() if k != "system"} for f in stored["facts"]] == (
            sent["facts"]
        )
    assert [f["system"] for f in details["sources"][0]["facts"]] == [
        f"10.0.{n}.1" for n in range(1, 6)
    ]
    assert [f["system"] for f in details["sources"][1]["facts"]] == [
        "web1.example.com",
        "db1.example.com",
        "app1.example.com",
    ]
    assert [f["system"] for f in details["sources"][2]["facts"]] == ["web1-vm", "app1"]


def test_quipus_own_details_report_uploads_too(store: Store) -> None:
    (_, first), (_, second) = two_reports(store)
    merged = report_imports.merge(store, report_ids=[first, second], now=LATER, by="user:admin")
    document = details_of(store, merged.report_id)
    assert document["report_version"] == "0.1.0"

    made = upload(store, document)

    assert details_of(store, made.report_id)["sources"] == [
        {**source, "server_id": details_of(store, made.report_id)["report_platform_id"]}
        for source in document["sources"]
    ]
    assert deployments_of(store, made.report_id) == deployments_of(store, merged.report_id)


def _without(key: str) -> Callable[[dict[str, Any]], None]:
    return lambda document: document.pop(key)


def _source(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(document: dict[str, Any]) -> None:
        if value is KeyError:
            document["sources"][1].pop(key)
        else:
            document["sources"][1][key] = value

    return change


def _set(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda document: document.__setitem__(key, value)


MALFORMED: list[tuple[str, Callable[[dict[str, Any]], None], str, str]] = [
    ("no report type", _without("report_type"), "report_type", "report_type is required."),
    (
        "a deployments report",
        _set("report_type", "deployments"),
        "report_type",
        "report_type must be \"details\" (got 'deployments').",
    ),
    (
        "a platform id that is no UUID",
        _set("report_platform_id", "42"),
        "report_platform_id",
        "report_platform_id must be a UUID (got '42').",
    ),
    ("no sources", _without("sources"), "sources", "sources is required: a list of sources."),
    ("empty sources", _set("sources", []), "sources", "sources needs at least one source."),
    (
        "a source that is no object",
        lambda d: d["sources"].__setitem__(1, "sat"),
        "sources.1",
        "sources.1 must be an object.",
    ),
    (
        "no server id",
        _source("server_id", KeyError),
        "sources.1.server_id",
        "sources.1.server_id is required.",
    ),
    (
        "a server id that is no UUID",
        _source("server_id", "8"),
        "sources.1.server_id",
        "sources.1.server_id must be a UUID (got '8').",
    ),
    (
        "no report version",
        _source("report_version", KeyError),
        "sources.1.report_version",
        "sources.1.report_version is required.",
    ),
    (
        "a legacy report version",
        _source("report_version", "0.0.44.legacy"),
        "sources.1.report_version",
        "sources.1.report_version is not a report version like 1.2.3+build (got '0.0.44.legacy').",
    ),
    (
        "no source name",
        _source("source_name", KeyError),
        "sources.1.source_name",
        "sources.1.source_name is required.",
    ),
    (
        "a long source name",
        _source("source_name", "s" * 65),
        "sources.1.source_name",
        "sources.1.source_name can be at most 64 characters long.",
    ),
    (
        "an unknown source type",
        _source("source_type", "ldap"),
        "sources.1.source_type",
        "sources.1.source_type must be one of network, vcenter, satellite, openshift, ansible, "
        "rhacs (got 'ldap').",
    ),
    (
        "no facts",
        _source("facts", KeyError),
        "sources.1.facts",
        "sources.1.facts is required: a list of each system's facts.",
    ),
    (
        "empty facts",
        _source("facts", []),
        "sources.1.facts",
        "sources.1.facts needs at least one system.",
    ),
    (
        "facts that are no objects",
        _source("facts", [{"hostname": "a"}, "B"]),
        "sources.1.facts.1",
        "sources.1.facts.1 must be an object: one system's facts.",
    ),
]


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [case[1:] for case in MALFORMED],
    ids=[case[0] for case in MALFORMED],
)
def test_a_malformed_upload_is_refused_naming_the_field_and_stores_nothing(
    store: Store, change: Callable[[dict[str, Any]], None], field: str, message: str
) -> None:
    two_reports(store)
    document = established_details()
    change(document)
    before = counts(store)
    with pytest.raises(InvalidInput) as refused:
        upload(store, document)
    assert (refused.value.field, refused.value.message) == (field, message)
    assert counts(store) == before


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"sources": [this is bad]', "The upload is not JSON: "),
        (b"\xff\xfe{", "The upload is not JSON: "),
        (b'["details"]', "The upload must be a details report: a JSON object"),
    ],
)
def test_an_upload_that_is_no_json_object_is_refused(
    store: Store, body: bytes, message: str
) -> None:
    before = counts(store)
    with pytest.raises(InvalidInput) as refused:
        upload(store, body)
    assert refused.value.field == "body"
    assert refused.value.message.startswith(message)
    assert counts(store) == before


def test_systems_without_a_name_are_told_apart_by_position() -> None:
    used: set[str] = set()
    names = [
        report_imports.system_name(facts, source_type="network", number=n, used=used)
        for n, facts in enumerate(
            [{"system": "a"}, {"system": "a"}, {}, {"uname_hostname": "  h  "}, {"system": 7}],
            start=1,
        )
    ]
    assert names == ["a", "a (2)", "system 3", "h", "system 5"]


def test_systems_of_the_platform_types_are_named_from_their_nested_facts() -> None:
    used: set[str] = set()
    named = [
        ("vcenter", {"vm.name": "vm-1"}),
        ("openshift", {"node": {"kind": "node", "name": "worker-0"}}),
        ("openshift", {"cluster": {"kind": "cluster", "uuid": "c-1"}}),
        ("openshift", {"node": "not a mapping"}),
        ("ansible", {"instance_details": {"system_name": "aap.example.com"}}),
        ("rhacs", {"central": {"host": "acs.example.com"}}),
    ]
    names = [
        report_imports.system_name(facts, source_type=kind, number=n, used=used)
        for n, (kind, facts) in enumerate(named, start=1)
    ]
    assert names == [
        "vm-1",
        "worker-0",
        "system 3",
        "system 4",
        "aap.example.com",
        "acs.example.com",
    ]


def test_a_report_keeps_a_summary_of_its_systems_and_older_ones_are_read_whole(
    store: Store,
) -> None:
    (_, first), (_, second) = two_reports(store)
    made = report_imports.merge(store, report_ids=[first, second], now=LATER, by="user:admin")
    stored = list(reports.summaries(store, report_id=made.report_id))
    with store.transaction() as s:
        blob = s.get_one(Report, made.report_id).deployments_gz
    whole = list(reports.systems(blob))
    assert [s["name"] for s in stored] == [s["name"] for s in whole]
    assert all(set(s) <= set(reports.SUMMARY_FIELDS) for s in stored)
    assert stored[0]["sources"] == whole[0]["sources"]
    with store.transaction() as s:
        s.get_one(Report, made.report_id).summary_gz = None
    assert list(reports.summaries(store, report_id=made.report_id)) == stored
