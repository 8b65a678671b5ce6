"""The vCenter collector against a real SOAP peer: govmomi's simulator (``quipu.lab.vcenter``).

What the collector reports is compared with what pyVmomi reads from the simulator on its own
path (a container view, then each object's properties one by one). The inventory has two
datacenters, so that two VMs can share a name (vCenter refuses that only within one folder)
and a VM can be named like a host: the system-key rule is exercised as well.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import re
import socket
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from pyVim.connect import Disconnect, SmartConnect
from pyVim.task import WaitForTask
from pyVmomi import vim

from quipu import wire
from quipu.collectors.base import SourceUnavailable
from quipu.collectors.vcenter import connect, inspect
from quipu.collectors.vcenter.collector import TIMEOUT_VARIABLE
from quipu.lab.vcenter import Model, Vcsim, running_vcsim
from tests.offline import unavailable_offline
from tests.proxies import tunnelling_proxy

MODEL = Model(datacenters=2, clusters=1, hosts_per_cluster=2, standalone_hosts=1, vms=2)
RENAMES = {
    # A VM in the second datacenter named like one in the first...
    "DC1_H0_VM0": "DC0_H0_VM0",
    # ... and one named like a host.
    "DC1_C0_RP0_VM1": "DC0_C0_H0",
}

Results = list[wire.SystemResult]


@pytest.fixture(scope="module")
def sim() -> Iterator[Vcsim]:
    with running_vcsim(model=MODEL, username="quipu", password="s3cret") as running:
        with vcenter_session(running) as content:
            for vm in container(content, vim.VirtualMachine):
                if vm.name in RENAMES:
                    WaitForTask(vm.Rename(RENAMES[vm.name]))
        yield running


@contextlib.contextmanager
def vcenter_session(sim: Vcsim) -> Iterator[Any]:
    si = SmartConnect(
        host=sim.host,
        port=sim.port,
        user=sim.username,
        pwd=sim.password,
        disableSslCertValidation=True,
    )
    try:
        yield si.RetrieveContent()
    finally:
        Disconnect(si)


def container(content: Any, kind: type) -> list[Any]:
    view = content.viewManager.CreateContainerView(content.rootFolder, [kind], True)
    try:
        return list(view.view)
    finally:
        view.Destroy()


def job_for(
    host: str,
    port: int,
    *,
    kind: str = "inspect",
    username: str = "quipu",
    password: str = "s3cret",
    **options: Any,
) -> wire.Job:
    """A scanner job for the vCenter at ``host:port``, as the scanner API hands it out."""
    return wire.Job.model_validate(
        {
            "jobId": 7,
            "scanId": 3,
            "kind": kind,
            "sourceType": "vcenter",
            "targets": [{"range": host, "ports": [port], "credentialId": 5}],
            "maxProbesPerSecond": 0,
            "credentials": [
                {
                    "id": 5,
                    "name": "vc",
                    "credType": "vcenter",
                    "username": username,
                    "password": password,
                }
            ],
            "options": {
                "taskId": 11,
                "sourceName": "vc",
                "maxConcurrency": 25,
                "sslCertVerify": False,
                "sslProtocol": None,
                "disableSsl": False,
                "proxyUrl": None,
                **options,
            },
        }
    )


def job(sim: Vcsim, **options: Any) -> wire.Job:
    options.setdefault("username", sim.username)
    options.setdefault("password", sim.password)
    return job_for(sim.host, sim.port, **options)


def run(phase: Any, the_job: wire.Job, **keywords: Any) -> Results:
    results: Results = []

    async def emit(result: wire.SystemResult) -> None:
        results.append(result)

    asyncio.run(phase(the_job, emit, asyncio.Event(), **keywords))
    return results


def failure(the_job: wire.Job, phase: Any = connect) -> str:
    with pytest.raises(SourceUnavailable) as caught:
        run(phase, the_job)
    return str(caught.value)


# What pyVmomi reads on its own path, and the facts the collector should derive from it.


def _place(host: Any) -> tuple[str | None, str | None]:
    cluster = host.parent.name if isinstance(host.parent, vim.ClusterComputeResource) else None
    parent = host.parent
    while parent is not None and not isinstance(parent, vim.Datacenter):
        parent = parent.parent
    return cluster, None if parent is None else parent.name


def _nics(vm: Any) -> tuple[list[str], list[str]]:
    macs: list[str] = []
    addresses: list[str] = []
    for nic in vm.guest.net:
        if nic.deviceConfigId == -1:
            continue
        macs.append(nic.macAddress)
        if nic.ipConfig is not None:
            addresses += [a.ipAddress for a in nic.ipConfig.ipAddress if ":" not in a.ipAddress]
    return macs, addresses


def expected_inventory(sim: Vcsim) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """(VM facts by system key, host facts by system key), read object by object."""
    with vcenter_session(sim) as content:
        vms = container(content, vim.VirtualMachine)
        hosts = container(content, vim.HostSystem)
        names = collections.Counter(item.name for item in [*vms, *hosts])

        def key(item: Any) -> str:
            return item.name if names[item.name] == 1 else f"{item.name} ({item._moId})"

        host_facts: dict[str, dict[str, Any]] = {}
        by_key: dict[str, dict[str, Any]] = {}
        for host in hosts:
            summary = host.summary
            cluster, datacenter = _place(host)
            facts = {
                "host.name": host.name,
                "host.uuid": host.hardware.systemInfo.uuid,
                "host.cpu_count": summary.hardware.numCpuPkgs,
                "host.cpu_cores": summary.hardware.numCpuCores,
                "host.cpu_threads": summary.hardware.numCpuThreads,
                "host.memory_size": summary.hardware.memorySize / 1024**3,
                "host.os": summary.config.product.name,
                "host.version": summary.config.product.version,
                "host.cluster": cluster,
                "host.datacenter": datacenter,
                "host.vm_count": len(host.vm),
            }
            host_facts[host._moId] = facts
            by_key[key(host)] = {name: value for name, value in facts.items() if value is not None}
        vm_by_key: dict[str, dict[str, Any]] = {}
        for vm in vms:
            summary = vm.summary
            macs, addresses = _nics(vm)
            host = host_facts[vm.runtime.host._moId]
            facts = {
                "vm.name": vm.name,
                "vm.uuid": summary.config.uuid,
                "vm.state": summary.runtime.powerState,
                "vm.is_template": summary.config.template,
                "vm.os": summary.config.guestFullName,
                "vm.dns_name": summary.guest.hostName,
                "vm.cpu_count": summary.config.numCpu,
                "vm.memory_size": summary.config.memorySizeMB / 1024,
                "vm.ip_addresses": addresses or None,
                "vm.mac_addresses": macs or None,
                "vm.host.name": host["host.name"],
                "vm.host.uuid": host["host.uuid"],
                "vm.host.cpu_count": host["host.cpu_count"],
                "vm.host.cpu_cores": host["host.cpu_cores"],
                "vm.host.cpu_threads": host["host.cpu_threads"],
                "vm.cluster": host["host.cluster"],
                "vm.datacenter": host["host.datacenter"],
            }
            vm_by_key[key(vm)] = {name: value for name, value in facts.items() if value is not None}
    return vm_by_key, by_key


@pytest.fixture(scope="module")
def expected(sim: Vcsim) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    return expected_inventory(sim)


@pytest.fixture(scope="module")
def inspected(sim: Vcsim) -> Results:
    return run(inspect, job(sim))


def by_system(results: Results) -> dict[str, wire.SystemResult]:
    assert len({r.system for r in results}) == len(results), "system keys must be unique"
    return {r.system: r for r in results}


# Connection.


def test_connect_reports_exactly_the_simulators_vms_and_hosts(
    sim: Vcsim, expected: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    results = run(connect, job(sim, kind="connect"))
    vms, hosts = expected
    assert len(results) == sim.vm_count + sim.host_count == MODEL.vm_count + MODEL.host_count
    assert set(by_system(results)) == set(vms) | set(hosts)
    assert {(r.status, r.port, r.credential_id, r.message) for r in results} == {
        ("success", sim.port, 5, "")
    }
    assert all(r.facts == {} for r in results)


def test_systems_sharing_a_name_are_keyed_by_name_and_managed_object_id(
    sim: Vcsim, inspected: Results
) -> None:
    keys = set(by_system(inspected))
    shared = {key for key in keys if re.fullmatch(r"(DC0_H0_VM0|DC0_C0_H0) \((vm|host)-\d+\)", key)}
    assert len(shared) == 4, sorted(keys)
    assert "DC0_H0_VM0" not in keys and "DC0_C0_H0" not in keys
    assert set(by_system(run(connect, job(sim, kind="connect")))) == keys


# Inspection.


def test_inspect_vm_facts_equal_what_pyvmomi_reads_directly(
    inspected: Results, expected: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    vms, _ = expected
    got = {key: r for key, r in by_system(inspected).items() if key in vms}
    assert set(got) == set(vms)
    for key, result in got.items():
        assert result.status == "success"
        facts = dict(result.facts)
        check_in = facts.pop("vm.last_check_in", None)
        assert facts == vms[key], key
        if facts["vm.state"] == "poweredOn":
            assert check_in is not None
            datetime.strptime(check_in, "%Y-%m-%d %H:%M:%S")
        else:
            assert check_in is None


def test_inspect_host_facts_equal_what_pyvmomi_reads_directly(
    inspected: Results, expected: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    _, hosts = expected
    got = {key: r.facts for key, r in by_system(inspected).items() if key in hosts}
    assert got == hosts
    assert sum(facts["host.vm_count"] for facts in got.values()) == MODEL.vm_count
    standalone = [facts for facts in got.values() if "host.cluster" not in facts]
    assert len(standalone) == MODEL.datacenters * MODEL.standalone_hosts


def test_template_and_powered_off_vm_are_reported_with_their_state(inspected: Results) -> None:
    facts = {r.system: r.facts for r in inspected if "vm.name" in r.facts}
    template = facts["DC0_C0_RP0_VM0"]
    assert (template["vm.is_template"], template["vm.state"]) == (True, "poweredOff")
    powered_off = facts["DC0_C0_RP0_VM1"]
    assert (powered_off["vm.is_template"], powered_off["vm.state"]) == (False, "poweredOff")
    running = [f for f in facts.values() if f["vm.state"] == "poweredOn"]
    assert len(running) == MODEL.vm_count - 2
    assert all(not f["vm.is_template"] and f["vm.ip_addresses"] for f in running)
    assert {f["vm.memory_size"] for f in facts.values()} == {0.5, 1.0, 1.5, 2.0}


def test_small_pages_give_the_same_results(sim: Vcsim, inspected: Results) -> None:
    """The simulator pages by maxObjects, as vCenter does: two objects per round trip."""
    paged = run(inspect, job(sim), page_size=2)

    def comparable(results: Results) -> dict[str, dict[str, Any]]:
        return {key: {**r.facts, "vm.last_check_in": None} for key, r in by_system(results).items()}

    assert comparable(paged) == comparable(inspected)


def test_stop_set_mid_way_returns_early(sim: Vcsim) -> None:
    results: Results = []

    async def scenario() -> None:
        stop = asyncio.Event()

        async def emit(result: wire.SystemResult) -> None:
            results.append(result)
            stop.set()

        await inspect(job(sim), emit, stop, page_size=2)

    asyncio.run(scenario())
    # The page that was being emitted is finished; no further page is read.
    assert len(results) == 2
    assert all("vm.name" in r.facts for r in results)


def test_stop_set_before_connect_reports_nothing(sim: Vcsim) -> None:
    results: Results = []

    async def scenario() -> None:
        stop = asyncio.Event()
        stop.set()

        async def emit(result: wire.SystemResult) -> None:
            results.append(result)

        await connect(job(sim, kind="connect"), emit, stop)

    asyncio.run(scenario())
    assert results == []


# What the operator is told when the source cannot be used.


def test_wrong_password_names_the_user_and_the_credential(sim: Vcsim) -> None:
    message = failure(job(sim, password="wrong"))
    assert message == (
        f"vCenter {sim.host}:{sim.port} refused the login of user 'quipu': check the "
        "credential's username and password."
    )
    assert failure(job(sim, password="wrong"), phase=inspect) == message


def test_certificate_verification_failure_says_how_to_trust_it(sim: Vcsim) -> None:
    message = failure(job(sim, sslCertVerify=True))
    assert message.startswith(
        f"vCenter {sim.host}:{sim.port}'s TLS certificate could not be verified"
    )
    assert message.endswith("install its CA on the scanner, or set ssl_cert_verify to false.")


def test_nothing_listening_is_a_refused_connection() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Bound and closed again: nothing listens on the port now.
    message = failure(job_for("127.0.0.1", port))
    assert message == (
        f"vCenter 127.0.0.1:{port} refused the connection: check the source's host and port, "
        "and that vCenter is running."
    )


def test_unknown_host_name_does_not_resolve() -> None:
    message = unavailable_offline(job_for("no-such-host.invalid", 443, kind="connect"))
    assert message.startswith(
        "vCenter no-such-host.invalid:443 could not be found: the name 'no-such-host.invalid' "
        "does not resolve ("
    )
    assert message.endswith("Check the source's host and the scanner's DNS.")


def test_a_server_that_never_answers_times_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TIMEOUT_VARIABLE, "0.5")
    with socket.create_server(("127.0.0.1", 0)) as silent:
        port = silent.getsockname()[1]
        message = failure(job_for("127.0.0.1", port))
    assert message.startswith(f"vCenter 127.0.0.1:{port} did not answer within 0.5 s")


def test_plain_http_to_the_https_port_is_no_vcenter(sim: Vcsim) -> None:
    message = failure(job(sim, disableSsl=True))
    assert message.startswith(
        f"{sim.host}:{sim.port} does not answer as a vCenter (it answered HTTP 400"
    )


# Transport options.


def test_connect_through_a_proxy(sim: Vcsim) -> None:
    with tunnelling_proxy() as (proxy_url, targets):
        results = run(connect, job(sim, kind="connect", proxyUrl=proxy_url))
    assert len(results) == sim.vm_count + sim.host_count
    assert targets and set(targets) == {f"{sim.host}:{sim.port}"}


def test_a_pinned_tls_protocol_is_spoken(sim: Vcsim) -> None:
    results = run(connect, job(sim, kind="connect", sslProtocol="TLSv1_2"))
    assert len(results) == sim.vm_count + sim.host_count


def test_plain_http_when_ssl_is_disabled() -> None:
    with running_vcsim(model=Model(vms=1), tls=False) as plain:
        results = run(connect, job(plain, kind="connect", disableSsl=True))
        assert len(results) == plain.vm_count + plain.host_count
        message = failure(job(plain, kind="connect"))
    assert message.startswith(f"The TLS handshake with vCenter {plain.host}:{plain.port} failed")
