"""A fake Ansible Automation Platform controller: its REST API over real HTTPS on loopback.

It answers the calls a discovery tool makes, in the shapes of the automation controller's
API documentation (``/api/v2/``): ``GET /api/`` and the version root listing the
endpoints, ``ping/`` (version, active_node, install_uuid, instances, instance_groups),
``me/`` (a list of one user), and the paginated ``hosts/``, ``host_metrics/``, ``jobs/`` and
``jobs/{id}/job_events/`` (``count``/``next``/``previous``/``results``, ``page`` and
``page_size`` up to 200, an ``event`` filter on events). ``/api/``, the version root and
``ping/`` need no login, as on the controller; everything else takes a bearer token or
HTTP basic auth. With ``Behaviour.gateway`` it serves the API where AAP 2.5's platform
gateway does, under ``/api/controller/v2/``, and nothing under ``/api/v2/``.

The inventory is generated from counts alone (:class:`Inventory`), so any two runs agree:
hosts in the controller's inventory, hosts that jobs automated and that were removed from
it since, and jobs that each ran on a few hosts. :meth:`RunningController.expected` gives,
from the same description, the facts a collector should report; :class:`Behaviour`
switches on the faults a real controller shows.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import datetime
import re
import secrets
import ssl
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from quipu.lab.https import FakeService, Reply, Request, json_reply, serving

CONTROLLER_VERSION = "4.5.7"
"""The automation controller release AAP 2.4 ships."""
ACTIVE_NODE = "controller-1.aap.lab.invalid"
DEFAULT_PAGE_SIZE = 25
MAX_PAGE_SIZE = 200
"""The controller's own page sizes (its ``PAGE_SIZE`` and ``MAX_PAGE_SIZE`` settings)."""
TASKS_PER_JOB = 2
"""Tasks each job's playbook runs on each of its hosts: one ``runner_on_start`` each."""

_BASE = datetime.datetime(2025, 1, 6, 8, 0, tzinfo=datetime.UTC)
_DOMAIN = "aap.lab.invalid"
_JOB_EVENTS = re.compile(r"jobs/(\d+)/job_events/")
_UNAUTHENTICATED = ("", "ping/")


def _when(moment: datetime.datetime) -> str:
    """A time as the controller writes it: ``2025-01-06T08:00:00.000000Z``."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Inventory:
    """What the controller holds, from counts; host and job indexes start at 0."""

    hosts: int = 10
    """Hosts in the controller's inventory."""
    retired_hosts: int = 2
    """Hosts jobs automated that are no longer in the inventory (named after the others)."""
    jobs: int = 6
    hosts_per_job: int = 4
    instances: int = 2
    """Controller nodes (ping's instances)."""

    def __post_init__(self) -> None:
        sizes = (self.hosts, self.retired_hosts, self.jobs, self.hosts_per_job, self.instances)
        if min(sizes) < 0:
            raise ValueError(f"inventory counts must be at least 0 (got {self}).")

    @property
    def names(self) -> int:
        return self.hosts + self.retired_hosts

    def host_name(self, index: int) -> str:
        return f"node-{index + 1:04d}.{_DOMAIN}"

    def instance_name(self, index: int) -> str:
        return ACTIVE_NODE if index == 0 else f"controller-{index + 1}.{_DOMAIN}"

    def job_hosts(self, job: int) -> list[int]:
        """The host indexes job ``job`` ran on, in the order it started them."""
        if not self.names:
            return []
        width = min(self.hosts_per_job, self.names)
        return [(job * self.hosts_per_job + k) % self.names for k in range(width)]

    def job_started(self, job: int) -> datetime.datetime:
        return _BASE + datetime.timedelta(hours=job, minutes=1)

    def event_time(self, job: int, *, task: int, position: int) -> datetime.datetime:
        """When task ``task`` started on the job's ``position``-th host."""
        return self.job_started(job) + datetime.timedelta(
            seconds=task * self.hosts_per_job + position
        )

    def automation(self) -> dict[int, tuple[datetime.datetime, datetime.datetime, list[int]]]:
        """(first automation, last automation, jobs) of every host a job ran on."""
        seen: dict[int, tuple[datetime.datetime, datetime.datetime, list[int]]] = {}
        for job in range(self.jobs):
            for position, host in enumerate(self.job_hosts(job)):
                first = self.event_time(job, task=0, position=position)
                last = self.event_time(job, task=TASKS_PER_JOB - 1, position=position)
                if host in seen:
                    was_first, was_last, jobs = seen[host]
                    seen[host] = (min(was_first, first), max(was_last, last), [*jobs, job])
                else:
                    seen[host] = (first, last, [job])
        return seen


@dataclasses.dataclass(frozen=True, kw_only=True)
class Behaviour:
    """How the fake departs from a healthy controller. A path is relative to the API's
    version root, as ``host_metrics/`` or ``jobs/3/job_events/``."""

    host_metrics: bool = True
    """False: ``host_metrics/`` answers 404, as on controllers before 4.4 (AAP 2.3)."""
    ping_instances: bool = True
    """False: ``ping/`` leaves out its instances; ``instances/`` still lists them."""
    gateway: bool = False
    """Serve the API under ``/api/controller/v2/`` as AAP 2.5's platform gateway does."""
    expired_token: bool = False
    """Bearer tokens are refused (HTTP 401), as once a token has expired."""
    forbidden_path: str | None = None
    """This path answers HTTP 403, as to a user without the role to read it."""
    failing_page: tuple[str, int] | None = None
    """This (path, page) answers HTTP 500."""
    slow_path: str | None = None
    """This path is answered only after ``slow_s``."""
    slow_s: float = 5.0
    malformed_path: str | None = None
    """This path answers cut-off JSON."""
    max_page_size: int = MAX_PAGE_SIZE
    """Pages hold at most this many results, whatever ``page_size`` asks."""
    latency_s: float = 0.0
    """Added to every request before it is answered (a remote, busy controller)."""


class FakeController(FakeService):
    """The controller's API over the generated inventory; see the module docstring."""

    name = "fake AAP controller"

    def __init__(
        self,
        *,
        inventory: Inventory,
        username: str,
        password: str,
        token: str,
        behaviour: Behaviour,
    ) -> None:
        super().__init__(latency_s=behaviour.latency_s)
        self.inventory = inventory
        self.behaviour = behaviour
        self.install_uuid = str(uuid.uuid5(uuid.NAMESPACE_DNS, ACTIVE_NODE))
        basic = base64.b64encode(f"{username}:{password}".encode()).decode()
        self._basic = f"Basic {basic}"
        self._bearer = f"Bearer {token}"
        self._username = username
        self._automation = inventory.automation()
        self.root = "/api/controller/v2/" if behaviour.gateway else "/api/v2/"

    def route(self, request: Request) -> Reply:
        path = request.path if request.path.endswith("/") else request.path + "/"
        if path == "/api/":
            return json_reply(200, self._api_root())
        if self.behaviour.gateway and path == "/api/controller/":
            return json_reply(200, self._versions())
        if not path.startswith(self.root):
            return json_reply(404, {"detail": "The requested resource could not be found."})
        endpoint = path[len(self.root) :]
        if endpoint not in _UNAUTHENTICATED:
            refusal = self._refusal(request)
            if refusal is not None:
                return refusal
        behaviour = self.behaviour
        if endpoint == behaviour.forbidden_path:
            return json_reply(403, {"detail": "You do not have permission to perform this action."})
        if endpoint == behaviour.slow_path:
            self.pause(behaviour.slow_s)
        if endpoint == behaviour.malformed_path:
            return Reply(200, b'{"count": 3, "next": null, "results": [{"id": 1, "na')
        return self._endpoint(endpoint, request.query)

    def _refusal(self, request: Request) -> Reply | None:
        given = request.headers.get("Authorization") or ""
        if given == self._bearer and not self.behaviour.expired_token:
            return None
        if given == self._basic:
            return None
        detail = (
            "Invalid username/password."
            if given.startswith("Basic ")
            else "Authentication credentials were not provided. To establish a login "
            "session, visit /api/login/."
        )
        return json_reply(401, {"detail": detail}, headers=(("WWW-Authenticate", "Bearer"),))

    def _api_root(self) -> dict[str, Any]:
        if self.behaviour.gateway:
            return {
                "apis": {
                    "gateway": "/api/gateway/",
                    "controller": "/api/controller/",
                    "eda": "/api/eda/",
                    "galaxy": "/api/galaxy/",
                }
            }
        return self._versions()

    def _versions(self) -> dict[str, Any]:
        return {
            "description": "AWX REST API",
            "current_version": self.root,
            "available_versions": {"v2": self.root},
            "oauth2": "/api/o/",
            "custom_logo": "",
            "custom_login_info": "",
            "login_redirect_override": "",
        }

    def _endpoint(self, endpoint: str, query: Mapping[str, str]) -> Reply:
        if endpoint == "":
            return json_reply(200, self._version_root())
        if endpoint == "ping/":
            answer = ping(self.inventory, install_uuid=self.install_uuid)
            if not self.behaviour.ping_instances:
                del answer["instances"]
            return json_reply(200, answer)
        if endpoint == "instances/":
            return self._page(endpoint, query, self.inventory.instances, self._instance)
        if endpoint == "me/":
            return json_reply(200, self._me())
        if endpoint == "hosts/":
            return self._page(endpoint, query, self.inventory.hosts, self._host)
        if endpoint == "host_metrics/" and self.behaviour.host_metrics:
            automated = sorted(self._automation)
            return self._page(
                endpoint, query, len(automated), lambda i: self._host_metric(i, automated[i])
            )
        if endpoint == "jobs/":
            return self._page(endpoint, query, self.inventory.jobs, self._job)
        match = _JOB_EVENTS.fullmatch(endpoint)
        if match is not None and 1 <= int(match.group(1)) <= self.inventory.jobs:
            events = self._events(int(match.group(1)) - 1, query.get("event"))
            return self._page(endpoint, query, len(events), events.__getitem__)
        return json_reply(404, {"detail": "The requested resource could not be found."})

    def _version_root(self) -> dict[str, Any]:
        names = ["ping", "instances", "instance_groups", "config", "me", "users"]
        names += ["organizations", "inventory", "hosts", "job_templates", "jobs"]
        if self.behaviour.host_metrics:
            names.append("host_metrics")
        return {name: f"{self.root}{name}/" for name in names}

    def _me(self) -> dict[str, Any]:
        user = {
            "id": 1,
            "type": "user",
            "url": f"{self.root}users/1/",
            "username": self._username,
            "first_name": "",
            "last_name": "",
            "email": "",
            "is_superuser": False,
            "is_system_auditor": True,
            "ldap_dn": "",
            "last_login": _when(_BASE),
            "external_account": None,
        }
        return {"count": 1, "next": None, "previous": None, "results": [user]}

    def _page(
        self,
        endpoint: str,
        query: Mapping[str, str],
        count: int,
        item: Callable[[int], dict[str, Any]],
    ) -> Reply:
        try:
            page = int(query.get("page") or 1)
            size = int(query.get("page_size") or DEFAULT_PAGE_SIZE)
        except ValueError:
            return json_reply(404, {"detail": "Invalid page."})
        size = max(1, min(size, MAX_PAGE_SIZE, self.behaviour.max_page_size))
        pages = max(1, -(-count // size))
        if not 1 <= page <= pages:
            return json_reply(404, {"detail": "Invalid page."})
        if self.behaviour.failing_page == (endpoint, page):
            return Reply(500, b"<h1>Server Error (500)</h1>", "text/html; charset=utf-8")
        others = {k: v for k, v in query.items() if k not in ("page", "page_size")}

        def link(number: int) -> str | None:
            if not 1 <= number <= pages:
                return None
            params = urlencode({**others, "page": number, "page_size": size})
            return f"{self.root}{endpoint}?{params}"

        first = (page - 1) * size
        results = [item(i) for i in range(first, min(first + size, count))]
        body = {"count": count, "next": link(page + 1), "previous": link(page - 1)}
        return json_reply(200, {**body, "results": results})

    def _host(self, index: int) -> dict[str, Any]:
        created = _BASE - datetime.timedelta(days=30) + datetime.timedelta(minutes=index)
        host_id = index + 1
        return {
            "id": host_id,
            "type": "host",
            "url": f"{self.root}hosts/{host_id}/",
            "created": _when(created),
            "modified": _when(created + datetime.timedelta(days=1)),
            "name": self.inventory.host_name(index),
            "description": "",
            "inventory": 1,
            "enabled": True,
            "instance_id": "",
            "variables": "",
            "has_active_failures": False,
            "has_inventory_sources": False,
            "last_job": last_job(self.inventory, self._automation, index),
            "last_job_host_summary": None,
            "ansible_facts_modified": None,
        }

    def _instance(self, index: int) -> dict[str, Any]:
        node = self.inventory.instance_name(index)
        return {
            "id": index + 1,
            "type": "instance",
            "url": f"{self.root}instances/{index + 1}/",
            "hostname": node,
            "uuid": str(uuid.uuid5(uuid.NAMESPACE_DNS, node)),
            "node_type": "hybrid",
            "node_state": "ready",
            "version": CONTROLLER_VERSION,
            "capacity": 57,
            "enabled": True,
            "managed_by_policy": True,
        }

    def _host_metric(self, position: int, index: int) -> dict[str, Any]:
        first, last, jobs = self._automation[index]
        return {
            "id": position + 1,
            "url": f"{self.root}host_metrics/{position + 1}/",
            "hostname": self.inventory.host_name(index),
            "first_automation": _when(first),
            "last_automation": _when(last),
            "last_deleted": None,
            "automated_counter": len(jobs),
            "deleted_counter": 0,
            "deleted": False,
            "used_in_inventories": 1 if index < self.inventory.hosts else 0,
        }

    def _job(self, job: int) -> dict[str, Any]:
        started = self.inventory.job_started(job)
        return {
            "id": job + 1,
            "type": "job",
            "url": f"{self.root}jobs/{job + 1}/",
            "created": _when(started - datetime.timedelta(minutes=1)),
            "modified": _when(started + datetime.timedelta(minutes=10)),
            "name": f"patch group {job % 3 + 1}",
            "launch_type": "scheduled",
            "status": "successful",
            "failed": False,
            "started": _when(started),
            "finished": _when(started + datetime.timedelta(minutes=10)),
            "elapsed": 600.0,
            "job_type": "run",
            "inventory": 1,
            "playbook": "patch.yml",
        }

    def _events(self, job: int, event: str | None) -> list[dict[str, Any]]:
        inventory = self.inventory
        hosts = inventory.job_hosts(job)
        started = inventory.job_started(job)
        found: list[dict[str, Any]] = [
            {"event": "playbook_on_start", "host_name": "", "created": _when(started)}
        ]
        for task in range(TASKS_PER_JOB):
            for position, host in enumerate(hosts):
                moment = _when(inventory.event_time(job, task=task, position=position))
                name = inventory.host_name(host)
                found.append({"event": "runner_on_start", "host_name": name, "created": moment})
                found.append({"event": "runner_on_ok", "host_name": name, "created": moment})
        found.append({"event": "playbook_on_stats", "host_name": "", "created": _when(started)})
        events = []
        for counter, item in enumerate(found, start=1):
            if event is not None and item["event"] != event:
                continue
            events.append(
                {
                    "id": job * 10_000 + counter,
                    "type": "job_event",
                    "counter": counter,
                    "job": job + 1,
                    "host": None,
                    **item,
                }
            )
        return events


def ping(inventory: Inventory, *, install_uuid: str) -> dict[str, Any]:
    """``GET /api/v2/ping/`` of a controller with ``inventory.instances`` nodes."""
    nodes = [inventory.instance_name(i) for i in range(inventory.instances)]
    return {
        "ha": len(nodes) > 1,
        "version": CONTROLLER_VERSION,
        "active_node": ACTIVE_NODE,
        "install_uuid": install_uuid,
        "instances": [
            {
                "node": node,
                "node_type": "hybrid",
                "uuid": str(uuid.uuid5(uuid.NAMESPACE_DNS, node)),
                "heartbeat": _when(_BASE),
                "capacity": 57,
                "version": CONTROLLER_VERSION,
            }
            for node in nodes
        ],
        "instance_groups": [
            {"name": "controlplane", "capacity": 57 * len(nodes), "instances": nodes},
            {"name": "default", "capacity": 57 * len(nodes), "instances": nodes},
        ],
    }


def last_job(
    inventory: Inventory,
    automation: Mapping[int, tuple[datetime.datetime, datetime.datetime, list[int]]],
    index: int,
) -> int | None:
    """The id of the last job that ran on host ``index``, or None."""
    runs = automation.get(index)
    return None if runs is None else runs[2][-1] + 1


def expected_facts(
    inventory: Inventory, *, behaviour: Behaviour, install_uuid: str
) -> dict[str, Any]:
    """The facts a collector should report for the controller.

    Written from the inventory's description, not from the API answers, so that a
    collector is checked against what the controller holds.
    """
    automation = inventory.automation()
    details = ping(inventory, install_uuid=install_uuid)
    if not behaviour.ping_instances:
        del details["instances"]
    details["system_name"] = ACTIVE_NODE
    in_inventory = [inventory.host_name(i) for i in range(inventory.hosts)]
    automated = sorted(automation)
    managed = []
    for index in automated:
        first, last, runs = automation[index]
        row: dict[str, Any] = {
            "hostname": inventory.host_name(index),
            "first_automation": _when(first),
            "last_automation": _when(last),
            "automated_counter": len(runs),
        }
        if behaviour.host_metrics:
            row |= {
                "deleted": False,
                "deleted_counter": 0,
                "last_deleted": None,
                "used_in_inventories": 1 if index < inventory.hosts else 0,
            }
        managed.append(row)
    automated_names = sorted(row["hostname"] for row in managed)
    jobs: dict[str, Any] = {"unique_hosts": automated_names}
    if not behaviour.host_metrics:
        jobs["job_ids"] = list(range(1, inventory.jobs + 1))
    created = [
        _BASE - datetime.timedelta(days=30) + datetime.timedelta(minutes=i)
        for i in range(inventory.hosts)
    ]
    only_in_jobs = sorted(set(automated_names) - set(in_inventory))
    return {
        "instance_details": details,
        "instance_count": inventory.instances,
        "hosts": [
            {
                "name": in_inventory[i],
                "host_id": i + 1,
                "created": _when(created[i]),
                "modified": _when(created[i] + datetime.timedelta(days=1)),
                "last_job": last_job(inventory, automation, i),
            }
            for i in range(inventory.hosts)
        ],
        "jobs": jobs,
        "managed_hosts": sorted(managed, key=lambda row: row["hostname"]),
        "managed_hosts_source": "host_metrics" if behaviour.host_metrics else "job_events",
        "comparison": {
            "hosts_in_inventory": sorted(in_inventory),
            "hosts_only_in_jobs": only_in_jobs,
            "number_of_hosts_in_inventory": len(in_inventory),
            "number_of_hosts_only_in_jobs": len(only_in_jobs),
        },
    }


@dataclasses.dataclass(frozen=True, kw_only=True)
class RunningController:
    """A fake controller that is up: where it listens, how to log in, what it should yield."""

    host: str
    port: int
    username: str
    password: str = dataclasses.field(repr=False)
    token: str = dataclasses.field(repr=False)
    cert_path: Path
    """Its self-signed certificate (PEM), usable as a CA file."""
    inventory: Inventory
    behaviour: Behaviour
    controller: FakeController

    @property
    def expected(self) -> dict[str, Any]:
        """The facts a collector should report for the controller."""
        return expected_facts(
            self.inventory,
            behaviour=self.behaviour,
            install_uuid=self.controller.install_uuid,
        )


@contextlib.contextmanager
def running_controller(
    *,
    inventory: Inventory | None = None,
    port: int = 0,
    username: str = "admin",
    password: str | None = None,
    token: str | None = None,
    behaviour: Behaviour | None = None,
    tls: bool = True,
    tls_version: ssl.TLSVersion | None = None,
) -> Iterator[RunningController]:
    """A fake controller on ``127.0.0.1:port`` (0: any free port), stopped on exit.

    ``tls`` False serves plain HTTP; ``tls_version`` accepts that TLS version only.
    """
    inventory = inventory or Inventory()
    behaviour = behaviour or Behaviour()
    password = password or secrets.token_urlsafe(12)
    token = token or secrets.token_urlsafe(24)
    controller = FakeController(
        inventory=inventory,
        username=username,
        password=password,
        token=token,
        behaviour=behaviour,
    )
    with serving(controller, port=port, tls=tls, tls_version=tls_version) as served:
        yield RunningController(
            host=served.host,
            port=served.port,
            username=username,
            password=password,
            token=token,
            cert_path=served.cert_path,
            inventory=inventory,
            behaviour=behaviour,
            controller=controller,
        )


__all__ = [
    "CONTROLLER_VERSION",
    "Behaviour",
    "FakeController",
    "Inventory",
    "RunningController",
    "running_controller",
]
