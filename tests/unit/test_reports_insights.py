"""The insights report: hosts in the inventory's shape, slices, and metadata.json."""

from __future__ import annotations

import io
import itertools
import json
import tarfile
from typing import Any

import pytest

from quipu.reports import build_deployments
from quipu.reports.insights import Collector, NoHosts, host_of, write_insights_tarball
from tests.estates import estate, system

COLLECTOR = Collector(
    server_id="p-1",
    server_version="9.9.9",
    hostname="discovery.example.com",
    ip_address="127.0.0.1",
    last_discovered="2026-12-01T10:00:00Z",
)


def tarball(systems: list[dict[str, Any]], **options: Any) -> tuple[dict[str, Any], bytes]:
    out = io.BytesIO()
    ids = (f"slice-{n}" for n in itertools.count(1))
    metadata = write_insights_tarball(
        report_id=4,
        report_platform_id="p-1",
        report_version="9.9.9",
        systems=systems,
        collector=COLLECTOR,
        out=out,
        slice_ids=lambda: next(ids),
        **options,
    )
    return metadata, out.getvalue()


def members(body: bytes) -> dict[str, Any]:
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as archive:
        found = {}
        for member in archive.getmembers():
            extracted = archive.extractfile(member)
            assert extracted is not None
            raw = extracted.read()
            # compact JSON, as the established server writes it
            assert b'": ' not in raw and b'", "' not in raw, member.name
            found[member.name] = json.loads(raw)
        return found


def test_a_host_carries_the_inventory_fields_and_leaves_empty_ones_out() -> None:
    value = system(
        "network",
        "vcenter",
        name="web1.example.com",
        is_redhat=True,
        bios_uuid="b-1",
        ip_addresses=["10.0.0.5"],
        mac_addresses=["00:50:56:01:00:01"],
        etc_machine_id="m-1",
        vm_uuid="b-1",
        cpu_count=4,
        cpu_socket_count=2,
        cpu_core_count=4,
        system_memory_bytes=2**33,
        infrastructure_type="virtualized",
        virtualized_type="vmware",
        os_release="Red Hat Enterprise Linux 9.4 (Plow)",
        architecture="x86_64",
    )
    host = host_of(value, collector=COLLECTOR)
    assert host == {
        "display_name": "web1.example.com",
        "fqdn": "web1.example.com",
        "bios_uuid": "b-1",
        "ip_addresses": ["10.0.0.5"],
        "mac_addresses": ["00:50:56:01:00:01"],
        "etc_machine_id": "m-1",
        "vm_uuid": "b-1",
        "system_profile": {
            "number_of_cpus": 4,
            "number_of_sockets": 2,
            "cores_per_socket": 2,
            "system_memory_bytes": 2**33,
            "infrastructure_type": "virtual",
            "infrastructure_vendor": "vmware",
            "os_release": "Red Hat Enterprise Linux 9.4 (Plow)",
            "arch": "x86_64",
        },
        "facts": [
            {
                "namespace": "qpc",
                "facts": {
                    "source_types": ["network", "vcenter"],
                    "last_discovered": "2026-12-01T10:00:00Z",
                    "qpc_server_version": "9.9.9",
                    "qpc_server_id": "p-1",
                    "rh_products_installed": ["RHEL"],
                },
            }
        ],
        "tags": [
            {"namespace": "qpc", "key": "data-collector", "value": "qpc"},
            {"namespace": "qpc", "key": "last-discovered", "value": "2026-12-01T10:00:00Z"},
            {"namespace": "qpc", "key": "scanner-hostname", "value": "discovery.example.com"},
            {"namespace": "qpc", "key": "scanner-id", "value": "p-1"},
            {"namespace": "qpc", "key": "scanner-ip-address", "value": "127.0.0.1"},
            {"namespace": "qpc", "key": "scanner-version", "value": "9.9.9"},
        ],
    }


def test_a_system_without_a_canonical_fact_is_no_host() -> None:
    assert host_of(system("network", etc_machine_id="m-1"), collector=COLLECTOR) is None
    assert host_of(system("satellite", subscription_manager_id="s"), collector=COLLECTOR)


def test_an_rhacs_central_is_no_host_unless_another_source_saw_it() -> None:
    assert host_of(system("rhacs", name="central.example.com"), collector=COLLECTOR) is None
    seen = system("rhacs", "network", name="central.example.com")
    assert host_of(seen, collector=COLLECTOR)
    assert host_of(system("openshift", name="node-1"), collector=COLLECTOR)


def test_hosts_are_sliced_and_metadata_counts_each_slice() -> None:
    fleet = [system("network", name=f"h{n}", is_redhat=True) for n in range(5)]
    fleet.insert(2, system("network"))  # no canonical fact: left out
    metadata, body = tarball(fleet, slice_size=2)
    files = members(body)
    assert sorted(files) == [
        "report_id_4/metadata.json",
        "report_id_4/slice-1.json",
        "report_id_4/slice-2.json",
        "report_id_4/slice-3.json",
    ]
    assert files["report_id_4/metadata.json"] == metadata
    assert metadata == {
        "report_id": "p-1",
        "host_inventory_api_version": "1.0",
        "source": "qpc",
        "source_metadata": {
            "report_platform_id": "p-1",
            "report_type": "insights",
            "report_version": "9.9.9",
            "qpc_server_report_id": 4,
            "qpc_server_version": "9.9.9",
            "qpc_server_id": "p-1",
        },
        "report_slices": {
            "slice-1": {"number_hosts": 2},
            "slice-2": {"number_hosts": 2},
            "slice-3": {"number_hosts": 1},
        },
    }
    for slice_id, counted in metadata["report_slices"].items():
        body_of_slice = files[f"report_id_4/{slice_id}.json"]
        assert body_of_slice["report_slice_id"] == slice_id
        assert len(body_of_slice["hosts"]) == counted["number_hosts"]
    names = [
        host["display_name"]
        for slice_id in metadata["report_slices"]
        for host in files[f"report_id_4/{slice_id}.json"]["hosts"]
    ]
    assert names == ["h0", "h1", "h2", "h3", "h4"]


def test_a_merged_estate_gives_one_host_per_system_with_a_canonical_fact() -> None:
    report = build_deployments(report_id=4, sources=estate(), report_version="1", platform_id="p")
    fingerprints = report["system_fingerprints"]
    metadata, _ = tarball(fingerprints)
    (counted,) = metadata["report_slices"].values()
    expected = [s for s in fingerprints if host_of(s, collector=COLLECTOR) is not None]
    assert counted["number_hosts"] == len(expected) == len(fingerprints)


def test_a_report_with_no_host_has_no_insights_report() -> None:
    with pytest.raises(NoHosts, match="0 valid hosts"):
        tarball([system("network")])
    with pytest.raises(ValueError, match="at least one host"):
        tarball([system("network", name="x")], slice_size=0)
