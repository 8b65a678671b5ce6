"""The vCenter collector without a vCenter: facts, system keys, where hosts sit, and what
each failure tells the operator. Nothing goes on the wire."""

from __future__ import annotations

import socket
import ssl
from datetime import UTC, datetime
from typing import Any

import pytest
from pyVmomi import vim

from quipu import wire
from quipu.collectors.base import ApiSource
from quipu.collectors.vcenter.facts import Place, SystemNames, host_facts, nic_addresses, vm_facts
from quipu.collectors.vcenter.inventory import Directory
from quipu.collectors.vcenter.session import NotVcenter, describe
from quipu.collectors.vcenter.soap import Entry


def source() -> ApiSource:
    return ApiSource.from_job(
        wire.Job.model_validate(
            {
                "jobId": 1,
                "scanId": 1,
                "kind": "inspect",
                "sourceType": "vcenter",
                "targets": [{"range": "vc.example.com", "ports": [443], "credentialId": 5}],
                "credentials": [{"id": 5, "username": "ops", "password": "x"}],
                "options": {"sourceName": "vc"},
            }
        )
    )


# Facts.


def nic(mac: str, *addresses: str, device: int = 4000) -> dict[str, Any]:
    """A ``guest.net`` item as ``soap`` reads it: each field a list of its values."""
    found: dict[str, Any] = {"macAddress": [mac], "deviceConfigId": [str(device)]}
    if addresses:
        found["ipAddress"] = list(addresses)
        found["ipConfig"] = [
            {"ipAddress": [{"ipAddress": [a], "prefixLength": ["24"]} for a in addresses]}
        ]
    return found


def test_nics_give_ipv4_addresses_and_the_macs_of_virtual_adapters() -> None:
    nics = [
        nic("00:50:56:00:00:01", "10.0.0.1", "fe80::1", "10.0.0.2"),
        nic("00:50:56:00:00:02"),
        nic("02:42:ac:11:00:01", "172.17.0.1", device=-1),
        nic("00:50:56:00:00:01", "10.0.0.1"),
    ]
    assert nic_addresses(nics) == (
        ["00:50:56:00:00:01", "00:50:56:00:00:02"],
        ["10.0.0.1", "10.0.0.2"],
    )


NOW = datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)


def test_vm_memory_is_gb_with_its_fraction_and_check_in_only_when_powered_on() -> None:
    props = {
        "name": "web1",
        "summary.config.memorySizeMB": 512,
        "summary.runtime.powerState": "poweredOn",
        "summary.config.template": False,
    }
    facts = vm_facts(props, host=None, now=NOW)
    assert facts == {
        "vm.name": "web1",
        "vm.memory_size": 0.5,
        "vm.state": "poweredOn",
        "vm.is_template": False,
        "vm.last_check_in": "2025-03-04 05:06:07",
    }
    off = vm_facts({**props, "summary.runtime.powerState": "poweredOff"}, host=None, now=NOW)
    assert "vm.last_check_in" not in off
    assert vm_facts({**props, "summary.config.memorySizeMB": 1537}, host=None, now=NOW)[
        "vm.memory_size"
    ] == pytest.approx(1.5009765625)


def test_a_vm_takes_its_hosts_facts() -> None:
    host = host_facts(
        {
            "name": "esx1",
            "hardware.systemInfo.uuid": "u-1",
            "summary.hardware.numCpuPkgs": 2,
            "summary.hardware.numCpuCores": 16,
            "summary.hardware.numCpuThreads": 32,
            "summary.hardware.memorySize": 3 * 2**29,
            "summary.config.product.name": "VMware ESXi",
            "summary.config.product.version": "8.0.2",
        },
        place=Place(cluster=None, datacenter="dc1"),
        vm_count=4,
    )
    assert host == {
        "host.name": "esx1",
        "host.uuid": "u-1",
        "host.cpu_count": 2,
        "host.cpu_cores": 16,
        "host.cpu_threads": 32,
        "host.memory_size": 1.5,
        "host.os": "VMware ESXi",
        "host.version": "8.0.2",
        "host.datacenter": "dc1",
        "host.vm_count": 4,
    }
    facts = vm_facts({"name": "web1"}, host=host, now=NOW)
    assert facts == {
        "vm.name": "web1",
        "vm.host.name": "esx1",
        "vm.host.uuid": "u-1",
        "vm.host.cpu_count": 2,
        "vm.host.cpu_cores": 16,
        "vm.host.cpu_threads": 32,
        "vm.datacenter": "dc1",
    }


def test_a_host_sits_in_its_cluster_and_datacenter_through_nested_folders() -> None:
    directory = Directory(keep_vms=False)
    for kind, moid, props in [
        ("Datacenter", "datacenter-1", {"name": "dc1", "parent": "group-d1"}),
        ("Folder", "group-h1", {"name": "host", "parent": "datacenter-1"}),
        ("Folder", "group-h2", {"name": "prod", "parent": "group-h1"}),
        ("ClusterComputeResource", "domain-c1", {"name": "c1", "parent": "group-h2"}),
        ("ComputeResource", "domain-s1", {"name": "esx2", "parent": "group-h1"}),
        ("HostSystem", "host-1", {"name": "esx1", "parent": "domain-c1"}),
        ("HostSystem", "host-2", {"name": "esx2", "parent": "domain-s1"}),
    ]:
        directory.add(Entry(kind=kind, moid=moid, props=props))
    assert directory.place("host-1") == Place(cluster="c1", datacenter="dc1")
    assert directory.place("host-2") == Place(cluster=None, datacenter="dc1")


def test_shared_names_are_keyed_with_the_managed_object_id() -> None:
    names = SystemNames()
    for name in ["web1", "web2", "web1", "esx1", None, "esx1"]:
        names.add(name)
    assert names.key(name="web2", moid="vm-2") == "web2"
    assert names.key(name="web1", moid="vm-1") == "web1 (vm-1)"
    assert names.key(name="web1", moid="vm-3") == "web1 (vm-3)"
    assert names.key(name="esx1", moid="host-9") == "esx1 (host-9)"
    assert names.key(name=None, moid="vm-7") == "vm-7"
    assert names.key(name="", moid="vm-8") == "vm-8"


# What each failure tells the operator.


def cert_error() -> ssl.SSLCertVerificationError:
    error = ssl.SSLCertVerificationError("certificate verify failed")
    error.verify_message = "self-signed certificate"
    return error


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (
            vim.fault.InvalidLogin(),
            "vCenter vc.example.com:443 refused the login of user 'ops': check the "
            "credential's username and password.",
        ),
        (
            socket.gaierror(socket.EAI_NONAME, "Name or service not known"),
            "vCenter vc.example.com:443 could not be found: the name 'vc.example.com' does not "
            "resolve (Name or service not known). Check the source's host and the scanner's DNS.",
        ),
        (
            ConnectionRefusedError(111, "Connection refused"),
            "vCenter vc.example.com:443 refused the connection: check the source's host and "
            "port, and that vCenter is running.",
        ),
        (
            cert_error(),
            "vCenter vc.example.com:443's TLS certificate could not be verified (self-signed "
            "certificate): install its CA on the scanner, or set ssl_cert_verify to false.",
        ),
        (
            TimeoutError("timed out"),
            "vCenter vc.example.com:443 did not answer within 30 s: check the source's host "
            "and port, and any firewall or proxy on the way.",
        ),
        (
            NotVcenter("it answered HTTP 404 Not Found for /sdk/vimServiceVersions.xml"),
            "vc.example.com:443 does not answer as a vCenter (it answered HTTP 404 Not Found "
            "for /sdk/vimServiceVersions.xml): check the source's host and port, and "
            "disable_ssl (set it only when vCenter serves plain HTTP).",
        ),
        (
            vim.fault.NoPermission(msg="Permission to perform this operation was denied."),
            "User 'ops' may not read the inventory of vCenter vc.example.com:443 "
            "(vim.fault.NoPermission: Permission to perform this operation was denied.): give "
            "the user at least the Read-only role on the vCenter root.",
        ),
    ],
)
def test_each_failure_has_its_own_message(error: BaseException, message: str) -> None:
    assert describe(source(), error) == message


def test_an_error_that_says_nothing_about_the_source_is_not_explained() -> None:
    assert describe(source(), KeyError("vm.name")) is None
