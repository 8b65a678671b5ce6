"""The network collector: TCP discovery then SSH login (connect), SSH inspection (inspect)."""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

from quipu import wire
from quipu.collectors.base import FAILED, UNREACHABLE, Emit
from quipu.collectors.network.inspect import inspect_many
from quipu.collectors.network.probe import probe
from quipu.collectors.network.ssh import login_many
from quipu.collectors.network.targets import from_ranges, resolve

log = logging.getLogger(__name__)

PROBE_TIMEOUT_S = 3.0


def _seconds(name: str, default: float) -> float:
    """A scanner-side timeout, overridable from the scanner's environment."""
    try:
        return max(0.1, float(os.environ.get(name) or default))
    except ValueError:
        return default


def _concurrency(job: wire.Job) -> int:
    return max(1, job.options.max_concurrency)


async def connect(job: wire.Job, emit: Emit, stop: asyncio.Event) -> None:
    by_port: dict[int, list[str]] = {}
    for target in job.targets:
        for port in target.ports:
            by_port.setdefault(port, []).extend(from_ranges([target.range]))
    for port, listed in by_port.items():
        if stop.is_set():
            return
        # Systems keep the name the source gave; probes go to the address it resolves to.
        names_at: dict[str, list[str]] = {}
        for name, address in (await resolve(names=listed)).items():
            if address is None:
                await emit(_unreachable(name, port, "the name does not resolve"))
            else:
                names_at.setdefault(address, []).append(name)
        opened: list[tuple[str, int]] = []

        async def on_probe(
            result: Any,
            port: int = port,
            opened: list[tuple[str, int]] = opened,
            names_at: dict[str, list[str]] = names_at,
        ) -> None:
            for name in names_at[result.address]:
                if result.state == "open":
                    opened.append((name, port))
                else:
                    reason = {
                        "closed": f"port {port} refused the connection",
                        "filtered": f"no answer on port {port} within {PROBE_TIMEOUT_S:g} s",
                    }.get(result.state, f"cannot connect to port {port}")
                    await emit(_unreachable(name, port, reason))

        await probe(
            systems=list(names_at),
            ports=[port],
            max_probes_per_second=job.max_probes_per_second,
            concurrency=max(_concurrency(job), 64),
            timeout=PROBE_TIMEOUT_S,
            on_result=on_probe,
            stop=stop,
        )
        if stop.is_set() or not opened:
            continue

        await login_many(
            systems=opened,
            credentials=job.credentials,
            concurrency=_concurrency(job),
            connect_timeout=_seconds("QUIPU_SSH_CONNECT_TIMEOUT_S", 10.0),
            on_result=emit,
            stop=stop,
        )


def _unreachable(system: str, port: int, reason: str) -> wire.SystemResult:
    return wire.SystemResult(system=system, port=port, status=UNREACHABLE, message=reason)


async def inspect(job: wire.Job, emit: Emit, stop: asyncio.Event) -> None:
    credentials = {c.id: c for c in job.credentials}
    systems = []
    for target in job.targets:
        credential = credentials.get(target.credential_id) if target.credential_id else None
        for address in from_ranges([target.range]):
            if credential is None:
                await emit(
                    wire.SystemResult(
                        system=address,
                        port=target.ports[0],
                        status=FAILED,
                        message="The credential that reached this system no longer exists.",
                    )
                )
            else:
                systems.append((address, target.ports[0], credential))

    await inspect_many(
        systems=systems,
        concurrency=_concurrency(job),
        timeout=_seconds("QUIPU_INSPECT_TIMEOUT_S", 120.0),
        on_result=emit,
        stop=stop,
    )
