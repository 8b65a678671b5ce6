"""The scanner pull API (``/scanner/...``): field names and codes exactly as the contract says."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from quipu import wire
from quipu.api.deps import Now, StoreDep
from quipu.api.long_poll import WorkWaiters
from quipu.api.params import Count, Id
from quipu.clock import Clock
from quipu.services import protocol, scanners
from quipu.store import Store
from quipu.store.secrets import SecretBox

router = APIRouter(prefix="/scanner", tags=["scanner protocol"])


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Progress(Body):
    progressCount: Count
    resultCount: Count


class Results(Body):
    results: list[wire.SystemResult] = Field(max_length=10_000)


class Complete(Body):
    status: Literal["completed", "failed"]
    resultCount: Count | None = None
    errorMessage: str | None = Field(default=None, max_length=10_000)


class Heartbeat(Body):
    version: str = Field(min_length=1, max_length=32)
    capacity: Count | None = None
    agentId: str | None = Field(default=None, max_length=64)


class Ok(BaseModel):
    ok: bool = True


class Directive(Ok):
    directive: Literal["continue", "stop"]


class Accepted(Ok):
    accepted: int


MAX_WAIT_S = 60.0


async def _scanner(
    request: Request, store: StoreDep, x_api_key: Annotated[str | None, Header()] = None
) -> scanners.Caller:
    """The calling scanner: from the key cache without leaving the event loop, else looked up
    in the thread pool."""
    cache: scanners.KeyCache | None = getattr(request.app.state, "scanner_keys", None)
    if cache is not None and x_api_key and (caller := cache.get(scanners.key_digest(x_api_key))):
        return caller
    return await run_in_threadpool(scanners.authenticate, store, api_key=x_api_key, cache=cache)


ScannerDep = Annotated[scanners.Caller, Depends(_scanner)]


def _secrets(request: Request) -> SecretBox:
    box: SecretBox = request.app.state.secrets
    return box


@router.get("/jobs", response_model=wire.Jobs, response_model_by_alias=True)
async def claim_jobs(
    request: Request,
    scanner: ScannerDep,
    store: StoreDep,
    limit: Annotated[int, Query(ge=1, description="Jobs to claim; at most 10 are given.")] = 1,
    wait: Annotated[
        float,
        Query(
            ge=0,
            le=MAX_WAIT_S,
            description="Seconds to wait for work when there is none yet (a long poll); "
            "the answer comes as soon as work for this scanner exists.",
        ),
    ] = 0,
    claim_id: Annotated[
        str | None,
        Query(
            alias="claimId",
            min_length=1,
            max_length=64,
            pattern=r"^[A-Za-z0-9_.-]+$",
            description="The scanner's name for this claim (letters, digits, '_', '.', '-'; "
            "at most 64): asked again under it, the answer is the jobs it took and the "
            "scanner has not started, so a claim whose answer was lost can be repeated on "
            "any node.",
        ),
    ] = None,
) -> wire.Jobs:
    """Claim pending jobs for this scanner (atomically), waiting up to ``wait`` seconds."""
    scanners.check_binding(scanner, client_ip=request.client.host if request.client else None)
    clock: Clock = request.app.state.clock
    secrets = _secrets(request)

    def claim() -> list[wire.Job]:
        return protocol.claim(
            store, secrets, scanner=scanner, limit=limit, now=clock.now(), claim_id=claim_id
        )

    waiters: WorkWaiters | None = getattr(request.app.state, "work_waiters", None)
    if not wait or waiters is None or waiters.closing:
        return wire.Jobs(jobs=await run_in_threadpool(claim))
    deadline = time.monotonic() + wait
    await request.body()  # read, so that what comes next from the client is its leaving
    gone = asyncio.ensure_future(_disconnected(request))
    try:
        with waiters.waiting(scanner.id) as woken:
            # A scanner this process knows has no work waits without a claim first: an idle
            # fleet's long polls cost no statement until work is announced.
            known_idle = waiters.known_idle(scanner.id)
            while True:
                woken.clear()
                jobs: list[wire.Job] = []
                held = False
                if not known_idle:
                    jobs, held = await _claim_noting_idle(waiters, store, scanner.id, claim)
                known_idle = False
                left = deadline - time.monotonic()
                if jobs or left <= 0 or waiters.closing:
                    return wire.Jobs(jobs=jobs)
                wake = asyncio.ensure_future(woken.wait())
                await asyncio.wait(
                    {wake, gone},
                    timeout=min(left, HELD_RETRY_S) if held else left,
                    return_when="FIRST_COMPLETED",
                )
                wake.cancel()
                if gone.done():
                    # Gone: work claimed now would wait for a scanner that never sees it.
                    return wire.Jobs(jobs=[])
                if not woken.is_set() and not held:
                    # Waited it out, and no work was announced: the scanner's next claim
                    # comes at once, so claiming again now would only repeat it.
                    return wire.Jobs(jobs=[])
    finally:
        gone.cancel()


HELD_RETRY_S = 0.2
"""How soon a long poll claims again when its claim passed over work another transaction
held locked (no announcement comes for that work: it was there all along)."""


async def _claim_noting_idle(
    waiters: WorkWaiters, store: Store, scanner_id: int, claim: Callable[[], list[wire.Job]]
) -> tuple[list[wire.Job], bool]:
    """A claim; with nothing claimed, whether work was there but held by another
    transaction (a concurrent claim, a sweep) or truly none (the scanner is then known
    idle until work is announced for it)."""
    since = waiters.before_claim()
    jobs = await run_in_threadpool(claim)
    if jobs:
        return jobs, False
    if await run_in_threadpool(protocol.has_work, store, scanner_id=scanner_id):
        return [], True
    waiters.found_nothing(scanner_id, since=since)
    return [], False


async def _disconnected(request: Request) -> None:
    """Returns when the client closes its connection."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


@router.post("/jobs/{job_id}/start")
def start_job(job_id: Id, scanner: ScannerDep, store: StoreDep, now: Now) -> Ok:
    """Mark a claimed job running."""
    protocol.start(store, scanner=scanner, job_id=job_id, now=now)
    return Ok()


@router.post("/jobs/{job_id}/progress")
def report_progress(job_id: Id, body: Progress, scanner: ScannerDep, store: StoreDep) -> Directive:
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
    job_id: Id, body: Results, scanner: ScannerDep, store: StoreDep, now: Now
) -> Accepted:
    """Upload per-system results; idempotent per system."""
    added = protocol.upload_results(
        store,
        scanner=scanner,
        job_id=job_id,
        results=body.results,
        now=now,
    )
    return Accepted(accepted=added)


@router.post("/jobs/{job_id}/complete")
def complete_job(job_id: Id, body: Complete, scanner: ScannerDep, store: StoreDep, now: Now) -> Ok:
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
    return Ok()


@router.post("/jobs/{job_id}/release")
def release_job(job_id: Id, scanner: ScannerDep, store: StoreDep, now: Now) -> Ok:
    """Give a job back unfinished (the scanner is shutting down); another scanner takes it."""
    protocol.release(store, scanner=scanner, job_id=job_id, now=now)
    return Ok()


@router.post("/heartbeat")
async def heartbeat(
    body: Heartbeat, request: Request, scanner: ScannerDep, store: StoreDep, now: Now
) -> Ok:
    """Mark this scanner online."""
    beats: protocol.Heartbeats | None = getattr(request.app.state, "heartbeats", None)
    signature = (body.agentId, body.version, body.capacity)
    if beats is not None and beats.take(scanner.id, signature):
        return Ok()  # a repeat: written with the others within a second
    await run_in_threadpool(
        protocol.heartbeat,
        store,
        scanner=scanner,
        version=body.version,
        capacity=body.capacity,
        agent_id=body.agentId,
        now=now,
    )
    if beats is not None:
        beats.wrote(scanner.id, signature)
    return Ok()
