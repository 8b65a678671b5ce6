"""Network source hosts: the forms an operator may write, their expansion and wire ranges.

Forms: an IPv4 address (``10.0.0.5``), a CIDR block (``10.0.0.0/24``, every address of it,
as nmap scans it), a dash range (``10.0.0.1-10.0.0.20``), a bracket range
(``10.0.[1:3].[1:100]``, brackets in any octets) and a host name (kept as a name and
resolved when the scan runs, by :func:`resolve`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import itertools
import logging
import re
import socket
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Sequence

from quipu.domain.errors import InvalidInput

logger = logging.getLogger(__name__)

ALLOWED_FORMS = (
    "an IPv4 address (10.0.0.5), a CIDR block (10.0.0.0/24), a dash range "
    "(10.0.0.1-10.0.0.20), a bracket range (10.0.0.[1:100]) or a host name (db1.example.com)"
)
DEFAULT_LIMIT = 65536

_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_BRACKET_PART = re.compile(rf"(?:(?P<octet>{_OCTET})|\[(?P<low>{_OCTET}):(?P<high>{_OCTET})\])")
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")

Interval = tuple[int, int]
"""First and last address, inclusive, as integers."""


@dataclasses.dataclass(frozen=True, slots=True)
class _Name:
    name: str

    @property
    def key(self) -> str:
        return self.name.lower().rstrip(".")


@dataclasses.dataclass(frozen=True, slots=True)
class _Addresses:
    """Addresses as intervals, produced lazily: a bracket range may hold millions."""

    octets: tuple[tuple[int, int], ...]
    """For a bracket range: each octet's low and high; empty for a single interval."""
    interval: Interval = (0, -1)

    @property
    def count(self) -> int:
        if not self.octets:
            return self.interval[1] - self.interval[0] + 1
        count = 1
        for low, high in self.octets:
            count *= high - low + 1
        return count

    def intervals(self) -> Iterator[Interval]:
        if not self.octets:
            yield self.interval
            return
        *leading, (low, high) = self.octets
        for prefix in itertools.product(*(range(a, b + 1) for a, b in leading)):
            base = (prefix[0] << 24) | (prefix[1] << 16) | (prefix[2] << 8)
            yield base + low, base + high


def _invalid(entry: str, *, field: str, why: str = "") -> InvalidInput:
    reason = f" ({why})" if why else ""
    return InvalidInput(
        f"{field} entry {entry!r} is not valid{reason}; use {ALLOWED_FORMS}.", field=field
    )


def _text(value: int) -> str:
    # A third of the cost of str(IPv4Address(value)); expansions run to 65,536 and more.
    return socket.inet_ntoa(value.to_bytes(4, "big"))


def _address(text: str) -> int | None:
    try:
        return int(ipaddress.IPv4Address(text))
    except ValueError:
        return None


def _parse(entry: str, *, field: str) -> _Name | _Addresses:
    text = entry.strip()
    if not text:
        raise _invalid(entry, field=field, why="empty")
    if ":" in text and "[" not in text:
        raise _invalid(entry, field=field, why="IPv6 is not supported")
    if "[" in text:
        return _parse_brackets(entry, text=text, field=field)
    if "/" in text:
        try:
            network = ipaddress.IPv4Network(text, strict=False)
        except ValueError as error:
            raise _invalid(entry, field=field, why=str(error)) from None
        address = text.partition("/")[0]
        if ipaddress.IPv4Address(address) != network.network_address:
            # Silently widened, 127.0.171.5/24 would scan 255 systems meant as one (or none).
            raise _invalid(
                entry,
                field=field,
                why=f"host bits are set: write {network.with_prefixlen} for the network, or "
                f"{address} for the one system",
            )
        return _Addresses(octets=(), interval=(int(network[0]), int(network[-1])))
    single = _address(text)
    if single is not None:
        return _Addresses(octets=(), interval=(single, single))
    if "-" in text:
        first_text, _, last_text = text.partition("-")
        first, last = _address(first_text), _address(last_text)
        if first is not None and last is not None:
            if first > last:
                raise _invalid(entry, field=field, why="the range ends before it starts")
            return _Addresses(octets=(), interval=(first, last))
        if first is not None:
            raise _invalid(
                entry, field=field, why="a dash range needs a full address on both sides"
            )
    return _parse_name(entry, text=text, field=field)


def _parse_brackets(entry: str, *, text: str, field: str) -> _Addresses:
    parts = text.split(".")
    if len(parts) != 4:
        raise _invalid(entry, field=field, why="a bracket range needs four octets")
    octets = []
    for part in parts:
        match = _BRACKET_PART.fullmatch(part)
        if match is None:
            raise _invalid(entry, field=field, why=f"octet {part!r} is not 0-255 or [low:high]")
        if match["octet"] is not None:
            octets.append((int(match["octet"]), int(match["octet"])))
            continue
        low, high = int(match["low"]), int(match["high"])
        if low > high:
            raise _invalid(entry, field=field, why=f"{part} ends before it starts")
        octets.append((low, high))
    return _Addresses(octets=tuple(octets))


def _parse_name(entry: str, *, text: str, field: str) -> _Name:
    labels = text.removesuffix(".").split(".")
    if all(label.isdigit() for label in labels):
        raise _invalid(entry, field=field, why="not an IPv4 address")
    if len(text) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise _invalid(entry, field=field, why="not a host name")
    return _Name(text)


def validate_host(entry: str, *, field: str = "hosts") -> None:
    """Raise InvalidInput (naming ``field``, the entry and the allowed forms) unless
    ``entry`` is one of the forms a network source accepts."""
    _parse(entry, field=field)


def _merge(intervals: Iterable[Interval]) -> list[Interval]:
    merged: list[Interval] = []
    for first, last in sorted(intervals):
        if merged and first <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], last))
        else:
            merged.append((first, last))
    return merged


def _subtract(
    interval: Interval, *, excluded: list[Interval], starts: list[int]
) -> Iterator[Interval]:
    """Parts of ``interval`` outside the sorted, merged ``excluded`` intervals."""
    first, last = interval
    index = max(0, bisect_right(starts, first) - 1)
    while first <= last:
        if index >= len(excluded) or excluded[index][0] > last:
            yield first, last
            return
        ex_first, ex_last = excluded[index]
        if ex_last < first:
            index += 1
            continue
        if ex_first > first:
            yield first, ex_first - 1
        first = ex_last + 1
        index += 1


def expand(
    *,
    hosts: Sequence[str],
    exclude_hosts: Sequence[str] = (),
    limit: int = DEFAULT_LIMIT,
    allow_large: bool = False,
) -> list[str]:
    """Every system ``hosts`` names, in the order written, without duplicates or excluded
    ones; host names are kept as names (and excluded by name).

    Past ``limit`` systems raise InvalidInput unless ``allow_large``: a typo such as
    ``10.0.0.0/8`` for ``10.0.0.0/24`` would otherwise start a scan of 16 million.
    """
    included = [_parse(entry, field="hosts") for entry in hosts]
    excluded_entries = [_parse(entry, field="exclude_hosts") for entry in exclude_hosts]
    excluded_names = {entry.key for entry in excluded_entries if isinstance(entry, _Name)}
    excluded = _merge(
        interval
        for entry in excluded_entries
        if isinstance(entry, _Addresses)
        for interval in entry.intervals()
    )
    starts = [first for first, _ in excluded]
    systems: list[str] = []
    seen_addresses: set[int] = set()
    seen_names: set[str] = set()
    for entry in included:
        if isinstance(entry, _Name):
            if entry.key not in seen_names and entry.key not in excluded_names:
                seen_names.add(entry.key)
                systems.append(entry.name)
        else:
            for interval in entry.intervals():
                for first, last in _subtract(interval, excluded=excluded, starts=starts):
                    for value in range(first, last + 1):
                        if value not in seen_addresses:
                            seen_addresses.add(value)
                            systems.append(_text(value))
                            if len(systems) > limit and not allow_large:
                                raise _too_many(included, limit=limit)
    if len(systems) > limit and not allow_large:
        raise _too_many(included, limit=limit)
    return systems


def _too_many(included: list[_Name | _Addresses], *, limit: int) -> InvalidInput:
    total = sum(entry.count if isinstance(entry, _Addresses) else 1 for entry in included)
    return InvalidInput(
        f"hosts name more than {limit:,} systems ({total:,} before exclusions); split the "
        "source into smaller ones or pass --allow-large.",
        field="hosts",
    )


def split_targets(*, systems: list[str], size: int) -> list[list[str]]:
    """``systems`` in order, in chunks of ``size`` (the last may be shorter)."""
    if size < 1:
        raise ValueError(f"size must be at least 1 (got {size})")
    return [systems[start : start + size] for start in range(0, len(systems), size)]


def to_ranges(systems: Sequence[str]) -> list[str]:
    """The compact wire form of ``systems``: runs of consecutive IPv4 addresses become
    ``first-last``; other addresses and names stay as they are; order is kept."""
    ranges: list[str] = []
    run: list[int] = []

    def close() -> None:
        if run:
            first, last = _text(run[0]), _text(run[-1])
            ranges.append(first if len(run) == 1 else f"{first}-{last}")
            run.clear()

    for system in systems:
        value = _address(system)
        if value is None or _text(value) != system:
            close()
            ranges.append(system)
        elif run and value == run[-1] + 1:
            run.append(value)
        else:
            close()
            run.append(value)
    close()
    return ranges


def from_ranges(ranges: Sequence[str]) -> list[str]:
    """The systems of wire ranges (any host form), in order, exactly as ``to_ranges`` took
    them: nothing is dropped or merged."""
    systems: list[str] = []
    for entry in ranges:
        parsed = _parse(entry, field="targets")
        if isinstance(parsed, _Name):
            systems.append(parsed.name)
            continue
        for first, last in parsed.intervals():
            systems.extend(_text(value) for value in range(first, last + 1))
    return systems


async def resolve(
    *, names: Sequence[str], timeout: float = 5.0, concurrency: int = 16
) -> dict[str, str | None]:
    """The first IPv4 address of each name (an address maps to itself), or None for a name
    that does not resolve within ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(concurrency)

    async def one(name: str) -> str | None:
        if _address(name) is not None:
            return name
        async with gate:
            try:
                infos = await asyncio.wait_for(
                    loop.getaddrinfo(name, None, family=socket.AF_INET, type=socket.SOCK_STREAM),
                    timeout,
                )
            except (OSError, TimeoutError) as error:
                logger.info("host name %s does not resolve: %s", name, error)
                return None
        return str(infos[0][4][0]) if infos else None

    unique = list(dict.fromkeys(names))
    addresses = await asyncio.gather(*(one(name) for name in unique))
    return dict(zip(unique, addresses, strict=True))
