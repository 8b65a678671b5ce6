"""The scanner's HTTP client for the pull protocol, with retries on transient failures."""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any

import httpx

log = logging.getLogger(__name__)

TRANSIENT = frozenset({502, 503, 504})


class ProtocolError(Exception):
    """The server refused a request for good (4xx): retrying will not help."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


class ScannerClient:
    """Calls ``/scanner/...`` with the scanner's API key."""

    def __init__(
        self,
        *,
        server: str,
        api_key: str,
        verify: bool | str = True,
        timeout: float = 30,
        max_retry_s: float = 60,
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=server.rstrip("/"),
            headers={"X-API-Key": api_key},
            verify=verify,
            timeout=timeout,
        )
        self.max_retry_s = max_retry_s
        self.stopping = False
        """Set when the scanner stops with its server gone: no more retries."""

    async def aclose(self) -> None:
        await self._http.aclose()

    async def call(
        self, method: str, path: str, *, json: Any = None, params: Any = None, retry: bool = True
    ) -> dict[str, Any]:
        """One request; transient errors are retried with jittered exponential backoff."""
        delay, waited = 0.25, 0.0
        while True:
            try:
                response = await self._http.request(method, path, json=json, params=params)
            except httpx.TransportError as error:
                # A claim whose request may have reached the server is not retried blindly:
                # the server would hold the claimed job for a scanner that never saw it.
                if not retry and not isinstance(error, httpx.ConnectError):
                    raise
                failure: str = f"{type(error).__name__}: {error}"
            else:
                if response.status_code < 400:
                    body: dict[str, Any] = response.json()
                    return body
                if response.status_code not in TRANSIENT:
                    raise _protocol_error(response)
                failure = f"HTTP {response.status_code}"
            if self.stopping or waited >= self.max_retry_s:
                raise ConnectionError(f"{method} {path} kept failing ({failure}); giving up")
            log.warning("%s %s failed (%s); retrying in %.1f s", method, path, failure, delay)
            pause = delay * (0.5 + random.random())
            await asyncio.sleep(pause)
            waited += pause
            delay = min(delay * 2, 10)

    async def heartbeat(self, *, version: str, capacity: int, agent_id: str) -> None:
        await self.call(
            "POST",
            "/scanner/heartbeat",
            json={"version": version, "capacity": capacity, "agentId": agent_id},
        )

    async def claim(self, *, limit: int) -> list[dict[str, Any]]:
        body = await self.call("GET", "/scanner/jobs", params={"limit": limit}, retry=False)
        jobs: list[dict[str, Any]] = body["jobs"]
        return jobs

    async def start(self, job_id: int) -> None:
        await self.call("POST", f"/scanner/jobs/{job_id}/start")

    async def progress(self, job_id: int, *, progress_count: int, result_count: int) -> str:
        body = await self.call(
            "POST",
            f"/scanner/jobs/{job_id}/progress",
            json={"progressCount": progress_count, "resultCount": result_count},
        )
        return str(body.get("directive", "continue"))

    async def results(self, job_id: int, results: list[dict[str, Any]]) -> int:
        body = await self.call("POST", f"/scanner/jobs/{job_id}/results", json={"results": results})
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
