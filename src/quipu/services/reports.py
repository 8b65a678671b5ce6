"""Report use cases: build a completed job's reports once, then read them in any format.

The deployments report is stored as ``writers.write_json`` writes it, one system per line,
so the aggregate and insights reports read it one system at a time (``systems``) instead of
holding 100,000 parsed systems at once.
"""

from __future__ import annotations

import dataclasses
import gzip
import io
import json
import logging
import socket
import tarfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

from sqlalchemy import func, select, true
from sqlalchemy.orm import Session, defer

import quipu
from quipu.domain.errors import NotFound
from quipu.domain.states import SystemStatus, TaskKind
from quipu.reports import (
    SourceFacts,
    build_deployments,
    build_details,
    write_deployments_csv,
)
from quipu.reports.aggregate import PLATFORM_TYPES, build_aggregate
from quipu.reports.insights import Collector, NoHosts, write_insights_tarball
from quipu.reports.writers import (
    FileWriter,
    download_files,
    tar_gz,
    write_details_csv,
    write_download,
    write_json,
    write_systems_csv,
)
from quipu.store import Store
from quipu.store.tables import Report, ScanJob, SystemResult, Task

log = logging.getLogger(__name__)


CANNOT_PUBLISH_REASON = "auth_missing"
"""Why no report can be published: no publishing service login is configured (none is
reachable from Quipu), as the established server says without one."""


def _pack(document: dict[str, Any]) -> bytes:
    return gzip.compress(json.dumps(document, sort_keys=True).encode(), compresslevel=6)


def _pack_deployments(document: dict[str, Any]) -> bytes:
    """The deployments report with one system per line (see ``systems``)."""
    out = io.BytesIO()
    with gzip.GzipFile(filename="", fileobj=out, mode="wb", compresslevel=6, mtime=0) as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8", newline="", write_through=True)
        write_json(document, text, open_levels=2)
        text.write("\n")
        text.flush()
        text.detach()
    return out.getvalue()


SUMMARY_FIELDS = (
    "architecture",
    "cpu_count",
    "infrastructure_type",
    "ip_addresses",
    "name",
    "os_name",
    "os_release",
    "sources",
)
"""What a list of a report's systems shows (the web UI's table and its filters)."""


def _summary(system: Mapping[str, Any]) -> dict[str, Any]:
    return {key: system[key] for key in SUMMARY_FIELDS if key in system}


def _pack_summary(systems: Sequence[Mapping[str, Any]]) -> bytes:
    """Each system's summary, one JSON object per line (see ``Report.summary_gz``)."""
    lines = (json.dumps(_summary(system), sort_keys=True) + "\n" for system in systems)
    return gzip.compress("".join(lines).encode(), compresslevel=6, mtime=0)


def fill(report: Report, *, sources: Callable[[], Sequence[SourceFacts]]) -> None:
    """Build ``report``'s documents from the facts ``sources()`` gives (called once per
    document: facts may be read as they are consumed) and store them and their counts."""
    common: dict[str, Any] = {
        "report_id": report.id,
        "report_version": report.report_version,
        "platform_id": report.report_platform_id,
    }
    details = build_details(sources=list(sources()), **common)
    deployments = build_deployments(sources=list(sources()), **common)
    report.systems_count = sum(len(source["facts"]) for source in details["sources"])
    report.deployments_count = len(deployments["system_fingerprints"])
    report.details_gz = _pack(details)
    report.deployments_gz = _pack_deployments(deployments)
    report.summary_gz = _pack_summary(deployments["system_fingerprints"])


def build(s: Session, *, job: ScanJob, now: datetime) -> Report:
    """Build and store the details and deployments reports of ``job`` (in its transaction)."""
    tasks = list(
        s.scalars(
            select(Task)
            .where(Task.scan_job_id == job.id, Task.kind == TaskKind.INSPECT.value)
            .order_by(Task.id)
        )
    )
    platform_id = str(uuid.uuid4())
    report = Report(
        scan_job_id=job.id,
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

    def sources() -> list[SourceFacts]:
        return [
            SourceFacts(
                source_name=task.source_name,
                source_type=task.source_type,
                server_id=platform_id,
                facts=_facts(s, task_id=task.id),
            )
            for task in tasks
        ]

    fill(report, sources=sources)
    log.info(
        "report %s of scan job %s: %d systems, %d deployments",
        report.id,
        job.id,
        report.systems_count,
        report.deployments_count,
    )
    return report


def _facts(s: Session, *, task_id: int) -> Iterator[dict[str, Any]]:
    """Each inspected system's raw facts, with the address it was reached at."""
    rows = s.execute(
        select(SystemResult.system, SystemResult.facts)
        .where(SystemResult.task_id == task_id, SystemResult.status == SystemStatus.SUCCESS.value)
        .order_by(SystemResult.id)
        .execution_options(yield_per=1000)
    )
    for system, facts in rows:
        yield {**(facts or {}), "system": system}


@dataclasses.dataclass(frozen=True)
class ReportView:
    """A report's summary with what its scan job tells: the scan, when it ended."""

    report: Report
    scan_id: int | None
    scan_name: str | None
    """The scan's name; None for a report no scan made (merged, uploaded) or whose scan is
    gone."""
    end_time: datetime | None

    @property
    def cannot_download_reason(self) -> str | None:
        """Always None: a report is stored whole when its job completes, or not at all."""
        return None

    @property
    def cannot_publish_reason(self) -> str:
        return CANNOT_PUBLISH_REASON


def _views(
    s: Session, *, where: Any, offset: int = 0, limit: int | None = None
) -> list[ReportView]:
    query = (
        select(Report, ScanJob.scan_id, ScanJob.scan_name, ScanJob.end_time)
        .join(ScanJob, ScanJob.id == Report.scan_job_id)
        .where(where)
        .options(defer(Report.details_gz), defer(Report.deployments_gz))
        .order_by(Report.id.desc())
        .offset(offset)
        .limit(limit)
    )
    return [
        ReportView(
            report=report,
            scan_id=scan_id,
            scan_name=scan_name if scan_id is not None else None,
            end_time=end_time,
        )
        for report, scan_id, scan_name, end_time in s.execute(query)
    ]


def view(store: Store, *, report_id: int) -> ReportView:
    """A report's summary and scan (without its documents)."""
    with store.transaction() as s:
        found = _views(s, where=Report.id == report_id)
    if not found:
        raise NotFound(f"Report {report_id} does not exist.")
    return found[0]


def list_views(store: Store, *, offset: int, limit: int) -> tuple[int, list[ReportView]]:
    """Report summaries and scans, newest first."""
    with store.transaction() as s:
        count = s.scalar(select(func.count()).select_from(Report)) or 0
        rows = _views(s, where=true(), offset=offset, limit=limit)
    return count, rows


def get(store: Store, *, report_id: int) -> Report:
    """A report's summary (without its documents)."""
    return view(store, report_id=report_id).report


def list_reports(store: Store, *, offset: int, limit: int) -> tuple[int, list[Report]]:
    with store.transaction() as s:
        count = s.scalar(select(func.count()).select_from(Report)) or 0
        rows = s.scalars(
            select(Report)
            .options(defer(Report.details_gz), defer(Report.deployments_gz))
            .order_by(Report.id.desc())
            .offset(offset)
            .limit(limit)
        ).all()
    return count, list(rows)


def ids_of_jobs(store: Store, *, job_ids: Sequence[int]) -> dict[int, int]:
    """Scan job id -> its report id, for the jobs that have one."""
    if not job_ids:
        return {}
    with store.transaction() as s:
        rows = s.execute(
            select(Report.scan_job_id, Report.id).where(Report.scan_job_id.in_(job_ids))
        ).all()
    return dict(rows)


def _document(store: Store, *, report_id: int, column: Any) -> bytes:
    with store.transaction() as s:
        blob = s.scalar(select(column).where(Report.id == report_id))
    if blob is None:
        raise NotFound(f"Report {report_id} does not exist.")
    return gzip.decompress(blob)


def details_json(store: Store, *, report_id: int) -> bytes:
    """The details report as JSON bytes."""
    return _document(store, report_id=report_id, column=Report.details_gz)


def deployments_json(store: Store, *, report_id: int) -> bytes:
    """The deployments report as JSON bytes."""
    return _document(store, report_id=report_id, column=Report.deployments_gz)


def deployments_csv(store: Store, *, report_id: int) -> str:
    """The deployments report as CSV, columns in ``DEPLOYMENT_CSV_COLUMNS`` order."""
    out = io.StringIO()
    write_deployments_csv(json.loads(deployments_json(store, report_id=report_id)), out)
    return out.getvalue()


def json_tarball(store: Store, *, report_id: int, kind: str) -> bytes:
    """The details or deployments report (``kind``) as ``report_id_<id>/<kind>.json`` in a
    .tar.gz, as the established server answers ``Accept: application/json+gzip``."""
    read = details_json if kind == "details" else deployments_json
    body = read(store, report_id=report_id)
    return tar_gz({f"report_id_{report_id}/{kind}.json": body}, mtime=int(time.time()))


def details_csv(store: Store, *, report_id: int) -> str:
    """The details report as CSV, as the established server writes it."""
    out = io.StringIO()
    write_details_csv(json.loads(details_json(store, report_id=report_id)), out)
    return out.getvalue()


_METADATA = b', "metadata": {'
_METADATA_END = b'}}, "name": '


def _without_metadata(line: bytes) -> bytes:
    """A stored system's line with its ``metadata`` cut out, unparsed.

    Provenance is most of each line and no count reads it, so cutting it first makes the
    parse a fraction of the cost. Keys are sorted, so ``name`` follows ``metadata``; a quote
    inside a JSON string is escaped, so the end marker cannot occur inside a value.
    """
    start = line.find(_METADATA)
    if start < 0:
        return line
    body = start + len(_METADATA)
    if line.startswith(b'}, "name": ', body):
        return line[:start] + line[body + 1 :]
    end = line.find(_METADATA_END, body)
    if end < 0:
        return line
    return line[:start] + line[end + 2 :]


def systems(blob: bytes, *, metadata: bool = True) -> Iterator[dict[str, Any]]:
    """The system fingerprints of a stored deployments report, one at a time.

    A report stored one system per line is read line by line; any other layout (an empty
    report, one written whole) is parsed whole. Without ``metadata``, systems come without
    their provenance (faster, for counts, the insights report and the web UI's table).
    Lines stay bytes until ``json.loads``: the provenance cut out is never decoded.
    """
    with gzip.open(io.BytesIO(blob), "rb") as raw:
        head = raw.readline()
        if not head.rstrip(b"\n").endswith(b'"system_fingerprints": ['):
            for system in json.loads(head + raw.read())["system_fingerprints"]:
                if not metadata:
                    system.pop("metadata", None)
                yield system
            return
        for line in raw:
            line = line.rstrip(b"\n")
            if line == b"]}":
                return
            line = line.removesuffix(b",")
            yield json.loads(line if metadata else _without_metadata(line))


def summaries(store: Store, *, report_id: int) -> Iterator[dict[str, Any]]:
    """Each system of a report's deployments as its ``SUMMARY_FIELDS``, in report order:
    from the stored summary, or (a report stored before there was one) from the
    deployments report itself."""
    with store.transaction() as s:
        stored = s.scalar(select(Report.summary_gz).where(Report.id == report_id))
        blob = None if stored is not None else _deployments_blob(s, report_id=report_id)
    if blob is not None:
        yield from (_summary(system) for system in systems(blob, metadata=False))
        return
    assert stored is not None
    with gzip.open(io.BytesIO(stored), "rb") as lines:
        for line in lines:
            yield json.loads(line)


def _deployments_blob(s: Session, *, report_id: int) -> bytes:
    blob = s.scalar(select(Report.deployments_gz).where(Report.id == report_id))
    if blob is None:
        raise NotFound(f"Report {report_id} does not exist.")
    return blob


def _inspections(s: Session, *, scan_job_id: int) -> dict[str, int]:
    """The report's inspection outcomes: system results of its inspect tasks, by status."""
    rows = s.execute(
        select(SystemResult.status, func.count())
        .join(Task, Task.id == SystemResult.task_id)
        .where(Task.scan_job_id == scan_job_id, Task.kind == TaskKind.INSPECT.value)
        .group_by(SystemResult.status)
    )
    return {status: int(number) for status, number in rows}


def _platform_facts(s: Session, *, scan_job_id: int) -> list[tuple[str, dict[str, Any]]]:
    """The raw facts of the report's OpenShift and AAP records, which the aggregate report
    counts (a few per cluster or controller: read from their rows, not the whole details)."""
    rows = s.execute(
        select(Task.source_type, SystemResult.facts)
        .join(Task, Task.id == SystemResult.task_id)
        .where(
            Task.scan_job_id == scan_job_id,
            Task.kind == TaskKind.INSPECT.value,
            Task.source_type.in_(PLATFORM_TYPES),
            SystemResult.status == SystemStatus.SUCCESS.value,
        )
        .order_by(SystemResult.id)
    )
    return [(source_type, facts or {}) for source_type, facts in rows]


def _counted(store: Store, *, report_id: int, scan_job_id: int) -> tuple[bytes, dict[str, Any]]:
    """The stored deployments report and the aggregate report counted from it."""
    with store.transaction() as s:
        blob = _deployments_blob(s, report_id=report_id)
        inspections = _inspections(s, scan_job_id=scan_job_id)
        platform_facts = _platform_facts(s, scan_job_id=scan_job_id)
    summary = build_aggregate(
        systems=systems(blob, metadata=False),
        inspections=inspections,
        platform_facts=platform_facts,
    )
    return blob, summary


def aggregate(store: Store, *, report_id: int) -> dict[str, Any]:
    """The aggregate report: counts by instance type, OS, hypervisor, and diagnostics."""
    report = get(store, report_id=report_id)
    _, result = _counted(store, report_id=report_id, scan_job_id=report.scan_job_id)
    log.info("report %s: aggregate of scan job %s", report_id, report.scan_job_id)
    return result


def _collector(found: ReportView) -> Collector:
    hostname = socket.gethostname()
    try:
        address = socket.gethostbyname(hostname)
    except OSError:
        address = "127.0.0.1"
    discovered = (found.end_time or found.report.created_at).astimezone(UTC)
    return Collector(
        # Quipu keeps no server identity of its own: the report's platform id names the
        # collection, as it names the details report's sources
        server_id=found.report.report_platform_id,
        server_version=quipu.__version__,
        hostname=hostname,
        ip_address=address,
        last_discovered=discovered.isoformat().replace("+00:00", "Z"),
    )


def insights_tarball(store: Store, *, report_id: int, mtime: int | None = None) -> bytes:
    """The insights report as its tarball of slices and metadata.json.

    Raises NotFound when no system of the report has a canonical fact.
    """
    found = view(store, report_id=report_id)
    with store.transaction() as s:
        blob = _deployments_blob(s, report_id=report_id)
    return _insights(found, blob=blob, mtime=mtime)


def _insights(found: ReportView, *, blob: bytes, mtime: int | None) -> bytes:
    out = io.BytesIO()
    report = found.report
    try:
        write_insights_tarball(
            report_id=report.id,
            report_platform_id=report.report_platform_id,
            report_version=report.report_version,
            systems=systems(blob, metadata=False),
            collector=_collector(found),
            out=out,
            mtime=int(report.created_at.timestamp()) if mtime is None else mtime,
        )
    except NoHosts as error:
        raise NotFound(str(error)) from error
    return out.getvalue()


def insights_files(store: Store, *, report_id: int) -> dict[str, Any]:
    """The insights report as JSON: each file of its tarball by name."""
    files: dict[str, Any] = {}
    body = insights_tarball(store, report_id=report_id)
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as archive:
        for member in archive.getmembers():
            extracted = archive.extractfile(member)
            if extracted is not None:
                files[member.name] = json.loads(extracted.read())
    return files


def _copy_deployments(blob: bytes) -> FileWriter:
    """Writes the stored deployments report as the download's deployments.json.

    The stored text is already that file (``writers.write_json``, one system per line), so
    it is copied, not parsed and written again.
    """

    def write(out: TextIO) -> None:
        with gzip.open(io.BytesIO(blob), "rt", encoding="utf-8", newline="") as text:
            while chunk := text.read(1024 * 1024):
                out.write(chunk)

    return write


def tarball(store: Store, *, report_id: int, mtime: int | None = None) -> bytes:
    """The download: every report as JSON and CSV, the insights tarball, and SHA256SUM.

    The deployments report is read one system at a time for each file made from it; only
    the details report is held parsed (its CSV needs each source's fact names first).
    """
    found = view(store, report_id=report_id)
    blob, summary = _counted(store, report_id=report_id, scan_job_id=found.report.scan_job_id)
    try:
        insights: bytes | None = _insights(found, blob=blob, mtime=mtime)
    except NotFound:
        insights = None
    details = json.loads(details_json(store, report_id=report_id))
    out = io.BytesIO()
    write_download(
        files=download_files(
            details=details,
            deployments=_copy_deployments(blob),
            deployments_csv=lambda text: write_systems_csv(systems(blob, metadata=False), text),
            aggregate=summary,
            insights=insights,
        ),
        out=out,
        root=f"report_id_{report_id}",
        mtime=mtime,
    )
    return out.getvalue()
