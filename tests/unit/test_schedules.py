"""Scan schedules: which cron expressions and time zones are allowed, and when they fire."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from quipu.domain.errors import InvalidInput
from quipu.domain.schedules import (
    Schedule,
    check_cron,
    check_timezone,
    next_firing,
    next_firings,
    parse_schedule,
)


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def test_schedule_defaults_to_utc_and_normalizes_spaces() -> None:
    assert parse_schedule({"cron": " 0  2 * * 1-5 "}) == Schedule(
        cron="0 2 * * 1-5", timezone="UTC"
    )
    assert parse_schedule({"cron": "0 2 * * *", "timezone": "Europe/Paris"}) == Schedule(
        cron="0 2 * * *", timezone="Europe/Paris"
    )
    assert parse_schedule(None) is None


@pytest.mark.parametrize(
    ("value", "field", "words"),
    [
        ({"cron": "* * * *"}, "schedule", "5 fields"),
        ({"cron": "0 0 * * * *"}, "schedule", "has 6"),
        ({"cron": "@daily"}, "schedule", "5 fields"),
        ({"cron": "61 * * * *"}, "schedule", "not a valid cron expression"),
        ({"cron": "0 0 30 2 *"}, "schedule", "not a valid cron expression"),
        ({"cron": ""}, "schedule", "is required"),
        ({}, "schedule", "is required"),
        ({"cron": 5}, "schedule", "is required"),
        ({"cron": "* * * * *", "timezone": "Mars/Olympus"}, "schedule.timezone", "IANA"),
        ({"cron": "* * * * *", "timezone": "/etc/passwd"}, "schedule.timezone", "IANA"),
        ({"cron": "* * * * *", "timezone": ""}, "schedule.timezone", "IANA"),
        ({"cron": "* * * * *", "every": 5}, "schedule.every", "allowed: cron, timezone"),
        ("0 2 * * *", "schedule", "an object with cron and timezone"),
    ],
)
def test_bad_schedules_name_the_field_and_what_is_allowed(
    value: Any, field: str, words: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_schedule(value, field="schedule")
    assert caught.value.field == field
    assert words in caught.value.message


def test_checks_stand_alone() -> None:
    assert check_cron("*/15 * * * *") == "*/15 * * * *"
    assert check_timezone("America/New_York") == "America/New_York"
    with pytest.raises(InvalidInput, match=r"schedule.timezone 'utc\+2' is not a time zone"):
        check_timezone("utc+2")


def test_next_firing_is_strictly_after_and_in_utc() -> None:
    weekdays = Schedule(cron="0 2 * * 1-5", timezone="UTC")
    # 2026-01-02 is a Friday: the next weekday 02:00 after Friday 02:00 is Monday.
    assert next_firing(weekdays, after=utc(2026, 1, 2, 1, 59)) == utc(2026, 1, 2, 2, 0)
    assert next_firing(weekdays, after=utc(2026, 1, 2, 2, 0)) == utc(2026, 1, 5, 2, 0)
    assert next_firing(weekdays, after=utc(2026, 1, 2, 2, 0)).tzinfo is UTC  # type: ignore[union-attr]


def test_next_firings_read_the_fields_in_the_zone() -> None:
    paris = Schedule(cron="0 2 * * *", timezone="Europe/Paris")
    assert next_firings(paris, after=utc(2026, 1, 10, 12), count=3) == [
        utc(2026, 1, 11, 1),
        utc(2026, 1, 12, 1),
        utc(2026, 1, 13, 1),
    ]
    # Summer time: 02:00 in Paris is 00:00 UTC.
    assert next_firing(paris, after=utc(2026, 7, 1)) == utc(2026, 7, 2, 0)


def test_a_firing_in_the_skipped_hour_runs_once_at_the_next_valid_time() -> None:
    # 2026-03-29 02:00-03:00 does not exist in Paris: the 02:30 firing runs at 03:00 CEST.
    paris = Schedule(cron="30 2 * * *", timezone="Europe/Paris")
    assert next_firings(paris, after=utc(2026, 3, 27, 12), count=3) == [
        utc(2026, 3, 28, 1, 30),
        utc(2026, 3, 29, 1, 0),
        utc(2026, 3, 30, 0, 30),
    ]


def test_a_daily_firing_in_the_repeated_hour_runs_once() -> None:
    # 2026-10-25 02:00-03:00 happens twice in Paris.
    paris = Schedule(cron="30 2 * * *", timezone="Europe/Paris")
    assert next_firings(paris, after=utc(2026, 10, 24, 12), count=2) == [
        utc(2026, 10, 25, 0, 30),
        utc(2026, 10, 26, 1, 30),
    ]


def test_a_frequent_schedule_fires_in_both_copies_of_the_repeated_hour() -> None:
    paris = Schedule(cron="*/30 * * * *", timezone="Europe/Paris")
    firings = next_firings(paris, after=utc(2026, 10, 24, 23, 50), count=5)
    assert firings == [
        utc(2026, 10, 25, 0, 0),
        utc(2026, 10, 25, 0, 30),
        utc(2026, 10, 25, 1, 0),
        utc(2026, 10, 25, 1, 30),
        utc(2026, 10, 25, 2, 0),
    ]


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        next_firing(Schedule(cron="* * * * *", timezone="UTC"), after=datetime(2026, 1, 1))
