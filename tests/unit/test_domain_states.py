"""The state machines: tables as DESIGN.md draws them, refusals in the operator's words."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quipu.domain.errors import IllegalTransition, InvalidInput
from quipu.domain.states import (
    SCAN_JOB_FINAL,
    SCAN_JOB_TRANSITIONS,
    SCANNER_JOB_FINAL,
    SCANNER_JOB_TRANSITIONS,
    TASK_FINAL,
    TASK_TRANSITIONS,
    ScanJobAction,
    ScanJobStatus,
    ScannerJobAction,
    ScannerJobStatus,
    TaskAction,
    TaskStatus,
    scan_job_status,
    transition_scan_job,
    transition_scanner_job,
    transition_task,
)

S = ScanJobStatus
A = ScanJobAction


def test_scan_job_table_is_the_design_drawing() -> None:
    edges = {
        (source, action, target)
        for action, moves in SCAN_JOB_TRANSITIONS.items()
        for source, target in moves.items()
    }
    assert edges == {
        (S.CREATED, A.QUEUE, S.PENDING),
        (S.CREATED, A.HOLD, S.HELD),
        (S.HELD, A.APPROVE, S.PENDING),
        (S.PENDING, A.START, S.RUNNING),
        (S.RUNNING, A.COMPLETE, S.COMPLETED),
        (S.RUNNING, A.FAIL, S.FAILED),
        (S.RUNNING, A.DEFER, S.PENDING),
        (S.RUNNING, A.RETRY, S.PENDING),
        (S.HELD, A.EXPIRE, S.FAILED),
        (S.PENDING, A.PAUSE, S.PAUSED),
        (S.RUNNING, A.PAUSE, S.PAUSED),
        (S.PAUSED, A.RESTART, S.PENDING),
        *((s, A.CANCEL, S.CANCELED) for s in (S.CREATED, S.PENDING, S.RUNNING, S.PAUSED, S.HELD)),
    }


@pytest.mark.parametrize(
    ("status", "action", "message"),
    [
        (S.CANCELED, A.RESTART, "Scan job 3 is canceled and cannot be restarted."),
        (S.COMPLETED, A.PAUSE, "Scan job 3 is completed and cannot be paused."),
        (S.RUNNING, A.APPROVE, "Scan job 3 is running and cannot be approved."),
        (S.FAILED, A.CANCEL, "Scan job 3 is failed and cannot be canceled."),
        (S.HELD, A.PAUSE, "Scan job 3 is held and cannot be paused."),
    ],
)
def test_refusals_name_job_state_and_action(
    status: ScanJobStatus, action: ScanJobAction, message: str
) -> None:
    with pytest.raises(IllegalTransition) as caught:
        transition_scan_job(job_id=3, status=status, action=action)
    assert str(caught.value) == message
    assert caught.value.state == status.value
    assert caught.value.action == action.value


def test_unknown_status_names_the_allowed_ones() -> None:
    with pytest.raises(InvalidInput) as caught:
        scan_job_status("finished")
    assert caught.value.field == "status"
    assert "'finished'" in str(caught.value)
    assert "created, pending, held, running, paused, completed, failed, canceled" in str(
        caught.value
    )


@pytest.mark.parametrize(
    ("table", "final"),
    [
        (SCAN_JOB_TRANSITIONS, SCAN_JOB_FINAL),
        (TASK_TRANSITIONS, TASK_FINAL),
        (SCANNER_JOB_TRANSITIONS, SCANNER_JOB_FINAL),
    ],
)
def test_final_states_have_no_way_out(table: dict, final: frozenset) -> None:  # type: ignore[type-arg]
    for moves in table.values():
        assert not final & set(moves)


@given(st.lists(st.sampled_from(list(ScanJobAction)), max_size=40))
def test_scan_job_random_actions_keep_invariants(actions: list[ScanJobAction]) -> None:
    status = S.CREATED
    for action in actions:
        before = status
        try:
            status = transition_scan_job(job_id=1, status=status, action=action)
        except IllegalTransition:
            assert status == before  # a refused action leaves the state as it was
            continue
        assert before not in SCAN_JOB_FINAL  # final states never change
        if action == A.CANCEL:
            assert status == S.CANCELED


@given(st.lists(st.sampled_from(list(TaskAction)), max_size=20))
def test_task_random_actions_keep_invariants(actions: list[TaskAction]) -> None:
    status = TaskStatus.PENDING
    for action in actions:
        before = status
        try:
            status = transition_task(task_id=1, status=status, action=action)
        except IllegalTransition:
            assert status == before
            continue
        assert before not in TASK_FINAL


@given(st.lists(st.sampled_from(list(ScannerJobAction)), max_size=30))
def test_scanner_job_random_actions_keep_invariants(actions: list[ScannerJobAction]) -> None:
    status = ScannerJobStatus.PENDING
    for action in actions:
        before = status
        try:
            status = transition_scanner_job(job_id=1, status=status, action=action)
        except IllegalTransition:
            assert status == before
            continue
        assert before not in SCANNER_JOB_FINAL


def test_domain_imports_only_the_standard_library() -> None:
    code = (
        "import sys; before = set(sys.modules); import quipu.domain; "
        "new = {m.split('.')[0] for m in set(sys.modules) - before}; "
        "print(sorted(new - set(sys.stdlib_module_names) - {'quipu'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == "[]"
