"""The scan rules: job outcome from tasks, counters, serial queue, slowest-wins rate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quipu.domain.errors import InvalidInput
from quipu.domain.rules import (
    Counters,
    QueuedJob,
    TaskView,
    inspection_blocker,
    job_counters,
    job_outcome,
    jobs_to_start,
    max_probes_per_second,
)
from quipu.domain.states import ScanJobStatus, SystemStatus, TaskKind, TaskStatus

CONNECT, INSPECT = TaskKind.CONNECT, TaskKind.INSPECT


def task(kind: TaskKind, status: TaskStatus, **counts: int) -> TaskView:
    return TaskView(source_name="lab", kind=kind, status=status, counters=Counters(**counts))


def test_all_completed_is_completed() -> None:
    outcome = job_outcome(
        [
            task(CONNECT, TaskStatus.COMPLETED, systems_scanned=2),
            task(INSPECT, TaskStatus.COMPLETED),
        ]
    )
    assert outcome is not None and outcome.status == ScanJobStatus.COMPLETED


def test_any_failed_is_failed_with_its_message() -> None:
    failed = TaskView("vc", INSPECT, TaskStatus.FAILED, status_message="vCenter refused the login.")
    outcome = job_outcome([task(CONNECT, TaskStatus.COMPLETED), failed])
    assert outcome is not None
    assert outcome.status == ScanJobStatus.FAILED
    assert outcome.message == "vCenter refused the login."


def test_unfinished_tasks_give_no_outcome() -> None:
    assert (
        job_outcome([task(CONNECT, TaskStatus.COMPLETED), task(INSPECT, TaskStatus.RUNNING)])
        is None
    )
    assert job_outcome([]) is None


def test_connection_failed_blocks_inspection_saying_the_cause_once() -> None:
    message = "Connection to source 'vc' failed: timed out"
    failed = TaskView("vc", CONNECT, TaskStatus.FAILED, status_message=message)
    assert inspection_blocker(failed) == message
    unexplained = TaskView("vc", CONNECT, TaskStatus.FAILED)
    assert inspection_blocker(unexplained) == "Connection to source 'vc' failed."
    blocked = TaskView("vc", INSPECT, TaskStatus.FAILED, status_message=message)
    outcome = job_outcome([failed, blocked])
    assert outcome is not None and outcome.message == message


def test_zero_reachable_blocks_inspection_and_says_so() -> None:
    blocker = inspection_blocker(
        task(
            CONNECT, TaskStatus.COMPLETED, systems_count=4, systems_unreachable=3, systems_failed=1
        )
    )
    assert blocker is not None
    assert "No system of source 'lab' could be reached" in blocker
    assert "3 unreachable, 1 failed" in blocker


def test_some_reachable_does_not_block() -> None:
    view = task(
        CONNECT, TaskStatus.COMPLETED, systems_count=4, systems_scanned=1, systems_unreachable=3
    )
    assert inspection_blocker(view) is None


def test_counters_refuse_negatives_and_name_the_field() -> None:
    with pytest.raises(InvalidInput) as caught:
        Counters(systems_failed=-1)
    assert caught.value.field == "systems_failed"


@given(st.lists(st.sampled_from(list(SystemStatus)), max_size=50))
def test_counters_record_adds_up(statuses: list[SystemStatus]) -> None:
    counters = Counters(systems_count=len(statuses))
    for status in statuses:
        counters = counters.record(status)
    assert counters.systems_done == len(statuses)
    assert min(counters.as_tuple()) >= 0


def test_job_counters_take_reach_from_connection_and_results_from_inspection() -> None:
    tasks = [
        task(
            CONNECT, TaskStatus.COMPLETED, systems_count=5, systems_scanned=3, systems_unreachable=2
        ),
        task(INSPECT, TaskStatus.COMPLETED, systems_count=3, systems_scanned=2, systems_failed=1),
    ]
    assert job_counters(tasks) == Counters(5, 2, 1, 2)
    assert job_counters(tasks[:1]) == Counters(5, 3, 0, 2)


def test_queue_is_serial_in_start_order() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    pending = [QueuedJob(3, t0 + timedelta(seconds=2)), QueuedJob(1, t0), QueuedJob(2, t0)]
    assert jobs_to_start(pending=pending, running_count=0, max_running=1) == [1]
    assert jobs_to_start(pending=pending, running_count=1, max_running=1) == []
    assert jobs_to_start(pending=pending, running_count=1, max_running=3) == [1, 2]
    with pytest.raises(InvalidInput):
        jobs_to_start(pending=pending, running_count=0, max_running=0)


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, 0),
        ({"scanner_limit": 1000}, 1000),
        ({"scanner_limit": 1000, "subnet_limit": 500, "port_list_limit": 800}, 500),
        ({"scanner_limit": 0, "subnet_limit": 0, "port_list_limit": 300}, 300),
        ({"scanner_limit": 1000, "subnet_limit": 900, "scanners_sharing_subnet": 3}, 300),
    ],
)
def test_slowest_wins(kwargs: dict[str, float], expected: float) -> None:
    assert max_probes_per_second(**kwargs) == expected  # type: ignore[arg-type]


LIMITS = st.one_of(st.just(0.0), st.floats(0.01, 1e6))


@given(LIMITS, LIMITS, LIMITS, st.integers(1, 64))
def test_rate_never_exceeds_any_limit(s: float, n: float, p: float, k: int) -> None:
    rate = max_probes_per_second(
        scanner_limit=s, subnet_limit=n, port_list_limit=p, scanners_sharing_subnet=k
    )
    for limit in (s, n / k, p):
        if limit > 0:
            assert rate <= limit
    # a subnet shared by k scanners never gets more than its limit in total
    if n > 0:
        assert rate * k <= n * (1 + 1e-9)


def test_negative_limits_are_refused() -> None:
    with pytest.raises(InvalidInput) as caught:
        max_probes_per_second(subnet_limit=-1)
    assert caught.value.field == "subnet_limit"
