"""The token bucket on a controlled clock: slots, bursts, fairness, no drift, cancellation."""

from __future__ import annotations

import asyncio
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quipu.scanner.ratelimit import TokenBucket


class FakeTime:
    """A clock that moves only when a caller sleeps; ``lateness`` makes wake-ups late."""

    def __init__(self, *, lateness: float = 0.0, seed: int = 0) -> None:
        self.now = 0.0
        self.lateness = lateness
        self.random = random.Random(seed)

    def clock(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        self.now += delay + self.random.uniform(0, self.lateness)


def _sequential(bucket: TokenBucket, count: int) -> None:
    async def run() -> None:
        for _ in range(count):
            await bucket.acquire()

    asyncio.run(run())


@given(
    rate=st.floats(min_value=0.5, max_value=100_000),
    count=st.integers(min_value=1, max_value=3000),
)
def test_n_acquisitions_take_exactly_n_minus_burst_slots(rate: float, count: int) -> None:
    time = FakeTime()
    bucket = TokenBucket(rate=rate, clock=time.clock, sleep=time.sleep)
    _sequential(bucket, count)
    expected = max(0, count - bucket.burst) / rate
    assert time.now == pytest.approx(expected, rel=1e-9, abs=1e-9)


def test_late_wake_ups_do_not_add_up() -> None:
    # Every sleep wakes up to 1 ms late: the rate still holds, since each slot follows the
    # previous slot and not the moment its caller woke up.
    rate, count = 2000.0, 20_000
    time = FakeTime(lateness=0.001)
    bucket = TokenBucket(rate=rate, clock=time.clock, sleep=time.sleep)
    _sequential(bucket, count)
    ideal = (count - bucket.burst) / rate
    assert ideal <= time.now <= ideal + 0.001


def test_default_burst_is_small() -> None:
    assert TokenBucket(rate=1).burst == 2
    assert TokenBucket(rate=200).burst == 2
    assert TokenBucket(rate=2000).burst == 20
    assert TokenBucket(rate=100, burst=5).burst == 5


def test_no_more_than_burst_plus_rate_times_elapsed_in_any_window() -> None:
    rate = 50.0

    async def run() -> list[float]:
        time = FakeTime()
        bucket = TokenBucket(rate=rate, clock=time.clock, sleep=time.sleep)
        granted = []
        for _ in range(500):
            await bucket.acquire()
            granted.append(time.now)
        return granted

    granted = asyncio.run(run())
    burst = TokenBucket(rate=rate).burst
    for start in range(0, len(granted), 37):
        for end in range(start, len(granted), 53):
            window = granted[end] - granted[start]
            assert end - start + 1 <= burst + rate * window + 1e-9


def test_waiters_are_served_in_the_order_they_came() -> None:
    rate = 10.0

    async def run() -> list[tuple[int, float]]:
        loop_now = 0.0
        woken: list[tuple[int, float]] = []
        slots: dict[int, float] = {}

        async def sleep(delay: float) -> None:
            # Every waiter sleeps at once; record when each would wake.
            slots[id(asyncio.current_task())] = loop_now + delay
            await asyncio.sleep(0)

        bucket = TokenBucket(rate=rate, clock=lambda: loop_now, sleep=sleep)

        async def waiter(index: int) -> None:
            await bucket.acquire()
            woken.append((index, slots.get(id(asyncio.current_task()), loop_now)))

        await asyncio.gather(*(waiter(index) for index in range(100)))
        return sorted(woken)

    woken = asyncio.run(run())
    wake_times = [when for _, when in woken]
    assert wake_times == sorted(wake_times)
    burst = TokenBucket(rate=rate).burst
    assert wake_times[burst:] == pytest.approx(
        [(index - burst + 1) / rate for index in range(burst, 100)]
    )


def test_a_cancelled_waiter_hands_its_slot_back() -> None:
    async def run() -> list[float]:
        delays: list[float] = []

        async def sleep(delay: float) -> None:
            delays.append(delay)
            await asyncio.Event().wait()

        bucket = TokenBucket(rate=1.0, burst=1, clock=lambda: 0.0, sleep=sleep)
        await bucket.acquire()
        for _ in range(2):
            waiter = asyncio.create_task(bucket.acquire())
            await asyncio.sleep(0)
            waiter.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiter
        return delays

    # The second waiter gets the first one's slot, not the one after it.
    assert asyncio.run(run()) == [1.0, 1.0]


def test_unlimited_never_waits() -> None:
    time = FakeTime()
    bucket = TokenBucket(rate=0, clock=time.clock, sleep=time.sleep)
    _sequential(bucket, 10_000)
    assert time.now == 0
    assert bucket.unlimited


@pytest.mark.parametrize("rate", [-1.0, float("inf"), float("nan")])
def test_refuses_a_rate_that_is_not_a_rate(rate: float) -> None:
    with pytest.raises(ValueError, match="rate"):
        TokenBucket(rate=rate)


def test_on_the_real_clock_n_acquisitions_take_at_least_their_slots() -> None:
    rate, count = 400.0, 200

    async def run() -> float:
        bucket = TokenBucket(rate=rate)
        loop = asyncio.get_running_loop()
        start = loop.time()
        await asyncio.gather(*(bucket.acquire() for _ in range(count)))
        return loop.time() - start

    elapsed = asyncio.run(run())
    burst = TokenBucket(rate=rate).burst
    # Only a lower bound: a busy machine may take longer, never shorter.
    assert elapsed >= (count - burst) / rate - 0.002
