"""The details and deployments reports of a scan job, built from each source's raw facts."""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import json
import logging
import threading
from collections.abc import Iterable, Iterator
from typing import Any

from quipu.domain.source_types import source_type_of
from quipu.reports.fields import FIELDS, LIST_FIELDS
from quipu.reports.fingerprint import Fingerprint, fingerprint
from quipu.reports.merge import group_fingerprints, merge_fingerprints

logger = logging.getLogger(__name__)

_gc_lock = threading.Lock()
_gc_pauses = 0
_gc_was_enabled = False


@contextlib.contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a report is built.

    A report is made of trees (dicts, lists, tuples) with no reference cycles, so the
    collector finds nothing to free; yet every full pass walks the whole growing heap, and at
    100,000 systems those passes cost half the build and make its time grow faster than the
    system count. Reference counting still frees everything as usual. Builds in several
    threads share one pause; the collector resumes, if it ran before, when the last one ends.
    """
    global _gc_pauses, _gc_was_enabled
    with _gc_lock:
        if _gc_pauses == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_pauses += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pauses -= 1
            if _gc_pauses == 0 and _gc_was_enabled:
                gc.enable()


@dataclasses.dataclass(frozen=True)
class SourceFacts:
    """The raw facts one source reported: one dict per system, as the collector emitted it.

    ``facts`` may be any iterable (a database cursor, a generator); each report reads it once.
    """

    source_name: str
    source_type: str
    server_id: str
    facts: Iterable[dict[str, Any]]


def build_details(
    *, report_id: int, sources: Iterable[SourceFacts], report_version: str, platform_id: str
) -> dict[str, Any]:
    """The details report: every system's raw facts, grouped by source, in the order given."""
    report_sources = []
    for source in sources:
        kind = source_type_of(source.source_type)
        report_sources.append(
            {
                "server_id": source.server_id,
                "source_name": source.source_name,
                "source_type": kind.value,
                "report_version": report_version,
                "facts": list(source.facts),
            }
        )
    logger.info(
        "Report %s: details of %d systems from %d sources.",
        report_id,
        sum(len(s["facts"]) for s in report_sources),
        len(report_sources),
    )
    return {
        "report_id": report_id,
        "report_type": "details",
        "report_version": report_version,
        "report_platform_id": platform_id,
        "sources": report_sources,
    }


def build_deployments(
    *, report_id: int, sources: Iterable[SourceFacts], report_version: str, platform_id: str
) -> dict[str, Any]:
    """The deployments report: one merged system fingerprint per real system.

    ``system_fingerprints`` is sorted by name, then identifiers, so the same facts give the
    same report whatever order they arrived in. Fingerprints share their metadata (see
    ``merge_fingerprints``): treat the report as read-only. The cyclic garbage collector is
    paused while the report is built (``cyclic_gc_paused``), ``sources`` iteration included.
    """
    with cyclic_gc_paused():
        fingerprints: list[Fingerprint] = [
            fp
            for source in sources
            for facts in source.facts
            if (
                fp := fingerprint(
                    source_name=source.source_name, source_type=source.source_type, facts=facts
                )
            )
            is not None
        ]
        records = len(fingerprints)
        groups = group_fingerprints(fingerprints)
        members_per_system = [[fingerprints[position] for position in group] for group in groups]
        del fingerprints, groups
        shared: dict[tuple[Any, ...], dict[str, Any]] = {}
        systems: list[dict[str, Any]] = []
        while members_per_system:
            # Popping lets each system's fingerprints go as soon as it is merged.
            systems.append(merge_fingerprints(members_per_system.pop(), shared=shared))
        sort_systems(systems)
    logger.info(
        "Report %s: %d system fingerprints from %d source records.",
        report_id,
        len(systems),
        records,
    )
    return {
        "report_id": report_id,
        "report_type": "deployments",
        "report_version": report_version,
        "report_platform_id": platform_id,
        "system_fingerprints": systems,
    }


_ORDER_FIELDS = (
    "name",
    "bios_uuid",
    "vm_uuid",
    "subscription_manager_id",
    "etc_machine_id",
    "mac_addresses",
    "ip_addresses",
)


def _order_key(system: dict[str, Any]) -> tuple[Any, ...]:
    parts: list[Any] = []
    for field in _ORDER_FIELDS:
        value = system[field]
        parts.append(tuple(value or ()) if field in LIST_FIELDS else (value or ""))
    parts.append(tuple((s["source_type"], s["source_name"]) for s in system["sources"]))
    return tuple(parts)


def _full_key(system: dict[str, Any]) -> str:
    return json.dumps([system[field] for field in FIELDS], sort_keys=True, default=str)


def sort_systems(systems: list[dict[str, Any]]) -> None:
    """Sort merged system fingerprints into report order, in place.

    Systems equal on every identifier (none known, say) are ordered by all their fields, so
    the order never falls back to arrival order.
    """
    keys = [_order_key(system) for system in systems]
    order = sorted(range(len(systems)), key=keys.__getitem__)
    result: list[dict[str, Any]] = []
    start = 0
    while start < len(order):
        end = start + 1
        while end < len(order) and keys[order[end]] == keys[order[start]]:
            end += 1
        run = [systems[i] for i in order[start:end]]
        if len(run) > 1:
            run.sort(key=_full_key)
        result.extend(run)
        start = end
    systems[:] = result
