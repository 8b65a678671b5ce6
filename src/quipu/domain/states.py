"""The three state machines (scan job, task, scanner job): statuses, actions, transition tables."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import TypeVar

from quipu.domain.errors import IllegalTransition, InvalidInput

S = TypeVar("S", bound=enum.StrEnum)
A = TypeVar("A", bound=enum.StrEnum)


class ScanJobStatus(enum.StrEnum):
    CREATED = "created"
    """Made by a start; queued or held right away."""
    PENDING = "pending"
    """Queued, or waiting for a criterion: its turn, its time window, a retry delay."""
    HELD = "held"
    """Waiting for an administrator's approval (a source in mediated mode)."""
    RUNNING = "running"
    """Tasks executing."""
    PAUSED = "paused"
    """Stopped by the user; a restart makes it pending and it resumes where it was."""
    COMPLETED = "completed"
    """Final: every task completed."""
    FAILED = "failed"
    """Final: a task failed or a fatal error stopped the job; ``status_message`` says why."""
    CANCELED = "canceled"
    """Final: canceled by the user; cannot be restarted."""


class ScanJobAction(enum.StrEnum):
    QUEUE = "queue"
    HOLD = "hold"
    APPROVE = "approve"
    START = "start"
    COMPLETE = "complete"
    FAIL = "fail"
    DEFER = "defer"
    """Back to pending: its time window closed."""
    RETRY = "retry"
    """Back to pending: every target was offline; tried again after a delay."""
    EXPIRE = "expire"
    """A held job nobody approved in time fails."""
    PAUSE = "pause"
    RESTART = "restart"
    CANCEL = "cancel"


class TaskStatus(enum.StrEnum):
    PENDING = "pending"
    """Created with its scan job; waits for its phase."""
    RUNNING = "running"
    """Its scanner jobs exist and are being worked on."""
    COMPLETED = "completed"
    """Final: all its scanner jobs ended and the task's rule says it succeeded."""
    FAILED = "failed"
    """Final: the source could not be used; ``status_message`` says why."""
    CANCELED = "canceled"
    """Final: its scan job was canceled."""


class TaskAction(enum.StrEnum):
    START = "start"
    RETRY = "retry"
    """A connection task that found every target offline waits to be run again."""
    COMPLETE = "complete"
    FAIL = "fail"
    CANCEL = "cancel"


class ScannerJobStatus(enum.StrEnum):
    PENDING = "pending"
    """Waiting for its scanner to claim it (withheld while its scan job is not running)."""
    CLAIMED = "claimed"
    """Handed to a scanner, not yet started."""
    RUNNING = "running"
    """Its scanner is working on it."""
    COMPLETED = "completed"
    """Final: the scanner finished it."""
    FAILED = "failed"
    """Final: the scanner reported an error."""
    CANCELED = "canceled"
    """Final: its scan job was canceled."""


class ScannerJobAction(enum.StrEnum):
    CLAIM = "claim"
    START = "start"
    COMPLETE = "complete"
    FAIL = "fail"
    RELEASE = "release"
    """Back to pending: its scanner went silent, or its scan job was paused."""
    CANCEL = "cancel"
    REDISPATCH = "redispatch"
    """An operator's repair: back to pending, for another scanner to claim."""


class TaskKind(enum.StrEnum):
    CONNECT = "connect"
    INSPECT = "inspect"


class SourceType(enum.StrEnum):
    NETWORK = "network"
    """Hosts reached over SSH."""
    VCENTER = "vcenter"
    """A VMware vCenter server."""
    SATELLITE = "satellite"
    """A Red Hat Satellite server."""
    OPENSHIFT = "openshift"
    """An OpenShift cluster, through its Kubernetes API."""
    ANSIBLE = "ansible"
    """An Ansible Automation Platform controller."""
    RHACS = "rhacs"
    """A Red Hat Advanced Cluster Security (RHACS) Central."""


class ScanJobType(enum.StrEnum):
    """What a scan job does, in the established server's words."""

    INSPECT = "inspect"
    """Runs a scan: connects to and inspects its sources' systems."""
    FINGERPRINT = "fingerprint"
    """Builds a report from facts gathered earlier: a merge of reports, or an upload."""


class ReportOrigin(enum.StrEnum):
    """Where a report's facts came from."""

    LOCAL = "local"
    """A scan job of this server."""
    UPLOADED = "uploaded"
    """A details report produced elsewhere and uploaded."""
    MERGED = "merged"
    """The merge of other reports."""


class SystemStatus(enum.StrEnum):
    """Outcome for one system in one task."""

    SUCCESS = "success"
    FAILED = "failed"
    UNREACHABLE = "unreachable"


_SJ = ScanJobStatus
SCAN_JOB_TRANSITIONS: Mapping[ScanJobAction, Mapping[ScanJobStatus, ScanJobStatus]] = {
    ScanJobAction.QUEUE: {_SJ.CREATED: _SJ.PENDING},
    ScanJobAction.HOLD: {_SJ.CREATED: _SJ.HELD},
    ScanJobAction.APPROVE: {_SJ.HELD: _SJ.PENDING},
    ScanJobAction.START: {_SJ.PENDING: _SJ.RUNNING},
    ScanJobAction.COMPLETE: {_SJ.RUNNING: _SJ.COMPLETED},
    ScanJobAction.FAIL: {_SJ.RUNNING: _SJ.FAILED},
    ScanJobAction.DEFER: {_SJ.RUNNING: _SJ.PENDING},
    ScanJobAction.RETRY: {_SJ.RUNNING: _SJ.PENDING},
    ScanJobAction.EXPIRE: {_SJ.HELD: _SJ.FAILED},
    ScanJobAction.PAUSE: {_SJ.PENDING: _SJ.PAUSED, _SJ.RUNNING: _SJ.PAUSED},
    ScanJobAction.RESTART: {_SJ.PAUSED: _SJ.PENDING},
    ScanJobAction.CANCEL: dict.fromkeys(
        (_SJ.CREATED, _SJ.PENDING, _SJ.RUNNING, _SJ.PAUSED, _SJ.HELD), _SJ.CANCELED
    ),
}

_T = TaskStatus
TASK_TRANSITIONS: Mapping[TaskAction, Mapping[TaskStatus, TaskStatus]] = {
    TaskAction.START: {_T.PENDING: _T.RUNNING},
    TaskAction.RETRY: {_T.RUNNING: _T.PENDING},
    TaskAction.COMPLETE: {_T.RUNNING: _T.COMPLETED},
    TaskAction.FAIL: {_T.PENDING: _T.FAILED, _T.RUNNING: _T.FAILED},
    TaskAction.CANCEL: {_T.PENDING: _T.CANCELED, _T.RUNNING: _T.CANCELED},
}

_SC = ScannerJobStatus
SCANNER_JOB_TRANSITIONS: Mapping[ScannerJobAction, Mapping[ScannerJobStatus, ScannerJobStatus]] = {
    ScannerJobAction.CLAIM: {_SC.PENDING: _SC.CLAIMED},
    ScannerJobAction.START: {_SC.CLAIMED: _SC.RUNNING},
    ScannerJobAction.COMPLETE: {_SC.CLAIMED: _SC.COMPLETED, _SC.RUNNING: _SC.COMPLETED},
    ScannerJobAction.FAIL: {_SC.CLAIMED: _SC.FAILED, _SC.RUNNING: _SC.FAILED},
    ScannerJobAction.RELEASE: {_SC.CLAIMED: _SC.PENDING, _SC.RUNNING: _SC.PENDING},
    ScannerJobAction.CANCEL: dict.fromkeys((_SC.PENDING, _SC.CLAIMED, _SC.RUNNING), _SC.CANCELED),
    ScannerJobAction.REDISPATCH: dict.fromkeys(
        (_SC.PENDING, _SC.CLAIMED, _SC.RUNNING), _SC.PENDING
    ),
}

SCAN_JOB_FINAL = frozenset({_SJ.COMPLETED, _SJ.FAILED, _SJ.CANCELED})
TASK_FINAL = frozenset({_T.COMPLETED, _T.FAILED, _T.CANCELED})
SCANNER_JOB_FINAL = frozenset({_SC.COMPLETED, _SC.FAILED, _SC.CANCELED})
SCANNER_JOB_HELD = (_SC.CLAIMED, _SC.RUNNING)
"""A scanner job a scanner holds: claimed, or running."""

# The word an operator reads in "... cannot be <word>."
_PAST = {
    "queue": "queued",
    "hold": "held",
    "approve": "approved",
    "start": "started",
    "complete": "completed",
    "fail": "failed",
    "defer": "deferred",
    "retry": "retried",
    "expire": "expired",
    "pause": "paused",
    "restart": "restarted",
    "cancel": "canceled",
    "claim": "claimed",
    "release": "released",
    "redispatch": "redispatched",
}


def scan_job_status(value: str) -> ScanJobStatus:
    """Parse a scan job status, naming the allowed ones when ``value`` is not one."""
    try:
        return ScanJobStatus(value)
    except ValueError:
        allowed = ", ".join(s.value for s in ScanJobStatus)
        raise InvalidInput(
            f"Unknown scan job status {value!r}; allowed: {allowed}.", field="status"
        ) from None


def transition_scan_job(
    *, job_id: int, status: ScanJobStatus, action: ScanJobAction
) -> ScanJobStatus:
    """The status after ``action``, or IllegalTransition in the operator's words."""
    return _transition(
        SCAN_JOB_TRANSITIONS, noun="Scan job", object_id=job_id, status=status, action=action
    )


def transition_task(*, task_id: int, status: TaskStatus, action: TaskAction) -> TaskStatus:
    return _transition(
        TASK_TRANSITIONS, noun="Task", object_id=task_id, status=status, action=action
    )


def transition_scanner_job(
    *, job_id: int, status: ScannerJobStatus, action: ScannerJobAction
) -> ScannerJobStatus:
    return _transition(
        SCANNER_JOB_TRANSITIONS, noun="Scanner job", object_id=job_id, status=status, action=action
    )


def sources_of(table: Mapping[A, Mapping[S, S]], action: A) -> tuple[S, ...]:
    """The statuses from which ``action`` is allowed (what the store's guarded UPDATE checks)."""
    return tuple(table[action])


def refusal_message(*, noun: str, object_id: int, status: str, action: str) -> str:
    return f"{noun} {object_id} is {status} and cannot be {_PAST.get(action, action)}."


def _transition(
    table: Mapping[A, Mapping[S, S]], *, noun: str, object_id: int, status: S, action: A
) -> S:
    target = table[action].get(status)
    if target is None:
        raise IllegalTransition(
            refusal_message(noun=noun, object_id=object_id, status=status, action=action),
            state=status.value,
            action=action.value,
        )
    return target
