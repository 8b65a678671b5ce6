"""Run one collector job where no packet can leave the machine: in a child process with a
network namespace of its own, which has no interface but a loopback that is down.

A host name that does not resolve makes the system resolver ask its DNS server, off this
machine; there the query fails before anything is sent, as it does for a scanner whose
resolver has no answer. ``python -m tests.offline`` reads the job as JSON on stdin and prints
what the job raised (SourceUnavailable's message) as JSON.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from quipu import wire
from quipu.collectors.base import SourceUnavailable
from quipu.collectors.registry import collector

REPO = Path(__file__).resolve().parents[1]


def unavailable_offline(job: wire.Job) -> str:
    """The SourceUnavailable message ``job`` ends with, run in a namespace of its own."""
    done = subprocess.run(
        ["unshare", "--net", sys.executable, "-m", "tests.offline"],
        input=job.model_dump_json(by_alias=True),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    outcome: dict[str, str] = json.loads(done.stdout)
    assert "unavailable" in outcome, outcome
    return outcome["unavailable"]


async def _run(job: wire.Job) -> dict[str, Any]:
    emitted: list[dict[str, Any]] = []

    async def emit(result: wire.SystemResult) -> None:
        emitted.append(result.to_wire())

    try:
        await collector(job.source_type, job.kind)(job, emit, asyncio.Event())
    except SourceUnavailable as error:
        return {"unavailable": str(error)}
    return {"emitted": emitted}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(_run(wire.Job.model_validate_json(sys.stdin.read())))))
