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
    job_progress,
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


RUNNING, PENDING, COMPLETED = ScanJobStatus.RUNNING, ScanJobStatus.PENDING, ScanJobStatus.COMPLETED
T = TaskStatus


def seen(
    steps: list[tuple[ScanJobStatus, list[TaskView]]], *, may_retry: bool = False
) -> list[tuple[str | None, int, int, int, int]]:
    """(phase, phase_done, phase_total, done, total) of a job at each step."""
    shown = []
    for status, tasks in steps:
        p = job_progress(tasks, status=status, may_retry=may_retry)
        shown.append(
            (p.phase.value if p.phase else None, p.phase_done, p.phase_total, p.done, p.total)
        )
    return shown


def dones(shown: list[tuple[str | None, int, int, int, int]]) -> list[int]:
    return [row[3] for row in shown]


def test_progress_does_not_fall_when_inspection_begins() -> None:
    # 20 systems, 18 reached and 2 unreachable: once "18 of 20 done", then "2 of 20".
    pending = task(INSPECT, T.PENDING)
    steps = [
        (PENDING, [task(CONNECT, T.PENDING), pending]),
        (RUNNING, [task(CONNECT, T.RUNNING, systems_count=20), pending]),
        (
            RUNNING,
            [
                task(
                    CONNECT, T.RUNNING, systems_count=20, systems_scanned=9, systems_unreachable=1
                ),
                pending,
            ],
        ),
        (
            RUNNING,
            [
                task(
                    CONNECT,
                    T.COMPLETED,
                    systems_count=20,
                    systems_scanned=18,
                    systems_unreachable=2,
                ),
                pending,
            ],
        ),
        (
            RUNNING,
            [
                task(
                    CONNECT,
                    T.COMPLETED,
                    systems_count=20,
                    systems_scanned=18,
                    systems_unreachable=2,
                ),
                task(INSPECT, T.RUNNING, systems_count=18),
            ],
        ),
        (
            RUNNING,
            [
                task(
                    CONNECT,
                    T.COMPLETED,
                    systems_count=20,
                    systems_scanned=18,
                    systems_unreachable=2,
                ),
                task(INSPECT, T.RUNNING, systems_count=18, systems_scanned=10, systems_failed=1),
            ],
        ),
        (
            COMPLETED,
            [
                task(
                    CONNECT,
                    T.COMPLETED,
                    systems_count=20,
                    systems_scanned=18,
                    systems_unreachable=2,
                ),
                task(INSPECT, T.COMPLETED, systems_count=18, systems_scanned=17, systems_failed=1),
            ],
        ),
    ]
    assert seen(steps) == [
        (None, 0, 0, 0, 0),
        ("connect", 0, 20, 0, 20),
        ("connect", 10, 20, 1, 20),
        ("connect", 20, 20, 2, 20),
        ("inspect", 0, 18, 2, 20),
        ("inspect", 11, 18, 13, 20),
        (None, 0, 0, 20, 20),
    ]


def test_progress_of_several_sources_counts_each_once() -> None:
    a = TaskView("a", CONNECT, T.COMPLETED, counters=Counters(4, 3, 0, 1))
    b = TaskView("b", CONNECT, T.COMPLETED, counters=Counters(6, 6, 0, 0))
    a_inspect = TaskView("a", INSPECT, T.COMPLETED, counters=Counters(3, 3, 0, 0))
    b_inspect = TaskView("b", INSPECT, T.RUNNING, counters=Counters(6, 2, 0, 0))
    progress = job_progress([a, b, a_inspect, b_inspect], status=RUNNING)
    assert (progress.phase, progress.phase_done, progress.phase_total) == (INSPECT, 5, 9)
    assert (progress.done, progress.total) == (1 + 3 + 2, 10)


def test_a_retry_sending_a_connection_back_does_not_make_progress_fall() -> None:
    pending = task(INSPECT, T.PENDING)
    tries = [
        # the first try finds both hosts unreachable: kept running while the job may retry
        (RUNNING, [task(CONNECT, T.RUNNING, systems_count=2, systems_unreachable=1), pending]),
        (RUNNING, [task(CONNECT, T.RUNNING, systems_count=2, systems_unreachable=2), pending]),
        # sent back: its results dropped, counted afresh on the next try
        (PENDING, [task(CONNECT, T.PENDING, systems_count=2), pending]),
        (RUNNING, [task(CONNECT, T.RUNNING, systems_count=2), pending]),
    ]
    retried = seen(tries, may_retry=True)
    assert dones(retried) == [0, 0, 0, 0]
    assert [row[4] for row in retried] == [2, 2, 2, 2]
    # the last try: nothing left to retry, so what it counts is done
    last = [
        (RUNNING, [task(CONNECT, T.RUNNING, systems_count=2, systems_unreachable=2), pending]),
        (
            ScanJobStatus.FAILED,
            [
                task(CONNECT, T.COMPLETED, systems_count=2, systems_unreachable=2),
                task(INSPECT, T.FAILED),
            ],
        ),
    ]
    assert dones(seen(last)) == [2, 2]
    # a host that answers on a retry: the other's unreachable counts from then on
    answered = [
        (RUNNING, [task(CONNECT, T.RUNNING, systems_count=2, systems_unreachable=1), pending]),
        (
            RUNNING,
            [
                task(CONNECT, T.RUNNING, systems_count=2, systems_scanned=1, systems_unreachable=1),
                pending,
            ],
        ),
    ]
    assert dones(seen(answered, may_retry=True)) == [0, 1]


def test_pause_and_restart_keep_the_progress_made() -> None:
    connected = task(CONNECT, T.COMPLETED, systems_count=4, systems_scanned=4)
    inspecting = task(INSPECT, T.RUNNING, systems_count=4, systems_scanned=2)
    steps = [
        (RUNNING, [connected, inspecting]),
        (ScanJobStatus.PAUSED, [connected, inspecting]),
        (PENDING, [connected, inspecting]),
        (RUNNING, [connected, inspecting]),
        (RUNNING, [connected, task(INSPECT, T.RUNNING, systems_count=4, systems_scanned=3)]),
    ]
    assert seen(steps) == [
        ("inspect", 2, 4, 2, 4),
        ("inspect", 2, 4, 2, 4),
        ("inspect", 2, 4, 2, 4),
        ("inspect", 2, 4, 2, 4),
        ("inspect", 3, 4, 3, 4),
    ]


def test_a_canceled_job_counts_only_what_was_done() -> None:
    tasks = [
        task(CONNECT, T.COMPLETED, systems_count=4, systems_scanned=3, systems_unreachable=1),
        task(INSPECT, T.CANCELED, systems_count=3, systems_scanned=1),
    ]
    progress = job_progress(tasks, status=ScanJobStatus.CANCELED)
    assert (progress.phase, progress.done, progress.total) == (None, 2, 4)


def test_an_upload_is_done_whole() -> None:
    progress = job_progress(
        [task(INSPECT, T.COMPLETED, systems_count=7, systems_scanned=7)], status=COMPLETED
    )
    assert (progress.done, progress.total) == (7, 7)


@given(
    st.integers(1, 30).flatmap(
        lambda n: st.tuples(
            st.just(n),
            st.lists(st.sampled_from(list(SystemStatus)), min_size=n, max_size=n),
            st.lists(
                st.sampled_from([SystemStatus.SUCCESS, SystemStatus.FAILED]), min_size=n, max_size=n
            ),
            st.booleans(),
        )
    )
)
def test_done_only_grows_over_a_whole_job(
    case: tuple[int, list[SystemStatus], list[SystemStatus], bool],
) -> None:
    """A job's life step by step: every system connected, then every reached one inspected,
    paused at some point; ``done`` never falls and ends at ``total``."""
    n, reached, inspected, pause = case
    steps: list[tuple[ScanJobStatus, list[TaskView]]] = []
    pending = task(INSPECT, T.PENDING)
    c = Counters(systems_count=n)
    steps.append((RUNNING, [TaskView("lab", CONNECT, T.RUNNING, counters=c), pending]))
    for status in reached:
        c = c.record(status)
        steps.append((RUNNING, [TaskView("lab", CONNECT, T.RUNNING, counters=c), pending]))
    connect = TaskView("lab", CONNECT, T.COMPLETED, counters=c)
    steps.append((RUNNING, [connect, pending]))
    i = Counters(systems_count=c.systems_scanned)
    steps.append((RUNNING, [connect, TaskView("lab", INSPECT, T.RUNNING, counters=i)]))
    for status in inspected[: c.systems_scanned]:
        i = i.record(status)
        view = TaskView("lab", INSPECT, T.RUNNING, counters=i)
        if pause:
            steps.append((ScanJobStatus.PAUSED, [connect, view]))
        steps.append((RUNNING, [connect, view]))
    steps.append((COMPLETED, [connect, TaskView("lab", INSPECT, T.COMPLETED, counters=i)]))
    done = dones(seen(steps))
    assert done == sorted(done)
    assert done[-1] == n
