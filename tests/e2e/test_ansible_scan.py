"""AAP controller sources scanned for real: a server and its built-in scanner against a fake
automation controller over HTTPS on loopback, by token and by password."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from quipu.lab.ansible import (
    ACTIVE_NODE,
    CONTROLLER_VERSION,
    Behaviour,
    Inventory,
    RunningController,
    running_controller,
)
from tests.e2e.scans import add_api_source, add_scan, counters, report, results, run_scan
from tests.servers import register_secret

SERVER_ENV = {"QUIPU_DISPATCH_INTERVAL_S": "0.2"}
INVENTORY = Inventory(hosts=12, retired_hosts=3, jobs=8, hosts_per_job=4)


@pytest.fixture(scope="module")
def controller() -> Iterator[RunningController]:
    with running_controller(inventory=INVENTORY, behaviour=Behaviour(max_page_size=5)) as aap:
        register_secret(aap.password, aap.token)
        yield aap


def add_controller(
    api: httpx.Client, aap: RunningController, *, name: str, credential: dict[str, Any]
) -> int:
    return add_api_source(
        api, name=name, source_type="ansible", port=aap.port, credential=credential
    )


def test_an_ansible_scan_reports_the_controller_and_keeps_its_managed_hosts_as_facts(
    api: httpx.Client, controller: RunningController
) -> None:
    by_token = add_controller(
        api, controller, name="aap-token", credential={"auth_token": controller.token}
    )
    by_password = add_controller(
        api,
        controller,
        name="aap-password",
        credential={"username": controller.username, "password": controller.password},
    )
    job = run_scan(api, add_scan(api, name="aap", sources=[by_token, by_password]))
    assert job["status"] == "completed", job["status_message"]
    assert counters(job) == (2, 2, 0, 0)
    expected = controller.expected
    inspected = results(api, job["id"], "inspection")
    assert [(r["name"], r["status"]) for r in inspected] == [("127.0.0.1", "success")] * 2
    assert all(r["facts"] == expected for r in inspected)

    (system,) = report(api, job["report_id"], "deployments")["system_fingerprints"]
    assert (system["name"], system["os_version"]) == (ACTIVE_NODE, CONTROLLER_VERSION)
    assert sorted(s["source_name"] for s in system["sources"]) == ["aap-password", "aap-token"]
    assert system["os_name"] is None and system["ip_addresses"] in (None, [])

    details = report(api, job["report_id"], "details")
    assert {s["source_type"] for s in details["sources"]} == {"ansible"}
    for details_source in details["sources"]:
        (facts,) = details_source["facts"]
        assert facts["managed_hosts_source"] == "host_metrics"
        assert [row["hostname"] for row in facts["managed_hosts"]] == [
            row["hostname"] for row in expected["managed_hosts"]
        ]
        assert facts["comparison"]["number_of_hosts_only_in_jobs"] == INVENTORY.retired_hosts

    counts = report(api, job["report_id"], "aggregate")["results"]
    automated = len(expected["managed_hosts"])
    assert (counts["ansible_hosts_in_database"], counts["ansible_hosts_in_jobs"]) == (
        INVENTORY.hosts,
        automated,
    )
    assert counts["ansible_hosts_all"] == INVENTORY.hosts + INVENTORY.retired_hosts

    # A token that no longer works fails the connection, saying so once.
    expired = add_controller(
        api, controller, name="aap-expired", credential={"auth_token": "expired-token-123"}
    )
    failed = run_scan(api, add_scan(api, name="aap-expired", sources=[expired]))
    assert failed["status"] == "failed"
    connect, inspect = failed["tasks"]
    assert (connect["status"], inspect["status"]) == ("failed", "failed")
    message = failed["status_message"]
    assert message.count("Connection to source 'aap-expired'") == 1
    assert "refused the credential's token (HTTP 401" in message
    assert "auth_token" in message
