"""The OpenShift collector: list the cluster's nodes (connect), read their facts and the
cluster's (inspect).

A system is one node, keyed by its name (Kubernetes keeps node names unique in a cluster),
plus one record for the cluster itself, keyed ``cluster:<cluster id>`` as the established
tool keys it: it carries the cluster's version, operators and workload counts, and makes no
system of the deployments report. Connect reports both, so that the inspection's results
land on the systems its connection counted (the server counts a task's systems from what
connect reported).

Inspection pages through the nodes and, meanwhile, through the operators (ClusterOperator,
OLM Subscription and ClusterServiceVersion) and the workloads (namespaces, pods,
deployments), each listing on its own request lane; at most ``maxConcurrency`` requests
(capped at :data:`MAX_CONCURRENCY`) are in flight. A cluster that cannot be used (refused
token, unreachable, TLS, a failing or malformed nodes listing) fails the job. A part of the
cluster's facts that cannot be read (forbidden to the credential, a server error, a timeout,
malformed JSON) is left out of the cluster's record and named in its ``errors`` and in its
result's message: the nodes and the other part stand, and the record still succeeds so that
what was read reaches the details report.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Awaitable
from typing import Any

from quipu import wire
from quipu.collectors.base import SUCCESS, ApiSource, Emit, SourceUnavailable, log_job
from quipu.collectors.openshift import facts as f
from quipu.collectors.openshift.client import (
    CLUSTER_VERSION,
    NODES,
    TIMEOUT_ENV,
    OpenShiftClient,
    PartFailed,
    Stopped,
)

log = logging.getLogger(__name__)

MAX_CONCURRENCY = 7
"""One lane per listing inspection runs at once (nodes and six others): more would idle."""

CLUSTER_OPERATORS = "/apis/config.openshift.io/v1/clusteroperators"
SUBSCRIPTIONS = "/apis/operators.coreos.com/v1alpha1/subscriptions"
CLUSTER_SERVICE_VERSIONS = "/apis/operators.coreos.com/v1alpha1/clusterserviceversions"
NAMESPACES = "/api/v1/namespaces"
PODS = "/api/v1/pods"
DEPLOYMENTS = "/apis/apps/v1/deployments"

_PART_NAMES = {"operators": "Operators", "namespaces": "Workload counts"}


def _source(job: wire.Job) -> ApiSource:
    return ApiSource.from_job(job, timeout_variable=TIMEOUT_ENV)


async def _cluster(client: OpenShiftClient) -> tuple[str, dict[str, Any]]:
    """The cluster's id and its version facts (ClusterVersion and /version)."""
    version = await client.required_json(
        CLUSTER_VERSION,
        missing=(
            f"{client.what} does not serve OpenShift's ClusterVersion (GET {CLUSTER_VERSION}: "
            "HTTP 404): check that the source's host and port are an OpenShift 4 cluster's "
            "API server (port 6443)."
        ),
    )
    uuid = f.cluster_id(version)
    if uuid is None:
        raise SourceUnavailable(
            f"{client.what} reports no cluster id in ClusterVersion 'version' (spec.clusterID): "
            "check the cluster-version operator (oc get clusterversion)."
        )
    kubernetes = await client.required_json("/version")
    git_version = kubernetes.get("gitVersion")
    return uuid, {
        "version": f.cluster_version(version),
        "kubernetes_version": git_version if isinstance(git_version, str) else None,
    }


async def connect(job: wire.Job, emit: Emit, stop: asyncio.Event) -> None:
    """Log in, read the cluster's version, and report every node and the cluster itself."""
    source = _source(job)
    found = 0
    async with OpenShiftClient(source, concurrency=1, stop=stop) as client:
        try:
            await client.log_in()
            uuid, _ = await _cluster(client)
            async with contextlib.aclosing(client.items(NODES)) as nodes:
                async for node in nodes:
                    name = f.item_name(node)
                    if name is None:
                        log.warning("OpenShift %s lists a node without a name", client.where)
                        continue
                    await emit(source.result(system=name, status=SUCCESS))
                    found += 1
                    if stop.is_set():
                        break
            if not stop.is_set():
                await emit(source.result(system=f.cluster_system(uuid), status=SUCCESS))
        except Stopped:
            pass
    log_job(
        log,
        job,
        "OpenShift %s lists %d nodes%s",
        client.where,
        found,
        " (stopped)" if stop.is_set() else "",
    )


async def inspect(job: wire.Job, emit: Emit, stop: asyncio.Event) -> None:
    """Read every node's facts, emitting each as its page arrives, then the cluster's."""
    source = _source(job)
    concurrency = min(source.max_concurrency, MAX_CONCURRENCY)
    inspected = 0
    async with OpenShiftClient(source, concurrency=concurrency, stop=stop) as client:
        try:
            await client.log_in()
            uuid, version = await _cluster(client)
            operators = asyncio.create_task(_part(_operators(client)))
            namespaces = asyncio.create_task(_part(_namespaces(client)))
            parts = {operators, namespaces}
            try:
                async with contextlib.aclosing(client.items(NODES)) as nodes:
                    async for node in nodes:
                        name = f.item_name(node)
                        if name is None:
                            continue
                        facts = f.node_facts(node, cluster_uuid=uuid)
                        await emit(source.result(system=name, status=SUCCESS, facts=facts))
                        inspected += 1
                        if stop.is_set():
                            break
            finally:
                # The other listings end within their timeout (or at once when stopped):
                # cancelling one in its TLS handshake would leave its socket open.
                await asyncio.wait(parts)
                for task in parts:
                    if not task.cancelled():
                        task.exception()  # retrieved here, raised below when it matters
            read = {"operators": operators.result(), "namespaces": namespaces.result()}
            if stop.is_set():
                raise Stopped
            facts, message = _cluster_record(uuid=uuid, version=version, read=read)
            await emit(
                source.result(
                    system=f.cluster_system(uuid), status=SUCCESS, message=message, facts=facts
                )
            )
        except Stopped:
            pass
    log_job(
        log,
        job,
        "OpenShift %s: %d nodes inspected%s",
        client.where,
        inspected,
        " (stopped)" if stop.is_set() else "",
    )


Read = tuple[list[dict[str, Any]] | None, dict[str, Any] | None]
"""One part of the cluster's facts: (its facts, None), or (None, its error)."""


def _cluster_record(
    *, uuid: str, version: dict[str, Any], read: dict[str, Read]
) -> tuple[dict[str, Any], str]:
    """The facts of the cluster's own record, and its message: what could not be read."""
    errors = {name: error for name, (_, error) in read.items() if error is not None}
    facts = f.cluster_facts(
        uuid=uuid,
        version=version["version"],
        kubernetes_version=version["kubernetes_version"],
        operators=read["operators"][0],
        namespaces=read["namespaces"][0],
        errors=errors,
    )
    message = " ".join(
        f"{_PART_NAMES[name]} were not read: {error['message']}" for name, error in errors.items()
    )
    if message:
        message += " The nodes and the other facts stand."
    return facts, message


async def _part(reading: Awaitable[list[dict[str, Any]]]) -> Read:
    """(the part's facts, None), or (None, its error) when it could not be read."""
    try:
        return await reading, None
    except PartFailed as failure:
        return None, f.error(status=failure.status, reason=failure.reason, message=str(failure))


async def _all(*readings: Awaitable[Any]) -> list[Any]:
    """Every reading's outcome, once all have ended; the first failure raised, a refusal or
    a stop before a part's own failure."""
    outcomes = await asyncio.gather(*readings, return_exceptions=True)
    for kind in (SourceUnavailable, Stopped, BaseException):
        for outcome in outcomes:
            if isinstance(outcome, kind):
                raise outcome
    return list(outcomes)


async def _listing(client: OpenShiftClient, path: str, *, optional: bool = False) -> list[Any]:
    return [item async for item in client.items(path, part=True, optional=optional)]


async def _operators(client: OpenShiftClient) -> list[dict[str, Any]]:
    """ClusterOperators, then OLM operators (Subscriptions, with their CSV's names)."""
    cluster_operators, subscriptions, csvs = await _all(
        _listing(client, CLUSTER_OPERATORS),
        _listing(client, SUBSCRIPTIONS, optional=True),
        _listing(client, CLUSTER_SERVICE_VERSIONS, optional=True),
    )
    summaries = dict(s for s in map(f.csv_summary, csvs) if s is not None)
    found = sorted(
        (f.cluster_operator(item) for item in cluster_operators),
        key=lambda o: str(o.get("name")),
    )
    found += sorted(
        (f.olm_operator(item, csvs=summaries) for item in subscriptions),
        key=lambda o: (str(o.get("namespace")), str(o.get("name"))),
    )
    return found


async def _count(client: OpenShiftClient, path: str) -> collections.Counter[str]:
    counts: collections.Counter[str] = collections.Counter()
    async for item in client.items(path, part=True):
        namespace = f.item_namespace(item)
        if namespace is not None:
            counts[namespace] += 1
    return counts


async def _namespaces(client: OpenShiftClient) -> list[dict[str, Any]]:
    """Pods and deployments counted per namespace (the items themselves are not kept)."""
    namespaces, pods, deployments = await _all(
        _listing(client, NAMESPACES),
        _count(client, PODS),
        _count(client, DEPLOYMENTS),
    )
    names = [name for item in namespaces if (name := f.item_name(item)) is not None]
    return f.namespace_counts(namespaces=names, pods=pods, deployments=deployments)
