"""TCP discovery: which ports of which systems accept a connection, at a capped rate."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import errno
import ipaddress
import itertools
import logging
import resource
import socket
from collections.abc import Awaitable, Callable, Iterator, Sequence

from quipu.scanner.ratelimit import TokenBucket

logger = logging.getLogger(__name__)

_SPARE_FILES = 64
"""File descriptors kept free for everything else the process does while probing."""
_UNREACHABLE = {errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN}


class ProbeState(enum.StrEnum):
    OPEN = "open"
    """The port accepted the connection."""
    CLOSED = "closed"
    """The system refused the connection: it is up, nothing listens on the port."""
    FILTERED = "filtered"
    """No answer within the timeout (or the network said the host is unreachable)."""
    ERROR = "error"
    """The probe could not be made; ``detail`` says why."""


@dataclasses.dataclass(frozen=True, slots=True)
class ProbeResult:
    address: str
    port: int
    state: ProbeState
    elapsed: float
    """Seconds from issuing the connect to its outcome."""
    detail: str = ""


def raise_open_file_limit() -> int:
    """Raise the soft limit on open files to the hard limit (1024 is a common soft limit,
    too low for wide concurrency); return the soft limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 1 << 20 if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError) as error:
            logger.warning("could not raise the open-file limit from %d: %s", soft, error)
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


def _family(address: str) -> socket.AddressFamily | None:
    try:
        version = ipaddress.ip_address(address).version
    except ValueError:
        return None
    return socket.AF_INET if version == 4 else socket.AF_INET6


def _settled(sock: socket.socket) -> ProbeState:
    """The outcome of a connect the event loop did not report in time.

    A saturated loop can notice a finished connect only after its deadline; the kernel
    still knows whether it was accepted or refused, so neither is taken for a timeout.
    """
    try:
        error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    except OSError:
        return ProbeState.FILTERED
    if error == errno.ECONNREFUSED:
        return ProbeState.CLOSED
    if error == 0:
        with contextlib.suppress(OSError):
            sock.getpeername()
            return ProbeState.OPEN
    return ProbeState.FILTERED


async def _probe_one(
    loop: asyncio.AbstractEventLoop,
    *,
    address: str,
    family: socket.AddressFamily,
    port: int,
    timeout: float,
) -> ProbeResult:
    try:
        sock = socket.socket(family, socket.SOCK_STREAM)
    except OSError as error:
        return ProbeResult(address, port, ProbeState.ERROR, 0.0, f"no socket: {error}")
    detail = ""
    try:
        sock.setblocking(False)
        # The deadline is set in the same step that issues the connect: a probe that waited
        # for its turn is not charged for the wait.
        started = loop.time()
        try:
            async with asyncio.timeout(timeout):
                await loop.sock_connect(sock, (address, port))
            state = ProbeState.OPEN
        except TimeoutError:
            state = _settled(sock)
        except ConnectionRefusedError:
            state = ProbeState.CLOSED
        except OSError as error:
            unreachable = error.errno in _UNREACHABLE
            state = ProbeState.FILTERED if unreachable else ProbeState.ERROR
            detail = error.strerror or str(error)
        return ProbeResult(address, port, state, loop.time() - started, detail)
    finally:
        sock.close()


async def probe(
    *,
    systems: Sequence[str],
    ports: Sequence[int],
    max_probes_per_second: float,
    concurrency: int,
    timeout: float,
    on_result: Callable[[ProbeResult], Awaitable[None]] | None = None,
    stop: asyncio.Event | None = None,
) -> list[ProbeResult]:
    """Connect to every port of every system (IP addresses: resolve names first) and
    classify each; ``max_probes_per_second`` 0 means no cap.

    A fixed pool of ``concurrency`` workers takes the next (system, port) pair when it is
    free, so memory and timers stay bounded however many targets there are. Results come
    in target order (systems, then ports). When ``stop`` is set, the probes under way are
    abandoned and the results so far are returned.
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1 (got {concurrency})")
    if timeout <= 0:
        raise ValueError(f"timeout must be positive (got {timeout})")
    bad_ports = [port for port in ports if not 1 <= port <= 65535]
    if bad_ports:
        raise ValueError(f"ports must be 1-65535 (got {bad_ports[:5]})")
    total = len(systems) * len(ports)
    if total == 0:
        return []
    file_budget = max(1, raise_open_file_limit() - _SPARE_FILES)
    workers_count = min(concurrency, total, file_budget)
    if workers_count < min(concurrency, total):
        logger.warning("probing with %d connections at once: the open-file limit", workers_count)
    loop = asyncio.get_running_loop()
    bucket = TokenBucket(rate=max_probes_per_second)
    families = {address: _family(address) for address in systems}
    targets: Iterator[tuple[int, tuple[str, int]]] = enumerate(itertools.product(systems, ports))
    results: list[tuple[int, ProbeResult]] = []

    async def worker() -> None:
        for index, (address, port) in targets:
            if stop is not None and stop.is_set():
                return
            family = families[address]
            if family is None:
                result = ProbeResult(
                    address, port, ProbeState.ERROR, 0.0, "not an IP address: resolve it first"
                )
            else:
                if not bucket.unlimited:
                    await bucket.acquire()
                    if stop is not None and stop.is_set():
                        return
                result = await _probe_one(
                    loop, address=address, family=family, port=port, timeout=timeout
                )
            results.append((index, result))
            if on_result is not None:
                await on_result(result)

    logger.debug(
        "probing %d targets, %d at once, cap %s/s", total, workers_count, max_probes_per_second
    )
    workers = [asyncio.create_task(worker()) for _ in range(workers_count)]
    await _run_until_done_or_stopped(workers, stop=stop)
    results.sort(key=lambda item: item[0])
    return [result for _, result in results]


async def _wait_for(event: asyncio.Event) -> None:
    await event.wait()


async def _run_until_done_or_stopped(
    workers: list[asyncio.Task[None]], *, stop: asyncio.Event | None
) -> None:
    """Wait for ``workers``; on ``stop``, on a worker's error or on cancellation, cancel
    them all and wait until they are gone (their sockets closed)."""
    stopper = asyncio.create_task(_wait_for(stop)) if stop is not None else None
    pending = set(workers)
    try:
        while pending:
            watched = pending if stopper is None else pending | {stopper}
            done, _ = await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
            if stopper is not None and stopper in done:
                return
            pending -= done
            for task in done:
                task.result()
    finally:
        for task in workers:
            task.cancel()
        if stopper is not None:
            stopper.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
