"""OpenShift sources scanned for real: a server and its built-in scanner against a fake
OpenShift 4 cluster over HTTPS on loopback, its nodes in the deployments report with their
cluster, its facts in the details report, and a refused token failing the connection."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from quipu.lab.openshift import Behaviour, RunningOpenShift, running_openshift
from tests.e2e.scans import add_api_source, add_scan, counters, report, results, run_scan
from tests.servers import RunningServer, register_secret

SERVER_ENV = {"QUIPU_DISPATCH_INTERVAL_S": "0.2"}
NODES = 5


@pytest.fixture(scope="module")
def cluster() -> Iterator[RunningOpenShift]:
    """A healthy cluster whose listings come in pages of 2 items."""
    with running_openshift(nodes=NODES, behaviour=Behaviour(page_size=2)) as running:
        register_secret(running.token, running.password)
        yield running


def test_an_openshift_scan_reports_its_nodes_with_their_cluster_or_the_refused_token(
    server: RunningServer, cluster: RunningOpenShift
) -> None:
    with server.client() as api:
        source = add_api_source(
            api,
            name="ocp",
            source_type="openshift",
            port=cluster.port,
            credential={"auth_token": cluster.token},
        )
        job = run_scan(api, add_scan(api, name="ocp", sources=[source]))
        assert job["status"] == "completed", job["status_message"]
        systems = NODES + 1  # the nodes and the cluster's own record
        assert counters(job) == (systems, systems, 0, 0)
        assert [(t["scan_type"], t["status"], t["systems_count"]) for t in job["tasks"]] == [
            ("connect", "completed", systems),
            ("inspect", "completed", systems),
        ]
        expected = cluster.expected
        inspected = {r["name"]: r for r in results(api, job["id"], "inspection")}
        assert set(inspected) == set(expected)
        for name, facts in expected.items():
            assert inspected[name]["status"] == "success"
            assert inspected[name]["facts"] == facts, name

        deployments = report(api, job["report_id"], "deployments")["system_fingerprints"]
        by_name = {s["name"]: s for s in deployments}
        assert sorted(by_name) == sorted(cluster.names), "the cluster's record is no system"
        for name in cluster.names:
            node, system = expected[name]["node"], by_name[name]
            assert system["vm_cluster"] == cluster.cluster_id
            assert system["cpu_count"] == node["capacity"]["cpu"]
            assert system["etc_machine_id"] == node["machine_id"]
            assert system["bios_uuid"] == node["system_uuid"].lower()
            assert (
                system["architecture"]
                == {"amd64": "x86_64", "arm64": "aarch64"}[node["architecture"]]
            )
            assert [s["source_type"] for s in system["sources"]] == ["openshift"]

        (details,) = report(api, job["report_id"], "details")["sources"]
        assert details["source_type"] == "openshift"
        records = {f["system"]: f for f in details["facts"]}
        assert set(records) == set(expected)
        record = records[cluster.cluster_system]
        assert (
            record["cluster"]["version"] == expected[cluster.cluster_system]["cluster"]["version"]
        )
        assert record["operators"] == expected[cluster.cluster_system]["operators"]
        assert record["namespaces"] == expected[cluster.cluster_system]["namespaces"]

        refused = add_api_source(
            api,
            name="ocp-expired",
            source_type="openshift",
            port=cluster.port,
            credential={"auth_token": "sha256~an-expired-token"},
        )
        failed = run_scan(api, add_scan(api, name="ocp-expired", sources=[refused]))
        assert failed["status"] == "failed"
        connect, inspect = failed["tasks"]
        assert (connect["status"], inspect["status"]) == ("failed", "failed")
        message = failed["status_message"]
        assert message.count("Connection to source 'ocp-expired' failed") == 1
        assert "refused the credential's token (HTTP 401)" in message
        assert "expired" in message
