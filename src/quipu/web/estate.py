"""The deployments tables of the report pages, parsed once per report and kept.

A stored report never changes, so the systems of its deployments report are read from the
stored blob once (without their provenance, see ``services.reports.systems``) into a
compact row each: only the columns the table shows and what its search, filters and sort
read. Tables are kept in a small LRU by report id, bounded by the rows it holds, so a few
reports of 100,000 systems fit and a page of one costs a filter and a slice, not a parse.

One system's whole record (every fact and its provenance) is read again from the blob when
its page is opened, and the raw facts its sources gave from the details report.
"""

from __future__ import annotations

import bisect
import dataclasses
import gzip
import io
import itertools
import json
import threading
from array import array
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from quipu.domain.errors import InvalidInput
from quipu.reports import fingerprint
from quipu.reports import values as v
from quipu.reports.fields import FIELDS, LIST_FIELDS
from quipu.services import reports
from quipu.store import Store

ROWS_BUDGET = 400_000
"""The LRU keeps tables while they hold at most this many rows in all (the newest one is
always kept): four reports of 100,000 systems, some 50 to 70 MiB each (``bench.ui``)."""

SORTS = (
    "name",
    "os_name",
    "os_release",
    "architecture",
    "cpu_count",
    "infrastructure_type",
    "ip_addresses",
    "sources",
)
"""The columns a table can be sorted by (query string ``sort``)."""

NONE = "(none)"
"""The filter value that picks systems with no value for the field."""


class Row:
    """One system of a deployments table: what its row shows and what finds it."""

    __slots__ = (
        "architecture",
        "cpu_count",
        "infrastructure_type",
        "ip_addresses",
        "name",
        "number",
        "os_name",
        "os_release",
        "sources",
    )

    def __init__(self, number: int, system: Mapping[str, Any], shared: dict[Any, Any]) -> None:
        self.number = number
        """The system's place in the report, from 1 (its page's address)."""
        self.name: str | None = _text(system.get("name"))
        self.os_name: str | None = _shared(shared, _text(system.get("os_name")))
        self.os_release: str | None = _shared(shared, _text(system.get("os_release")))
        self.architecture: str | None = _shared(shared, _text(system.get("architecture")))
        cpus = system.get("cpu_count")
        self.cpu_count: int | None = cpus if isinstance(cpus, int) else None
        self.infrastructure_type: str | None = _shared(
            shared, _text(system.get("infrastructure_type"))
        )
        self.ip_addresses: tuple[str, ...] = tuple(str(a) for a in system.get("ip_addresses") or ())
        self.sources: tuple[tuple[str, str], ...] = _shared(
            shared,
            tuple(
                (str(s.get("source_type", "")), str(s.get("source_name", "")))
                for s in system.get("sources") or ()
                if isinstance(s, Mapping)
            ),
        )

    @property
    def source_types(self) -> list[str]:
        return sorted({kind for kind, _ in self.sources})

    def haystack(self) -> str:
        """What a search looks in: every text the row shows, in lower case."""
        return "\n".join(
            part
            for part in (
                self.name,
                self.os_name,
                self.os_release,
                self.architecture,
                self.infrastructure_type,
                *self.ip_addresses,
                *(name for _, name in self.sources),
                *(kind for kind, _ in self.sources),
            )
            if part
        ).casefold()


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def _shared(shared: dict[Any, Any], value: Any) -> Any:
    """One object per distinct value: most systems share their OS, type and sources."""
    return shared.setdefault(value, value)


def _sort_key(column: str) -> Callable[[Row], Any]:
    if column == "cpu_count":
        return lambda row: row.cpu_count
    if column == "ip_addresses":
        return lambda row: v.ip_sort_key(row.ip_addresses[0]) if row.ip_addresses else None
    if column == "sources":
        return lambda row: tuple(name.casefold() for _, name in row.sources) or None
    return lambda row: (getattr(row, column) or "").casefold() or None


@dataclasses.dataclass
class Table:
    """The rows of one report's deployments, with the counts its filters and chart show."""

    report_id: int
    rows: list[Row]
    os_names: list[tuple[str, int]]
    """Systems per OS name (``NONE`` for unknown), most first."""
    infrastructure_types: list[tuple[str, int]]
    source_types: list[tuple[str, int]]
    """Systems per source type that saw them, most first."""
    _orders: dict[tuple[str, bool], array[int]] = dataclasses.field(default_factory=dict)
    _lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)
    _haystacks: list[str] = dataclasses.field(default_factory=list)
    _details: list[DetailsIndex | None] = dataclasses.field(default_factory=list)
    _details_lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)

    def haystacks(self) -> list[str]:
        """Each row's search text (``Row.haystack``), made on the first search and kept."""
        with self._lock:
            if not self._haystacks and self.rows:
                self._haystacks = [row.haystack() for row in self.rows]
            return self._haystacks

    def details_index(self, text: str) -> DetailsIndex | None:
        """The index of this report's details (``text``), made on first use and kept."""
        with self._details_lock:
            if not self._details:
                self._details.append(index_details(text))
            return self._details[0]

    def order(self, column: str, *, descending: bool) -> Sequence[int]:
        """Positions of the rows by ``column`` (computed once per column and direction);
        unknown values last either way, in report order."""
        wanted = (column, descending)
        with self._lock:
            found = self._orders.get(wanted)
            if found is None:
                key = _sort_key(column)
                keys = [key(row) for row in self.rows]
                known = sorted(
                    (i for i, k in enumerate(keys) if k is not None),
                    key=keys.__getitem__,
                    reverse=descending,
                )
                unknown = [i for i, k in enumerate(keys) if k is None]
                found = self._orders[wanted] = array("l", known + unknown)
        return found


@dataclasses.dataclass(frozen=True)
class Query:
    """What a report page asks of its table: search, filters, sort and page."""

    search: str = ""
    os_name: str = ""
    infrastructure_type: str = ""
    source_type: str = ""
    sort: str = "name"
    descending: bool = False
    per_page: int = 50
    page_no: int = 1


@dataclasses.dataclass(frozen=True)
class Found:
    count: int
    rows: list[Row]
    page_no: int
    pages: int


def _matches(table: Table, query: Query) -> Callable[[int], bool] | None:
    """A test of the row at a position, or None when every row matches."""
    rows = table.rows
    tests: list[Callable[[int], bool]] = []
    if query.search:
        needle = query.search.casefold()
        haystacks = table.haystacks()
        tests.append(lambda i: needle in haystacks[i])
    if query.os_name:
        os_name = None if query.os_name == NONE else query.os_name
        tests.append(lambda i: rows[i].os_name == os_name)
    if query.infrastructure_type:
        kind = None if query.infrastructure_type == NONE else query.infrastructure_type
        tests.append(lambda i: rows[i].infrastructure_type == kind)
    if query.source_type:
        seen_by = query.source_type
        tests.append(lambda i: any(k == seen_by for k, _ in rows[i].sources))
    if not tests:
        return None
    if len(tests) == 1:
        return tests[0]
    return lambda i: all(test(i) for test in tests)


def select(table: Table, query: Query) -> Found:
    """One page of the rows ``query`` finds, in its order, and how many it found."""
    order = table.order(query.sort if query.sort in SORTS else "name", descending=query.descending)
    rows = table.rows
    test = _matches(table, query)
    if test is None:
        count = len(rows)
        positions: Sequence[int] = order
    else:
        positions = [i for i in order if test(i)]
        count = len(positions)
    pages = max(1, -(-count // query.per_page))
    page_no = min(max(1, query.page_no), pages)
    start = (page_no - 1) * query.per_page
    shown = [rows[i] for i in positions[start : start + query.per_page]]
    return Found(count=count, rows=shown, page_no=page_no, pages=pages)


def parse(report_id: int, systems: Iterable[Mapping[str, Any]]) -> Table:
    """The table of a report's systems (in report order)."""
    shared: dict[Any, Any] = {}
    rows = [Row(number, system, shared) for number, system in enumerate(systems, start=1)]
    os_names: Counter[str] = Counter(row.os_name or NONE for row in rows)
    kinds: Counter[str] = Counter(row.infrastructure_type or NONE for row in rows)
    seen_by: Counter[str] = Counter(kind for row in rows for kind in {k for k, _ in row.sources})
    return Table(
        report_id=report_id,
        rows=rows,
        os_names=os_names.most_common(),
        infrastructure_types=kinds.most_common(),
        source_types=seen_by.most_common(),
    )


class Cache:
    """Tables by report id, least recently used first out, within ``ROWS_BUDGET`` rows."""

    def __init__(self, *, rows_budget: int = ROWS_BUDGET) -> None:
        self.rows_budget = rows_budget
        self._tables: OrderedDict[int, Table] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[int, threading.Lock] = {}

    def __len__(self) -> int:
        return len(self._tables)

    def clear(self) -> None:
        with self._lock:
            self._tables.clear()

    def table(self, store: Store, *, report_id: int) -> Table:
        """The table of report ``report_id``, parsed from its blob on first use; NotFound
        when there is no such report."""
        with self._lock:
            found = self._tables.get(report_id)
            if found is not None:
                self._tables.move_to_end(report_id)
                return found
            loading = self._loading.setdefault(report_id, threading.Lock())
        # One parse per report: a second request waits for the first one's table.
        try:
            with loading:
                with self._lock:
                    found = self._tables.get(report_id)
                if found is None:
                    found = parse(report_id, reports.summaries(store, report_id=report_id))
                    self._keep(found)
        finally:
            with self._lock:
                self._loading.pop(report_id, None)
        return found

    def _keep(self, table: Table) -> None:
        with self._lock:
            self._tables[table.report_id] = table
            self._tables.move_to_end(table.report_id)
            held = sum(len(t.rows) for t in self._tables.values())
            while len(self._tables) > 1 and held > self.rows_budget:
                _, dropped = self._tables.popitem(last=False)
                held -= len(dropped.rows)


CACHE = Cache()
"""The process's tables (each ingest node keeps its own)."""


def deployments_blob(store: Store, *, report_id: int) -> bytes:
    with store.transaction() as s:
        return reports._deployments_blob(s, report_id=report_id)


def system_at(store: Store, *, report_id: int, number: int) -> dict[str, Any] | None:
    """System ``number`` (from 1) of a report's deployments, whole with its ``metadata``;
    None past the end. Lines before it are skipped unparsed."""
    if number < 1:
        return None
    blob = deployments_blob(store, report_id=report_id)
    with gzip.open(io.BytesIO(blob), "rt", encoding="utf-8", newline="\n") as text:
        head = text.readline()
        if head.rstrip("\n").endswith('"system_fingerprints": ['):
            line = next(itertools.islice(text, number - 1, None), None)
            if line is None:
                return None
            line = line.rstrip("\n")
            if line == "]}":
                return None
            found: dict[str, Any] = json.loads(line.removesuffix(","))
            return found
    return next(itertools.islice(reports.systems(blob), number - 1, None), None)


@dataclasses.dataclass(frozen=True)
class SourceRecords:
    """A source of a system, and the raw facts of its records that are this system's."""

    source_name: str
    source_type: str
    records: list[dict[str, Any]]
    more: int
    """Matching records beyond those kept (``RECORDS_PER_SOURCE``)."""


RECORDS_PER_SOURCE = 10


def _as_tuple(value: Any) -> tuple[Any, ...]:
    return tuple(value) if isinstance(value, list | tuple) else ()


def _belongs(record: Any, system: Mapping[str, Any]) -> bool:
    """Whether one raw record's fingerprint is one of ``system``'s members.

    A merged system's lists are the union of its members' (so a member's MACs, addresses
    and products are among the system's), and a member shares an identifier with it: name,
    BIOS or VM UUID, subscription id, machine id, or a MAC address that joins records.
    """
    values = dict(zip(FIELDS, record.values, strict=True))
    for field in LIST_FIELDS:
        if values[field] and not set(values[field]) <= set(_as_tuple(system.get(field))):
            return False
    for field in ("bios_uuid", "vm_uuid", "subscription_manager_id", "etc_machine_id"):
        if values[field] is not None and values[field] == system.get(field):
            return True
    name = values["name"]
    if isinstance(name, str) and name.casefold() == str(system.get("name") or "").casefold():
        return True
    return bool(v.join_macs(values["mac_addresses"]) & set(_as_tuple(system.get("mac_addresses"))))


@dataclasses.dataclass(frozen=True)
class DetailsIndex:
    """Where each record of a stored details report is in its text, kept beside a table so
    that a system's page parses only the records that may be its own."""

    starts: array[int]
    ends: array[int]
    firsts: array[int]
    """The position of each source's first record, in report order."""
    sources: list[tuple[str, str]]
    """(source type, source name) of each source, in report order."""

    def source_of(self, position: int) -> tuple[str, str]:
        return self.sources[bisect.bisect_right(self.firsts, position) - 1]


_SOURCES = '"sources": ['
_FACTS = '{"facts": ['


def index_details(text: str) -> DetailsIndex | None:
    """The index of a details report as ``services.reports`` stores it (``json.dumps`` with
    sorted keys: ``sources`` last, ``facts`` first in each source); None for any other
    layout. Each record is decoded once, to find its end, and dropped."""
    decoder = json.JSONDecoder()
    starts: array[int] = array("q")
    ends: array[int] = array("q")
    firsts: array[int] = array("q")
    sources: list[tuple[str, str]] = []
    pos = text.find(_SOURCES)
    if pos < 0:
        return None
    pos += len(_SOURCES)
    try:
        while not text.startswith("]}", pos):
            if not text.startswith(_FACTS, pos):
                return None
            pos += len(_FACTS)
            firsts.append(len(starts))
            while not text.startswith("]", pos):
                _, end = decoder.raw_decode(text, pos)
                starts.append(pos)
                ends.append(end)
                pos = end + 2 if text.startswith(", ", end) else end
            # the rest of the source: a few short scalars, then "}"
            pos += 1
            if text.startswith(", ", pos):
                rest, used = decoder.raw_decode("{" + text[pos + 2 : pos + 2 + 8192])
                pos += 2 + used - 1
            elif text.startswith("}", pos):
                rest, pos = {}, pos + 1
            else:
                return None
            sources.append((str(rest.get("source_type")), str(rest.get("source_name"))))
            if text.startswith(", ", pos):
                pos += 2
    except ValueError:
        return None
    return DetailsIndex(starts=starts, ends=ends, firsts=firsts, sources=sources)


TOKEN_HITS = 5_000
"""A search token found more often than this tells nothing (a short name): it is skipped."""


def _tokens(system: Mapping[str, Any]) -> set[str]:
    """Texts that a record of this system very likely holds somewhere: its identifiers,
    addresses and name (lower case; the records are searched in lower case)."""
    found: set[str] = set()
    for field in (
        "name",
        "bios_uuid",
        "vm_uuid",
        "subscription_manager_id",
        "etc_machine_id",
        "vm_dns_name",
    ):
        value = system.get(field)
        if isinstance(value, str):
            found.add(value.lower())
    name = system.get("name")
    if isinstance(name, str) and "." in name:
        found.add(name.split(".", 1)[0].lower())
    for field in ("ip_addresses", "mac_addresses"):
        found.update(str(item).lower() for item in _as_tuple(system.get(field)))
    return {token for token in found if len(token) >= 3}


def _candidates(lowered: str, index: DetailsIndex, tokens: Iterable[str]) -> set[int]:
    """Positions of the records holding any of ``tokens``."""
    positions: set[int] = set()
    for token in tokens:
        hits: set[int] = set()
        at = lowered.find(token)
        while at >= 0 and len(hits) <= TOKEN_HITS:
            position = bisect.bisect_right(index.starts, at) - 1
            if position >= 0 and at < index.ends[position]:
                hits.add(position)
            at = lowered.find(token, at + len(token))
        if len(hits) <= TOKEN_HITS:
            positions |= hits
    return positions


def raw_facts(
    store: Store, *, report_id: int, system: Mapping[str, Any], table: Table | None = None
) -> list[SourceRecords]:
    """For each source of ``system``, the raw facts (details report) of its records that
    are this system's (see ``_belongs``).

    With ``table``, the details report's record index is kept on it (built on first use),
    and only the records that hold one of the system's identifiers, addresses or name are
    parsed; otherwise (or for a layout the index does not know) the whole report is.
    """
    wanted = {
        (str(s.get("source_type")), str(s.get("source_name")))
        for s in system.get("sources") or ()
        if isinstance(s, Mapping)
    }
    text = reports.details_json(store, report_id=report_id).decode()
    index = table.details_index(text) if table is not None and text.isascii() else None
    records: dict[tuple[str, str], list[dict[str, Any]]] = {}

    def consider(key: tuple[str, str], facts: Any) -> None:
        if key not in wanted or not isinstance(facts, dict):
            return
        try:
            print_ = fingerprint(source_name=key[1], source_type=key[0], facts=facts)
        except InvalidInput:
            return
        if print_ is not None and _belongs(print_, system):
            records.setdefault(key, []).append(facts)

    if index is not None:
        lowered = text.lower()
        for position in sorted(_candidates(lowered, index, _tokens(system))):
            key = index.source_of(position)
            if key in wanted:
                consider(key, json.loads(text[index.starts[position] : index.ends[position]]))
    else:
        details = json.loads(text)
        del text
        for source in details.get("sources") or ():
            key = (str(source.get("source_type")), str(source.get("source_name")))
            if key in wanted:
                for facts in source.get("facts") or ():
                    consider(key, facts)
    return [
        SourceRecords(
            source_name=name,
            source_type=kind,
            records=records.get((kind, name), [])[:RECORDS_PER_SOURCE],
            more=max(0, len(records.get((kind, name), [])) - RECORDS_PER_SOURCE),
        )
        for kind, name in sorted(wanted)
    ]


def shown(value: Any) -> str:
    """A fact's value as one line of text: strings as they are, lists joined, the rest as
    JSON (escaped by the template like anything else)."""
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return ", ".join(value)
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def bars(counts: Sequence[tuple[str, int]], *, top: int = 8) -> list[tuple[str, int, int]]:
    """(label, count, percent of the largest) for a chart, the rest summed as "other"."""
    kept = list(counts[:top])
    rest = sum(n for _, n in counts[top:])
    if rest:
        kept.append(("other", rest))
    largest = max((n for _, n in kept), default=0)
    return [(label, n, round(100 * n / largest) if largest else 0) for label, n in kept]
