"""The fake OpenShift cluster's description: generated from its node count alone."""

from __future__ import annotations

from pathlib import Path

from quipu.cli.lab_openshift import format_openshift
from quipu.lab.openshift import (
    CLUSTER_ID,
    Behaviour,
    FakeOpenShift,
    RunningOpenShift,
    expected_facts,
)


def test_the_same_node_count_describes_the_same_cluster() -> None:
    assert expected_facts(nodes=9) == expected_facts(nodes=9)
    facts = expected_facts(nodes=9)
    nodes = [f["node"] for system, f in facts.items() if system != f"cluster:{CLUSTER_ID}"]
    assert [n["name"] for n in nodes[:4]] == [
        "ocp-lab-master-0",
        "ocp-lab-master-1",
        "ocp-lab-master-2",
        "ocp-lab-worker-0",
    ]
    assert {tuple(n["roles"]) for n in nodes} == {
        ("control-plane", "master"),
        ("worker",),
        ("infra", "worker"),
    }
    assert {n["architecture"] for n in nodes} == {"amd64", "arm64"}
    assert {n["provider_id"].split(":")[0] for n in nodes} == {"vsphere", "baremetalhost"}
    assert len({n["machine_id"] for n in nodes}) == len({n["system_uuid"] for n in nodes}) == 9
    counts = facts[f"cluster:{CLUSTER_ID}"]["namespaces"]
    assert any(c["pod_count"] == 0 for c in counts) and any(c["pod_count"] > 2 for c in counts)


def test_the_lab_command_prints_how_to_scan_the_cluster() -> None:
    behaviour = Behaviour()
    service = FakeOpenShift(
        nodes=3,
        token="sha256~t0ken-value",
        username="kubeadmin",
        password="pw",
        behaviour=behaviour,
    )
    running = RunningOpenShift(
        host="127.0.0.1",
        port=6443,
        token="sha256~t0ken-value",
        username="kubeadmin",
        password="pw",
        cert_path=Path("/tmp/server.crt"),
        nodes=3,
        behaviour=behaviour,
        service=service,
    )
    text = format_openshift(running)
    assert "https://127.0.0.1:6443 with 3 nodes" in text
    assert "sha256~t0ken-value" in text
    assert "qpc cred add --name ocp --type openshift --token" in text
    assert "--username kubeadmin --password" in text
    assert (
        "qpc source add --name ocp --type openshift --hosts 127.0.0.1 --port 6443 --cred ocp "
        "--ssl-cert-verify false"
    ) in text
