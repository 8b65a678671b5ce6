"""The network collector: TCP discovery then SSH login (connect), SSH inspection (inspect)."""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

from quipu.collectors.base import Emit
from quipu.collectors.network.inspect import inspect_many
from quipu.collectors.network.models import Credential, SystemResult
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


def _concurrency(job: dict[str, Any]) -> int:
    return max(1, int(job.get("options", {}).get("maxConcurrency") or 25))


async def connect(job: dict[str, Any], emit: Emit, stop: asyncio.Event) -> None:
    credentials = [Credential.from_wire(c) for c in job["credentials"]]
    by_port: dict[int, list[str]] = {}
    for target in job["targets"]:
        for port in target["ports"]:
            by_port.setdefault(port, []).extend(from_ranges([target["range"]]))
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
            max_probes_per_second=float(job.get("maxProbesPerSecond") or 0),
            concurrency=max(_concurrency(job), 64),
            timeout=PROBE_TIMEOUT_S,
            on_result=on_probe,
            stop=stop,
        )
        if stop.is_set() or not opened:
            continue

        async def on_login(result: SystemResult) -> None:
            await emit(result.to_wire())

        await login_many(
            systems=opened,
            credentials=credentials,
            concurrency=_concurrency(job),
            connect_timeout=_seconds("QUIPU_SSH_CONNECT_TIMEOUT_S", 10.0),
            on_result=on_login,
            stop=stop,
        )


def _unreachable(system: str, port: int, reason: str) -> dict[str, Any]:
    return SystemResult(system=system, port=port, status="unreachable", message=reason).to_wire()


async def inspect(job: dict[str, Any], emit: Emit, stop: asyncio.Event) -> None:
    credentials = {c["id"]: Credential.from_wire(c) for c in job["credentials"]}
    systems = []
    for target in job["targets"]:
        credential = credentials.get(target.get("credentialId"))
        for address in from_ranges([target["range"]]):
            if credential is None:
                await emit(
                    SystemResult(
                        system=address,
                        port=target["ports"][0],
                        status="failed",
                        message="The credential that reached this system no longer exists.",
                    ).to_wire()
                )
            else:
                systems.append((address, target["ports"][0], credential))

    async def on_result(result: SystemResult) -> None:
        await emit(result.to_wire())

    await inspect_many(
        systems=systems,
        concurrency=_concurrency(job),
        timeout=_seconds("QUIPU_INSPECT_TIMEOUT_S", 120.0),
        on_result=on_result,
        stop=stop,
    )
