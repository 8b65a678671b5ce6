"""An automation controller's raw facts, read from its API answers (pure: no I/O).

Fact names and shapes are the established discovery tool's where it has them, so its reports
keep working; the controller is one system and these are all its facts::

    instance_details      GET ping/ as the controller answers it (version, active_node,
                          install_uuid, instances, instance_groups, ha), plus system_name:
                          active_node, or the source's host without it
    instance_count        the number of controller nodes: ping's instances, or the count of
                          GET instances/ when ping does not list them
    hosts                 the inventory hosts, GET hosts/: one {name, host_id, created,
                          modified, last_job} each
    jobs                  {unique_hosts: the names of the hosts automation ran on, sorted;
                          job_ids: the jobs read, when they were read (no host metrics)}
    managed_hosts         one {hostname, first_automation, last_automation,
                          automated_counter} per host automation ran on, sorted by hostname;
                          from GET host_metrics/ (with its deleted, deleted_counter,
                          last_deleted, used_in_inventories), or, on a controller without it,
                          from every job's runner_on_start events (first and last event
                          time, and the number of jobs that ran on the host)
    managed_hosts_source  "host_metrics" or "job_events": where managed_hosts came from
    comparison            {hosts_in_inventory, hosts_only_in_jobs (automated, no longer in
                          the inventory), number_of_hosts_in_inventory,
                          number_of_hosts_only_in_jobs}, when both hosts and jobs are known

A fact the controller did not give (a listing that failed) is left out, never guessed.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Iterable, Mapping
from typing import Any

HOST_METRICS = "host_metrics"
JOB_EVENTS = "job_events"

_INVENTORY_FIELDS = ("name", "id", "created", "modified", "last_job")
_METRIC_FIELDS = (
    "first_automation",
    "last_automation",
    "automated_counter",
    "deleted",
    "deleted_counter",
    "last_deleted",
    "used_in_inventories",
)


def _name(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def instance_details(ping: Mapping[str, Any], *, host: str) -> dict[str, Any]:
    """``ping`` with the controller's name as the deployments report shows it."""
    return {**ping, "system_name": _name(ping.get("active_node")) or host}


def instance_count(ping: Mapping[str, Any]) -> int | None:
    instances = ping.get("instances")
    return len(instances) if isinstance(instances, list) else None


def inventory_hosts(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The inventory hosts in the established shape (``id`` as ``host_id``)."""
    hosts = []
    for row in rows:
        host = {field: row.get(field) for field in _INVENTORY_FIELDS}
        host["host_id"] = host.pop("id")
        if _name(host["name"]) is not None:
            hosts.append(host)
    return hosts


def managed_from_metrics(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The managed hosts as ``host_metrics/`` lists them."""
    managed: dict[str, dict[str, Any]] = {}
    for row in rows:
        name = _name(row.get("hostname"))
        if name is not None:
            managed[name] = {"hostname": name, **{f: row.get(f) for f in _METRIC_FIELDS}}
    return [managed[name] for name in sorted(managed)]


def _moment(value: Any) -> datetime.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=datetime.UTC)


@dataclasses.dataclass(slots=True)
class _Automation:
    first: tuple[datetime.datetime, str] | None = None
    last: tuple[datetime.datetime, str] | None = None
    jobs: int = 0

    def saw(self, created: Any) -> None:
        moment = _moment(created)
        if moment is None:
            return
        if self.first is None or moment < self.first[0]:
            self.first = (moment, created)
        if self.last is None or moment > self.last[0]:
            self.last = (moment, created)


class JobEvents:
    """The managed hosts as the jobs' ``runner_on_start`` events tell them, job by job."""

    def __init__(self) -> None:
        self._hosts: dict[str, _Automation] = {}
        self.job_ids: list[int] = []

    def add_job(self, job_id: int, events: Iterable[Mapping[str, Any]]) -> None:
        """One job's events: each host it ran on counts one more automation."""
        self.job_ids.append(job_id)
        ran_on: set[str] = set()
        for event in events:
            name = _name(event.get("host_name"))
            if name is None:
                continue
            automation = self._hosts.setdefault(name, _Automation())
            automation.saw(event.get("created"))
            ran_on.add(name)
        for name in ran_on:
            self._hosts[name].jobs += 1

    def managed(self) -> list[dict[str, Any]]:
        rows = []
        for name in sorted(self._hosts):
            automation = self._hosts[name]
            rows.append(
                {
                    "hostname": name,
                    "first_automation": None if automation.first is None else automation.first[1],
                    "last_automation": None if automation.last is None else automation.last[1],
                    "automated_counter": automation.jobs,
                }
            )
        return rows


def comparison(hosts: list[dict[str, Any]], automated: list[str]) -> dict[str, Any]:
    """Which automated hosts are no longer in the inventory (the established comparison)."""
    in_inventory = sorted({host["name"] for host in hosts})
    only_in_jobs = sorted(set(automated) - set(in_inventory))
    return {
        "hosts_in_inventory": in_inventory,
        "hosts_only_in_jobs": only_in_jobs,
        "number_of_hosts_in_inventory": len(in_inventory),
        "number_of_hosts_only_in_jobs": len(only_in_jobs),
    }


def controller_facts(
    *,
    ping: Mapping[str, Any],
    host: str,
    instances: int | None,
    hosts: list[dict[str, Any]] | None,
    managed: list[dict[str, Any]] | None,
    managed_source: str,
    job_ids: list[int] | None,
) -> dict[str, Any]:
    """The controller's facts; None for a part that is unknown."""
    jobs: dict[str, Any] | None = None
    automated: list[str] = []
    if managed is not None:
        automated = sorted(row["hostname"] for row in managed)
        jobs = {"unique_hosts": automated}
        if job_ids is not None:
            jobs["job_ids"] = sorted(job_ids)
    facts: dict[str, Any] = {
        "instance_details": instance_details(ping, host=host),
        "instance_count": instances,
        "hosts": hosts,
        "jobs": jobs,
        "managed_hosts": managed,
        "managed_hosts_source": None if managed is None else managed_source,
        "comparison": None if hosts is None or managed is None else comparison(hosts, automated),
    }
    return {name: value for name, value in facts.items() if value is not None}
