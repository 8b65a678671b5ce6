"""Reports made from facts gathered earlier: merges of reports, uploads of details reports.

Either is a scan job of type fingerprint with no scan, made in one transaction already
completed: one inspect task per input source, one system result per system with its raw
facts, then its report, built by the same code as a scan's. The dispatcher never sees such a
job, since it only looks at pending and running ones.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import logging
import re
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from typing import IO, Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from quipu.domain.errors import InvalidInput
from quipu.domain.source_types import source_type_of
from quipu.domain.states import (
    ReportOrigin,
    ScanJobStatus,
    ScanJobType,
    SystemStatus,
    TaskKind,
    TaskStatus,
)
from quipu.services import reports
from quipu.store import Store
from quipu.store.events import record_event
from quipu.store.tables import Report, ScanJob, SystemResult, Task

log = logging.getLogger(__name__)

REPORT_VERSION = re.compile(r"\d+\.\d+\.\d+(\+\S|$)")
"""The established server's ``1.2.3+build``; Quipu's own reports say ``1.2.3``."""

SOURCE_NAME_MAX = 64
SCAN_NAME_MAX = 64
SYSTEM_NAME_MAX = 255
INSERT_BATCH = 1000

NAME_FACTS: dict[str, tuple[tuple[str, ...], ...]] = {
    "network": (("connection_host",), ("uname_hostname",)),
    "vcenter": (("vm.name",), ("host.name",)),
    "satellite": (("hostname",),),
    "openshift": (("node", "name"),),
    "ansible": (("instance_details", "system_name"),),
    "rhacs": (("central", "host"),),
}
"""Facts that name a system, per source type, for facts that carry no ``system`` of their own:
each a path of keys into the facts (a vCenter fact's name holds a dot, an OpenShift node's
name is inside its ``node`` fact)."""


@dataclasses.dataclass(frozen=True, slots=True)
class ImportedJob:
    """What a merge or an upload made: its scan job and its report."""

    job_id: int
    report_id: int
    scan_type: str
    status: str
    status_message: str


@dataclasses.dataclass(slots=True)
class SourceInput:
    """One source of facts to become one task: its name, type and systems' facts."""

    source_name: str
    source_type: str
    facts: list[dict[str, Any]] | None
    """Emptied once stored, so the facts of a large upload are held once at most."""
    provenance: dict[str, Any]
    """Where the facts came from, kept as the task's source snapshot."""


def merge(store: Store, *, report_ids: Any, now: datetime, by: str) -> ImportedJob:
    """A job whose report holds the facts of reports ``report_ids`` (the established
    ``{"reports": [...]}``), its systems deduplicated by the deployments rules."""
    ids = parse_ids(report_ids, field="reports", noun="scan report")
    with store.transaction() as s:
        found = set(s.scalars(select(Report.id).where(Report.id.in_(ids))))
    missing = [i for i in ids if i not in found]
    if missing:
        raise InvalidInput(
            "Not all scan report ids exist. Scan reports not found: "
            + ", ".join(str(i) for i in missing),
            field="reports",
        )
    return _merge_reports(store, report_ids=ids, now=now, by=by)


def merge_jobs(store: Store, *, job_ids: Any, now: datetime, by: str) -> ImportedJob:
    """A job whose report holds the facts of the reports of scan jobs ``job_ids``."""
    ids = parse_ids(job_ids, field="jobs", noun="scan job")
    with store.transaction() as s:
        found = set(s.scalars(select(ScanJob.id).where(ScanJob.id.in_(ids))))
    missing = [i for i in ids if i not in found]
    if missing:
        raise InvalidInput(
            "Not all scan job ids exist. Scan jobs not found: "
            + ", ".join(str(i) for i in missing),
            field="jobs",
        )
    report_of = reports.ids_of_jobs(store, job_ids=ids)
    without = [i for i in ids if i not in report_of]
    if without:
        raise InvalidInput(
            "Not all scan jobs have a report; only completed scan jobs have one. "
            "Scan jobs without a report: " + ", ".join(str(i) for i in without),
            field="jobs",
        )
    return _merge_reports(store, report_ids=[report_of[i] for i in ids], now=now, by=by)


def parse_ids(value: Any, *, field: str, noun: str) -> list[int]:
    """Two or more distinct ids, as the established server takes them (``"3"`` is 3)."""
    if value is None:
        raise InvalidInput("This field is required", field=field)
    if not isinstance(value, list):
        raise InvalidInput(f"This field must be a list of {noun.split()[-1]} ids.", field=field)
    if len(value) < 2:
        raise InvalidInput(f"Two or more {noun} ids are required.", field=field)
    ids = [_as_int(item) for item in value]
    if any(i is None for i in ids):
        raise InvalidInput(f"{noun.capitalize()} ids must be integers.", field=field)
    if any(i is not None and not 1 <= i < 2**63 for i in ids):
        raise InvalidInput(
            f"{noun.capitalize()} ids are whole numbers from 1 to {2**63 - 1}.", field=field
        )
    if len(set(ids)) != len(ids):
        raise InvalidInput("Set of ids must be unique.", field=field)
    return [i for i in ids if i is not None]


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def _merge_reports(
    store: Store, *, report_ids: Sequence[int], now: datetime, by: str
) -> ImportedJob:
    def sources(s: Session) -> Iterator[SourceInput]:
        # One input report's details at a time, read in the merge's own transaction.
        for report_id in report_ids:
            packed = s.scalar(select(Report.details_gz).where(Report.id == report_id))
            if packed is None:  # removed since the ids were checked
                raise InvalidInput(
                    f"Not all scan report ids exist. Scan reports not found: {report_id}",
                    field="reports",
                )
            details = json.loads(gzip.decompress(packed))
            for source in details["sources"]:
                yield SourceInput(
                    source_name=source["source_name"],
                    source_type=source["source_type"],
                    facts=source["facts"],
                    provenance={
                        "report_id": report_id,
                        "server_id": source.get("server_id"),
                        "report_version": source.get("report_version"),
                    },
                )

    shown = ", ".join(str(i) for i in report_ids)
    name = f"merge of reports {shown}"
    if len(name) > SCAN_NAME_MAX:
        name = f"merge of {len(report_ids)} reports"
    job = _create(
        store, sources=sources, scan_name=name, origin=ReportOrigin.MERGED, now=now, by=by
    )
    log.info("scan job %s: merge of reports %s, report %s", job.job_id, shown, job.report_id)
    return job


def upload(store: Store, *, body: IO[bytes], now: datetime, by: str) -> ImportedJob:
    """A job whose report holds the facts of an uploaded details report (JSON in ``body``).

    The established server's details report is taken, and Quipu's own; a malformed one is
    refused naming the field, and nothing is stored.
    """
    try:
        document = json.load(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InvalidInput(
            f"The upload is not JSON: {error}. Send a details report.", field="body"
        ) from None
    sources = parse_details(document)
    del document
    count = len(sources)
    job = _create(
        store,
        sources=lambda _s: _draining(sources),
        scan_name="upload of a details report",
        origin=ReportOrigin.UPLOADED,
        now=now,
        by=by,
    )
    log.info("scan job %s: upload of %d sources, report %s", job.job_id, count, job.report_id)
    return job


def _draining(sources: list[SourceInput]) -> Iterator[SourceInput]:
    # Each source's facts are let go as soon as they are stored (see _create).
    while sources:
        yield sources.pop(0)


def parse_details(document: Any) -> list[SourceInput]:
    """The sources of a details report, checked like the established server's upload."""
    if not isinstance(document, dict):
        raise InvalidInput(
            "The upload must be a details report: a JSON object with report_type and sources.",
            field="body",
        )
    report_type = document.get("report_type")
    if report_type is None:
        raise InvalidInput("report_type is required.", field="report_type")
    if report_type != "details":
        raise InvalidInput(
            f'report_type must be "details" (got {report_type!r}).', field="report_type"
        )
    platform_id = document.get("report_platform_id")
    if platform_id is not None and not _is_uuid(platform_id):
        raise InvalidInput(
            f"report_platform_id must be a UUID (got {platform_id!r}).",
            field="report_platform_id",
        )
    sources = document.get("sources")
    if not isinstance(sources, list):
        raise InvalidInput("sources is required: a list of sources.", field="sources")
    if not sources:
        raise InvalidInput("sources needs at least one source.", field="sources")
    return [_parse_source(source, where=f"sources.{i}") for i, source in enumerate(sources)]


def _parse_source(source: Any, *, where: str) -> SourceInput:
    if not isinstance(source, dict):
        raise InvalidInput(f"{where} must be an object.", field=where)
    server_id = source.get("server_id")
    if server_id is None:
        raise InvalidInput(f"{where}.server_id is required.", field=f"{where}.server_id")
    if not _is_uuid(server_id):
        raise InvalidInput(
            f"{where}.server_id must be a UUID (got {server_id!r}).", field=f"{where}.server_id"
        )
    version = source.get("report_version")
    if version is None:
        raise InvalidInput(f"{where}.report_version is required.", field=f"{where}.report_version")
    if not isinstance(version, str) or not REPORT_VERSION.match(version):
        raise InvalidInput(
            f"{where}.report_version is not a report version like 1.2.3+build (got {version!r}).",
            field=f"{where}.report_version",
        )
    name = source.get("source_name")
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput(f"{where}.source_name is required.", field=f"{where}.source_name")
    if len(name) > SOURCE_NAME_MAX:
        raise InvalidInput(
            f"{where}.source_name can be at most {SOURCE_NAME_MAX} characters long.",
            field=f"{where}.source_name",
        )
    kind = source.get("source_type")
    if kind is None:
        raise InvalidInput(f"{where}.source_type is required.", field=f"{where}.source_type")
    if not isinstance(kind, str):
        raise InvalidInput(
            f"{where}.source_type must be a source type name (got {kind!r}).",
            field=f"{where}.source_type",
        )
    source_type = source_type_of(kind, field=f"{where}.source_type")
    facts = source.get("facts")
    if not isinstance(facts, list):
        raise InvalidInput(
            f"{where}.facts is required: a list of each system's facts.", field=f"{where}.facts"
        )
    if not facts:
        raise InvalidInput(f"{where}.facts needs at least one system.", field=f"{where}.facts")
    for index, facts_of_one in enumerate(facts):
        if not isinstance(facts_of_one, dict):
            raise InvalidInput(
                f"{where}.facts.{index} must be an object: one system's facts.",
                field=f"{where}.facts.{index}",
            )
    return SourceInput(
        source_name=name,
        source_type=source_type.value,
        facts=facts,
        provenance={"server_id": str(server_id), "report_version": version},
    )


def _is_uuid(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _create(
    store: Store,
    *,
    sources: Callable[[Session], Iterable[SourceInput]],
    scan_name: str,
    origin: ReportOrigin,
    now: datetime,
    by: str,
) -> ImportedJob:
    """The completed fingerprint job, its tasks and system results, and its report."""
    with store.transaction() as s:
        job = ScanJob(
            scan_type=ScanJobType.FINGERPRINT.value,
            scan_id=None,
            scan_name=scan_name,
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
        total = 0
        for source in sources(s):
            total += _add_task(s, job=job, source=source, now=now)
        job.systems_count = job.systems_scanned = total
        job.systems_failed = job.systems_unreachable = 0
        s.flush()
        report = reports.build(s, job=job, now=now)
        report.origin = origin.value
        s.flush()
        made = "merged from other reports" if origin == ReportOrigin.MERGED else "uploaded"
        record_event(
            s,
            scan_job_id=job.id,
            at=now,
            kind="scan_job",
            action=origin.value,
            to_status=job.status,
            actor=by,
            message=f"Report {report.id} {made}: {total} systems.",
        )
        return ImportedJob(
            job_id=job.id,
            report_id=report.id,
            scan_type=job.scan_type,
            status=job.status,
            status_message=job.status_message,
        )


def _add_task(s: Session, *, job: ScanJob, source: SourceInput, now: datetime) -> int:
    """One completed inspect task holding ``source``'s systems; returns how many."""
    facts = source.facts or []
    task = Task(
        scan_job_id=job.id,
        source_id=None,
        source_name=source.source_name,
        source_type=source.source_type,
        source=source.provenance,
        kind=TaskKind.INSPECT.value,
        status=TaskStatus.COMPLETED.value,
        status_message="",
        start_time=now,
        end_time=now,
        systems_count=len(facts),
        systems_scanned=len(facts),
        systems_failed=0,
        systems_unreachable=0,
    )
    s.add(task)
    s.flush()
    used: set[str] = set()
    rows: list[dict[str, Any]] = []
    for number, facts_of_one in enumerate(facts, start=1):
        rows.append(
            {
                "scan_job_id": job.id,
                "task_id": task.id,
                "system": system_name(
                    facts_of_one, source_type=source.source_type, number=number, used=used
                ),
                "status": SystemStatus.SUCCESS.value,
                "message": "",
                "facts": facts_of_one,
                "created_at": now,
            }
        )
        if len(rows) == INSERT_BATCH:
            s.execute(insert(SystemResult), rows)
            rows = []
    if rows:
        s.execute(insert(SystemResult), rows)
    count = len(facts)
    source.facts = None
    return count


def system_name(facts: dict[str, Any], *, source_type: str, number: int, used: set[str]) -> str:
    """The name a system is known by in its task: its ``system`` fact, else a naming fact,
    else its position; unique within the task (a second ``a`` is ``a (2)``)."""
    name = ""
    for path in (("system",), *NAME_FACTS.get(source_type, ())):
        value: Any = facts
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, str) and value.strip():
            name = value.strip()[:SYSTEM_NAME_MAX]
            break
    if not name:
        name = f"system {number}"
    if name in used:
        suffix = 2
        while f"{name[: SYSTEM_NAME_MAX - 12]} ({suffix})" in used:
            suffix += 1
        name = f"{name[: SYSTEM_NAME_MAX - 12]} ({suffix})"
    used.add(name)
    return name
