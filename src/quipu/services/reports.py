"""Report use cases: build a completed job's reports once, then read them in any format."""

from __future__ import annotations

import gzip
import io
import json
import logging
import uuid
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, defer

import quipu
from quipu.domain.errors import NotFound
from quipu.domain.states import SystemStatus, TaskKind
from quipu.reports import (
    SourceFacts,
    build_deployments,
    build_details,
    build_tarball,
    write_deployments_csv,
)
from quipu.store import Store
from quipu.store.tables import Report, ScanJob, SystemResult, Task

log = logging.getLogger(__name__)


def _pack(document: dict[str, Any]) -> bytes:
    return gzip.compress(json.dumps(document, sort_keys=True).encode(), compresslevel=6)


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

    details = build_details(
        report_id=report.id,
        sources=sources(),
        report_version=report.report_version,
        platform_id=platform_id,
    )
    deployments = build_deployments(
        report_id=report.id,
        sources=sources(),
        report_version=report.report_version,
        platform_id=platform_id,
    )
    report.systems_count = sum(len(source["facts"]) for source in details["sources"])
    report.deployments_count = len(deployments["system_fingerprints"])
    report.details_gz = _pack(details)
    report.deployments_gz = _pack(deployments)
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


def get(store: Store, *, report_id: int) -> Report:
    """A report's summary (without its documents)."""
    with store.transaction() as s:
        report = s.scalar(
            select(Report)
            .where(Report.id == report_id)
            .options(defer(Report.details_gz), defer(Report.deployments_gz))
        )
    if report is None:
        raise NotFound(f"Report {report_id} does not exist.")
    return report


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


def tarball(store: Store, *, report_id: int) -> bytes:
    """details.json, deployments.json, deployments.csv and SHA256SUM in a .tar.gz."""
    details = json.loads(details_json(store, report_id=report_id))
    deployments = json.loads(deployments_json(store, report_id=report_id))
    out = io.BytesIO()
    build_tarball(details=details, deployments=deployments, out=out)
    return out.getvalue()
