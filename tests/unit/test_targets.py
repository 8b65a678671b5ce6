"""Network source hosts: accepted forms, expansion, exclusions, limits and wire ranges."""

from __future__ import annotations

import ipaddress
import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quipu.collectors.network.targets import (
    expand,
    from_ranges,
    split_targets,
    to_ranges,
    validate_host,
)
from quipu.domain.errors import InvalidInput

addresses = st.integers(min_value=0, max_value=2**32 - 1).map(
    lambda value: str(ipaddress.IPv4Address(value))
)
# Addresses packed into a small space, so that runs of consecutive ones are common.
near_addresses = st.integers(min_value=0, max_value=300).map(
    lambda value: str(ipaddress.IPv4Address(0x0A000000 + value))
)
names = st.from_regex(r"[a-z][a-z0-9-]{0,10}[a-z0-9](\.[a-z][a-z0-9]{0,8}){0,2}", fullmatch=True)


@pytest.mark.parametrize(
    "entry",
    [
        "10.0.0.5",
        "10.0.0.0/24",
        "10.0.0.1-10.0.0.20",
        "10.0.0.[1:100]",
        "10.[0:1].0.[1:2]",
        "[1:2].0.0.1",
        "db1.example.com",
        "web-01",
        "localhost",
        " 10.0.0.5 ",
    ],
)
def test_accepted_forms(entry: str) -> None:
    validate_host(entry)


@pytest.mark.parametrize(
    "entry",
    [
        "",
        "10.0.0.256",
        "010.0.0.1",
        "1.2.3",
        "10.0.0.0/33",
        "10.0.0.9-10.0.0.1",
        "10.0.0.1-20",
        "10.0.0.[5:1]",
        "10.0.0.[1:256]",
        "10.0.[1:2]",
        "10.0.0.[1-5]",
        "::1",
        "-bad.example.com",
        "bad_name",
        "a..b",
        "x" * 64 + ".example.com",
    ],
)
def test_refused_forms_name_the_entry_and_the_allowed_forms(entry: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        validate_host(entry)
    assert raised.value.field == "hosts"
    assert repr(entry) in str(raised.value)
    assert "CIDR block" in str(raised.value)
    assert "bracket range" in str(raised.value)


def test_refused_exclusion_names_its_field() -> None:
    with pytest.raises(InvalidInput) as raised:
        expand(hosts=["10.0.0.0/30"], exclude_hosts=["10.0.0.300"])
    assert raised.value.field == "exclude_hosts"


def test_each_form_expands_to_its_addresses() -> None:
    assert expand(hosts=["10.0.0.5"]) == ["10.0.0.5"]
    assert expand(hosts=["10.0.0.4/30"]) == ["10.0.0.4", "10.0.0.5", "10.0.0.6", "10.0.0.7"]
    assert expand(hosts=["10.0.0.254-10.0.1.1"]) == [
        "10.0.0.254",
        "10.0.0.255",
        "10.0.1.0",
        "10.0.1.1",
    ]
    assert expand(hosts=["10.0.[1:2].[5:6]"]) == ["10.0.1.5", "10.0.1.6", "10.0.2.5", "10.0.2.6"]
    assert expand(hosts=["[9:10].0.0.1"]) == ["9.0.0.1", "10.0.0.1"]
    assert expand(hosts=["DB1.example.com"]) == ["DB1.example.com"]


def test_cidr_with_host_bits_set_is_refused_saying_what_to_write() -> None:
    with pytest.raises(InvalidInput) as refused:
        expand(hosts=["10.0.0.5/30"])
    assert refused.value.field == "hosts"
    assert "host bits are set: write 10.0.0.4/30 for the network, or 10.0.0.5 for the one" in (
        refused.value.message
    )
    assert expand(hosts=["10.0.0.5/32"]) == ["10.0.0.5"]


def test_order_is_kept_and_duplicates_dropped() -> None:
    systems = expand(
        hosts=["10.0.0.9", "b.example", "10.0.0.[8:10]", "B.example.", "a.example", "10.0.0.9"]
    )
    assert systems == ["10.0.0.9", "b.example", "10.0.0.8", "10.0.0.10", "a.example"]


def test_exclusions_in_every_form() -> None:
    systems = expand(
        hosts=["10.0.0.0/28", "a.example", "b.example"],
        exclude_hosts=[
            "10.0.0.0/30",
            "10.0.0.5-10.0.0.6",
            "10.0.0.[10:11]",
            "10.0.0.15",
            "A.example",
        ],
    )
    assert systems == [
        "10.0.0.4",
        "10.0.0.7",
        "10.0.0.8",
        "10.0.0.9",
        "10.0.0.12",
        "10.0.0.13",
        "10.0.0.14",
        "b.example",
    ]


def test_past_the_limit_an_operator_must_allow_large() -> None:
    with pytest.raises(InvalidInput) as raised:
        expand(hosts=["10.0.0.0/15"])
    assert raised.value.field == "hosts"
    assert "65,536" in str(raised.value)
    assert "131,072" in str(raised.value)
    assert "--allow-large" in str(raised.value)
    assert len(expand(hosts=["10.0.0.0/15"], allow_large=True)) == 131_072


def test_the_limit_counts_systems_after_exclusions_and_duplicates() -> None:
    assert len(expand(hosts=["10.0.0.0/15"], exclude_hosts=["10.1.0.0/16"])) == 65_536
    assert len(expand(hosts=["10.0.0.0/16", "10.0.0.0/16"])) == 65_536
    assert len(expand(hosts=[f"10.0.0.{i}" for i in range(10)], limit=10)) == 10
    with pytest.raises(InvalidInput):
        expand(hosts=[f"10.0.0.{i}" for i in range(11)], limit=10)


def test_a_huge_entry_is_refused_without_expanding_it() -> None:
    # 2**32 addresses: refused after the first 65,537, never materialized.
    with pytest.raises(InvalidInput, match="4,294,967,296"):
        expand(hosts=["[0:255].[0:255].[0:255].[0:255]"])


@given(st.lists(addresses | names, max_size=40), st.lists(addresses | names, max_size=20))
def test_expand_is_the_ordered_unique_difference(hosts: list[str], excluded: list[str]) -> None:
    def key(system: str) -> str:
        return system.lower().rstrip(".")

    excluded_keys = {key(system) for system in excluded}
    expected: dict[str, str] = {}
    for system in hosts:
        if key(system) not in excluded_keys:
            expected.setdefault(key(system), system)
    assert expand(hosts=hosts, exclude_hosts=excluded) == list(expected.values())


@given(st.integers(min_value=0, max_value=2**32 - 1), st.integers(min_value=20, max_value=32))
def test_cidr_expands_to_every_address_of_the_network(value: int, prefix: int) -> None:
    network = ipaddress.IPv4Network((value, prefix), strict=False)
    assert expand(hosts=[str(network)]) == [str(address) for address in network]


@given(st.lists(near_addresses, unique=True))
def test_ranges_round_trip_sorted_unique_addresses(systems: list[str]) -> None:
    systems.sort(key=lambda system: int(ipaddress.IPv4Address(system)))
    ranges = to_ranges(systems)
    assert from_ranges(ranges) == systems
    # Compact: no two neighbouring ranges could have been one.
    bounds = [
        tuple(int(ipaddress.IPv4Address(part)) for part in entry.split("-")) for entry in ranges
    ]
    for before, after in itertools.pairwise(bounds):
        assert before[-1] + 1 < after[0]


@given(st.lists(near_addresses | addresses | names, max_size=60))
def test_ranges_round_trip_any_list(systems: list[str]) -> None:
    assert from_ranges(to_ranges(systems)) == systems


def test_to_ranges_collapses_consecutive_runs_only() -> None:
    systems = ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.7", "db.example", "10.0.0.8"]
    assert to_ranges(systems) == ["10.0.0.1-10.0.0.3", "10.0.0.7", "db.example", "10.0.0.8"]
    assert to_ranges(["10.0.0.255", "10.0.1.0"]) == ["10.0.0.255-10.0.1.0"]
    assert to_ranges([]) == []


def test_from_ranges_takes_the_wire_forms() -> None:
    assert from_ranges(["10.0.0.0/31", "10.0.0.5", "10.0.0.7-10.0.0.8", "db"]) == [
        "10.0.0.0",
        "10.0.0.1",
        "10.0.0.5",
        "10.0.0.7",
        "10.0.0.8",
        "db",
    ]
    with pytest.raises(InvalidInput) as raised:
        from_ranges(["10.0.0.7-10.0.0.1"])
    assert raised.value.field == "targets"


@given(st.lists(addresses, max_size=50), st.integers(min_value=1, max_value=20))
def test_split_targets_keeps_every_system_in_order(systems: list[str], size: int) -> None:
    chunks = split_targets(systems=systems, size=size)
    assert [system for chunk in chunks for system in chunk] == systems
    assert all(len(chunk) == size for chunk in chunks[:-1])
    assert all(0 < len(chunk) <= size for chunk in chunks)


def test_split_targets_refuses_an_empty_chunk_size() -> None:
    with pytest.raises(ValueError, match="size"):
        split_targets(systems=["10.0.0.1"], size=0)
