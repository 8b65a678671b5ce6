"""An OpenShift cluster's raw facts, read from its API answers (pure: no I/O).

Fact names and shapes are the established discovery tool's, so its reports keep working. A
node's record is ``{"node": {...}}``, from one item of ``GET /api/v1/nodes``::

    kind                "node"
    name                metadata.name
    cluster_uuid        the cluster's id (spec.clusterID of ClusterVersion "version")
    creation_timestamp  metadata.creationTimestamp
    labels              metadata.labels
    roles               the <role> of every node-role.kubernetes.io/<role> label, sorted
    addresses           status.addresses (each {type, address})
    capacity            status.capacity, and allocatable from status.allocatable, each
                        {kind: "node-resources", cpu (cores, a number), memory_in_bytes, pods}
    architecture        status.nodeInfo.architecture (as Kubernetes names it: amd64, arm64)
    kernel_version      status.nodeInfo.kernelVersion
    machine_id          status.nodeInfo.machineID (the node's /etc/machine-id)
    system_uuid         status.nodeInfo.systemUUID (its firmware's UUID)
    operating_system    status.nodeInfo.operatingSystem
    os_image            status.nodeInfo.osImage
    provider_id         spec.providerID (the platform that runs the node)
    taints              spec.taints
    errors              {} (a node is read whole or not at all)

The cluster's own record is ``{"cluster": {...}, "operators": [...], "namespaces": [...]}``:
``cluster`` is ``{kind: "cluster", uuid, version, kubernetes_version, errors}``, where
``errors`` names each part that could not be read (``{kind: "error", status, reason,
message}`` by fact name); ``operators`` holds a ``cluster-operator`` per ClusterOperator
(``name, version, created_at, updated_at``) then an ``olm-operator`` per OLM Subscription
(also ``display_name, package, source, channel, namespace``); ``namespaces`` holds one
``{kind: "namespace", name, pod_count, deployment_count}`` per namespace.

A fact the API does not give is left out, never set to null or guessed.
"""

from __future__ import annotations

import decimal
import re
from collections.abc import Iterable, Mapping
from typing import Any

from quipu.collectors import values

ROLE_LABEL = "node-role.kubernetes.io/"
CLUSTER_PREFIX = "cluster:"
"""The system key of a cluster's own record is ``cluster:<cluster id>``, as the established
tool names it."""

_QUANTITY = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)([a-zA-Z]*)$")
_MULTIPLIERS: Mapping[str, int] = {
    **{suffix: 1024 ** (n + 1) for n, suffix in enumerate(("Ki", "Mi", "Gi", "Ti", "Pi", "Ei"))},
    **{suffix: 1000**n for n, suffix in enumerate(("", "k", "M", "G", "T", "P", "E"))},
}
"""Binary (``Ki`` = 1024) and decimal (``k`` = 1000) suffixes of a quantity."""


def quantity(value: Any) -> decimal.Decimal | None:
    """A Kubernetes resource quantity (``15252796Ki``, ``7500m``, ``4``, ``1.5G``) as a number
    of units, or None when it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return decimal.Decimal(str(value))
    if not isinstance(value, str):
        return None
    match = _QUANTITY.match(value.strip())
    if match is None:
        return None
    number, suffix = decimal.Decimal(match.group(1)), match.group(2)
    if suffix in _MULTIPLIERS:
        return number * _MULTIPLIERS[suffix]
    if suffix == "m":
        return number / 1000
    return None


def _cores(value: Any) -> int | float | None:
    """CPU cores as a number: whole cores as an int (``"8"``), else a float (``"7500m"``)."""
    number = quantity(value)
    if number is None or number < 0:
        return None
    return int(number) if number == number.to_integral_value() else float(number)


def _whole(value: Any) -> int | None:
    """Bytes or a count as an int, rounded as the established tool rounds memory."""
    number = quantity(value)
    if number is None or number < 0:
        return None
    return int(number.to_integral_value(rounding=decimal.ROUND_HALF_EVEN))


def resources(value: Any) -> dict[str, Any] | None:
    """A node's capacity or allocatable resources, or None when the node gives none."""
    given = values.mapping(value)
    if not given:
        return None
    found: dict[str, Any] = {"kind": "node-resources"}
    for name, key, parse in (
        ("cpu", "cpu", _cores),
        ("memory_in_bytes", "memory", _whole),
        ("pods", "pods", _whole),
    ):
        parsed = parse(given.get(key))
        if parsed is not None:
            found[name] = parsed
    return found


def roles(labels: Mapping[str, Any]) -> list[str]:
    """The node's roles, from its ``node-role.kubernetes.io/<role>`` labels."""
    return sorted({key[len(ROLE_LABEL) :] for key in labels if key.startswith(ROLE_LABEL)} - {""})


def item_name(item: Mapping[str, Any]) -> str | None:
    """The name of one item of a listing (a node's is its system key), or None without one."""
    return values.text(values.mapping(item.get("metadata")).get("name"))


def node_facts(node: Mapping[str, Any], *, cluster_uuid: str | None) -> dict[str, Any]:
    """The raw facts of one node, from its item in the nodes listing."""
    metadata = values.mapping(node.get("metadata"))
    spec = values.mapping(node.get("spec"))
    status = values.mapping(node.get("status"))
    info = values.mapping(status.get("nodeInfo"))
    labels = {str(k): str(v) for k, v in values.mapping(metadata.get("labels")).items()}
    addresses = [
        {"type": str(a.get("type")), "address": str(a.get("address"))}
        for a in status.get("addresses") or ()
        if isinstance(a, Mapping) and values.text(a.get("address"))
    ]
    taints = [dict(t) for t in spec.get("taints") or () if isinstance(t, Mapping)]
    facts: dict[str, Any] = {
        "kind": "node",
        "name": values.text(metadata.get("name")),
        "cluster_uuid": cluster_uuid,
        "creation_timestamp": values.text(metadata.get("creationTimestamp")),
        "labels": labels,
        "roles": roles(labels),
        "addresses": addresses,
        "allocatable": resources(status.get("allocatable")),
        "capacity": resources(status.get("capacity")),
        "architecture": values.text(info.get("architecture")),
        "kernel_version": values.text(info.get("kernelVersion")),
        "machine_id": values.text(info.get("machineID")),
        "system_uuid": values.text(info.get("systemUUID")),
        "operating_system": values.text(info.get("operatingSystem")),
        "os_image": values.text(info.get("osImage")),
        "provider_id": values.text(spec.get("providerID")),
        "taints": taints,
        "errors": {},
    }
    return {"node": {name: value for name, value in facts.items() if value is not None}}


def cluster_id(cluster_version: Mapping[str, Any]) -> str | None:
    """The cluster's id, from ClusterVersion ``version``."""
    return values.text(values.mapping(cluster_version.get("spec")).get("clusterID"))


def cluster_version(cluster_version: Mapping[str, Any]) -> str | None:
    """The OpenShift version the cluster runs (or is updating to), from ClusterVersion."""
    status = values.mapping(cluster_version.get("status"))
    desired = values.text(values.mapping(status.get("desired")).get("version"))
    if desired is not None:
        return desired
    history = status.get("history")
    if isinstance(history, list) and history and isinstance(history[0], Mapping):
        return values.text(history[0].get("version"))
    return None


def cluster_system(uuid: str) -> str:
    """The system key of the cluster's own record."""
    return f"{CLUSTER_PREFIX}{uuid}"


def error(*, status: int | None, reason: str | None, message: str) -> dict[str, Any]:
    """One part's failure as the cluster's ``errors`` carry it."""
    return {"kind": "error", "status": status, "reason": reason, "message": message}


def cluster_facts(
    *,
    uuid: str,
    version: str | None,
    kubernetes_version: str | None,
    operators: list[dict[str, Any]] | None,
    namespaces: list[dict[str, Any]] | None,
    errors: Mapping[str, dict[str, Any]],
) -> dict[str, Any]:
    """The raw facts of the cluster's own record; a part that failed (None) is left out."""
    cluster: dict[str, Any] = {"kind": "cluster", "uuid": uuid}
    if version is not None:
        cluster["version"] = version
    if kubernetes_version is not None:
        cluster["kubernetes_version"] = kubernetes_version
    cluster["errors"] = dict(errors)
    facts: dict[str, Any] = {"cluster": cluster}
    if operators is not None:
        facts["operators"] = operators
    if namespaces is not None:
        facts["namespaces"] = namespaces
    return facts


def _latest_transition(conditions: Any) -> str | None:
    times = [
        t
        for c in conditions or ()
        if isinstance(c, Mapping) and (t := values.text(c.get("lastTransitionTime")))
    ]
    return max(times) if times else None


def cluster_operator(item: Mapping[str, Any]) -> dict[str, Any]:
    """One ClusterOperator: the version of its ``operator`` component, and when it last
    changed condition."""
    metadata = values.mapping(item.get("metadata"))
    status = values.mapping(item.get("status"))
    version = next(
        (
            values.text(v.get("version"))
            for v in status.get("versions") or ()
            if isinstance(v, Mapping) and v.get("name") == "operator"
        ),
        None,
    )
    found = {
        "kind": "cluster-operator",
        "name": values.text(metadata.get("name")),
        "version": version,
        "created_at": values.text(metadata.get("creationTimestamp")),
        "updated_at": _latest_transition(status.get("conditions")),
    }
    return {key: value for key, value in found.items() if value is not None}


def csv_summary(item: Mapping[str, Any]) -> tuple[tuple[str, str], dict[str, str]] | None:
    """((namespace, name), {display_name, version}) of one ClusterServiceVersion."""
    metadata = values.mapping(item.get("metadata"))
    spec = values.mapping(item.get("spec"))
    name = values.text(metadata.get("name"))
    if name is None:
        return None
    summary = {
        key: value
        for key, value in (
            ("display_name", values.text(spec.get("displayName"))),
            ("version", values.text(spec.get("version"))),
        )
        if value is not None
    }
    return (values.text(metadata.get("namespace")) or "", name), summary


def olm_operator(
    item: Mapping[str, Any], *, csvs: Mapping[tuple[str, str], Mapping[str, str]]
) -> dict[str, Any]:
    """One OLM Subscription, with the display name and version of the ClusterServiceVersion
    it installed."""
    metadata = values.mapping(item.get("metadata"))
    spec = values.mapping(item.get("spec"))
    status = values.mapping(item.get("status"))
    namespace = values.text(metadata.get("namespace"))
    current = values.text(status.get("installedCSV")) or values.text(status.get("currentCSV"))
    csv = csvs.get((namespace or "", current or ""), {})
    package = values.text(spec.get("name"))
    version = csv.get("version")
    if current is not None and "." in current:
        # The CSV's name is <package>.<version> (v-prefixed); it tells both when the CSV
        # itself cannot be read.
        split_package, split_version = current.split(".", 1)
        package = package or split_package
        version = version or split_version
    found = {
        "kind": "olm-operator",
        "name": values.text(metadata.get("name")),
        "version": version,
        "created_at": values.text(metadata.get("creationTimestamp")),
        "updated_at": values.text(status.get("lastUpdated")),
        "display_name": csv.get("display_name"),
        "package": package,
        "source": values.text(spec.get("source")),
        "channel": values.text(spec.get("channel")),
        "namespace": namespace,
    }
    return {key: value for key, value in found.items() if value is not None}


def item_namespace(item: Mapping[str, Any]) -> str | None:
    return values.text(values.mapping(item.get("metadata")).get("namespace"))


def namespace_counts(
    *, namespaces: Iterable[str], pods: Mapping[str, int], deployments: Mapping[str, int]
) -> list[dict[str, Any]]:
    """One workload count per namespace, sorted by name; a namespace that holds pods but
    was not listed (created meanwhile) is counted too."""
    names = sorted({*namespaces, *pods, *deployments})
    return [
        {
            "kind": "namespace",
            "name": name,
            "pod_count": pods.get(name, 0),
            "deployment_count": deployments.get(name, 0),
        }
        for name in names
    ]
