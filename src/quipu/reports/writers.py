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

The tarball ``report_<id>.tar.gz`` holds one directory, ``report_<id>/``, with
``details.json`` and ``deployments.json`` (UTF-8, sorted keys, one system per line),
``deployments.csv`` and ``SHA256SUM``: one ``<hex digest>  <file name>`` line per file, so
``cd report_<id> && sha256sum -c SHA256SUM`` verifies the download.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import tarfile
import tempfile
import time
from collections.abc import Callable
from typing import IO, Any, BinaryIO, TextIO

from quipu.reports.fingerprint import FIELDS, LIST_FIELDS

DEPLOYMENT_CSV_COLUMNS: tuple[str, ...] = (*FIELDS, "sources")
"""The deployments CSV columns, in order (see the module docstring)."""

_SPOOL_BYTES = 32 * 1024 * 1024
"""Report files larger than this are staged on disk, not in memory, before archiving."""
_CHUNK = 1024 * 1024


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


def write_deployments_csv(deployments: dict[str, Any], out: TextIO) -> None:
    """Write the deployments report as CSV to ``out`` (open it with ``newline=""``)."""
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(DEPLOYMENT_CSV_COLUMNS)
    for system in deployments["system_fingerprints"]:
        writer.writerow([_cell(column, system.get(column)) for column in DEPLOYMENT_CSV_COLUMNS])


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


def build_tarball(
    *,
    details: dict[str, Any],
    deployments: dict[str, Any],
    out: BinaryIO,
    root: str | None = None,
    mtime: int | None = None,
) -> None:
    """Write the report download (gzip-compressed tar) to ``out``.

    ``root`` is the directory inside the archive, ``report_<report_id>`` by default;
    ``mtime`` stamps every member (now by default; pass one for byte-identical archives).
    """
    if root is None:
        root = f"report_{deployments['report_id']}"
    if not root or "/" in root or root in (".", ".."):
        raise ValueError(f"The report directory name {root!r} must be one plain path segment.")
    stamp = int(time.time()) if mtime is None else mtime
    writers: dict[str, Callable[[TextIO], None]] = {
        # report -> sources -> source -> facts -> one system's facts per line
        "details.json": lambda out_text: _write_file(details, out_text, open_levels=4),
        # report -> system_fingerprints -> one system per line
        "deployments.json": lambda out_text: _write_file(deployments, out_text, open_levels=2),
        "deployments.csv": lambda out_text: write_deployments_csv(deployments, out_text),
    }
    sums: list[str] = []
    # gzip stamps its own header too; giving it the same time keeps archives reproducible.
    with (
        gzip.GzipFile(filename="", fileobj=out, mode="wb", mtime=stamp) as compressed,
        tarfile.open(fileobj=compressed, mode="w", format=tarfile.PAX_FORMAT) as archive,
    ):
        archive.addfile(_member(root, size=0, mtime=stamp, directory=True))
        for name, write in writers.items():
            staged, size, digest = _staged(write)
            with staged:
                archive.addfile(_member(f"{root}/{name}", size=size, mtime=stamp), staged)
            sums.append(f"{digest}  {name}\n")
        checksum = "".join(sums).encode("ascii")
        archive.addfile(
            _member(f"{root}/SHA256SUM", size=len(checksum), mtime=stamp), io.BytesIO(checksum)
        )
