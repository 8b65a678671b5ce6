"""The aggregate report: its shape, and counts that add up, on synthetic deployments."""

from __future__ import annotations

import json

from quipu.reports import build_deployments
from quipu.reports.aggregate import (
    DIAGNOSTIC_FIELDS,
    INSTANCE_FIELDS,
    RESULT_FIELDS,
    build_aggregate,
)
from quipu.services.reports import _pack_deployments, systems
from tests.estates import estate, system

RHEL = {"is_redhat": True, "os_name": "Red Hat Enterprise Linux", "os_version": "9.4"}
FLEET = [
    # virtual RHEL guests a network scan reached, one also on vCenter in cluster c1
    system("network", **RHEL, name="a", infrastructure_type="virtualized", cpu_core_count=2,
           cpu_socket_count=1),
    system("network", "vcenter", **RHEL, name="b", infrastructure_type="virtualized",
           cpu_core_count=4, cpu_socket_count=3, vm_uuid="u-b", vm_cluster="c1", vm_host="h1"),
    # physical RHEL host only Satellite knows (Satellite counts as Red Hat), no cores
    system("satellite", name="c", infrastructure_type="physical", cpu_socket_count=2),
    # RHEL on vCenter with no infrastructure told, no name, in cluster c1 on another host
    system("vcenter", is_redhat=True, vm_uuid="u-d", vm_cluster="c1", vm_host="h2"),
    # an ESXi host vCenter reported, registered to Satellite so it is counted
    system("vcenter", "satellite", name="esx", infrastructure_type="physical", os_name="ESXi",
           cpu_socket_count=2, cpu_core_count=16),
    # not Red Hat: counted by OS only
    system("network", name="deb", os_name="Debian", os_version="12", is_redhat=False,
           infrastructure_type="virtualized"),
    system("network", name="mystery", infrastructure_type="physical"),
]  # fmt: skip


def test_the_report_has_the_established_keys_in_two_groups() -> None:
    report = build_aggregate(systems=FLEET, inspections={"success": 7})
    assert set(report) == {"results", "diagnostics"}
    assert tuple(sorted(report["results"])) == RESULT_FIELDS
    assert tuple(sorted(report["diagnostics"])) == DIAGNOSTIC_FIELDS
    assert all(not f.startswith(("missing_", "inspect_result_")) for f in RESULT_FIELDS)
    json.dumps(report)  # plain JSON values only


def test_instances_partition_the_systems_by_type() -> None:
    results = build_aggregate(systems=FLEET, inspections={})["results"]
    assert {field: results[field] for field in INSTANCE_FIELDS} == {
        "instances_hypervisor": 0,
        "instances_not_redhat": 2,
        "instances_physical": 2,
        "instances_unknown": 1,
        "instances_virtual": 2,
    }
    assert sum(results[field] for field in INSTANCE_FIELDS) == len(FLEET)


def test_an_esxi_host_only_vcenter_saw_is_a_hypervisor() -> None:
    esx = system("vcenter", name="esx", infrastructure_type="physical", is_redhat=True)
    results = build_aggregate(systems=[esx], inspections={})["results"]
    assert results["instances_hypervisor"] == 1
    assert results["instances_physical"] == 0


def test_os_counts_take_every_system_and_name_the_unknown() -> None:
    results = build_aggregate(systems=FLEET, inspections={})["results"]
    assert results["os_by_name_and_version"] == {
        "Red Hat Enterprise Linux": {"9.4": 2},
        "unknown": {"unknown": 3},
        "ESXi": {"unknown": 1},
        "Debian": {"12": 1},
    }


def test_socket_pairs_round_each_red_hat_system_up() -> None:
    results = build_aggregate(systems=FLEET, inspections={})["results"]
    # a: 1 -> 1, b: 3 -> 2, c: 2 -> 1, esx: 2 -> 1; d has none; Debian is not counted
    assert results["socket_pairs"] == 5


def test_vmware_counts_hosts_by_cluster() -> None:
    results = build_aggregate(systems=FLEET, inspections={})["results"]
    assert (results["vmware_hosts"], results["vmware_vms"]) == (1, 2)
    assert results["vmware_vm_to_host_ratio"] == 2.0
    empty = build_aggregate(systems=[], inspections={})["results"]
    assert (empty["vmware_hosts"], empty["vmware_vms"], empty["vmware_vm_to_host_ratio"]) == (
        0,
        0,
        0,
    )


def test_diagnostics_count_what_is_missing_and_every_inspection_outcome() -> None:
    diagnostics = build_aggregate(
        systems=FLEET, inspections={"success": 7, "failed": 2, "unreachable": 1, "odd": 4}
    )["diagnostics"]
    assert diagnostics == {
        "inspect_result_status_failed": 2,
        "inspect_result_status_success": 7,
        "inspect_result_status_unknown": 4,
        "inspect_result_status_unreachable": 1,
        # c (satellite, no cores); d is vCenter only and not to blame
        "missing_cpu_core_count": 1,
        "missing_cpu_socket_count": 1,  # d
        "missing_name": 1,  # d
        "missing_pem_files": 2,  # a, b: network sources
        "missing_system_creation_date": 5,  # every Red Hat system
        "missing_system_purpose": 2,
    }


def test_collectors_quipu_lacks_count_zero() -> None:
    results = build_aggregate(systems=FLEET, inspections={})["results"]
    assert results["system_creation_date_average"] is None
    assert results["openshift_operators_by_kind"] == results["openshift_operators_by_name"] == {}
    for field in RESULT_FIELDS:
        if field.startswith(("jboss_", "ansible_", "openshift_c", "openshift_n")):
            assert results[field] == 0, field


def test_openshift_and_ansible_counts_come_from_their_raw_facts() -> None:
    nodes = [system("openshift", name=f"n{i}", cpu_count=8, vm_cluster="c-1") for i in range(3)]
    cluster = {
        "cluster": {"kind": "cluster", "uuid": "c-1"},
        "operators": [
            {"kind": "cluster-operator", "name": "dns"},
            {"kind": "cluster-operator", "name": "ingress"},
            {"kind": "olm-operator", "name": "ingress"},
            {"name": None},
        ],
    }
    platform_facts = [
        ("openshift", cluster),
        *(("openshift", {"node": {"kind": "node", "name": f"n{i}"}}) for i in range(3)),
        ("ansible", {"hosts": [{"name": "a"}, {"name": "b"}, {"id": 3}], "jobs": {
            "unique_hosts": ["b", "c", ""]}}),
        ("ansible", {"hosts": "garbage", "jobs": None}),
        ("network", {"cluster": {"kind": "cluster"}}),
    ]  # fmt: skip
    results = build_aggregate(
        systems=[*FLEET, *nodes], inspections={}, platform_facts=platform_facts
    )["results"]
    # nodes count as Red Hat even without is_redhat, and their CPUs as OpenShift cores
    base = build_aggregate(systems=FLEET, inspections={})["results"]
    assert results["instances_not_redhat"] == base["instances_not_redhat"]
    assert results["instances_unknown"] == base["instances_unknown"] + 3
    assert results["openshift_cores"] == 24
    assert (results["openshift_cluster_instances"], results["openshift_node_instances"]) == (1, 3)
    assert results["openshift_operators_by_kind"] == {
        "cluster-operator": 2,
        "olm-operator": 1,
        "unknown": 1,
    }
    assert results["openshift_operators_by_name"] == {"dns": 1, "ingress": 2, "unknown": 1}
    assert (
        results["ansible_hosts_in_database"],
        results["ansible_hosts_in_jobs"],
        results["ansible_hosts_all"],
    ) == (2, 2, 3)


def test_a_merged_estate_counts_one_instance_per_system() -> None:
    report = build_deployments(report_id=1, sources=estate(), report_version="1", platform_id="p")
    fingerprints = report["system_fingerprints"]
    results = build_aggregate(systems=fingerprints, inspections={"success": 9})["results"]
    assert sum(results[field] for field in INSTANCE_FIELDS) == len(fingerprints)


def test_stored_deployments_read_one_system_at_a_time_as_written() -> None:
    report = build_deployments(report_id=1, sources=estate(), report_version="1", platform_id="p")
    blob = _pack_deployments(report)
    expected = json.loads(json.dumps(report["system_fingerprints"]))
    assert list(systems(blob)) == expected
    without = list(systems(blob, metadata=False))
    assert without == [{k: v for k, v in s.items() if k != "metadata"} for s in expected]
    # names that look like the markers the reader cuts at stay values
    odd = system("network", name='}}, "name": "x"', is_redhat=True)
    odd["metadata"] = {"name": {"source_name": '}}, "name": ', "raw_fact_key": None}}
    tricky = {**report, "system_fingerprints": [odd, system("network")]}
    assert [s["name"] for s in systems(_pack_deployments(tricky), metadata=False)] == [
        '}}, "name": "x"',
        None,
    ]


def test_an_empty_or_whole_stored_report_is_read_too() -> None:
    import gzip

    empty = {"report_id": 1, "system_fingerprints": []}
    assert list(systems(_pack_deployments(empty))) == []
    whole = gzip.compress(json.dumps({"report_id": 1, "system_fingerprints": FLEET}).encode())
    assert [s["name"] for s in systems(whole, metadata=False)] == [s["name"] for s in FLEET]
    assert all("metadata" not in s for s in systems(whole, metadata=False))
