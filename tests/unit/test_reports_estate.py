"""How the small estate of tests/estates.py merges: one fingerprint per real system."""

from __future__ import annotations

from typing import Any

from tests.estates import WEB_UUID, deployments, estate


def by_name(systems: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {system["name"]: system for system in systems}


def test_estate_merges_into_one_fingerprint_per_real_system() -> None:
    systems = by_name(deployments(*estate()))
    assert sorted(systems) == ["app1.example.com", "clone-a", "clone-b", "db1", "web1"]


def test_estate_web1_is_seen_by_all_three_sources() -> None:
    web = by_name(deployments(*estate()))["web1"]
    assert [(s["source_type"], s["source_name"]) for s in web["sources"]] == [
        ("network", "lab"),
        ("satellite", "sat"),
        ("vcenter", "vc"),
    ]


def test_estate_web1_conflicts_resolve_by_field_rule() -> None:
    web = by_name(deployments(*estate()))["web1"]
    assert web["cpu_count"] == 4  # vcenter over network (2) and satellite (8)
    assert web["cpu_socket_count"] == 2  # only satellite knows it
    assert web["infrastructure_type"] == "virtualized"  # vcenter over satellite's physical
    assert web["os_version"] == "9.2"  # network over satellite (9.1)
    assert web["os_name"] == "Red Hat Enterprise Linux"
    assert web["system_memory_bytes"] == 8 * 1024**3  # vcenter's allocation
    assert web["system_last_checkin_date"] == "2024-05-03T09:30:00+00:00"  # the latest
    assert web["mac_addresses"] == ["00:50:56:01:00:01", "00:50:56:99:99:99"]
    assert web["ip_addresses"] == ["10.0.0.10", "10.0.0.11"]
    assert web["installed_products"] == ["Red Hat Enterprise Linux Server"]
    assert web["is_redhat"] is True
    assert web["bios_uuid"] == WEB_UUID


def test_estate_db1_keeps_the_value_read_with_sudo() -> None:
    db = by_name(deployments(*estate()))["db1"]
    assert db["cpu_socket_count"] == 2
    assert db["metadata"]["cpu_socket_count"]["has_sudo"] is True
    assert db["infrastructure_type"] == "physical"
    assert db["ip_addresses"] == ["10.0.0.20", "10.0.1.20"]
    assert db["subscription_manager_id"] == "aaaaaaaa-0002-4000-8000-000000000002"
    assert [s["source_type"] for s in db["sources"]] == ["network", "satellite"]


def test_estate_app1_joins_satellite_and_vcenter_by_mac() -> None:
    app = by_name(deployments(*estate()))["app1.example.com"]
    assert [s["source_type"] for s in app["sources"]] == ["satellite", "vcenter"]
    assert app["installed_products"] == ["JBoss EAP", "Red Hat Enterprise Linux Server"]
    assert app["cpu_count"] == 2


def test_estate_clones_with_placeholder_bios_uuids_stay_apart() -> None:
    systems = by_name(deployments(*estate()))
    assert systems["clone-a"]["bios_uuid"] is None
    assert systems["clone-a"]["mac_addresses"] == ["52:54:00:0a:00:01"]
    assert systems["clone-b"]["mac_addresses"] == ["52:54:00:0b:00:01"]
