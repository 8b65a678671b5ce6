"""``qpc report merge`` and ``qpc report upload``: reports made from other reports' facts."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Annotated, Any

import typer

from quipu.cli.qpc_common import ClientError, LoginRequired, fail, usage_error
from quipu.cli.qpc_http import Api, connect
from quipu.cli.qpc_report import app

log = logging.getLogger(__name__)

MERGE_PATH = "/api/v1/reports/merge/"
UPLOAD_PATH = "/api/v1/reports/"
LEGACY_REPORT_VERSION = "0.0.44.legacy"
"""What the established client assumes of a file that gives no report_version."""


def merged_message(job_id: int) -> str:
    return (
        f"Report merge job {job_id} created. "
        f'To check processing status, run "qpc scan job --id {job_id}"'
    )


def uploaded_message(job_id: int) -> str:
    return (
        f"Report uploaded. Job {job_id} created. "
        f'To check processing status, run "qpc scan job --id {job_id}"'
    )


def _error(message: str) -> None:
    typer.echo(message, err=True)


_FIELD_LINE = re.compile(r"(?P<field>[\w.]+): (?P<text>.*)")


def server_sentences(error: ClientError) -> str:
    """The server's refusal as the established client prints it: the message alone, not
    after the name of the field it is about (the merge's ``reports``, or a field the
    message names itself)."""
    lines = []
    for line in str(error).splitlines():
        found = _FIELD_LINE.fullmatch(line)
        if found and (
            found["field"] in ("reports", "jobs") or found["text"].startswith(found["field"])
        ):
            line = found["text"]
        lines.append(line)
    return "\n".join(lines)


def _post(api: Api, path: str, body: dict[str, Any], *, refused: str = "") -> dict[str, Any]:
    try:
        made: dict[str, Any] = api.request("POST", path, json=body)
    except LoginRequired:
        raise
    except ClientError as error:
        fail(refused + server_sentences(error))
    return made


def read_details_file(path: Path) -> list[dict[str, Any]] | None:
    """The sources of a details report file, each stamped with the file's report type and
    version as the established client sends them; None (having said why) when it is none."""
    log.info("Checking %s for valid JSON details report.", path)
    if not path.is_file():
        _error(f"Input {path} was not found.")
        return None
    try:
        document = json.loads(path.read_bytes())
    except (OSError, UnicodeDecodeError, ValueError):
        _error(f"Failed: {path} is not a JSON details report.")
        return None
    if not isinstance(document, dict):
        _error(f"Failed: {path} is not a JSON details report.")
        return None
    version = document.get("report_version")
    if not version:
        _error(
            f"WARNING: The file {path} is missing report_version.  Future releases will not "
            "tolerate a missing or invalid report_version."
        )
        version = LEGACY_REPORT_VERSION
    report_type = document.get("report_type", "details")
    if report_type != "details":
        _error(f"The file {path} contains invalid report type {report_type}.")
        return None
    sources = document.get("sources")
    if not sources or not isinstance(sources, list):
        _error(f"Failed: {path} is not a details report. Missing sources. Excluding from merge.")
        return None
    for source in sources:
        missing = next(
            (
                key
                for key in ("facts", "server_id")
                if not isinstance(source, dict) or not source.get(key)
            ),
            None,
        )
        if missing:
            _error(
                f"Failed: {path} is not a details report. Missing {missing}. Excluding from merge."
            )
            return None
        source["report_type"] = report_type
        source["report_version"] = version
    log.info("Success: %s is a valid details report.", path)
    return sources


def _details_of(files: list[Path]) -> dict[str, Any]:
    log.info("Checking files for valid json details report. %s", [str(f) for f in files])
    sources: list[dict[str, Any]] = []
    for path in files:
        sources.extend(read_details_file(path) or [])
    if not sources:
        fail("No details reports were found.")
    return {"sources": sources, "report_type": "details"}


def _report_ids_of_jobs(api: Api, job_ids: list[str]) -> list[int]:
    """The report of each scan job, or exit 1 naming the jobs missing or without one."""
    report_ids: list[int] = []
    not_found: list[str] = []
    without: list[str] = []
    for job_id in dict.fromkeys(job_ids):
        try:
            job = api.get(f"/api/v1/jobs/{job_id}/")
        except LoginRequired:
            raise
        except ClientError:
            not_found.append(job_id)
            continue
        if job.get("report_id"):
            report_ids.append(job["report_id"])
        else:
            without.append(job_id)
    if not_found:
        _error(f"The following scan jobs do not exist: {not_found}.")
    if without:
        _error(f"The following scan jobs did not produce reports: {without}.")
    if not_found or without:
        raise typer.Exit(1)
    return report_ids


def _as_id(value: str) -> int | str:
    # Ids go as numbers when they are; the server names any that is not.
    return int(value) if value.isdigit() else value


@app.command()
def merge(
    job_ids: Annotated[
        list[str] | None,
        typer.Option("--job-ids", metavar="SCAN_JOB_IDS", help="Scan job identifiers."),
    ] = None,
    report_ids: Annotated[
        list[str] | None,
        typer.Option("--report-ids", metavar="REPORT_IDS", help="Report identifiers."),
    ] = None,
    json_files: Annotated[
        list[Path] | None,
        typer.Option(
            "--json-files",
            metavar="JSON_FILES",
            help="A list of files that contain the json details reports to merge.",
        ),
    ] = None,
    json_directory: Annotated[
        list[Path] | None,
        typer.Option(
            "--json-directory",
            metavar="JSON_DIR",
            help="The path to a directory that contain files of json details reports to merge",
        ),
    ] = None,
) -> None:
    """Merge reports (of scan jobs, by id, or in details report files) into a new one."""
    given = [
        name
        for name, value in (
            ("--job-ids", job_ids),
            ("--report-ids", report_ids),
            ("--json-files", json_files),
            ("--json-directory", json_directory),
        )
        if value
    ]
    if not given:
        usage_error(
            "one of the arguments --job-ids --report-ids --json-files --json-directory is required"
        )
    if len(given) > 1:
        usage_error(f"argument {given[1]}: not allowed with argument {given[0]}")
    files: list[Path] | None = None
    if json_files:
        if len(json_files) < 2:
            fail("At least two json details report files are required to merge.")
        files = json_files
    elif json_directory:
        directory = json_directory[0]
        if not directory.is_dir():
            fail(f"{directory} is not a directory")
        files = sorted(directory.glob("*.json"))
        if not files:
            fail(f"No files with extension .json found in {directory}.")
    # Local files are checked before the server is called, as the established client does.
    details = _details_of(files) if files is not None else None
    with connect() as api:
        if details is not None:
            made = _post(api, UPLOAD_PATH, details)
        else:
            ids = (
                _report_ids_of_jobs(api, job_ids)
                if job_ids
                else [_as_id(i) for i in report_ids or []]
            )
            made = _post(api, MERGE_PATH, {"reports": ids})
    typer.echo(merged_message(made["job_id"]))


@app.command()
def upload(
    json_file: Annotated[
        Path,
        typer.Option(
            "--json-file", metavar="JSON_FILE", help="The path to the details report JSON file."
        ),
    ],
) -> None:
    """Upload a details report JSON file; it becomes a report of its own."""
    sources = read_details_file(json_file)
    if not sources:
        fail(f"Failed: {json_file} is not a JSON details report.")
    with connect() as api:
        made = _post(
            api,
            UPLOAD_PATH,
            {"sources": sources, "report_type": "details"},
            refused="Report could not be created.  Error: ",
        )
    typer.echo(uploaded_message(made["job_id"]))
