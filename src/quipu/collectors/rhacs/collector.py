"""The RHACS collector: check Central and its API token (connect), read its secured units and
the clusters it secures (inspect).

The system is the Central itself, one per source, and its key is the source's host, as the
established discovery tool names it; connect and inspect use the same key.

connect reads ``GET /v1/metadata`` (Central is there) and ``GET /v1/auth/status`` (the token
is valid: the metadata is open to anonymous callers, so it cannot tell). inspect reads them
again, then the current and the peak secured units and the clusters, three requests at once.

What fails the job (SourceUnavailable, the message names the call and what to check) and
what leaves a part unknown:

- the Central cannot be reached, its TLS certificate is not trusted, or it answers slower
  than ``QUIPU_RHACS_TIMEOUT_S`` (default 30 s) on the metadata, the token check or the
  usage: the job fails;
- HTTP 401 on any call (the token expired or was revoked): the job fails;
- HTTP 403, a 5xx or malformed JSON on the usage endpoints: the job fails, since the secured
  units are what an RHACS scan is for (a 403 names the Administration permission);
- a 403, a 5xx, malformed JSON or a timeout on ``/v1/clusters``: the clusters are unknown,
  the Central's result is still a success with the secured units, and its message says why
  the clusters are missing.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from collections.abc import Callable
from typing import Any

from quipu import wire
from quipu.collectors.base import SUCCESS, ApiSource, Emit, SourceUnavailable, log_job
from quipu.collectors.rhacs import facts
from quipu.collectors.rhacs.client import (
    CLUSTERS,
    TIMEOUT_ENV,
    USAGE_CURRENT,
    USAGE_MAX,
    PartUnknown,
    RhacsClient,
    Stopped,
)

log = logging.getLogger(__name__)

__all__ = ["TIMEOUT_ENV", "connect", "inspect"]

CONCURRENCY = 3
"""The usage figures and the clusters are three independent calls: ask them at once."""


def _source(job: wire.Job) -> ApiSource:
    return ApiSource.from_job(job, timeout_variable=TIMEOUT_ENV)


async def connect(job: wire.Job, emit: Emit, stop: asyncio.Event) -> None:
    """Check that the source is an RHACS Central that accepts the token; report the Central
    as the one reachable system."""
    source = _source(job)
    async with RhacsClient(source, concurrency=1, stop=stop) as client:
        try:
            metadata = await client.metadata()
            await client.check_token()
        except Stopped:
            return
        await emit(source.result(system=source.host, status=SUCCESS))
    log_job(
        log,
        job,
        "RHACS Central %s, version %s, accepts the token",
        client.where,
        metadata.get("version") or "unknown",
    )


async def inspect(job: wire.Job, emit: Emit, stop: asyncio.Event) -> None:
    """Read the Central's facts and emit them as its one system."""
    source = _source(job)
    async with RhacsClient(source, concurrency=CONCURRENCY, stop=stop) as client:
        try:
            metadata = await client.metadata()
            await client.check_token()
            gathered = await asyncio.gather(
                client.usage_current(),
                client.usage_max(now=datetime.datetime.now(datetime.UTC)),
                client.clusters(),
                # Every call ends (within the timeout) before the client closes: cancelling
                # a request in its TLS handshake would leave its socket open.
                return_exceptions=True,
            )
        except Stopped:
            return
        if any(isinstance(outcome, Stopped) for outcome in gathered):
            return
        for outcome in gathered:
            # Only the clusters may be unknown; any other failure ends the job with its cause.
            if isinstance(outcome, BaseException) and not isinstance(outcome, PartUnknown):
                raise outcome
        current, peak, listed = gathered
        found: dict[str, Any] = {
            "central": facts.central_facts(host=source.host, port=source.port, metadata=metadata),
            "secured_units_current": _read(
                client, USAGE_CURRENT, current, facts.secured_units_current
            ),
            "secured_units_max": _read(client, USAGE_MAX, peak, facts.secured_units_max),
        }
        clusters, message = _clusters(client, listed)
        if clusters is not None:
            found["clusters"] = clusters
        await emit(source.result(system=source.host, status=SUCCESS, message=message, facts=found))
    log_job(
        log,
        job,
        "RHACS Central %s: %s secured nodes, %s clusters%s",
        client.where,
        found["secured_units_current"]["numNodes"],
        len(found["clusters"]) if "clusters" in found else "unknown",
        f" ({message})" if message else "",
    )


def _clusters(client: RhacsClient, listed: Any) -> tuple[list[dict[str, Any]] | None, str]:
    """The clusters fact, or None and the message that says why the clusters are unknown."""
    if isinstance(listed, PartUnknown):
        return None, f"The secured clusters are unknown: {listed}"
    try:
        return facts.clusters(listed), ""
    except facts.Malformed as malformed:
        why = client.malformed(CLUSTERS, str(malformed))
        return None, f"The secured clusters are unknown: {why}"


def _read(
    client: RhacsClient, path: str, body: Any, reader: Callable[[Any], dict[str, Any]]
) -> dict[str, Any]:
    """A usage fact read from its answer; an answer not in the API's shape fails the job."""
    try:
        value: dict[str, Any] = reader(body)
    except facts.Malformed as malformed:
        raise SourceUnavailable(client.malformed(path, str(malformed))) from None
    return value
