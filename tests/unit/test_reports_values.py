"""Raw value normalizing: placeholders read as unknown and never become join keys."""

from __future__ import annotations

from typing import Any

import pytest

from quipu.reports import values as v


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  web1 ", "web1"),
        ("unknown", None),
        ("Not Settable", None),
        ("To Be Filled By O.E.M.", None),
        ("", None),
        (None, None),
        (True, None),
        (["a"], None),
        (42, "42"),
    ],
)
def test_text(raw: Any, expected: str | None) -> None:
    assert v.text(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(4, 4), ("8", 8), (" 16 ", 16), (2.0, 2), (2.5, None), (-1, None), (True, None), ("x", None)],
)
def test_count(raw: Any, expected: int | None) -> None:
    assert v.count(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(True, True), ("yes", True), ("False", False), (0, False), (1, True), (2, None), ("?", None)],
)
def test_flag(raw: Any, expected: bool | None) -> None:
    assert v.flag(raw) is expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("4221AB2C-0001-4000-8000-00000000A001", "4221ab2c-0001-4000-8000-00000000a001"),
        ("00000000-0000-0000-0000-000000000000", None),
        ("FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF", None),
        ("03000200-0400-0500-0006-000700080009", None),
        ("Not Settable", None),
        ("Not Present", None),
        ("garbage", None),
    ],
)
def test_system_uuid(raw: str, expected: str | None) -> None:
    assert v.system_uuid(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ABCDEF0123456789ABCDEF0123456789", "abcdef0123456789abcdef0123456789"),
        ("uninitialized", None),
        ("0" * 32, None),
        ("abc", None),
    ],
)
def test_machine_id(raw: str, expected: str | None) -> None:
    assert v.machine_id(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("00:50:56:AA:BB:CC", "00:50:56:aa:bb:cc"),
        ("00-50-56-aa-bb-cc", "00:50:56:aa:bb:cc"),
        ("005056aabbcc", "00:50:56:aa:bb:cc"),
        ("00:00:00:00:00:00", None),
        ("ff:ff:ff:ff:ff:ff", None),
        ("not a mac", None),
    ],
)
def test_mac(raw: str, expected: str | None) -> None:
    assert v.mac(raw) == expected


def test_long_link_addresses_are_kept_but_never_join() -> None:
    infiniband = ":".join(["80"] + ["00"] * 19)
    assert v.mac(infiniband) == infiniband
    assert not v.is_join_mac(infiniband)


@pytest.mark.parametrize(
    ("address", "joins"),
    [
        ("00:50:56:aa:bb:cc", True),
        ("52:54:00:12:34:56", True),
        ("01:00:5e:00:00:01", False),  # multicast
        ("33:33:00:00:00:01", False),  # IPv6 multicast
        ("00:00:5e:00:01:07", False),  # VRRP
        ("00:05:9a:3c:7a:00", False),  # Cisco AnyConnect, the same on every laptop
    ],
)
def test_is_join_mac(address: str, joins: bool) -> None:
    assert v.is_join_mac(address) is joins


def test_macs_sorts_dedupes_and_drops_placeholders() -> None:
    assert v.macs(["00:50:56:00:00:02", "00:50:56:00:00:01", "00:50:56:00:00:02", "0:0"]) == (
        "00:50:56:00:00:01",
        "00:50:56:00:00:02",
    )
    assert v.macs([]) == ()
    assert v.macs(None) is None


def test_ip_addresses_drop_loopback_link_local_and_sort_numerically() -> None:
    raw = ["10.0.0.10", "127.0.0.1", "::1", "fe80::1%eth0", "169.254.1.1", "10.0.0.9/24", "0.0.0.0"]
    assert v.ip_addresses(raw) == ("10.0.0.9", "10.0.0.10")
    assert v.ip_addresses(["2001:db8::1", "10.0.0.1", "nonsense"]) == ("10.0.0.1", "2001:db8::1")
    assert v.ip_addresses("10.0.0.1") is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2024-05-02 08:00:00 UTC", "2024-05-02T08:00:00+00:00"),
        ("2024-05-02 08:00:00", "2024-05-02T08:00:00+00:00"),
        ("2024-05-02T10:00:00+02:00", "2024-05-02T08:00:00+00:00"),
        ("2024-05-02 08:00:00 +0000", "2024-05-02T08:00:00+00:00"),
        ("2024-05-02", "2024-05-02T00:00:00+00:00"),
        ("yesterday", None),
    ],
)
def test_timestamp(raw: str, expected: str | None) -> None:
    assert v.timestamp(raw) == expected


def test_product_names() -> None:
    raw = [{"name": "RHEL"}, {"name": " JBoss EAP "}, {"id": 3}, "RHEL", {"name": ""}]
    assert v.product_names(raw) == ("JBoss EAP", "RHEL")
    assert v.product_names(None) is None


def test_first_line_skips_placeholders() -> None:
    assert v.first_line("\nxen\nxen-domU\n") == "xen"
    assert v.first_line("  \n") is None
