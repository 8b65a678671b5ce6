"""The stall watch's pure rules: durations as read, the pace prediction, overrun, and the
cause an unclaimed-work alarm gives."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from quipu.dispatch.stalls import (
    OVERRUN_MIN_S,
    ScannerState,
    is_overrun,
    predicted_s,
    span,
    unclaimed_cause,
)

T0 = datetime(2027, 1, 7, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0 s"),
        (44.6, "45 s"),
        (60, "1 min"),
        (301, "5 min 1 s"),
        (3600, "1 h"),
        (3700, "1 h 1 min"),
        (-5, "0 s"),
    ],
)
def test_span_reads_as_an_operator_says_it(seconds: float, text: str) -> None:
    assert span(seconds) == text


def test_the_prediction_follows_the_pace_of_the_results() -> None:
    at = T0 + timedelta(seconds=10)
    assert predicted_s(started_at=T0, last_result_at=at, done=1, total=4) == 40
    # a result in the first instant counts as a second's work, not as none
    assert predicted_s(started_at=T0, last_result_at=T0, done=1, total=2) == 2


@pytest.mark.parametrize(("done", "total"), [(0, 4), (4, 4), (5, 4), (1, 0)])
def test_no_prediction_without_progress_to_judge_by(done: int, total: int) -> None:
    at = T0 + timedelta(seconds=10)
    assert predicted_s(started_at=T0, last_result_at=at, done=done, total=total) is None


def test_overrun_needs_the_factor_and_a_floor() -> None:
    assert is_overrun(elapsed_s=200, predicted=40, factor=3)
    assert not is_overrun(elapsed_s=120, predicted=40, factor=3)  # exactly 3 times: not yet
    assert not is_overrun(elapsed_s=OVERRUN_MIN_S - 1, predicted=2, factor=3)
    assert is_overrun(elapsed_s=OVERRUN_MIN_S, predicted=2, factor=3)
    assert not is_overrun(elapsed_s=10_000, predicted=None, factor=3)


def state(
    name: str, *, enabled: bool = True, draining: bool = False, online: bool = True
) -> ScannerState:
    return ScannerState(name=name, enabled=enabled, draining=draining, online=online)


def test_the_unclaimed_cause_names_what_keeps_the_work_waiting() -> None:
    assert unclaimed_cause(assigned="a", scanners=[]) == ("the source has no scanner", False)
    assert unclaimed_cause(
        assigned="a", scanners=[state("a", enabled=False), state("b", enabled=False)]
    ) == ("every scanner of the source is disabled ('a', 'b')", False)
    assert unclaimed_cause(
        assigned="a", scanners=[state("a", online=False), state("b", enabled=False)]
    ) == ("no scanner of the source is online ('a', 'b')", False)
    assert unclaimed_cause(
        assigned="a", scanners=[state("a", draining=True), state("b", online=False)]
    ) == ("every online scanner of the source is draining ('a', 'b')", False)


def test_the_unclaimed_cause_says_when_another_scanner_could_take_it() -> None:
    assert unclaimed_cause(assigned="a", scanners=[state("a", online=False), state("b")]) == (
        "its scanner 'a' is offline",
        True,
    )
    assert unclaimed_cause(assigned="a", scanners=[state("a", draining=True), state("b")]) == (
        "its scanner 'a' is draining",
        True,
    )
    assert unclaimed_cause(assigned="a", scanners=[state("a")], held=3) == (
        "its scanner 'a' is online but has not claimed it (it holds 3 scanner jobs)",
        False,
    )
