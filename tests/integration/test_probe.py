"""TCP discovery against real loopback sockets: states, order, rate cap, stop, pool bound."""

from __future__ import annotations

import asyncio
import resource
import socket
import time
from collections.abc import Iterator

import pytest

from quipu.collectors.network.probe import ProbeResult, ProbeState, probe, raise_open_file_limit

ADDRESS = "127.0.219.1"


def _closed_port(address: str) -> int:
    """A port nothing listens on: bound once to get a free number, then released."""
    with socket.socket() as sock:
        sock.bind((address, 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def open_ports() -> Iterator[list[int]]:
    listeners = []
    for _ in range(3):
        sock = socket.socket()
        sock.bind((ADDRESS, 0))
        # The kernel completes handshakes into the backlog; nothing needs to accept them.
        sock.listen(1024)
        listeners.append(sock)
    yield [sock.getsockname()[1] for sock in listeners]
    for sock in listeners:
        sock.close()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port whose accept queue is full: the kernel drops new connection attempts, as a
    firewall that drops packets would."""
    listener = socket.socket()
    listener.bind((ADDRESS, 0))
    listener.listen(0)
    port: int = listener.getsockname()[1]
    filler = socket.create_connection((ADDRESS, port), timeout=5)
    yield port
    filler.close()
    listener.close()


def test_open_and_closed_ports_are_told_apart(open_ports: list[int]) -> None:
    closed = [_closed_port(ADDRESS) for _ in range(3)]
    ports = [open_ports[0], closed[0], open_ports[1], closed[1], open_ports[2], closed[2]]
    results = asyncio.run(
        probe(
            systems=[ADDRESS, "127.0.219.2"],
            ports=ports,
            max_probes_per_second=0,
            concurrency=4,
            timeout=2.0,
        )
    )
    assert [(r.address, r.port) for r in results] == [
        (address, port) for address in (ADDRESS, "127.0.219.2") for port in ports
    ]
    states = [r.state for r in results]
    assert states[:6] == [ProbeState.OPEN, ProbeState.CLOSED] * 3
    # Nothing listens on the second address at all.
    assert states[6:] == [ProbeState.CLOSED] * 6
    assert all(r.elapsed >= 0 for r in results)


def test_a_port_that_never_answers_is_filtered(silent_port: int, open_ports: list[int]) -> None:
    results = asyncio.run(
        probe(
            systems=[ADDRESS],
            ports=[silent_port, open_ports[0]],
            max_probes_per_second=0,
            concurrency=2,
            timeout=0.3,
        )
    )
    assert [r.state for r in results] == [ProbeState.FILTERED, ProbeState.OPEN]
    assert results[0].elapsed >= 0.3


def test_host_names_are_refused_per_probe(open_ports: list[int]) -> None:
    results = asyncio.run(
        probe(
            systems=["db.example", ADDRESS],
            ports=[open_ports[0]],
            max_probes_per_second=0,
            concurrency=2,
            timeout=1.0,
        )
    )
    assert results[0].state == ProbeState.ERROR
    assert "resolve" in results[0].detail
    assert results[1].state == ProbeState.OPEN


def test_every_result_is_reported_as_it_comes(open_ports: list[int]) -> None:
    seen: list[ProbeResult] = []

    async def on_result(result: ProbeResult) -> None:
        seen.append(result)

    systems = [f"127.0.219.{i}" for i in range(1, 41)]
    results = asyncio.run(
        probe(
            systems=systems,
            ports=open_ports,
            max_probes_per_second=0,
            concurrency=16,
            timeout=2.0,
            on_result=on_result,
        )
    )
    assert len(results) == 120
    assert sorted(seen, key=lambda r: (r.address, r.port)) == sorted(
        results, key=lambda r: (r.address, r.port)
    )


def test_the_rate_stays_within_five_percent_of_the_cap() -> None:
    cap, count = 200.0, 500
    systems = [f"127.0.218.{i}" for i in range(1, 251)]
    closed = [_closed_port("127.0.218.1"), _closed_port("127.0.218.1")]

    async def run() -> float:
        loop = asyncio.get_running_loop()
        start = loop.time()
        results = await probe(
            systems=systems,
            ports=closed,
            max_probes_per_second=cap,
            concurrency=64,
            timeout=2.0,
        )
        assert len(results) == count
        return count / (loop.time() - start)

    rate = asyncio.run(run())
    # Never above the cap by more than 5% (the small initial burst included); below it
    # only if this machine cannot make 200 connections a second.
    assert rate <= cap * 1.05
    assert rate >= cap * 0.80


def test_stop_abandons_probes_under_way(silent_port: int) -> None:
    async def run() -> list[ProbeResult]:
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(0.3, stop.set)
        # Unstopped, these would take 40 rounds of 30 s.
        return await asyncio.wait_for(
            probe(
                systems=[ADDRESS] * 40,
                ports=[silent_port],
                max_probes_per_second=0,
                concurrency=1,
                timeout=30.0,
                stop=stop,
            ),
            timeout=10,
        )

    assert asyncio.run(run()) == []


def test_a_stop_already_set_probes_nothing(open_ports: list[int]) -> None:
    async def run() -> list[ProbeResult]:
        stop = asyncio.Event()
        stop.set()
        return await probe(
            systems=[ADDRESS],
            ports=open_ports,
            max_probes_per_second=0,
            concurrency=4,
            timeout=1.0,
            stop=stop,
        )

    assert asyncio.run(run()) == []


def test_no_more_probes_at_once_than_the_concurrency(silent_port: int) -> None:
    # 12 probes that each time out after 0.2 s, 3 at a time: at least 4 rounds.
    started = time.monotonic()
    results = asyncio.run(
        probe(
            systems=[ADDRESS] * 12,
            ports=[silent_port],
            max_probes_per_second=0,
            concurrency=3,
            timeout=0.2,
        )
    )
    assert time.monotonic() - started >= 4 * 0.2
    assert [r.state for r in results] == [ProbeState.FILTERED] * 12


def test_an_error_in_the_callback_stops_the_probe_and_is_raised(open_ports: list[int]) -> None:
    async def on_result(result: ProbeResult) -> None:
        raise RuntimeError("report failed")

    with pytest.raises(RuntimeError, match="report failed"):
        asyncio.run(
            probe(
                systems=[ADDRESS] * 10,
                ports=open_ports,
                max_probes_per_second=0,
                concurrency=4,
                timeout=1.0,
                on_result=on_result,
            )
        )


@pytest.mark.parametrize(
    ("concurrency", "timeout", "ports"), [(0, 1.0, [22]), (1, 0.0, [22]), (1, 1.0, [0])]
)
def test_refuses_settings_that_cannot_work(
    concurrency: int, timeout: float, ports: list[int]
) -> None:
    with pytest.raises(ValueError, match=r"concurrency|timeout|ports"):
        asyncio.run(
            probe(
                systems=[ADDRESS],
                ports=ports,
                max_probes_per_second=0,
                concurrency=concurrency,
                timeout=timeout,
            )
        )


def test_the_open_file_limit_is_raised_to_the_hard_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, 512), hard))
    try:
        assert raise_open_file_limit() == resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == min(hard, 1 << 20)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
