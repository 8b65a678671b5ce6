"""Reading a Satellite host's facts from its API answers: sources, fallbacks, placeholders."""

from __future__ import annotations

from typing import Any

import pytest

from quipu.collectors.satellite.facts import (
    addresses,
    entitlements,
    host_facts,
    split_os_release,
)

GUEST: dict[str, Any] = {
    "id": 12,
    "name": "web1.example.com",
    "uuid": None,
    "operatingsystem_name": "RedHat 9.4",
    "architecture_name": "x86_64",
    "organization_name": "ACME",
    "location_name": "Raleigh",
    "created_at": "2023-01-01 00:00:00 UTC",
    "content_facet_attributes": {
        "errata_counts": {"security": 1, "bugfix": 2, "enhancement": 0, "total": 3},
        "upgradable_package_count": 17,
    },
    "subscription_facet_attributes": {
        "uuid": "00c7a108-48ec-4a97-835c-aa3369777f64",
        "last_checkin": "2025-01-04 17:36:07 UTC",
        "registered_at": "2024-12-04 13:33:52 UTC",
        "virtual_host": {"id": 3, "name": "kvm1.example.com", "uuid": "100"},
        "virtual_guests": [],
    },
    "facts": {
        "cpu::cpu(s)": "4",
        "cpu::cpu_socket(s)": "4",
        "uname::machine": "x86_64",
        "uname::release": "5.14.0-427.el9.x86_64",
        "virt::is_guest": "true",
        "virt::host_type": "kvm",
        "net::interface::eth0::ipv4_address": "10.0.0.5",
        "net::interface::eth0::mac_address": "52:54:00:AA:BB:CC",
        "net::interface::lo::ipv4_address": "127.0.0.1",
        "net::interface::lo::mac_address": "00:00:00:00:00:00",
    },
}


def test_a_guest_reports_every_fact_from_its_api_field() -> None:
    facts = host_facts(GUEST, subscriptions=[])
    assert facts == {
        "hostname": "web1.example.com",
        "uuid": "00c7a108-48ec-4a97-835c-aa3369777f64",
        "subscription_manager_id": "00c7a108-48ec-4a97-835c-aa3369777f64",
        "os_name": "RedHat",
        "os_release": "RedHat 9.4",
        "os_version": "9.4",
        "architecture": "x86_64",
        "cores": 4,
        "num_sockets": 4,
        "kernel_version": "5.14.0-427.el9.x86_64",
        "ip_addresses": ["10.0.0.5"],
        "mac_addresses": ["52:54:00:aa:bb:cc"],
        "is_virtualized": True,
        "virt_type": "kvm",
        "virtual_host_name": "kvm1.example.com",
        "virtual_host_uuid": "100",
        "errata_out_of_date": 3,
        "packages_out_of_date": 17,
        "registration_time": "2024-12-04 13:33:52 UTC",
        "last_checkin_time": "2025-01-04 17:36:07 UTC",
        "organization": "ACME",
        "location": "Raleigh",
        "entitlements": [],
    }


def test_unknown_subscriptions_leave_entitlements_out() -> None:
    assert "entitlements" not in host_facts(GUEST, subscriptions=None)


def test_a_hypervisor_counts_its_guests_and_a_physical_host_has_no_virt_type() -> None:
    hypervisor = {
        "name": "kvm1.example.com",
        "subscription_facet_attributes": {
            "virtual_guests": [{"id": 12, "name": "web1"}, {"id": 13, "name": "web2"}]
        },
        "facts": {"virt::is_guest": "false", "virt::host_type": "Not Applicable"},
    }
    facts = host_facts(hypervisor, subscriptions=None)
    assert facts == {
        "hostname": "kvm1.example.com",
        "is_virtualized": False,
        "num_virtual_guests": 2,
        "virtual": "hypervisor",
    }


def test_older_releases_fields_are_read_when_the_facets_lack_them() -> None:
    host = {
        "name": "old.example.com",
        "uuid": "aaaaaaaa-0001-4000-8000-000000000001",
        "architecture_name": "ppc64le",
        "created": "2017-12-04 13:19:57 UTC",
        "checkin_time": "2018-01-04 17:36:07 UTC",
        "virtual_host": {"uuid": "100", "name": "vhost1"},
        "virtual_guests": [{"name": "foo"}],
        "errata_counts": {"total": 9},
        "facts": {"cpu.cpu(s)": "2", "uname.release": "3.10.0", "virt.is_guest": "false"},
    }
    facts = host_facts(host, subscriptions=None)
    assert facts["uuid"] == "aaaaaaaa-0001-4000-8000-000000000001"
    assert "subscription_manager_id" not in facts
    assert facts["architecture"] == "ppc64le"
    assert facts["registration_time"] == "2017-12-04 13:19:57 UTC"
    assert facts["last_checkin_time"] == "2018-01-04 17:36:07 UTC"
    assert (facts["virtual_host_name"], facts["virtual_host_uuid"]) == ("vhost1", "100")
    assert (facts["num_virtual_guests"], facts["virtual"]) == (1, "hypervisor")
    assert facts["errata_out_of_date"] == 9
    assert (facts["cores"], facts["kernel_version"], facts["is_virtualized"]) == (
        2,
        "3.10.0",
        False,
    )


def test_a_host_satellite_knows_little_about_has_only_those_facts() -> None:
    assert host_facts({"name": "bare.example.com"}, subscriptions=None) == {
        "hostname": "bare.example.com"
    }
    assert host_facts(
        {"name": "x", "facts": "not a dict", "content_facet_attributes": []}, subscriptions=None
    ) == {"hostname": "x"}


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("RedHat 7.4", ("RedHat", "7.4")),
        ("Red Hat Enterprise Linux Server 8.6", ("Red Hat Enterprise Linux", "8.6")),
        ("Red Hat 9", ("Red Hat", "9")),
        ("CentOS Stream 9", ("CentOS", "9")),
        ("Fedora", ("Fedora", None)),
    ],
)
def test_os_title_splits_into_name_and_version(
    title: str, expected: tuple[str, str | None]
) -> None:
    assert split_os_release(title) == expected


def test_addresses_leave_out_loopback_and_placeholders() -> None:
    ips, macs = addresses(
        {
            "net::interface::eth1::ipv4_address": "192.168.1.9",
            "net::interface::eth0::ipv4_address": "10.0.0.10",
            "net::interface::bond0::ipv4_address": "10.0.0.10",
            "net::interface::eth0::mac_address": "A0:36:9F:00:00:01",
            "net::interface::bond0::mac_address": "a0-36-9f-00-00-01",
            "net::interface::eth2::ipv4_address": "Unknown",
            "net::interface::eth2::mac_address": "00:00:00:00:00:00",
            "net::interface::docker0::ipv4_address": "127.0.0.2",
            "net::interface::lo::ipv4_address": "127.0.0.1",
            "net::interface::lo::mac_address": "00:00:00:00:00:00",
            "net::interface::eth0::ipv6_address::global": "2001:db8::1",
            "net.interface.eth3.ipv4_address": "10.0.0.9",
            "net.interface.eth3.mac_address": "52:54:00:00:00:09",
            "network::ipv4_address": "10.0.0.10",
        }
    )
    assert ips == ["10.0.0.9", "10.0.0.10", "192.168.1.9"]
    assert macs == ["52:54:00:00:00:09", "a0:36:9f:00:00:01"]


def test_entitlements_name_their_product_and_tell_derived_ones() -> None:
    listed = [
        {
            "product_name": "Employee SKU",
            "type": "ENTITLEMENT_DERIVED",
            "quantity_consumed": 2,
            "amount": 1,
            "account_number": 1212729,
            "contract_number": 10913844,
            "start_date": "2016-03-24 04:00:00 UTC",
            "end_date": "2022-01-01 04:59:59 UTC",
        },
        {"product_name": "Satellite Tools 6.3", "type": "NORMAL", "amount": 1},
        {"product_name": "Stacked", "type": "stack_derived"},
        "not an entitlement",
    ]
    assert entitlements(listed) == [
        {
            "name": "Employee SKU",
            "derived_entitlement": True,
            "amount": 2,
            "account_number": 1212729,
            "contract_number": 10913844,
            "start_date": "2016-03-24 04:00:00 UTC",
            "end_date": "2022-01-01 04:59:59 UTC",
        },
        {
            "name": "Satellite Tools 6.3",
            "derived_entitlement": False,
            "amount": 1,
            "account_number": None,
            "contract_number": None,
            "start_date": None,
            "end_date": None,
        },
        {
            "name": "Stacked",
            "derived_entitlement": True,
            "amount": None,
            "account_number": None,
            "contract_number": None,
            "start_date": None,
            "end_date": None,
        },
    ]
