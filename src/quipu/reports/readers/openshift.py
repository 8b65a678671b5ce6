"""openshift facts -> fingerprint fields (see quipu.reports.fingerprint for the contract).

A node's record (``{"node": {...}}``, see ``quipu.collectors.openshift.facts``) is one
system; raw fact keys are written ``node__<fact>`` as the established tool writes them::

    node.name -> name
    node.capacity.cpu -> cpu_count (whole cores)
    node.capacity.memory_in_bytes -> system_memory_bytes
    node.architecture -> architecture (Kubernetes' names in uname's: amd64 -> x86_64,
                         arm64 -> aarch64; others as given)
    node.machine_id -> etc_machine_id
    node.system_uuid -> bios_uuid (lower-case, placeholders dropped)
    node.addresses (InternalIP and ExternalIP ones) -> ip_addresses
    node.cluster_uuid -> vm_cluster (the cluster the node belongs to)
    node.os_image -> os_release, is_redhat (Red Hat Enterprise Linux CoreOS is Red Hat)
    node.provider_id -> infrastructure_type, virtualized_type, cloud_provider:
        vsphere:// virtualized, vmware        aws:// azure:// gce:// virtualized, that cloud
        openstack:// virtualized, openstack   ovirt:// virtualized, rhev
        kubevirt:// virtualized, kvm          baremetalhost:// metal3:// physical
        (any other platform, or none: unknown)
    kept in the details report only: creation_timestamp, labels, roles, allocatable,
    capacity.pods, kernel_version, operating_system, taints

The cluster's own record (``{"cluster": ..., "operators": ..., "namespaces": ...}``)
describes no system of the deployments report: it stays in the details report.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from quipu.reports import values as v
from quipu.reports.fields import Draft, InfrastructureType, names_red_hat

ARCHITECTURES = {"amd64": "x86_64", "arm64": "aarch64"}
"""Kubernetes' (Go's) architecture names and the ones uname and the other sources report."""

ADDRESS_TYPES = frozenset({"InternalIP", "ExternalIP"})

_VIRTUALIZED, _PHYSICAL = InfrastructureType.VIRTUALIZED.value, InfrastructureType.PHYSICAL.value
PLATFORMS: Mapping[str, tuple[str, str | None, str | None]] = {
    # providerID scheme: (infrastructure_type, virtualized_type, cloud_provider)
    "vsphere": (_VIRTUALIZED, "vmware", None),
    "aws": (_VIRTUALIZED, None, "aws"),
    "azure": (_VIRTUALIZED, None, "azure"),
    "gce": (_VIRTUALIZED, None, "gcp"),
    "openstack": (_VIRTUALIZED, "openstack", None),
    "ovirt": (_VIRTUALIZED, "rhev", None),
    "kubevirt": (_VIRTUALIZED, "kvm", None),
    "baremetalhost": (_PHYSICAL, None, None),
    "metal3": (_PHYSICAL, None, None),
}
"""What a node's spec.providerID says of the machine it runs on, by its scheme."""


def _key(fact: str) -> str:
    return f"node__{fact}"


def architecture(value: Any) -> str | None:
    name = v.text(value)
    return None if name is None else ARCHITECTURES.get(name.lower(), name)


def ip_addresses(value: Any) -> tuple[str, ...] | None:
    """The node's InternalIP and ExternalIP addresses (its Hostname entry is a name)."""
    if not isinstance(value, list):
        return None
    return v.ip_addresses(
        [
            a.get("address")
            for a in value
            if isinstance(a, Mapping) and a.get("type") in ADDRESS_TYPES
        ]
    )


def cpu_count(value: Any) -> int | None:
    cores = v.number(value)
    return None if cores is None else int(cores)


def read(facts: Mapping[str, Any], draft: Draft) -> bool | None:
    """A node's record fills the draft; any other record is no system."""
    node = facts.get("node")
    if not isinstance(node, Mapping):
        return False
    capacity = node.get("capacity")
    capacity = capacity if isinstance(capacity, Mapping) else {}
    draft.put("name", v.text(node.get("name")), _key("name"))
    draft.put("cpu_count", cpu_count(capacity.get("cpu")), _key("capacity__cpu"))
    draft.put(
        "system_memory_bytes",
        v.count(capacity.get("memory_in_bytes")),
        _key("capacity__memory_in_bytes"),
    )
    draft.put("architecture", architecture(node.get("architecture")), _key("architecture"))
    draft.put("etc_machine_id", v.machine_id(node.get("machine_id")), _key("machine_id"))
    draft.put("bios_uuid", v.system_uuid(node.get("system_uuid")), _key("system_uuid"))
    draft.put("ip_addresses", ip_addresses(node.get("addresses")), _key("addresses"))
    draft.put("vm_cluster", v.text(node.get("cluster_uuid")), _key("cluster_uuid"))
    os_image = v.text(node.get("os_image"))
    draft.put("os_release", os_image, _key("os_image"))
    if os_image is not None:
        draft.put("is_redhat", names_red_hat(os_image), _key("os_image"))
    provider = v.text(node.get("provider_id"))
    platform = PLATFORMS.get(provider.split(":", 1)[0].lower()) if provider else None
    if platform is not None:
        infrastructure, virtualized, cloud = platform
        draft.put("infrastructure_type", infrastructure, _key("provider_id"))
        draft.put("virtualized_type", virtualized, _key("provider_id"))
        draft.put("cloud_provider", cloud, _key("provider_id"))
    return None
