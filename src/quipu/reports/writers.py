"""Report files: the deployments CSV and the download tarball with its SHA256SUM.

The deployments CSV has one header row, then one row per system fingerprint, with exactly
these columns in this order (``DEPLOYMENT_CSV_COLUMNS``)::

    name, os_name, os_release, os_version, architecture,
    cpu_count, cpu_socket_count, cpu_core_count, system_memory_bytes,
    infrastructure_type, virtualized_type, cloud_provider,
    is_redhat, redhat_package_count, installed_products,
    subscription_manager_id, bios_uuid, etc_machine_id, ip_addresses, mac_addresses,
    vm_uuid, vm_state, vm_dns_name, vm_host, vm_host_socket_count, vm_host_core_count,
    vm_host_cpu_threads, vm_cluster, vm_datacenter,
    system_last_checkin_date, sources

An unknown value is an empty cell; booleans are ``true``/``false``; lists
(``installed_products``, ``ip_addresses``, ``mac_addresses``) are joined with ``;``;
``sources`` lists ``name (type)`` entries joined with ``;``. Where each value came from is
in the JSON report's ``metadata``, not in the CSV.

The details CSV is the established server's: a header row (``Report ID``, ``Report Type``,
``Report Version``, ``Report Platform ID``, ``Number Sources``) and its values, then per
source a ``Source`` block (server id, name, type) and a ``Facts`` block whose columns are the
sorted fact names of that source; lists print as ``[a;b]``, dicts as ``{k:v;...}``, and commas
and line breaks inside a value become ``;`` (``write_details_csv``).

The download ``report_id_<id>.tar.gz`` holds one directory, ``report_id_<id>/``, with
``aggregate.json``, ``details.json`` and ``deployments.json`` (UTF-8, sorted keys, one system
per line), ``details.csv``, ``deployments.csv``, the insights tarball ``insights.tar.gz``
when the report has hosts for it (see ``insights``), and ``SHA256SUM``: one
``<hex digest>  <file name>`` line per file, so ``cd report_id_<id> && sha256sum -c
SHA256SUM`` verifies the download.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import re
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from typing import IO, Any, BinaryIO, TextIO

from quipu.reports.fields import FIELDS, LIST_FIELDS

DEPLOYMENT_CSV_COLUMNS: tuple[str, ...] = (*FIELDS, "sources")
"""The deployments CSV columns, in order (see the module docstring)."""

_SPOOL_BYTES = 32 * 1024 * 1024
"""Report files larger than this are staged on disk, not in memory, before archiving."""
_CHUNK = 1024 * 1024
INSIGHTS_FILE = "insights.tar.gz"
"""The insights tarball's name inside the download."""


def _cell(column: str, value: Any) -> str:
    if value is None:
        return ""
    if column == "sources":
        return ";".join(f"{s['source_name']} ({s['source_type']})" for s in value)
    if column in LIST_FIELDS:
        return ";".join(str(item) for item in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[-+]?\d+(\.\d+)?")


def _neutral(cell: Any) -> Any:
    """A cell a spreadsheet would run as a formula (``=HYPERLINK(...)`` in a system's name)
    gets a leading ``'``, so it is shown as the text it is; numbers are left alone."""
    if isinstance(cell, str) and cell.startswith(_FORMULA_STARTS) and not _NUMBER.fullmatch(cell):
        return "'" + cell
    return cell


class _CsvWriter:
    """``csv.writer`` whose cells never start a spreadsheet formula."""

    def __init__(self, out: TextIO) -> None:
        self._writer = csv.writer(out, lineterminator="\r\n")

    def writerow(self, row: Iterable[Any]) -> None:
        self._writer.writerow([_neutral(cell) for cell in row])


def write_deployments_csv(deployments: dict[str, Any], out: TextIO) -> None:
    """Write the deployments report as CSV to ``out`` (open it with ``newline=""``)."""
    write_systems_csv(deployments["system_fingerprints"], out)


def write_systems_csv(systems: Iterable[dict[str, Any]], out: TextIO) -> None:
    """Write system fingerprints (read once) as the deployments CSV to ``out``."""
    writer = _CsvWriter(out)
    writer.writerow(DEPLOYMENT_CSV_COLUMNS)
    for system in systems:
        writer.writerow([_cell(column, system.get(column)) for column in DEPLOYMENT_CSV_COLUMNS])


def _details_cell(value: Any) -> Any:
    if isinstance(value, list):
        if not value:
            return ""
        return "[" + ";".join(str(_details_cell(item)) for item in value) + "]"
    if isinstance(value, dict):
        if not value:
            return ""
        return "{" + ";".join(f"{k}:{_details_cell(v)}" for k, v in value.items()) + "}"
    return value


def _details_value(value: Any) -> Any:
    """One details CSV cell: lists and dicts flattened, separators inside text made ``;``."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if not isinstance(value, str):
        value = _details_cell(value)
        if not isinstance(value, str):
            return value
    return value.replace(",", ";").replace("\r", ";").replace("\n", ";")


def write_details_csv(details: dict[str, Any], out: TextIO) -> None:
    """Write the details report as CSV to ``out`` (open it with ``newline=""``)."""
    writer = _CsvWriter(out)
    sources = details.get("sources") or []
    writer.writerow(
        ["Report ID", "Report Type", "Report Version", "Report Platform ID", "Number Sources"]
    )
    writer.writerow(
        [
            details.get("report_id"),
            details.get("report_type", "details"),
            details.get("report_version"),
            details.get("report_platform_id"),
            len(sources),
        ]
    )
    writer.writerow([])
    writer.writerow([])
    for source in sources:
        writer.writerow(["Source"])
        writer.writerow(["Server Identifier", "Source Name", "Source Type"])
        writer.writerow(
            [source.get("server_id"), source.get("source_name"), source.get("source_type")]
        )
        writer.writerow(["Facts"])
        facts = source.get("facts") or []
        if not facts:
            writer.writerow([])
            continue
        headers = sorted({key for fact in facts for key in fact})
        writer.writerow(headers)
        for fact in facts:
            writer.writerow([_details_value(fact.get(h)) for h in headers])
        writer.writerow([])
        writer.writerow([])


def write_json(value: Any, out: TextIO, *, open_levels: int) -> None:
    """Write ``value`` as JSON with sorted keys, one list item per line down to a depth.

    The outer ``open_levels`` levels of dicts and lists are written piece by piece, each list
    item on its own line; deeper values go through ``json.dumps`` whole. That keeps the C
    encoder's speed (``json.dump`` and any indent fall back to pure Python, minutes at 100,000
    systems) without holding the whole document as one string, and the files stay readable
    and diffable: one system, or one system's raw facts, per line.
    """
    if open_levels > 0 and isinstance(value, dict):
        out.write("{")
        for number, key in enumerate(sorted(value)):
            out.write(", " if number else "")
            out.write(json.dumps(key, ensure_ascii=False))
            out.write(": ")
            write_json(value[key], out, open_levels=open_levels - 1)
        out.write("}")
    elif open_levels > 0 and isinstance(value, list):
        out.write("[")
        for number, item in enumerate(value):
            out.write(",\n" if number else "\n")
            write_json(item, out, open_levels=open_levels - 1)
        out.write("\n]" if value else "]")
    else:
        out.write(json.dumps(value, sort_keys=True, ensure_ascii=False))


def _write_file(document: dict[str, Any], out: TextIO, *, open_levels: int) -> None:
    write_json(document, out, open_levels=open_levels)
    out.write("\n")


def _staged(write: Callable[[TextIO], None]) -> tuple[IO[bytes], int, str]:
    """A rewound file holding what ``write`` wrote as UTF-8, its size and SHA-256 digest."""
    spool = tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES, mode="w+b")
    text = io.TextIOWrapper(spool, encoding="utf-8", newline="", write_through=True)
    write(text)
    text.flush()
    text.detach()
    size = spool.tell()
    spool.seek(0)
    digest = hashlib.sha256()
    while chunk := spool.read(_CHUNK):
        digest.update(chunk)
    spool.seek(0)
    return spool, size, digest.hexdigest()


def _member(name: str, *, size: int, mtime: int, directory: bool = False) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = 0 if directory else size
    info.mtime = mtime
    info.type = tarfile.DIRTYPE if directory else tarfile.REGTYPE
    info.mode = 0o755 if directory else 0o644
    return info


def tar_gz(files: Mapping[str, bytes], *, mtime: int) -> bytes:
    """``files`` (path in the archive -> content) as a .tar.gz, every member stamped ``mtime``.

    The established server answers ``Accept: application/json+gzip`` with one report so.
    """
    out = io.BytesIO()
    with (
        gzip.GzipFile(filename="", fileobj=out, mode="wb", compresslevel=6, mtime=mtime) as raw,
        tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as archive,
    ):
        for name, content in files.items():
            archive.addfile(_member(name, size=len(content), mtime=mtime), io.BytesIO(content))
    return out.getvalue()


FileWriter = Callable[[TextIO], None]
"""Writes one file of the download as text; staged as UTF-8 and checksummed."""


def write_download(
    *,
    files: Mapping[str, FileWriter | bytes],
    out: BinaryIO,
    root: str,
    mtime: int | None = None,
    compresslevel: int = 6,
) -> None:
    """Write ``files`` (by name, in order) and their SHA256SUM as a .tar.gz under ``root``.

    Each file is either its bytes or a function writing its text; ``mtime`` stamps every
    member (now by default; pass one for byte-identical archives).
    """
    if not root or "/" in root or root in (".", ".."):
        raise ValueError(f"The report directory name {root!r} must be one plain path segment.")
    stamp = int(time.time()) if mtime is None else mtime
    sums: list[str] = []
    # gzip stamps its own header too; giving it the same time keeps archives reproducible.
    with (
        gzip.GzipFile(
            filename="", fileobj=out, mode="wb", compresslevel=compresslevel, mtime=stamp
        ) as compressed,
        tarfile.open(fileobj=compressed, mode="w", format=tarfile.PAX_FORMAT) as archive,
    ):
        archive.addfile(_member(root, size=0, mtime=stamp, directory=True))
        for name, content in files.items():
            if isinstance(content, bytes):
                archive.addfile(
                    _member(f"{root}/{name}", size=len(content), mtime=stamp),
                    io.BytesIO(content),
                )
                sums.append(f"{hashlib.sha256(content).hexdigest()}  {name}\n")
                continue
            staged, size, digest = _staged(content)
            with staged:
                archive.addfile(_member(f"{root}/{name}", size=size, mtime=stamp), staged)
            sums.append(f"{digest}  {name}\n")
        checksum = "".join(sums).encode("ascii")
        archive.addfile(
            _member(f"{root}/SHA256SUM", size=len(checksum), mtime=stamp), io.BytesIO(checksum)
        )


def download_files(
    *,
    details: dict[str, Any],
    deployments: dict[str, Any] | FileWriter,
    deployments_csv: FileWriter | None = None,
    aggregate: dict[str, Any] | None = None,
    insights: bytes | None = None,
) -> dict[str, FileWriter | bytes]:
    """The files of the download in order; ``deployments`` is the report or its file writer
    (then ``deployments_csv`` writes the CSV)."""
    files: dict[str, FileWriter | bytes] = {}
    if aggregate is not None:
        files["aggregate.json"] = lambda out_text: _write_file(aggregate, out_text, open_levels=0)
    # report -> sources -> source -> facts -> one system's facts per line
    files["details.json"] = lambda out_text: _write_file(details, out_text, open_levels=4)
    if callable(deployments):
        if deployments_csv is None:
            raise ValueError("A deployments file writer needs its CSV writer beside it.")
        files["deployments.json"] = deployments
        csv_writer: FileWriter = deployments_csv
    else:
        report = deployments
        # report -> system_fingerprints -> one system per line
        files["deployments.json"] = lambda out_text: _write_file(report, out_text, open_levels=2)
        csv_writer = lambda out_text: write_deployments_csv(report, out_text)  # noqa: E731
    files["details.csv"] = lambda out_text: write_details_csv(details, out_text)
    files["deployments.csv"] = csv_writer
    if insights is not None:
        files[INSIGHTS_FILE] = insights
    return files


def build_tarball(
    *,
    details: dict[str, Any],
    deployments: dict[str, Any],
    out: BinaryIO,
    aggregate: dict[str, Any] | None = None,
    insights: bytes | None = None,
    root: str | None = None,
    mtime: int | None = None,
) -> None:
    """Write the report download (gzip-compressed tar) to ``out``.

    ``aggregate`` and ``insights`` (the insights tarball) are included when given. ``root`` is
    the directory inside the archive, ``report_id_<report_id>`` by default; ``mtime`` stamps
    every member (now by default; pass one for byte-identical archives).
    """
    write_download(
        files=download_files(
            details=details, deployments=deployments, aggregate=aggregate, insights=insights
        ),
        out=out,
        root=f"report_id_{deployments['report_id']}" if root is None else root,
        mtime=mtime,
    )
