"""The insights report: the deployments as host inventory records, in slices, in a tarball.

The tarball holds one directory, ``report_id_<id>/``, with one ``<slice id>.json`` per slice
(``{"report_slice_id", "hosts"}``, at most ``SLICE_SIZE`` hosts each) and ``metadata.json``::

    {"report_id": <report platform id>, "host_inventory_api_version": "1.0", "source": "qpc",
     "source_metadata": {"report_platform_id", "report_type": "insights", "report_version",
                         "qpc_server_report_id", "qpc_server_version", "qpc_server_id"},
     "report_slices": {<slice id>: {"number_hosts": N}, ...}}

A host is a system fingerprint in the inventory's words (``host_of``): ``display_name`` and
``fqdn`` are its name, ``system_profile`` its hardware and OS, ``facts`` the qpc namespace
(source types, when discovered, Red Hat products), ``tags`` who collected it. Empty values
are left out, and a system with no canonical fact (``CANONICAL_FACTS``) cannot be matched by
the inventory, so it is no host. The files are compact JSON, as the established server writes
them. Slices are built and written one at a time: memory holds one slice, not the report.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import io
import json
import tarfile
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, BinaryIO

from quipu.reports.fields import InfrastructureType

SLICE_SIZE = 10_000
"""Hosts per slice, as the established server slices by default."""

CANONICAL_FACTS: tuple[str, ...] = (
    "fqdn",
    "bios_uuid",
    "insights_id",
    "ip_addresses",
    "mac_addresses",
    "satellite_id",
    "subscription_manager_id",
)
"""A host needs one of these for the inventory to match it."""

DATA_COLLECTOR = "qpc"
"""The tag namespace and data-collector label the inventory knows discovery hosts by."""

_INFRASTRUCTURE = {
    InfrastructureType.PHYSICAL.value: "physical",
    InfrastructureType.VIRTUALIZED.value: "virtual",
}


@dataclasses.dataclass(frozen=True)
class Collector:
    """Who built the report, as each host's facts and tags say."""

    server_id: str
    server_version: str
    hostname: str
    ip_address: str
    last_discovered: str
    """ISO 8601 UTC time the report's systems were discovered (``...Z``)."""


def _not_empty(document: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in document.items() if v is not None and v != "" and v != [] and v != {}}


def _cores_per_socket(system: Mapping[str, Any]) -> int | None:
    for cores, sockets in (
        (system.get("cpu_core_count"), system.get("cpu_socket_count")),
        (system.get("vm_host_core_count"), system.get("vm_host_socket_count")),
    ):
        if cores and sockets:
            return int(cores // sockets)
    return None


# Hosts share these: a report has a handful of distinct ones. Treat hosts as read-only.
@functools.lru_cache(maxsize=64)
def _facts(
    collector: Collector, source_types: tuple[str, ...], is_redhat: bool
) -> list[dict[str, Any]]:
    facts = {
        "source_types": list(source_types),
        "last_discovered": collector.last_discovered,
        "qpc_server_version": collector.server_version,
        "qpc_server_id": collector.server_id,
        "rh_products_installed": ["RHEL"] if is_redhat else [],
    }
    return [{"namespace": DATA_COLLECTOR, "facts": facts}]


@functools.lru_cache(maxsize=8)
def _tags(collector: Collector) -> list[dict[str, Any]]:
    tags = {
        "data-collector": DATA_COLLECTOR,
        "last-discovered": collector.last_discovered,
        "scanner-hostname": collector.hostname,
        "scanner-id": collector.server_id,
        "scanner-ip-address": collector.ip_address,
        "scanner-version": collector.server_version,
    }
    return [
        {"namespace": DATA_COLLECTOR, "key": key, "value": value} for key, value in tags.items()
    ]


NOT_HOSTS = frozenset({"rhacs"})
"""Source types whose systems are no inventory hosts when no other source saw them: an RHACS
Central is a service (the established server leaves it out of this report too)."""


def host_of(system: Mapping[str, Any], *, collector: Collector) -> dict[str, Any] | None:
    """One system fingerprint as an inventory host; None when it has no canonical fact or is
    known only to sources whose systems are no hosts (``NOT_HOSTS``)."""
    source_types = tuple(sorted({source["source_type"] for source in system.get("sources") or ()}))
    if source_types and NOT_HOSTS.issuperset(source_types):
        return None
    name = system.get("name")
    host = _not_empty(
        {
            "display_name": name,
            "fqdn": name,
            "bios_uuid": system.get("bios_uuid"),
            "ip_addresses": system.get("ip_addresses"),
            "mac_addresses": system.get("mac_addresses"),
            "subscription_manager_id": system.get("subscription_manager_id"),
        }
    )
    if not any(host.get(fact) for fact in CANONICAL_FACTS):
        return None
    infrastructure = system.get("infrastructure_type")
    profile = _not_empty(
        {
            "number_of_cpus": system.get("cpu_count"),
            "number_of_sockets": system.get("cpu_socket_count")
            or system.get("vm_host_socket_count"),
            "cores_per_socket": _cores_per_socket(system),
            "system_memory_bytes": system.get("system_memory_bytes"),
            "infrastructure_type": _INFRASTRUCTURE.get(infrastructure or "", infrastructure),
            "infrastructure_vendor": system.get("virtualized_type"),
            "os_release": system.get("os_release"),
            "arch": system.get("architecture"),
            # provider_type is left out: the inventory takes it only with provider_id,
            # which no source tells
            "cloud_provider": system.get("cloud_provider"),
        }
    )
    host.update(
        _not_empty(
            {
                "etc_machine_id": system.get("etc_machine_id"),
                "vm_uuid": system.get("vm_uuid"),
                "system_profile": profile,
            }
        )
    )
    host["facts"] = _facts(collector, source_types, bool(system.get("is_redhat")))
    host["tags"] = _tags(collector)
    return host


def _slices(hosts: Iterable[dict[str, Any]], *, size: int) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for host in hosts:
        batch.append(host)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _compact(document: Any) -> bytes:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


class NoHosts(ValueError):
    """No system of the report has a canonical fact: there is no insights report."""


def write_insights_tarball(
    *,
    report_id: int,
    report_platform_id: str,
    report_version: str,
    systems: Iterable[Mapping[str, Any]],
    collector: Collector,
    out: BinaryIO,
    slice_size: int = SLICE_SIZE,
    slice_ids: Callable[[], str] = lambda: str(uuid.uuid4()),
    mtime: int = 0,
) -> dict[str, Any]:
    """Write the insights tarball of ``systems`` (read once) to ``out``; its metadata.

    Raises ``NoHosts`` when no system can be a host; nothing useful is written then.
    """
    if slice_size < 1:
        raise ValueError(f"A slice holds at least one host (got {slice_size}).")
    root = f"report_id_{report_id}"
    hosts = (
        host for system in systems if (host := host_of(system, collector=collector)) is not None
    )
    report_slices: dict[str, dict[str, int]] = {}
    with (
        gzip.GzipFile(
            filename="", fileobj=out, mode="wb", compresslevel=6, mtime=mtime
        ) as compressed,
        tarfile.open(fileobj=compressed, mode="w", format=tarfile.PAX_FORMAT) as archive,
    ):

        def add(name: str, body: bytes) -> None:
            info = tarfile.TarInfo(f"{root}/{name}")
            info.size, info.mtime, info.mode = len(body), mtime, 0o644
            archive.addfile(info, io.BytesIO(body))

        for batch in _slices(hosts, size=slice_size):
            slice_id = slice_ids()
            add(f"{slice_id}.json", _compact({"report_slice_id": slice_id, "hosts": batch}))
            report_slices[slice_id] = {"number_hosts": len(batch)}
        if not report_slices:
            raise NoHosts(
                f"Insights report {report_id} was not generated because there were 0 valid hosts."
            )
        metadata = {
            "report_id": report_platform_id,
            "host_inventory_api_version": "1.0",
            "source": DATA_COLLECTOR,
            "source_metadata": {
                "report_platform_id": report_platform_id,
                "report_type": "insights",
                "report_version": report_version,
                "qpc_server_report_id": report_id,
                "qpc_server_version": collector.server_version,
                "qpc_server_id": collector.server_id,
            },
            "report_slices": report_slices,
        }
        add("metadata.json", _compact(metadata))
    return metadata
