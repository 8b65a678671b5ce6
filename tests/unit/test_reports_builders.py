"""The details and deployments reports: shape, streaming input, deterministic output."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quipu.domain.errors import InvalidInput
from quipu.reports import FIELDS, SourceFacts, build_deployments, build_details
from tests.estates import estate, network, satellite, source, vcenter


def test_details_report_groups_raw_facts_by_source() -> None:
    sources = estate()
    report = build_details(report_id=3, sources=sources, report_version="0.1.0", platform_id="p-1")
    assert {k: v for k, v in report.items() if k != "sources"} == {
        "report_id": 3,
        "report_type": "details",
        "report_version": "0.1.0",
        "report_platform_id": "p-1",
    }
    assert [
        (s["server_id"], s["source_name"], s["source_type"], s["report_version"])
        for s in report["sources"]
    ] == [
        ("server-1", "lab", "network", "0.1.0"),
        ("server-1", "sat", "satellite", "0.1.0"),
        ("server-1", "vc", "vcenter", "0.1.0"),
    ]
    assert [s["facts"] for s in report["sources"]] == [list(s.facts) for s in sources]
    json.dumps(report)


def test_details_report_refuses_an_unknown_source_type() -> None:
    with pytest.raises(InvalidInput):
        build_details(
            report_id=1,
            sources=[SourceFacts("x", "ldap", "s", [])],
            report_version="0.1.0",
            platform_id="p",
        )


def test_deployments_report_shape() -> None:
    report = build_deployments(
        report_id=3, sources=estate(), report_version="0.1.0", platform_id="p-1"
    )
    assert {k: v for k, v in report.items() if k != "system_fingerprints"} == {
        "report_id": 3,
        "report_type": "deployments",
        "report_version": "0.1.0",
        "report_platform_id": "p-1",
    }
    for system in report["system_fingerprints"]:
        assert list(system) == [*FIELDS, "sources", "metadata"]
    json.dumps(report)


def test_deployments_read_facts_from_one_pass_iterables() -> None:
    def stream(facts: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        yield from facts

    streamed = [
        SourceFacts(s.source_name, s.source_type, s.server_id, stream(list(s.facts)))
        for s in estate()
    ]
    report = build_deployments(
        report_id=1, sources=iter(streamed), report_version="0.1.0", platform_id="p"
    )
    expected = build_deployments(
        report_id=1, sources=estate(), report_version="0.1.0", platform_id="p"
    )
    assert report == expected


def test_deployments_are_sorted_and_independent_of_arrival_order() -> None:
    forward = build_deployments(
        report_id=1, sources=estate(), report_version="0.1.0", platform_id="p"
    )
    backward_sources = [
        source(s.source_name, s.source_type, *reversed(list(s.facts))) for s in reversed(estate())
    ]
    backward = build_deployments(
        report_id=1, sources=backward_sources, report_version="0.1.0", platform_id="p"
    )
    assert json.dumps(forward) == json.dumps(backward)
    names = [system["name"] for system in forward["system_fingerprints"]]
    assert names == sorted(names)


def test_systems_without_any_identifier_still_have_a_fixed_order() -> None:
    facts = [network(cpu_count=n) for n in (3, 1, 2)]
    one = build_deployments(
        report_id=1, sources=[source("lab", "network", *facts)], report_version="1", platform_id="p"
    )
    other = build_deployments(
        report_id=1,
        sources=[source("lab", "network", *reversed(facts))],
        report_version="1",
        platform_id="p",
    )
    assert [s["cpu_count"] for s in one["system_fingerprints"]] == [1, 2, 3]
    assert one == other


# Recovering real systems from overlapping, noisy views of them.


@st.composite
def estates(draw: st.DrawFn) -> tuple[int, list[SourceFacts], list[set[str]]]:
    """Systems with unique identifiers, each seen by some sources (the network possibly
    twice, once without sudo), with placeholder noise every system shares."""
    count = draw(st.integers(1, 12))
    lab, sat, vc = [], [], []
    seen_by: list[set[str]] = []
    for n in range(count):
        mac = f"00:50:56:00:{n // 256:02x}:{n % 256:02x}"
        bios = f"4221ab2c-0000-4000-8000-{n:012x}"
        sub = f"aaaaaaaa-0000-4000-8000-{n:012x}"
        noise_macs = [mac, "00:00:00:00:00:00", "00:05:9a:3c:7a:00"]
        views = draw(st.sets(st.sampled_from(["lab", "sat", "vc"]), min_size=1))
        seen_by.append(set(views))
        cpus = draw(st.integers(1, 64))
        if "lab" in views:
            lab.append(
                network(
                    uname_hostname=f"host{n}",
                    etc_machine_id=f"{n:032x}" if n else "1" * 32,
                    dmi_system_uuid=draw(st.sampled_from([bios, "Not Settable"])),
                    subscription_manager_id=draw(st.sampled_from([sub, None])),
                    ifconfig_mac_addresses=noise_macs,
                    ifconfig_ip_addresses=["127.0.0.1", "10.9.9.9"],
                    cpu_count=cpus,
                )
            )
            if draw(st.booleans()):
                lab.append(
                    network(has_sudo=False, ifconfig_mac_addresses=list(reversed(noise_macs)))
                )
        if "sat" in views:
            sat.append(
                satellite(
                    hostname=f"host{n}.example.com", uuid=sub, mac_addresses=[mac], cores=cpus + 1
                )
            )
        if "vc" in views:
            vc.append(
                vcenter(
                    vm_name=f"vm{n}", vm_uuid=bios, vm_mac_addresses=[mac], vm_cpu_count=cpus + 2
                )
            )
    for facts in (lab, sat, vc):
        order = draw(st.permutations(range(len(facts))))
        facts[:] = [facts[i] for i in order]
    sources = [
        source("lab", "network", *lab),
        source("sat", "satellite", *sat),
        source("vc", "vcenter", *vc),
    ]
    return count, sources, seen_by


@settings(max_examples=100, deadline=None)
@given(estates())
def test_each_real_system_is_one_fingerprint_with_all_its_sources(
    case: tuple[int, list[SourceFacts], list[set[str]]],
) -> None:
    count, sources, seen_by = case
    report = build_deployments(report_id=1, sources=sources, report_version="1", platform_id="p")
    systems = report["system_fingerprints"]
    assert len(systems) == count
    found = sorted(sorted(s["source_name"] for s in system["sources"]) for system in systems)
    assert found == sorted(sorted(views) for views in seen_by)
    for system in systems:
        kinds = {s["source_type"] for s in system["sources"]}
        first = next(kind for kind in ("vcenter", "network", "satellite") if kind in kinds)
        assert system["metadata"]["cpu_count"]["source_type"] == first
        assert system["ip_addresses"] in (None, ["10.9.9.9"])


def test_the_collector_pause_restores_what_was_there() -> None:
    import gc

    from quipu.reports.builders import cyclic_gc_paused

    was = gc.isenabled()
    try:
        gc.enable()
        with pytest.raises(RuntimeError), cyclic_gc_paused():
            with cyclic_gc_paused():
                assert not gc.isenabled()
            assert not gc.isenabled()
            raise RuntimeError("build failed")
        assert gc.isenabled()
        gc.disable()
        with cyclic_gc_paused():
            pass
        assert not gc.isenabled()
    finally:
        if was:
            gc.enable()


def test_systems_seen_alike_share_metadata_and_others_do_not() -> None:
    facts = [
        network(uname_hostname="a", ifconfig_mac_addresses=["00:50:56:00:00:01"]),
        network(uname_hostname="b", ifconfig_mac_addresses=["00:50:56:00:00:02"]),
        network(uname_hostname="c", ifconfig_mac_addresses=["00:50:56:00:00:03"], has_sudo=False),
    ]
    report = build_deployments(
        report_id=1, sources=[source("lab", "network", *facts)], report_version="1", platform_id="p"
    )
    a, b, c = report["system_fingerprints"]
    assert a["metadata"] is b["metadata"]
    assert a["metadata"]["name"]["has_sudo"] is True
    assert c["metadata"]["name"]["has_sudo"] is False
