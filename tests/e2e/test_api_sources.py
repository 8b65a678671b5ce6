"""vCenter and Satellite sources scanned for real: a server and its scanners against govmomi's
vCenter simulator and a fake Satellite 6 over HTTPS on loopback, alone and beside lab hosts."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim

from quipu.lab import Lab
from quipu.lab.ansible import RunningController, running_controller
from quipu.lab.openshift import CLUSTER_ID, RunningOpenShift, running_openshift
from quipu.lab.rhacs import RunningCentral, running_central
from quipu.lab.satellite import Behaviour, RunningSatellite, running_satellite
from quipu.lab.vcenter import Model, Vcsim, running_vcsim
from tests.e2e.qpc import logged_in
from tests.e2e.scans import (
    add_api_source,
    add_scan,
    counters,
    created,
    report,
    results,
    run_scan,
    wait_status,
)
from tests.labs import running_lab
from tests.servers import RunningServer, register_secret

SERVER_ENV = {"QUIPU_DISPATCH_INTERVAL_S": "0.2", "QUIPU_SSH_CONNECT_TIMEOUT_S": "3"}
MODEL = Model(datacenters=2, clusters=1, hosts_per_cluster=2, standalone_hosts=1, vms=2)
SATELLITE_HOSTS = 6
MIB = 1024**2
OPENSHIFT_NODES = 3


@dataclass(frozen=True)
class SimulatedVm:
    name: str
    uuid: str
    cpu_count: int
    memory_mb: int
    state: str
    template: bool
    macs: list[str]
    dns_name: str | None

    @property
    def report_name(self) -> str:
        """A VM is named by its guest's host name when its tools report one."""
        return self.dns_name or self.name


@dataclass(frozen=True)
class SimulatedHost:
    name: str
    uuid: str
    cpu_packages: int
    cpu_cores: int
    cpu_threads: int


@dataclass(frozen=True)
class Inventory:
    vms: dict[str, SimulatedVm]
    hosts: dict[str, SimulatedHost]


def read_inventory(sim: Vcsim) -> Inventory:
    """What pyvmomi reads from the simulator directly, one object at a time."""
    si = SmartConnect(
        host=sim.host,
        port=sim.port,
        user=sim.username,
        pwd=sim.password,
        disableSslCertValidation=True,
    )
    try:
        content = si.RetrieveContent()

        def objects(kind: Any) -> list[Any]:
            view = content.viewManager.CreateContainerView(content.rootFolder, [kind], True)
            try:
                return list(view.view)
            finally:
                view.Destroy()

        vms = {}
        for vm in objects(vim.VirtualMachine):
            devices = vm.config.hardware.device
            vms[vm.name] = SimulatedVm(
                name=vm.name,
                uuid=vm.config.uuid.lower(),
                cpu_count=vm.config.hardware.numCPU,
                memory_mb=vm.config.hardware.memoryMB,
                state=str(vm.runtime.powerState),
                template=bool(vm.config.template),
                macs=sorted(
                    d.macAddress.lower()
                    for d in devices
                    if isinstance(d, vim.vm.device.VirtualEthernetCard)
                ),
                dns_name=vm.guest.hostName or None,
            )
        hosts = {}
        for host in objects(vim.HostSystem):
            hardware = host.summary.hardware
            hosts[host.name] = SimulatedHost(
                name=host.name,
                uuid=hardware.uuid.lower(),
                cpu_packages=hardware.numCpuPkgs,
                cpu_cores=hardware.numCpuCores,
                cpu_threads=hardware.numCpuThreads,
            )
        return Inventory(vms=vms, hosts=hosts)
    finally:
        Disconnect(si)


@pytest.fixture(scope="module")
def vcsim() -> Iterator[Vcsim]:
    with running_vcsim(model=MODEL) as sim:
        yield sim


@pytest.fixture(scope="module")
def inventory(vcsim: Vcsim) -> Inventory:
    found = read_inventory(vcsim)
    assert (len(found.vms), len(found.hosts)) == (MODEL.vm_count, MODEL.host_count)
    return found


@pytest.fixture(scope="module")
def shared_vm(inventory: Inventory) -> SimulatedVm:
    """A powered-on VM that the fake Satellite also knows, as a registered host."""
    return next(vm for vm in sorted(inventory.vms.values(), key=lambda vm: vm.name) if vm.macs)


@pytest.fixture(scope="module")
def satellite(shared_vm: SimulatedVm) -> Iterator[RunningSatellite]:
    behaviour = Behaviour(macs={1: shared_vm.macs[0]})
    with running_satellite(hosts=SATELLITE_HOSTS, behaviour=behaviour) as sat:
        register_secret(sat.password)
        yield sat


WRONG_PASSWORD = "not-the-password"


def add_vcenter(
    api: httpx.Client, sim: Vcsim, *, name: str = "vc", password: str | None = None, **options: Any
) -> int:
    return add_api_source(
        api,
        name=name,
        source_type="vcenter",
        port=sim.port,
        credential={"username": sim.username, "password": password or sim.password},
        **options,
    )


def add_satellite(
    api: httpx.Client,
    sat: RunningSatellite,
    *,
    name: str = "sat",
    password: str | None = None,
    **options: Any,
) -> int:
    return add_api_source(
        api,
        name=name,
        source_type="satellite",
        port=sat.port,
        credential={"username": sat.username, "password": password or sat.password},
        **options,
    )


def deployments_by_name(api: httpx.Client, job: dict[str, Any]) -> dict[str, dict[str, Any]]:
    systems = report(api, job["report_id"], "deployments")["system_fingerprints"]
    by_name = {s["name"]: s for s in systems}
    assert len(by_name) == len(systems), "two systems of one name"
    return by_name


def test_a_vcenter_scan_reports_every_vm_and_host_with_the_simulators_facts(
    api: httpx.Client, vcsim: Vcsim, inventory: Inventory
) -> None:
    job = run_scan(api, add_scan(api, name="vc", sources=[add_vcenter(api, vcsim)]))
    assert job["status"] == "completed", job["status_message"]
    systems = MODEL.vm_count + MODEL.host_count
    assert counters(job) == (systems, systems, 0, 0)
    assert [(t["scan_type"], t["status"], t["systems_count"]) for t in job["tasks"]] == [
        ("connect", "completed", systems),
        ("inspect", "completed", systems),
    ]
    assert {r["name"] for r in results(api, job["id"], "connection")} == {
        *inventory.vms,
        *inventory.hosts,
    }

    deployments = deployments_by_name(api, job)
    vm_names = {vm.report_name for vm in inventory.vms.values()}
    assert set(deployments) == vm_names | set(inventory.hosts)
    for vm in inventory.vms.values():
        system = deployments[vm.report_name]
        assert (system["vm_uuid"], system["bios_uuid"]) == (vm.uuid, vm.uuid)
        assert system["cpu_count"] == vm.cpu_count
        assert system["system_memory_bytes"] == vm.memory_mb * MIB
        assert system["mac_addresses"] == vm.macs
        assert system["vm_state"] == vm.state
        assert system["infrastructure_type"] == "virtualized"
        assert system["vm_host"] in inventory.hosts
        assert [s["source_type"] for s in system["sources"]] == ["vcenter"]
    assert {vm.state for vm in inventory.vms.values()} >= {"poweredOn", "poweredOff"}
    assert any(vm.template for vm in inventory.vms.values())
    for host in inventory.hosts.values():
        system = deployments[host.name]
        assert system["bios_uuid"] == host.uuid
        assert (system["cpu_socket_count"], system["cpu_core_count"]) == (
            host.cpu_packages,
            host.cpu_cores,
        )
        assert system["infrastructure_type"] == "physical"

    details = report(api, job["report_id"], "details")
    (source,) = details["sources"]
    assert source["source_type"] == "vcenter"
    vm_facts = {f["vm.name"]: f for f in source["facts"] if "vm.name" in f}
    assert set(vm_facts) == set(inventory.vms)
    assert {name for name, f in vm_facts.items() if f["vm.is_template"]} == {
        vm.name for vm in inventory.vms.values() if vm.template
    }
    assert len(source["facts"]) == systems


def refusal_messages(api: httpx.Client, sources: dict[str, int]) -> dict[str, str]:
    """Scan each source alone; each job must fail at connection, its cause said once."""
    messages = {}
    for name, source_id in sources.items():
        job = run_scan(api, add_scan(api, name=name, sources=[source_id]))
        assert job["status"] == "failed"
        connect, inspect = job["tasks"]
        assert (connect["status"], inspect["status"]) == ("failed", "failed")
        assert job["status_message"] == connect["status_message"]
        assert job["status_message"].count("Connection to source") == 1
        assert counters(job) == (0, 0, 0, 0)
        messages[name] = job["status_message"]
    return messages


def test_vcenter_refusals_fail_the_connection_task_each_with_its_own_message(
    api: httpx.Client, vcsim: Vcsim
) -> None:
    messages = refusal_messages(
        api,
        {
            "wrong": add_vcenter(api, vcsim, name="vc-wrong", password=WRONG_PASSWORD),
            "untrusted": add_vcenter(api, vcsim, name="vc-untrusted", ssl_cert_verify=True),
        },
    )
    assert "username and password" in messages["wrong"]
    assert "certificate" in messages["untrusted"]
    assert "ssl_cert_verify" in messages["untrusted"]


def test_a_satellite_scan_reports_every_host_with_its_facts(
    api: httpx.Client, satellite: RunningSatellite
) -> None:
    job = run_scan(api, add_scan(api, name="sat", sources=[add_satellite(api, satellite)]))
    assert job["status"] == "completed", job["status_message"]
    assert counters(job) == (SATELLITE_HOSTS, SATELLITE_HOSTS, 0, 0)
    expected = satellite.expected
    inspected = {r["name"]: r for r in results(api, job["id"], "inspection")}
    assert set(inspected) == set(expected)
    for name, facts in expected.items():
        assert inspected[name]["status"] == "success"
        assert inspected[name]["facts"] == facts, name
    deployments = deployments_by_name(api, job)
    assert set(deployments) == set(expected)
    for name, facts in expected.items():
        system = deployments[name]
        assert system["cpu_socket_count"] == facts["num_sockets"]
        assert system["os_name"] == facts["os_name"]
        assert [s["source_type"] for s in system["sources"]] == ["satellite"]


def test_satellite_refusals_fail_the_job_each_with_its_own_message_once(
    api: httpx.Client, satellite: RunningSatellite
) -> None:
    messages = refusal_messages(
        api,
        {
            "sat-wrong": add_satellite(api, satellite, name="sat-wrong", password=WRONG_PASSWORD),
            "sat-untrusted": add_satellite(
                api, satellite, name="sat-untrusted", ssl_cert_verify=True
            ),
        },
    )
    for name, message in messages.items():
        assert message.count(f"Connection to source {name!r}") == 1
    assert "username and password" in messages["sat-wrong"]
    assert "TLS certificate" in messages["sat-untrusted"]
    assert "ssl_cert_verify" in messages["sat-untrusted"]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    root = tmp_path_factory.mktemp("sources-lab") / "lab"
    with running_lab(root=root, hosts=2, net="127.0.235", port=2235) as lab:
        yield lab


def add_lab_source(api: httpx.Client, lab: Lab) -> int:
    key = lab.sudo_key_path.read_text()
    register_secret(*(line for line in key.splitlines() if "PRIVATE KEY" not in line))
    credential = created(
        api.post(
            "/api/v2/credentials/",
            json={"name": "lab", "cred_type": "network", "username": lab.sudo_user, "ssh_key": key},
        )
    )
    source = created(
        api.post(
            "/api/v2/sources/",
            json={
                "name": "lab",
                "source_type": "network",
                "hosts": [h.address for h in lab.hosts],
                "port": lab.hosts[0].port,
                "credentials": [credential["id"]],
            },
        )
    )
    source_id: int = source["id"]
    return source_id


def when(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def start_remote_scanner(
    server: RunningServer, api: httpx.Client, *, name: str, log: Path
) -> tuple[int, subprocess.Popen[bytes]]:
    scanner = created(api.post("/api/v1/scanners/", json={"name": name}))
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "quipu.cli.quipu", "scanner", "run", "--server", server.url],
            env={**server.env, "QUIPU_SCANNER_API_KEY": scanner["api_key"]},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return scanner["id"], process


@dataclass(frozen=True)
class Platforms:
    cluster: RunningOpenShift
    controller: RunningController
    central: RunningCentral


@pytest.fixture(scope="module")
def platforms() -> Iterator[Platforms]:
    """A fake OpenShift cluster, AAP controller and RHACS Central, up for the module."""
    with (
        running_openshift(nodes=OPENSHIFT_NODES) as cluster,
        running_controller() as controller,
        running_central(clusters=2) as central,
    ):
        register_secret(cluster.token, controller.password, controller.token, central.token)
        yield Platforms(cluster=cluster, controller=controller, central=central)


def add_platforms(api: httpx.Client, platforms: Platforms, *, scanners: list[int]) -> list[int]:
    """An OpenShift source (token), an AAP source (username and password) and an RHACS
    source (token) of the fakes."""
    return [
        add_api_source(
            api, name="ocp", source_type="openshift", port=platforms.cluster.port,
            credential={"auth_token": platforms.cluster.token}, scanners=scanners,
        ),
        add_api_source(
            api, name="aap", source_type="ansible", port=platforms.controller.port,
            credential={
                "username": platforms.controller.username,
                "password": platforms.controller.password,
            },
            scanners=scanners,
        ),
        add_api_source(
            api, name="acs", source_type="rhacs", port=platforms.central.port,
            credential={"auth_token": platforms.central.token}, scanners=scanners,
        ),
    ]  # fmt: skip


@pytest.mark.lab
def test_every_source_type_in_one_scan_merges_into_one_estate(
    server: RunningServer,
    api: httpx.Client,
    lab: Lab,
    vcsim: Vcsim,
    inventory: Inventory,
    satellite: RunningSatellite,
    shared_vm: SimulatedVm,
    platforms: Platforms,
    tmp_path: Path,
) -> None:
    """The API sources run on a remote scanner, the lab on the built-in one."""
    remote, process = start_remote_scanner(server, api, name="remote", log=tmp_path / "scanner.log")
    try:
        sources = [
            add_lab_source(api, lab),
            add_vcenter(api, vcsim, scanners=[remote]),
            add_satellite(api, satellite, scanners=[remote]),
            *add_platforms(api, platforms, scanners=[remote]),
        ]
        job = run_scan(api, add_scan(api, name="estate", sources=sources))
    finally:
        process.terminate()
        assert process.wait(20) == 0
    assert job["status"] == "completed", job["status_message"]
    # OpenShift: its nodes and the cluster's own record; AAP and RHACS: the server itself
    platform_systems = OPENSHIFT_NODES + 1 + 1 + 1
    systems = len(lab.hosts) + MODEL.vm_count + MODEL.host_count + SATELLITE_HOSTS
    assert counters(job) == (systems + platform_systems,) * 2 + (0, 0)

    tasks = job["tasks"]
    assert {t["status"] for t in tasks} == {"completed"}
    connect_ends = [when(t["end_time"]) for t in tasks if t["scan_type"] == "connect"]
    inspect_starts = [when(t["start_time"]) for t in tasks if t["scan_type"] == "inspect"]
    assert len(connect_ends) == len(inspect_starts) == 6
    assert max(connect_ends) <= min(inspect_starts), "inspection began before connection ended"

    deployments = report(api, job["report_id"], "deployments")["system_fingerprints"]
    # the Satellite host that is a VM is one system; the cluster record is no system
    assert len(deployments) == systems - 1 + OPENSHIFT_NODES + 2
    (shared,) = [s for s in deployments if shared_vm.macs[0] in (s["mac_addresses"] or [])]
    assert sorted(s["source_type"] for s in shared["sources"]) == ["satellite", "vcenter"]
    assert shared["vm_uuid"] == shared_vm.uuid
    assert shared["cpu_count"] == shared_vm.cpu_count, "vCenter's CPU count wins"
    by_type = Counter(
        "+".join(sorted({s["source_type"] for s in system["sources"]})) for system in deployments
    )
    assert (by_type["openshift"], by_type["ansible"], by_type["rhacs"]) == (OPENSHIFT_NODES, 1, 1)
    nodes = [s for s in deployments if s["sources"][0]["source_type"] == "openshift"]
    assert {s["vm_cluster"] for s in nodes} == {CLUSTER_ID}

    details = report(api, job["report_id"], "details")["sources"]
    assert sorted(s["source_type"] for s in details) == sorted(
        ["network", "vcenter", "satellite", "openshift", "ansible", "rhacs"]
    )
    aggregate = api.get(f"/api/v1/reports/{job['report_id']}/aggregate/").json()["results"]
    assert aggregate["openshift_cluster_instances"] == 1
    assert aggregate["openshift_node_instances"] == OPENSHIFT_NODES
    assert aggregate["ansible_hosts_all"] > 0


@pytest.mark.lab
def test_one_failing_source_fails_the_job_and_keeps_the_others_results(
    api: httpx.Client, lab: Lab, vcsim: Vcsim, inventory: Inventory, satellite: RunningSatellite
) -> None:
    broken = add_satellite(api, satellite, name="sat-broken", password=WRONG_PASSWORD)
    sources = [add_lab_source(api, lab), add_vcenter(api, vcsim), broken]
    job = run_scan(api, add_scan(api, name="partial", sources=sources))
    assert job["status"] == "failed"
    assert job["status_message"].count("Connection to source 'sat-broken'") == 1
    by_source = {(t["source"]["name"], t["scan_type"]): t["status"] for t in job["tasks"]}
    assert by_source == {
        ("lab", "connect"): "completed",
        ("vc", "connect"): "completed",
        ("sat-broken", "connect"): "failed",
        ("lab", "inspect"): "completed",
        ("vc", "inspect"): "completed",
        ("sat-broken", "inspect"): "failed",
    }
    inspected = {r["name"] for r in results(api, job["id"], "inspection")}
    assert inspected == {h.address for h in lab.hosts} | set(inventory.vms) | set(inventory.hosts)


def test_qpc_adds_scans_and_reports_vcenter_and_satellite_sources(
    server: RunningServer,
    vcsim: Vcsim,
    inventory: Inventory,
    satellite: RunningSatellite,
    tmp_path: Path,
) -> None:
    qpc = logged_in(server, config_home=tmp_path / "config", secrets=(satellite.password,))
    for name, kind, username, password in (
        ("vc", "vcenter", vcsim.username, vcsim.password),
        ("sat", "satellite", satellite.username, satellite.password),
    ):
        added = qpc.ok(
            "cred", "add", "--name", name, "--type", kind, "--username", username, "--password",
            input=password + "\n",
        )  # fmt: skip
        assert added.stdout.endswith(f'Credential "{name}" was added.\n')
    vc = ("--hosts", "127.0.0.1", "--port", str(vcsim.port), "--cred", "vc")
    untrusted = qpc.ok("source", "add", "--name", "vc", "--type", "vcenter", *vc)
    assert untrusted.stdout == 'Source "vc" was added.\n'
    assert qpc.ok("source", "show", "--name", "vc").json()["ssl_cert_verify"] is True
    qpc.ok("source", "edit", "--name", "vc", "--ssl-cert-verify", "false")
    qpc.ok(
        "source", "add", "--name", "sat", "--type", "satellite", "--hosts", "127.0.0.1",
        "--port", str(satellite.port), "--cred", "sat", "--ssl-cert-verify", "false",
        "--ssl-protocol", "TLSv1_2",
    )  # fmt: skip
    qpc.ok("scan", "add", "--name", "servers", "--sources", "vc", "sat")
    started = qpc.ok("scan", "start", "--name", "servers").stdout
    job_id = started.split('"')[1]
    deadline = time.monotonic() + 120
    while (job := qpc.ok("scan", "job", "--id", job_id).json())["status"] not in (
        "completed",
        "failed",
    ):
        assert time.monotonic() < deadline, job
        time.sleep(0.3)
    assert job["status"] == "completed", job["status_message"]
    systems = MODEL.vm_count + MODEL.host_count + SATELLITE_HOSTS
    assert job["systems_count"] == job["systems_scanned"] == systems

    details = qpc.ok("report", "details", "--scan-job", job_id, "--json").json()
    by_type = {s["source_type"]: s for s in details["sources"]}
    assert {f.get("vm.name") for f in by_type["vcenter"]["facts"]} - {None} == set(inventory.vms)
    assert {f["hostname"] for f in by_type["satellite"]["facts"]} == set(satellite.expected)
    deployments = qpc.ok("report", "deployments", "--scan-job", job_id, "--json").json()
    assert len(deployments["system_fingerprints"]) == systems - 1


def test_a_paused_satellite_inspection_restarts_and_inspects_each_host_once(
    api: httpx.Client,
) -> None:
    slow = Behaviour(latency_s=0.25)
    with running_satellite(hosts=8, behaviour=slow) as sat:
        register_secret(sat.password)
        source = add_satellite(api, sat, name="sat-slow")
        scan = created(
            api.post(
                "/api/v1/scans/",
                json={"name": "slow", "sources": [source], "options": {"max_concurrency": 1}},
            )
        )
        job_id = created(api.post(f"/api/v1/scans/{scan['id']}/jobs/"))["id"]
        deadline = time.monotonic() + 60
        while not results(api, job_id, "inspection"):
            assert time.monotonic() < deadline, "inspection never began"
            time.sleep(0.05)
        assert api.put(f"/api/v1/jobs/{job_id}/pause/").status_code == 200
        wait_status(api, job_id, statuses=("paused",))
        time.sleep(1)
        done_while_paused = len(results(api, job_id, "inspection"))
        assert done_while_paused < 8, "the pause came too late to test anything"
        assert api.put(f"/api/v1/jobs/{job_id}/restart/").status_code == 200
        job = wait_status(api, job_id, statuses=("completed", "failed"))
    assert job["status"] == "completed", job["status_message"]
    assert counters(job) == (8, 8, 0, 0)
    inspected = Counter(r["name"] for r in results(api, job_id, "inspection"))
    assert inspected == Counter(list(sat.expected))
