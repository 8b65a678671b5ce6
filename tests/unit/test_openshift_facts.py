"""OpenShift API answers -> raw facts: quantities, roles, nodes, operators and workload counts."""

from __future__ import annotations

import decimal
from typing import Any

import pytest

from quipu.collectors.openshift import facts as f
from quipu.collectors.openshift.client import resource_of

NODE: dict[str, Any] = {
    "metadata": {
        "name": "worker-1",
        "creationTimestamp": "2022-12-18T03:56:20Z",
        "labels": {
            "kubernetes.io/arch": "amd64",
            "node-role.kubernetes.io/worker": "",
            "node-role.kubernetes.io/infra": "",
        },
    },
    "spec": {"providerID": "aws:///us-east-1a/i-0abc", "taints": [{"key": "k", "effect": "E"}]},
    "status": {
        "addresses": [
            {"type": "InternalIP", "address": "10.0.1.23"},
            {"type": "Hostname", "address": "worker-1"},
            {"type": "ExternalIP", "address": ""},
        ],
        "capacity": {"cpu": "4", "memory": "15252796Ki", "pods": "250", "hugepages-1Gi": "0"},
        "allocatable": {"cpu": "3500m", "memory": "14.5Gi", "pods": "250"},
        "nodeInfo": {
            "architecture": "amd64",
            "kernelVersion": "5.14.0-284.73.1.el9_2.x86_64",
            "machineID": "0123456789abcdef0123456789abcdef",
            "systemUUID": "EC2A3F1B-0000-4000-8000-000000000001",
            "operatingSystem": "linux",
            "osImage": "Red Hat Enterprise Linux CoreOS 415.92 (Plow)",
        },
    },
}


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("4", 4),
        ("3500m", decimal.Decimal("3.5")),
        ("15252796Ki", 15252796 * 1024),
        ("1.5Gi", 1610612736),
        ("2G", 2 * 1000**3),
        ("128974848", 128974848),
        ("1e3", 1000),
        (8, 8),
    ],
)
def test_quantities_read_as_kubernetes_writes_them(text: Any, value: Any) -> None:
    assert f.quantity(text) == value


@pytest.mark.parametrize("text", ["", "lots", "12Qi", "1.2.3", None, True, [4]])
def test_what_is_no_quantity_is_unknown(text: Any) -> None:
    assert f.quantity(text) is None


def test_a_node_keeps_the_established_shape_and_adds_its_identity() -> None:
    node = f.node_facts(NODE, cluster_uuid="c-1")["node"]
    assert node == {
        "kind": "node",
        "name": "worker-1",
        "cluster_uuid": "c-1",
        "creation_timestamp": "2022-12-18T03:56:20Z",
        "labels": NODE["metadata"]["labels"],
        "roles": ["infra", "worker"],
        "addresses": [
            {"type": "InternalIP", "address": "10.0.1.23"},
            {"type": "Hostname", "address": "worker-1"},
        ],
        "allocatable": {
            "kind": "node-resources",
            "cpu": 3.5,
            "memory_in_bytes": 15569256448,
            "pods": 250,
        },
        "capacity": {
            "kind": "node-resources",
            "cpu": 4,
            "memory_in_bytes": 15618863104,
            "pods": 250,
        },
        "architecture": "amd64",
        "kernel_version": "5.14.0-284.73.1.el9_2.x86_64",
        "machine_id": "0123456789abcdef0123456789abcdef",
        "system_uuid": "EC2A3F1B-0000-4000-8000-000000000001",
        "operating_system": "linux",
        "os_image": "Red Hat Enterprise Linux CoreOS 415.92 (Plow)",
        "provider_id": "aws:///us-east-1a/i-0abc",
        "taints": [{"key": "k", "effect": "E"}],
        "errors": {},
    }


def test_a_node_the_api_says_little_about_leaves_its_facts_out() -> None:
    node = f.node_facts({"metadata": {"name": "n"}}, cluster_uuid=None)["node"]
    assert node == {
        "kind": "node",
        "name": "n",
        "labels": {},
        "roles": [],
        "addresses": [],
        "taints": [],
        "errors": {},
    }


def test_the_cluster_version_is_the_desired_one_or_the_latest_in_history() -> None:
    version = {"spec": {"clusterID": "c-1"}, "status": {"desired": {"version": "4.15.2"}}}
    assert (f.cluster_id(version), f.cluster_version(version)) == ("c-1", "4.15.2")
    history = {"status": {"history": [{"version": "4.14.9"}, {"version": "4.14.1"}]}}
    assert f.cluster_version(history) == "4.14.9"
    assert f.cluster_id({}) is None
    assert f.cluster_system("c-1") == "cluster:c-1"


def test_a_cluster_operator_is_its_operator_version_and_last_change() -> None:
    item = {
        "metadata": {"name": "dns", "creationTimestamp": "2024-01-01T00:00:00Z"},
        "status": {
            "conditions": [
                {"type": "Degraded", "lastTransitionTime": "2024-01-01T00:00:00Z"},
                {"type": "Available", "lastTransitionTime": "2024-03-01T00:00:00Z"},
            ],
            "versions": [
                {"name": "coredns", "version": "1.11"},
                {"name": "operator", "version": "4.15.2"},
            ],
        },
    }
    assert f.cluster_operator(item) == {
        "kind": "cluster-operator",
        "name": "dns",
        "version": "4.15.2",
        "created_at": "2024-01-01T00:00:00Z",
        "updated_at": "2024-03-01T00:00:00Z",
    }


def test_an_olm_operator_takes_its_csv_names_or_splits_the_csv_name_without_it() -> None:
    subscription = {
        "metadata": {"name": "logging", "namespace": "openshift-logging"},
        "spec": {"name": "cluster-logging", "channel": "stable-5.9", "source": "redhat-operators"},
        "status": {"installedCSV": "cluster-logging.v5.9.3", "lastUpdated": "2024-06-01T00:00:00Z"},
    }
    csv = f.csv_summary(
        {
            "metadata": {"name": "cluster-logging.v5.9.3", "namespace": "openshift-logging"},
            "spec": {"displayName": "Red Hat OpenShift Logging", "version": "5.9.3"},
        }
    )
    assert csv is not None
    operator = f.olm_operator(subscription, csvs=dict([csv]))
    assert operator == {
        "kind": "olm-operator",
        "name": "logging",
        "version": "5.9.3",
        "updated_at": "2024-06-01T00:00:00Z",
        "display_name": "Red Hat OpenShift Logging",
        "package": "cluster-logging",
        "source": "redhat-operators",
        "channel": "stable-5.9",
        "namespace": "openshift-logging",
    }
    alone = f.olm_operator(subscription, csvs={})
    assert (alone["version"], "display_name" in alone) == ("v5.9.3", False)


def test_workloads_are_counted_per_namespace_listed_or_not() -> None:
    counts = f.namespace_counts(namespaces=["b", "a"], pods={"a": 3, "c": 1}, deployments={"a": 1})
    assert counts == [
        {"kind": "namespace", "name": "a", "pod_count": 3, "deployment_count": 1},
        {"kind": "namespace", "name": "b", "pod_count": 0, "deployment_count": 0},
        {"kind": "namespace", "name": "c", "pod_count": 1, "deployment_count": 0},
    ]


def test_a_part_that_failed_is_left_out_and_named_in_the_errors() -> None:
    error = f.error(status=403, reason="Forbidden", message="denied")
    facts = f.cluster_facts(
        uuid="c-1",
        version="4.15.2",
        kubernetes_version=None,
        operators=None,
        namespaces=[],
        errors={"operators": error},
    )
    assert facts == {
        "cluster": {
            "kind": "cluster",
            "uuid": "c-1",
            "version": "4.15.2",
            "errors": {"operators": error},
        },
        "namespaces": [],
    }


@pytest.mark.parametrize(
    ("path", "resource"),
    [
        ("/api/v1/nodes", "nodes"),
        (
            "/apis/config.openshift.io/v1/clusterversions/version",
            "clusterversions.config.openshift.io",
        ),
        ("/apis/apps/v1/deployments?limit=500", "deployments.apps"),
        ("/version", "/version"),
    ],
)
def test_messages_name_a_resource_as_kubernetes_does(path: str, resource: str) -> None:
    assert resource_of(path) == resource
