"""Fingerprints: one system as one source saw it, mapped from raw facts to the common fields.

Input contract: the raw facts each collector emits, one dict per system. Any fact may be
missing or null, which means unknown; a fingerprint field is then null, never guessed.

network (SSH inspection; the ingest adds ``system``, the address it was reached at, and
``has_sudo``, whether the facts were read with sudo)::

    uname_hostname -> name              etc_release_name -> os_name, is_redhat
    etc_release_release -> os_release   etc_release_version -> os_version
    uname_processor -> architecture     etc_machine_id -> etc_machine_id
    cpu_count, cpu_socket_count, cpu_core_count, system_memory_bytes -> same names
    dmi_system_uuid -> bios_uuid        cloud_provider -> cloud_provider
    virt_what_type, virt_type -> infrastructure_type, virtualized_type
    ifconfig_ip_addresses (list) -> ip_addresses
    ifconfig_mac_addresses (list) -> mac_addresses
    redhat_packages_gpg_num_rh_packages -> redhat_package_count, is_redhat
    subman_consumed (list of {name, ...}) -> installed_products
    subscription_manager_id (optional: only when the collector reads it) -> same name
    system_last_checkin_date -> same name
    kept in the details report only: uname_kernel, cpu_model_name, dmi_bios_vendor,
    dmi_system_manufacturer, dmi_system_product_name, installed_packages_count,
    system_user_count, ssh_authorized_keys, sshd_config, ssh_host_keys

vcenter (one dict per virtual machine, or per ESXi host)::

    vm.dns_name, or vm.name without it -> name
    vm.os -> os_release, is_redhat      vm.cpu_count -> cpu_count
    vm.memory_size (GB, may be fractional) -> system_memory_bytes
    vm.uuid (the BIOS UUID) -> bios_uuid, vm_uuid
    vm.ip_addresses -> ip_addresses     vm.mac_addresses -> mac_addresses
    vm.state -> vm_state                vm.dns_name -> vm_dns_name
    vm.host.name -> vm_host             vm.host.cpu_count (sockets) -> vm_host_socket_count
    vm.host.cpu_cores -> vm_host_core_count
    vm.host.cpu_threads -> vm_host_cpu_threads
    vm.cluster -> vm_cluster            vm.datacenter -> vm_datacenter
    vm.last_check_in -> system_last_checkin_date
    (a VM record: infrastructure_type "virtualized", virtualized_type "vmware", with a
    null raw_fact_key since no fact is read)

    a record with host.name or host.uuid and no vm.* fact is an ESXi host:
    host.name -> name                   host.uuid (the BIOS UUID) -> bios_uuid
    host.os, or "VMware ESXi" without it -> os_name
    host.version -> os_version, and os_release as "<os_name> <version>"
    host.cpu_count (packages) -> cpu_socket_count
    host.cpu_cores -> cpu_core_count    host.cpu_threads -> cpu_count
    host.memory_size (GB, may be fractional) -> system_memory_bytes
    (infrastructure_type "physical": the hypervisor runs on its own hardware; is_redhat
    false, ESXi is no Red Hat system; vm_* fields stay null, the host is no VM; kept in the
    details report only: host.cluster, host.datacenter, host.vm_count)

satellite (one dict per host)::

    hostname -> name                    os_name -> os_name, is_redhat
    os_release, os_version, architecture -> same names
    os_release -> is_redhat when os_name is missing
    cores -> cpu_count and cpu_core_count (Satellite reports one CPU figure)
    num_sockets -> cpu_socket_count     is_virtualized -> infrastructure_type
    virt_type (of a virtualized host only) -> virtualized_type
    subscription_manager_id, or uuid without it -> subscription_manager_id
    ip_addresses, mac_addresses -> same names
    entitlements (list of {name, ...}) -> installed_products
    last_checkin_time -> system_last_checkin_date
    kept in the details report only: kernel_version, num_virtual_guests, virtual,
    virtual_host_name, virtual_host_uuid, errata_out_of_date, packages_out_of_date,
    registration_time, organization, location

Derived values follow the established discovery tool: ``virt_what_type`` "bare metal" is
physical, any other virt-what answer or a ``virt_type`` is virtualized, neither is unknown
(null here, "unknown" in the deployments report). ``is_redhat`` is true when the OS name says
Red Hat (or RHEL) or when Red Hat signed packages are installed; false when the OS is known
and is something else; null when nothing tells. Strings are stripped and placeholders
(``Not Settable``, ``unknown``, all-zero UUIDs and MACs...) read as null: see ``values``.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping
from typing import Any

from quipu.domain.errors import InvalidInput
from quipu.domain.source_types import source_type_of
from quipu.domain.states import SourceType
from quipu.reports import values as v
from quipu.reports.fields import (
    FIELD_INDEX,
    FIELDS,
    Draft,
    InfrastructureType,
    names_red_hat,
)
from quipu.reports.readers import ansible, openshift, rhacs

_GIB = 1024**3
_ESXI = "VMware ESXi"


@dataclasses.dataclass(frozen=True, slots=True)
class Fingerprint:
    """One system as one source saw it: a value and its raw fact key for every field.

    ``values`` and ``raw_fact_keys`` are aligned with ``FIELDS``: a tuple costs a fraction of
    a dict, which matters when a report holds a fingerprint for each of 100,000 systems.
    """

    source_name: str
    source_type: SourceType
    has_sudo: bool
    values: tuple[Any, ...]
    raw_fact_keys: tuple[str | None, ...]

    def get(self, field: str) -> Any:
        """The value of ``field``, or None when this source did not tell it."""
        return self.values[FIELD_INDEX[field]]

    def raw_fact_key(self, field: str) -> str | None:
        """The raw fact ``field`` was read from (None when unset or implied by the source)."""
        return self.raw_fact_keys[FIELD_INDEX[field]]

    def known(self) -> dict[str, Any]:
        """The fields this source told, by name."""
        return {
            name: value
            for name, value in zip(FIELDS, self.values, strict=True)
            if value is not None
        }


@functools.lru_cache(maxsize=4096)
def _shared(raw_keys: tuple[str | None, ...]) -> tuple[str | None, ...]:
    """One tuple object per distinct key layout: most systems of a source share it."""
    return raw_keys


def _read_network(facts: Mapping[str, Any], draft: Draft) -> None:
    draft.read("name", facts, "uname_hostname", v.text)
    draft.read("os_name", facts, "etc_release_name", v.text)
    draft.read("os_release", facts, "etc_release_release", v.text)
    draft.read("os_version", facts, "etc_release_version", v.text)
    draft.read("architecture", facts, "uname_processor", v.text)
    draft.read("etc_machine_id", facts, "etc_machine_id", v.machine_id)
    for field in ("cpu_count", "cpu_socket_count", "cpu_core_count", "system_memory_bytes"):
        draft.read(field, facts, field, v.count)
    draft.read("bios_uuid", facts, "dmi_system_uuid", v.system_uuid)
    draft.read("subscription_manager_id", facts, "subscription_manager_id", v.system_uuid)
    draft.read("cloud_provider", facts, "cloud_provider", v.text)
    draft.read("ip_addresses", facts, "ifconfig_ip_addresses", v.ip_addresses)
    draft.read("mac_addresses", facts, "ifconfig_mac_addresses", v.macs)
    draft.read("installed_products", facts, "subman_consumed", v.product_names)
    draft.read("system_last_checkin_date", facts, "system_last_checkin_date", v.timestamp)

    virt_what = v.first_line(facts.get("virt_what_type"))
    virt_type = v.text(facts.get("virt_type"))
    if virt_what is not None and virt_what.lower() == "bare metal":
        draft.put("infrastructure_type", InfrastructureType.PHYSICAL.value, "virt_what_type")
    elif virt_what is not None or virt_type is not None:
        raw_key = "virt_what_type" if virt_what is not None else "virt_type"
        draft.put("infrastructure_type", InfrastructureType.VIRTUALIZED.value, raw_key)
        draft.put("virtualized_type", virt_what, "virt_what_type")
        # virt_type names the hypervisor more precisely than virt-what's first layer does.
        draft.put("virtualized_type", virt_type, "virt_type")

    release_name = v.text(facts.get("etc_release_name"))
    rh_key = "redhat_packages_gpg_num_rh_packages"
    rh_packages = v.count(facts.get(rh_key))
    draft.put("redhat_package_count", rh_packages, rh_key)
    if release_name is not None and names_red_hat(release_name):
        draft.put("is_redhat", True, "etc_release_name")
    elif rh_packages:
        draft.put("is_redhat", True, rh_key)
    elif release_name is not None:
        draft.put("is_redhat", False, "etc_release_name")
    elif rh_packages == 0:
        draft.put("is_redhat", False, rh_key)


def _is_vcenter_host(facts: Mapping[str, Any]) -> bool:
    # VM records carry their host's facts as vm.host.*, never host.*: the first test
    # settles almost every record.
    return ("host.name" in facts or "host.uuid" in facts) and not any(
        key.startswith("vm.") for key in facts
    )


def _read_vcenter(facts: Mapping[str, Any], draft: Draft) -> None:
    if _is_vcenter_host(facts):
        _read_vcenter_host(facts, draft)
    else:
        _read_vcenter_vm(facts, draft)


def _read_vcenter_host(facts: Mapping[str, Any], draft: Draft) -> None:
    draft.read("name", facts, "host.name", v.text)
    os_name = v.text(facts.get("host.os"))
    os_key = "host.os" if os_name is not None else None
    os_name = os_name or _ESXI
    draft.put("os_name", os_name, os_key)
    version = v.text(facts.get("host.version"))
    draft.put("os_version", version, "host.version")
    draft.put("os_release", None if version is None else f"{os_name} {version}", "host.version")
    draft.put("is_redhat", names_red_hat(os_name), os_key)
    draft.read("cpu_socket_count", facts, "host.cpu_count", v.count)
    draft.read("cpu_core_count", facts, "host.cpu_cores", v.count)
    draft.read("cpu_count", facts, "host.cpu_threads", v.count)
    memory_gib = v.number(facts.get("host.memory_size"))
    if memory_gib is not None:
        draft.put("system_memory_bytes", round(memory_gib * _GIB), "host.memory_size")
    draft.put("infrastructure_type", InfrastructureType.PHYSICAL.value, None)
    draft.read("bios_uuid", facts, "host.uuid", v.system_uuid)


def _read_vcenter_vm(facts: Mapping[str, Any], draft: Draft) -> None:
    draft.read("name", facts, "vm.name", v.text)
    draft.read("name", facts, "vm.dns_name", v.text)
    draft.read("os_release", facts, "vm.os", v.text)
    vm_os = v.text(facts.get("vm.os"))
    draft.put("is_redhat", None if vm_os is None else names_red_hat(vm_os), "vm.os")
    draft.read("cpu_count", facts, "vm.cpu_count", v.count)
    memory_gib = v.number(facts.get("vm.memory_size"))
    if memory_gib is not None:
        draft.put("system_memory_bytes", round(memory_gib * _GIB), "vm.memory_size")
    draft.put("infrastructure_type", InfrastructureType.VIRTUALIZED.value, None)
    draft.put("virtualized_type", "vmware", None)
    draft.read("bios_uuid", facts, "vm.uuid", v.system_uuid)
    draft.read("vm_uuid", facts, "vm.uuid", v.system_uuid)
    draft.read("ip_addresses", facts, "vm.ip_addresses", v.ip_addresses)
    draft.read("mac_addresses", facts, "vm.mac_addresses", v.macs)
    draft.read("vm_state", facts, "vm.state", v.text)
    draft.read("vm_dns_name", facts, "vm.dns_name", v.text)
    draft.read("vm_host", facts, "vm.host.name", v.text)
    draft.read("vm_host_socket_count", facts, "vm.host.cpu_count", v.count)
    draft.read("vm_host_core_count", facts, "vm.host.cpu_cores", v.count)
    draft.read("vm_host_cpu_threads", facts, "vm.host.cpu_threads", v.count)
    draft.read("vm_cluster", facts, "vm.cluster", v.text)
    draft.read("vm_datacenter", facts, "vm.datacenter", v.text)
    draft.read("system_last_checkin_date", facts, "vm.last_check_in", v.timestamp)


def _read_satellite(facts: Mapping[str, Any], draft: Draft) -> None:
    draft.read("name", facts, "hostname", v.text)
    draft.read("os_name", facts, "os_name", v.text)
    draft.read("os_release", facts, "os_release", v.text)
    draft.read("os_version", facts, "os_version", v.text)
    draft.read("architecture", facts, "architecture", v.text)
    draft.read("cpu_count", facts, "cores", v.count)
    draft.read("cpu_core_count", facts, "cores", v.count)
    draft.read("cpu_socket_count", facts, "num_sockets", v.count)
    draft.read("subscription_manager_id", facts, "uuid", v.system_uuid)
    draft.read("subscription_manager_id", facts, "subscription_manager_id", v.system_uuid)
    draft.read("ip_addresses", facts, "ip_addresses", v.ip_addresses)
    draft.read("mac_addresses", facts, "mac_addresses", v.macs)
    draft.read("installed_products", facts, "entitlements", v.product_names)
    draft.read("system_last_checkin_date", facts, "last_checkin_time", v.timestamp)
    virtualized = v.flag(facts.get("is_virtualized"))
    if virtualized is not None:
        kind = InfrastructureType.VIRTUALIZED if virtualized else InfrastructureType.PHYSICAL
        draft.put("infrastructure_type", kind.value, "is_virtualized")
    if virtualized:
        # A physical host's virt_type reads "Not Applicable": it names no hypervisor.
        draft.read("virtualized_type", facts, "virt_type", v.text)
    os_name = v.text(facts.get("os_name"))
    os_release = v.text(facts.get("os_release"))
    if os_name is not None:
        draft.put("is_redhat", names_red_hat(os_name), "os_name")
    elif os_release is not None:
        draft.put("is_redhat", names_red_hat(os_release), "os_release")


Reader = Callable[[Mapping[str, Any], Draft], bool | None]
"""Fills a draft from one system's raw facts. A reader returns False when the facts describe
no system of the deployments report (a cluster's own record, say): they make no fingerprint
and stay in the details report only."""

READERS: Mapping[SourceType, Reader] = {
    SourceType.NETWORK: _read_network,
    SourceType.VCENTER: _read_vcenter,
    SourceType.SATELLITE: _read_satellite,
    SourceType.OPENSHIFT: openshift.read,
    SourceType.ANSIBLE: ansible.read,
    SourceType.RHACS: rhacs.read,
}


def fingerprint(
    *, source_name: str, source_type: str, facts: Mapping[str, Any]
) -> Fingerprint | None:
    """The fingerprint of one system's raw facts as reported by a source of ``source_type``;
    None when its reader says the facts describe no system."""
    kind = source_type_of(source_type)
    if not isinstance(facts, Mapping):
        raise InvalidInput(
            f"Facts from source {source_name!r} must be an object per system, "
            f"not {type(facts).__name__}.",
            field="facts",
        )
    draft = Draft()
    if READERS[kind](facts, draft) is False:
        return None
    has_sudo = kind == SourceType.NETWORK and v.flag(facts.get("has_sudo")) is True
    return Fingerprint(
        source_name=source_name,
        source_type=kind,
        has_sudo=has_sudo,
        values=tuple(draft.values),
        raw_fact_keys=_shared(tuple(draft.raw_keys)),
    )
