"""Normalizing raw fact values, and telling real identifiers from placeholders.

Collectors report what systems say, and systems say odd things: firmware that answers
``Not Settable`` for its UUID, a loopback interface with MAC ``00:00:00:00:00:00``, ``uname -p``
printing ``unknown``. Every function here returns the cleaned value or None ("unknown"); a
placeholder is never turned into a guess, and never survives to become a join key that would
merge two different systems into one deployment.
"""

from __future__ import annotations

import re
import socket
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

PLACEHOLDER_TEXT = frozenset(
    {
        "",
        "unknown",
        "none",
        "null",
        "n/a",
        "not settable",
        "not specified",
        "not present",
        "not available",
        "to be filled by o.e.m.",
        "default string",
        "system serial number",
    }
)
"""Strings firmware and tools print when they have no answer (compared lower-cased)."""

PLACEHOLDER_UUIDS = frozenset(
    {
        "00000000-0000-0000-0000-000000000000",
        "ffffffff-ffff-ffff-ffff-ffffffffffff",
        # Shipped unchanged by several board vendors, so thousands of machines share it.
        "03000200-0400-0500-0006-000700080009",
    }
)

SHARED_MACS = frozenset(
    {
        # The virtual adapter of Cisco AnyConnect has the same address on every laptop.
        "00:05:9a:3c:7a:00",
    }
)
"""Unicast MAC addresses known to be shared by unrelated systems."""

_VRRP_PREFIXES = ("00:00:5e:00:01:", "00:00:5e:00:02:")
"""Virtual router MACs: by design held by several routers of one HA group."""

_HEX_PAIRS = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2})+$")
_MACHINE_ID = re.compile(r"^[0-9a-f]{32}$")
_TIME_SUFFIXES = (" UTC", " GMT")


_LONGEST_PLACEHOLDER = max(map(len, PLACEHOLDER_TEXT))


def text(value: Any) -> str | None:
    """A stripped string, or None for non-strings and placeholders such as ``unknown``."""
    if type(value) is str:
        # The common case, taken first: every report reads hundreds of thousands of these.
        stripped: str = value.strip()
        if len(stripped) > _LONGEST_PLACEHOLDER:
            return stripped
        return None if stripped.lower() in PLACEHOLDER_TEXT else stripped
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        value = str(value)
    if not isinstance(value, str):
        return None
    value = value.strip()
    return None if value.lower() in PLACEHOLDER_TEXT else value


def count(value: Any) -> int | None:
    """A non-negative whole number from an int, an integral float or a decimal string."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, float):
        return int(value) if value.is_integer() and value >= 0 else None
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def number(value: Any) -> float | None:
    """A non-negative number (int, float or numeric string), or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if isinstance(value, int | float) and value >= 0 and value == value:  # NaN != NaN
        return float(value)
    return None


def flag(value: Any) -> bool | None:
    """A boolean from a bool, 0/1 or the words true/false/yes/no."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in ("true", "yes", "1"):
            return True
        if word in ("false", "no", "0"):
            return False
    return None


def system_uuid(value: Any) -> str | None:
    """A BIOS or subscription UUID in canonical lower-case form, or None for placeholders.

    A value that does not parse as a UUID is unknown rather than kept: it cannot be compared
    with what another source reports for the same system.
    """
    raw = text(value)
    if raw is None:
        return None
    try:
        canonical = str(uuid.UUID(raw))
    except ValueError:
        return None
    return None if canonical in PLACEHOLDER_UUIDS else canonical


def machine_id(value: Any) -> str | None:
    """A systemd machine id (32 hex digits), or None when absent, uninitialized or all zero."""
    raw = text(value)
    if raw is None:
        return None
    raw = raw.lower()
    if not _MACHINE_ID.match(raw) or raw.strip("0") == "":
        return None
    return raw


def mac(value: Any) -> str | None:
    """A MAC address as lower-case colon-separated hex pairs, or None for all-zero/all-one ones.

    Accepts ``AA-BB-..``, ``aa:bb:..`` and bare hex; longer link addresses (InfiniBand) are
    kept as reported, since they are real, but see ``is_join_mac``.
    """
    raw = text(value)
    if raw is None:
        return None
    raw = raw.lower().replace("-", ":")
    if ":" not in raw and len(raw) % 2 == 0:
        raw = ":".join(raw[i : i + 2] for i in range(0, len(raw), 2))
    if not _HEX_PAIRS.match(raw):
        return None
    digits = raw.replace(":", "")
    if digits.strip("0") == "" or digits.strip("f") == "":
        return None
    return raw


def is_join_mac(value: str) -> bool:
    """Whether a normalized MAC address identifies one system, so may join two records.

    Only 6-byte unicast addresses that are not known to be shared qualify: multicast, VRRP
    and vendor-fixed virtual adapter addresses are held by many systems at once.
    """
    if len(value) != 17:
        return False
    if int(value[:2], 16) & 1:
        return False
    return value not in SHARED_MACS and not value.startswith(_VRRP_PREFIXES)


def macs(value: Any) -> tuple[str, ...] | None:
    """Sorted unique MAC addresses of a list; None when the fact itself is unknown."""
    if not isinstance(value, list | tuple):
        return None
    return tuple(sorted({m for m in map(mac, value) if m is not None}))


def _address(raw: str) -> tuple[int, int, str] | None:
    """(IP version, numeric value, canonical text) of an address, or None when it is not one.

    ``socket.inet_pton`` parses without I/O and is many times faster than ``ipaddress``,
    which matters at hundreds of thousands of addresses per report.
    """
    raw = raw.split("/", 1)[0].split("%", 1)[0]
    for version, family in ((4, socket.AF_INET), (6, socket.AF_INET6)):
        try:
            packed = socket.inet_pton(family, raw)
        except OSError:
            continue
        return version, int.from_bytes(packed, "big"), socket.inet_ntop(family, packed)
    return None


def _says_nothing(version: int, value: int) -> bool:
    """Loopback, link-local, unspecified or multicast: present on every host alike."""
    if version == 4:
        return value >> 24 == 127 or value >> 16 == 0xA9FE or value == 0 or value >> 28 == 0xE
    return value in (0, 1) or value >> 118 == 0x3FA or value >> 120 == 0xFF


def ip_addresses(value: Any) -> tuple[str, ...] | None:
    """Sorted unique IP addresses of a list, without loopback, link-local and unspecified ones.

    Those are present on every host and say nothing about which host this is. A value with a
    prefix length (``10.0.0.5/24``) or a zone (``fe80::1%eth0``) keeps only its address.
    """
    if not isinstance(value, list | tuple):
        return None
    found: dict[str, tuple[int, int]] = {}
    for item in value:
        raw = text(item)
        parsed = None if raw is None else _address(raw)
        if parsed is None or _says_nothing(parsed[0], parsed[1]):
            continue
        found[parsed[2]] = (parsed[0], parsed[1])
    return tuple(sorted(found, key=found.__getitem__))


def ip_sort_key(value: str) -> tuple[int, int]:
    """Numeric order for addresses produced by ``ip_addresses`` (10.0.0.9 before 10.0.0.10)."""
    parsed = _address(value)
    return (0, 0) if parsed is None else (parsed[0], parsed[1])


def product_names(value: Any) -> tuple[str, ...] | None:
    """Sorted unique product or subscription names from a list of ``{name, ...}`` or strings."""
    if not isinstance(value, list | tuple):
        return None
    names: set[str] = set()
    for item in value:
        name = text(item.get("name")) if isinstance(item, dict) else text(item)
        if name is not None:
            names.add(name)
    return tuple(sorted(names))


def timestamp(value: Any) -> str | None:
    """An ISO 8601 UTC timestamp from the formats the collectors report, or None.

    Accepted: ISO 8601 (``T`` or space separated, with or without offset), an optional
    trailing `` UTC``, and a date alone. A time without an offset is taken as UTC, which is
    what vCenter and Satellite report.
    """
    raw = text(value)
    if raw is None:
        return None
    for suffix in _TIME_SUFFIXES:
        if raw.endswith(suffix):
            raw = raw[: -len(suffix)]
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat()


def first_line(value: Any) -> str | None:
    """The first non-placeholder line of a multi-line answer (virt-what prints one per layer)."""
    raw = text(value)
    if raw is None:
        return None
    for line in raw.splitlines():
        cleaned = text(line)
        if cleaned is not None:
            return cleaned
    return None


def join_macs(values: Iterable[str] | None) -> frozenset[str]:
    """The MAC addresses among ``values`` that may join records (see ``is_join_mac``)."""
    if not values:
        return frozenset()
    return frozenset(m for m in values if is_join_mac(m))
