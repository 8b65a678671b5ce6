"""The AAP controller collector against a fake controller over real HTTPS on loopback: the
controller and the hosts it automates, by token and by password, from host metrics or from
job events, every page once, each way the controller can fail, bounded concurrency and stop."""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator
from typing import Any

import pytest

from quipu import wire
from quipu.collectors.ansible.collector import MAX_CONCURRENCY, TIMEOUT_ENV, connect, inspect
from quipu.collectors.base import SUCCESS
from quipu.lab.ansible import (
    ACTIVE_NODE,
    CONTROLLER_VERSION,
    Behaviour,
    Inventory,
    RunningController,
    running_controller,
)
from quipu.lab.satellite import running_satellite
from tests.collectors import api_job, changed, run_collector, unavailable
from tests.proxies import tunnelling_proxy
from tests.servers import free_port

INVENTORY = Inventory(hosts=23, retired_hosts=4, jobs=9, hosts_per_job=5)


@pytest.fixture(autouse=True)
def _collect_garbage() -> Iterator[None]:
    """Sockets a test leaves open are reported by the test that left them."""
    yield
    gc.collect()


@pytest.fixture(scope="module")
def controller() -> Iterator[RunningController]:
    """A healthy controller whose listings come in pages of 7."""
    with running_controller(inventory=INVENTORY, behaviour=Behaviour(max_page_size=7)) as running:
        yield running


def _job(
    controller: RunningController,
    kind: str,
    *,
    token: str | None = None,
    password: str | None = None,
    basic: bool = False,
    port: int | None = None,
    verify: bool = False,
    concurrency: int = 25,
) -> dict[str, Any]:
    login: dict[str, Any] = (
        {
            "username": controller.username,
            "password": controller.password if password is None else password,
        }
        if basic or password is not None
        else {"authToken": controller.token if token is None else token}
    )
    return api_job(
        "ansible",
        kind,
        host=controller.host,
        port=port or controller.port,
        credential=login,
        source_name="aap",
        verify=verify,
        concurrency=concurrency,
    )


def _inspected(job: dict[str, Any]) -> dict[str, Any]:
    """The controller's one inspection result."""
    (result,) = run_collector(inspect, job)
    assert (result.system, result.status) == ("127.0.0.1", SUCCESS)
    return result


def _where(controller: RunningController) -> str:
    return f"AAP controller {controller.host}:{controller.port}"


def test_connect_reports_the_controller_as_the_one_system(controller: RunningController) -> None:
    for job in (_job(controller, "connect"), _job(controller, "connect", basic=True)):
        (result,) = run_collector(connect, job)
        assert result.to_wire() == {
            "system": "127.0.0.1",
            "port": controller.port,
            "status": SUCCESS,
            "message": "",
            "credentialId": 5,
            "facts": {},
        }


def test_inspect_reports_the_controller_and_its_managed_hosts_from_host_metrics(
    controller: RunningController,
) -> None:
    for job in (_job(controller, "inspect"), _job(controller, "inspect", basic=True)):
        result = _inspected(job)
        assert result.message == ""
        assert result.facts == controller.expected
    facts = result.facts
    assert facts["instance_details"]["system_name"] == ACTIVE_NODE
    assert facts["instance_details"]["version"] == CONTROLLER_VERSION
    assert facts["instance_count"] == INVENTORY.instances
    assert facts["managed_hosts_source"] == "host_metrics"
    assert len(facts["hosts"]) == INVENTORY.hosts
    assert facts["comparison"]["number_of_hosts_only_in_jobs"] == INVENTORY.retired_hosts
    assert sum(row["automated_counter"] for row in facts["managed_hosts"]) == (
        INVENTORY.jobs * INVENTORY.hosts_per_job
    )


def test_every_page_is_read_once(controller: RunningController) -> None:
    paths = controller.controller.paths
    before = dict(paths)
    _inspected(_job(controller, "inspect"))
    read = {path: paths[path] - before.get(path, 0) for path in paths}
    assert read["/api/v2/hosts/"] == 4  # 23 hosts, 7 a page
    assert read["/api/v2/host_metrics/"] == 4  # 27 automated hosts
    assert read.get("/api/v2/jobs/", 0) == 0, "host metrics make the jobs unneeded"


def test_a_controller_without_host_metrics_is_read_from_its_job_events() -> None:
    behaviour = Behaviour(host_metrics=False, max_page_size=3)
    with running_controller(inventory=INVENTORY, behaviour=behaviour) as old:
        result = _inspected(_job(old, "inspect"))
        assert result.message == ""
        assert result.facts == old.expected
        # 9 jobs in pages of 3, and each job's 10 runner_on_start events in pages of 3
        assert old.controller.paths["/api/v2/host_metrics/"] == 1  # HTTP 404
        assert old.controller.paths["/api/v2/jobs/"] == 3
        assert old.controller.paths["/api/v2/jobs/1/job_events/"] == 4
    facts = result.facts
    assert facts["managed_hosts_source"] == "job_events"
    assert facts["jobs"]["job_ids"] == list(range(1, INVENTORY.jobs + 1))
    assert "deleted" not in facts["managed_hosts"][0]


def test_controller_nodes_are_counted_from_instances_when_ping_does_not_list_them() -> None:
    inventory = Inventory(hosts=3, retired_hosts=0, jobs=1, hosts_per_job=1, instances=3)
    behaviour = Behaviour(ping_instances=False)
    with running_controller(inventory=inventory, behaviour=behaviour) as aap:
        result = _inspected(_job(aap, "inspect"))
        assert result.facts == aap.expected
    assert result.facts["instance_count"] == 3
    assert "instances" not in result.facts["instance_details"]

    denied = Behaviour(ping_instances=False, forbidden_path="instances/")
    with running_controller(inventory=inventory, behaviour=denied) as aap:
        result = _inspected(_job(aap, "inspect"))
    assert "access to GET /api/v2/instances/ (HTTP 403)" in result.message
    assert "The number of controller nodes is unknown." in result.message
    assert "instance_count" not in result.facts
    assert result.facts["managed_hosts_source"] == "host_metrics"


def test_the_platform_gateway_of_aap_2_5_is_followed_to_the_controller() -> None:
    with running_controller(inventory=INVENTORY, behaviour=Behaviour(gateway=True)) as gateway:
        (connected,) = run_collector(connect, _job(gateway, "connect"))
        result = _inspected(_job(gateway, "inspect"))
        assert result.facts == gateway.expected
        assert "/api/controller/v2/host_metrics/" in gateway.controller.paths
        assert "/api/v2/ping/" not in gateway.controller.paths
    assert connected.status == SUCCESS


def test_an_expired_token_fails_the_job_saying_so() -> None:
    with running_controller(inventory=INVENTORY, behaviour=Behaviour(expired_token=True)) as aap:
        for run in (connect, inspect):
            message = unavailable(_job(aap, run.__name__), run=run)
            assert f"{_where(aap)} refused the credential's token (HTTP 401" in message
            assert "expired or was revoked" in message
            assert "auth_token" in message
        # The same user's password still works.
        assert _inspected(_job(aap, "inspect", basic=True)).facts == aap.expected


def test_a_wrong_token_or_password_is_refused_with_its_own_message(
    controller: RunningController,
) -> None:
    token = unavailable(_job(controller, "connect", token="not-the-token"), run=connect)
    password = unavailable(_job(controller, "inspect", password="wrong"), run=inspect)
    assert "HTTP 401 to GET /api/v2/me/" in token
    assert "auth_token" in token
    assert f"{_where(controller)} refused the login of user 'admin' (HTTP 401" in password
    assert "username and password" in password


def test_a_user_denied_its_own_record_fails_the_job() -> None:
    behaviour = Behaviour(forbidden_path="me/")
    with running_controller(inventory=INVENTORY, behaviour=behaviour) as aap:
        message = unavailable(_job(aap, "connect"), run=connect)
    assert f"{_where(aap)} denied the credential's token access to GET /api/v2/me/" in message
    assert "HTTP 403" in message
    assert "System Auditor" in message


def test_host_metrics_denied_are_read_from_job_events_instead() -> None:
    behaviour = Behaviour(forbidden_path="host_metrics/")
    with running_controller(inventory=INVENTORY, behaviour=behaviour) as aap:
        result = _inspected(_job(aap, "inspect"))
        expected = aap.expected
    assert "access to GET /api/v2/host_metrics/ (HTTP 403)" in result.message
    assert "read from the jobs' events instead" in result.message
    facts = result.facts
    assert facts["managed_hosts_source"] == "job_events"
    assert [row["hostname"] for row in facts["managed_hosts"]] == [
        row["hostname"] for row in expected["managed_hosts"]
    ]
    assert facts["hosts"] == expected["hosts"]


def test_inventory_hosts_denied_leave_only_them_unknown() -> None:
    behaviour = Behaviour(forbidden_path="hosts/")
    with running_controller(inventory=INVENTORY, behaviour=behaviour) as aap:
        result = _inspected(_job(aap, "inspect"))
        expected = aap.expected
    assert "access to GET /api/v2/hosts/ (HTTP 403)" in result.message
    assert "The inventory hosts are unknown." in result.message
    assert set(result.facts) == set(expected) - {"hosts", "comparison"}
    assert result.facts["managed_hosts"] == expected["managed_hosts"]


def test_a_server_error_on_one_page_leaves_that_listing_unknown() -> None:
    behaviour = Behaviour(max_page_size=5, failing_page=("hosts/", 3))
    with running_controller(inventory=INVENTORY, behaviour=behaviour) as aap:
        result = _inspected(_job(aap, "inspect"))
    assert (
        f"{_where(aap)} answered HTTP 500 to GET /api/v2/hosts/ (page 3): see the "
        "controller's /var/log/tower/tower.log" in result.message
    )
    assert "hosts" not in result.facts
    assert result.facts["managed_hosts_source"] == "host_metrics"


def test_the_events_of_one_job_that_fail_leave_that_job_out() -> None:
    behaviour = Behaviour(host_metrics=False, failing_page=("jobs/3/job_events/", 1))
    with running_controller(inventory=INVENTORY, behaviour=behaviour) as old:
        result = _inspected(_job(old, "inspect"))
    message = result.message
    assert message.startswith("The events of 1 job (id 3) could not be read, first: ")
    assert "HTTP 500 to GET /api/v2/jobs/3/job_events/" in message
    facts = result.facts
    assert facts["jobs"]["job_ids"] == [1, 2, 4, 5, 6, 7, 8, 9]
    automations = sum(row["automated_counter"] for row in facts["managed_hosts"])
    assert automations == (INVENTORY.jobs - 1) * INVENTORY.hosts_per_job


def test_a_slow_listing_leaves_it_unknown_and_a_slow_ping_fails_the_job(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(TIMEOUT_ENV, "0.3")
    behaviour = Behaviour(slow_path="host_metrics/", slow_s=3.0)
    with running_controller(inventory=INVENTORY, behaviour=behaviour) as aap:
        started = time.monotonic()
        result = _inspected(_job(aap, "inspect"))
        assert time.monotonic() - started < 2.5
    assert f"{_where(aap)} did not answer GET /api/v2/host_metrics/ within 0.3 s" in result.message
    assert "QUIPU_ANSIBLE_TIMEOUT_S" in result.message
    assert result.facts["managed_hosts_source"] == "job_events"

    with running_controller(
        inventory=INVENTORY, behaviour=Behaviour(slow_path="ping/", slow_s=3.0)
    ) as slow:
        message = unavailable(_job(slow, "connect"), run=connect)
    assert f"{_where(slow)} did not answer GET /api/v2/ping/ within 0.3 s" in message


def test_malformed_json_fails_what_it_feeds(controller: RunningController) -> None:
    with running_controller(
        inventory=INVENTORY, behaviour=Behaviour(malformed_path="ping/")
    ) as broken:
        message = unavailable(_job(broken, "connect"), run=connect)
    assert f"{_where(broken)} sent malformed JSON for GET /api/v2/ping/" in message
    behaviour = Behaviour(host_metrics=False, malformed_path="jobs/")
    with running_controller(inventory=INVENTORY, behaviour=behaviour) as broken:
        result = _inspected(_job(broken, "inspect"))
    assert f"{_where(broken)} sent malformed JSON for GET /api/v2/jobs/" in result.message
    assert "The managed hosts are unknown." in result.message
    assert {"managed_hosts", "jobs", "comparison"}.isdisjoint(result.facts)
    assert len(result.facts["hosts"]) == INVENTORY.hosts


def test_an_untrusted_certificate_is_refused_when_verification_is_on(
    controller: RunningController,
) -> None:
    message = unavailable(_job(controller, "connect", verify=True), run=connect)
    assert f"{_where(controller)} presented a TLS certificate" in message
    assert "ssl_cert_verify" in message


def test_a_certificate_trusted_through_ssl_cert_file_is_accepted(
    controller: RunningController, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(controller.cert_path))
    assert len(run_collector(connect, _job(controller, "connect", verify=True))) == 1


def test_nothing_listening_and_no_controller_are_said_apart(
    controller: RunningController,
) -> None:
    port = free_port()
    refused = unavailable(_job(controller, "connect", port=port), run=connect)
    assert f"AAP controller 127.0.0.1:{port} refused the connection" in refused
    with running_satellite(hosts=1) as satellite:
        job = _job(controller, "connect", port=satellite.port)
        credential = wire.Credential(id=5, username="admin", password=satellite.password)
        job = job.model_copy(update={"credentials": [credential]})
        not_one = unavailable(job, run=connect)
    assert "does not serve GET /api/ (HTTP 404)" in not_one
    assert "check that the source's host and port are the automation controller's" in not_one


def test_requests_in_flight_are_bounded_by_the_job_concurrency() -> None:
    inventory = Inventory(hosts=5, retired_hosts=0, jobs=30, hosts_per_job=2)
    behaviour = Behaviour(host_metrics=False, max_page_size=2, latency_s=0.03)
    with running_controller(inventory=inventory, behaviour=behaviour) as aap:
        aap.controller.take_counts()
        result = _inspected(_job(aap, "inspect", concurrency=4))
        assert result.facts == aap.expected
        assert 2 <= aap.controller.max_in_flight <= 4


def test_a_huge_concurrency_is_capped() -> None:
    inventory = Inventory(hosts=1, retired_hosts=0, jobs=MAX_CONCURRENCY * 2, hosts_per_job=1)
    behaviour = Behaviour(host_metrics=False, latency_s=0.1)
    with running_controller(inventory=inventory, behaviour=behaviour) as aap:
        aap.controller.take_counts()
        _inspected(_job(aap, "inspect", concurrency=500))
        assert MAX_CONCURRENCY // 2 <= aap.controller.max_in_flight <= MAX_CONCURRENCY


def test_stop_returns_early_without_a_result() -> None:
    inventory = Inventory(hosts=5, retired_hosts=0, jobs=200, hosts_per_job=2)
    behaviour = Behaviour(host_metrics=False, latency_s=0.05)
    with running_controller(inventory=inventory, behaviour=behaviour) as aap:
        started = time.monotonic()
        results = run_collector(inspect, _job(aap, "inspect", concurrency=2), stop_in_s=0.5)
        assert time.monotonic() - started < 2
    assert results == []


def test_stop_does_not_wait_for_a_slow_answer() -> None:
    behaviour = Behaviour(slow_path="me/", slow_s=20.0)
    with running_controller(inventory=INVENTORY, behaviour=behaviour) as aap:
        started = time.monotonic()
        assert run_collector(connect, _job(aap, "connect"), stop_in_s=0.3) == []
        assert time.monotonic() - started < 3


def test_inspect_through_a_proxy(controller: RunningController) -> None:
    with tunnelling_proxy() as (proxy_url, targets):
        job = _job(controller, "inspect")
        job = changed(job, proxy_url=proxy_url)
        assert _inspected(job).facts == controller.expected
    assert set(targets) == {f"{controller.host}:{controller.port}"}


def test_plain_http_when_ssl_is_disabled() -> None:
    with running_controller(inventory=INVENTORY, tls=False) as plain:
        job = _job(plain, "inspect")
        job = changed(job, disable_ssl=True)
        assert _inspected(job).facts == plain.expected
        assert "TLS handshake" in unavailable(_job(plain, "connect"), run=connect)
