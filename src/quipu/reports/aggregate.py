"""The aggregate report: counts over a report's system fingerprints and inspection outcomes.

The shape is the established server's: ``{"results": {...}, "diagnostics": {...}}``, where
``diagnostics`` holds the ``missing_*`` and ``inspect_result_status_*`` counts and
``results`` everything else (``RESULT_FIELDS``, ``DIAGNOSTIC_FIELDS``).

Each system fingerprint of the deployments report is one instance. Its OS is counted under
``os_by_name_and_version`` whatever it is; the other counts take only Red Hat systems (those
``is_redhat`` says so, or that Satellite knows), and every other system is one
``instances_not_redhat``. A Red Hat system is then exactly one of ``instances_virtual``,
``instances_physical``, ``instances_hypervisor`` (an ESXi host that only vCenter reported)
or ``instances_unknown``; so the ``instances_*`` add up to the deployments, which equal the
successful inspections when no system was seen twice.

What Quipu does not collect is counted as missing (``missing_system_creation_date`` for
every Red Hat system; ``missing_system_purpose`` and ``missing_pem_files`` for those a
network source saw), and the JBoss counts stay zero: no collector reports JBoss products.

OpenShift nodes count as Red Hat systems and their CPUs as ``openshift_cores``. The
OpenShift and Ansible counts that no fingerprint holds are read, as the established server
reads them, from the raw facts of those sources (``platform_facts``): an OpenShift record
with ``cluster.kind == "cluster"`` is a cluster, one with ``node.kind == "node"`` a node,
and its ``operators`` are counted by kind and by name; an AAP controller's ``hosts`` (by
name) are the hosts in its database, its ``jobs.unique_hosts`` those its jobs ran on, and
``ansible_hosts_all`` is their union (names, as the established server counts them).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from quipu.domain.states import SourceType, SystemStatus
from quipu.reports.fields import InfrastructureType

UNKNOWN = "unknown"
"""The name or version of an OS no source told."""

RESULT_FIELDS: tuple[str, ...] = (
    "ansible_hosts_all",
    "ansible_hosts_in_database",
    "ansible_hosts_in_jobs",
    "instances_hypervisor",
    "instances_not_redhat",
    "instances_physical",
    "instances_unknown",
    "instances_virtual",
    "jboss_eap_cores_physical",
    "jboss_eap_cores_virtual",
    "jboss_eap_instances",
    "jboss_ws_cores_physical",
    "jboss_ws_cores_virtual",
    "jboss_ws_instances",
    "openshift_cluster_instances",
    "openshift_cores",
    "openshift_node_instances",
    "openshift_operators_by_kind",
    "openshift_operators_by_name",
    "os_by_name_and_version",
    "socket_pairs",
    "system_creation_date_average",
    "vmware_hosts",
    "vmware_vm_to_host_ratio",
    "vmware_vms",
)
"""The keys of ``results``."""

DIAGNOSTIC_FIELDS: tuple[str, ...] = (
    "inspect_result_status_failed",
    "inspect_result_status_success",
    "inspect_result_status_unknown",
    "inspect_result_status_unreachable",
    "missing_cpu_core_count",
    "missing_cpu_socket_count",
    "missing_name",
    "missing_pem_files",
    "missing_system_creation_date",
    "missing_system_purpose",
)
"""The keys of ``diagnostics``."""

INSTANCE_FIELDS: tuple[str, ...] = tuple(f for f in RESULT_FIELDS if f.startswith("instances_"))
"""The counts that partition the instances (they add up to the system fingerprints)."""

_STATUS_FIELDS: Mapping[str, str] = {
    SystemStatus.SUCCESS.value: "inspect_result_status_success",
    SystemStatus.FAILED.value: "inspect_result_status_failed",
    SystemStatus.UNREACHABLE.value: "inspect_result_status_unreachable",
}


def _is_hypervisor(system: Mapping[str, Any], source_types: set[str]) -> bool:
    """An ESXi host: physical, no VM, and seen by vCenter alone (a guest answers SSH)."""
    return (
        system.get("infrastructure_type") == InfrastructureType.PHYSICAL.value
        and system.get("vm_uuid") is None
        and source_types == {SourceType.VCENTER.value}
    )


PLATFORM_TYPES = frozenset({SourceType.OPENSHIFT.value, SourceType.ANSIBLE.value})
"""The source types whose raw facts the aggregate report reads (``platform_facts``)."""


def build_aggregate(
    *,
    systems: Iterable[Mapping[str, Any]],
    inspections: Mapping[str, int],
    platform_facts: Iterable[tuple[str, Mapping[str, Any]]] = (),
) -> dict[str, Any]:
    """The aggregate report of ``systems`` (deployments report fingerprints, read once).

    ``inspections`` counts the report's inspection outcomes by system status; a status
    Quipu does not know is counted as ``inspect_result_status_unknown``. ``platform_facts``
    are the (source type, raw facts) of the report's OpenShift and AAP records.
    """
    counts: dict[str, Any] = dict.fromkeys(RESULT_FIELDS + DIAGNOSTIC_FIELDS, 0)
    os_versions: dict[str, dict[str, int]] = {}
    # cluster -> the hosts its VMs run on, counted as the established server counts them
    hosts_by_cluster: dict[str, set[str]] = {}
    for system in systems:
        by_version = os_versions.setdefault(system.get("os_name") or UNKNOWN, {})
        version = system.get("os_version") or UNKNOWN
        by_version[version] = by_version.get(version, 0) + 1

        source_types = {source["source_type"] for source in system.get("sources") or ()}
        on_network = SourceType.NETWORK.value in source_types
        on_satellite = SourceType.SATELLITE.value in source_types
        on_openshift = SourceType.OPENSHIFT.value in source_types
        if not (system.get("is_redhat") or on_satellite or on_openshift):
            counts["instances_not_redhat"] += 1
            continue

        if not system.get("cpu_core_count") and (on_network or on_satellite):
            # only network and satellite sources tell cores; the others are not to blame
            counts["missing_cpu_core_count"] += 1
        sockets = system.get("cpu_socket_count")
        if not sockets:
            counts["missing_cpu_socket_count"] += 1
        else:
            # some subscriptions are sold per pair of sockets
            counts["socket_pairs"] += math.ceil(sockets / 2)
        if not system.get("name"):
            counts["missing_name"] += 1
        counts["missing_system_creation_date"] += 1
        if on_network:
            counts["missing_system_purpose"] += 1
            counts["missing_pem_files"] += 1

        infrastructure = system.get("infrastructure_type")
        if _is_hypervisor(system, source_types):
            counts["instances_hypervisor"] += 1
        elif infrastructure == InfrastructureType.VIRTUALIZED.value:
            counts["instances_virtual"] += 1
        elif infrastructure == InfrastructureType.PHYSICAL.value:
            counts["instances_physical"] += 1
        else:
            counts["instances_unknown"] += 1

        if on_openshift:
            counts["openshift_cores"] += system.get("cpu_count") or 0

        cluster, host = system.get("vm_cluster"), system.get("vm_host")
        if SourceType.VCENTER.value in source_types and cluster and host:
            hosts_by_cluster.setdefault(cluster, set()).add(host)

    counts["os_by_name_and_version"] = os_versions
    counts |= _platform_counts(platform_facts)
    counts["system_creation_date_average"] = None
    if hosts_by_cluster:
        counts["vmware_vms"] = sum(len(hosts) for hosts in hosts_by_cluster.values())
        counts["vmware_hosts"] = len(hosts_by_cluster)
        counts["vmware_vm_to_host_ratio"] = counts["vmware_vms"] / counts["vmware_hosts"]
    for status, number in inspections.items():
        field = _STATUS_FIELDS.get(status, "inspect_result_status_unknown")
        counts[field] += number
    return {
        "results": {field: counts[field] for field in RESULT_FIELDS},
        "diagnostics": {field: counts[field] for field in DIAGNOSTIC_FIELDS},
    }


def _names(items: Any, key: str | None = None) -> set[str]:
    """The non-empty strings of a list (of dicts, when ``key`` names their field)."""
    if not isinstance(items, list):
        return set()
    values = (
        (item.get(key) if isinstance(item, Mapping) else None for item in items) if key else items
    )
    return {value for value in values if isinstance(value, str) and value}


def _platform_counts(platform_facts: Iterable[tuple[str, Mapping[str, Any]]]) -> dict[str, Any]:
    """The OpenShift and Ansible counts read from raw facts (see the module's docstring)."""
    counts: dict[str, Any] = dict.fromkeys(
        ("openshift_cluster_instances", "openshift_node_instances"), 0
    )
    by_kind: dict[str, int] = {}
    by_name: dict[str, int] = {}
    in_database: set[str] = set()
    in_jobs: set[str] = set()
    for source_type, facts in platform_facts:
        if source_type == SourceType.OPENSHIFT.value:
            cluster, node = facts.get("cluster"), facts.get("node")
            if isinstance(cluster, Mapping) and cluster.get("kind") == "cluster":
                counts["openshift_cluster_instances"] += 1
            elif isinstance(node, Mapping) and node.get("kind") == "node":
                counts["openshift_node_instances"] += 1
            operators = facts.get("operators")
            for operator in operators if isinstance(operators, list) else ():
                if isinstance(operator, Mapping):
                    kind = str(operator.get("kind") or UNKNOWN)
                    name = str(operator.get("name") or UNKNOWN)
                    by_kind[kind] = by_kind.get(kind, 0) + 1
                    by_name[name] = by_name.get(name, 0) + 1
        elif source_type == SourceType.ANSIBLE.value:
            in_database |= _names(facts.get("hosts"), "name")
            jobs = facts.get("jobs")
            in_jobs |= _names(jobs.get("unique_hosts") if isinstance(jobs, Mapping) else None)
    counts["openshift_operators_by_kind"] = by_kind
    counts["openshift_operators_by_name"] = by_name
    counts["ansible_hosts_in_database"] = len(in_database)
    counts["ansible_hosts_in_jobs"] = len(in_jobs)
    counts["ansible_hosts_all"] = len(in_database | in_jobs)
    return counts
