"""The scanner's HTTP client for the pull protocol: retries, and failover between servers."""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import httpx
from pydantic import ValidationError

from quipu import wire

log = logging.getLogger(__name__)

TRANSIENT = frozenset({502, 503, 504})

WAIT_SLACK_S = 10.0
"""A long poll's HTTP timeout exceeds its wait by this much, for a busy server to answer."""


class ProtocolError(Exception):
    """The server refused a request for good (4xx): retrying will not help."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


class ScannerClient:
    """Calls ``/scanner/...`` with the scanner's API key, on the first of ``servers`` that
    answers: a server that cannot be reached, times out, or answers 502/503/504 gives way to
    the next one at once; the client stays on whichever works."""

    def __init__(
        self,
        *,
        servers: Sequence[str] = (),
        server: str | None = None,
        api_key: str,
        verify: bool | str = True,
        timeout: float = 30,
        max_retry_s: float = 60,
        rekey: Callable[[], str] | None = None,
    ) -> None:
        urls = [*([server] if server else []), *servers]
        if not urls:
            raise ValueError("a scanner needs at least one server URL")
        self.servers = [url.rstrip("/") for url in urls]
        self._current = 0
        self.timeout = timeout
        self._http = httpx.AsyncClient(
            headers={"X-API-Key": api_key}, verify=verify, timeout=timeout
        )
        self.max_retry_s = max_retry_s
        self._rekey = rekey
        """Where a scanner that can learn its own key (the built-in one) gets it again when
        its key is refused: a rotation does not stop it."""
        self.stopping = False
        """Set when the scanner stops with its server gone: no more retries."""
        self.switched = asyncio.Event()
        """Set on each move to another server (the agent heartbeats there at once)."""

    @property
    def server(self) -> str:
        """The server requests go to now."""
        return self.servers[self._current]

    async def aclose(self) -> None:
        await self._http.aclose()

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Any = None,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """One request; transient failures move to the next server at once, and back off
        (jittered, exponential) only once every server has failed in turn."""
        delay, waited, failed_in_turn = 0.25, 0.0, 0
        rekeyed = False
        while True:
            index = self._current
            try:
                response = await self._http.request(
                    method,
                    self.servers[index] + path,
                    json=json,
                    params=params,
                    timeout=timeout if timeout is not None else self.timeout,
                )
            except httpx.TransportError as error:
                failure: str = f"{type(error).__name__}: {error}"
                self._move_on(index, failure)
            else:
                if response.status_code < 400:
                    body: dict[str, Any] = response.json()
                    return body
                if response.status_code == 401 and self._rekey is not None and not rekeyed:
                    rekeyed = True
                    self._http.headers["X-API-Key"] = await asyncio.to_thread(self._rekey)
                    log.warning(
                        "%s %s: the API key was refused; asking again with the new one",
                        method,
                        path,
                    )
                    continue
                if response.status_code not in TRANSIENT:
                    raise _protocol_error(response)
                failure = f"HTTP {response.status_code}"
                self._move_on(index, failure)
            if self.stopping or waited >= self.max_retry_s:
                raise ConnectionError(f"{method} {path} kept failing ({failure}); giving up")
            failed_in_turn += 1
            if failed_in_turn < len(self.servers):
                continue
            failed_in_turn = 0
            pause = delay * (0.5 + random.random())
            log.warning(
                "%s %s failed on every server (%s); retrying in %.1f s",
                method,
                path,
                failure,
                pause,
            )
            await asyncio.sleep(pause)
            waited += pause
            delay = min(delay * 2, 10)

    def _move_on(self, index: int, failure: str) -> None:
        """The server at ``index`` failed: use the next one, unless a concurrent request
        already moved on (so that two failures on one server skip no other)."""
        if len(self.servers) == 1 or index != self._current:
            return
        self._current = (index + 1) % len(self.servers)
        log.warning(
            "server %s failed (%s); switching to %s", self.servers[index], failure, self.server
        )
        self.switched.set()

    async def heartbeat(self, *, version: str, capacity: int, agent_id: str) -> None:
        await self.call(
            "POST",
            "/scanner/heartbeat",
            json={"version": version, "capacity": capacity, "agentId": agent_id},
        )

    async def claim(self, *, limit: int, wait: float = 0) -> list[wire.Job]:
        """Claim up to ``limit`` jobs; with ``wait``, the server answers as soon as there is
        work, or with none after ``wait`` seconds (a long poll).

        A claim whose answer is lost (the server failed or timed out while answering) is
        asked again, on whichever server works, under the same claim id: the answer is then
        the jobs it took, so none is left held for a scanner that never saw it."""
        params: dict[str, Any] = {"limit": limit, "claimId": uuid.uuid4().hex}
        timeout = self.timeout
        if wait > 0:
            params["wait"] = wait
            timeout = max(timeout, wait + WAIT_SLACK_S)
        body = await self.call("GET", "/scanner/jobs", params=params, timeout=timeout)
        try:
            return wire.Jobs.model_validate(body).jobs
        except ValidationError as error:
            raise ProtocolError(200, "BAD_ANSWER", f"not a claim's answer: {error}") from None

    async def start(self, job_id: int) -> None:
        await self.call("POST", f"/scanner/jobs/{job_id}/start")

    async def progress(self, job_id: int, *, progress_count: int, result_count: int) -> str:
        body = await self.call(
            "POST",
            f"/scanner/jobs/{job_id}/progress",
            json={"progressCount": progress_count, "resultCount": result_count},
        )
        return str(body.get("directive", "continue"))

    async def results(self, job_id: int, results: Sequence[wire.SystemResult]) -> int:
        payload = {"results": [r.to_wire() for r in results]}
        body = await self.call("POST", f"/scanner/jobs/{job_id}/results", json=payload)
        return int(body["accepted"])

    async def complete(
        self, job_id: int, *, status: str, result_count: int, error_message: str | None = None
    ) -> None:
        payload: dict[str, Any] = {"status": status, "resultCount": result_count}
        if error_message:
            payload["errorMessage"] = error_message
        await self.call("POST", f"/scanner/jobs/{job_id}/complete", json=payload)

    async def release(self, job_id: int) -> None:
        await self.call("POST", f"/scanner/jobs/{job_id}/release")


def _protocol_error(response: httpx.Response) -> ProtocolError:
    try:
        error = response.json().get("error", {})
    except ValueError:
        error = {}
    return ProtocolError(
        response.status_code,
        str(error.get("code", "HTTP_ERROR")),
        str(error.get("message", response.text[:200])),
    )
