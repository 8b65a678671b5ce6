"""An RHACS Central's raw facts from its API answers, and its fingerprint (no I/O)."""

from __future__ import annotations

from typing import Any

import pytest

from quipu.collectors.rhacs import facts
from quipu.reports.fingerprint import fingerprint

METADATA = {
    "version": "4.5.1",
    "buildFlavor": "release",
    "releaseBuild": True,
    "licenseStatus": "VALID",
}

OPENSHIFT_CLUSTER: dict[str, Any] = {
    "id": "9b0e4d2a-1f7c-4c55-8d7e-1a2b3c4d5e6f",
    "name": "production",
    "type": "OPENSHIFT4_CLUSTER",
    "labels": {"env": "prod"},
    "collectionMethod": "CORE_BPF",
    "admissionController": True,
    "managedBy": "MANAGER_TYPE_HELM_CHART",
    "status": {
        "sensorVersion": "4.5.1",
        "providerMetadata": {
            "region": "us-east-1",
            "zone": "us-east-1a",
            "aws": {"accountId": "123456789012"},
            "verified": True,
            "cluster": {"type": "OCP", "name": "production", "id": "ocp-cluster-id"},
        },
        "orchestratorMetadata": {
            "version": "v1.27.10+28ed2d7",
            "openshiftVersion": "4.14.12",
            "buildDate": "2024-03-01T10:00:00Z",
        },
    },
    "healthStatus": {
        "collectorHealthInfo": {"totalRegisteredNodes": 6, "totalReadyPods": 6},
        "overallHealthStatus": "HEALTHY",
        "lastContact": "2025-11-30T12:00:00Z",
    },
}


def test_the_central_fact_names_where_it_was_reached_and_its_version() -> None:
    assert facts.central_facts(host="acs.example.com", port=443, metadata=METADATA) == {
        "host": "acs.example.com",
        "port": 443,
        "version": "4.5.1",
        "build_flavor": "release",
        "release_build": True,
        "license_status": "VALID",
    }


def test_a_version_central_hides_from_anonymous_callers_is_left_out() -> None:
    central = facts.central_facts(
        host="acs.example.com", port=443, metadata={"version": "", "buildFlavor": "release"}
    )
    assert central == {"host": "acs.example.com", "port": 443, "build_flavor": "release"}


def test_the_current_secured_units_keep_the_apis_keys_and_strings() -> None:
    body = {"numNodes": "3", "numCpuUnits": "20"}
    assert facts.secured_units_current(body) == {"numNodes": "3", "numCpuUnits": "20"}
    # Numbers written as JSON numbers read as the strings Central's gateway writes.
    assert facts.secured_units_current({"numNodes": 3, "numCpuUnits": 20}) == body


def test_a_count_left_out_is_zero_as_proto3_json_omits_it() -> None:
    assert facts.secured_units_current({}) == {"numNodes": "0", "numCpuUnits": "0"}


def test_the_peak_keeps_its_times_and_leaves_out_an_unknown_one() -> None:
    body = {
        "maxNodesAt": "2025-07-20T00:00:00Z",
        "maxNodes": "4",
        "maxCpuUnitsAt": "2025-10-28T00:00:00Z",
        "maxCpuUnits": "30",
    }
    assert facts.secured_units_max(body) == body
    empty = {"maxNodesAt": None, "maxNodes": "0", "maxCpuUnitsAt": None, "maxCpuUnits": "0"}
    assert facts.secured_units_max(empty) == {"maxNodes": "0", "maxCpuUnits": "0"}


@pytest.mark.parametrize(
    ("reader", "body", "why"),
    [
        (facts.secured_units_current, [1, 2], "not a JSON object"),
        (facts.secured_units_current, {"numNodes": "three"}, "numNodes is 'three'"),
        (facts.secured_units_current, {"numNodes": -1}, "not a count"),
        (facts.secured_units_max, {"maxNodes": True}, "maxNodes is True"),
        (facts.secured_units_max, {"maxNodesAt": 7, "maxNodes": "1"}, "maxNodesAt is 7"),
        (facts.clusters, {"clusters": {}}, "no list of clusters"),
        (facts.clusters, None, "no list of clusters"),
    ],
)
def test_an_answer_not_in_the_apis_shape_is_malformed(reader: Any, body: Any, why: str) -> None:
    with pytest.raises(facts.Malformed, match=why):
        reader(body)


def test_a_cluster_reads_its_type_versions_health_and_provider() -> None:
    assert facts.clusters({"clusters": [OPENSHIFT_CLUSTER], "clusterIdToRetentionInfo": {}}) == [
        {
            "id": "9b0e4d2a-1f7c-4c55-8d7e-1a2b3c4d5e6f",
            "name": "production",
            "type": "OPENSHIFT4_CLUSTER",
            "labels": {"env": "prod"},
            "health_status": "HEALTHY",
            "last_contact": "2025-11-30T12:00:00Z",
            "sensor_version": "4.5.1",
            "kubernetes_version": "v1.27.10+28ed2d7",
            "openshift_version": "4.14.12",
            "nodes": 6,
            "provider": "aws",
            "region": "us-east-1",
            "zone": "us-east-1a",
            "provider_cluster_id": "ocp-cluster-id",
            "admission_controller": True,
            "collection_method": "CORE_BPF",
            "managed_by": "MANAGER_TYPE_HELM_CHART",
        }
    ]


def test_a_bare_cluster_leaves_out_what_central_does_not_say() -> None:
    bare = {
        "id": "c1",
        "name": "kind",
        "type": "KUBERNETES_CLUSTER",
        "labels": {},
        "status": {"providerMetadata": None, "orchestratorMetadata": {"openshiftVersion": ""}},
    }
    assert facts.clusters({"clusters": [bare, "not a cluster"]}) == [
        {"id": "c1", "name": "kind", "type": "KUBERNETES_CLUSTER"}
    ]


def _central_record() -> dict[str, Any]:
    return {
        "central": facts.central_facts(host="acs.example.com", port=443, metadata=METADATA),
        "secured_units_current": {"numNodes": "3", "numCpuUnits": "20"},
        "secured_units_max": {"maxNodes": "4", "maxCpuUnits": "30"},
        "clusters": facts.clusters({"clusters": [OPENSHIFT_CLUSTER]}),
    }


def test_the_central_is_named_by_its_host_with_its_version() -> None:
    found = fingerprint(source_name="acs", source_type="rhacs", facts=_central_record())
    assert found is not None
    assert found.known() == {"name": "acs.example.com", "os_version": "4.5.1"}
    assert found.raw_fact_key("name") == "central__host"
    assert found.raw_fact_key("os_version") == "central__version"


def test_the_units_and_clusters_stay_in_the_details_only() -> None:
    record = _central_record()
    del record["central"]["version"]
    found = fingerprint(source_name="acs", source_type="rhacs", facts=record)
    assert found is not None
    assert found.known() == {"name": "acs.example.com"}


@pytest.mark.parametrize(
    "record",
    [{}, {"secured_units_current": {"numNodes": "3"}}, {"central": {"port": 443}}],
)
def test_a_record_without_a_central_is_no_system(record: dict[str, Any]) -> None:
    assert fingerprint(source_name="acs", source_type="rhacs", facts=record) is None
