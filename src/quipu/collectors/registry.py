"""The collector of each source type, and the one entry point a scanner calls to run a job."""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Mapping

from quipu import wire
from quipu.collectors.base import Emit, Run, SourceUnavailable
from quipu.domain.states import SourceType, TaskKind

COLLECTORS: Mapping[SourceType, str] = {
    SourceType.NETWORK: "quipu.collectors.network.collector",
    SourceType.VCENTER: "quipu.collectors.vcenter.collector",
    SourceType.SATELLITE: "quipu.collectors.satellite.collector",
    SourceType.OPENSHIFT: "quipu.collectors.openshift.collector",
    SourceType.ANSIBLE: "quipu.collectors.ansible.collector",
    SourceType.RHACS: "quipu.collectors.rhacs.collector",
}
"""The module of each source type's collector, imported on first use (each pulls in its own
client libraries: SSH, pyvmomi, httpx). It defines ``connect`` and ``inspect`` (see base)."""


def collector(source_type: str, kind: str) -> Run:
    """The coroutine that runs a ``kind`` job of a ``source_type`` source.

    SourceUnavailable names what this scanner cannot run; the job then fails saying so.
    """
    try:
        module_name = COLLECTORS[SourceType(source_type)]
        phase = TaskKind(kind)
    except ValueError:
        raise SourceUnavailable(
            f"This scanner does not know {source_type!r} sources or {kind!r} jobs; "
            "upgrade it to the server's version."
        ) from None
    run: Run = getattr(importlib.import_module(module_name), phase.value)
    return run


async def run_job(job: wire.Job, emit: Emit, stop: asyncio.Event) -> None:
    """Run one scanner job's collector, emitting each system's result as it ends."""
    await collector(job.source_type, job.kind)(job, emit, stop)
