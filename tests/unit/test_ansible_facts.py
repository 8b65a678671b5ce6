"""An AAP controller's facts from its API answers, and how the reports read them: the
controller is one system named by its active node, the hosts it automates stay its facts."""

from __future__ import annotations

from typing import Any

from quipu.collectors.ansible.facts import (
    JobEvents,
    controller_facts,
    instance_details,
    inventory_hosts,
    managed_from_metrics,
)
from quipu.reports.fingerprint import fingerprint
from tests.estates import deployments, network, source

PING = {
    "ha": False,
    "version": "4.5.7",
    "active_node": "aap-1.example.com",
    "install_uuid": "5d1f0c8e-0000-4000-8000-000000000001",
    "instances": [{"node": "aap-1.example.com"}, {"node": "aap-2.example.com"}],
    "instance_groups": [],
}


def _event(host: str | None, created: str, event: str = "runner_on_start") -> dict[str, Any]:
    return {"event": event, "host_name": host, "created": created}


def test_the_controller_is_named_by_its_active_node_or_else_the_source_host() -> None:
    assert instance_details(PING, host="10.0.0.9")["system_name"] == "aap-1.example.com"
    assert instance_details({**PING, "active_node": " "}, host="10.0.0.9")["system_name"] == (
        "10.0.0.9"
    )
    assert instance_details(PING, host="h") == {**PING, "system_name": "aap-1.example.com"}


def test_inventory_hosts_take_the_established_shape() -> None:
    rows = [
        {"id": 4, "name": "web1", "created": "c", "modified": "m", "last_job": 9, "enabled": True},
        {"id": 5, "name": ""},
    ]
    assert inventory_hosts(rows) == [
        {"name": "web1", "host_id": 4, "created": "c", "modified": "m", "last_job": 9}
    ]


def test_host_metrics_rows_become_managed_hosts_sorted_by_name() -> None:
    rows = [
        {"id": 2, "hostname": "b", "automated_counter": 3, "deleted": True, "url": "/x/"},
        {"id": 1, "hostname": "a", "first_automation": "t1", "last_automation": "t2"},
        {"id": 3, "hostname": None},
    ]
    managed = managed_from_metrics(rows)
    assert [row["hostname"] for row in managed] == ["a", "b"]
    assert managed[1]["deleted"] is True
    assert managed[1]["automated_counter"] == 3
    assert "url" not in managed[1] and "id" not in managed[1]


def test_job_events_count_one_automation_per_job_and_keep_the_first_and_last_times() -> None:
    events = JobEvents()
    events.add_job(
        2,
        [
            _event(None, "2025-01-06T09:00:00.000000Z"),
            _event("web1", "2025-01-06T09:01:00.000000Z"),
            _event("web1", "2025-01-06T09:02:00.000000Z"),
            _event("", "2025-01-06T09:03:00.000000Z"),
        ],
    )
    events.add_job(
        1,
        [
            # A time in another offset sorts by the moment, not by the text.
            _event("web1", "2025-01-06T10:30:00+02:00"),
            _event("db1", "not a time"),
        ],
    )
    assert events.job_ids == [2, 1]
    assert events.managed() == [
        {
            "hostname": "db1",
            "first_automation": None,
            "last_automation": None,
            "automated_counter": 1,
        },
        {
            "hostname": "web1",
            "first_automation": "2025-01-06T10:30:00+02:00",
            "last_automation": "2025-01-06T09:02:00.000000Z",
            "automated_counter": 2,
        },
    ]


def test_controller_facts_compare_the_inventory_with_what_automation_ran_on() -> None:
    hosts = [{"name": "web1", "host_id": 1}, {"name": "db1", "host_id": 2}]
    managed = [{"hostname": "web1"}, {"hostname": "gone1"}]
    facts = controller_facts(
        ping=PING,
        host="10.0.0.9",
        instances=2,
        hosts=hosts,
        managed=managed,
        managed_source="job_events",
        job_ids=[3, 1],
    )
    assert facts["instance_count"] == 2
    assert facts["jobs"] == {"unique_hosts": ["gone1", "web1"], "job_ids": [1, 3]}
    assert facts["managed_hosts_source"] == "job_events"
    assert facts["comparison"] == {
        "hosts_in_inventory": ["db1", "web1"],
        "hosts_only_in_jobs": ["gone1"],
        "number_of_hosts_in_inventory": 2,
        "number_of_hosts_only_in_jobs": 1,
    }


def test_unknown_parts_are_left_out_never_guessed() -> None:
    facts = controller_facts(
        ping={"version": "4.5.7"},
        host="10.0.0.9",
        instances=None,
        hosts=None,
        managed=None,
        managed_source="",
        job_ids=None,
    )
    assert facts == {"instance_details": {"version": "4.5.7", "system_name": "10.0.0.9"}}


def test_the_reader_names_the_controller_and_its_version_and_nothing_else() -> None:
    facts = controller_facts(
        ping=PING,
        host="10.0.0.9",
        instances=2,
        hosts=[{"name": "web1", "host_id": 1}],
        managed=[{"hostname": "web1"}],
        managed_source="host_metrics",
        job_ids=None,
    )
    fp = fingerprint(source_name="aap", source_type="ansible", facts=facts)
    assert fp is not None
    assert fp.known() == {"name": "aap-1.example.com", "os_version": "4.5.7"}
    assert fp.raw_fact_key("name") == "instance_details__system_name"
    assert fp.raw_fact_key("os_version") == "instance_details__version"


def test_a_record_without_details_is_still_the_controller() -> None:
    fp = fingerprint(source_name="aap", source_type="ansible", facts={"hosts": []})
    assert fp is not None
    assert fp.known() == {}


def test_managed_hosts_are_no_systems_and_two_sources_of_one_controller_are_one() -> None:
    facts = controller_facts(
        ping=PING,
        host="10.0.0.9",
        instances=2,
        hosts=[{"name": "web1", "host_id": 1}],
        managed=[{"hostname": "web1"}],
        managed_source="host_metrics",
        job_ids=None,
    )
    systems = deployments(
        source("aap", "ansible", facts),
        source("aap-again", "ansible", facts),
        source("lab", "network", network(uname_hostname="web1")),
    )
    by_name = {s["name"]: s for s in systems}
    assert set(by_name) == {"aap-1.example.com", "web1"}
    controller = by_name["aap-1.example.com"]
    assert controller["os_version"] == "4.5.7"
    assert sorted(s["source_name"] for s in controller["sources"]) == ["aap", "aap-again"]
    assert [s["source_type"] for s in by_name["web1"]["sources"]] == ["network"]
