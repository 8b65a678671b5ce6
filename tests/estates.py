"""Systems as sources see them, for the report tests: raw facts as each collector emits
them, a small estate seen by network, satellite and vCenter, a details report as the
established server writes it, and deployments-report fingerprints."""

from __future__ import annotations

import uuid
from typing import Any

from quipu.reports import FIELDS, SourceFacts, build_deployments


def network(**facts: Any) -> dict[str, Any]:
    """Raw facts of one system from SSH inspection (with sudo unless told otherwise)."""
    return {"system": "10.0.0.1", "has_sudo": True, **facts}


def satellite(**facts: Any) -> dict[str, Any]:
    return dict(facts)


def vcenter(**facts: Any) -> dict[str, Any]:
    """Raw facts of one VM: ``vm_cpu_count`` becomes ``vm.cpu_count``, ``vm_host_name``
    becomes ``vm.host.name``."""
    return {_dotted(key): value for key, value in facts.items()}


def _dotted(key: str) -> str:
    for prefix, dotted in (("vm_host_", "vm.host."), ("vm_", "vm.")):
        if key.startswith(prefix):
            return dotted + key[len(prefix) :]
    return key


def source(name: str, kind: str, *facts: dict[str, Any]) -> SourceFacts:
    return SourceFacts(source_name=name, source_type=kind, server_id="server-1", facts=list(facts))


def deployments(*sources: SourceFacts) -> list[dict[str, Any]]:
    report = build_deployments(
        report_id=7, sources=sources, report_version="0.1.0", platform_id="p"
    )
    systems: list[dict[str, Any]] = report["system_fingerprints"]
    return systems


WEB_UUID = "4221ab2c-0001-4000-8000-00000000a001"
WEB_MAC = "00:50:56:01:00:01"
DB_UUID = "4c4c4544-0002-4000-8000-00000000b002"
APP_MAC = "00:50:56:03:00:03"


def estate() -> list[SourceFacts]:
    """web1: a VM all three sources see, disagreeing on CPUs, OS release and check-in time;
    db1: a physical host reached twice (with and without sudo) and registered to Satellite;
    app1: a VM only Satellite and vCenter see; two clones that share a machine id and a
    placeholder BIOS UUID but are different systems."""
    lab = source(
        "lab",
        "network",
        network(
            uname_hostname="web1",
            etc_release_name="Red Hat Enterprise Linux",
            etc_release_release="Red Hat Enterprise Linux release 9.2 (Plow)",
            etc_release_version="9.2",
            etc_machine_id="11" * 16,
            dmi_system_uuid=WEB_UUID.upper(),
            cpu_count=2,
            system_memory_bytes=8_000_000_000,
            virt_what_type="vmware",
            ifconfig_mac_addresses=[WEB_MAC.upper(), "00:00:00:00:00:00"],
            ifconfig_ip_addresses=["10.0.0.10", "127.0.0.1", "fe80::1"],
            subscription_manager_id="aaaaaaaa-0001-4000-8000-000000000001",
            redhat_packages_gpg_num_rh_packages=812,
        ),
        network(
            system="10.0.0.20",
            uname_hostname="db1",
            etc_release_name="CentOS Stream",
            etc_machine_id="22" * 16,
            dmi_system_uuid=DB_UUID,
            cpu_socket_count=2,
            virt_what_type="bare metal",
            ifconfig_mac_addresses=["a0:36:9f:02:00:01", "a0:36:9f:02:00:02"],
            ifconfig_ip_addresses=["10.0.0.20"],
        ),
        network(
            system="10.0.1.20",
            has_sudo=False,
            uname_hostname="db1",
            etc_machine_id="22" * 16,
            dmi_system_uuid=None,
            cpu_socket_count=1,
            virt_what_type=None,
            ifconfig_mac_addresses=["a0:36:9f:02:00:02", "a0:36:9f:02:00:01"],
            ifconfig_ip_addresses=["10.0.1.20"],
        ),
        network(
            uname_hostname="clone-a",
            etc_machine_id="33" * 16,
            dmi_system_uuid="Not Settable",
            ifconfig_mac_addresses=["52:54:00:0a:00:01", "00:00:00:00:00:00"],
        ),
        network(
            uname_hostname="clone-b",
            etc_machine_id="33" * 16,
            dmi_system_uuid="00000000-0000-0000-0000-000000000000",
            ifconfig_mac_addresses=["52:54:00:0b:00:01", "00:00:00:00:00:00"],
        ),
    )
    sat = source(
        "sat",
        "satellite",
        satellite(
            hostname="web1.example.com",
            uuid="aaaaaaaa-0001-4000-8000-000000000001",
            os_name="RedHat",
            os_release="9.1",
            cores=8,
            num_sockets=2,
            is_virtualized=False,
            mac_addresses=["00:50:56:99:99:99"],
            entitlements=[{"name": "Red Hat Enterprise Linux Server", "id": 1}],
            last_checkin_time="2024-05-02 08:00:00 UTC",
        ),
        satellite(
            hostname="db1.example.com",
            uuid="aaaaaaaa-0002-4000-8000-000000000002",
            is_virtualized=False,
            mac_addresses=["a0:36:9f:02:00:01"],
        ),
        satellite(
            hostname="app1.example.com",
            uuid="aaaaaaaa-0003-4000-8000-000000000003",
            mac_addresses=[APP_MAC],
            entitlements=[{"name": "Red Hat Enterprise Linux Server"}, {"name": "JBoss EAP"}],
        ),
    )
    vc = source(
        "vc",
        "vcenter",
        vcenter(
            vm_name="web1-vm",
            vm_uuid=WEB_UUID,
            vm_os="Red Hat Enterprise Linux 9 (64-bit)",
            vm_cpu_count=4,
            vm_memory_size=8,
            vm_mac_addresses=[WEB_MAC],
            vm_ip_addresses=["10.0.0.10", "10.0.0.11"],
            vm_state="poweredOn",
            vm_last_check_in="2024-05-03 09:30:00",
        ),
        vcenter(
            vm_name="app1",
            vm_uuid="4221ab2c-0003-4000-8000-00000000a003",
            vm_cpu_count=2,
            vm_mac_addresses=[APP_MAC],
        ),
    )
    return [lab, sat, vc]


def system(*sources: str, **fields: Any) -> dict[str, Any]:
    """One deployments-report fingerprint: every field null unless given."""
    value: dict[str, Any] = dict.fromkeys(FIELDS)
    value["infrastructure_type"] = "unknown"
    value.update(fields)
    value["sources"] = [{"source_name": kind, "source_type": kind} for kind in sources]
    value["metadata"] = {}
    return value


PLATFORM_ID = "6cb5ce05-3d3b-4a8f-a9a3-0e2a1c6e5a11"
SERVER_ID = "f0a1b2c3-d4e5-4f60-8172-8394a5b6c7d8"


def _established(fact: dict[str, Any], number: int) -> dict[str, Any]:
    """A network fact as the established server's details report carries it: no ``system``,
    the address in ``connection_host`` beside the connection facts."""
    out = {k: v for k, v in fact.items() if k != "system"}
    return {
        "connection_host": f"10.0.{number}.1",
        "connection_port": 22,
        "connection_uuid": str(uuid.UUID(int=number)),
        **out,
    }


def established_details() -> dict[str, Any]:
    """A details report as the established server writes it, of an estate seen by network,
    satellite and vCenter (web1 by all three, db1 twice and by Satellite, app1 by Satellite
    and vCenter, two clones)."""
    sources = []
    for source in estate():
        facts = list(source.facts)
        if source.source_type == "network":
            facts = [_established(f, n) for n, f in enumerate(facts, start=1)]
        sources.append(
            {
                "facts": facts,
                "report_version": "1.4.1+2f3c1a9d8e7b6a5c4d3e2f1a0b9c8d7e6f5a4b3c",
                "server_id": SERVER_ID,
                "source_name": source.source_name,
                "source_type": source.source_type,
            }
        )
    return {
        "report_id": 12,
        "report_type": "details",
        "report_version": "1.4.1+2f3c1a9d8e7b6a5c4d3e2f1a0b9c8d7e6f5a4b3c",
        "report_platform_id": PLATFORM_ID,
        "sources": sources,
    }
