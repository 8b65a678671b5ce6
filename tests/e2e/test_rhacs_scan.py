"""RHACS sources scanned for real: a server and its built-in scanner against a fake RHACS
Central over HTTPS on loopback, the Central in the deployments report and its secured units
and clusters in the details report."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from quipu.lab.rhacs import CENTRAL_VERSION, Behaviour, RunningCentral, running_central
from quipu.lab.rhacs import CLUSTERS as CLUSTERS_PATH
from tests.e2e.scans import add_api_source, add_scan, counters, report, results, run_scan
from tests.servers import register_secret

SERVER_ENV = {"QUIPU_DISPATCH_INTERVAL_S": "0.2"}
CLUSTERS = 4
WRONG_TOKEN = "not-the-rhacs-token"


@pytest.fixture(scope="module")
def central() -> Iterator[RunningCentral]:
    with running_central(clusters=CLUSTERS) as running:
        register_secret(running.token)
        yield running


def add_central(
    api: httpx.Client, central: RunningCentral, *, name: str, token: str | None = None
) -> int:
    return add_api_source(
        api,
        name=name,
        source_type="rhacs",
        port=central.port,
        credential={"auth_token": token or central.token},
    )


def test_a_central_is_scanned_into_both_reports_and_a_refused_token_fails_once(
    api: httpx.Client, central: RunningCentral
) -> None:
    job = run_scan(api, add_scan(api, name="acs", sources=[add_central(api, central, name="acs")]))
    assert job["status"] == "completed", job["status_message"]
    assert counters(job) == (1, 1, 0, 0)
    expected = central.expected
    (inspected,) = results(api, job["id"], "inspection")
    assert (inspected["name"], inspected["status"]) == (central.host, "success")
    assert inspected["facts"] == expected

    (system,) = report(api, job["report_id"], "deployments")["system_fingerprints"]
    assert (system["name"], system["os_version"]) == (central.host, CENTRAL_VERSION)
    assert [s["source_type"] for s in system["sources"]] == ["rhacs"]

    (source,) = report(api, job["report_id"], "details")["sources"]
    assert source["source_type"] == "rhacs"
    (facts,) = source["facts"]
    assert facts["secured_units_current"] == expected["secured_units_current"]
    assert facts["secured_units_max"] == expected["secured_units_max"]
    assert [c["name"] for c in facts["clusters"]] == central.cluster_names
    assert facts["clusters"] == expected["clusters"]

    refused = add_central(api, central, name="acs-expired", token=WRONG_TOKEN)
    failed = run_scan(api, add_scan(api, name="acs-expired", sources=[refused]))
    assert failed["status"] == "failed"
    connect, inspect = failed["tasks"]
    assert (connect["status"], inspect["status"]) == ("failed", "failed")
    message = failed["status_message"]
    assert message.count("Connection to source 'acs-expired'") == 1
    assert "refused the credential's API token (HTTP 401" in message
    assert "expired or was revoked" in message
    assert counters(failed) == (0, 0, 0, 0)


def test_clusters_central_cannot_list_leave_them_unknown_and_say_why(api: httpx.Client) -> None:
    with running_central(clusters=2, behaviour=Behaviour(failing_path=CLUSTERS_PATH)) as broken:
        register_secret(broken.token)
        source = add_central(api, broken, name="acs-broken")
        job = run_scan(api, add_scan(api, name="acs-broken", sources=[source]))
        expected = broken.expected
    assert job["status"] == "completed", job["status_message"]
    (inspected,) = results(api, job["id"], "inspection")
    assert inspected["status"] == "success"
    assert inspected["message"].startswith("The secured clusters are unknown: ")
    assert f"HTTP 500 to GET {CLUSTERS_PATH}" in inspected["message"]
    assert inspected["facts"] == expected
    assert "clusters" not in expected
