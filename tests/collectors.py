"""Running an API collector's coroutines directly in tests: the job a scanner would be
given for one server, and the results it emits."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import pytest

from quipu import wire
from quipu.collectors.base import Run, SourceUnavailable

CREDENTIAL_ID = 5


def api_job(
    source_type: str,
    kind: str,
    *,
    host: str,
    port: int,
    credential: Mapping[str, Any],
    source_name: str,
    verify: bool = False,
    concurrency: int = 25,
) -> wire.Job:
    """A ``kind`` scanner job for the server at ``host:port``; ``credential`` holds the
    login fields of the scanner API (username, password, authToken)."""
    return wire.Job.model_validate(
        {
            "jobId": 7,
            "scanId": 3,
            "kind": kind,
            "sourceType": source_type,
            "targets": [{"range": host, "ports": [port], "credentialId": CREDENTIAL_ID}],
            "maxProbesPerSecond": 0,
            "credentials": [
                {"id": CREDENTIAL_ID, "name": source_name, "credType": source_type, **credential}
            ],
            "options": {
                "taskId": 11,
                "sourceName": source_name,
                "maxConcurrency": concurrency,
                "sslCertVerify": verify,
                "sslProtocol": None,
                "disableSsl": False,
                "proxyUrl": None,
            },
        }
    )


def changed(job: wire.Job, **options: Any) -> wire.Job:
    """``job`` with some of its options changed: ``changed(job, proxy_url=...)``."""
    return job.model_copy(update={"options": job.options.model_copy(update=options)})


def run_collector(
    run: Run, job: wire.Job, *, stop_after: int | None = None, stop_in_s: float | None = None
) -> list[wire.SystemResult]:
    """The results ``run`` emits for ``job``; stop is set after that many results or seconds."""
    results: list[wire.SystemResult] = []

    async def main() -> None:
        stop = asyncio.Event()
        if stop_in_s is not None:
            asyncio.get_running_loop().call_later(stop_in_s, stop.set)

        async def emit(result: wire.SystemResult) -> None:
            results.append(result)
            if stop_after is not None and len(results) >= stop_after:
                stop.set()

        await run(job, emit, stop)

    asyncio.run(main())
    return results


def unavailable(job: wire.Job, *, run: Run) -> str:
    """The message of the SourceUnavailable ``run`` raises for ``job``."""
    with pytest.raises(SourceUnavailable) as caught:
        run_collector(run, job)
    return str(caught.value)
