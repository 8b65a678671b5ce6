"""An RHACS Central's raw facts, read from its API answers (pure: no I/O).

The Central is one system; its facts are::

    central                 {host, port, version, build_flavor, release_build,
                            license_status}: the source's host and port, and GET /v1/metadata
                            (version, buildFlavor, releaseBuild, licenseStatus)
    secured_units_current   GET /v1/administration/usage/secured-units/current as Central
                            answers it: {numNodes, numCpuUnits}
    secured_units_max       GET /v1/administration/usage/secured-units/max as Central answers
                            it: {maxNodesAt, maxNodes, maxCpuUnitsAt, maxCpuUnits}
    clusters                GET /v1/clusters: one dict per secured cluster (see
                            :func:`cluster_facts`)

``secured_units_current`` and ``secured_units_max`` keep the established discovery tool's
names and shapes: the API's own keys, its counts as the strings the gRPC gateway writes for
64-bit integers. A count the answer leaves out is "0" (proto3 JSON omits zero values); a
timestamp it leaves out (no figure stored in the range) is left out too.

A fact Central does not give is left out, never set to null or guessed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from quipu.collectors import values

CURRENT_COUNTS = ("numNodes", "numCpuUnits")
MAX_KEYS = (("maxNodesAt", "maxNodes"), ("maxCpuUnitsAt", "maxCpuUnits"))

_PROVIDERS = ("aws", "google", "azure")
"""The cloud providers whose own section Central's providerMetadata may carry."""


class Malformed(ValueError):
    """An answer that is JSON but not the shape the RHACS API documents; the message says
    what was wrong."""


def _api_count(body: Mapping[str, Any], key: str) -> str:
    """A 64-bit count as the API writes it (a string of digits); Malformed otherwise."""
    value = body.get(key, "0")
    count = values.count(value)
    if count is None:
        raise Malformed(f"{key} is {value!r}, not a count")
    return value if isinstance(value, str) else str(count)


def central_facts(*, host: str, port: int, metadata: Mapping[str, Any]) -> dict[str, Any]:
    """The ``central`` fact: where the Central was reached and what ``/v1/metadata`` says."""
    release = metadata.get("releaseBuild")
    facts = {
        "host": host,
        "port": port,
        "version": values.text(metadata.get("version")),
        "build_flavor": values.text(metadata.get("buildFlavor")),
        "release_build": release if isinstance(release, bool) else None,
        "license_status": values.text(metadata.get("licenseStatus")),
    }
    return {key: value for key, value in facts.items() if value is not None}


def secured_units_current(body: Any) -> dict[str, Any]:
    """The ``secured_units_current`` fact from the API's answer; Malformed if it is not one."""
    if not isinstance(body, Mapping):
        raise Malformed("the answer is not a JSON object")
    return {key: _api_count(body, key) for key in CURRENT_COUNTS}


def secured_units_max(body: Any) -> dict[str, Any]:
    """The ``secured_units_max`` fact from the API's answer; Malformed if it is not one."""
    if not isinstance(body, Mapping):
        raise Malformed("the answer is not a JSON object")
    facts: dict[str, Any] = {}
    for at_key, count_key in MAX_KEYS:
        at = body.get(at_key)
        if at is not None and values.text(at) is None:
            raise Malformed(f"{at_key} is {at!r}, not a time")
        if at is not None:
            facts[at_key] = at
        facts[count_key] = _api_count(body, count_key)
    return facts


def cluster_facts(cluster: Mapping[str, Any]) -> dict[str, Any]:
    """One secured cluster of ``GET /v1/clusters``::

    id, name, type, labels          the cluster's own (type: OPENSHIFT4_CLUSTER ...)
    health_status, last_contact     healthStatus.overallHealthStatus, .lastContact
    nodes                           healthStatus.collectorHealthInfo.totalRegisteredNodes
    sensor_version                  status.sensorVersion
    kubernetes_version              status.orchestratorMetadata.version
    openshift_version               status.orchestratorMetadata.openshiftVersion
    provider                        aws, google or azure: the section
                                    status.providerMetadata carries
    region, zone                    status.providerMetadata.region, .zone
    provider_cluster_id             status.providerMetadata.cluster.id
    admission_controller, collection_method, managed_by   the cluster's own
    """
    status = values.mapping(cluster.get("status"))
    orchestrator = values.mapping(status.get("orchestratorMetadata"))
    provider_metadata = values.mapping(status.get("providerMetadata"))
    health = values.mapping(cluster.get("healthStatus"))
    collector = values.mapping(health.get("collectorHealthInfo"))
    labels = cluster.get("labels")
    admission = cluster.get("admissionController")
    facts: dict[str, Any] = {
        "id": values.text(cluster.get("id")),
        "name": values.text(cluster.get("name")),
        "type": values.text(cluster.get("type")),
        "labels": dict(labels) if isinstance(labels, Mapping) and labels else None,
        "health_status": values.text(health.get("overallHealthStatus")),
        "last_contact": values.text(health.get("lastContact")),
        "sensor_version": values.text(status.get("sensorVersion")),
        "kubernetes_version": values.text(orchestrator.get("version")),
        "openshift_version": values.text(orchestrator.get("openshiftVersion")),
        "nodes": values.count(collector.get("totalRegisteredNodes")),
        "provider": next((p for p in _PROVIDERS if provider_metadata.get(p)), None),
        "region": values.text(provider_metadata.get("region")),
        "zone": values.text(provider_metadata.get("zone")),
        "provider_cluster_id": values.text(
            values.mapping(provider_metadata.get("cluster")).get("id")
        ),
        "admission_controller": admission if isinstance(admission, bool) else None,
        "collection_method": values.text(cluster.get("collectionMethod")),
        "managed_by": values.text(cluster.get("managedBy")),
    }
    return {key: value for key, value in facts.items() if value is not None}


def clusters(body: Any) -> list[dict[str, Any]]:
    """The ``clusters`` fact from ``GET /v1/clusters``; Malformed if it is not its answer."""
    listed = body.get("clusters") if isinstance(body, Mapping) else None
    if not isinstance(listed, list):
        raise Malformed("the answer has no list of clusters")
    return [cluster_facts(c) for c in listed if isinstance(c, Mapping)]
