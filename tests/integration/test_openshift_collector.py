"""The OpenShift collector against a fake OpenShift 4 cluster over real HTTPS on loopback:
nodes and the cluster counted and inspected, paged listings, token and password logins,
each way the cluster can fail, bounded concurrency and stop."""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator
from typing import Any

import pytest

from quipu.collectors.base import SUCCESS, Run
from quipu.collectors.openshift.client import CLUSTER_VERSION, NODES
from quipu.collectors.openshift.collector import (
    CLUSTER_OPERATORS,
    MAX_CONCURRENCY,
    PODS,
    SUBSCRIPTIONS,
    TIMEOUT_ENV,
    connect,
    inspect,
)
from quipu.lab.openshift import Behaviour, RunningOpenShift, running_openshift
from tests.collectors import api_job, changed, run_collector, unavailable
from tests.proxies import tunnelling_proxy
from tests.servers import free_port

NODE_COUNT = 11
PAGE = 4


@pytest.fixture(autouse=True)
def _collect_garbage() -> Iterator[None]:
    """Sockets a test leaves open are reported by the test that left them."""
    yield
    gc.collect()


@pytest.fixture(scope="module")
def cluster() -> Iterator[RunningOpenShift]:
    """A healthy cluster whose listings come in pages of 4 items."""
    with running_openshift(nodes=NODE_COUNT, behaviour=Behaviour(page_size=PAGE)) as running:
        yield running


def _job(
    cluster: RunningOpenShift,
    kind: str,
    *,
    token: str | None = None,
    password: str | None = None,
    port: int | None = None,
    verify: bool = False,
    concurrency: int = 25,
) -> dict[str, Any]:
    """A job of the token credential; with ``password``, of a username and password one."""
    login: dict[str, Any] = (
        {"username": cluster.username, "password": password}
        if password is not None
        else {"authToken": cluster.token if token is None else token}
    )
    return api_job(
        "openshift",
        kind,
        host=cluster.host,
        port=port or cluster.port,
        credential=login,
        source_name="ocp",
        verify=verify,
        concurrency=concurrency,
    )


def _by_system(results: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    by_system = {r.system: r for r in results}
    assert len(by_system) == len(results), "a system reported twice"
    return by_system


def test_connect_reports_every_node_and_the_cluster_once(cluster: RunningOpenShift) -> None:
    before = cluster.service.paths.get(NODES, 0)
    results = run_collector(connect, _job(cluster, "connect"))
    assert [r.system for r in results] == [*cluster.names, cluster.cluster_system]
    assert {(r.status, r.port, r.credential_id) for r in results} == {(SUCCESS, cluster.port, 5)}
    assert all(r.facts == {} for r in results)
    # 11 nodes in pages of 4: three pages, followed through metadata.continue.
    assert cluster.service.paths[NODES] - before == 3


def test_inspect_reports_the_facts_of_every_node_and_of_the_cluster(
    cluster: RunningOpenShift,
) -> None:
    results = _by_system(run_collector(inspect, _job(cluster, "inspect", concurrency=5)))
    assert {(r.status, r.message) for r in results.values()} == {(SUCCESS, "")}
    facts = {system: r.facts for system, r in results.items()}
    assert facts == cluster.expected
    # The keys inspection uses are the ones connection reported.
    assert set(facts) == {r.system for r in run_collector(connect, _job(cluster, "connect"))}
    record = facts[cluster.cluster_system]
    assert record["cluster"]["uuid"] == cluster.cluster_id
    assert len(record["namespaces"]) > PAGE, "the namespaces came in several pages"
    assert {o["kind"] for o in record["operators"]} == {"cluster-operator", "olm-operator"}
    assert {f["node"]["cluster_uuid"] for s, f in facts.items() if s != cluster.cluster_system} == {
        cluster.cluster_id
    }


def test_a_username_and_password_log_in_as_oc_login_does(cluster: RunningOpenShift) -> None:
    logins = cluster.service.paths.get("/oauth/authorize", 0)
    results = run_collector(inspect, _job(cluster, "inspect", password=cluster.password))
    assert {r.system: r.facts for r in results} == cluster.expected
    assert cluster.service.paths["/oauth/authorize"] == logins + 1
    assert len(run_collector(connect, _job(cluster, "connect", password=cluster.password))) == (
        NODE_COUNT + 1
    )


def test_a_wrong_password_is_refused_by_the_oauth_server(cluster: RunningOpenShift) -> None:
    message = unavailable(_job(cluster, "connect", password="not-the-password"), run=connect)
    assert f"OpenShift {cluster.host}:{cluster.port} refused the login of user" in message
    assert "HTTP 401 from its OAuth server" in message
    assert "username and password" in message


@pytest.mark.parametrize("run", [connect, inspect], ids=["connect", "inspect"])
def test_a_refused_token_fails_the_job_naming_the_token(
    cluster: RunningOpenShift, run: Run
) -> None:
    message = unavailable(_job(cluster, run.__name__, token="sha256~not-a-token"), run=run)
    assert f"OpenShift {cluster.host}:{cluster.port} refused the credential's token" in message
    assert "HTTP 401" in message
    assert "expired" in message


def test_an_expired_token_is_refused_everywhere() -> None:
    with running_openshift(nodes=2, behaviour=Behaviour(expired_token=True)) as expired:
        message = unavailable(_job(expired, "inspect"), run=inspect)
        login = unavailable(_job(expired, "connect", password=expired.password), run=connect)
    assert "refused the credential's token (HTTP 401)" in message
    assert "has expired" in message
    # A token the OAuth server just issued is refused too: that is no password problem.
    assert f"refused the token its OAuth server gave user {expired.username!r}" in login


def test_forbidden_operators_fail_that_part_and_keep_the_nodes() -> None:
    with running_openshift(nodes=4, behaviour=Behaviour(forbidden="clusteroperators")) as ocp:
        results = _by_system(run_collector(inspect, _job(ocp, "inspect")))
        expected = ocp.expected
    record = results.pop(ocp.cluster_system)
    assert {s: r.facts for s, r in results.items()} == {
        s: f for s, f in expected.items() if s != ocp.cluster_system
    }
    assert record.status == SUCCESS
    assert record.message.startswith("Operators were not read: OpenShift")
    assert "clusteroperators.config.openshift.io (GET " in record.message
    assert "HTTP 403" in record.message
    assert "cluster-reader" in record.message
    assert record.message.endswith("The nodes and the other facts stand.")
    facts = record.facts
    assert "operators" not in facts
    assert facts["namespaces"] == expected[ocp.cluster_system]["namespaces"]
    error = facts["cluster"]["errors"]["operators"]
    assert (error["kind"], error["status"], error["reason"]) == ("error", 403, "Forbidden")


def test_forbidden_nodes_fail_the_job_naming_the_role() -> None:
    with running_openshift(nodes=2, behaviour=Behaviour(forbidden="nodes")) as ocp:
        message = unavailable(_job(ocp, "connect"), run=connect)
    assert "denied the credential's token access to nodes (GET /api/v1/nodes: HTTP 403: " in message
    assert "cannot list resource" in message, "the cluster's own words are kept"
    assert "cluster-reader" in message


def test_a_server_error_fails_the_part_it_hits_or_the_job() -> None:
    with running_openshift(nodes=3, behaviour=Behaviour(failing_path=PODS)) as ocp:
        results = _by_system(run_collector(inspect, _job(ocp, "inspect")))
    record = results[ocp.cluster_system]
    assert "namespaces" not in record.facts
    assert record.facts["cluster"]["errors"]["namespaces"]["status"] == 500
    assert record.message.startswith("Workload counts were not read:")
    assert "answered HTTP 500 to GET /api/v1/pods (Internal error occurred" in record.message
    assert len(record.facts["operators"]) > 0
    assert sum(r.status == SUCCESS for r in results.values()) == 4

    with running_openshift(nodes=3, behaviour=Behaviour(failing_path=CLUSTER_VERSION)) as ocp:
        message = unavailable(_job(ocp, "connect"), run=connect)
    assert f"answered HTTP 500 to GET {CLUSTER_VERSION}" in message
    assert "oc get clusteroperators" in message


def test_malformed_json_fails_the_part_it_hits_or_the_job() -> None:
    with running_openshift(nodes=3, behaviour=Behaviour(malformed_path=SUBSCRIPTIONS)) as ocp:
        record = _by_system(run_collector(inspect, _job(ocp, "inspect")))[ocp.cluster_system]
    assert f"sent malformed JSON for GET {SUBSCRIPTIONS}" in record.message
    assert record.facts["cluster"]["errors"]["operators"]["reason"] == "MalformedJSON"

    with running_openshift(nodes=3, behaviour=Behaviour(malformed_path=NODES)) as ocp:
        message = unavailable(_job(ocp, "inspect"), run=inspect)
    assert f"OpenShift {ocp.host}:{ocp.port} sent malformed JSON for GET {NODES}" in message


def test_a_slow_answer_times_out_with_the_configured_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(TIMEOUT_ENV, "0.3")
    behaviour = Behaviour(slow_path=CLUSTER_OPERATORS, slow_s=3.0)
    with running_openshift(nodes=3, behaviour=behaviour) as ocp:
        started = time.monotonic()
        record = _by_system(run_collector(inspect, _job(ocp, "inspect")))[ocp.cluster_system]
        assert time.monotonic() - started < 2.5
    assert record.message.startswith("Operators were not read:")
    assert f"did not answer GET {CLUSTER_OPERATORS} within 0.3 s" in record.message
    assert TIMEOUT_ENV in record.message
    assert record.facts["cluster"]["errors"]["operators"]["reason"] == "Timeout"

    with running_openshift(nodes=3, behaviour=Behaviour(latency_s=1.5)) as slow:
        started = time.monotonic()
        message = unavailable(_job(slow, "connect"), run=connect)
        assert time.monotonic() - started < 1.5
    assert (
        f"OpenShift {slow.host}:{slow.port} did not answer GET {CLUSTER_VERSION} within" in message
    )


def test_an_untrusted_certificate_is_refused_when_verification_is_on(
    cluster: RunningOpenShift,
) -> None:
    message = unavailable(_job(cluster, "connect", verify=True), run=connect)
    assert f"{cluster.host}:{cluster.port} presented a TLS certificate" in message
    assert "self-signed certificate" in message
    assert "ssl_cert_verify" in message


def test_a_certificate_trusted_through_ssl_cert_file_is_accepted(
    cluster: RunningOpenShift, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(cluster.cert_path))
    assert len(run_collector(connect, _job(cluster, "connect", verify=True))) == NODE_COUNT + 1


def test_nothing_listening_is_a_refused_connection(cluster: RunningOpenShift) -> None:
    port = free_port()
    message = unavailable(_job(cluster, "connect", port=port), run=connect)
    assert f"OpenShift 127.0.0.1:{port} refused the connection" in message


def test_requests_in_flight_are_bounded_by_the_job_concurrency() -> None:
    behaviour = Behaviour(latency_s=0.03, page_size=3)
    with running_openshift(nodes=12, behaviour=behaviour) as ocp:
        results = run_collector(inspect, _job(ocp, "inspect", concurrency=3))
        assert len(results) == 13
        assert 2 <= ocp.service.max_in_flight <= 3
        ocp.service.take_counts()
        run_collector(inspect, _job(ocp, "inspect", concurrency=500))
        assert ocp.service.take_counts()["max_in_flight"] <= MAX_CONCURRENCY


def test_stop_returns_early_without_the_cluster_record() -> None:
    behaviour = Behaviour(latency_s=0.05, page_size=2)
    with running_openshift(nodes=40, behaviour=behaviour) as ocp:
        started = time.monotonic()
        results = run_collector(inspect, _job(ocp, "inspect"), stop_after=3)
        assert time.monotonic() - started < 2
        assert 3 <= len(results) < 10
        assert {r.status for r in results} == {SUCCESS}
        assert ocp.cluster_system not in {r.system for r in results}
        connected = run_collector(connect, _job(ocp, "connect"), stop_after=5)
        assert len(connected) == 5


# Transport options.


def test_connect_through_a_proxy_logs_in_through_it_too(cluster: RunningOpenShift) -> None:
    with tunnelling_proxy() as (proxy_url, targets):
        job = _job(cluster, "connect", password=cluster.password)
        job = changed(job, proxy_url=proxy_url)
        results = run_collector(connect, job)
    assert len(results) == NODE_COUNT + 1
    assert set(targets) == {f"{cluster.host}:{cluster.port}"}


def test_plain_http_when_ssl_is_disabled() -> None:
    with running_openshift(nodes=2, tls=False) as plain:
        job = _job(plain, "inspect", password=plain.password)
        job = changed(job, disable_ssl=True)
        assert {r.system: r.facts for r in run_collector(inspect, job)} == plain.expected
        assert "TLS handshake" in unavailable(_job(plain, "connect"), run=connect)
