"""The scanner side of the pull protocol: claim, start, progress, results, complete, heartbeat."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from quipu.collectors.network.targets import from_ranges, to_ranges
from quipu.domain.errors import Conflict, Forbidden, NotFound
from quipu.domain.source_types import rules_of
from quipu.domain.states import (
    SCANNER_JOB_FINAL,
    SCANNER_JOB_HELD,
    ScanJobStatus,
    ScannerJobAction,
    ScannerJobStatus,
)
from quipu.services import vault, vault_secrets
from quipu.store import Store
from quipu.store.secrets import SecretBox
from quipu.store.statements import claim_scanner_jobs, move_scanner_job
from quipu.store.tables import Credential, ScanJob, Scanner, ScannerJob, SystemResult, Task

log = logging.getLogger(__name__)

STOPPING = frozenset({ScanJobStatus.PAUSED, ScanJobStatus.CANCELED, ScanJobStatus.PENDING})
"""A scan job in these states wants its scanners to stop (pending: deferred to its next time
window, or waiting to retry)."""
MAX_LIMIT = 10


@dataclass(frozen=True, slots=True)
class Result:
    """One system's outcome as a scanner uploads it."""

    system: str
    status: str
    port: int | None = None
    message: str = ""
    credential_id: int | None = None
    facts: dict[str, Any] | None = None


def claim(
    store: Store, secrets: SecretBox, *, scanner: Scanner, limit: int, now: datetime
) -> list[dict[str, Any]]:
    """Claim up to ``limit`` (at most 10) jobs for ``scanner`` and describe them for it;
    none while it is draining.

    Secrets held in HashiCorp Vault are read after the claim's transaction, so that no row
    stays locked while Vault is asked; a job whose secret cannot be read fails with the
    reason and is not handed out.
    """
    limit = max(1, min(limit, MAX_LIMIT))
    with store.transaction() as s:
        if s.scalar(select(Scanner.draining).where(Scanner.id == scanner.id)):
            return []  # draining: it finishes what it holds and takes nothing new
        jobs = claim_scanner_jobs(
            s, scanner_id=scanner.id, limit=limit, now=now, by=f"scanner:{scanner.name}"
        )
        payloads = [_payload(s, secrets, job) for job in jobs]
        held = any(vault_secrets.held(p) for p in payloads)
        vault_fields = vault.load_fields(s, box=secrets) if held else None
    for job in jobs:
        log.info(
            "scanner job %s (scan job %s) claimed by %s", job.id, job.scan_job_id, scanner.name
        )
    if not held:
        return payloads
    failures = vault_secrets.fill(payloads, fields=vault_fields)
    for job_id, message in failures.items():
        _fail_claimed(store, job_id=job_id, message=message, now=now)
    return [p for p in payloads if p["jobId"] not in failures]


def _payload(s: Session, secrets: SecretBox, job: ScannerJob) -> dict[str, Any]:
    task = s.get_one(Task, job.task_id)
    scan_job = s.get_one(ScanJob, job.scan_job_id)
    source = task.source
    targets = job.targets
    if rules_of(task.source_type).systems_are_hosts:
        done = set(s.scalars(select(SystemResult.system).where(SystemResult.task_id == task.id)))
        targets = remaining_targets(job.targets, done=done)
    return {
        "jobId": job.id,
        "scanId": job.scan_job_id,
        "kind": job.kind,
        "sourceType": task.source_type,
        "targets": targets,
        "maxProbesPerSecond": job.max_probes_per_second,
        "credentials": _credentials(s, secrets, source.get("credential_ids", [])),
        "options": {
            "taskId": task.id,
            "sourceName": task.source_name,
            "maxConcurrency": scan_job.options.get("max_concurrency", 25),
            "sslCertVerify": source.get("ssl_cert_verify"),
            "sslProtocol": source.get("ssl_protocol"),
            "disableSsl": source.get("disable_ssl"),
            "proxyUrl": source.get("proxy_url"),
        },
    }


def remaining_targets(targets: Sequence[dict[str, Any]], *, done: set[str]) -> list[dict[str, Any]]:
    """A job's targets less the systems that already have a result (a resumed job)."""
    if not done:
        return list(targets)
    remaining: list[dict[str, Any]] = []
    for target in targets:
        systems = [x for x in from_ranges([target["range"]]) if x not in done]
        remaining.extend({**target, "range": r} for r in to_ranges(systems))
    return remaining


def _credentials(s: Session, secrets: SecretBox, ids: Sequence[int]) -> list[dict[str, Any]]:
    """The source's credentials, in the order they are tried, decrypted for this scanner."""
    rows = {c.id: c for c in s.scalars(select(Credential).where(Credential.id.in_(ids)))}

    def reveal(value: bytes | None) -> str | None:
        return secrets.decrypt(value) if value is not None else None

    return [
        {
            "id": c.id,
            "name": c.name,
            "credType": c.cred_type,
            "username": c.username,
            "password": reveal(c.password_enc),
            "sshKey": reveal(c.ssh_key_enc),
            "sshPassphrase": reveal(c.ssh_passphrase_enc),
            "authToken": reveal(c.auth_token_enc),
            "becomeMethod": c.become_method or "sudo",
            "becomeUser": c.become_user or "root",
            "becomePassword": reveal(c.become_password_enc),
            **vault_secrets.reference(c),
        }
        for i in ids
        if (c := rows.get(i)) is not None
    ]


def _fail_claimed(store: Store, *, job_id: int, message: str, now: datetime) -> None:
    """Fail a job just claimed, as if its scanner had reported ``message``."""
    try:
        with store.transaction() as s:
            move_scanner_job(
                s,
                job_id=job_id,
                action=ScannerJobAction.FAIL,
                by="dispatcher",
                at=now,
                values={"finished_at": now, "error_message": message},
            )
    except Conflict:
        return  # canceled or released meanwhile: nothing left to fail
    log.warning("scanner job %s failed before it was handed out: %s", job_id, message)


def _own(s: Session, *, scanner: Scanner, job_id: int) -> ScannerJob:
    job = s.get(ScannerJob, job_id)
    if job is None:
        raise NotFound(f"Scanner job {job_id} does not exist.")
    if job.scanner_id != scanner.id:
        raise Forbidden(f'Scanner job {job_id} is not assigned to scanner "{scanner.name}".')
    return job


def start(store: Store, *, scanner: Scanner, job_id: int, now: datetime) -> None:
    with store.transaction() as s:
        _own(s, scanner=scanner, job_id=job_id)
        move_scanner_job(
            s,
            job_id=job_id,
            action=ScannerJobAction.START,
            by=f"scanner:{scanner.name}",
            at=now,
            values={"started_at": now},
        )


def progress(
    store: Store, *, scanner: Scanner, job_id: int, progress_count: int, result_count: int
) -> str:
    """Record progress; ``stop`` when the scan job was paused or canceled (or the job ended)."""
    with store.transaction() as s:
        job = _own(s, scanner=scanner, job_id=job_id)
        if ScannerJobStatus(job.status) in SCANNER_JOB_FINAL:
            return "stop"
        job.progress_count = progress_count
        job.result_count = result_count
        status = s.get_one(ScanJob, job.scan_job_id).status
    return "stop" if ScanJobStatus(status) in STOPPING else "continue"


def upload_results(
    store: Store, *, scanner: Scanner, job_id: int, results: Sequence[Result], now: datetime
) -> int:
    """Store results, idempotent per (task, system); returns how many were new."""
    with store.transaction() as s:
        job = _own(s, scanner=scanner, job_id=job_id)
        if ScannerJobStatus(job.status) in SCANNER_JOB_FINAL:
            raise Conflict(f"Scanner job {job_id} is {job.status} and cannot take more results.")
        if not results:
            return 0
        rows = [
            {
                "scan_job_id": job.scan_job_id,
                "task_id": job.task_id,
                "scanner_job_id": job.id,
                "system": r.system,
                "port": r.port,
                "status": r.status,
                "message": r.message,
                "credential_id": r.credential_id,
                "facts": r.facts or {},
                "created_at": now,
            }
            for r in {r.system: r for r in results}.values()
        ]
        insert = pg_insert if s.get_bind().dialect.name == "postgresql" else sqlite_insert
        stmt = (
            insert(SystemResult)
            .values(rows)
            .on_conflict_do_nothing(index_elements=["task_id", "system"])
            .returning(SystemResult.id)
        )
        added = len(s.scalars(stmt).all())
        _drop_unknown_credentials(s, job=job)
    return added


def _drop_unknown_credentials(s: Session, *, job: ScannerJob) -> None:
    # A credential deleted since the job started must not break the foreign key.
    known = select(Credential.id)
    s.execute(
        update(SystemResult)
        .where(
            SystemResult.scanner_job_id == job.id,
            SystemResult.credential_id.is_not(None),
            SystemResult.credential_id.not_in(known),
        )
        .values(credential_id=None)
    )


def complete(
    store: Store,
    *,
    scanner: Scanner,
    job_id: int,
    status: str,
    result_count: int | None,
    error_message: str | None,
    now: datetime,
) -> None:
    """End a job. Work stopped by a pause goes back to pending; by a cancel, canceled.

    Completing twice is harmless; a second, different outcome is refused.
    """
    with store.transaction() as s:
        job = _own(s, scanner=scanner, job_id=job_id)
        if ScannerJobStatus(job.status) in SCANNER_JOB_FINAL:
            if job.status == status or job.status == ScannerJobStatus.CANCELED:
                return
            raise Conflict(f"Scanner job {job_id} is already {job.status}.")
        if job.status == ScannerJobStatus.PENDING:
            return  # released while the scanner finished: it will be claimed again
        scan_status = ScanJobStatus(s.get_one(ScanJob, job.scan_job_id).status)
        values: dict[str, Any] = {
            "result_count": result_count if result_count is not None else job.result_count,
        }
        note = None
        if scan_status in (ScanJobStatus.PAUSED, ScanJobStatus.PENDING):
            action = ScannerJobAction.RELEASE
            values |= {"started_at": None, "claimed_at": None}
            note = _given_back(scan_status)
        elif scan_status == ScanJobStatus.CANCELED:
            action = ScannerJobAction.CANCEL
            values["finished_at"] = now
        else:
            action = ScannerJobAction.COMPLETE if status == "completed" else ScannerJobAction.FAIL
            values |= {"finished_at": now, "error_message": error_message or ""}
        move_scanner_job(
            s,
            job_id=job_id,
            action=action,
            by=f"scanner:{scanner.name}",
            at=now,
            values=values,
            note=note,
        )
    log.info("scanner job %s ended %s by %s (%s)", job_id, status, scanner.name, action)


def _given_back(scan_status: ScanJobStatus) -> str:
    """Why a scanner gave its work back, for the job's log."""
    if scan_status == ScanJobStatus.PAUSED:
        return "Given back: its scan job was paused."
    if scan_status == ScanJobStatus.PENDING:
        return "Given back: its scan job waits (a closed time window or a retry)."
    return "Given back by its scanner."


def release(store: Store, *, scanner: Scanner, job_id: int, now: datetime) -> None:
    """Give a job back (its scanner is shutting down, or was told to stop): pending again
    for any scanner, or canceled with its canceled scan job.

    A scanner told to stop by a pause gives its work back this way rather than failing
    it, so a job restarted before the scanner heard back still finishes.
    """
    with store.transaction() as s:
        job = _own(s, scanner=scanner, job_id=job_id)
        if ScannerJobStatus(job.status) in SCANNER_JOB_FINAL or job.status == "pending":
            return
        scan_status = ScanJobStatus(s.get_one(ScanJob, job.scan_job_id).status)
        values: dict[str, Any]
        note = None
        if scan_status == ScanJobStatus.CANCELED:
            action, values = ScannerJobAction.CANCEL, {"finished_at": now}
        else:
            action = ScannerJobAction.RELEASE
            values = {"started_at": None, "claimed_at": None}
            note = _given_back(scan_status)
        move_scanner_job(
            s,
            job_id=job_id,
            action=action,
            by=f"scanner:{scanner.name}",
            at=now,
            values=values,
            note=note,
        )
    log.info("scanner job %s given back by %s (%s)", job_id, scanner.name, action)


def heartbeat(
    store: Store,
    *,
    scanner: Scanner,
    version: str,
    capacity: int | None,
    agent_id: str | None,
    now: datetime,
) -> None:
    """Mark the scanner online. A new agent process orphans its predecessor's jobs: release them."""
    with store.transaction() as s:
        row = s.get_one(Scanner, scanner.id)
        restarted = agent_id is not None and row.agent_id not in (None, agent_id)
        row.last_heartbeat = now
        row.version = version[:32]
        row.capacity = capacity
        row.agent_id = agent_id
        if restarted:
            orphans = s.scalars(
                select(ScannerJob.id)
                .where(
                    ScannerJob.scanner_id == scanner.id,
                    ScannerJob.status.in_([st.value for st in SCANNER_JOB_HELD]),
                )
                .order_by(ScannerJob.id)
            ).all()
            for orphan_id in orphans:
                try:
                    move_scanner_job(
                        s,
                        job_id=orphan_id,
                        action=ScannerJobAction.RELEASE,
                        by=f"scanner:{scanner.name}",
                        at=now,
                        values={"claimed_at": None, "started_at": None},
                        note=f"Scanner {scanner.name!r} restarted: its unfinished scanner job "
                        f"{orphan_id} is pending again.",
                    )
                except Conflict:
                    continue  # ended or released meanwhile: nothing left to give back
    if restarted:
        log.info("scanner %s restarted: its unfinished jobs were released", scanner.name)
