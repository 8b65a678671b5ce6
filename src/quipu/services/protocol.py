"""The scanner side of the pull protocol: claim, start, progress, results, complete, heartbeat."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from quipu import wire
from quipu.collectors.network.targets import from_ranges, to_ranges
from quipu.domain.errors import Conflict, Forbidden, NotFound
from quipu.domain.source_types import rules_of
from quipu.domain.states import (
    SCANNER_JOB_FINAL,
    SCANNER_JOB_HELD,
    ScanJobStatus,
    ScannerJobAction,
    ScannerJobStatus,
    TaskKind,
)
from quipu.services import vault, vault_secrets
from quipu.store import Store
from quipu.store.notify import DISPATCH, notify
from quipu.store.secrets import SecretBox
from quipu.store.statements import (
    Claimed,
    add_results,
    beat_scanner,
    beat_scanners,
    claim_for_scanner,
    claimable,
    move_own_scanner_job,
    move_scanner_job,
    record_progress,
)
from quipu.store.tables import (
    Credential,
    ScanJob,
    Scanner,
    ScannerJob,
    SystemResult,
)

log = logging.getLogger(__name__)

STOPPING = frozenset({ScanJobStatus.PAUSED, ScanJobStatus.CANCELED, ScanJobStatus.PENDING})
"""A scan job in these states wants its scanners to stop (pending: deferred to its next time
window, or waiting to retry)."""
MAX_LIMIT = 10


class ScannerRef(Protocol):
    """The calling scanner, as the protocol's calls need it (an authenticated caller)."""

    @property
    def id(self) -> int: ...
    @property
    def name(self) -> str: ...


def has_work(store: Store, *, scanner_id: int) -> bool:
    """A claim for ``scanner_id`` would find work, were its rows not held by another
    transaction this instant: an empty claim on PostgreSQL passes over locked rows."""
    return claimable(store, scanner_id=scanner_id)


def claim(
    store: Store,
    secrets: SecretBox,
    *,
    scanner: ScannerRef,
    limit: int,
    now: datetime,
    claim_id: str | None = None,
) -> list[wire.Job]:
    """Claim up to ``limit`` (at most 10) jobs for ``scanner`` and describe them for it;
    none while it is draining. Asked again under the same ``claim_id``, the answer is the
    jobs that claim took and the scanner has not started.

    The claim statement returns what the payloads need; a resumed job's finished systems
    are read only for jobs claimed before, and credentials once per batch. Secrets held in
    HashiCorp Vault are read after the claim's transaction, so that no row stays locked while
    Vault is asked; a job whose secret cannot be read fails with the reason and is not handed
    out.
    """
    limit = max(1, min(limit, MAX_LIMIT))
    claimed = claim_for_scanner(
        store,
        scanner_id=scanner.id,
        limit=limit,
        now=now,
        by=f"scanner:{scanner.name}",
        claim_id=claim_id,
    )
    if not claimed:
        return []
    with store.transaction() as s:  # reads only, and none when nothing needs them
        done = _done_systems(s, claimed)
        credentials, refs = _credentials(
            s, secrets, {i for c in claimed for i in c.source.get("credential_ids", [])}
        )
        vault_fields = vault.load_fields(s, box=secrets) if refs else None
    log.info("scanner jobs %s claimed by %s", ", ".join(str(c.id) for c in claimed), scanner.name)
    failures: dict[int, str] = {}
    if refs:
        credentials, failures = vault_secrets.fill(credentials, refs, fields=vault_fields)
    jobs: list[wire.Job] = []
    for c in claimed:
        ids = c.source.get("credential_ids", [])
        failed = next((failures[i] for i in ids if i in failures), None)
        if failed is not None:
            _fail_claimed(store, job_id=c.id, message=failed, now=now)
            continue
        jobs.append(_job(c, done=done.get(c.task_id, set()), credentials=credentials))
    return jobs


def _done_systems(s: Session, claimed: Sequence[Claimed]) -> dict[int, set[str]]:
    """The systems with a result already, per task, of the jobs claimed before (resumed)."""
    tasks = {
        c.task_id for c in claimed if c.attempts > 1 and rules_of(c.source_type).systems_are_hosts
    }
    done: dict[int, set[str]] = {}
    if tasks:
        for task_id, system in s.execute(
            select(SystemResult.task_id, SystemResult.system).where(SystemResult.task_id.in_(tasks))
        ):
            done.setdefault(task_id, set()).add(system)
    return done


def _job(c: Claimed, *, done: set[str], credentials: dict[int, wire.Credential]) -> wire.Job:
    source = c.source
    return wire.Job(
        job_id=c.id,
        scan_id=c.scan_job_id,
        kind=TaskKind(c.kind).value,
        source_type=c.source_type,
        targets=[wire.Target.model_validate(t) for t in remaining_targets(c.targets, done=done)],
        max_probes_per_second=c.max_probes_per_second,
        credentials=[credentials[i] for i in source.get("credential_ids", []) if i in credentials],
        options=wire.Options(
            task_id=c.task_id,
            source_name=c.source_name,
            max_concurrency=c.options.get("max_concurrency", 25),
            ssl_cert_verify=source.get("ssl_cert_verify"),
            ssl_protocol=source.get("ssl_protocol"),
            disable_ssl=source.get("disable_ssl"),
            proxy_url=source.get("proxy_url"),
        ),
    )


def remaining_targets(targets: Sequence[dict[str, Any]], *, done: set[str]) -> list[dict[str, Any]]:
    """A job's targets less the systems that already have a result (a resumed job)."""
    if not done:
        return list(targets)
    remaining: list[dict[str, Any]] = []
    for target in targets:
        systems = [x for x in from_ranges([target["range"]]) if x not in done]
        remaining.extend({**target, "range": r} for r in to_ranges(systems))
    return remaining


def _credentials(
    s: Session, secrets: SecretBox, ids: set[int]
) -> tuple[dict[int, wire.Credential], dict[int, vault_secrets.VaultRef]]:
    """The credentials ``ids``, each decrypted once for the batch, and where those whose
    secret is in Vault take it from."""
    if not ids:
        return {}, {}

    def reveal(value: bytes | None) -> str | None:
        return secrets.decrypt(value) if value is not None else None

    credentials: dict[int, wire.Credential] = {}
    refs: dict[int, vault_secrets.VaultRef] = {}
    for c in s.scalars(select(Credential).where(Credential.id.in_(ids))):
        credentials[c.id] = wire.Credential(
            id=c.id,
            name=c.name,
            cred_type=c.cred_type,
            username=c.username or "",
            password=reveal(c.password_enc),
            ssh_key=reveal(c.ssh_key_enc),
            ssh_passphrase=reveal(c.ssh_passphrase_enc),
            auth_token=reveal(c.auth_token_enc),
            become_method=c.become_method or "sudo",
            become_user=c.become_user or "root",
            become_password=reveal(c.become_password_enc),
        )
        if (ref := vault_secrets.reference(c)) is not None:
            refs[c.id] = ref
    return credentials, refs


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


def _own(s: Session, *, scanner: ScannerRef, job_id: int) -> ScannerJob:
    job = s.get(ScannerJob, job_id)
    if job is None:
        raise _missing(job_id)
    _check_own(scanner, job_id=job_id, owner_id=job.scanner_id)
    return job


def _ended(job_id: int, status: str) -> Conflict:
    return Conflict(f"Scanner job {job_id} is {status} and cannot take more results.")


def _missing(job_id: int) -> NotFound:
    return NotFound(f"Scanner job {job_id} does not exist.")


def _check_own(scanner: ScannerRef, *, job_id: int, owner_id: int | None) -> None:
    """403 for another scanner's job."""
    if owner_id != scanner.id:
        raise Forbidden(f'Scanner job {job_id} is not assigned to scanner "{scanner.name}".')


def start(store: Store, *, scanner: ScannerRef, job_id: int, now: datetime) -> None:
    """Mark a claimed job running; starting it twice is harmless (a scanner repeats a call
    whose answer was lost)."""
    by = f"scanner:{scanner.name}"
    if move_own_scanner_job(
        store,
        job_id=job_id,
        scanner_id=scanner.id,
        action=ScannerJobAction.START,
        by=by,
        at=now,
        values={"started_at": now},
        durable=False,  # lost in a database crash: the job is claimed, and can still complete
    ):
        return
    with store.transaction() as s:  # why not: the guarded move's own answer
        if _own(s, scanner=scanner, job_id=job_id).status == ScannerJobStatus.RUNNING:
            return  # started twice (the first answer was lost on the way): harmless
        move_scanner_job(
            s,
            job_id=job_id,
            action=ScannerJobAction.START,
            by=by,
            at=now,
            values={"started_at": now},
        )


def progress(
    store: Store, *, scanner: ScannerRef, job_id: int, progress_count: int, result_count: int
) -> str:
    """Record progress; ``stop`` when the scan job was paused or canceled (or the job ended)."""
    status = record_progress(
        store,
        job_id=job_id,
        scanner_id=scanner.id,
        progress_count=progress_count,
        result_count=result_count,
    )
    if status is None:
        with store.transaction() as s:
            job = _own(s, scanner=scanner, job_id=job_id)
            if ScannerJobStatus(job.status) in SCANNER_JOB_FINAL:
                return "stop"
            status = s.get_one(ScanJob, job.scan_job_id).status
    return "stop" if ScanJobStatus(status) in STOPPING else "continue"


def upload_results(
    store: Store,
    *,
    scanner: ScannerRef,
    job_id: int,
    results: Sequence[wire.SystemResult],
    now: datetime,
) -> int:
    """Store results, idempotent per (task, system); returns how many were new."""
    unique = list({r.system: r for r in results}.values())
    if results and store.kind == "postgresql":
        rows = [r.model_dump(include=_RESULT_FIELDS, mode="json") for r in unique]
        outcome = add_results(store, job_id=job_id, scanner_id=scanner.id, rows=rows, now=now)
        if outcome is None:
            raise _missing(job_id)
        _check_own(scanner, job_id=job_id, owner_id=outcome.scanner_id)
        if ScannerJobStatus(outcome.status) in SCANNER_JOB_FINAL:
            raise _ended(job_id, outcome.status)
        return outcome.added
    with store.transaction() as s:
        job = _own(s, scanner=scanner, job_id=job_id)
        if ScannerJobStatus(job.status) in SCANNER_JOB_FINAL:
            raise _ended(job_id, job.status)
        if not results:
            return 0
        named = {r.credential_id for r in unique if r.credential_id is not None}
        known = set(s.scalars(select(Credential.id).where(Credential.id.in_(named))))
        rows = [
            {
                "scan_job_id": job.scan_job_id,
                "task_id": job.task_id,
                "scanner_job_id": job.id,
                "system": r.system,
                "port": r.port,
                "status": r.status,
                "message": r.message,
                # A credential deleted since the job was claimed is not referenced.
                "credential_id": r.credential_id if r.credential_id in known else None,
                "facts": r.facts,
                "created_at": now,
            }
            for r in unique
        ]
        stmt = (  # SQLite: PostgreSQL took the one-statement way above
            sqlite_insert(SystemResult)
            .values(rows)
            .on_conflict_do_nothing(index_elements=["task_id", "system"])
            .returning(SystemResult.id)
        )
        return len(s.scalars(stmt).all())


_RESULT_FIELDS = {"system", "port", "status", "message", "credential_id", "facts"}


def complete(
    store: Store,
    *,
    scanner: ScannerRef,
    job_id: int,
    status: str,
    result_count: int | None,
    error_message: str | None,
    now: datetime,
) -> None:
    """End a job. Work stopped by a pause goes back to pending; by a cancel, canceled.

    Completing twice is harmless; a second, different outcome is refused. The job that was
    its task's last open one wakes the dispatcher (on every node): the task may be over.
    """
    by = f"scanner:{scanner.name}"
    action = ScannerJobAction.COMPLETE if status == "completed" else ScannerJobAction.FAIL
    values: dict[str, Any] = {"finished_at": now, "error_message": error_message or ""}
    if result_count is not None:
        values["result_count"] = result_count
    # The usual case in one statement: its own job, held, its scan job running.
    moved = move_own_scanner_job(
        store,
        job_id=job_id,
        scanner_id=scanner.id,
        action=action,
        by=by,
        at=now,
        values=values,
        scan_job_running=True,
        note=error_message or "",
        wake_dispatcher=True,
    )
    if moved is None:
        otherwise = _complete_otherwise(
            store,
            scanner=scanner,
            job_id=job_id,
            status=status,
            result_count=result_count,
            error_message=error_message,
            now=now,
        )
        if otherwise is None:
            return
        action = otherwise
    log.info("scanner job %s ended %s by %s (%s)", job_id, status, scanner.name, action)


def _complete_otherwise(
    store: Store,
    *,
    scanner: ScannerRef,
    job_id: int,
    status: str,
    result_count: int | None,
    error_message: str | None,
    now: datetime,
) -> ScannerJobAction | None:
    """``complete`` when the one-statement move did not apply: a repeated or refused end, a
    job released meanwhile, or a scan job paused, waiting or canceled (the work is given
    back or canceled). None when there was nothing to do."""
    with store.transaction() as s:
        job = _own(s, scanner=scanner, job_id=job_id)
        if ScannerJobStatus(job.status) in SCANNER_JOB_FINAL:
            if job.status == status or job.status == ScannerJobStatus.CANCELED:
                return None
            raise Conflict(f"Scanner job {job_id} is already {job.status}.")
        if job.status == ScannerJobStatus.PENDING:
            return None  # released while the scanner finished: it will be claimed again
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
        notify(s, DISPATCH, [str(job.scan_job_id)])
    return action


def _given_back(scan_status: ScanJobStatus) -> str:
    """Why a scanner gave its work back, for the job's log."""
    if scan_status == ScanJobStatus.PAUSED:
        return "Given back: its scan job was paused."
    if scan_status == ScanJobStatus.PENDING:
        return "Given back: its scan job waits (a closed time window or a retry)."
    return "Given back by its scanner."


def release(store: Store, *, scanner: ScannerRef, job_id: int, now: datetime) -> None:
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
        notify(s, DISPATCH, [str(job.scan_job_id)])
    log.info("scanner job %s given back by %s (%s)", job_id, scanner.name, action)


BeatSignature = tuple[str | None, str, int | None]
"""What a heartbeat says besides "alive": its agent process id, version and capacity."""


class Heartbeats:
    """Heartbeats that repeat the last one this process wrote for a scanner (the same agent
    process, version and capacity, within ``known_s``) are taken in memory and written for all
    such scanners in one UPDATE every ``flush_s`` (``flush``): a fleet's heartbeats cost a
    statement a second, not one each. Any other heartbeat is written at once by
    :func:`heartbeat` (a new agent process releases its predecessor's jobs there)."""

    def __init__(self, *, known_s: float = 60.0) -> None:
        self.known_s = known_s
        self._known: dict[int, tuple[BeatSignature, float]] = {}
        self._due: set[int] = set()
        self._lock = threading.Lock()

    def take(self, scanner_id: int, signature: BeatSignature) -> bool:
        """True when the heartbeat (its agent id, version and capacity) repeats a known one:
        ``flush`` writes it."""
        known = self._known.get(scanner_id)
        if known is None or known[0] != signature or known[1] < time.monotonic():
            return False
        with self._lock:
            self._due.add(scanner_id)
        return True

    def wrote(self, scanner_id: int, signature: BeatSignature) -> None:
        """:func:`heartbeat` wrote this one: repeats of it may be taken from now on."""
        self._known[scanner_id] = (signature, time.monotonic() + self.known_s)

    def flush(self, store: Store, *, now: datetime) -> int:
        """Write the heartbeats taken since the last flush; how many scanners they were."""
        with self._lock:
            due, self._due = self._due, set()
        beat_scanners(store, scanner_ids=due, now=now)
        return len(due)


def heartbeat(
    store: Store,
    *,
    scanner: ScannerRef,
    version: str,
    capacity: int | None,
    agent_id: str | None,
    now: datetime,
) -> None:
    """Mark the scanner online, in one UPDATE while its agent process is the same one.

    A new agent process orphans its predecessor's jobs: release them."""
    if beat_scanner(
        store,
        scanner_id=scanner.id,
        version=version,
        capacity=capacity,
        agent_id=agent_id,
        now=now,
    ):
        return
    with store.transaction() as s:
        row = s.get_one(Scanner, scanner.id)
        row.last_heartbeat = now
        row.version = version[:32]
        row.capacity = capacity
        row.agent_id = agent_id
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
    log.info("scanner %s restarted: its unfinished jobs were released", scanner.name)
