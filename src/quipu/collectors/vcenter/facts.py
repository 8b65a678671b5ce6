"""vCenter facts: the raw facts of each VM and ESXi host, and the system key of each.

VM facts keep the established discovery server's names, so reports of both merge::

    vm.name           name                          the inventory name
    vm.uuid           summary.config.uuid           the BIOS UUID
    vm.state          summary.runtime.powerState    poweredOn, poweredOff or suspended
    vm.is_template    summary.config.template       true for a template
    vm.os             summary.config.guestFullName  the configured guest OS
    vm.dns_name       summary.guest.hostName        as VMware Tools reports it
    vm.cpu_count      summary.config.numCpu         virtual CPUs
    vm.memory_size    summary.config.memorySizeMB   in GB, a float: 512 MB is 0.5
    vm.ip_addresses   guest.net                     IPv4 addresses, in vCenter's order
    vm.mac_addresses  guest.net                     MACs of the NICs backed by a virtual adapter
    vm.last_check_in  (the time of the inspection)  UTC "YYYY-MM-DD HH:MM:SS", powered-on VMs only
    vm.host.name, vm.host.uuid, vm.host.cpu_count, vm.host.cpu_cores, vm.host.cpu_threads,
    vm.cluster, vm.datacenter                       those of the host the VM is registered on

ESXi host facts::

    host.name         name
    host.uuid         hardware.systemInfo.uuid      the BIOS UUID
    host.cpu_count    summary.hardware.numCpuPkgs   CPU packages (sockets)
    host.cpu_cores    summary.hardware.numCpuCores
    host.cpu_threads  summary.hardware.numCpuThreads
    host.memory_size  summary.hardware.memorySize   in GB, a float (bytes / 2**30)
    host.os           summary.config.product.name   "VMware ESXi"
    host.version      summary.config.product.version  e.g. "8.0.2"
    host.cluster      the cluster holding the host (absent for a standalone host)
    host.datacenter   the datacenter holding it
    host.vm_count     VMs registered on the host, templates included

A value vCenter does not know is left out, never guessed. Three differences from the
established server: memory sizes keep their fraction (it truncates to whole GB); a NIC's MAC
address is reported even when the guest reports no IP address on it (a powered-off VM's
NICs still identify it); a standalone host has no ``host.cluster`` (it reports the host's
own compute resource as its cluster).

System keys: a system is keyed by its name, a VM's or a host's as vCenter shows it. A name
that more than one system of the inventory holds (two VMs, or a VM and a host) would make
one key for several systems, so each of them is keyed ``name (managed object id)`` instead,
e.g. ``web01 (vm-42)``; a system without a name is keyed by its managed object id. The rule
depends only on the inventory, so connection and inspection give the same keys.
"""

from __future__ import annotations

import array
import dataclasses
import hashlib
import itertools
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

MB_PER_GB = 1024
BYTES_PER_GB = 1024**3
CHECK_IN_FORMAT = "%Y-%m-%d %H:%M:%S"

_GUEST_ONLY_NIC = "-1"
"""``deviceConfigId`` of an interface the guest reports that no virtual adapter backs."""


def _digest(name: str) -> int:
    # A stable 64-bit digest (str hashes differ from one process to the next): two names of
    # 100,000 systems share one with a chance of about 3 in 10 billion.
    raw = hashlib.blake2b(name.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(raw, "little")


class SystemNames:
    """The names of an inventory's systems, to key each system uniquely (see module doc).

    Only a digest of each name is kept, 8 bytes a system, so that inventorying 100,000 VMs
    does not hold 100,000 names.
    """

    __slots__ = ("_digests", "_shared")

    def __init__(self) -> None:
        self._digests = array.array("Q")
        self._shared: frozenset[int] | None = frozenset()

    def add(self, name: str | None) -> None:
        if name:
            self._digests.append(_digest(name))
            self._shared = None

    def key(self, *, name: str | None, moid: str) -> str:
        """The system key of the system named ``name`` with managed object id ``moid``."""
        if not name:
            return moid
        return f"{name} ({moid})" if _digest(name) in self._shared_digests() else name

    def _shared_digests(self) -> frozenset[int]:
        if self._shared is None:
            ordered = sorted(self._digests)
            self._shared = frozenset(a for a, b in itertools.pairwise(ordered) if a == b)
        return self._shared


@dataclasses.dataclass(frozen=True, slots=True)
class Place:
    """Where a host sits: its cluster (None when standalone) and datacenter."""

    cluster: str | None
    datacenter: str | None


def _known(facts: Mapping[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in facts.items() if value is not None}


def _gigabytes(amount: Any, per_gb: int) -> float | None:
    # Dividing by a power of two is exact in binary floating point: no rounding is needed.
    return amount / per_gb if isinstance(amount, int) and amount >= 0 else None


def host_facts(props: Mapping[str, Any], *, place: Place, vm_count: int) -> dict[str, Any]:
    """The facts of one ESXi host from its properties (see ``HOST_PROPERTIES``)."""
    return _known(
        {
            "host.name": props.get("name"),
            "host.uuid": props.get("hardware.systemInfo.uuid"),
            "host.cpu_count": props.get("summary.hardware.numCpuPkgs"),
            "host.cpu_cores": props.get("summary.hardware.numCpuCores"),
            "host.cpu_threads": props.get("summary.hardware.numCpuThreads"),
            "host.memory_size": _gigabytes(props.get("summary.hardware.memorySize"), BYTES_PER_GB),
            "host.os": props.get("summary.config.product.name"),
            "host.version": props.get("summary.config.product.version"),
            "host.cluster": place.cluster,
            "host.datacenter": place.datacenter,
            "host.vm_count": vm_count,
        }
    )


def vm_host_facts(host: Mapping[str, Any]) -> dict[str, Any]:
    """The facts a VM takes from the facts of its host."""
    return _known(
        {
            "vm.host.name": host.get("host.name"),
            "vm.host.uuid": host.get("host.uuid"),
            "vm.host.cpu_count": host.get("host.cpu_count"),
            "vm.host.cpu_cores": host.get("host.cpu_cores"),
            "vm.host.cpu_threads": host.get("host.cpu_threads"),
            "vm.cluster": host.get("host.cluster"),
            "vm.datacenter": host.get("host.datacenter"),
        }
    )


def vm_facts(
    props: Mapping[str, Any], *, host: Mapping[str, Any] | None, now: datetime
) -> dict[str, Any]:
    """The facts of one VM from its properties (see ``VM_PROPERTIES``) and its host's facts.

    ``now`` is the time of the inspection, in UTC.
    """
    state = props.get("summary.runtime.powerState")
    macs, addresses = nic_addresses(props.get("guest.net") or ())
    facts = _known(
        {
            "vm.name": props.get("name"),
            "vm.uuid": props.get("summary.config.uuid"),
            "vm.state": state,
            "vm.is_template": props.get("summary.config.template"),
            "vm.os": props.get("summary.config.guestFullName"),
            "vm.dns_name": props.get("summary.guest.hostName"),
            "vm.cpu_count": props.get("summary.config.numCpu"),
            "vm.memory_size": _gigabytes(props.get("summary.config.memorySizeMB"), MB_PER_GB),
            "vm.ip_addresses": addresses or None,
            "vm.mac_addresses": macs or None,
            "vm.last_check_in": now.strftime(CHECK_IN_FORMAT) if state == "poweredOn" else None,
        }
    )
    if host is not None:
        facts.update(vm_host_facts(host))
    return facts


def _first(fields: Any, name: str) -> Any:
    """The first value of a data object's field (see ``soap``), or None."""
    values = fields.get(name) if isinstance(fields, Mapping) else None
    return values[0] if values else None


def nic_addresses(nics: Iterable[Any]) -> tuple[list[str], list[str]]:
    """The MAC addresses and IPv4 addresses of a VM's NICs (``guest.net``), without repeats.

    Interfaces that only the guest knows (a bridge, a VPN tunnel: no virtual adapter backs
    them) are skipped: their addresses do not identify the VM.
    """
    macs: dict[str, None] = {}
    addresses: dict[str, None] = {}
    for nic in nics:
        if _first(nic, "deviceConfigId") == _GUEST_ONLY_NIC:
            continue
        mac = _first(nic, "macAddress")
        if mac:
            macs[mac] = None
        config = _first(nic, "ipConfig")
        if config is not None and config.get("ipAddress"):
            listed = [_first(entry, "ipAddress") for entry in config["ipAddress"]]
        else:
            listed = nic.get("ipAddress") or []
        for address in listed:
            if address and ":" not in address:
                addresses[address] = None
    return list(macs), list(addresses)
