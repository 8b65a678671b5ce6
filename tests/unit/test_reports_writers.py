"""The deployments CSV and the report tarball with its SHA256SUM."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest

from quipu.reports import (
    DEPLOYMENT_CSV_COLUMNS,
    FIELDS,
    build_deployments,
    build_details,
    build_tarball,
    write_deployments_csv,
)
from quipu.reports.writers import write_details_csv, write_json
from tests.estates import estate, network, source


def reports(report_id: int = 9) -> tuple[dict[str, Any], dict[str, Any]]:
    details = build_details(
        report_id=report_id, sources=estate(), report_version="0.1.0", platform_id="p"
    )
    deployments = build_deployments(
        report_id=report_id, sources=estate(), report_version="0.1.0", platform_id="p"
    )
    return details, deployments


def csv_text(deployments: dict[str, Any]) -> str:
    out = io.StringIO(newline="")
    write_deployments_csv(deployments, out)
    return out.getvalue()


def test_csv_columns_are_the_documented_fields_then_sources() -> None:
    assert DEPLOYMENT_CSV_COLUMNS == (*FIELDS, "sources")
    assert DEPLOYMENT_CSV_COLUMNS[:5] == (
        "name",
        "os_name",
        "os_release",
        "os_version",
        "architecture",
    )
    assert len(set(DEPLOYMENT_CSV_COLUMNS)) == len(DEPLOYMENT_CSV_COLUMNS)


def test_csv_parses_with_the_documented_header_and_one_row_per_system() -> None:
    _, deployments = reports()
    reader = csv.DictReader(io.StringIO(csv_text(deployments), newline=""))
    rows = list(reader)
    assert tuple(reader.fieldnames or ()) == DEPLOYMENT_CSV_COLUMNS
    assert [row["name"] for row in rows] == [s["name"] for s in deployments["system_fingerprints"]]
    web = next(row for row in rows if row["name"] == "web1")
    assert web["cpu_count"] == "4"
    assert web["is_redhat"] == "true"
    assert web["vm_cluster"] == ""
    assert web["mac_addresses"] == "00:50:56:01:00:01;00:50:56:99:99:99"
    assert web["sources"] == "lab (network);sat (satellite);vc (vcenter)"
    assert web["infrastructure_type"] == "virtualized"


def test_csv_quotes_values_holding_separators_and_newlines() -> None:
    deployments = build_deployments(
        report_id=1,
        sources=[source("lab, east", "network", network(uname_hostname='odd,"name"\nx'))],
        report_version="1",
        platform_id="p",
    )
    (row,) = csv.DictReader(io.StringIO(csv_text(deployments), newline=""))
    assert row["name"] == 'odd,"name"\nx'
    assert row["sources"] == "lab, east (network)"
    assert row["is_redhat"] == ""


@pytest.mark.parametrize("name", ['=HYPERLINK("http://x")', "+1+2", "-2+3", "@SUM(A1)"])
def test_a_cell_that_would_start_a_formula_is_written_as_text(name: str) -> None:
    deployments = build_deployments(
        report_id=1,
        sources=[source("lab", "network", network(uname_hostname=name))],
        report_version="1",
        platform_id="p",
    )
    (row,) = csv.DictReader(io.StringIO(csv_text(deployments), newline=""))
    assert row["name"] == "'" + name
    details: dict[str, Any] = {"report_id": 1, "sources": [{"source_name": "=cmd|' /C calc'!A0"}]}
    out = io.StringIO(newline="")
    write_details_csv(details, out)
    assert "'=cmd|' /C calc'!A0" in out.getvalue()


def test_numbers_are_not_mistaken_for_formulas() -> None:
    deployments = build_deployments(
        report_id=1,
        sources=[source("lab", "network", network(uname_hostname="-5"))],
        report_version="1",
        platform_id="p",
    )
    (row,) = csv.DictReader(io.StringIO(csv_text(deployments), newline=""))
    assert row["name"] == "-5"


def _members(archive: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        found = {}
        for member in tar.getmembers():
            extracted = tar.extractfile(member)
            found[member.name] = b"" if extracted is None else extracted.read()
        return found


def tarball(details: dict[str, Any], deployments: dict[str, Any], **options: Any) -> bytes:
    out = io.BytesIO()
    build_tarball(details=details, deployments=deployments, out=out, **options)
    return out.getvalue()


def test_tarball_holds_every_report_and_their_checksums() -> None:
    details, deployments = reports(report_id=9)
    aggregate = {"results": {"instances_virtual": 1}, "diagnostics": {}}
    members = _members(tarball(details, deployments, aggregate=aggregate, insights=b"tgz"))
    assert sorted(members) == [
        "report_id_9",
        "report_id_9/SHA256SUM",
        "report_id_9/aggregate.json",
        "report_id_9/deployments.csv",
        "report_id_9/deployments.json",
        "report_id_9/details.csv",
        "report_id_9/details.json",
        "report_id_9/insights.tar.gz",
    ]
    assert json.loads(members["report_id_9/details.json"]) == details
    assert json.loads(members["report_id_9/deployments.json"]) == deployments
    assert json.loads(members["report_id_9/aggregate.json"]) == aggregate
    assert members["report_id_9/deployments.csv"].decode() == csv_text(deployments)
    assert members["report_id_9/insights.tar.gz"] == b"tgz"


def test_tarball_without_aggregate_or_insights_leaves_them_out() -> None:
    details, deployments = reports(report_id=9)
    names = sorted(_members(tarball(details, deployments)))
    assert names == [
        "report_id_9",
        "report_id_9/SHA256SUM",
        "report_id_9/deployments.csv",
        "report_id_9/deployments.json",
        "report_id_9/details.csv",
        "report_id_9/details.json",
    ]


def test_details_csv_is_laid_out_as_the_established_server_writes_it() -> None:
    details = {
        "report_id": 3,
        "report_type": "details",
        "report_version": "1.0.0",
        "report_platform_id": "p-1",
        "sources": [
            {
                "server_id": "s-1",
                "source_name": "lab",
                "source_type": "network",
                "facts": [
                    {"b": "x,y", "a": [1, 2], "c": {"k": "v"}},
                    {"a": [], "d": "line\nbreak"},
                ],
            }
        ],
    }
    out = io.StringIO(newline="")
    write_details_csv(details, out)
    rows = list(csv.reader(io.StringIO(out.getvalue(), newline="")))
    assert rows == [
        ["Report ID", "Report Type", "Report Version", "Report Platform ID", "Number Sources"],
        ["3", "details", "1.0.0", "p-1", "1"],
        [],
        [],
        ["Source"],
        ["Server Identifier", "Source Name", "Source Type"],
        ["s-1", "lab", "network"],
        ["Facts"],
        ["a", "b", "c", "d"],
        ["[1;2]", "x;y", "{k:v}", ""],
        ["", "", "", "line;break"],
        [],
        [],
    ]


def test_report_json_files_hold_one_system_per_line() -> None:
    details, deployments = reports(report_id=9)
    members = _members(tarball(details, deployments))
    lines = members["report_id_9/deployments.json"].decode().splitlines()
    assert len(lines) == len(deployments["system_fingerprints"]) + 2
    assert json.loads(lines[1].rstrip(",")) == deployments["system_fingerprints"][0]
    facts = sum(len(source["facts"]) for source in details["sources"])
    sources = len(details["sources"])
    # Each source opens and closes on lines of its own around its facts.
    assert len(members["report_id_9/details.json"].decode().splitlines()) == facts + 2 * sources + 2


def test_write_json_round_trips_empty_and_nested_values() -> None:
    document = {"b": [], "a": [{"x": [1, {"y": None}]}, "é"], "c": {}}
    for levels in range(5):
        out = io.StringIO()
        write_json(document, out, open_levels=levels)
        assert json.loads(out.getvalue()) == document


def test_every_sha256sum_line_verifies() -> None:
    details, deployments = reports(report_id=9)
    members = _members(tarball(details, deployments))
    lines = members["report_id_9/SHA256SUM"].decode("ascii").splitlines()
    assert len(lines) == 4
    for line in lines:
        digest, name = line.split("  ", 1)
        assert hashlib.sha256(members[f"report_id_9/{name}"]).hexdigest() == digest
    assert sorted(line.split("  ", 1)[1] for line in lines) == [
        "deployments.csv",
        "deployments.json",
        "details.csv",
        "details.json",
    ]


def test_sha256sum_check_passes_on_the_extracted_tarball(tmp_path: Path) -> None:
    tool = shutil.which("sha256sum")
    # coreutils is essential on Debian: a machine without it is broken, not a reason to skip
    assert tool is not None, "sha256sum (coreutils) is missing"
    details, deployments = reports(report_id=9)
    with tarfile.open(fileobj=io.BytesIO(tarball(details, deployments)), mode="r:gz") as tar:
        tar.extractall(tmp_path, filter="data")
    checked = subprocess.run(
        [tool, "-c", "SHA256SUM"], cwd=tmp_path / "report_id_9", capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.count(": OK") == 4


def test_tarball_root_and_timestamps_can_be_chosen() -> None:
    details, deployments = reports()
    one = tarball(details, deployments, root="scan-job-4", mtime=1_700_000_000)
    two = tarball(details, deployments, root="scan-job-4", mtime=1_700_000_000)
    assert one == two
    with tarfile.open(fileobj=io.BytesIO(one), mode="r:gz") as tar:
        assert {m.name.split("/")[0] for m in tar.getmembers()} == {"scan-job-4"}
        assert {m.mtime for m in tar.getmembers()} == {1_700_000_000}


@pytest.mark.parametrize("root", ["", "a/b", "..", "."])
def test_tarball_root_must_be_one_plain_directory_name(root: str) -> None:
    details, deployments = reports()
    with pytest.raises(ValueError, match="plain path segment"):
        tarball(details, deployments, root=root)
