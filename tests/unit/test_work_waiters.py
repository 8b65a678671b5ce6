"""What a process knows of scanners without work: a long poll skips its first claim only
while no work was announced since a claim found none."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from quipu.api import long_poll
from quipu.api.long_poll import WorkWaiters


@pytest.fixture
def waiters() -> Iterator[WorkWaiters]:
    loop = asyncio.new_event_loop()
    yield WorkWaiters(loop)
    loop.close()


def test_an_empty_claim_makes_a_scanner_known_idle_until_work_is_announced(
    waiters: WorkWaiters,
) -> None:
    assert not waiters.known_idle(7)
    waiters.found_nothing(7, since=waiters.before_claim())
    assert waiters.known_idle(7) and not waiters.known_idle(8)
    waiters._wake("8,9")  # another scanner's work
    assert waiters.known_idle(7)
    waiters._wake("3,7")
    assert not waiters.known_idle(7)
    waiters.found_nothing(7, since=waiters.before_claim())
    waiters._wake("*")  # everything, as after the listener reconnected
    assert not waiters.known_idle(7)


def test_work_announced_while_the_claim_ran_is_not_forgotten(waiters: WorkWaiters) -> None:
    since = waiters.before_claim()
    waiters._wake("7")  # committed after the claim read, before it answered
    waiters.found_nothing(7, since=since)
    assert not waiters.known_idle(7)
    since = waiters.before_claim()
    waiters._wake("*")
    waiters.found_nothing(7, since=since)
    assert not waiters.known_idle(7)


def test_no_work_is_trusted_for_a_while_only(
    waiters: WorkWaiters, monkeypatch: pytest.MonkeyPatch
) -> None:
    waiters.found_nothing(7, since=waiters.before_claim())
    monkeypatch.setattr(long_poll, "IDLE_TRUST_S", 0.0)
    assert not waiters.known_idle(7)
