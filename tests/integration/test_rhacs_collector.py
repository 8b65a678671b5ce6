"""The RHACS collector against a fake RHACS Central over real HTTPS on loopback: the Central,
its secured units and clusters as the estate is, each way Central can fail, and stop."""

from __future__ import annotations

import datetime
import gc
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from quipu import wire
from quipu.collectors.base import SUCCESS
from quipu.collectors.rhacs.collector import TIMEOUT_ENV, connect, inspect
from quipu.lab.rhacs import (
    AUTH_STATUS,
    CLUSTERS,
    USAGE_CURRENT,
    USAGE_MAX,
    Behaviour,
    RunningCentral,
    running_central,
)
from tests.collectors import api_job, changed, run_collector, unavailable
from tests.proxies import tunnelling_proxy
from tests.servers import free_port

CLUSTER_COUNT = 5


@pytest.fixture(autouse=True)
def _collect_garbage() -> Iterator[None]:
    """Sockets a test leaves open are reported by the test that left them."""
    yield
    gc.collect()


@pytest.fixture(scope="module")
def central() -> Iterator[RunningCentral]:
    with running_central(clusters=CLUSTER_COUNT) as running:
        yield running


def _job(
    central: RunningCentral,
    kind: str,
    *,
    port: int | None = None,
    token: str | None = None,
    verify: bool = False,
) -> dict[str, Any]:
    return api_job(
        "rhacs",
        kind,
        host=central.host,
        port=port or central.port,
        credential={"authToken": central.token if token is None else token},
        source_name="acs",
        verify=verify,
    )


def _one(results: list[dict[str, Any]]) -> dict[str, Any]:
    (result,) = results
    assert result.system == "127.0.0.1"
    return result


def test_connect_reports_the_central_as_its_one_system(central: RunningCentral) -> None:
    result = _one(run_collector(connect, _job(central, "connect")))
    assert (result.status, result.port, result.credential_id) == (
        SUCCESS,
        central.port,
        5,
    )
    assert result.facts == {}


def test_inspect_reports_the_secured_units_and_clusters_as_the_estate_is(
    central: RunningCentral,
) -> None:
    result = _one(run_collector(inspect, _job(central, "inspect")))
    assert (result.status, result.message) == (SUCCESS, "")
    assert result.facts == central.expected
    facts = result.facts
    assert [c["name"] for c in facts["clusters"]] == central.cluster_names
    assert int(facts["secured_units_max"]["maxNodes"]) > int(
        facts["secured_units_current"]["numNodes"]
    )
    # The key inspection uses is the one connection reported.
    assert result.system == _one(run_collector(connect, _job(central, "connect"))).system


def test_the_peak_is_asked_for_all_history_up_to_the_scan(central: RunningCentral) -> None:
    before = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    run_collector(inspect, _job(central, "inspect"))
    asked = central.central.queries[USAGE_MAX]
    assert asked["from"] == "1970-01-01T00:00:00Z"
    to = datetime.datetime.fromisoformat(asked["to"].replace("Z", "+00:00"))
    assert before <= to <= datetime.datetime.now(datetime.UTC)


def test_a_central_securing_no_cluster_reports_zero_units() -> None:
    with running_central(clusters=0) as empty:
        facts = _one(run_collector(inspect, _job(empty, "inspect"))).facts
    assert facts["secured_units_current"] == {"numNodes": "0", "numCpuUnits": "0"}
    assert facts["clusters"] == []


def test_an_expired_token_fails_with_its_own_message() -> None:
    with running_central(behaviour=Behaviour(expired_token=True)) as expired:
        message = unavailable(_job(expired, "connect"), run=connect)
        inspected = unavailable(_job(expired, "inspect"), run=inspect)
    assert f"RHACS Central {expired.host}:{expired.port} refused the credential's API token" in (
        message
    )
    assert f"HTTP 401 to GET {AUTH_STATUS}" in message
    assert "expired or was revoked" in message
    assert "auth_token" in message
    assert inspected == message


def test_a_wrong_token_is_refused_like_an_expired_one(central: RunningCentral) -> None:
    message = unavailable(_job(central, "connect", token="not-the-token"), run=connect)
    assert "HTTP 401" in message
    assert "not-the-token" not in message


def test_a_token_without_administration_read_fails_saying_which_permission() -> None:
    with running_central(behaviour=Behaviour(usage_forbidden=True)) as forbidden:
        connected = unavailable(_job(forbidden, "connect"), run=connect)
        inspected = unavailable(_job(forbidden, "inspect"), run=inspect)
    assert "no read access to Administration" in connected
    assert "Analyst" in connected
    assert inspected == connected


def test_a_403_on_the_usage_fails_the_inspection_naming_the_call() -> None:
    """A Central whose token check lists no permissions refuses at the usage call itself."""
    behaviour = Behaviour(usage_forbidden=True, lists_permissions=False)
    with running_central(behaviour=behaviour) as forbidden:
        assert len(run_collector(connect, _job(forbidden, "connect"))) == 1
        message = unavailable(_job(forbidden, "inspect"), run=inspect)
    assert "denied the credential's API token access to GET" in message
    assert "(HTTP 403)" in message
    assert "read access to Administration" in message


@pytest.mark.parametrize("path", [USAGE_CURRENT, USAGE_MAX])
def test_a_server_error_on_the_usage_fails_the_job(path: str) -> None:
    with running_central(behaviour=Behaviour(failing_path=path)) as failing:
        message = unavailable(_job(failing, "inspect"), run=inspect)
        assert len(run_collector(connect, _job(failing, "connect"))) == 1
    assert f"answered HTTP 500 to GET {path}" in message
    assert "could not query the database" in message
    assert "Central's log" in message


def test_a_server_error_on_the_clusters_leaves_them_unknown() -> None:
    with running_central(behaviour=Behaviour(failing_path=CLUSTERS)) as failing:
        result = _one(run_collector(inspect, _job(failing, "inspect")))
        expected = failing.expected
    assert result.status == SUCCESS
    assert result.message.startswith("The secured clusters are unknown: ")
    assert f"HTTP 500 to GET {CLUSTERS}" in result.message
    assert "clusters" not in result.facts
    assert result.facts == expected


def test_malformed_json_on_the_usage_fails_the_job() -> None:
    with running_central(behaviour=Behaviour(malformed_path=USAGE_MAX)) as broken:
        message = unavailable(_job(broken, "inspect"), run=inspect)
    assert f"sent malformed JSON for GET {USAGE_MAX}" in message
    assert "proxy" in message


def test_malformed_json_on_the_clusters_leaves_them_unknown() -> None:
    with running_central(behaviour=Behaviour(malformed_path=CLUSTERS)) as broken:
        result = _one(run_collector(inspect, _job(broken, "inspect")))
    assert result.status == SUCCESS
    assert f"malformed JSON for GET {CLUSTERS}" in result.message
    assert set(result.facts) == {"central", "secured_units_current", "secured_units_max"}


def test_malformed_metadata_is_not_a_central() -> None:
    with running_central(behaviour=Behaviour(malformed_path="/v1/metadata")) as broken:
        message = unavailable(_job(broken, "connect"), run=connect)
    assert "does not answer GET /v1/metadata as RHACS Central does" in message
    assert "host and port" in message


def test_a_central_slower_than_the_timeout_isunavailable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(TIMEOUT_ENV, "0.3")
    behaviour = Behaviour(slow_path=USAGE_CURRENT, slow_s=3.0)
    with running_central(behaviour=behaviour) as slow:
        started = time.monotonic()
        message = unavailable(_job(slow, "inspect"), run=inspect)
        assert time.monotonic() - started < 2.5
    assert f"RHACS Central {slow.host}:{slow.port} did not answer within 0.3 s" in message
    assert TIMEOUT_ENV in message


def test_slow_clusters_are_unknown_and_the_units_stand(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TIMEOUT_ENV, "0.3")
    with running_central(behaviour=Behaviour(slow_path=CLUSTERS, slow_s=3.0)) as slow:
        result = _one(run_collector(inspect, _job(slow, "inspect")))
        expected = slow.expected
    assert result.status == SUCCESS
    assert "did not answer within 0.3 s" in result.message
    assert result.facts == expected


def test_latency_within_the_timeout_is_only_slower() -> None:
    with running_central(clusters=2, behaviour=Behaviour(latency_s=0.1)) as busy:
        result = _one(run_collector(inspect, _job(busy, "inspect")))
        assert result.facts == busy.expected
        # The usage and the clusters are asked at once.
        assert busy.central.max_in_flight >= 2


def test_an_untrusted_certificate_is_refused_when_verification_is_on(
    central: RunningCentral,
) -> None:
    message = unavailable(_job(central, "connect", verify=True), run=connect)
    assert f"RHACS Central {central.host}:{central.port} presented a TLS certificate" in message
    assert "self-signed certificate" in message
    assert "ssl_cert_verify" in message


def test_a_certificate_trusted_through_ssl_cert_file_is_accepted(
    central: RunningCentral, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(central.cert_path))
    assert _one(run_collector(inspect, _job(central, "inspect", verify=True))).status == SUCCESS


def test_nothing_listening_is_a_refused_connection(central: RunningCentral) -> None:
    port = free_port()
    message = unavailable(_job(central, "connect", port=port), run=connect)
    assert f"RHACS Central 127.0.0.1:{port} refused the connection" in message
    assert "central deployment" in message


def test_every_failure_has_its_own_message(central: RunningCentral) -> None:
    messages = {
        unavailable(_job(central, "connect", token="wrong"), run=connect),
        unavailable(_job(central, "connect", verify=True), run=connect),
        unavailable(_job(central, "connect", port=free_port()), run=connect),
    }
    assert len(messages) == 3


def test_stop_does_not_wait_for_a_slow_answer() -> None:
    with running_central(behaviour=Behaviour(slow_path=USAGE_MAX, slow_s=20.0)) as slow:
        started = time.monotonic()
        results = run_collector(inspect, _job(slow, "inspect"), stop_in_s=0.5)
        assert time.monotonic() - started < 3
    assert results == []


def test_connect_through_a_proxy(central: RunningCentral) -> None:
    with tunnelling_proxy() as (proxy_url, targets):
        job = _job(central, "inspect")
        job = changed(job, proxy_url=proxy_url)
        result = _one(run_collector(inspect, job))
    assert result.facts == central.expected
    assert set(targets) == {f"{central.host}:{central.port}"}


def test_plain_http_when_ssl_is_disabled() -> None:
    with running_central(clusters=1, tls=False) as plain:
        job = _job(plain, "inspect")
        job = changed(job, disable_ssl=True)
        assert _one(run_collector(inspect, job)).facts == plain.expected
        assert "TLS handshake" in unavailable(_job(plain, "connect"), run=connect)


def test_the_lab_command_serves_a_central_its_printed_token_opens() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "quipu.cli.quipu", "lab", "rhacs", "--port", "0", "--clusters", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(8)]
        printed = "".join(lines)
        url = re.search(r"is up at https://127\.0\.0\.1:(\d+) securing 2 clusters", printed)
        token = re.search(r"API token: +(\S+)", printed)
        assert url is not None and token is not None, printed
        assert "qpc cred add --name acs --type rhacs --token" in printed
        assert f"--hosts 127.0.0.1 --port {url.group(1)} --cred acs" in printed
        job = wire.Job(
            job_id=1,
            scan_id=1,
            kind="inspect",
            source_type="rhacs",
            targets=[wire.Target(range="127.0.0.1", ports=[int(url.group(1))])],
            credentials=[wire.Credential(id=1, auth_token=token.group(1))],
            options=wire.Options(ssl_cert_verify=False),
        )
        assert len(run_collector(inspect, job)) == 1
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0
    assert "RHACS Central is down." in rest
