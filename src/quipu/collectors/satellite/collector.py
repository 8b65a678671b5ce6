"""The Satellite collector: list the hosts Satellite manages (connect), read their facts (inspect).

A system is one host Satellite manages, and its key is the host's name as Satellite lists
it (Satellite keeps host names unique); connect and inspect use the same key, so an
inspection result lands on the system its connection found.

Inspection reads each host's details and subscriptions, one task per host, with at most
``maxConcurrency`` hosts (capped at :data:`MAX_CONCURRENCY`) and as many requests in
flight at once; the hosts listing is paged as the work goes, so memory does not grow with
the number of hosts. One host that fails (an HTTP 5xx, malformed JSON, a timeout) fails
alone; a listing that fails, or a server that cannot be used, fails the job.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from quipu import wire
from quipu.collectors.base import (
    FAILED,
    SUCCESS,
    ApiSource,
    Emit,
    log_job,
)
from quipu.collectors.satellite.client import (
    HostFailed,
    SatelliteClient,
    Stopped,
    SubscriptionsUnknown,
)
from quipu.collectors.satellite.facts import host_facts

log = logging.getLogger(__name__)

MAX_CONCURRENCY = 50
"""Satellite's web workers answer a few dozen requests at once; more only queue there and
slow it down for its other users."""

TIMEOUT_ENV = "QUIPU_SATELLITE_TIMEOUT_S"
"""Scanner environment variable: seconds one request to Satellite may take."""


def _source(job: wire.Job) -> ApiSource:
    return ApiSource.from_job(job, timeout_variable=TIMEOUT_ENV)


async def connect(job: wire.Job, emit: Emit, stop: asyncio.Event) -> None:
    """Log in to Satellite and report every host it manages as a reachable system."""
    source = _source(job)
    found = 0
    async with SatelliteClient(source, concurrency=1, stop=stop) as client:
        try:
            await client.check_api()
            async with contextlib.aclosing(client.hosts()) as hosts:
                async for _, name in hosts:
                    await emit(source.result(system=name, status=SUCCESS))
                    found += 1
                    if stop.is_set():
                        break
        except Stopped:
            pass
    log_job(
        log,
        job,
        "Satellite %s lists %d hosts%s",
        client.where,
        found,
        " (stopped)" if stop.is_set() else "",
    )


async def inspect(job: wire.Job, emit: Emit, stop: asyncio.Event) -> None:
    """Read the facts of every host Satellite manages, emitting each host as it is done."""
    source = _source(job)
    concurrency = min(source.max_concurrency, MAX_CONCURRENCY)
    counts = {SUCCESS: 0, FAILED: 0}
    async with SatelliteClient(source, concurrency=concurrency, stop=stop) as client:

        async def one(host_id: int, name: str) -> None:
            # The slot is held until the result is emitted: hosts waiting for their upload
            # count against the bound too, so a slow server upload cannot pile them up.
            try:
                result = await _inspect_host(client, source, host_id=host_id, name=name)
                counts[result.status] += 1
                await emit(result)
            except Stopped:
                return
            finally:
                slots.release()

        slots = asyncio.Semaphore(concurrency)
        running: set[asyncio.Task[None]] = set()
        crashed: list[BaseException] = []

        def forget(task: asyncio.Task[None]) -> None:
            running.discard(task)
            error = None if task.cancelled() else task.exception()
            if error is not None:
                crashed.append(error)

        try:
            await client.check_api()
            async with contextlib.aclosing(client.hosts()) as hosts:
                async for host_id, name in hosts:
                    await slots.acquire()
                    if stop.is_set() or crashed:
                        slots.release()
                        break
                    task = asyncio.create_task(one(host_id, name))
                    running.add(task)
                    task.add_done_callback(forget)
        except Stopped:
            pass
        except asyncio.CancelledError:
            for task in running:
                task.cancel()
            raise
        finally:
            # When the listing failed, the hosts already started still finish (within the
            # timeout) before the job fails: cancelling a request in its TLS handshake
            # would leave its socket open (httpcore closes it on errors only).
            if running:
                await asyncio.wait(set(running))
        if crashed:
            raise crashed[0]
    log_job(
        log,
        job,
        "Satellite %s: %d hosts inspected, %d failed%s",
        client.where,
        counts[SUCCESS],
        counts[FAILED],
        " (stopped)" if stop.is_set() else "",
    )


async def _inspect_host(
    client: SatelliteClient, source: ApiSource, *, host_id: int, name: str
) -> wire.SystemResult:
    """One host's result: its facts, or why they could not be read."""
    try:
        details = await client.host(host_id)
        message = ""
        subscriptions: list[Any] | None
        try:
            subscriptions = await client.subscriptions(host_id)
        except SubscriptionsUnknown as unknown:
            subscriptions, message = None, str(unknown)
    except HostFailed as failure:
        return source.result(system=name, status=FAILED, message=str(failure))
    facts = host_facts(details, subscriptions=subscriptions)
    return source.result(system=name, status=SUCCESS, message=message, facts=facts)
