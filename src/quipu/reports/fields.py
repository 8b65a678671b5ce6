"""The common fields of a fingerprint, and the draft a source type's reader fills."""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Mapping
from typing import Any

FIELDS: tuple[str, ...] = (
    "name",
    "os_name",
    "os_release",
    "os_version",
    "architecture",
    "cpu_count",
    "cpu_socket_count",
    "cpu_core_count",
    "system_memory_bytes",
    "infrastructure_type",
    "virtualized_type",
    "cloud_provider",
    "is_redhat",
    "redhat_package_count",
    "installed_products",
    "subscription_manager_id",
    "bios_uuid",
    "etc_machine_id",
    "ip_addresses",
    "mac_addresses",
    "vm_uuid",
    "vm_state",
    "vm_dns_name",
    "vm_host",
    "vm_host_socket_count",
    "vm_host_core_count",
    "vm_host_cpu_threads",
    "vm_cluster",
    "vm_datacenter",
    "system_last_checkin_date",
)
"""The common fields of a fingerprint, in report order."""

LIST_FIELDS = frozenset({"installed_products", "ip_addresses", "mac_addresses"})
"""Fields holding a sorted tuple of strings (a list in the reports)."""

FIELD_INDEX: Mapping[str, int] = {name: i for i, name in enumerate(FIELDS)}

_RHEL = re.compile(r"red ?hat|\brhel\b")


class InfrastructureType(enum.StrEnum):
    PHYSICAL = "physical"
    """Runs on its own hardware."""
    VIRTUALIZED = "virtualized"
    """A guest of a hypervisor."""
    UNKNOWN = "unknown"
    """No source could tell; only the deployments report writes it, fingerprints keep null."""


class Draft:
    """A fingerprint being filled field by field; a null value leaves its field unset."""

    __slots__ = ("raw_keys", "values")

    def __init__(self) -> None:
        self.values: list[Any] = [None] * len(FIELDS)
        self.raw_keys: list[str | None] = [None] * len(FIELDS)

    def put(self, field: str, value: Any, raw_key: str | None) -> None:
        if value is None:
            return
        index = FIELD_INDEX[field]
        self.values[index] = value
        self.raw_keys[index] = raw_key

    def read(
        self, field: str, facts: Mapping[str, Any], raw_key: str, parse: Callable[[Any], Any]
    ) -> None:
        self.put(field, parse(facts.get(raw_key)), raw_key)


def names_red_hat(os_text: str) -> bool:
    """Whether an OS name or release string names Red Hat Enterprise Linux."""
    return _RHEL.search(os_text.lower()) is not None
