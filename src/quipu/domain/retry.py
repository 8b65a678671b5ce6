"""A scan's retry policy: how often and how late a job tries again when nothing answered."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from quipu.domain.errors import InvalidInput

DEFAULT_DELAY_S = 300
DEFAULT_BACKOFF = 2
MAX_ATTEMPTS = 100
MAX_BACKOFF = 10
_KEYS = ("attempts", "delay_s", "backoff")


def parse_retry(value: Any, *, field: str) -> dict[str, Any]:
    """Check a retry policy and fill its defaults; ``{}`` means the job never retries.

    ``attempts`` counts the retries after the first try, so ``{"attempts": 2}`` means at most
    three tries in all.
    """
    if value is None or value == {}:
        return {}
    if not isinstance(value, dict):
        raise InvalidInput(
            f"{field} must be an object with attempts, delay_s and backoff, or null.",
            field=field,
        )
    unknown = sorted(str(key) for key in value if key not in _KEYS)
    if unknown:
        raise InvalidInput(
            f"{field} has unknown keys {', '.join(unknown)}; allowed: {', '.join(_KEYS)}.",
            field=f"{field}.{unknown[0]}",
        )
    if "attempts" not in value:
        raise InvalidInput(
            f"{field}.attempts is required: the number of retries, 1 to {MAX_ATTEMPTS}.",
            field=f"{field}.attempts",
        )
    return {
        "attempts": _attempts(value["attempts"], field=f"{field}.attempts"),
        "delay_s": _number(
            value.get("delay_s", DEFAULT_DELAY_S), low=1, high=None, field=f"{field}.delay_s"
        ),
        "backoff": _number(
            value.get("backoff", DEFAULT_BACKOFF),
            low=1,
            high=MAX_BACKOFF,
            field=f"{field}.backoff",
        ),
    }


def retry_delay(policy: dict[str, Any] | None, attempt: int) -> float | None:
    """Seconds to wait before retry number ``attempt`` (1-based), or None when none is left.

    The wait grows by ``backoff`` each time so that a host that stays down for hours is not
    knocked on every few minutes.
    """
    if not policy or attempt < 1 or attempt > int(policy.get("attempts", 0)):
        return None
    delay = float(policy.get("delay_s", DEFAULT_DELAY_S))
    backoff = float(policy.get("backoff", DEFAULT_BACKOFF))
    return delay * backoff ** (attempt - 1)


def _attempts(value: Any, *, field: str) -> int:
    """Retries are counted, so only whole numbers in range are allowed."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{field} must be a whole number from 1 to {MAX_ATTEMPTS}.", field=field)
    if not 1 <= value <= MAX_ATTEMPTS:
        raise InvalidInput(f"{field} must be from 1 to {MAX_ATTEMPTS}, not {value}.", field=field)
    return value


def _number(value: Any, *, low: float, high: float | None, field: str) -> int | float:
    """A finite number within bounds; booleans are refused though Python counts them as ints."""
    allowed = f"from {low:g} to {high:g}" if high is not None else f"{low:g} or more"
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInput(f"{field} must be a number {allowed}.", field=field)
    if value < low or (high is not None and value > high):
        raise InvalidInput(f"{field} must be {allowed}, not {value:g}.", field=field)
    return value


UNREACHABLE_SIGNS = (
    "refused the connection",
    "did not answer within",
    "cannot be reached",
    "does not resolve",
    "The connection to ",
)
"""Words of the collectors' messages (quipu.collectors.http, quipu.collectors.vcenter) that
say a server did not answer at all, as opposed to answering with a refusal of the login: only
the former is worth trying again later, and retrying a wrong password could lock an account."""


def server_unreachable(messages: Sequence[str]) -> bool:
    """True when every failure of a server source's connection says the server did not answer."""
    return bool(messages) and all(
        any(sign in message for sign in UNREACHABLE_SIGNS) for message in messages
    )


def retry_message(*, source_names: Sequence[str], attempt: int, attempts: int, at: datetime) -> str:
    """What a scan job waiting for its retry says: which sources were offline and when next."""
    names = " or ".join(repr(name) for name in source_names)
    noun = "source" if len(source_names) == 1 else "sources"
    when = at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"No system of {noun} {names} was reachable; retry {attempt} of {attempts} at {when}."
