"""OpenShift raw facts -> fingerprint fields: a node is a system, the cluster's record is not."""

from __future__ import annotations

from typing import Any

import pytest

from quipu.lab.openshift import CLUSTER_ID, expected_facts
from quipu.reports.fingerprint import fingerprint


def _fingerprint(facts: dict[str, Any]) -> Any:
    return fingerprint(source_name="ocp", source_type="openshift", facts=facts)


def _node(**node: Any) -> dict[str, Any]:
    return {"node": {"kind": "node", "name": "worker-1", **node}}


def test_a_node_fills_the_fields_the_established_tool_fills_and_its_identity() -> None:
    fp = _fingerprint(
        _node(
            cluster_uuid="c-1",
            capacity={"kind": "node-resources", "cpu": 4, "memory_in_bytes": 15618863104},
            architecture="amd64",
            machine_id="0123456789ABCDEF0123456789ABCDEF",
            system_uuid="EC2A3F1B-0000-4000-8000-000000000001",
            addresses=[
                {"type": "InternalIP", "address": "10.0.1.23"},
                {"type": "Hostname", "address": "worker-1"},
                {"type": "ExternalIP", "address": "198.51.100.4"},
                {"type": "InternalIP", "address": "127.0.0.1"},
            ],
            os_image="Red Hat Enterprise Linux CoreOS 415.92 (Plow)",
            provider_id="vsphere://4230b1c2-0000-4000-8000-000000000001",
        )
    )
    assert fp is not None
    assert fp.known() == {
        "name": "worker-1",
        "cpu_count": 4,
        "system_memory_bytes": 15618863104,
        "architecture": "x86_64",
        "etc_machine_id": "0123456789abcdef0123456789abcdef",
        "bios_uuid": "ec2a3f1b-0000-4000-8000-000000000001",
        "ip_addresses": ("10.0.1.23", "198.51.100.4"),
        "vm_cluster": "c-1",
        "os_release": "Red Hat Enterprise Linux CoreOS 415.92 (Plow)",
        "is_redhat": True,
        "infrastructure_type": "virtualized",
        "virtualized_type": "vmware",
    }
    assert fp.raw_fact_key("name") == "node__name"
    assert fp.raw_fact_key("cpu_count") == "node__capacity__cpu"
    assert fp.raw_fact_key("etc_machine_id") == "node__machine_id"
    assert fp.raw_fact_key("ip_addresses") == "node__addresses"
    assert fp.raw_fact_key("vm_cluster") == "node__cluster_uuid"


@pytest.mark.parametrize(
    ("provider", "known"),
    [
        (
            "aws:///us-east-1a/i-0abc",
            {"infrastructure_type": "virtualized", "cloud_provider": "aws"},
        ),
        (
            "gce://project/zone/name",
            {"infrastructure_type": "virtualized", "cloud_provider": "gcp"},
        ),
        ("baremetalhost:///openshift-machine-api/w/1", {"infrastructure_type": "physical"}),
        ("kubevirt://ns/vm", {"infrastructure_type": "virtualized", "virtualized_type": "kvm"}),
        ("somecloud://x", {}),
    ],
)
def test_the_provider_id_tells_what_the_node_runs_on(provider: str, known: dict[str, str]) -> None:
    fp = _fingerprint(_node(provider_id=provider))
    assert fp is not None
    infrastructure = {"infrastructure_type", "virtualized_type", "cloud_provider"}
    assert {k: v for k, v in fp.known().items() if k in infrastructure} == known


@pytest.mark.parametrize(("given", "read"), [("arm64", "aarch64"), ("ppc64le", "ppc64le")])
def test_other_architectures_read_as_uname_names_them(given: str, read: str) -> None:
    fp = _fingerprint(_node(architecture=given))
    assert fp is not None and fp.get("architecture") == read


def test_placeholders_and_fractions_read_as_unknown_or_whole() -> None:
    fp = _fingerprint(
        _node(
            system_uuid="00000000-0000-0000-0000-000000000000",
            machine_id="not-a-machine-id",
            capacity={"cpu": 7.5, "memory_in_bytes": "lots"},
        )
    )
    assert fp is not None
    assert fp.known() == {"name": "worker-1", "cpu_count": 7}


def test_the_cluster_record_is_no_system_of_the_deployments_report() -> None:
    facts = expected_facts(nodes=4)
    assert _fingerprint(facts[f"cluster:{CLUSTER_ID}"]) is None
    assert _fingerprint({"operators": []}) is None
    nodes = [_fingerprint(f) for system, f in facts.items() if not system.startswith("cluster:")]
    assert len(nodes) == 4
    assert {fp.get("vm_cluster") for fp in nodes if fp is not None} == {CLUSTER_ID}
