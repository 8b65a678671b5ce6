"""The scan rules of DESIGN.md section 2 as pure functions: counters, outcomes, queue, rates."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from datetime import datetime

from quipu.domain.errors import InvalidInput
from quipu.domain.states import ScanJobStatus, SystemStatus, TaskKind, TaskStatus


@dataclasses.dataclass(frozen=True, slots=True)
class Counters:
    """The four system counters every task and scan job carries; never negative."""

    systems_count: int = 0
    systems_scanned: int = 0
    systems_failed: int = 0
    systems_unreachable: int = 0

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if value < 0:
                raise InvalidInput(
                    f"{field.name} cannot be negative (got {value}).", field=field.name
                )

    def record(self, status: SystemStatus) -> Counters:
        """Counters after one more system ended with ``status``."""
        name = {
            SystemStatus.SUCCESS: "systems_scanned",
            SystemStatus.FAILED: "systems_failed",
            SystemStatus.UNREACHABLE: "systems_unreachable",
        }[status]
        return dataclasses.replace(self, **{name: getattr(self, name) + 1})

    def __add__(self, other: Counters) -> Counters:
        return Counters(*(a + b for a, b in zip(self.as_tuple(), other.as_tuple(), strict=True)))

    def as_tuple(self) -> tuple[int, int, int, int]:
        return (
            self.systems_count,
            self.systems_scanned,
            self.systems_failed,
            self.systems_unreachable,
        )

    @property
    def systems_done(self) -> int:
        return self.systems_scanned + self.systems_failed + self.systems_unreachable


@dataclasses.dataclass(frozen=True, slots=True)
class TaskView:
    """What the outcome rules need to know of one task."""

    source_name: str
    kind: TaskKind
    status: TaskStatus
    counters: Counters = Counters()
    status_message: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
class Outcome:
    """A final scan job status and the message an operator reads."""

    status: ScanJobStatus
    message: str


def inspection_blocker(connection: TaskView) -> str | None:
    """Why the inspection after ``connection`` cannot run, or None when it can.

    The connection task must have completed and reached at least one system.
    """
    if connection.status == TaskStatus.FAILED:
        # The connection task's message already names the source and the cause: say it once.
        return (
            connection.status_message or f"Connection to source {connection.source_name!r} failed."
        )
    if connection.status == TaskStatus.COMPLETED and connection.counters.systems_scanned == 0:
        return (
            f"No system of source {connection.source_name!r} could be reached and logged into "
            f"({connection.counters.systems_unreachable} unreachable, "
            f"{connection.counters.systems_failed} failed); check hosts, port and credentials."
        )
    return None


def job_outcome(tasks: Sequence[TaskView]) -> Outcome | None:
    """The final outcome of a scan job from its tasks, or None while any task has not ended.

    Any task failed -> failed (the first failure's message); all completed -> completed.
    """
    if not tasks or any(t.status in (TaskStatus.PENDING, TaskStatus.RUNNING) for t in tasks):
        return None
    failures = [t for t in tasks if t.status != TaskStatus.COMPLETED]
    if not failures:
        return Outcome(ScanJobStatus.COMPLETED, "")
    messages = [
        t.status_message or f"The {t.kind} task of source {t.source_name!r} failed."
        for t in failures
    ]
    return Outcome(ScanJobStatus.FAILED, " ".join(dict.fromkeys(messages)))


def job_counters(tasks: Iterable[TaskView]) -> Counters:
    """A scan job's counters: its inspection tasks' where they ran, else its connection tasks'.

    ``systems_count`` is what the connection phase found; unreachable systems come from the
    connection phase, scanned and failed from the inspection phase once it has run.
    """
    tasks = list(tasks)
    connect = sum((t.counters for t in tasks if t.kind == TaskKind.CONNECT), Counters())
    inspect_tasks = [
        t for t in tasks if t.kind == TaskKind.INSPECT and t.status != TaskStatus.PENDING
    ]
    if not inspect_tasks:
        return connect
    inspect = sum((t.counters for t in inspect_tasks), Counters())
    return Counters(
        systems_count=connect.systems_count,
        systems_scanned=inspect.systems_scanned,
        systems_failed=connect.systems_failed + inspect.systems_failed,
        systems_unreachable=connect.systems_unreachable + inspect.systems_unreachable,
    )


@dataclasses.dataclass(frozen=True, slots=True)
class QueuedJob:
    job_id: int
    queued_at: datetime


def jobs_to_start(
    *, pending: Iterable[QueuedJob], running_count: int, max_running: int
) -> list[int]:
    """Which pending scan jobs start now: in start order, up to ``max_running`` at once."""
    if max_running < 1:
        raise InvalidInput(
            f"max_running must be at least 1 (got {max_running}).", field="max_running"
        )
    free = max(0, max_running - running_count)
    ordered = sorted(pending, key=lambda j: (j.queued_at, j.job_id))
    return [j.job_id for j in ordered[:free]]


def max_probes_per_second(
    *,
    scanner_limit: float = 0,
    subnet_limit: float = 0,
    port_list_limit: float = 0,
    scanners_sharing_subnet: int = 1,
) -> float:
    """The effective probe rate of one scanner job: the slowest non-zero limit wins.

    A subnet's limit is shared by the scanners that scan it, not multiplied: each gets its
    share. 0 means unlimited, for any input and for the result.
    """
    for name, value in (
        ("scanner_limit", scanner_limit),
        ("subnet_limit", subnet_limit),
        ("port_list_limit", port_list_limit),
    ):
        if value < 0:
            raise InvalidInput(f"{name} cannot be negative (got {value}).", field=name)
    if scanners_sharing_subnet < 1:
        raise InvalidInput(
            f"scanners_sharing_subnet must be at least 1 (got {scanners_sharing_subnet}).",
            field="scanners_sharing_subnet",
        )
    limits = [scanner_limit, subnet_limit / scanners_sharing_subnet, port_list_limit]
    return min((x for x in limits if x > 0), default=0)


@dataclasses.dataclass(frozen=True, slots=True)
class Progress:
    """How far a scan job is: the phase under way and its own progress, and the whole job's.

    ``total`` is the systems the connection phase found; ``done`` the systems that reached
    their last phase (unreachable or failed at connection, or through inspection), so it
    only grows while the job lives.
    """

    phase: TaskKind | None
    """The phase under way; None before the job's first task starts and once the job ended."""
    phase_done: int
    """Systems the phase under way is done with."""
    phase_total: int
    """Systems the phase under way has to do (what it has found so far, for a server)."""
    done: int
    total: int


_OPEN = frozenset({TaskStatus.PENDING, TaskStatus.RUNNING})


def job_progress(
    tasks: Sequence[TaskView], *, status: ScanJobStatus, may_retry: bool = False
) -> Progress:
    """The progress of a scan job in ``status`` from its tasks.

    ``may_retry``: the job's retry policy has a try left, so a connection that has reached
    nothing yet may be sent back and counted afresh; until it reaches a system or ends, what
    it counted is not done yet (else ``done`` would fall when the retry resets it).
    """
    connect = [t for t in tasks if t.kind == TaskKind.CONNECT]
    inspect = [t for t in tasks if t.kind == TaskKind.INSPECT]
    if connect:
        by_source: dict[str, list[TaskView]] = {}
        for task in inspect:
            by_source.setdefault(task.source_name, []).append(task)
        done = sum(
            _systems_done(c, by_source.get(c.source_name, []), may_retry=may_retry) for c in connect
        )
        total = sum(t.counters.systems_count for t in connect)
    else:
        # A merge or an upload: its systems came whole, in inspection tasks only.
        done = sum(t.counters.systems_done for t in inspect)
        total = sum(t.counters.systems_count for t in inspect)
    phase = _phase(connect, inspect, status=status)
    in_phase = inspect if phase == TaskKind.INSPECT else connect if phase else []
    return Progress(
        phase=phase,
        phase_done=sum(t.counters.systems_done for t in in_phase),
        phase_total=sum(t.counters.systems_count for t in in_phase),
        done=min(done, total),
        total=total,
    )


def _phase(
    connect: Sequence[TaskView], inspect: Sequence[TaskView], *, status: ScanJobStatus
) -> TaskKind | None:
    if status in (ScanJobStatus.COMPLETED, ScanJobStatus.FAILED, ScanJobStatus.CANCELED):
        return None
    if any(t.status != TaskStatus.PENDING for t in inspect):
        return TaskKind.INSPECT
    if any(t.status != TaskStatus.PENDING for t in connect):
        return TaskKind.CONNECT
    return None


def _systems_done(connect: TaskView, inspect: Sequence[TaskView], *, may_retry: bool) -> int:
    """Systems of one source that reached their last phase."""
    c = connect.counters
    ended = connect.status not in _OPEN
    held_back = may_retry and not ended and c.systems_scanned == 0
    at_connection = 0 if held_back else c.systems_failed + c.systems_unreachable
    inspected = sum(t.counters.systems_done for t in inspect if t.status != TaskStatus.PENDING)
    if (
        ended
        and inspect
        and all(t.status in (TaskStatus.COMPLETED, TaskStatus.FAILED) for t in inspect)
    ):
        # The inspection is over: every system the connection reached has had its turn,
        # even one an inspection that failed part way never reported on.
        inspected = max(inspected, c.systems_scanned)
    return at_connection + inspected
