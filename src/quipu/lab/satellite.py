"""A fake Red Hat Satellite 6: its host API over real HTTPS on loopback, for tests and demos.

It answers the calls a discovery tool makes, in the shapes of the Satellite 6 API
documentation: ``GET /api/status``, the paginated ``GET /api/v2/hosts`` (``page``,
``per_page``, ``thin``, ``search``), ``GET /api/v2/hosts/{id}`` with the subscription and
content facets and the host's subscription-manager facts, and
``GET /api/v2/hosts/{id}/subscriptions``. Every call needs HTTP basic auth.

Hosts are generated from their position alone, so any two runs with the same host count
agree: in each group of five, a KVM hypervisor, three of its guests and a standalone
physical host. :func:`expected_facts` gives, from the same description, the facts a
collector should report for each host; :class:`Behaviour` switches on the faults a real
Satellite shows (a slow host, a 500, malformed JSON, a host without subscriptions, another
API version, per-request latency).

It is served by ``quipu.lab.https``: one thread per connection, so it answers as many
requests at once as clients open connections, and counts them.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import datetime
import ipaddress
import json
import logging
import re
import secrets
import ssl
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from quipu.lab.https import FakeService, Reply, Request, serving

log = logging.getLogger(__name__)

SATELLITE_VERSION = "6.15.1"
DEFAULT_PER_PAGE = 20
"""What Satellite's ``entries_per_page`` setting is out of the box."""

_GROUP = ("hypervisor", "guest", "guest", "guest", "physical")
_PREFIX = {"hypervisor": "kvm", "guest": "vm", "physical": "db"}
_OPERATING_SYSTEMS = (("RedHat", "9.4"), ("RedHat", "8.10"), ("RedHat", "9.2"), ("CentOS", "7.9"))
_DISTRIBUTIONS = {"RedHat": "Red Hat Enterprise Linux", "CentOS": "CentOS Linux"}
_KERNELS = {
    "9": "5.14.0-427.13.1.el9_4",
    "8": "4.18.0-553.el8_10",
    "7": "3.10.0-1160.119.1.el7",
}
_ORGANIZATIONS = ("ACME", "Globex")
_LOCATIONS = ("Raleigh", "Brno", "Pune")
_REGISTERED = datetime.datetime(2023, 3, 1, tzinfo=datetime.UTC)
_CHECKED_IN = datetime.datetime(2025, 6, 1, tzinfo=datetime.UTC)
_VDC = "Red Hat Enterprise Linux for Virtual Datacenters, Standard"
_RHEL = "Red Hat Enterprise Linux Server, Standard (Physical or Virtual Nodes)"
_EUS = "Red Hat Enterprise Linux Extended Update Support"
_HOST_PATH = re.compile(r"/api(?:/v2)?/hosts/(\d+)(/subscriptions)?")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Behaviour:
    """How the fake departs from a healthy Satellite; host switches name a host id."""

    api_version: int = 2
    """What ``/api/status`` reports; Satellite 6 says 2."""
    latency_s: float = 0.0
    """Added to every request before it is answered (a remote, busy server)."""
    max_per_page: int | None = None
    """Pages of the hosts listing hold at most this many hosts, whatever ``per_page`` asks,
    as behind a proxy or a release that caps page sizes."""
    slow_host: int | None = None
    """This host's details are answered only after ``slow_s``."""
    slow_s: float = 5.0
    failing_host: int | None = None
    """This host's details answer HTTP 500."""
    malformed_host: int | None = None
    """This host's details are cut-off JSON."""
    malformed_hosts_page: int | None = None
    """This page of the hosts listing is cut-off JSON."""
    unsubscribed_host: int | None = None
    """This host's subscriptions answer HTTP 404, as for a host never registered."""
    macs: Mapping[int, str] = dataclasses.field(default_factory=dict)
    """The MAC address of a host's first interface, by host id, in place of the generated
    one: so that a host can be a system another source sees too."""


@dataclasses.dataclass(frozen=True, slots=True)
class _Interface:
    name: str
    ipv4: str
    mac: str


@dataclasses.dataclass(frozen=True, slots=True)
class _Host:
    """One generated host: everything both its API answers and its expected facts come from."""

    id: int
    name: str
    role: str
    os_name: str
    os_version: str
    architecture: str
    cores: int
    sockets: int
    subscription_uuid: str
    bios_uuid: str
    interfaces: tuple[_Interface, ...]
    organization: str
    location: str
    registered_at: str
    last_checkin: str
    errata: dict[str, int]
    upgradable_packages: int
    hypervisor: _Host | None
    guests: tuple[tuple[int, str], ...]
    subscriptions: tuple[dict[str, Any], ...]

    @property
    def kernel(self) -> str:
        return f"{_KERNELS[self.os_version.split('.')[0]]}.{self.architecture}"


def _name(index: int) -> str:
    return f"{_PREFIX[_GROUP[index % len(_GROUP)]]}-{index + 1:05d}.example.com"


def _uuid(kind: int, host_id: int) -> str:
    return str(uuid.UUID(int=(kind << 112) | (0x4000 << 64) | (0x8000 << 48) | host_id))


def _time(base: datetime.datetime, seconds: int) -> str:
    return (base + datetime.timedelta(seconds=seconds)).strftime("%Y-%m-%d %H:%M:%S UTC")


def _subscription(
    host_id: int, name: str, *, kind: str, consumed: int, serial: int
) -> dict[str, Any]:
    """One entry of a host's subscriptions, as Katello lists them."""
    return {
        "id": host_id * 10 + serial,
        "cp_id": f"8a85f99c{host_id:08x}{serial:016x}",
        "subscription_id": 900 + serial,
        "name": name,
        "product_name": name,
        "start_date": "2024-01-01 05:00:00 UTC",
        "end_date": "2027-01-01 04:59:59 UTC",
        "available": 90,
        "quantity": 100,
        "consumed": 10,
        "quantity_consumed": consumed,
        "account_number": 5410782,
        "contract_number": 16250000 + serial,
        "support_level": "Standard",
        "product_id": f"RH0{serial}97144",
        "sockets": 2,
        "cores": None,
        "ram": None,
        "instance_multiplier": 1,
        "stacking_id": f"RH0{serial}97144",
        "multi_entitlement": True,
        "type": kind,
        "unmapped_guest": False,
        "virt_only": kind != "NORMAL",
        "virt_who": False,
        "upstream": True,
    }


def _host(index: int, count: int, macs: Mapping[int, str]) -> _Host:
    host_id = index + 1
    role = _GROUP[index % len(_GROUP)]
    os_name, os_version = _OPERATING_SYSTEMS[index % len(_OPERATING_SYSTEMS)]
    architecture = "aarch64" if role == "physical" and host_id % 2 == 0 else "x86_64"
    high, low = (host_id >> 8) & 255, host_id & 255
    address = f"10.{(host_id >> 16) & 255}.{high}.{low}"
    if role == "guest":
        interfaces = [
            _Interface("eth0", address, f"52:54:00:{host_id >> 16:02x}:{high:02x}:{low:02x}")
        ]
    else:
        # Physical NICs, in upper-case hex as some subscription-manager releases report them.
        interfaces = [
            _Interface("eno1", address, f"A0:36:9F:{high:02X}:{low:02X}:01"),
            _Interface("eno2", f"172.16.{high}.{low}", f"A0:36:9F:{high:02X}:{low:02X}:02"),
        ]
    if host_id in macs:
        interfaces[0] = dataclasses.replace(interfaces[0], mac=macs[host_id])
    if role == "hypervisor":
        # libvirt's default bridge: the same address on every KVM host, a MAC of its own.
        interfaces.append(
            _Interface("virbr0", "192.168.122.1", f"52:54:00:f0:{high:02x}:{low:02x}")
        )
    hypervisor = _host(index - index % len(_GROUP), count, macs) if role == "guest" else None
    guests: tuple[tuple[int, str], ...] = ()
    if role == "hypervisor":
        guests = tuple((i + 1, _name(i)) for i in range(index + 1, min(index + 4, count)))
    if role == "guest":
        cores = sockets = 2 + 2 * (host_id % 2)
    else:
        cores, sockets = (32 if role == "hypervisor" else 16), 2
    errata = {"security": host_id % 4, "bugfix": host_id % 7, "enhancement": host_id % 3}
    errata["total"] = sum(errata.values())
    if role == "hypervisor":
        subscriptions = [_subscription(host_id, _VDC, kind="NORMAL", consumed=1, serial=1)]
    elif role == "guest":
        subscriptions = [_subscription(host_id, _VDC, kind="STACK_DERIVED", consumed=1, serial=2)]
        if host_id % 2 == 0:
            subscriptions.append(_subscription(host_id, _EUS, kind="NORMAL", consumed=1, serial=3))
    else:
        subscriptions = [_subscription(host_id, _RHEL, kind="NORMAL", consumed=sockets, serial=4)]
    return _Host(
        id=host_id,
        name=_name(index),
        role=role,
        os_name=os_name,
        os_version=os_version,
        architecture=architecture,
        cores=cores,
        sockets=sockets,
        subscription_uuid=_uuid(0x5A7E, host_id),
        bios_uuid=_uuid(0xB105, host_id),
        interfaces=tuple(interfaces),
        organization=_ORGANIZATIONS[host_id % len(_ORGANIZATIONS)],
        location=_LOCATIONS[host_id % len(_LOCATIONS)],
        registered_at=_time(_REGISTERED, host_id * 3607),
        last_checkin=_time(_CHECKED_IN, host_id * 61),
        errata=errata,
        upgradable_packages=host_id % 23,
        hypervisor=hypervisor,
        guests=guests,
        subscriptions=tuple(subscriptions),
    )


def _rhsm_facts(host: _Host) -> dict[str, str]:
    """The host's facts as subscription-manager uploads them (every value a string)."""
    facts = {
        "cpu::cpu(s)": str(host.cores),
        "cpu::cpu_socket(s)": str(host.sockets),
        "cpu::core(s)_per_socket": str(host.cores // host.sockets),
        "cpu::thread(s)_per_core": "1",
        "distribution::name": _DISTRIBUTIONS[host.os_name],
        "distribution::version": host.os_version,
        "dmi::system::uuid": host.bios_uuid,
        "memory::memtotal": str(8 * 1024 * 1024 * (4 if host.role == "hypervisor" else 1)),
        "network::hostname": host.name,
        "network::ipv4_address": host.interfaces[0].ipv4,
        "uname::machine": host.architecture,
        "uname::release": host.kernel,
        "uname::sysname": "Linux",
        "virt::is_guest": "true" if host.role == "guest" else "false",
        "virt::host_type": "kvm" if host.role == "guest" else "Not Applicable",
        "net::interface::lo::ipv4_address": "127.0.0.1",
        "net::interface::lo::mac_address": "00:00:00:00:00:00",
        "net::interface::lo::ipv6_address::host": "::1",
    }
    if host.role == "guest":
        facts["virt::uuid"] = host.bios_uuid
    for interface in host.interfaces:
        facts[f"net::interface::{interface.name}::ipv4_address"] = interface.ipv4
        facts[f"net::interface::{interface.name}::mac_address"] = interface.mac
        facts[f"net::interface::{interface.name}::ipv4_netmask"] = "255.255.255.0"
    return facts


def _details(host: _Host) -> dict[str, Any]:
    """``GET /api/v2/hosts/{id}``: the host with its facets and facts."""
    primary = host.interfaces[0]
    virtual_host = None
    if host.hypervisor is not None:
        virtual_host = {
            "id": host.hypervisor.id,
            "name": host.hypervisor.name,
            "uuid": host.hypervisor.subscription_uuid,
        }
    return {
        "id": host.id,
        "name": host.name,
        "certname": host.name,
        "ip": primary.ipv4,
        "ip6": None,
        "mac": primary.mac.lower(),
        "domain_id": 1,
        "domain_name": "example.com",
        "architecture_id": 1 if host.architecture == "x86_64" else 2,
        "architecture_name": host.architecture,
        "operatingsystem_id": _OPERATING_SYSTEMS.index((host.os_name, host.os_version)) + 1,
        "operatingsystem_name": f"{host.os_name} {host.os_version}",
        "organization_id": _ORGANIZATIONS.index(host.organization) + 1,
        "organization_name": host.organization,
        "location_id": _LOCATIONS.index(host.location) + 3,
        "location_name": host.location,
        "hostgroup_id": None,
        "hostgroup_name": None,
        "owner_id": 4,
        "owner_type": "User",
        "enabled": True,
        "managed": False,
        "build": False,
        "comment": None,
        "uuid": None,
        "compute_resource_id": None,
        "compute_resource_name": None,
        "created_at": host.registered_at,
        "updated_at": host.last_checkin,
        "last_report": host.last_checkin,
        "global_status": 0,
        "global_status_label": "OK",
        "subscription_status": 0,
        "subscription_status_label": "Fully entitled",
        "content_facet_attributes": {
            "id": host.id,
            "uuid": host.subscription_uuid,
            "content_view_id": 2,
            "content_view_name": "RHEL",
            "lifecycle_environment_id": 2,
            "lifecycle_environment_name": "Production",
            "content_source_id": None,
            "errata_counts": dict(host.errata),
            "applicable_package_count": host.upgradable_packages + 3,
            "upgradable_package_count": host.upgradable_packages,
            "applicable_module_stream_count": 0,
            "upgradable_module_stream_count": 0,
        },
        "subscription_facet_attributes": {
            "id": host.id,
            "uuid": host.subscription_uuid,
            "last_checkin": host.last_checkin,
            "service_level": "Standard",
            "release_version": None,
            "autoheal": True,
            "registered_at": host.registered_at,
            "registered_through": "satellite.example.com",
            "purpose_role": "",
            "purpose_usage": "",
            "hypervisor": host.role == "hypervisor",
            "user": None,
            "virtual_host": virtual_host,
            "virtual_guests": [{"id": i, "name": n} for i, n in host.guests],
            "installed_products": [
                {
                    "productId": "479" if host.architecture == "x86_64" else "419",
                    "productName": f"Red Hat Enterprise Linux for {host.architecture}",
                    "arch": host.architecture,
                    "version": host.os_version,
                }
            ],
        },
        "interfaces": [
            {
                "id": host.id * 10 + n,
                "name": host.name if n == 0 else None,
                "identifier": interface.name,
                "ip": interface.ipv4,
                "mac": interface.mac.lower(),
                "primary": n == 0,
                "provision": n == 0,
                "type": "interface",
            }
            for n, interface in enumerate(host.interfaces)
        ],
        "facts": _rhsm_facts(host),
    }


def _listed(host: _Host) -> dict[str, Any]:
    """A host in a non-thin listing: its own fields, without facets or facts."""
    details = _details(host)
    for key in ("content_facet_attributes", "subscription_facet_attributes", "interfaces", "facts"):
        del details[key]
    return details


def expected_facts(*, hosts: int, behaviour: Behaviour | None = None) -> dict[str, dict[str, Any]]:
    """The facts a Satellite collector should report for each generated host, by host name.

    Written from the hosts' description, not from the API answers, so that a collector
    is checked against what the hosts are rather than against its own reading of the JSON.
    """
    behaviour = behaviour or Behaviour()
    return {
        host.name: _expected(host, subscribed=host.id != behaviour.unsubscribed_host)
        for host in (_host(i, hosts, behaviour.macs) for i in range(hosts))
    }


def _expected(host: _Host, *, subscribed: bool) -> dict[str, Any]:
    addresses = [i.ipv4 for i in host.interfaces]
    facts: dict[str, Any] = {
        "hostname": host.name,
        "uuid": host.subscription_uuid,
        "subscription_manager_id": host.subscription_uuid,
        "os_name": host.os_name,
        "os_release": f"{host.os_name} {host.os_version}",
        "os_version": host.os_version,
        "architecture": host.architecture,
        "cores": host.cores,
        "num_sockets": host.sockets,
        "kernel_version": host.kernel,
        "ip_addresses": sorted(set(addresses), key=ipaddress.IPv4Address),
        "mac_addresses": sorted({i.mac.lower() for i in host.interfaces}),
        "is_virtualized": host.role == "guest",
        "organization": host.organization,
        "location": host.location,
        "registration_time": host.registered_at,
        "last_checkin_time": host.last_checkin,
        "errata_out_of_date": host.errata["total"],
        "packages_out_of_date": host.upgradable_packages,
    }
    if host.hypervisor is not None:
        facts["virt_type"] = "kvm"
        facts["virtual_host_name"] = host.hypervisor.name
        facts["virtual_host_uuid"] = host.hypervisor.subscription_uuid
    if host.guests:
        facts["num_virtual_guests"] = len(host.guests)
        facts["virtual"] = "hypervisor"
    if subscribed:
        facts["entitlements"] = [
            {
                "name": s["product_name"],
                "derived_entitlement": s["type"] != "NORMAL",
                "amount": s["quantity_consumed"],
                "account_number": s["account_number"],
                "contract_number": s["contract_number"],
                "start_date": s["start_date"],
                "end_date": s["end_date"],
            }
            for s in host.subscriptions
        ]
    return facts


class FakeSatellite(FakeService):
    """Answers Satellite's host API for ``hosts`` generated hosts; counts what it serves."""

    name = "fake Satellite"

    def __init__(self, *, hosts: int, username: str, password: str, behaviour: Behaviour) -> None:
        super().__init__(latency_s=behaviour.latency_s)
        self.hosts = hosts
        self.behaviour = behaviour
        token = base64.b64encode(f"{username}:{password}".encode()).decode()
        self._authorization = f"Basic {token}"

    def route(self, request: Request) -> Reply:
        return Reply(*self._route(request))

    def _route(self, request: Request) -> tuple[int, bytes]:
        if request.headers.get("Authorization") != self._authorization:
            return 401, _json({"error": {"message": "Unable to authenticate user"}})
        query = request.query
        if request.path == "/api/status":
            return 200, _json(
                {
                    "result": "ok",
                    "status": 200,
                    "version": SATELLITE_VERSION,
                    "api_version": self.behaviour.api_version,
                }
            )
        if request.path in ("/api/hosts", "/api/v2/hosts"):
            return self._hosts(query)
        match = _HOST_PATH.fullmatch(request.path)
        if match is None:
            return 404, _json({"message": "Route not found"})
        host_id = int(match.group(1))
        if not 1 <= host_id <= self.hosts:
            return 404, _json({"error": {"message": f"Resource host not found by id '{host_id}'"}})
        if match.group(2):
            return self._subscriptions(host_id, query)
        return self._host(host_id)

    def _hosts(self, query: Mapping[str, str]) -> tuple[int, bytes]:
        try:
            page = max(1, int(query.get("page") or 1))
            raw = query.get("per_page") or str(DEFAULT_PER_PAGE)
            per_page = self.hosts if raw == "all" else max(1, int(raw))
            per_page = min(per_page, self.behaviour.max_per_page or per_page)
        except ValueError:
            return 422, _json({"error": {"message": "Invalid page or per_page"}})
        if page == self.behaviour.malformed_hosts_page:
            return 200, b'{"total": ' + str(self.hosts).encode() + b', "results": [{"id": 1, "na'
        thin = query.get("thin", "").lower() in ("1", "true")
        first = (page - 1) * per_page
        indexes = range(first, min(first + per_page, self.hosts))
        results = [
            {"id": i + 1, "name": _name(i)} if thin else _listed(self._generated(i + 1))
            for i in indexes
        ]
        return 200, _json(
            {
                "total": self.hosts,
                "subtotal": self.hosts,
                "page": page,
                "per_page": per_page,
                "search": query.get("search") or None,
                "sort": {"by": None, "order": None},
                "results": results,
            }
        )

    def _generated(self, host_id: int) -> _Host:
        return _host(host_id - 1, self.hosts, self.behaviour.macs)

    def _host(self, host_id: int) -> tuple[int, bytes]:
        behaviour = self.behaviour
        if host_id == behaviour.slow_host:
            self.pause(behaviour.slow_s)
        if host_id == behaviour.failing_host:
            return 500, _json(
                {"error": {"message": "PG::ConnectionBad: connection to server was lost"}}
            )
        if host_id == behaviour.malformed_host:
            return 200, b'{"id": ' + str(host_id).encode() + b', "name": "'
        return 200, _json(_details(self._generated(host_id)))

    def _subscriptions(self, host_id: int, query: Mapping[str, str]) -> tuple[int, bytes]:
        if host_id == self.behaviour.unsubscribed_host:
            return 404, _json(
                {
                    "displayMessage": f"Host with ID {host_id} has no registered content.",
                    "errors": [f"Host with ID {host_id} has no registered content."],
                }
            )
        results = list(self._generated(host_id).subscriptions)
        return 200, _json(
            {
                "total": len(results),
                "subtotal": len(results),
                "page": 1,
                "per_page": int(query.get("per_page") or DEFAULT_PER_PAGE),
                "search": None,
                "sort": {"by": None, "order": None},
                "results": results,
            }
        )


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


@dataclasses.dataclass(frozen=True, kw_only=True)
class RunningSatellite:
    """A fake Satellite that is up: where it listens, how to log in, what it should yield."""

    host: str
    port: int
    username: str
    password: str = dataclasses.field(repr=False)
    cert_path: Path
    """Its self-signed certificate (PEM), usable as a CA file."""
    hosts: int
    behaviour: Behaviour
    satellite: FakeSatellite

    @property
    def names(self) -> dict[int, str]:
        """Host name by host id."""
        return {i + 1: _name(i) for i in range(self.hosts)}

    @property
    def expected(self) -> dict[str, dict[str, Any]]:
        """The facts a collector should report for each host, by host name."""
        return expected_facts(hosts=self.hosts, behaviour=self.behaviour)


@contextlib.contextmanager
def running_satellite(
    *,
    hosts: int = 10,
    port: int = 0,
    username: str = "admin",
    password: str | None = None,
    behaviour: Behaviour | None = None,
    tls: bool = True,
    tls_version: ssl.TLSVersion | None = None,
) -> Iterator[RunningSatellite]:
    """A fake Satellite on ``127.0.0.1:port`` (0: any free port), stopped on exit.

    ``tls`` False serves plain HTTP; ``tls_version`` accepts that TLS version only.
    """
    if hosts < 0:
        raise ValueError(f"hosts must be at least 0 (got {hosts}).")
    behaviour = behaviour or Behaviour()
    password = password or secrets.token_urlsafe(12)
    satellite = FakeSatellite(
        hosts=hosts, username=username, password=password, behaviour=behaviour
    )
    with serving(satellite, port=port, tls=tls, tls_version=tls_version) as served:
        yield RunningSatellite(
            host=served.host,
            port=served.port,
            username=username,
            password=password,
            cert_path=served.cert_path,
            hosts=hosts,
            behaviour=behaviour,
            satellite=satellite,
        )
