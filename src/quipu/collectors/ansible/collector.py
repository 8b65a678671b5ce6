"""The AAP controller collector: log in (connect), read the controller and the hosts it
automates (inspect).

The controller is the one system of its source, and its key is the source's host, as for
the established server; the deployments report names it by ping's ``active_node``.

Connection finds the API (``GET /api/``, see the client), reads ``ping/`` and logs in with
``me/``. Inspection reads the same, then, at once: the number of controller nodes (ping's
instances, or ``instances/`` when ping does not list them), the inventory hosts, and the
managed hosts from ``host_metrics/`` or, on a controller that does not serve it (404) or
does not let the user read it (403), from every job's ``runner_on_start`` events. Pages
and jobs are read up to ``maxConcurrency`` requests in flight (capped at
:data:`MAX_CONCURRENCY`).

What fails what:

- the job (SourceUnavailable): the controller cannot be reached, is no controller, refuses
  the credential anywhere (401: a wrong password or an expired token), or denies it
  ``me/`` (403); ``ping/`` or ``me/`` answers an error, slowly or malformed JSON.
- one part only, named in the controller's result message while the rest of its facts
  stand: a listing that answers 403, a 5xx, malformed JSON or too slowly (instances/ leaves
  ``instance_count`` unknown; hosts/ leaves ``hosts`` and ``comparison`` unknown; jobs/
  leaves the managed hosts unknown; host_metrics/ sends the collector to the jobs); the
  events of one job that cannot be read leave that job out of the managed hosts' times
  and counts.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from quipu import wire
from quipu.collectors.ansible.client import ControllerClient, NotServed, PartUnknown, Stopped
from quipu.collectors.ansible.facts import (
    HOST_METRICS,
    JOB_EVENTS,
    JobEvents,
    controller_facts,
    instance_count,
    inventory_hosts,
    managed_from_metrics,
)
from quipu.collectors.base import SUCCESS, ApiSource, Emit, SourceUnavailable, log_job

log = logging.getLogger(__name__)

MAX_CONCURRENCY = 20
"""The controller's web tier answers with a few uWSGI workers per node; more requests than
this only queue there and slow it down for the automation it runs."""

TIMEOUT_ENV = "QUIPU_ANSIBLE_TIMEOUT_S"
"""Scanner environment variable: seconds one request to the controller may take."""

JOBS_PER_BATCH = 500
"""Jobs whose events are asked for together (requests in flight stay bounded by the lanes)."""

RUNNER_ON_START = "runner_on_start"
"""The job event each task of a playbook emits as it starts on one host."""


def _source(job: wire.Job) -> ApiSource:
    return ApiSource.from_job(job, timeout_variable=TIMEOUT_ENV)


async def _log_in(client: ControllerClient) -> dict[str, Any]:
    """Find the API, read ping and check the credential; ping's answer."""
    await client.discover()
    not_a_controller = "check that the source's host and port are the controller's."
    ping = await client.required(client.endpoints["ping"], hint=not_a_controller)
    if not isinstance(ping.get("version"), str):
        raise SourceUnavailable(
            f"{client.where} answers GET {client.endpoints['ping']} without the controller "
            f"version an automation controller reports: {not_a_controller}"
        )
    me = await client.required(client.endpoints["me"], hint=not_a_controller)
    if not isinstance(me.get("results"), list) or not me["results"]:
        raise SourceUnavailable(
            f"{client.what} does not say who {client.login} is (GET {client.endpoints['me']} "
            "lists no user): check the credential."
        )
    return ping


async def connect(job: wire.Job, emit: Emit, stop: asyncio.Event) -> None:
    """Log in to the controller and report it as the source's one reachable system."""
    source = _source(job)
    async with ControllerClient(source, concurrency=1, stop=stop) as client:
        try:
            ping = await _log_in(client)
        except Stopped:
            return
        await emit(source.result(system=source.host, status=SUCCESS))
    log_job(
        log,
        job,
        "%s (controller %s) accepts %s",
        client.what,
        ping.get("version"),
        client.login,
    )


async def inspect(job: wire.Job, emit: Emit, stop: asyncio.Event) -> None:
    """Read the controller's facts and emit them as its one system."""
    source = _source(job)
    concurrency = min(source.max_concurrency, MAX_CONCURRENCY)
    async with ControllerClient(source, concurrency=concurrency, stop=stop) as client:
        try:
            ping = await _log_in(client)
            instances, hosts, managed = await asyncio.gather(
                _instances(client, ping),
                _inventory(client),
                _managed(client),
                return_exceptions=True,
            )
        except Stopped:
            return
        for outcome in (instances, hosts, managed):
            if isinstance(outcome, Stopped):
                return
            if isinstance(outcome, BaseException) and not isinstance(outcome, PartUnknown):
                raise outcome
        notes: list[str] = []
        nodes: int | None = None
        if isinstance(instances, PartUnknown):
            notes.append(f"{instances} The number of controller nodes is unknown.")
        elif isinstance(instances, int):
            nodes = instances
        rows: list[dict[str, Any]] | None = None
        if isinstance(hosts, PartUnknown):
            notes.append(f"{hosts} The inventory hosts are unknown.")
        elif isinstance(hosts, list):
            rows = hosts
        managed_rows: list[dict[str, Any]] | None = None
        managed_source, job_ids = "", None
        if isinstance(managed, PartUnknown):
            notes.append(f"{managed} The managed hosts are unknown.")
        elif isinstance(managed, tuple):
            managed_rows, managed_source, job_ids, managed_notes = managed
            notes.extend(managed_notes)
        facts = controller_facts(
            ping=ping,
            host=source.host,
            instances=nodes,
            hosts=rows,
            managed=managed_rows,
            managed_source=managed_source,
            job_ids=job_ids,
        )
        if stop.is_set():
            return
        await emit(
            source.result(system=source.host, status=SUCCESS, message=" ".join(notes), facts=facts)
        )
    log_job(
        log,
        job,
        "%s: %d inventory hosts, %d managed hosts (from %s)%s",
        client.what,
        len(rows or ()),
        len(managed_rows or ()),
        managed_source or "nowhere",
        f"; {' '.join(notes)}" if notes else "",
    )


async def _instances(client: ControllerClient, ping: dict[str, Any]) -> int:
    """The number of controller nodes: ping lists them, or else instances/ counts them."""
    listed = instance_count(ping)
    if listed is not None:
        return listed
    path = client.endpoints.get("instances") or client.endpoints["ping"].replace(
        "ping/", "instances/"
    )
    body = await client.fetch(path, {"page_size": 1})
    count = body.get("count") if isinstance(body, dict) else None
    if type(count) is not int:
        raise PartUnknown(
            f"{client.what} sent a malformed page 1 of GET {path} (no count of instances)."
        )
    return count


async def _inventory(client: ControllerClient) -> list[dict[str, Any]]:
    return inventory_hosts(await client.listing("hosts"))


async def _managed(
    client: ControllerClient,
) -> tuple[list[dict[str, Any]], str, list[int] | None, list[str]]:
    """(managed hosts, where from, the job ids read, notes for the result message)."""
    notes: list[str] = []
    try:
        rows = await client.listing("host_metrics")
        return managed_from_metrics(rows), HOST_METRICS, None, []
    except NotServed:
        pass  # a controller before 4.4 (AAP 2.3): its jobs tell the same
    except PartUnknown as failure:
        notes.append(f"{failure} The managed hosts were read from the jobs' events instead.")
    events = JobEvents()
    jobs = await client.listing("jobs")
    job_ids = [job["id"] for job in jobs if type(job.get("id")) is int]
    unread: list[tuple[int, PartUnknown]] = []
    # Jobs are taken a batch at a time: a controller keeps months of them, and a task per
    # job for all of them at once would hold every one in memory.
    for start in range(0, len(job_ids), JOBS_PER_BATCH):
        batch = job_ids[start : start + JOBS_PER_BATCH]
        outcomes = await asyncio.gather(
            *(_job_events(client, job_id) for job_id in batch), return_exceptions=True
        )
        for kind in (Stopped, SourceUnavailable):
            fatal = next((o for o in outcomes if isinstance(o, kind)), None)
            if fatal is not None:
                raise fatal
        for job_id, outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, PartUnknown):
                unread.append((job_id, outcome))
            elif isinstance(outcome, BaseException):
                raise outcome
            else:
                events.add_job(job_id, outcome)
    if unread:
        ids = ", ".join(str(job_id) for job_id, _ in unread[:10])
        more = f" and {len(unread) - 10} more" if len(unread) > 10 else ""
        jobs_word = "job" if len(unread) == 1 else "jobs"
        notes.append(
            f"The events of {len(unread)} {jobs_word} (id {ids}{more}) could not be read, "
            f"first: {unread[0][1]} The managed hosts' automation times and counts leave "
            f"{'it' if len(unread) == 1 else 'them'} out."
        )
    return events.managed(), JOB_EVENTS, events.job_ids, notes


async def _job_events(client: ControllerClient, job_id: int) -> list[dict[str, Any]]:
    path = f"{client.endpoints['jobs']}{job_id}/job_events/"
    return await client.listing("job_events", path=path, params={"event": RUNNER_ON_START})
