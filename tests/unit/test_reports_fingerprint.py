"""Fingerprinting: each source type's raw facts mapped to the common fields."""

from __future__ import annotations

from typing import Any

import pytest

from quipu.domain.errors import InvalidInput
from quipu.reports import FIELDS, fingerprint
from tests.estates import network, satellite, vcenter


def net(**facts: Any) -> Any:
    return fingerprint(source_name="lab", source_type="network", facts=network(**facts))


def test_network_facts_map_to_common_fields_with_their_raw_keys() -> None:
    fp = net(
        uname_hostname="web1",
        uname_processor="x86_64",
        etc_release_name="Red Hat Enterprise Linux",
        etc_release_release="Red Hat Enterprise Linux release 9.2 (Plow)",
        etc_release_version="9.2",
        etc_machine_id="ab" * 16,
        cpu_count="4",
        cpu_socket_count=1,
        cpu_core_count=4,
        system_memory_bytes=8_000_000_000,
        dmi_system_uuid="4221AB2C-0001-4000-8000-00000000A001",
        cloud_provider="aws",
        ifconfig_ip_addresses=["10.0.0.5", "127.0.0.1"],
        ifconfig_mac_addresses=["00:50:56:AA:BB:CC"],
        subman_consumed=[{"name": "RHEL Server", "sku": "RH0001"}],
        system_last_checkin_date="2024-05-02T08:00:00Z",
        redhat_packages_gpg_num_rh_packages=500,
        uname_kernel="5.14.0",
    )
    assert fp.known() == {
        "name": "web1",
        "architecture": "x86_64",
        "os_name": "Red Hat Enterprise Linux",
        "os_release": "Red Hat Enterprise Linux release 9.2 (Plow)",
        "os_version": "9.2",
        "etc_machine_id": "ab" * 16,
        "cpu_count": 4,
        "cpu_socket_count": 1,
        "cpu_core_count": 4,
        "system_memory_bytes": 8_000_000_000,
        "bios_uuid": "4221ab2c-0001-4000-8000-00000000a001",
        "cloud_provider": "aws",
        "ip_addresses": ("10.0.0.5",),
        "mac_addresses": ("00:50:56:aa:bb:cc",),
        "installed_products": ("RHEL Server",),
        "system_last_checkin_date": "2024-05-02T08:00:00+00:00",
        "redhat_package_count": 500,
        "is_redhat": True,
    }
    assert fp.raw_fact_key("name") == "uname_hostname"
    assert fp.raw_fact_key("bios_uuid") == "dmi_system_uuid"
    assert fp.raw_fact_key("installed_products") == "subman_consumed"
    assert fp.raw_fact_key("vm_uuid") is None
    assert fp.has_sudo is True
    assert len(fp.values) == len(fp.raw_fact_keys) == len(FIELDS)


def test_network_null_facts_stay_unknown() -> None:
    fp = net(uname_hostname=None, cpu_count=None, dmi_system_uuid="Not Settable")
    assert fp.known() == {}


@pytest.mark.parametrize(
    ("virt_what", "virt_type", "infrastructure", "virtualized", "raw_key"),
    [
        ("bare metal", None, "physical", None, "virt_what_type"),
        ("kvm", None, "virtualized", "kvm", "virt_what_type"),
        ("xen\nxen-domU", None, "virtualized", "xen", "virt_what_type"),
        ("vmware", "vmware", "virtualized", "vmware", "virt_what_type"),
        (None, "kvm", "virtualized", "kvm", "virt_type"),
        (None, None, None, None, None),
    ],
)
def test_network_infrastructure_type(
    virt_what: str | None,
    virt_type: str | None,
    infrastructure: str | None,
    virtualized: str | None,
    raw_key: str | None,
) -> None:
    fp = net(virt_what_type=virt_what, virt_type=virt_type)
    assert fp.get("infrastructure_type") == infrastructure
    assert fp.get("virtualized_type") == virtualized
    assert fp.raw_fact_key("infrastructure_type") == raw_key


@pytest.mark.parametrize(
    ("release_name", "rh_packages", "is_redhat", "raw_key"),
    [
        ("Red Hat Enterprise Linux", 0, True, "etc_release_name"),
        ("CentOS Stream", 3, True, "redhat_packages_gpg_num_rh_packages"),
        ("CentOS Stream", 0, False, "etc_release_name"),
        ("Debian GNU/Linux", None, False, "etc_release_name"),
        (None, 0, False, "redhat_packages_gpg_num_rh_packages"),
        (None, None, None, None),
    ],
)
def test_network_is_redhat(
    release_name: str | None, rh_packages: int | None, is_redhat: bool | None, raw_key: str | None
) -> None:
    fp = net(etc_release_name=release_name, redhat_packages_gpg_num_rh_packages=rh_packages)
    assert fp.get("is_redhat") is is_redhat
    assert fp.raw_fact_key("is_redhat") == raw_key


@pytest.mark.parametrize(
    ("raw", "has_sudo"), [(True, True), ("true", True), (False, False), (None, False)]
)
def test_network_has_sudo(raw: Any, has_sudo: bool) -> None:
    assert net(has_sudo=raw).has_sudo is has_sudo


def test_vcenter_facts_map_to_common_and_vm_fields() -> None:
    fp = fingerprint(
        source_name="vc",
        source_type="vcenter",
        facts=vcenter(
            vm_name="web1-vm",
            vm_dns_name="web1.example.com",
            vm_uuid="4221AB2C-0001-4000-8000-00000000A001",
            vm_os="Red Hat Enterprise Linux 9 (64-bit)",
            vm_state="poweredOn",
            vm_cpu_count=4,
            vm_memory_size=1.5,
            vm_ip_addresses=["10.0.0.5"],
            vm_mac_addresses=["00:50:56:aa:bb:cc"],
            vm_host_name="esx1",
            vm_host_cpu_count=2,
            vm_host_cpu_cores=32,
            vm_host_cpu_threads=64,
            vm_cluster="prod",
            vm_datacenter="dc1",
            vm_last_check_in="2024-05-03 09:30:00",
        ),
    )
    uuid = "4221ab2c-0001-4000-8000-00000000a001"
    assert fp.known() == {
        "name": "web1.example.com",
        "os_release": "Red Hat Enterprise Linux 9 (64-bit)",
        "is_redhat": True,
        "cpu_count": 4,
        "system_memory_bytes": 1536 * 1024**2,
        "infrastructure_type": "virtualized",
        "virtualized_type": "vmware",
        "bios_uuid": uuid,
        "vm_uuid": uuid,
        "ip_addresses": ("10.0.0.5",),
        "mac_addresses": ("00:50:56:aa:bb:cc",),
        "vm_state": "poweredOn",
        "vm_dns_name": "web1.example.com",
        "vm_host": "esx1",
        "vm_host_socket_count": 2,
        "vm_host_core_count": 32,
        "vm_host_cpu_threads": 64,
        "vm_cluster": "prod",
        "vm_datacenter": "dc1",
        "system_last_checkin_date": "2024-05-03T09:30:00+00:00",
    }
    assert fp.raw_fact_key("name") == "vm.dns_name"
    assert fp.raw_fact_key("system_memory_bytes") == "vm.memory_size"
    assert fp.raw_fact_key("infrastructure_type") is None
    assert fp.has_sudo is False


def test_vcenter_name_falls_back_to_vm_name_and_os_tells_is_redhat() -> None:
    fp = fingerprint(
        source_name="vc", source_type="vcenter", facts=vcenter(vm_name="win1", vm_os="Windows")
    )
    assert fp.get("name") == "win1"
    assert fp.raw_fact_key("name") == "vm.name"
    assert fp.get("is_redhat") is False
    bare = fingerprint(source_name="vc", source_type="vcenter", facts=vcenter(vm_name="x"))
    assert bare.get("is_redhat") is None


def test_vcenter_memory_size_keeps_its_fraction_of_a_gb() -> None:
    fp = fingerprint(source_name="vc", source_type="vcenter", facts=vcenter(vm_memory_size=0.5))
    assert fp.get("system_memory_bytes") == 512 * 1024**2


ESX_UUID = "30313436-3631-5a43-4a34-303130315a4b"


def esx_host(**facts: Any) -> dict[str, Any]:
    """Raw facts of one ESXi host: ``host_cpu_count`` becomes ``host.cpu_count``."""
    return {"host." + key.removeprefix("host_"): value for key, value in facts.items()}


def test_vcenter_esxi_host_facts_map_to_a_physical_system() -> None:
    fp = fingerprint(
        source_name="vc",
        source_type="vcenter",
        facts=esx_host(
            host_name="esx1.example.com",
            host_uuid=ESX_UUID.upper(),
            host_cpu_count=2,
            host_cpu_cores=32,
            host_cpu_threads=64,
            host_memory_size=511.9,
            host_os="VMware ESXi",
            host_version="8.0.2",
            host_cluster="prod",
            host_datacenter="dc1",
            host_vm_count=40,
        ),
    )
    assert fp.known() == {
        "name": "esx1.example.com",
        "os_name": "VMware ESXi",
        "os_release": "VMware ESXi 8.0.2",
        "os_version": "8.0.2",
        "is_redhat": False,
        "cpu_count": 64,
        "cpu_socket_count": 2,
        "cpu_core_count": 32,
        "system_memory_bytes": round(511.9 * 1024**3),
        "infrastructure_type": "physical",
        "bios_uuid": ESX_UUID,
    }
    assert fp.raw_fact_key("name") == "host.name"
    assert fp.raw_fact_key("bios_uuid") == "host.uuid"
    assert fp.raw_fact_key("cpu_count") == "host.cpu_threads"
    assert fp.raw_fact_key("cpu_socket_count") == "host.cpu_count"
    assert fp.raw_fact_key("system_memory_bytes") == "host.memory_size"
    assert fp.raw_fact_key("os_name") == "host.os"
    assert fp.raw_fact_key("infrastructure_type") is None
    assert fp.get("vm_uuid") is None


def test_vcenter_esxi_host_without_os_fact_is_still_esxi() -> None:
    fp = fingerprint(source_name="vc", source_type="vcenter", facts=esx_host(host_uuid=ESX_UUID))
    assert fp.get("os_name") == "VMware ESXi"
    assert fp.raw_fact_key("os_name") is None
    assert fp.get("os_release") is None
    assert fp.get("bios_uuid") == ESX_UUID


def test_vcenter_vm_record_is_never_read_as_a_host() -> None:
    """A VM record carries its host's facts as vm.host.*; any vm.* fact makes it a VM."""
    fp = fingerprint(
        source_name="vc",
        source_type="vcenter",
        facts={"vm.name": "web1", "vm.host.name": "esx1", "host.name": "esx1"},
    )
    assert fp.get("name") == "web1"
    assert fp.get("infrastructure_type") == "virtualized"


def test_satellite_facts_map_to_common_fields() -> None:
    fp = fingerprint(
        source_name="sat",
        source_type="satellite",
        facts=satellite(
            hostname="web1.example.com",
            uuid="AAAAAAAA-0001-4000-8000-000000000001",
            os_name="RedHat",
            os_release="9.2",
            os_version="9.2",
            architecture="x86_64",
            cores=8,
            num_sockets=2,
            is_virtualized=False,
            ip_addresses=["10.0.0.5"],
            mac_addresses=["00:50:56:AA:BB:CC"],
            entitlements=[{"name": "RHEL Server"}],
            last_checkin_time="2024-05-02 08:00:00 UTC",
            registration_time="2023-01-01 00:00:00 UTC",
        ),
    )
    assert fp.known() == {
        "name": "web1.example.com",
        "subscription_manager_id": "aaaaaaaa-0001-4000-8000-000000000001",
        "os_name": "RedHat",
        "os_release": "9.2",
        "os_version": "9.2",
        "architecture": "x86_64",
        "cpu_count": 8,
        "cpu_core_count": 8,
        "cpu_socket_count": 2,
        "infrastructure_type": "physical",
        "is_redhat": True,
        "ip_addresses": ("10.0.0.5",),
        "mac_addresses": ("00:50:56:aa:bb:cc",),
        "installed_products": ("RHEL Server",),
        "system_last_checkin_date": "2024-05-02T08:00:00+00:00",
    }
    assert fp.raw_fact_key("subscription_manager_id") == "uuid"
    assert fp.raw_fact_key("infrastructure_type") == "is_virtualized"


def test_satellite_prefers_an_explicit_subscription_manager_id() -> None:
    fp = fingerprint(
        source_name="sat",
        source_type="satellite",
        facts=satellite(
            uuid="aaaaaaaa-0001-4000-8000-000000000001",
            subscription_manager_id="bbbbbbbb-0001-4000-8000-000000000001",
            is_virtualized="true",
        ),
    )
    assert fp.get("subscription_manager_id") == "bbbbbbbb-0001-4000-8000-000000000001"
    assert fp.raw_fact_key("subscription_manager_id") == "subscription_manager_id"
    assert fp.get("infrastructure_type") == "virtualized"


def test_satellite_collector_facts_of_a_guest_map_to_common_fields() -> None:
    """The facts as the Satellite collector emits them: typed values, nested entitlements."""
    fp = fingerprint(
        source_name="sat",
        source_type="satellite",
        facts=satellite(
            hostname="vm-00002.example.com",
            uuid="5a7e0000-0000-4000-8000-000000000002",
            subscription_manager_id="5a7e0000-0000-4000-8000-000000000002",
            os_name="RedHat",
            os_release="RedHat 8.10",
            os_version="8.10",
            architecture="x86_64",
            cores=2,
            num_sockets=2,
            kernel_version="4.18.0-553.el8_10.x86_64",
            ip_addresses=["10.0.0.2"],
            mac_addresses=["52:54:00:00:00:02"],
            is_virtualized=True,
            virt_type="kvm",
            virtual_host_name="kvm-00001.example.com",
            virtual_host_uuid="5a7e0000-0000-4000-8000-000000000001",
            errata_out_of_date=6,
            packages_out_of_date=2,
            registration_time="2023-03-01 02:00:14 UTC",
            last_checkin_time="2025-06-01 00:02:02 UTC",
            organization="ACME",
            location="Pune",
            entitlements=[
                {
                    "name": "Red Hat Enterprise Linux for Virtual Datacenters, Standard",
                    "derived_entitlement": True,
                    "amount": 1,
                },
            ],
        ),
    )
    assert fp.known() == {
        "name": "vm-00002.example.com",
        "os_name": "RedHat",
        "os_release": "RedHat 8.10",
        "os_version": "8.10",
        "architecture": "x86_64",
        "cpu_count": 2,
        "cpu_core_count": 2,
        "cpu_socket_count": 2,
        "infrastructure_type": "virtualized",
        "virtualized_type": "kvm",
        "is_redhat": True,
        "subscription_manager_id": "5a7e0000-0000-4000-8000-000000000002",
        "ip_addresses": ("10.0.0.2",),
        "mac_addresses": ("52:54:00:00:00:02",),
        "installed_products": ("Red Hat Enterprise Linux for Virtual Datacenters, Standard",),
        "system_last_checkin_date": "2025-06-01T00:02:02+00:00",
    }
    assert fp.raw_fact_key("virtualized_type") == "virt_type"
    assert fp.raw_fact_key("subscription_manager_id") == "subscription_manager_id"


def test_satellite_virt_type_of_a_physical_host_is_no_hypervisor() -> None:
    fp = fingerprint(
        source_name="sat",
        source_type="satellite",
        facts=satellite(hostname="kvm1", is_virtualized="false", virt_type="Not Applicable"),
    )
    assert fp.get("infrastructure_type") == "physical"
    assert fp.get("virtualized_type") is None


def test_satellite_os_release_tells_red_hat_when_os_name_is_missing() -> None:
    rhel = fingerprint(
        source_name="sat", source_type="satellite", facts=satellite(os_release="RedHat 7.9")
    )
    assert rhel.get("is_redhat") is True
    assert rhel.raw_fact_key("is_redhat") == "os_release"
    centos = fingerprint(
        source_name="sat",
        source_type="satellite",
        facts=satellite(os_name="CentOS", os_release="RedHat 7.9"),
    )
    assert centos.get("is_redhat") is False
    assert centos.raw_fact_key("is_redhat") == "os_name"
    unknown = fingerprint(source_name="sat", source_type="satellite", facts=satellite())
    assert unknown.get("is_redhat") is None


def test_unknown_source_type_is_refused() -> None:
    with pytest.raises(InvalidInput) as caught:
        fingerprint(source_name="x", source_type="openstack", facts={})
    assert caught.value.field == "source_type"
    assert "network, vcenter, satellite" in str(caught.value)


def test_facts_must_be_an_object() -> None:
    with pytest.raises(InvalidInput) as caught:
        fingerprint(source_name="x", source_type="network", facts=["uname_hostname"])  # type: ignore[arg-type]
    assert caught.value.field == "facts"
