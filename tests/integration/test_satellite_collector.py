"""The Satellite collector against a fake Satellite 6 over real HTTPS on loopback: hosts
counted and inspected, facts as the hosts are, each way the server can fail, bounded
concurrency and stop."""

from __future__ import annotations

import gc
import ssl
import time
from collections.abc import Iterator
from typing import Any

import pytest

from quipu.collectors.base import FAILED, SUCCESS
from quipu.collectors.satellite.collector import MAX_CONCURRENCY, TIMEOUT_ENV, connect, inspect
from quipu.lab.satellite import Behaviour, RunningSatellite, running_satellite
from tests.collectors import api_job, changed, run_collector, unavailable
from tests.offline import unavailable_offline
from tests.proxies import tunnelling_proxy
from tests.servers import free_port

HOSTS = 23


@pytest.fixture(autouse=True)
def _collect_garbage() -> Iterator[None]:
    """Sockets a test leaves open are reported by the test that left them."""
    yield
    gc.collect()


@pytest.fixture(scope="module")
def satellite() -> Iterator[RunningSatellite]:
    """A healthy Satellite whose listing comes in pages of 7 hosts."""
    with running_satellite(hosts=HOSTS, behaviour=Behaviour(max_per_page=7)) as running:
        yield running


def _job(
    satellite: RunningSatellite,
    kind: str,
    *,
    host: str | None = None,
    port: int | None = None,
    password: str | None = None,
    verify: bool = False,
    concurrency: int = 25,
) -> dict[str, Any]:
    login = {
        "username": satellite.username,
        "password": satellite.password if password is None else password,
    }
    return api_job(
        "satellite",
        kind,
        host=host or satellite.host,
        port=port or satellite.port,
        credential=login,
        source_name="sat",
        verify=verify,
        concurrency=concurrency,
    )


def test_connect_reports_every_host_once_as_a_reachable_system(
    satellite: RunningSatellite,
) -> None:
    results = run_collector(connect, _job(satellite, "connect"))
    assert sorted(r.system for r in results) == sorted(satellite.names.values())
    assert {(r.status, r.port, r.credential_id) for r in results} == {(SUCCESS, satellite.port, 5)}
    assert all(r.facts == {} for r in results)


def test_connect_counts_a_few_thousand_hosts() -> None:
    with running_satellite(hosts=2500) as big:
        results = run_collector(connect, _job(big, "connect"))
    assert len(results) == 2500
    assert len({r.system for r in results}) == 2500


def test_inspect_reports_the_facts_of_every_host(satellite: RunningSatellite) -> None:
    results = run_collector(inspect, _job(satellite, "inspect", concurrency=5))
    assert {r.status for r in results} == {SUCCESS}
    assert {r.message for r in results} == {""}
    facts = {r.system: r.facts for r in results}
    assert facts == satellite.expected
    # The key inspection uses is the one connection reported.
    connected = {r.system for r in run_collector(connect, _job(satellite, "connect"))}
    assert set(facts) == connected


def test_a_wrong_password_is_refused_with_its_own_message(satellite: RunningSatellite) -> None:
    message = unavailable(_job(satellite, "connect", password="not-the-password"), run=connect)
    assert f"Satellite {satellite.host}:{satellite.port} refused the login" in message
    assert "HTTP 401" in message
    assert "username and password" in message
    inspected = unavailable(_job(satellite, "inspect", password="wrong"), run=inspect)
    assert "HTTP 401" in inspected


def test_another_api_version_is_not_supported() -> None:
    with running_satellite(hosts=2, behaviour=Behaviour(api_version=1)) as old:
        message = unavailable(_job(old, "connect"), run=connect)
    assert f"Satellite {old.host}:{old.port} reports API version 1" in message
    assert "API version 2 (Satellite 6)" in message


def test_an_untrusted_certificate_is_refused_when_verification_is_on(
    satellite: RunningSatellite,
) -> None:
    message = unavailable(_job(satellite, "connect", verify=True), run=connect)
    assert f"{satellite.host}:{satellite.port} presented a TLS certificate" in message
    assert "self-signed certificate" in message
    assert "ssl_cert_verify" in message


def test_a_certificate_trusted_through_ssl_cert_file_is_accepted(
    satellite: RunningSatellite, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(satellite.cert_path))
    results = run_collector(connect, _job(satellite, "connect", verify=True))
    assert len(results) == HOSTS


def test_nothing_listening_is_a_refused_connection(satellite: RunningSatellite) -> None:
    port = free_port()
    message = unavailable(_job(satellite, "connect", port=port), run=connect)
    assert f"Satellite 127.0.0.1:{port} refused the connection" in message
    assert "host and port" in message


def test_a_host_name_that_does_not_resolve_is_named(satellite: RunningSatellite) -> None:
    message = unavailable_offline(_job(satellite, "connect", host="no-such-host.invalid"))
    assert "host name 'no-such-host.invalid' does not resolve" in message
    assert "DNS" in message


def test_a_server_slower_than_the_timeout_isunavailable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(TIMEOUT_ENV, "0.3")
    with running_satellite(hosts=2, behaviour=Behaviour(latency_s=1.5)) as slow:
        started = time.monotonic()
        message = unavailable(_job(slow, "connect"), run=connect)
        assert time.monotonic() - started < 1.5
    assert f"Satellite {slow.host}:{slow.port} did not answer within 0.3 s" in message


def test_every_failure_has_its_own_message(satellite: RunningSatellite) -> None:
    messages = {
        unavailable(_job(satellite, "connect", password="wrong"), run=connect),
        unavailable(_job(satellite, "connect", verify=True), run=connect),
        unavailable(_job(satellite, "connect", port=free_port()), run=connect),
        unavailable_offline(_job(satellite, "connect", host="no-such-host.invalid")),
    }
    assert len(messages) == 4


def test_one_failing_host_fails_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TIMEOUT_ENV, "1")
    behaviour = Behaviour(
        failing_host=3, malformed_host=4, slow_host=7, slow_s=3.0, unsubscribed_host=5
    )
    with running_satellite(hosts=12, behaviour=behaviour) as sat:
        results = {r.system: r for r in run_collector(inspect, _job(sat, "inspect"))}
        names, expected = sat.names, sat.expected
    assert set(results) == set(names.values())
    failing, malformed, slow = results[names[3]], results[names[4]], results[names[7]]
    assert failing.status == FAILED
    assert "HTTP 500 to GET /api/v2/hosts/3" in failing.message
    assert malformed.status == FAILED
    assert "malformed JSON for GET /api/v2/hosts/4" in malformed.message
    assert slow.status == FAILED
    assert "did not answer GET /api/v2/hosts/7 (the host's details) within 1 s" in slow.message
    assert all(r.facts == {} for r in (failing, malformed, slow))

    unsubscribed = results[names[5]]
    assert unsubscribed.status == SUCCESS
    assert "HTTP 404" in unsubscribed.message
    assert "entitlements are unknown" in unsubscribed.message
    assert "entitlements" not in unsubscribed.facts
    assert unsubscribed.facts == expected[names[5]]

    others = [results[name] for host_id, name in names.items() if host_id not in (3, 4, 5, 7)]
    assert len(others) == 8
    for result in others:
        assert (result.status, result.message) == (SUCCESS, "")
        assert result.facts == expected[result.system]


def test_a_malformed_hosts_page_fails_the_inspection() -> None:
    behaviour = Behaviour(max_per_page=5, malformed_hosts_page=2)
    with running_satellite(hosts=12, behaviour=behaviour) as sat:
        message = unavailable(_job(sat, "inspect"), run=inspect)
        connect_message = unavailable(_job(sat, "connect"), run=connect)
    assert f"Satellite {sat.host}:{sat.port} sent a malformed page 2 of its hosts" in message
    assert connect_message == message


def test_requests_in_flight_are_bounded_by_the_job_concurrency() -> None:
    with running_satellite(hosts=30, behaviour=Behaviour(latency_s=0.03)) as sat:
        results = run_collector(inspect, _job(sat, "inspect", concurrency=4))
        assert len(results) == 30
        assert 2 <= sat.satellite.max_in_flight <= 4


def test_a_huge_concurrency_is_capped() -> None:
    hosts = MAX_CONCURRENCY * 2
    with running_satellite(hosts=hosts, behaviour=Behaviour(latency_s=0.1)) as sat:
        results = run_collector(inspect, _job(sat, "inspect", concurrency=500))
        assert len(results) == hosts
        assert MAX_CONCURRENCY // 2 <= sat.satellite.max_in_flight <= MAX_CONCURRENCY


def test_stop_returns_early() -> None:
    with running_satellite(hosts=200, behaviour=Behaviour(latency_s=0.05)) as sat:
        started = time.monotonic()
        results = run_collector(inspect, _job(sat, "inspect", concurrency=2), stop_after=3)
        assert time.monotonic() - started < 2
        assert 3 <= len(results) < 10
        assert {r.status for r in results} == {SUCCESS}
        connected = run_collector(connect, _job(sat, "connect"), stop_after=5)
        assert len(connected) == 5


def test_stop_does_not_wait_for_a_slow_host() -> None:
    with running_satellite(hosts=3, behaviour=Behaviour(slow_host=2, slow_s=20.0)) as sat:
        started = time.monotonic()
        results = run_collector(inspect, _job(sat, "inspect"), stop_in_s=0.5)
        assert time.monotonic() - started < 3
    assert sorted(r.system for r in results) == [sat.names[1], sat.names[3]]


def test_a_host_can_carry_the_mac_another_source_sees() -> None:
    behaviour = Behaviour(macs={2: "00:50:56:AB:CD:EF"})
    with running_satellite(hosts=3, behaviour=behaviour) as sat:
        results = {r.system: r.facts for r in run_collector(inspect, _job(sat, "inspect"))}
        assert results == sat.expected
    assert results[sat.names[2]]["mac_addresses"] == ["00:50:56:ab:cd:ef"]


# Transport options.


def test_connect_through_a_proxy(satellite: RunningSatellite) -> None:
    with tunnelling_proxy() as (proxy_url, targets):
        job = _job(satellite, "connect")
        job = changed(job, proxy_url=proxy_url)
        results = run_collector(connect, job)
    assert len(results) == HOSTS
    assert set(targets) == {f"{satellite.host}:{satellite.port}"}


def test_plain_http_when_ssl_is_disabled() -> None:
    with running_satellite(hosts=3, tls=False) as plain:
        job = _job(plain, "inspect")
        job = changed(job, disable_ssl=True)
        results = run_collector(inspect, job)
        assert {r.system: r.facts for r in results} == plain.expected
        assert "TLS handshake" in unavailable(_job(plain, "connect"), run=connect)


def test_a_pinned_tls_protocol_is_spoken_or_refused_saying_so() -> None:
    with running_satellite(hosts=2, tls_version=ssl.TLSVersion.TLSv1_2) as only_12:
        pinned = _job(only_12, "connect")
        pinned = changed(pinned, ssl_protocol="TLSv1_2")
        assert len(run_collector(connect, pinned)) == 2
        pinned = changed(pinned, ssl_protocol="TLSv1_3")
        message = unavailable(pinned, run=connect)
    assert f"The TLS handshake with Satellite {only_12.host}:{only_12.port} failed" in message
    assert "ssl_protocol" in message
