"""The scanner client over real loopback sockets: failover between servers, and a claim
whose answer is lost is asked again under its claim id."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any
from unittest.mock import ANY
from urllib.parse import parse_qsl, urlsplit

import pytest

from quipu import wire
from quipu.scanner.client import ScannerClient
from tests.servers import free_port

BACKOFF = "failed on every server"
"""What the client logs before it backs off."""

Answer = Callable[[str, str], Awaitable[tuple[int, dict[str, Any]]]]


JOB = wire.Job(job_id=1, scan_id=1, kind="connect", source_type="network", targets=[])


async def ok(method: str, target: str) -> tuple[int, dict[str, Any]]:
    if target.startswith("/scanner/jobs"):
        return 200, {"jobs": [JOB.to_wire()]}
    return 200, {"ok": True}


async def unavailable(method: str, target: str) -> tuple[int, dict[str, Any]]:
    return 503, {"error": {"code": "UNAVAILABLE", "message": "draining"}}


async def never(method: str, target: str) -> tuple[int, dict[str, Any]]:
    await asyncio.sleep(3600)
    raise AssertionError("unreachable")


class TinyServer:
    """An HTTP/1.1 server on 127.0.0.1 in this event loop, answering with ``answer``."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.requests: list[tuple[str, str]] = []
        self.url = ""
        self._handlers: set[asyncio.Task[Any]] = set()

    async def __aenter__(self) -> TinyServer:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *_: object) -> None:
        self._server.close()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            while line := await reader.readline():
                method, target, _ = line.decode().split(" ", 2)
                headers: dict[str, str] = {}
                while (header := await reader.readline()) not in (b"\r\n", b""):
                    name, value = header.decode().split(":", 1)
                    headers[name.strip().lower()] = value.strip()
                await reader.readexactly(int(headers.get("content-length", 0)))
                self.requests.append((method, target))
                status, payload = await self.answer(method, target)
                data = json.dumps(payload).encode()
                writer.write(
                    f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(data)}\r\n\r\n".encode()
                    + data
                )
                await writer.drain()
        except (asyncio.CancelledError, ConnectionError):
            pass
        finally:
            writer.close()
            self._handlers.discard(task)


def closed_url() -> str:
    """A loopback port nothing listens on: connecting is refused."""
    return f"http://127.0.0.1:{free_port()}"


def client(*servers: str, **options: Any) -> ScannerClient:
    return ScannerClient(servers=list(servers), api_key="k", **options)


async def beat(scanner: ScannerClient) -> None:
    await scanner.heartbeat(version="test", capacity=1, agent_id="a")


def test_a_refused_server_gives_way_to_the_next_at_once_and_the_client_stays(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> None:
        dead = closed_url()
        async with TinyServer(ok) as live:
            scanner = client(dead, live.url)
            try:
                began = time.monotonic()
                await beat(scanner)
                took = time.monotonic() - began
                assert scanner.server == live.url and scanner.switched.is_set()
                for _ in range(3):
                    await beat(scanner)
                assert await scanner.claim(limit=1) == [JOB]
            finally:
                await scanner.aclose()
        assert took < 1, f"the first switch took {took:.2f} s"
        assert len(live.requests) == 5
        assert not [r for r in caplog.records if BACKOFF in r.getMessage()]
        switches = [r for r in caplog.records if "switching to" in r.getMessage()]
        assert len(switches) == 1 and switches[0].levelno == logging.WARNING
        assert f"{dead} failed" in switches[0].getMessage()

    with caplog.at_level(logging.WARNING, logger="quipu.scanner.client"):
        asyncio.run(scenario())


def test_a_503_moves_on_without_backing_off(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        async with TinyServer(unavailable) as draining, TinyServer(ok) as live:
            scanner = client(draining.url, live.url)
            try:
                await beat(scanner)
                assert scanner.server == live.url
            finally:
                await scanner.aclose()
        assert len(draining.requests) == 1 and len(live.requests) == 1

    with caplog.at_level(logging.WARNING, logger="quipu.scanner.client"):
        asyncio.run(scenario())
    assert not [r for r in caplog.records if BACKOFF in r.getMessage()]


def test_the_client_backs_off_only_once_every_server_failed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> None:
        first, second = closed_url(), closed_url()
        scanner = client(first, second, max_retry_s=0.5)
        try:
            with pytest.raises(ConnectionError, match="giving up"):
                await beat(scanner)
        finally:
            await scanner.aclose()

    with caplog.at_level(logging.WARNING, logger="quipu.scanner.client"):
        asyncio.run(scenario())
    messages = [r.getMessage() for r in caplog.records]
    # Each back-off follows a failure on each server, taken in turn.
    backoffs = [n for n, m in enumerate(messages) if BACKOFF in m]
    assert backoffs, messages
    for n in backoffs:
        assert all("switching to" in m for m in messages[n - 2 : n]), messages


def query(target: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(target).query))


def test_a_claim_whose_answer_is_lost_is_asked_again_under_its_id_on_the_next_server() -> None:
    async def scenario() -> None:
        async with TinyServer(never) as hung, TinyServer(ok) as live:
            scanner = client(hung.url, live.url, timeout=0.3)
            try:
                assert await scanner.claim(limit=1) == [JOB]
                assert scanner.server == live.url
                assert await scanner.claim(limit=1) == [JOB]
            finally:
                await scanner.aclose()
        (lost,), (repeated, fresh) = hung.requests, live.requests
        assert query(lost[1])["claimId"] == query(repeated[1])["claimId"]
        assert query(fresh[1])["claimId"] != query(lost[1])["claimId"]

    asyncio.run(scenario())


def test_a_claim_is_sent_to_the_next_server_when_the_first_refuses_to_connect() -> None:
    async def scenario() -> None:
        async with TinyServer(ok) as live:
            scanner = client(closed_url(), live.url)
            try:
                assert await scanner.claim(limit=2, wait=1) == [JOB]
            finally:
                await scanner.aclose()
        ((method, target),) = live.requests
        assert (method, urlsplit(target).path) == ("GET", "/scanner/jobs")
        assert query(target) == {"limit": "2", "wait": "1", "claimId": ANY}

    asyncio.run(scenario())


def test_a_long_poll_outlasts_the_client_timeout() -> None:
    async def slow(method: str, target: str) -> tuple[int, dict[str, Any]]:
        await asyncio.sleep(0.5)
        return 200, {"jobs": []}

    async def scenario() -> None:
        async with TinyServer(slow) as server:
            scanner = client(server.url, timeout=0.2)
            try:
                assert await scanner.claim(limit=1, wait=0.5) == []
            finally:
                await scanner.aclose()

    asyncio.run(scenario())


def test_a_single_server_string_still_works() -> None:
    async def scenario() -> None:
        async with TinyServer(ok) as live:
            scanner = ScannerClient(server=live.url + "/", api_key="k")
            try:
                await beat(scanner)
            finally:
                await scanner.aclose()
        assert live.requests == [("POST", "/scanner/heartbeat")]

    asyncio.run(scenario())
