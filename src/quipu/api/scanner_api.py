"""The scanner pull API (``/scanner/...``): field names and codes exactly as the contract says."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from quipu.api.deps import Now, StoreDep
from quipu.services import protocol, scanners
from quipu.store.secrets import SecretBox
from quipu.store.tables import Scanner

router = APIRouter(prefix="/scanner", tags=["scanner protocol"])


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Progress(Body):
    progressCount: int = Field(ge=0)
    resultCount: int = Field(ge=0)


class ResultIn(Body):
    system: str = Field(min_length=1, max_length=255)
    status: Literal["success", "failed", "unreachable"]
    port: int | None = Field(default=None, ge=1, le=65535)
    message: str = Field(default="", max_length=10_000)
    credentialId: int | None = None
    facts: dict[str, Any] = Field(default_factory=dict)


class Results(Body):
    results: list[ResultIn] = Field(max_length=10_000)


class Complete(Body):
    status: Literal["completed", "failed"]
    resultCount: int | None = Field(default=None, ge=0)
    errorMessage: str | None = Field(default=None, max_length=10_000)


class Heartbeat(Body):
    version: str = Field(min_length=1, max_length=32)
    capacity: int | None = Field(default=None, ge=0)
    agentId: str | None = Field(default=None, max_length=64)


class Ok(BaseModel):
    ok: bool = True


class Directive(Ok):
    directive: Literal["continue", "stop"]


class Accepted(Ok):
    accepted: int


class Jobs(BaseModel):
    jobs: list[dict[str, Any]]


def _scanner(store: StoreDep, x_api_key: Annotated[str | None, Header()] = None) -> Scanner:
    return scanners.authenticate(store, api_key=x_api_key)


ScannerDep = Annotated[Scanner, Depends(_scanner)]


def _secrets(request: Request) -> SecretBox:
    box: SecretBox = request.app.state.secrets
    return box


def _poke(request: Request) -> None:
    dispatcher = getattr(request.app.state, "dispatcher", None)
    if dispatcher is not None:
        dispatcher.poke()


@router.get("/jobs")
async def claim_jobs(
    request: Request,
    scanner: ScannerDep,
    store: StoreDep,
    now: Now,
    limit: Annotated[int, Query(ge=1, description="Jobs to claim; at most 10 are given.")] = 1,
) -> Jobs:
    """Claim pending jobs for this scanner (atomically)."""
    scanners.check_binding(scanner, client_ip=request.client.host if request.client else None)
    jobs = await run_in_threadpool(
        lambda: protocol.claim(store, _secrets(request), scanner=scanner, limit=limit, now=now)
    )
    return Jobs(jobs=jobs)


@router.post("/jobs/{job_id}/start")
def start_job(job_id: int, scanner: ScannerDep, store: StoreDep, now: Now) -> Ok:
    """Mark a claimed job running."""
    protocol.start(store, scanner=scanner, job_id=job_id, now=now)
    return Ok()


@router.post("/jobs/{job_id}/progress")
def report_progress(job_id: int, body: Progress, scanner: ScannerDep, store: StoreDep) -> Directive:
    """Report progress; the answer says whether to continue or stop."""
    directive = protocol.progress(
        store,
        scanner=scanner,
        job_id=job_id,
        progress_count=body.progressCount,
        result_count=body.resultCount,
    )
    return Directive(directive="stop" if directive == "stop" else "continue")


@router.post("/jobs/{job_id}/results")
def upload_results(
    job_id: int, body: Results, scanner: ScannerDep, store: StoreDep, now: Now
) -> Accepted:
    """Upload per-system results; idempotent per system."""
    added = protocol.upload_results(
        store,
        scanner=scanner,
        job_id=job_id,
        results=[
            protocol.Result(
                system=r.system,
                status=r.status,
                port=r.port,
                message=r.message,
                credential_id=r.credentialId,
                facts=r.facts,
            )
            for r in body.results
        ],
        now=now,
    )
    return Accepted(accepted=added)


@router.post("/jobs/{job_id}/complete")
def complete_job(
    job_id: int, body: Complete, request: Request, scanner: ScannerDep, store: StoreDep, now: Now
) -> Ok:
    """Finish a job as completed or failed."""
    protocol.complete(
        store,
        scanner=scanner,
        job_id=job_id,
        status=body.status,
        result_count=body.resultCount,
        error_message=body.errorMessage,
        now=now,
    )
    _poke(request)
    return Ok()


@router.post("/jobs/{job_id}/release")
def release_job(
    job_id: int, request: Request, scanner: ScannerDep, store: StoreDep, now: Now
) -> Ok:
    """Give a job back unfinished (the scanner is shutting down); another scanner takes it."""
    protocol.release(store, scanner=scanner, job_id=job_id, now=now)
    _poke(request)
    return Ok()


@router.post("/heartbeat")
def heartbeat(body: Heartbeat, scanner: ScannerDep, store: StoreDep, now: Now) -> Ok:
    """Mark this scanner online."""
    protocol.heartbeat(
        store,
        scanner=scanner,
        version=body.version,
        capacity=body.capacity,
        agent_id=body.agentId,
        now=now,
    )
    return Ok()
