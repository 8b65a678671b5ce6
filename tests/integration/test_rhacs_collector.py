"""The RHACS collector against a fake RHACS Central over real HTTPS on loopback: the Central,
its secured units and clusters as the estate is, each way Central can fail, and stop."""

from __future__ import annotations

import asyncio
import datetime
import gc
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from quipu.collectors.base import SUCCESS, Run, SourceUnavailable
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
from tests.proxies import tunnelling_proxy

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
    return {
        "jobId": 7,
        "scanId": 3,
        "kind": kind,
        "sourceType": "rhacs",
        "targets": [{"range": central.host, "ports": [port or central.port], "credentialId": 5}],
        "maxProbesPerSecond": 0,
        "credentials": [
            {
                "id": 5,
                "name": "acs",
                "credType": "rhacs",
                "authToken": central.token if token is None else token,
            }
        ],
        "options": {
            "taskId": 11,
            "sourceName": "acs",
            "maxConcurrency": 25,
            "sslCertVerify": verify,
            "sslProtocol": None,
            "disableSsl": False,
            "proxyUrl": None,
        },
    }


def _run(run: Run, job: dict[str, Any], *, stop_in_s: float | None = None) -> list[dict[str, Any]]:
    """The results ``run`` emits for ``job``; stop is set after ``stop_in_s`` seconds."""
    results: list[dict[str, Any]] = []

    async def main() -> None:
        stop = asyncio.Event()
        if stop_in_s is not None:
            asyncio.get_running_loop().call_later(stop_in_s, stop.set)

        async def emit(result: dict[str, Any]) -> None:
            results.append(result)

        await run(job, emit, stop)

    asyncio.run(main())
    return results


def _unavailable(job: dict[str, Any], *, run: Run = connect) -> str:
    with pytest.raises(SourceUnavailable) as caught:
        _run(run, job)
    return str(caught.value)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _one(results: list[dict[str, Any]]) -> dict[str, Any]:
    (result,) = results
    assert result["system"] == "127.0.0.1"
    return result


def test_connect_reports_the_central_as_its_one_system(central: RunningCentral) -> None:
    result = _one(_run(connect, _job(central, "connect")))
    assert (result["status"], result["port"], result["credentialId"]) == (
        SUCCESS,
        central.port,
        5,
    )
    assert result["facts"] == {}


def test_inspect_reports_the_secured_units_and_clusters_as_the_estate_is(
    central: RunningCentral,
) -> None:
    result = _one(_run(inspect, _job(central, "inspect")))
    assert (result["status"], result["message"]) == (SUCCESS, "")
    assert result["facts"] == central.expected
    facts = result["facts"]
    assert [c["name"] for c in facts["clusters"]] == central.cluster_names
    assert int(facts["secured_units_max"]["maxNodes"]) > int(
        facts["secured_units_current"]["numNodes"]
    )
    # The key inspection uses is the one connection reported.
    assert result["system"] == _one(_run(connect, _job(central, "connect")))["system"]


def test_the_peak_is_asked_for_all_history_up_to_the_scan(central: RunningCentral) -> None:
    before = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    _run(inspect, _job(central, "inspect"))
    asked = central.central.queries[USAGE_MAX]
    assert asked["from"] == "1970-01-01T00:00:00Z"
    to = datetime.datetime.fromisoformat(asked["to"].replace("Z", "+00:00"))
    assert before <= to <= datetime.datetime.now(datetime.UTC)


def test_a_central_securing_no_cluster_reports_zero_units() -> None:
    with running_central(clusters=0) as empty:
        facts = _one(_run(inspect, _job(empty, "inspect")))["facts"]
    assert facts["secured_units_current"] == {"numNodes": "0", "numCpuUnits": "0"}
    assert facts["clusters"] == []


def test_an_expired_token_fails_with_its_own_message() -> None:
    with running_central(behaviour=Behaviour(expired_token=True)) as expired:
        message = _unavailable(_job(expired, "connect"))
        inspected = _unavailable(_job(expired, "inspect"), run=inspect)
    assert f"RHACS Central {expired.host}:{expired.port} refused the credential's API token" in (
        message
    )
    assert f"HTTP 401 to GET {AUTH_STATUS}" in message
    assert "expired or was revoked" in message
    assert "auth_token" in message
    assert inspected == message


def test_a_wrong_token_is_refused_like_an_expired_one(central: RunningCentral) -> None:
    message = _unavailable(_job(central, "connect", token="not-the-token"))
    assert "HTTP 401" in message
    assert "not-the-token" not in message


def test_a_token_without_administration_read_fails_saying_which_permission() -> None:
    with running_central(behaviour=Behaviour(usage_forbidden=True)) as forbidden:
        connected = _unavailable(_job(forbidden, "connect"))
        inspected = _unavailable(_job(forbidden, "inspect"), run=inspect)
    assert "no read access to Administration" in connected
    assert "Analyst" in connected
    assert inspected == connected


def test_a_403_on_the_usage_fails_the_inspection_naming_the_call() -> None:
    """A Central whose token check lists no permissions refuses at the usage call itself."""
    behaviour = Behaviour(usage_forbidden=True, lists_permissions=False)
    with running_central(behaviour=behaviour) as forbidden:
        assert len(_run(connect, _job(forbidden, "connect"))) == 1
        message = _unavailable(_job(forbidden, "inspect"), run=inspect)
    assert "denied the credential's API token access to GET" in message
    assert "(HTTP 403)" in message
    assert "read access to Administration" in message


@pytest.mark.parametrize("path", [USAGE_CURRENT, USAGE_MAX])
def test_a_server_error_on_the_usage_fails_the_job(path: str) -> None:
    with running_central(behaviour=Behaviour(failing_path=path)) as failing:
        message = _unavailable(_job(failing, "inspect"), run=inspect)
        assert len(_run(connect, _job(failing, "connect"))) == 1
    assert f"answered HTTP 500 to GET {path}" in message
    assert "could not query the database" in message
    assert "Central's log" in message


def test_a_server_error_on_the_clusters_leaves_them_unknown() -> None:
    with running_central(behaviour=Behaviour(failing_path=CLUSTERS)) as failing:
        result = _one(_run(inspect, _job(failing, "inspect")))
        expected = failing.expected
    assert result["status"] == SUCCESS
    assert result["message"].startswith("The secured clusters are unknown: ")
    assert f"HTTP 500 to GET {CLUSTERS}" in result["message"]
    assert "clusters" not in result["facts"]
    assert result["facts"] == expected


def test_malformed_json_on_the_usage_fails_the_job() -> None:
    with running_central(behaviour=Behaviour(malformed_path=USAGE_MAX)) as broken:
        message = _unavailable(_job(broken, "inspect"), run=inspect)
    assert f"sent malformed JSON for GET {USAGE_MAX}" in message
    assert "proxy" in message


def test_malformed_json_on_the_clusters_leaves_them_unknown() -> None:
    with running_central(behaviour=Behaviour(malformed_path=CLUSTERS)) as broken:
        result = _one(_run(inspect, _job(broken, "inspect")))
    assert result["status"] == SUCCESS
    assert f"malformed JSON for GET {CLUSTERS}" in result["message"]
    assert set(result["facts"]) == {"central", "secured_units_current", "secured_units_max"}


def test_malformed_metadata_is_not_a_central() -> None:
    with running_central(behaviour=Behaviour(malformed_path="/v1/metadata")) as broken:
        message = _unavailable(_job(broken, "connect"))
    assert "does not answer GET /v1/metadata as RHACS Central does" in message
    assert "host and port" in message


def test_a_central_slower_than_the_timeout_is_unavailable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(TIMEOUT_ENV, "0.3")
    behaviour = Behaviour(slow_path=USAGE_CURRENT, slow_s=3.0)
    with running_central(behaviour=behaviour) as slow:
        started = time.monotonic()
        message = _unavailable(_job(slow, "inspect"), run=inspect)
        assert time.monotonic() - started < 2.5
    assert f"RHACS Central {slow.host}:{slow.port} did not answer within 0.3 s" in message
    assert TIMEOUT_ENV in message


def test_slow_clusters_are_unknown_and_the_units_stand(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TIMEOUT_ENV, "0.3")
    with running_central(behaviour=Behaviour(slow_path=CLUSTERS, slow_s=3.0)) as slow:
        result = _one(_run(inspect, _job(slow, "inspect")))
        expected = slow.expected
    assert result["status"] == SUCCESS
    assert "did not answer within 0.3 s" in result["message"]
    assert result["facts"] == expected


def test_latency_within_the_timeout_is_only_slower() -> None:
    with running_central(clusters=2, behaviour=Behaviour(latency_s=0.1)) as busy:
        result = _one(_run(inspect, _job(busy, "inspect")))
        assert result["facts"] == busy.expected
        # The usage and the clusters are asked at once.
        assert busy.central.max_in_flight >= 2


def test_an_untrusted_certificate_is_refused_when_verification_is_on(
    central: RunningCentral,
) -> None:
    message = _unavailable(_job(central, "connect", verify=True))
    assert f"RHACS Central {central.host}:{central.port} presented a TLS certificate" in message
    assert "self-signed certificate" in message
    assert "ssl_cert_verify" in message


def test_a_certificate_trusted_through_ssl_cert_file_is_accepted(
    central: RunningCentral, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(central.cert_path))
    assert _one(_run(inspect, _job(central, "inspect", verify=True)))["status"] == SUCCESS


def test_nothing_listening_is_a_refused_connection(central: RunningCentral) -> None:
    port = _free_port()
    message = _unavailable(_job(central, "connect", port=port))
    assert f"RHACS Central 127.0.0.1:{port} refused the connection" in message
    assert "central deployment" in message


def test_every_failure_has_its_own_message(central: RunningCentral) -> None:
    messages = {
        _unavailable(_job(central, "connect", token="wrong")),
        _unavailable(_job(central, "connect", verify=True)),
        _unavailable(_job(central, "connect", port=_free_port())),
    }
    assert len(messages) == 3


def test_stop_does_not_wait_for_a_slow_answer() -> None:
    with running_central(behaviour=Behaviour(slow_path=USAGE_MAX, slow_s=20.0)) as slow:
        started = time.monotonic()
        results = _run(inspect, _job(slow, "inspect"), stop_in_s=0.5)
        assert time.monotonic() - started < 3
    assert results == []


def test_connect_through_a_proxy(central: RunningCentral) -> None:
    with tunnelling_proxy() as (proxy_url, targets):
        job = _job(central, "inspect")
        job["options"]["proxyUrl"] = proxy_url
        result = _one(_run(inspect, job))
    assert result["facts"] == central.expected
    assert set(targets) == {f"{central.host}:{central.port}"}


def test_plain_http_when_ssl_is_disabled() -> None:
    with running_central(clusters=1, tls=False) as plain:
        job = _job(plain, "inspect")
        job["options"]["disableSsl"] = True
        assert _one(_run(inspect, job))["facts"] == plain.expected
        assert "TLS handshake" in _unavailable(_job(plain, "connect"))


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
        job = {
            "targets": [{"range": "127.0.0.1", "ports": [int(url.group(1))]}],
            "credentials": [{"id": 1, "authToken": token.group(1)}],
            "options": {"sslCertVerify": False},
        }
        assert len(_run(inspect, job)) == 1
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0
    assert "RHACS Central is down." in rest
