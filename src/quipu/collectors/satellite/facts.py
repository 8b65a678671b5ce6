"""A Satellite host's raw facts, read from its API answers (pure: no I/O).

Fact names are the established discovery tool's, so its reports and fingerprints keep
working. Where each comes from, in ``GET /api/v2/hosts/{id}`` (``sub.`` is its
``subscription_facet_attributes``, ``content.`` its ``content_facet_attributes``, ``facts.``
the subscription-manager facts it carries)::

    hostname                name
    uuid                    sub.uuid, or uuid without it
    subscription_manager_id sub.uuid (the consumer UUID subscription-manager registered)
    os_release              operatingsystem_name ("RedHat 9.4")
    os_name, os_version     os_release split: its first word ("Red Hat" and "Red Hat
                            Enterprise Linux" kept whole) and its last word, if not the first
    architecture            facts.uname::machine, or architecture_name without it
    cores, num_sockets      facts.cpu::cpu(s), facts.cpu::cpu_socket(s) (as numbers)
    kernel_version          facts.uname::release
    ip_addresses            facts.net::interface::<name>::ipv4_address of every interface
    mac_addresses           facts.net::interface::<name>::mac_address, lower-case
                            (both without the lo interface, loopback addresses, all-zero MACs)
    is_virtualized          facts.virt::is_guest (as a boolean)
    virt_type               facts.virt::host_type ("Not Applicable" on a physical host: left out)
    virtual_host_name       sub.virtual_host.name, or virtual_host.name without it
    virtual_host_uuid       sub.virtual_host.uuid, or virtual_host.uuid without it
    num_virtual_guests      the count of sub.virtual_guests (or virtual_guests), when any
    virtual                 "hypervisor" when the host has guests
    errata_out_of_date      content.errata_counts.total, or errata_counts.total without it
    packages_out_of_date    content.upgradable_package_count
    registration_time       sub.registered_at, or created without it
    last_checkin_time       sub.last_checkin, or checkin_time without it
    organization, location  organization_name, location_name

and ``entitlements`` from ``GET /api/v2/hosts/{id}/subscriptions``: one
``{name, derived_entitlement, amount, account_number, contract_number, start_date,
end_date}`` per result (``product_name``; derived when its ``type`` is
``ENTITLEMENT_DERIVED`` or ``STACK_DERIVED``; ``quantity_consumed``, or ``amount`` without it).

A fact Satellite does not give is left out, never set to null or guessed.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Any

from quipu.collectors import values

DERIVED_TYPES = frozenset({"entitlement_derived", "stack_derived"})
"""Subscription types of entitlements a guest inherits from its hypervisor's."""

_NOT_A_GUEST = frozenset({"", "not applicable", "unknown", "none"})
_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5,19}$")
_INTERFACE_KEYS = (("net::interface::", "::"), ("net.interface.", "."))
"""(prefix, separator) of an interface fact's key: ``net::interface::eth0::ipv4_address``."""
_LOOPBACK_INTERFACE = "lo"


def _text(value: Any) -> str | None:
    """A non-blank string; Satellite writes some names and versions as JSON numbers."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return values.text(value)


def _flag(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    word = _text(value)
    if word is None:
        return None
    return {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}.get(
        word.lower()
    )


def _fact(facts: Mapping[str, Any], *path: str) -> Any:
    """A subscription-manager fact by its path; Satellite joins it with ``::`` (older
    releases with ``.``)."""
    value = facts.get("::".join(path))
    return facts.get(".".join(path)) if value is None else value


def split_os_release(os_release: str) -> tuple[str, str | None]:
    """(os_name, os_version) of an operating system title such as ``RedHat 9.4``; a title of
    one word has no version."""
    words = os_release.split()
    lowered = os_release.lower()
    if lowered.startswith("red hat enterprise linux"):
        name = "Red Hat Enterprise Linux"
    elif lowered.startswith("red hat"):
        name = "Red Hat"
    else:
        name = words[0]
    return name, words[-1] if len(words) > 1 else None


def addresses(facts: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """(IPv4 addresses, MAC addresses) of the host's interfaces, loopback ones left out.

    Addresses are in numeric order and MACs sorted, each once: two interfaces may share one
    (a bond and its slaves).
    """
    ips: set[ipaddress.IPv4Address] = set()
    macs: set[str] = set()
    for key, value in facts.items():
        form = next((f for f in _INTERFACE_KEYS if key.startswith(f[0])), None)
        text = _text(value)
        if form is None or text is None:
            continue
        prefix, separator = form
        interface, _, attribute = key[len(prefix) :].partition(separator)
        if interface == _LOOPBACK_INTERFACE:
            continue
        if attribute == "ipv4_address":
            try:
                address = ipaddress.IPv4Address(text)
            except ValueError:
                continue
            if not (address.is_loopback or address.is_unspecified):
                ips.add(address)
        elif attribute == "mac_address":
            mac = text.lower().replace("-", ":")
            if _MAC.match(mac) and mac.replace(":", "").strip("0"):
                macs.add(mac)
    return [str(ip) for ip in sorted(ips)], sorted(macs)


def entitlements(subscriptions: list[Any]) -> list[dict[str, Any]]:
    """The host's entitlements, from the results of its subscriptions listing."""
    found = []
    for subscription in subscriptions:
        if not isinstance(subscription, Mapping):
            continue
        amount = subscription.get("quantity_consumed")
        kind = _text(subscription.get("type"))
        found.append(
            {
                "name": _text(subscription.get("product_name")),
                "derived_entitlement": kind is not None and kind.lower() in DERIVED_TYPES,
                "amount": subscription.get("amount") if amount is None else amount,
                "account_number": subscription.get("account_number"),
                "contract_number": subscription.get("contract_number"),
                "start_date": subscription.get("start_date"),
                "end_date": subscription.get("end_date"),
            }
        )
    return found


def host_facts(host: Mapping[str, Any], *, subscriptions: list[Any] | None) -> dict[str, Any]:
    """The raw facts of one host from its details and its subscriptions (None: unknown)."""
    sub = values.mapping(host.get("subscription_facet_attributes"))
    content = values.mapping(host.get("content_facet_attributes"))
    rhsm = values.mapping(host.get("facts"))
    virtual_host = values.mapping(sub.get("virtual_host")) or values.mapping(
        host.get("virtual_host")
    )
    guests = sub.get("virtual_guests") or host.get("virtual_guests")
    guest_count = len(guests) if isinstance(guests, list) and guests else None
    errata = values.mapping(content.get("errata_counts")) or values.mapping(
        host.get("errata_counts")
    )
    os_release = _text(host.get("operatingsystem_name"))
    os_name, os_version = (None, None) if os_release is None else split_os_release(os_release)
    virt_type = _text(_fact(rhsm, "virt", "host_type"))
    if virt_type is not None and virt_type.lower() in _NOT_A_GUEST:
        virt_type = None
    ips, macs = addresses(rhsm)
    facts: dict[str, Any] = {
        "hostname": _text(host.get("name")),
        "uuid": _text(sub.get("uuid")) or _text(host.get("uuid")),
        "subscription_manager_id": _text(sub.get("uuid")),
        "os_name": os_name,
        "os_release": os_release,
        "os_version": os_version,
        "architecture": _text(_fact(rhsm, "uname", "machine"))
        or _text(host.get("architecture_name")),
        "cores": values.count(_fact(rhsm, "cpu", "cpu(s)")),
        "num_sockets": values.count(_fact(rhsm, "cpu", "cpu_socket(s)")),
        "kernel_version": _text(_fact(rhsm, "uname", "release")),
        "ip_addresses": ips or None,
        "mac_addresses": macs or None,
        "is_virtualized": _flag(_fact(rhsm, "virt", "is_guest")),
        "virt_type": virt_type,
        "virtual_host_name": _text(virtual_host.get("name")),
        "virtual_host_uuid": _text(virtual_host.get("uuid")),
        "num_virtual_guests": guest_count,
        "virtual": "hypervisor" if guest_count else None,
        "errata_out_of_date": values.count(errata.get("total")),
        "packages_out_of_date": values.count(content.get("upgradable_package_count")),
        "registration_time": _text(sub.get("registered_at")) or _text(host.get("created")),
        "last_checkin_time": _text(sub.get("last_checkin")) or _text(host.get("checkin_time")),
        "organization": _text(host.get("organization_name")),
        "location": _text(host.get("location_name")),
        "entitlements": None if subscriptions is None else entitlements(subscriptions),
    }
    return {name: value for name, value in facts.items() if value is not None}
