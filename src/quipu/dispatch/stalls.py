"""Stalled jobs: detect work that does not move, raise an alarm with its cause and repairs.

One ingest node runs it at a time (under the heartbeat sweeper's lease), after the sweep.
Each tick finds every stalled piece of work of the running scan jobs; a condition found for
the first time raises an alarm, and an open alarm whose condition is gone is resolved. The
conditions, by scanner job:

- ``unclaimed``: pending, and no scanner claimed it for ``stall_unclaimed_s``;
- ``unstarted``: claimed, and not started for ``stall_unstarted_s``;
- ``overrun``: running far longer (``stall_overrun_factor`` times) than its own progress
  predicts;
- ``scanner_silent``: its scanner stopped heartbeating while holding it (the sweep already
  re-assigned it when another scanner could take it; the alarm says which happened).

A repair restarts the clock of its scanner job's conditions, so that the alarm it resolved
is not raised again at once.
"""

from __future__ import annotations

import ast
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from quipu.collectors.network.targets import from_ranges
from quipu.domain.source_types import rules_of
from quipu.domain.states import SCANNER_JOB_HELD, ScanJobStatus, ScannerJobStatus
from quipu.services.alarms import raise_alarm, resolve_alarm
from quipu.services.scanners import BUILTIN_NAME, is_online
from quipu.settings import Settings
from quipu.store import Store
from quipu.store.events import record_event
from quipu.store.tables import Alarm, ScanJob, ScanJobEvent, Scanner, ScannerJob, SystemResult, Task

log = logging.getLogger(__name__)

_NAMED = re.compile(r"""Scanner ('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*") """)
"""The scanner a re-assignment's log entry names (``Scanner 'name' went silent...``)."""

STALL_KINDS = ("unclaimed", "unstarted", "overrun", "scanner_silent")
OVERRUN_MIN_S = 60.0
"""A scanner job that has run for less than this is never called overrun, whatever its
progress says: a first result in a second does not promise the rest in a minute."""


@dataclass(frozen=True, slots=True)
class Stall:
    """One stalled scanner job, as its alarm will say it."""

    kind: str
    scan_job_id: int
    scanner_job_id: int
    message: str
    actions: list[str]
    scanner_id: int | None = None
    source_id: int | None = None
    group: str | None = None
    """What the alarm stands for when it is more than its scanner job (``task:scanner``)."""

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.group or self.scanner_job_id}"


def span(seconds: float) -> str:
    """A duration as an operator reads it: 45 s, 5 min 1 s, 2 h 3 min."""
    total = round(max(seconds, 0))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    if minutes:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    return f"{secs} s"


def predicted_s(
    *, started_at: datetime, last_result_at: datetime, done: int, total: int
) -> float | None:
    """How long a scanner job should take in all, from the pace of its results so far;
    None without progress to judge by (nothing done yet, or everything)."""
    if done <= 0 or total <= 0 or done >= total:
        return None
    spent = max((last_result_at - started_at).total_seconds(), 1.0)
    return spent * total / done


def is_overrun(*, elapsed_s: float, predicted: float | None, factor: float) -> bool:
    return predicted is not None and elapsed_s >= OVERRUN_MIN_S and elapsed_s > factor * predicted


@dataclass(frozen=True, slots=True)
class ScannerState:
    """What the unclaimed alarm says about one scanner of a source."""

    name: str
    enabled: bool
    draining: bool
    online: bool


def unclaimed_cause(
    *, assigned: str | None, scanners: Sequence[ScannerState], held: int = 0
) -> tuple[str, bool]:
    """Why no scanner claims work, in a sentence; and whether another scanner of the source
    could take it (a redispatch fits then)."""
    if not scanners:
        return "the source has no scanner", False
    names = ", ".join(repr(sc.name) for sc in scanners)
    enabled = [sc for sc in scanners if sc.enabled]
    if not enabled:
        return f"every scanner of the source is disabled ({names})", False
    online = [sc for sc in enabled if sc.online]
    if not online:
        return f"no scanner of the source is online ({names})", False
    working = [sc for sc in online if not sc.draining]
    if not working:
        return f"every online scanner of the source is draining ({names})", False
    others = [sc for sc in working if sc.name != assigned]
    mine = next((sc for sc in scanners if sc.name == assigned), None)
    if mine is None or not mine.online:
        return f"its scanner {assigned!r} is offline", bool(others)
    if not mine.enabled:
        return f"its scanner {assigned!r} is disabled", bool(others)
    if mine.draining:
        return f"its scanner {assigned!r} is draining", bool(others)
    return (
        f"its scanner {assigned!r} is online but has not claimed it (it holds {held} scanner jobs)",
        bool(others),
    )


@dataclass
class _Context:
    s: Session
    settings: Settings
    now: datetime
    tasks: dict[int, Task] = field(default_factory=dict)
    _scanners: dict[int, Scanner | None] = field(default_factory=dict)
    """The scanners read so far: only those the work in question names (a fleet's
    thousands of idle scanners are not read each tick)."""

    def scanner(self, scanner_id: int | None) -> Scanner | None:
        if scanner_id is None:
            return None
        if scanner_id not in self._scanners:
            self._scanners[scanner_id] = self.s.get(Scanner, scanner_id)
        return self._scanners[scanner_id]

    def name(self, scanner_id: int | None) -> str:
        sc = self.scanner(scanner_id)
        return sc.name if sc is not None else "?"

    def online(self, scanner_id: int | None) -> bool:
        sc = self.scanner(scanner_id)
        return sc is not None and is_online(
            sc, now=self.now, timeout_s=self.settings.heartbeat_timeout_s
        )

    def source_scanners(self, task: Task) -> list[Scanner]:
        ids = task.source.get("scanner_ids") or []
        if ids:
            return [sc for i in ids if (sc := self.scanner(i)) is not None]
        return list(self.s.scalars(select(Scanner).where(Scanner.name == BUILTIN_NAME)))

    def named(self, name: str) -> Scanner | None:
        return self.s.scalar(select(Scanner).where(Scanner.name == name))


def watch(store: Store, *, settings: Settings, now: datetime) -> int:
    """Raise (once) an alarm for each stalled piece of work; how many were raised."""
    raised = 0
    with store.transaction() as s:
        ctx = _Context(s=s, settings=settings, now=now)
        open_alarms = list(
            s.scalars(select(Alarm).where(Alarm.resolved_at.is_(None), Alarm.kind.in_(STALL_KINDS)))
        )
        stalls = {stall.key: stall for stall in _stalls(ctx, open_alarms)}
        for alarm in open_alarms:
            if alarm.key not in stalls:
                resolve_alarm(s, alarm=alarm, now=now, by="dispatcher", why=_gone(ctx, alarm))
        by_key = {a.key: a for a in open_alarms}
        for key, stall in stalls.items():
            if key in by_key:
                _restate(ctx, alarm=by_key[key], stall=stall)
                continue
            if raise_alarm(
                s,
                kind=stall.kind,
                key=key,
                scan_job_id=stall.scan_job_id,
                scanner_job_id=stall.scanner_job_id,
                scanner_id=stall.scanner_id,
                source_id=stall.source_id,
                message=stall.message,
                actions=stall.actions,
                now=now,
            ):
                raised += 1
    return raised


def _restate(ctx: _Context, *, alarm: Alarm, stall: Stall) -> None:
    """A silent scanner's work re-assigned while its alarm was open: the alarm says so now,
    and offers what fits (the log says it too)."""
    if alarm.kind != "scanner_silent" or alarm.message == stall.message:
        return
    alarm.message, alarm.actions = stall.message, stall.actions
    record_event(
        ctx.s,
        scan_job_id=stall.scan_job_id,
        at=ctx.now,
        kind="alarm",
        action="update",
        subject_id=stall.scanner_job_id,
        actor="dispatcher",
        message=f"Alarm {alarm.id} ({alarm.kind}): {stall.message}",
    )


def _stalls(ctx: _Context, open_alarms: list[Alarm]) -> Iterable[Stall]:
    s, now, settings = ctx.s, ctx.now, ctx.settings
    unclaimed_after = timedelta(seconds=settings.stall_unclaimed_s)
    alarmed = [a.scanner_job_id for a in open_alarms if a.scanner_job_id is not None]
    jobs = list(
        s.scalars(
            select(ScannerJob)
            .join(ScanJob, ScanJob.id == ScannerJob.scan_job_id)
            .where(
                ScanJob.status == ScanJobStatus.RUNNING.value,
                or_(
                    # pending work waits at least since it was made: younger is never stalled
                    and_(
                        ScannerJob.status == ScannerJobStatus.PENDING.value,
                        ScannerJob.created_at <= now - unclaimed_after,
                    ),
                    ScannerJob.status.in_([st.value for st in SCANNER_JOB_HELD]),
                    ScannerJob.id.in_(alarmed),
                ),
            )
            .order_by(ScannerJob.id)
        )
    )
    if not jobs:
        return
    task_ids = {j.task_id for j in jobs}
    ctx.tasks = {t.id: t for t in s.scalars(select(Task).where(Task.id.in_(task_ids)))}
    ids = [j.id for j in jobs]
    moved = _latest(s, ids, kinds=("scanner_job", "reassign", "repair"))
    repaired = _latest(s, ids, kinds=("repair",))
    started = dict(
        s.execute(
            select(ScanJobEvent.scan_job_id, func.max(ScanJobEvent.at))
            .where(
                ScanJobEvent.scan_job_id.in_({j.scan_job_id for j in jobs}),
                ScanJobEvent.kind == "scan_job",
                ScanJobEvent.to_status == ScanJobStatus.RUNNING.value,
            )
            .group_by(ScanJobEvent.scan_job_id)
        ).all()
    )
    held_by: dict[int | None, int] = {}
    for j in jobs:
        if j.status != ScannerJobStatus.PENDING.value:
            held_by[j.scanner_id] = held_by.get(j.scanner_id, 0) + 1
    running = [j for j in jobs if j.status == ScannerJobStatus.RUNNING.value]
    pace = _pace(s, running)
    timeout = timedelta(seconds=settings.heartbeat_timeout_s)
    silent_kept = {
        a.scanner_job_id: a
        for a in open_alarms
        if a.kind == "scanner_silent" and a.scanner_id is not None and not ctx.online(a.scanner_id)
    }
    unclaimed: dict[tuple[int, int | None], list[tuple[ScannerJob, float]]] = {}
    for job in jobs:
        task = ctx.tasks[job.task_id]
        where = f"scan job {job.scan_job_id}, source {task.source_name!r}"
        quiet = repaired.get(job.id)
        if job.id in silent_kept:
            kept = silent_kept[job.id]
            message, actions = kept.message, list(kept.actions)
            if job.scanner_id != kept.scanner_id:
                # The sweep moved it since the alarm was raised: say so.
                message = (
                    f"Scanner {ctx.name(kept.scanner_id)!r} stopped heartbeating; its scanner "
                    f"job {job.id} ({where}) was re-assigned to scanner "
                    f"{ctx.name(job.scanner_id)!r}."
                )
                actions = ["drain", "fail"]
            yield Stall(
                kind="scanner_silent",
                scan_job_id=job.scan_job_id,
                scanner_job_id=job.id,
                scanner_id=kept.scanner_id,
                source_id=kept.source_id,
                message=message,
                actions=actions,
            )
            continue
        if job.status == ScannerJobStatus.PENDING.value:
            since = max(
                t for t in (job.created_at, moved.get(job.id), started.get(job.scan_job_id)) if t
            )
            waited = (now - since).total_seconds()
            if waited >= settings.stall_unclaimed_s:
                unclaimed.setdefault((job.task_id, job.scanner_id), []).append((job, waited))
            continue
        scanner = ctx.scanner(job.scanner_id)
        silent = (
            scanner is not None
            and not ctx.online(scanner.id)
            and job.claimed_at is not None
            and job.claimed_at <= now - timeout
        )
        if silent and scanner is not None:
            last = scanner.last_heartbeat
            heard = f"last heartbeat {span((now - last).total_seconds())} ago" if last else "never"
            yield Stall(
                kind="scanner_silent",
                scan_job_id=job.scan_job_id,
                scanner_job_id=job.id,
                scanner_id=scanner.id,
                source_id=task.source_id,
                message=(
                    f"Scanner {scanner.name!r} stopped heartbeating ({heard}) while holding "
                    f"scanner job {job.id} ({where}); no other scanner of the source can take "
                    f"it, so it waits for {scanner.name!r} to come back."
                ),
                actions=["reassign", "fail"],
            )
            continue
        if job.status == ScannerJobStatus.CLAIMED.value and job.claimed_at is not None:
            since = max(t for t in (job.claimed_at, quiet) if t)
            waited = (now - since).total_seconds()
            if waited >= settings.stall_unstarted_s:
                yield Stall(
                    kind="unstarted",
                    scan_job_id=job.scan_job_id,
                    scanner_job_id=job.id,
                    scanner_id=job.scanner_id,
                    source_id=task.source_id,
                    message=(
                        f"Scanner job {job.id} ({where}) was claimed by scanner "
                        f"{ctx.name(job.scanner_id)!r} {span(waited)} ago and has not started."
                    ),
                    actions=["redispatch", "reassign", "drain", "fail"],
                )
            continue
        if job.status == ScannerJobStatus.RUNNING.value and job.id in pace:
            done, total, last = pace[job.id]
            assert job.started_at is not None
            begin = max(t for t in (job.started_at, quiet) if t)
            predicted = predicted_s(
                started_at=job.started_at, last_result_at=last, done=done, total=total
            )
            elapsed = (now - begin).total_seconds()
            if is_overrun(
                elapsed_s=elapsed, predicted=predicted, factor=settings.stall_overrun_factor
            ):
                assert predicted is not None
                yield Stall(
                    kind="overrun",
                    scan_job_id=job.scan_job_id,
                    scanner_job_id=job.id,
                    scanner_id=job.scanner_id,
                    source_id=task.source_id,
                    message=(
                        f"Scanner job {job.id} ({where}) has run {span(elapsed)} on scanner "
                        f"{ctx.name(job.scanner_id)!r}, more than "
                        f"{settings.stall_overrun_factor:g} times the {span(predicted)} its "
                        f"progress predicts ({done} of {total} systems done, the last one "
                        f"{span((now - last).total_seconds())} ago)."
                    ),
                    actions=["redispatch", "drain", "fail"],
                )
    for waiting in unclaimed.values():
        yield _unclaimed(ctx, waiting, held=held_by)
    yield from _silent_moves(ctx, jobs, open_alarms)


def _unclaimed(
    ctx: _Context, waiting: list[tuple[ScannerJob, float]], *, held: dict[int | None, int]
) -> Stall:
    """One alarm for all the waiting work of one task on one scanner: a source of a
    thousand ranges whose scanner is offline is one condition, not a thousand."""
    job, waited = waiting[0]
    task = ctx.tasks[job.task_id]
    where = f"scan job {job.scan_job_id}, source {task.source_name!r}"
    states = [
        ScannerState(
            name=sc.name, enabled=sc.enabled, draining=sc.draining, online=ctx.online(sc.id)
        )
        for sc in ctx.source_scanners(task)
    ]
    cause, other = unclaimed_cause(
        assigned=ctx.name(job.scanner_id) if job.scanner_id else None,
        scanners=states,
        held=held.get(job.scanner_id, 0),
    )
    what = (
        f"Scanner job {job.id} ({where}) has waited {span(waited)} for a scanner to claim it"
        if len(waiting) == 1
        else f"{len(waiting)} scanner jobs ({where}, the oldest {job.id}) have waited "
        f"{span(waited)} for a scanner to claim them"
    )
    return Stall(
        kind="unclaimed",
        scan_job_id=job.scan_job_id,
        scanner_job_id=job.id,
        scanner_id=job.scanner_id,
        source_id=task.source_id,
        message=f"{what}: {cause}.",
        actions=["redispatch", "reassign", "fail"] if other else ["reassign", "fail"],
        group=f"{job.task_id}:{job.scanner_id}",
    )


def _silent_moves(
    ctx: _Context, jobs: list[ScannerJob], open_alarms: list[Alarm]
) -> Iterable[Stall]:
    """Work the sweep took from a silent scanner and gave to another: an alarm says so, open
    until that work ends or the silent scanner heartbeats again."""
    s, now = ctx.s, ctx.now
    lookback = now - timedelta(seconds=max(600.0, 2 * ctx.settings.heartbeat_timeout_s))
    by_id = {j.id: j for j in jobs}
    already = {a.scanner_job_id for a in open_alarms if a.kind == "scanner_silent"}
    events = s.execute(
        select(ScanJobEvent.subject_id, ScanJobEvent.at, ScanJobEvent.message)
        .where(
            ScanJobEvent.subject_id.in_(list(by_id)),
            ScanJobEvent.kind.in_(["reassign", "scanner_job"]),
            ScanJobEvent.actor == "dispatcher",
            ScanJobEvent.at >= lookback,
            ScanJobEvent.message.like("%went silent%"),
        )
        .order_by(ScanJobEvent.id)
    ).all()
    for subject_id, at, message in events:
        job = by_id.get(subject_id) if subject_id is not None else None
        if job is None or job.id in already:
            continue
        before = s.scalar(
            select(func.count()).where(
                Alarm.kind == "scanner_silent",
                Alarm.scanner_job_id == job.id,
                Alarm.created_at >= at,
            )
        )
        if before:
            continue  # raised for this move already, and resolved since
        named = _NAMED.match(message)
        silent = ctx.named(ast.literal_eval(named.group(1))) if named else None
        if silent is None or ctx.online(silent.id):
            continue
        task = ctx.tasks[job.task_id]
        already.add(job.id)
        yield Stall(
            kind="scanner_silent",
            scan_job_id=job.scan_job_id,
            scanner_job_id=job.id,
            scanner_id=silent.id,
            source_id=task.source_id,
            message=(
                f"Scanner {silent.name!r} stopped heartbeating; its scanner job {job.id} "
                f"(scan job {job.scan_job_id}, source {task.source_name!r}) was re-assigned "
                f"to scanner {ctx.name(job.scanner_id)!r}."
            ),
            actions=["drain", "fail"],
        )


def _latest(s: Session, ids: list[int], *, kinds: Sequence[str]) -> dict[int, datetime]:
    """When each scanner job last had an entry of ``kinds`` in its log."""
    rows = s.execute(
        select(ScanJobEvent.subject_id, func.max(ScanJobEvent.at))
        .where(ScanJobEvent.subject_id.in_(ids), ScanJobEvent.kind.in_(list(kinds)))
        .group_by(ScanJobEvent.subject_id)
    ).all()
    return {int(i): at for i, at in rows if i is not None}


def _pace(s: Session, running: list[ScannerJob]) -> dict[int, tuple[int, int, datetime]]:
    """For each running scanner job of systems (not of an API server): the systems it has
    done since it started, how many it had to do then, and when it did its latest one."""
    jobs = {j.id: j for j in running if j.started_at is not None}
    if not jobs:
        return {}
    rows = s.execute(
        select(SystemResult.scanner_job_id, SystemResult.created_at).where(
            SystemResult.scanner_job_id.in_(list(jobs))
        )
    ).all()
    results: dict[int, list[datetime]] = {}
    for job_id, at in rows:
        if job_id is not None:
            results.setdefault(job_id, []).append(at)
    pace: dict[int, tuple[int, int, datetime]] = {}
    tasks = {
        t.id: t
        for t in s.scalars(select(Task).where(Task.id.in_({j.task_id for j in jobs.values()})))
    }
    for job_id, job in jobs.items():
        if not rules_of(tasks[job.task_id].source_type).systems_are_hosts:
            continue
        assert job.started_at is not None
        times = results.get(job_id, [])
        before = sum(1 for at in times if at < job.started_at)
        now_done = [at for at in times if at >= job.started_at]
        total = len(from_ranges([t["range"] for t in job.targets])) - before
        if now_done:
            pace[job_id] = (len(now_done), total, max(now_done))
    return pace


def _gone(ctx: _Context, alarm: Alarm) -> str:
    """Why an alarm's condition no longer holds, in a few words."""
    s = ctx.s
    scan_status = s.scalar(select(ScanJob.status).where(ScanJob.id == alarm.scan_job_id))
    if scan_status != ScanJobStatus.RUNNING.value:
        return f"scan job {alarm.scan_job_id} is {scan_status or 'gone'}"
    job = s.get(ScannerJob, alarm.scanner_job_id) if alarm.scanner_job_id is not None else None
    if job is None:
        return "its scanner job is gone"
    if alarm.kind == "scanner_silent" and ctx.online(alarm.scanner_id):
        return f"scanner {ctx.name(alarm.scanner_id)!r} is heartbeating again"
    return f"scanner job {job.id} is {job.status} on scanner {ctx.name(job.scanner_id)!r}"
