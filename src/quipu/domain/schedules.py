"""Scan schedules: a cron expression in an IANA time zone, and the times it fires.

Firing times come from ``cronsim``, a small pure-computation library (no I/O) that walks a
cron expression over zone-aware datetimes the way cron does across daylight saving changes:
a daily firing in a skipped hour runs once at the next valid time, one in a repeated hour runs
once, and an hourly or finer schedule fires in both copies of a repeated hour.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from cronsim import CronSim, CronSimError

from quipu.domain.errors import InvalidInput

DEFAULT_TIMEZONE = "UTC"
MAX_CRON_LENGTH = 128
SHOWN_FIRINGS = 5
"""How many coming firings a scan shows."""
CRON_HELP = (
    "5 fields: minute hour day-of-month month day-of-week, e.g. '0 2 * * 1-5' "
    "(02:00 Monday to Friday)"
)


@dataclass(frozen=True, slots=True)
class Schedule:
    cron: str
    """Five cron fields, single-spaced."""
    timezone: str
    """The IANA zone the fields are read in."""


def parse_schedule(value: Any, *, field: str = "schedule") -> Schedule | None:
    """A schedule from ``{"cron": ..., "timezone": ...}`` (zone default UTC); None clears it."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidInput(
            f"{field} must be an object with cron and timezone, or null.", field=field
        )
    unknown = sorted(str(key) for key in value if key not in ("cron", "timezone"))
    if unknown:
        raise InvalidInput(
            f"{field} has unknown keys {', '.join(unknown)}; allowed: cron, timezone.",
            field=f"{field}.{unknown[0]}",
        )
    timezone = value.get("timezone")
    return Schedule(
        # The cron expression is the schedule itself: its errors name the schedule.
        cron=check_cron(value.get("cron"), field=field),
        timezone=check_timezone(
            DEFAULT_TIMEZONE if timezone is None else timezone, field=f"{field}.timezone"
        ),
    )


def check_cron(expr: Any, *, field: str = "schedule") -> str:
    """``expr`` with its fields single-spaced, or InvalidInput saying what cron allows.

    Only the five standard fields: nicknames such as ``@daily`` and a seconds field are
    refused so that every node and every client reads an expression the same way."""
    if not isinstance(expr, str) or not expr.strip():
        raise InvalidInput(f"{field} is required: a cron expression of {CRON_HELP}.", field=field)
    fields = expr.split()
    if len(fields) != 5:
        raise InvalidInput(
            f"{field} must have {CRON_HELP}; {expr.strip()!r} has {len(fields)}.", field=field
        )
    normal = " ".join(fields)
    if len(normal) > MAX_CRON_LENGTH:
        raise InvalidInput(
            f"{field} must be at most {MAX_CRON_LENGTH} characters long.", field=field
        )
    try:
        CronSim(normal, datetime.now(UTC))
    except CronSimError as error:
        raise InvalidInput(
            f"{field} {normal!r} is not a valid cron expression ({error}); it needs {CRON_HELP}.",
            field=field,
        ) from None
    return normal


def check_timezone(name: Any, *, field: str = "schedule.timezone") -> str:
    """``name`` if it is an IANA time zone (``Europe/Paris``, ``UTC``), else InvalidInput."""
    allowed = "an IANA time zone name such as 'UTC', 'Europe/Paris' or 'America/New_York'"
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput(f"{field} must be {allowed}.", field=field)
    zone = str(name).strip()
    # ZoneInfo also opens paths and POSIX TZ strings; only names the database lists are zones.
    if zone not in _zone_names():
        raise InvalidInput(f"{field} {zone!r} is not a time zone; use {allowed}.", field=field)
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(
            f"{field} {zone!r} is not a time zone; use {allowed}.", field=field
        ) from None
    return zone


def next_firing(schedule: Schedule, *, after: datetime) -> datetime | None:
    """The first firing strictly after ``after`` (aware), in UTC; None if it never fires."""
    firings = next_firings(schedule, after=after, count=1)
    return firings[0] if firings else None


def next_firings(schedule: Schedule, *, after: datetime, count: int) -> list[datetime]:
    """Up to ``count`` firings strictly after ``after`` (aware), in UTC, earliest first."""
    if after.tzinfo is None:
        raise ValueError("after must be timezone-aware")
    start = after.astimezone(ZoneInfo(schedule.timezone))
    try:
        times = list(itertools.islice(CronSim(schedule.cron, start), count))
    except (CronSimError, StopIteration):
        return []
    return [t.astimezone(UTC) for t in times]


@functools.cache
def _zone_names() -> frozenset[str]:
    """The zone database's names, read once (it lists hundreds of files)."""
    return frozenset(available_timezones() | {"UTC"})
