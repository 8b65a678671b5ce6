"""The merge rules: which fingerprints are one system, and which value each field keeps.

Grouping runs in three stages, each indexing fingerprints by key in dicts (never comparing
all pairs), so a report over 100,000 systems costs time and memory in proportion to them:

1. Deduplicate within a source type (union-find; any shared identity key joins):
   network by the pair (etc_machine_id, bios_uuid), or by an identical set of MAC addresses
   with no different machine id
   (the same host reached at two addresses, with or without sudo); satellite by
   subscription_manager_id; vcenter VMs by vm_uuid together with the MAC set, since a copied
   VM can keep its BIOS UUID but is given new MACs, and ESXi hosts by their BIOS UUID.
2. Join network systems with satellite hosts: by subscription_manager_id, then by MAC.
3. Join the result with vCenter VMs and ESXi hosts: by bios_uuid (a VM's is its vm_uuid),
   then by MAC.

A cross-type join is one-to-one and never guesses: a key held by two systems on the same
side identifies no one and is ignored; a system whose keys point at two partners, or a
partner claimed by two systems, is left unjoined. A duplicated row is a smaller harm than
two real systems folded into one. Placeholder values (see ``values``) never become keys,
and IP addresses are never keys: NAT and DHCP hand one address to many systems.

Each field of a merged system then comes from its members by its rule: lists are unioned
and sorted; ``system_last_checkin_date`` keeps the latest; every other field keeps the first
non-null value in the field's source-type priority (``FIELD_PRIORITY``), then a value read
with sudo before one read without, then by source name, then by the smallest value, so the
result never depends on the order the facts arrived in.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from quipu.domain.states import SourceType
from quipu.reports import values as v
from quipu.reports.fields import FIELD_INDEX, FIELDS, LIST_FIELDS, InfrastructureType
from quipu.reports.fingerprint import Fingerprint

_N, _S, _V = SourceType.NETWORK, SourceType.SATELLITE, SourceType.VCENTER
_O, _A, _R = SourceType.OPENSHIFT, SourceType.ANSIBLE, SourceType.RHACS
_PLATFORMS = (_O, _A, _R)
"""Platforms that know a system as what runs on it (a cluster node, a controller, a Central),
after the sources that know the system itself."""

DEFAULT_PRIORITY: tuple[SourceType, ...] = (_N, _S, _V, *_PLATFORMS)
"""The guest's own answer first (network), then its registration, then its hypervisor."""

_HYPERVISOR_FIRST = (_V, _N, _S, *_PLATFORMS)
_REGISTRATION_FIRST = (_S, _N, _V, *_PLATFORMS)

FIELD_PRIORITY: Mapping[str, tuple[SourceType, ...]] = {
    **dict.fromkeys(FIELDS, DEFAULT_PRIORITY),
    # The hypervisor allocates a VM's virtual hardware, so it knows it best; a guest's own
    # MemTotal also hides the memory its kernel reserved.
    "cpu_count": _HYPERVISOR_FIRST,
    "cpu_socket_count": _HYPERVISOR_FIRST,
    "cpu_core_count": _HYPERVISOR_FIRST,
    "system_memory_bytes": _HYPERVISOR_FIRST,
    "infrastructure_type": _HYPERVISOR_FIRST,
    "virtualized_type": _HYPERVISOR_FIRST,
    # Satellite holds the registration itself; a guest may carry a stale identity.
    "subscription_manager_id": _REGISTRATION_FIRST,
    "installed_products": _REGISTRATION_FIRST,
    # The cluster a node belongs to: only OpenShift knows a node's cluster; a VM's vCenter
    # cluster is the other meaning of the field and comes next.
    "vm_cluster": (_O, _V, _N, _S, _A, _R),
}
"""For each field, the source types in the order their values win."""

LATEST_FIELDS = frozenset({"system_last_checkin_date"})
"""Fields where the most recent value wins, whichever source reported it."""

_RANKS: Mapping[str, Mapping[SourceType, int]] = {
    field: {kind: rank for rank, kind in enumerate(order)}
    for field, order in FIELD_PRIORITY.items()
}
_LIST_SORT_KEYS: Mapping[str, Callable[[str], Any]] = {"ip_addresses": v.ip_sort_key}

KeyFunction = Callable[[Fingerprint], Iterable[Hashable]]
Group = list[int]
"""Positions of the fingerprints that are one system."""


@dataclasses.dataclass(frozen=True, slots=True)
class Choice:
    """The value a merged field keeps and the fingerprint it came from."""

    value: Any
    origin: Fingerprint


Rank = tuple[int, bool, str]
Ranked = list[tuple[Rank, Fingerprint]]


def _ranked(field: str, members: Sequence[Fingerprint]) -> Ranked:
    """Members in the order their values of ``field`` win: type priority, sudo, source name."""
    ranks = _RANKS[field]
    return sorted(
        (((ranks[fp.source_type], not fp.has_sudo, fp.source_name), fp) for fp in members),
        key=lambda item: item[0],
    )


def choose(field: str, members: Sequence[Fingerprint]) -> Choice | None:
    """The value ``field`` keeps when ``members`` are merged; None when no member knows it."""
    return _choose_ranked(field, _ranked(field, members))


def _choose_ranked(field: str, ranked: Ranked) -> Choice | None:
    index = FIELD_INDEX[field]
    if field in LATEST_FIELDS:
        return _choose_latest(index, ranked)
    best: Fingerprint | None = None
    best_rank: Rank | None = None
    best_value: Any = None
    contributors = 0
    for rank, fp in ranked:
        value = fp.values[index]
        if value is None:
            continue
        contributors += 1
        if best is None:
            best, best_rank, best_value = fp, rank, value
        elif rank == best_rank and value < best_value:
            best, best_value = fp, value
    if best is None:
        return None
    if field in LIST_FIELDS and contributors > 1:
        union = {
            item for _, fp in ranked if fp.values[index] is not None for item in fp.values[index]
        }
        return Choice(tuple(sorted(union, key=_LIST_SORT_KEYS.get(field))), best)
    return Choice(best_value, best)


def _choose_latest(index: int, ranked: Ranked) -> Choice | None:
    known = [(rank, fp, fp.values[index]) for rank, fp in ranked if fp.values[index] is not None]
    if not known:
        return None
    moments = {value: datetime.fromisoformat(value) for _, _, value in known}
    newest = max(moments.values())
    _, origin, value = min(
        (item for item in known if moments[item[2]] == newest), key=lambda item: (item[0], item[2])
    )
    return Choice(value, origin)


def _provenance(
    fp: Fingerprint, field: str, shared: dict[tuple[Any, ...], dict[str, Any]]
) -> dict[str, Any]:
    raw_key = fp.raw_fact_key(field)
    key = (fp.source_name, fp.source_type, raw_key, fp.has_sudo)
    entry = shared.get(key)
    if entry is None:
        entry = shared[key] = {
            "source_name": fp.source_name,
            "source_type": fp.source_type.value,
            "raw_fact_key": raw_key,
            "has_sudo": fp.has_sudo,
        }
    return entry


def merge_fingerprints(
    members: Sequence[Fingerprint], *, shared: dict[tuple[Any, ...], dict[str, Any]] | None = None
) -> dict[str, Any]:
    """One system fingerprint of the deployments report from the fingerprints of one system.

    Every field of ``FIELDS`` is present (null when unknown; ``infrastructure_type`` is then
    "unknown"), then ``sources`` (each contributing source once, sorted by type and name) and
    ``metadata``: for each field with a value, the source, raw fact key and sudo it came from.
    Metadata entries, and whole metadata dicts alike, are taken from ``shared`` when given,
    so a report over many systems holds each distinct one once: treat the result as
    read-only.
    """
    if not members:
        raise ValueError("A system fingerprint needs at least one fingerprint to merge.")
    cache: dict[tuple[Any, ...], dict[str, Any]] = {} if shared is None else shared
    deployment: dict[str, Any] = {}
    metadata: dict[str, dict[str, Any]] = {}
    if len(members) == 1:
        # Most systems are seen by one source: its values are already normalized and sorted.
        (only,) = members
        for field, value in zip(FIELDS, only.values, strict=True):
            deployment[field] = list(value) if field in LIST_FIELDS and value is not None else value
            if value is not None:
                metadata[field] = _provenance(only, field, cache)
    else:
        # Fields share a handful of priority orders: rank the members once per order.
        rankings: dict[tuple[SourceType, ...], Ranked] = {}
        for field in FIELDS:
            order = FIELD_PRIORITY[field]
            ranked = rankings.get(order)
            if ranked is None:
                ranked = rankings[order] = _ranked(field, members)
            choice = _choose_ranked(field, ranked)
            if choice is None:
                deployment[field] = None
                continue
            deployment[field] = list(choice.value) if field in LIST_FIELDS else choice.value
            metadata[field] = _provenance(choice.origin, field, cache)
    if deployment["infrastructure_type"] is None:
        deployment["infrastructure_type"] = InfrastructureType.UNKNOWN.value
    contributors = sorted({(fp.source_type.value, fp.source_name) for fp in members})
    deployment["sources"] = [
        _source_entry(source_type=kind, source_name=name, shared=cache)
        for kind, name in contributors
    ]
    deployment["metadata"] = _shared_metadata(metadata, cache)
    return deployment


def _shared_metadata(
    metadata: dict[str, dict[str, Any]], shared: dict[tuple[Any, ...], dict[str, Any]]
) -> dict[str, Any]:
    """The one metadata dict for this layout: systems seen alike share the same provenance.

    Entries come from ``shared`` and live as long as it does, so their ids are stable keys.
    """
    key = ("metadata", *((field, id(entry)) for field, entry in metadata.items()))
    found = shared.get(key)
    if found is None:
        found = shared[key] = metadata
    return found


def _source_entry(
    *, source_type: str, source_name: str, shared: dict[tuple[Any, ...], dict[str, Any]]
) -> dict[str, Any]:
    key = ("source", source_type, source_name)
    entry = shared.get(key)
    if entry is None:
        entry = shared[key] = {"source_name": source_name, "source_type": source_type}
    return entry


def network_identity_keys(
    fingerprints: Sequence[Fingerprint], positions: Sequence[int]
) -> KeyFunction:
    """Keys two network fingerprints of one host share.

    A machine id alone is not enough (images cloned without resetting it share one), nor a
    BIOS UUID alone (some boards ship the same one); the pair is. The full MAC set is the key
    that still works without sudo, when dmidecode could not read the BIOS UUID. It is taken
    together with the machine id, because systems sharing one network stack (containers,
    namespaces) show the same MACs while their machine ids tell them apart; a record without
    a machine id joins by MACs only when one machine id holds that MAC set.
    """
    machine_ids: dict[Hashable, set[Any]] = {}
    for position in positions:
        fp = fingerprints[position]
        macs = v.join_macs(fp.get("mac_addresses"))
        if macs and fp.get("etc_machine_id") is not None:
            machine_ids.setdefault(macs, set()).add(fp.get("etc_machine_id"))

    def keys(fp: Fingerprint) -> list[Hashable]:
        found = machine_and_bios_keys(fp)
        machine_id = fp.get("etc_machine_id")
        macs = v.join_macs(fp.get("mac_addresses"))
        if macs:
            if machine_id is None:
                holders = machine_ids.get(macs, set())
                machine_id = next(iter(holders)) if len(holders) == 1 else None
            found.append(("macs", machine_id, macs))
        return found

    return keys


def satellite_identity_keys(fp: Fingerprint) -> list[Hashable]:
    """Keys two satellite records of one host share: its subscription id."""
    return subscription_keys(fp)


def vcenter_identity_keys(fp: Fingerprint) -> list[Hashable]:
    """Keys two vCenter records of one system share.

    A VM: its VM UUID together with its MAC set. An ESXi host (a record with a BIOS UUID
    and no VM UUID, since a VM's BIOS UUID is its VM UUID): its BIOS UUID, the one
    hardware.systemInfo.uuid its vCenter reports however it is reached.
    """
    vm_uuid = fp.get("vm_uuid")
    if vm_uuid is not None:
        return [("vm", vm_uuid, v.join_macs(fp.get("mac_addresses")))]
    host_uuid = fp.get("bios_uuid")
    return [] if host_uuid is None else [("host", host_uuid)]


def subscription_keys(fp: Fingerprint) -> list[Hashable]:
    """The subscription-manager id, when known."""
    value = fp.get("subscription_manager_id")
    return [] if value is None else [("subscription", value)]


def bios_keys(fp: Fingerprint) -> list[Hashable]:
    """The BIOS UUID (for a vCenter VM, its vm.uuid), when known."""
    value = fp.get("bios_uuid")
    return [] if value is None else [("bios", value)]


def mac_keys(fp: Fingerprint) -> list[Hashable]:
    """Each MAC address that may join records (see ``values.is_join_mac``)."""
    return [("mac", m) for m in sorted(v.join_macs(fp.get("mac_addresses")))]


def machine_and_bios_keys(fp: Fingerprint) -> list[Hashable]:
    """The machine id together with the BIOS UUID, when both are known (see
    ``network_identity_keys``: either alone may be shared by clones)."""
    machine_id, bios_uuid = fp.get("etc_machine_id"), fp.get("bios_uuid")
    if machine_id is None or bios_uuid is None:
        return []
    return [("machine-and-bios", machine_id, bios_uuid)]


def openshift_identity_keys(fp: Fingerprint) -> list[Hashable]:
    """Keys two OpenShift records of one node share: its machine id and BIOS UUID (the
    node's nodeInfo machineID and systemUUID), or its name within its cluster."""
    found = machine_and_bios_keys(fp)
    cluster, name = fp.get("vm_cluster"), fp.get("name")
    if cluster is not None and name is not None:
        found.append(("cluster-node", cluster, name))
    return found


def name_keys(fp: Fingerprint) -> list[Hashable]:
    """The name, for a platform that is one system per source (an AAP controller, an RHACS
    Central): two sources of the same server report it under the same name."""
    name = fp.get("name")
    return [] if name is None else [("name", name)]


def deduplicate(
    fingerprints: Sequence[Fingerprint], *, positions: Sequence[int], keys: KeyFunction
) -> list[Group]:
    """Groups of ``positions`` whose fingerprints share a key, directly or through others."""
    parent = list(range(len(positions)))

    def root(item: int) -> int:
        top = item
        while parent[top] != top:
            top = parent[top]
        while parent[item] != top:
            parent[item], item = top, parent[item]
        return top

    holder: dict[Hashable, int] = {}
    for local, position in enumerate(positions):
        for key in keys(fingerprints[position]):
            other = holder.setdefault(key, local)
            if other != local:
                a, b = root(local), root(other)
                if a != b:
                    parent[max(a, b)] = min(a, b)
    groups: dict[int, Group] = {}
    for local, position in enumerate(positions):
        groups.setdefault(root(local), []).append(position)
    return list(groups.values())


_AMBIGUOUS = -1


def _index_groups(
    fingerprints: Sequence[Fingerprint], groups: Sequence[Group], keys: KeyFunction
) -> dict[Hashable, int]:
    """Key -> the one group holding it, or _AMBIGUOUS when several groups hold it."""
    index: dict[Hashable, int] = {}
    for number, group in enumerate(groups):
        for key in _group_keys(fingerprints, group, keys):
            index[key] = number if index.get(key, number) == number else _AMBIGUOUS
    return index


def _group_keys(
    fingerprints: Sequence[Fingerprint], group: Group, keys: KeyFunction
) -> set[Hashable]:
    return {key for position in group for key in keys(fingerprints[position])}


def join_groups(
    fingerprints: Sequence[Fingerprint],
    *,
    bases: Sequence[Group],
    candidates: Sequence[Group],
    passes: Sequence[KeyFunction],
) -> list[Group]:
    """``bases`` with each ``candidates`` group joined to the one base it matches, if any.

    Each pass offers the still-unjoined groups one kind of key, strongest first. A key held
    by several groups on either side is ignored; a candidate joins only when its keys point
    at exactly one free base and no other candidate claims that base in the same pass.
    """
    partner: dict[int, int] = {}
    taken: set[int] = set()
    for keys in passes:
        base_index = _index_groups(fingerprints, bases, keys)
        candidate_index = _index_groups(fingerprints, candidates, keys)
        claims: dict[int, list[int]] = {}
        for number, group in enumerate(candidates):
            if number in partner:
                continue
            targets = {
                base_index[key]
                for key in _group_keys(fingerprints, group, keys)
                if candidate_index[key] == number and base_index.get(key, _AMBIGUOUS) != _AMBIGUOUS
            }
            if len(targets) == 1:
                (target,) = targets
                if target not in taken:
                    claims.setdefault(target, []).append(number)
        for target, claimants in claims.items():
            if len(claimants) == 1:
                partner[claimants[0]] = target
                taken.add(target)
    joined = [list(group) for group in bases]
    alone: list[Group] = []
    for number, group in enumerate(candidates):
        if number in partner:
            joined[partner[number]].extend(group)
        else:
            alone.append(list(group))
    return joined + alone


IdentityKeys = Callable[[Sequence[Fingerprint], Sequence[int]], KeyFunction]
"""Given all fingerprints and the positions of one source type's, the key function that
deduplicates them (a function of the whole set, as network's needs to be)."""


def _alone(keys: KeyFunction) -> IdentityKeys:
    """Identity keys that depend on one fingerprint only."""
    return lambda _fingerprints, _positions: keys


IDENTITY_KEYS: Mapping[SourceType, IdentityKeys] = {
    _N: network_identity_keys,
    _S: _alone(satellite_identity_keys),
    _V: _alone(vcenter_identity_keys),
    _O: _alone(openshift_identity_keys),
    _A: _alone(name_keys),
    _R: _alone(name_keys),
}
"""How each source type's records of one system are found (stage 1)."""

BASE_TYPE = _N
"""The source type the others are joined to: the systems' own answers."""

JOINS: tuple[tuple[SourceType, tuple[KeyFunction, ...]], ...] = (
    (_S, (subscription_keys, mac_keys)),
    (_V, (bios_keys, mac_keys)),
    # A node is joined to the same machine scanned over SSH (machine id and BIOS UUID), or
    # to its VM (the node's systemUUID is the VM's BIOS UUID). An AAP controller or an RHACS
    # Central has no identity other sources share: it stays a system of its own.
    (_O, (machine_and_bios_keys, bios_keys)),
    (_A, ()),
    (_R, ()),
)
"""In order, each source type joined to what came before, by these key passes (stages 2-3);
a type with no passes adds its systems alone. A test checks every type has its row."""


def group_fingerprints(fingerprints: Sequence[Fingerprint]) -> list[Group]:
    """A partition of the positions of ``fingerprints``: one group per real system."""
    positions: dict[SourceType, list[int]] = {kind: [] for kind in SourceType}
    for position, fp in enumerate(fingerprints):
        positions[fp.source_type].append(position)

    def deduplicated(kind: SourceType) -> list[Group]:
        keys = IDENTITY_KEYS[kind](fingerprints, positions[kind])
        return deduplicate(fingerprints, positions=positions[kind], keys=keys)

    groups = deduplicated(BASE_TYPE)
    for kind, passes in JOINS:
        groups = join_groups(
            fingerprints, bases=groups, candidates=deduplicated(kind), passes=passes
        )
    return groups
