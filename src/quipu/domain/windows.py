"""Time windows: the days and hours, in a time zone, when a scan's or a source's jobs may run.

A window is ``{"days": ["mon", ...], "start": "HH:MM", "end": "HH:MM", "timezone": "IANA"}``;
one whose end is not after its start spans midnight and belongs to the day it starts. A list
of windows is open when any of them is; an empty list is always open. A job may run when
every one of its groups (the scan's list, each source's list) is open.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from quipu.domain.errors import InvalidInput

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$|^24:00$")
_HORIZON = timedelta(days=15)
"""Windows repeat every week: a job closed for longer than this never opens (two weeks, as a
night's window may fall into a daylight-saving gap one week)."""

Window = Mapping[str, Any]


def parse_windows(value: Any, *, field: str) -> list[dict[str, Any]]:
    """Normalized windows from text ("mon-fri 08:00-18:00 Europe/Paris") or objects."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidInput(
            f"{field} must be a list of windows such as 'mon-fri 08:00-18:00 Europe/Paris'.",
            field=field,
        )
    return [_parse_one(item, field=f"{field}[{i}]") for i, item in enumerate(value)]


def _parse_one(item: Any, *, field: str) -> dict[str, Any]:
    if isinstance(item, str):
        item = _from_text(item, field=field)
    if not isinstance(item, Mapping):
        raise InvalidInput(
            f"{field} must be a text like 'mon-fri 08:00-18:00 Europe/Paris' or an object "
            "with days, start, end and timezone.",
            field=field,
        )
    unknown = sorted(set(item) - {"days", "start", "end", "timezone"})
    if unknown:
        raise InvalidInput(
            f"{field} has unknown keys {', '.join(unknown)}; allowed: days, start, end, timezone.",
            field=field,
        )
    days = item.get("days", list(DAYS))
    if (
        not isinstance(days, list)
        or not days
        or any(not isinstance(d, str) or d.lower() not in DAYS for d in days)
    ):
        raise InvalidInput(
            f"{field}.days must be a non-empty list of {', '.join(DAYS)}.", field=f"{field}.days"
        )
    start, end = (_time_text(item.get(k), field=f"{field}.{k}") for k in ("start", "end"))
    if start == end:
        raise InvalidInput(
            f"{field} opens and closes at {start}: a window needs a length.", field=field
        )
    zone = item.get("timezone") or "UTC"
    _zone(zone, field=f"{field}.timezone")
    ordered = [d for d in DAYS if d in {x.lower() for x in days}]
    return {"days": ordered, "start": start, "end": end, "timezone": zone}


def _from_text(text: str, *, field: str) -> dict[str, Any]:
    parts = text.split()
    if len(parts) not in (2, 3) or "-" not in parts[1]:
        raise InvalidInput(
            f"{field} {text!r} is not a window; write days, hours and an optional time zone, "
            "e.g. 'mon-fri 08:00-18:00 Europe/Paris' or 'sat,sun 00:00-24:00'.",
            field=field,
        )
    start, _, end = parts[1].partition("-")
    return {
        "days": _days_text(parts[0], field=f"{field}.days"),
        "start": start,
        "end": end,
        "timezone": parts[2] if len(parts) == 3 else "UTC",
    }


def _days_text(text: str, *, field: str) -> list[str]:
    if text.lower() in ("*", "daily"):
        return list(DAYS)
    days: list[str] = []
    for chunk in text.lower().split(","):
        first, _, last = chunk.partition("-")
        if first not in DAYS or (last and last not in DAYS):
            raise InvalidInput(
                f"{field} {text!r} is not a list of days; use {', '.join(DAYS)}, ranges "
                "such as mon-fri, or * for every day.",
                field=field,
            )
        i, j = DAYS.index(first), DAYS.index(last or first)
        span = range(i, j + 1) if i <= j else [*range(i, 7), *range(0, j + 1)]
        days.extend(DAYS[k] for k in span)
    return days


def _time_text(value: Any, *, field: str) -> str:
    if not isinstance(value, str) or not _TIME.match(value):
        raise InvalidInput(f"{field} must be a time HH:MM from 00:00 to 24:00.", field=field)
    return value


def _zone(name: Any, *, field: str) -> ZoneInfo:
    try:
        return ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(
            f"{field} {name!r} is not a time zone; use an IANA name such as Europe/Paris or UTC.",
            field=field,
        ) from None


def _minutes(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def _spans(window: Window, around: datetime) -> list[tuple[datetime, datetime]]:
    """The window's open intervals (UTC) that start within a day before or after ``around``."""
    zone = ZoneInfo(window["timezone"])
    local_day = around.astimezone(zone).date()
    start, end = _minutes(window["start"]), _minutes(window["end"])
    spans = []
    for offset in range(-2, 2):
        day = local_day + timedelta(days=offset)
        if DAYS[day.weekday()] not in window["days"]:
            continue
        midnight = datetime.combine(day, time(0), tzinfo=zone)
        opens = _local(midnight, start)
        closes = _local(midnight, end if end > start else end + 24 * 60)
        spans.append((opens.astimezone(UTC), closes.astimezone(UTC)))
    return spans


def _local(midnight: datetime, minutes: int) -> datetime:
    """Wall-clock ``minutes`` after local midnight (DST gaps resolve as zoneinfo does)."""
    day = midnight.date() + timedelta(days=minutes // (24 * 60))
    rest = minutes % (24 * 60)
    return datetime.combine(day, time(rest // 60, rest % 60), tzinfo=midnight.tzinfo)


def _open_list(windows: Sequence[Window], at: datetime) -> bool:
    return not windows or any(
        opens <= at < closes for w in windows for opens, closes in _spans(w, at)
    )


def is_open(groups: Sequence[Sequence[Window]], at: datetime) -> bool:
    """Every non-empty group has an open window at ``at``."""
    return all(_open_list(group, at) for group in groups)


def _edges(groups: Sequence[Sequence[Window]], start: datetime) -> list[datetime]:
    """Every instant after ``start`` (within the horizon) where some window opens or closes."""
    edges: set[datetime] = set()
    probe = start
    while probe <= start + _HORIZON:
        for group in groups:
            for window in group:
                for opens, closes in _spans(window, probe):
                    edges.update(e for e in (opens, closes) if start < e <= start + _HORIZON)
        probe += timedelta(hours=12)
    return sorted(edges)


def next_opening(groups: Sequence[Sequence[Window]], at: datetime) -> datetime | None:
    """When the groups are next all open (``at`` itself when open now); None: never."""
    if is_open(groups, at):
        return at
    return next((e for e in _edges(groups, at) if is_open(groups, e)), None)


def next_closing(groups: Sequence[Sequence[Window]], at: datetime) -> datetime | None:
    """When the groups next stop being all open (None: they never close, or are closed)."""
    if not is_open(groups, at):
        return None
    return next((e for e in _edges(groups, at) if not is_open(groups, e)), None)


def describe(window: Window) -> str:
    """The window as an operator writes it: 'mon-fri 08:00-18:00 Europe/Paris'."""
    days = window["days"]
    indexes = [DAYS.index(d) for d in days]
    if len(days) == 7:
        text = "*"
    elif len(days) > 2 and indexes == list(range(indexes[0], indexes[-1] + 1)):
        text = f"{days[0]}-{days[-1]}"
    else:
        text = ",".join(days)
    return f"{text} {window['start']}-{window['end']} {window['timezone']}"


def check_opens(
    named: Sequence[tuple[str, Sequence[Window]]], *, at: datetime, field: str = "windows"
) -> None:
    """InvalidInput unless the named groups (e.g. 'scan "nightly"', 'source "lab"') are ever
    all open together: a job that could never run is refused rather than left waiting."""
    given = [(name, group) for name, group in named if group]
    if next_opening([group for _, group in given], at) is None:
        names = " / ".join(name for name, _ in given)
        raise InvalidInput(
            f"The time windows of {names} never open together; change them so that they "
            "overlap for some days and hours, or remove some.",
            field=field,
        )


def local_text(groups: Sequence[Sequence[Window]], at: datetime) -> str:
    """``at`` as an operator reads it: in the time zone of the first window given (UTC when
    there is none), e.g. '2026-12-03 08:00 Europe/Paris'."""
    zone = next((w["timezone"] for group in groups for w in group), "UTC")
    return f"{at.astimezone(ZoneInfo(zone)):%Y-%m-%d %H:%M} {zone}"
