"""The merge rules: deduplication within a source type, joins across types, field conflicts."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quipu.reports import Fingerprint, fingerprint
from quipu.reports.merge import (
    choose,
    group_fingerprints,
    merge_fingerprints,
    network_identity_keys,
)
from tests.estates import network, satellite, vcenter

UUID_A = "4221ab2c-0001-4000-8000-00000000000a"
UUID_B = "4221ab2c-0001-4000-8000-00000000000b"
SUB_A = "aaaaaaaa-0001-4000-8000-00000000000a"
SUB_B = "aaaaaaaa-0001-4000-8000-00000000000b"
MID_A = "a1" * 16
MID_B = "b2" * 16
MAC_A = "00:50:56:00:00:0a"
MAC_B = "00:50:56:00:00:0b"
MAC_C = "00:50:56:00:00:0c"


def net(source_name: str = "lab", **facts: Any) -> Fingerprint:
    return fingerprint(source_name=source_name, source_type="network", facts=network(**facts))


def sat(source_name: str = "sat", **facts: Any) -> Fingerprint:
    return fingerprint(source_name=source_name, source_type="satellite", facts=satellite(**facts))


def vc(source_name: str = "vc", **facts: Any) -> Fingerprint:
    return fingerprint(source_name=source_name, source_type="vcenter", facts=vcenter(**facts))


def node(source_name: str = "ocp", **facts: Any) -> Fingerprint:
    """An OpenShift node of cluster c-1 (``facts`` are its node facts)."""
    record = {"node": {"kind": "node", "cluster_uuid": "c-1", **facts}}
    found = fingerprint(source_name=source_name, source_type="openshift", facts=record)
    assert found is not None
    return found


def groups(*fingerprints: Fingerprint) -> list[list[int]]:
    return sorted(sorted(group) for group in group_fingerprints(fingerprints))


def merged(*fingerprints: Fingerprint) -> dict[str, Any]:
    (group,) = group_fingerprints(fingerprints)
    return merge_fingerprints([fingerprints[i] for i in group])


# Deduplication within a source type.


def test_network_records_with_same_machine_id_and_bios_uuid_are_one_system() -> None:
    assert groups(
        net(etc_machine_id=MID_A, dmi_system_uuid=UUID_A, ifconfig_mac_addresses=[MAC_A]),
        net(etc_machine_id=MID_A, dmi_system_uuid=UUID_A, ifconfig_mac_addresses=[MAC_B]),
    ) == [[0, 1]]


def test_network_records_with_the_same_mac_set_are_one_system_even_without_sudo() -> None:
    assert groups(
        net(etc_machine_id=MID_A, dmi_system_uuid=UUID_A, ifconfig_mac_addresses=[MAC_A, MAC_B]),
        net(has_sudo=False, dmi_system_uuid=None, ifconfig_mac_addresses=[MAC_B, MAC_A]),
    ) == [[0, 1]]


def test_network_machine_id_alone_does_not_join() -> None:
    assert groups(
        net(etc_machine_id=MID_A, dmi_system_uuid=UUID_A),
        net(etc_machine_id=MID_A, dmi_system_uuid=UUID_B),
        net(etc_machine_id=MID_A),
    ) == [[0], [1], [2]]


def test_network_bios_uuid_alone_does_not_join() -> None:
    assert groups(
        net(etc_machine_id=MID_A, dmi_system_uuid=UUID_A),
        net(etc_machine_id=MID_B, dmi_system_uuid=UUID_A),
    ) == [[0], [1]]


def test_network_overlapping_mac_sets_do_not_join() -> None:
    assert groups(
        net(ifconfig_mac_addresses=[MAC_A, MAC_B]),
        net(ifconfig_mac_addresses=[MAC_A, MAC_C]),
    ) == [[0], [1]]


def test_network_duplicates_join_transitively() -> None:
    assert groups(
        net(etc_machine_id=MID_A, dmi_system_uuid=UUID_A, ifconfig_mac_addresses=[MAC_A]),
        net(etc_machine_id=MID_A, dmi_system_uuid=UUID_A, ifconfig_mac_addresses=[MAC_B]),
        net(has_sudo=False, ifconfig_mac_addresses=[MAC_B]),
    ) == [[0, 1, 2]]


def test_satellite_records_with_the_same_subscription_id_are_one_system() -> None:
    assert groups(
        sat("sat1", uuid=SUB_A, hostname="a"),
        sat("sat2", uuid=SUB_A.upper(), hostname="a"),
        sat("sat2", uuid=SUB_B, hostname="b"),
    ) == [[0, 1], [2]]


def test_vcenter_records_join_on_vm_uuid_and_mac_set() -> None:
    assert groups(
        vc("vc1", vm_uuid=UUID_A, vm_mac_addresses=[MAC_A]),
        vc("vc2", vm_uuid=UUID_A, vm_mac_addresses=[MAC_A]),
    ) == [[0, 1]]


def test_vcenter_copied_vm_keeping_its_uuid_stays_apart() -> None:
    assert groups(
        vc(vm_name="original", vm_uuid=UUID_A, vm_mac_addresses=[MAC_A]),
        vc(vm_name="copy", vm_uuid=UUID_A, vm_mac_addresses=[MAC_B]),
    ) == [[0], [1]]


def esx(source_name: str = "vc", **facts: Any) -> Fingerprint:
    host_facts = {"host." + key: value for key, value in facts.items()}
    return fingerprint(source_name=source_name, source_type="vcenter", facts=host_facts)


def test_vcenter_records_of_one_esxi_host_are_one_system() -> None:
    """Two sources on one vCenter, or a host moved between two: one host, by its BIOS UUID."""
    assert groups(
        esx("vc1", name="esx1", uuid=UUID_A, vm_count=3),
        esx("vc2", name="esx1.example.com", uuid=UUID_A.upper(), vm_count=4),
        esx("vc2", name="esx2", uuid=UUID_B),
    ) == [[0, 1], [2]]


def test_an_esxi_host_and_a_vm_with_the_same_uuid_stay_apart() -> None:
    assert groups(esx(name="esx1", uuid=UUID_A), vc(vm_uuid=UUID_A)) == [[0], [1]]


def test_esxi_hosts_without_uuid_are_never_joined() -> None:
    assert groups(esx(name="esx1"), esx(name="esx1")) == [[0], [1]]


def test_network_joins_an_esxi_host_by_bios_uuid() -> None:
    assert groups(
        net(dmi_system_uuid=UUID_A, ifconfig_mac_addresses=[MAC_A]),
        esx(name="esx1", uuid=UUID_A, cpu_threads=64),
    ) == [[0, 1]]


# Joins across source types.


def test_network_joins_satellite_by_subscription_id() -> None:
    assert groups(
        net(subscription_manager_id=SUB_A, ifconfig_mac_addresses=[MAC_A]),
        sat(uuid=SUB_A, mac_addresses=[MAC_B]),
    ) == [[0, 1]]


def test_network_joins_satellite_by_mac() -> None:
    assert groups(
        net(ifconfig_mac_addresses=[MAC_A, MAC_B]),
        sat(uuid=SUB_A, mac_addresses=[MAC_B]),
    ) == [[0, 1]]


def test_subscription_id_join_wins_over_a_mac_pointing_elsewhere() -> None:
    assert groups(
        net(subscription_manager_id=SUB_A, ifconfig_mac_addresses=[MAC_A]),
        net(ifconfig_mac_addresses=[MAC_B]),
        sat(uuid=SUB_A, mac_addresses=[MAC_B]),
    ) == [[0, 2], [1]]


def test_a_vcenter_vm_bridges_no_two_systems() -> None:
    """Network and satellite records with nothing in common stay apart, even when one VM
    matches each: a VM joins one system at most."""
    assert groups(
        net(dmi_system_uuid=UUID_A),
        sat(uuid=SUB_A, mac_addresses=[MAC_A]),
        vc(vm_uuid=UUID_A, vm_mac_addresses=[MAC_A]),
    ) == [[0, 2], [1]]


def test_network_joins_vcenter_by_bios_uuid() -> None:
    assert groups(
        net(dmi_system_uuid=UUID_A.upper(), ifconfig_mac_addresses=[MAC_A]),
        vc(vm_uuid=UUID_A, vm_mac_addresses=[MAC_B]),
    ) == [[0, 1]]


def test_network_joins_vcenter_by_mac() -> None:
    assert groups(
        net(has_sudo=False, ifconfig_mac_addresses=[MAC_A]),
        vc(vm_uuid=UUID_A, vm_mac_addresses=[MAC_A]),
    ) == [[0, 1]]


def test_satellite_joins_vcenter_by_mac() -> None:
    assert groups(
        sat(uuid=SUB_A, mac_addresses=[MAC_A]),
        vc(vm_uuid=UUID_A, vm_mac_addresses=[MAC_A]),
    ) == [[0, 1]]


def test_network_satellite_and_vcenter_join_into_one() -> None:
    assert groups(
        vc(vm_uuid=UUID_A, vm_mac_addresses=[MAC_C]),
        sat(uuid=SUB_A, mac_addresses=[MAC_B]),
        net(dmi_system_uuid=UUID_A, ifconfig_mac_addresses=[MAC_B]),
    ) == [[0, 1, 2]]


def test_an_openshift_node_joins_its_ssh_scan_by_machine_id_and_bios_uuid() -> None:
    assert groups(
        net(etc_machine_id=MID_A, dmi_system_uuid=UUID_A, ifconfig_mac_addresses=[MAC_A]),
        node(name="worker-0", machine_id=MID_A, system_uuid=UUID_A.upper()),
    ) == [[0, 1]]
    # a cloned machine id alone is not enough
    assert groups(
        net(etc_machine_id=MID_A, dmi_system_uuid=UUID_B, ifconfig_mac_addresses=[MAC_A]),
        node(name="worker-0", machine_id=MID_A),
    ) == [[0], [1]]


def test_an_openshift_node_joins_its_vm_by_bios_uuid_and_keeps_its_cluster() -> None:
    members = (
        vc(vm_uuid=UUID_A, vm_mac_addresses=[MAC_A], vm_cluster="vsphere-1"),
        node(name="worker-0", system_uuid=UUID_A, capacity={"cpu": 8}),
    )
    assert groups(*members) == [[0, 1]]
    assert merged(*members)["vm_cluster"] == "c-1", "a node's cluster is OpenShift's"


def test_two_sources_of_one_cluster_report_each_node_once() -> None:
    assert groups(
        node("ocp-a", name="worker-0"),
        node("ocp-b", name="worker-0"),
        node("ocp-a", name="worker-1"),
    ) == [[0, 1], [2]]


def test_ip_addresses_never_join() -> None:
    assert groups(
        net(ifconfig_ip_addresses=["10.0.0.5"], ifconfig_mac_addresses=[MAC_A]),
        sat(uuid=SUB_A, ip_addresses=["10.0.0.5"]),
        vc(vm_uuid=UUID_A, vm_ip_addresses=["10.0.0.5"]),
    ) == [[0], [1], [2]]


# Placeholders and ambiguous keys never join.


@pytest.mark.parametrize(
    "bios_uuid",
    [
        "00000000-0000-0000-0000-000000000000",
        "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF",
        "03000200-0400-0500-0006-000700080009",
        "Not Settable",
        "Not Present",
        "",
    ],
)
def test_placeholder_bios_uuids_never_join(bios_uuid: str) -> None:
    assert groups(
        net(etc_machine_id=MID_A, dmi_system_uuid=bios_uuid),
        net(etc_machine_id=MID_A, dmi_system_uuid=bios_uuid),
        vc(vm_uuid=bios_uuid),
    ) == [[0], [1], [2]]


@pytest.mark.parametrize(
    "shared_mac",
    ["00:00:00:00:00:00", "ff:ff:ff:ff:ff:ff", "01:00:5e:00:00:01", "00:05:9a:3c:7a:00"],
)
def test_placeholder_and_shared_macs_never_join(shared_mac: str) -> None:
    assert groups(
        net(ifconfig_mac_addresses=[shared_mac]),
        net(ifconfig_mac_addresses=[shared_mac]),
        sat(uuid=SUB_A, mac_addresses=[shared_mac]),
        vc(vm_uuid=UUID_A, vm_mac_addresses=[shared_mac]),
    ) == [[0], [1], [2], [3]]


def test_empty_mac_lists_and_zero_subscription_ids_never_join() -> None:
    zero = "00000000-0000-0000-0000-000000000000"
    assert groups(
        net(ifconfig_mac_addresses=[], subscription_manager_id=zero),
        net(ifconfig_mac_addresses=[]),
        sat(uuid=zero, mac_addresses=[]),
        sat(uuid=zero, mac_addresses=[]),
        vc(vm_mac_addresses=[]),
    ) == [[0], [1], [2], [3], [4]]


def test_loopback_and_zero_macs_are_not_part_of_the_identity() -> None:
    with_zero = net(ifconfig_mac_addresses=["00:00:00:00:00:00", MAC_A])
    plain = net(ifconfig_mac_addresses=[MAC_A])
    keys = network_identity_keys([with_zero, plain], [0, 1])
    assert keys(with_zero) == keys(plain)


def test_same_macs_with_different_machine_ids_are_different_systems() -> None:
    """Hosts sharing one network stack (containers, namespaces) are told apart by machine id."""
    assert groups(
        net(etc_machine_id=MID_A, ifconfig_mac_addresses=[MAC_A]),
        net(etc_machine_id=MID_B, ifconfig_mac_addresses=[MAC_A]),
        net(has_sudo=False, ifconfig_mac_addresses=[MAC_A]),
    ) == [[0], [1], [2]]


def test_a_mac_held_by_two_network_systems_joins_neither() -> None:
    assert groups(
        net(ifconfig_mac_addresses=[MAC_A, MAC_B]),
        net(ifconfig_mac_addresses=[MAC_A, MAC_C]),
        sat(uuid=SUB_A, mac_addresses=[MAC_A]),
    ) == [[0], [1], [2]]


def test_an_ambiguous_mac_is_ignored_and_an_unambiguous_one_still_joins() -> None:
    assert groups(
        net(ifconfig_mac_addresses=[MAC_A, MAC_B]),
        net(ifconfig_mac_addresses=[MAC_A, MAC_C]),
        sat(uuid=SUB_A, mac_addresses=[MAC_A, MAC_B]),
    ) == [[0, 2], [1]]


def test_a_record_pointing_at_two_systems_joins_neither() -> None:
    assert groups(
        net(ifconfig_mac_addresses=[MAC_A]),
        net(ifconfig_mac_addresses=[MAC_B]),
        sat(uuid=SUB_A, mac_addresses=[MAC_A, MAC_B]),
    ) == [[0], [1], [2]]


def test_two_records_claiming_one_system_by_different_keys_join_neither() -> None:
    assert groups(
        net(ifconfig_mac_addresses=[MAC_A, MAC_B]),
        sat(uuid=SUB_A, mac_addresses=[MAC_A]),
        sat(uuid=SUB_B, mac_addresses=[MAC_B]),
    ) == [[0], [1], [2]]


def test_a_system_joins_at_most_one_record_of_another_type() -> None:
    assert groups(
        net(subscription_manager_id=SUB_A, ifconfig_mac_addresses=[MAC_A, MAC_B]),
        sat(uuid=SUB_A),
        sat(uuid=SUB_B, mac_addresses=[MAC_B]),
    ) == [[0, 1], [2]]


# Conflict resolution, field by field.


def test_vcenter_wins_cpu_counts_memory_and_infrastructure_type() -> None:
    system = merged(
        net(
            dmi_system_uuid=UUID_A,
            cpu_count=2,
            system_memory_bytes=3_900_000_000,
            virt_what_type="bare metal",
        ),
        vc(vm_uuid=UUID_A, vm_cpu_count=4, vm_memory_size=4),
    )
    assert system["cpu_count"] == 4
    assert system["system_memory_bytes"] == 4 * 1024**3
    assert system["infrastructure_type"] == "virtualized"
    assert system["virtualized_type"] == "vmware"
    assert system["metadata"]["cpu_count"]["source_type"] == "vcenter"


def test_network_cpu_counts_fill_what_vcenter_does_not_know() -> None:
    system = merged(
        net(
            dmi_system_uuid=UUID_A,
            ifconfig_mac_addresses=[MAC_A],
            cpu_socket_count=2,
            cpu_core_count=8,
        ),
        sat(uuid=SUB_A, mac_addresses=[MAC_A], num_sockets=4, cores=16),
        vc(vm_uuid=UUID_A, vm_cpu_count=8, vm_mac_addresses=[MAC_A]),
    )
    assert (system["cpu_count"], system["cpu_socket_count"], system["cpu_core_count"]) == (8, 2, 8)


def test_network_wins_os_facts_over_satellite_and_vcenter() -> None:
    system = merged(
        net(
            ifconfig_mac_addresses=[MAC_A],
            etc_release_name="Red Hat Enterprise Linux",
            etc_release_release="Red Hat Enterprise Linux release 9.2 (Plow)",
            etc_release_version="9.2",
            uname_processor="x86_64",
            uname_hostname="web1",
        ),
        sat(
            uuid=SUB_A,
            mac_addresses=[MAC_A],
            os_name="RedHat",
            os_release="9.1",
            os_version="9.1",
            architecture="i386",
            hostname="web1.example.com",
        ),
        vc(vm_uuid=UUID_A, vm_mac_addresses=[MAC_A], vm_os="Red Hat Enterprise Linux 8"),
    )
    assert system["os_name"] == "Red Hat Enterprise Linux"
    assert system["os_release"] == "Red Hat Enterprise Linux release 9.2 (Plow)"
    assert system["os_version"] == "9.2"
    assert system["architecture"] == "x86_64"
    assert system["name"] == "web1"
    assert {system["metadata"][f]["source_type"] for f in ("os_name", "os_release", "name")} == {
        "network"
    }


def test_satellite_fills_os_facts_the_network_did_not_read() -> None:
    system = merged(
        net(ifconfig_mac_addresses=[MAC_A], etc_release_version=None),
        sat(uuid=SUB_A, mac_addresses=[MAC_A], os_version="9.1"),
    )
    assert system["os_version"] == "9.1"
    assert system["metadata"]["os_version"]["source_type"] == "satellite"


def test_satellite_wins_the_subscription_id() -> None:
    system = merged(
        net(subscription_manager_id=SUB_B, ifconfig_mac_addresses=[MAC_A]),
        sat(uuid=SUB_A, mac_addresses=[MAC_A]),
    )
    assert system["subscription_manager_id"] == SUB_A
    assert system["metadata"]["subscription_manager_id"]["raw_fact_key"] == "uuid"


def test_network_is_redhat_wins_over_vcenter_guess_from_the_os_string() -> None:
    system = merged(
        net(dmi_system_uuid=UUID_A, etc_release_name="CentOS Stream"),
        vc(vm_uuid=UUID_A, vm_os="Red Hat Enterprise Linux 9 (64-bit)"),
    )
    assert system["is_redhat"] is False


def test_a_value_read_with_sudo_wins_over_one_without() -> None:
    system = merged(
        net("a", has_sudo=False, ifconfig_mac_addresses=[MAC_A], cpu_socket_count=1),
        net("b", has_sudo=True, ifconfig_mac_addresses=[MAC_A], cpu_socket_count=2),
    )
    assert system["cpu_socket_count"] == 2
    assert system["metadata"]["cpu_socket_count"] == {
        "source_name": "b",
        "source_type": "network",
        "raw_fact_key": "cpu_socket_count",
        "has_sudo": True,
    }


def test_equal_standing_is_decided_by_source_name_then_value() -> None:
    by_name = merged(
        net("zeta", ifconfig_mac_addresses=[MAC_A], cpu_count=8),
        net("alpha", ifconfig_mac_addresses=[MAC_A], cpu_count=16),
    )
    assert by_name["cpu_count"] == 16
    by_value = merged(
        net("lab", ifconfig_mac_addresses=[MAC_A], cpu_count=8),
        net("lab", ifconfig_mac_addresses=[MAC_A], cpu_count=4),
    )
    assert by_value["cpu_count"] == 4


def test_the_latest_check_in_wins_whatever_its_source() -> None:
    system = merged(
        net(ifconfig_mac_addresses=[MAC_A], system_last_checkin_date="2024-05-01T00:00:00Z"),
        sat(uuid=SUB_A, mac_addresses=[MAC_A], last_checkin_time="2024-05-03 00:00:00 UTC"),
        vc(vm_uuid=UUID_A, vm_mac_addresses=[MAC_A], vm_last_check_in="2024-05-02 23:00:00"),
    )
    assert system["system_last_checkin_date"] == "2024-05-03T00:00:00+00:00"
    assert system["metadata"]["system_last_checkin_date"]["raw_fact_key"] == "last_checkin_time"


def test_lists_are_unioned_and_sorted() -> None:
    system = merged(
        net(
            ifconfig_mac_addresses=[MAC_A, MAC_C],
            ifconfig_ip_addresses=["10.0.0.10"],
            subman_consumed=[{"name": "RHEL"}],
        ),
        sat(
            uuid=SUB_A,
            mac_addresses=[MAC_A],
            ip_addresses=["10.0.0.9"],
            entitlements=[{"name": "JBoss EAP"}, {"name": "RHEL"}],
        ),
        vc(vm_uuid=UUID_A, vm_mac_addresses=[MAC_A, MAC_B], vm_ip_addresses=["10.0.0.10"]),
    )
    assert system["mac_addresses"] == [MAC_A, MAC_B, MAC_C]
    assert system["ip_addresses"] == ["10.0.0.9", "10.0.0.10"]
    assert system["installed_products"] == ["JBoss EAP", "RHEL"]
    assert system["metadata"]["installed_products"]["source_type"] == "satellite"
    assert system["metadata"]["mac_addresses"]["source_type"] == "network"


def test_choose_returns_none_when_no_member_knows_the_field() -> None:
    assert choose("vm_cluster", [net(), sat()]) is None


# What a merged system says about where it came from.


def test_metadata_names_source_raw_fact_and_sudo_for_every_known_field() -> None:
    system = merged(
        net(uname_hostname="web1", dmi_system_uuid=UUID_A, has_sudo=True),
        vc(vm_uuid=UUID_A, vm_name="web1-vm", vm_cluster="prod"),
    )
    known = {field for field, value in system.items() if value is not None}
    known -= {"sources", "metadata"}
    assert set(system["metadata"]) == known
    assert system["metadata"]["name"] == {
        "source_name": "lab",
        "source_type": "network",
        "raw_fact_key": "uname_hostname",
        "has_sudo": True,
    }
    assert system["metadata"]["vm_cluster"] == {
        "source_name": "vc",
        "source_type": "vcenter",
        "raw_fact_key": "vm.cluster",
        "has_sudo": False,
    }


def test_unknown_infrastructure_type_has_no_metadata() -> None:
    system = merged(net(uname_hostname="web1"))
    assert system["infrastructure_type"] == "unknown"
    assert "infrastructure_type" not in system["metadata"]


def test_sources_list_every_contributing_source_once_in_order() -> None:
    system = merged(
        vc("vc", vm_uuid=UUID_A, vm_mac_addresses=[MAC_A]),
        net("lab-b", ifconfig_mac_addresses=[MAC_A]),
        net("lab-a", ifconfig_mac_addresses=[MAC_A]),
        net("lab-a", ifconfig_mac_addresses=[MAC_A], has_sudo=False),
    )
    assert system["sources"] == [
        {"source_name": "lab-a", "source_type": "network"},
        {"source_name": "lab-b", "source_type": "network"},
        {"source_name": "vc", "source_type": "vcenter"},
    ]


def test_merging_nothing_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one"):
        merge_fingerprints([])


# Properties over arbitrary, deliberately colliding records.

_POOL_UUIDS = [UUID_A, UUID_B, "00000000-0000-0000-0000-000000000000", None]
_POOL_SUBS = [SUB_A, SUB_B, None]
_POOL_MIDS = [MID_A, MID_B, None]
_POOL_MACS = [MAC_A, MAC_B, MAC_C, "00:00:00:00:00:00", "00:05:9a:3c:7a:00"]


@st.composite
def records(draw: st.DrawFn) -> Fingerprint:
    kind = draw(st.sampled_from(["network", "satellite", "vcenter"]))
    name = draw(st.sampled_from(["one", "two"]))
    macs = draw(st.lists(st.sampled_from(_POOL_MACS), max_size=3))
    uuid, sub = draw(st.sampled_from(_POOL_UUIDS)), draw(st.sampled_from(_POOL_SUBS))
    cpus = draw(st.integers(1, 4))
    if kind == "network":
        return net(
            name,
            has_sudo=draw(st.booleans()),
            etc_machine_id=draw(st.sampled_from(_POOL_MIDS)),
            dmi_system_uuid=uuid,
            subscription_manager_id=sub,
            ifconfig_mac_addresses=macs,
            cpu_count=cpus,
        )
    if kind == "satellite":
        return sat(name, uuid=sub, mac_addresses=macs, cores=cpus)
    return vc(name, vm_uuid=uuid, vm_mac_addresses=macs, vm_cpu_count=cpus)


@settings(max_examples=200, deadline=None)
@given(st.lists(records(), max_size=12), st.randoms(use_true_random=False))
def test_every_record_ends_in_exactly_one_system_whatever_the_order(
    fingerprints: list[Fingerprint], random: Any
) -> None:
    partition = group_fingerprints(fingerprints)
    assert sorted(p for group in partition for p in group) == list(range(len(fingerprints)))

    order = list(range(len(fingerprints)))
    random.shuffle(order)
    shuffled = [fingerprints[i] for i in order]
    shuffled_partition = group_fingerprints(shuffled)
    back = {frozenset(order[p] for p in group) for group in shuffled_partition}
    assert back == {frozenset(group) for group in partition}

    systems = sorted(repr(merge_fingerprints([fingerprints[p] for p in g])) for g in partition)
    systems_shuffled = sorted(
        repr(merge_fingerprints([shuffled[p] for p in g])) for g in shuffled_partition
    )
    assert systems == systems_shuffled
