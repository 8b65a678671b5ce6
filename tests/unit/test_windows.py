"""Time windows: what is allowed, and when a job may run (across midnight and DST changes)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quipu.domain.errors import InvalidInput
from quipu.domain.windows import (
    DAYS,
    check_opens,
    describe,
    is_open,
    local_text,
    next_closing,
    next_opening,
    parse_windows,
)

PARIS = ZoneInfo("Europe/Paris")
OFFICE = {
    "days": ["mon", "tue", "wed", "thu", "fri"],
    "start": "08:00",
    "end": "18:00",
    "timezone": "Europe/Paris",
}


def paris(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=PARIS)  # type: ignore[misc]


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def one(text: str) -> dict[str, Any]:
    return parse_windows([text], field="windows")[0]


def test_text_and_objects_normalize_to_the_same_window() -> None:
    assert one("mon-fri 08:00-18:00 Europe/Paris") == OFFICE
    assert parse_windows(
        [
            {
                "days": ["fri", "Mon", "tue", "wed", "thu"],
                "start": "08:00",
                "end": "18:00",
                "timezone": "Europe/Paris",
            }
        ],
        field="windows",
    ) == [OFFICE]


@pytest.mark.parametrize(
    ("text", "days"),
    [
        ("mon,wed,fri 01:00-02:00", ["mon", "wed", "fri"]),
        ("sat-sun 01:00-02:00", ["sat", "sun"]),
        ("fri-mon 01:00-02:00", ["mon", "fri", "sat", "sun"]),
        ("* 01:00-02:00", list(DAYS)),
        ("daily 01:00-02:00", list(DAYS)),
    ],
)
def test_days_are_lists_ranges_or_every_day(text: str, days: list[str]) -> None:
    window = one(text)
    assert window["days"] == days
    assert window["timezone"] == "UTC"


def test_no_windows_means_always_open() -> None:
    assert parse_windows(None, field="windows") == []
    assert parse_windows([], field="windows") == []
    assert is_open([[], []], utc(2026, 12, 3, 3))
    assert next_opening([[]], utc(2026, 12, 3, 3)) == utc(2026, 12, 3, 3)
    assert next_closing([[]], utc(2026, 12, 3, 3)) is None


def test_a_whole_day_reaches_24_00() -> None:
    window = one("sat 00:00-24:00")
    assert is_open([[window]], utc(2026, 12, 5, 23, 59))
    assert not is_open([[window]], utc(2026, 12, 6, 0, 0))


@pytest.mark.parametrize(
    ("value", "field", "says"),
    [
        ("mon 08:00-18:00", "windows", "must be a list"),
        (["mon 08:00-18:00", "someday"], "windows[1]", "is not a window"),
        (["mon 08:00-18:00", "xyz 08:00-18:00"], "windows[1].days", "mon, tue"),
        (["mon 8-18"], "windows[0].start", "HH:MM"),
        (["mon 08:00-25:00"], "windows[0].end", "HH:MM"),
        (["mon 08:00-08:00"], "windows[0]", "needs a length"),
        (["mon 08:00-18:00 Mars/Olympus"], "windows[0].timezone", "IANA"),
        ([{"days": [], "start": "08:00", "end": "09:00"}], "windows[0].days", "non-empty"),
        ([{"start": "08:00", "end": "09:00", "zone": "UTC"}], "windows[0]", "allowed"),
        ([3], "windows[0]", "days, start, end and timezone"),
    ],
)
def test_refusals_name_the_window_and_say_what_is_allowed(
    value: Any, field: str, says: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_windows(value, field="windows")
    assert refused.value.field == field
    assert says in str(refused.value)


def test_office_hours_open_and_close_in_their_time_zone() -> None:
    groups = [[OFFICE]]
    assert is_open(groups, paris(2026, 12, 3, 8, 0))
    assert not is_open(groups, paris(2026, 12, 3, 18, 0))
    assert next_opening(groups, paris(2026, 12, 3, 19)) == paris(2026, 12, 4, 8)
    assert next_opening(groups, paris(2026, 12, 5, 12)) == paris(2026, 12, 7, 8)
    assert next_closing(groups, paris(2026, 12, 3, 9)) == paris(2026, 12, 3, 18)
    assert next_closing(groups, paris(2026, 12, 3, 19)) is None


def test_a_window_past_midnight_belongs_to_the_day_it_starts() -> None:
    groups = [[one("fri 22:00-06:00")]]
    assert is_open(groups, utc(2026, 12, 5, 3))  # saturday night, from friday
    assert not is_open(groups, utc(2026, 12, 4, 3))  # friday morning: thursday has none
    assert next_closing(groups, utc(2026, 12, 4, 23)) == utc(2026, 12, 5, 6)


def test_every_group_must_be_open() -> None:
    groups = [[OFFICE], [one("* 12:00-14:00 UTC")]]
    assert not is_open(groups, paris(2026, 12, 3, 9))
    assert next_opening(groups, paris(2026, 12, 3, 9)) == utc(2026, 12, 3, 12)
    assert next_closing(groups, utc(2026, 12, 3, 12, 30)) == utc(2026, 12, 3, 14)


def test_groups_that_never_meet_never_open_and_are_refused() -> None:
    named = [('scan "s"', [one("mon 08:00-10:00")]), ('source "lab"', [one("tue 08:00-10:00")])]
    assert next_opening([g for _, g in named], utc(2026, 12, 3)) is None
    with pytest.raises(InvalidInput) as refused:
        check_opens(named, at=utc(2026, 12, 3))
    assert refused.value.field == "windows"
    assert 'scan "s" / source "lab" never open together' in str(refused.value)
    check_opens([('scan "s"', [one("mon 08:00-10:00")]), ('source "x"', [])], at=utc(2026, 12, 3))


def test_daylight_saving_keeps_local_hours() -> None:
    groups = [[one("* 08:00-09:00 Europe/Paris")]]
    # Paris moves from UTC+1 to UTC+2 on 2026-03-29, and back on 2026-10-25.
    assert next_opening(groups, utc(2026, 3, 28, 9)) == utc(2026, 3, 29, 6)
    assert next_opening(groups, utc(2026, 3, 27, 9)) == utc(2026, 3, 28, 7)
    assert next_opening(groups, utc(2026, 10, 24, 9)) == utc(2026, 10, 25, 7)
    night = [[one("sat 22:00-06:00 Europe/Paris")]]
    # The night the clocks go back lasts nine hours.
    assert next_closing(night, utc(2026, 10, 24, 21)) == utc(2026, 10, 25, 5)


def test_describe_reads_back_as_the_same_window() -> None:
    assert describe(OFFICE) == "mon-fri 08:00-18:00 Europe/Paris"
    for text in ("mon,wed 01:00-02:00 UTC", "* 22:00-06:00 Asia/Tokyo", "sat,sun 00:00-24:00"):
        window = one(text)
        assert one(describe(window)) == window


def test_local_text_uses_the_first_windows_time_zone() -> None:
    assert local_text([[], [OFFICE]], utc(2026, 12, 3, 7)) == "2026-12-03 08:00 Europe/Paris"
    assert local_text([], utc(2026, 12, 3, 7)) == "2026-12-03 07:00 UTC"


ZONES = ["UTC", "Europe/Paris", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"]
windows = st.builds(
    lambda days, start, length, zone: {
        "days": sorted(days, key=DAYS.index),
        "start": f"{start // 60:02d}:{start % 60:02d}",
        "end": "24:00"
        if (start + length) == 1440
        else f"{(start + length) % 1440 // 60:02d}:{(start + length) % 60:02d}",
        "timezone": zone,
    },
    st.sets(st.sampled_from(DAYS), min_size=1),
    st.integers(0, 95).map(lambda q: q * 15),
    st.integers(1, 95).map(lambda q: q * 15),
    st.sampled_from(ZONES),
)
instants = st.datetimes(
    min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
)
MINUTE = timedelta(minutes=1)


@settings(max_examples=150, deadline=None)
@given(
    groups=st.lists(st.lists(windows, min_size=1, max_size=2), min_size=1, max_size=2), at=instants
)
def test_openings_and_closings_are_edges(groups: list[list[dict[str, Any]]], at: datetime) -> None:
    groups = [parse_windows(g, field="windows") for g in groups]
    opens = next_opening(groups, at)
    if opens is not None:
        assert opens >= at
        assert is_open(groups, opens)
        assert opens == at or not is_open(groups, max(at, opens - MINUTE))
    closes = next_closing(groups, at)
    if closes is not None:
        assert closes > at
        assert not is_open(groups, closes)
        assert is_open(groups, closes - MINUTE) or closes - MINUTE < at


@settings(max_examples=100, deadline=None)
@given(window=windows, at=instants)
def test_one_window_always_opens_again(window: dict[str, Any], at: datetime) -> None:
    assert next_opening([parse_windows([window], field="windows")], at) is not None
