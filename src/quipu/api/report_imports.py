"""Routes that make reports from other reports' facts: merge, and upload of a details report."""

from __future__ import annotations

import tempfile
from typing import Annotated, Any

from fastapi import APIRouter, Body, Request, status
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from quipu.api.deps import CurrentUser, Now, StoreDep, actor
from quipu.domain.errors import InvalidInput
from quipu.services import report_imports
from quipu.services.report_imports import ImportedJob

router = APIRouter(prefix="/api/v1/reports", tags=["reports"])

SPOOL_BYTES = 8 * 2**20
"""Uploads up to this size stay in memory while they arrive; larger ones go to a file."""


class ImportedJobOut(BaseModel):
    """The job a merge or an upload made, in the established server's short job shape."""

    job_id: int
    report_id: int
    scan_id: int | None
    scan_type: str
    status: str
    status_message: str


def _out(job: ImportedJob) -> ImportedJobOut:
    return ImportedJobOut(
        job_id=job.job_id,
        report_id=job.report_id,
        scan_id=None,
        scan_type=job.scan_type,
        status=job.status,
        status_message=job.status_message,
    )


MergeBody = Annotated[
    Any,
    Body(
        description='{"reports": [report ids]} as the established client sends, or '
        '{"jobs": [scan job ids]}; two or more distinct ids.',
        examples=[{"reports": [1, 2]}],
    ),
]


@router.post("/merge/", status_code=status.HTTP_201_CREATED)
@router.put("/merge/", status_code=status.HTTP_201_CREATED, include_in_schema=False)
async def merge(body: MergeBody, user: CurrentUser, store: StoreDep, now: Now) -> ImportedJobOut:
    """Merge reports into a new one whose systems are deduplicated across them."""
    if not isinstance(body, dict):
        raise InvalidInput("This field is required", field="reports")
    if "jobs" in body and "reports" in body:
        raise InvalidInput("Give reports or jobs, not both.", field="reports")
    if "jobs" in body:
        jobs = body["jobs"]
        made = await run_in_threadpool(
            lambda: report_imports.merge_jobs(store, job_ids=jobs, now=now, by=actor(user))
        )
    else:
        ids = body.get("reports")
        made = await run_in_threadpool(
            lambda: report_imports.merge(store, report_ids=ids, now=now, by=actor(user))
        )
    return _out(made)


@router.post(
    "/",
    status_code=status.HTTP_201_CREATED,
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "A details report: report_type, report_platform_id, sources.",
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    },
)
async def upload(request: Request, user: CurrentUser, store: StoreDep, now: Now) -> ImportedJobOut:
    """Upload a details report made elsewhere; it becomes a report of its own."""
    # Read as a stream, never as one request-wide bytes object, so that a large upload is
    # held once while parsed, then only as the facts being stored.
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool:
        async for chunk in request.stream():
            spool.write(chunk)
        spool.seek(0)
        made = await run_in_threadpool(
            lambda: report_imports.upload(store, body=spool, now=now, by=actor(user))
        )
    return _out(made)
