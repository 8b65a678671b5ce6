"""What ``qpc scan`` sends and prints in the established client's shapes: product options,
scans and scan jobs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from quipu.cli.qpc_common import fail, usage_error

MAX_CONCURRENCY = 200
PRODUCTS = ("jboss_eap", "jboss_fuse", "jboss_ws")
SEARCH_DIRECTORIES = "search_directories"
DISABLED = "--disabled-optional-products"
EXTENDED = "--enabled-ext-product-search"
DIRECTORIES = "--ext-product-search-dirs"
PRODUCT_OPTIONS = (DISABLED, EXTENDED, DIRECTORIES)
PRODUCT_OPTIONS_HELP = (
    f"Product options take zero or more values each: {DISABLED} PRODUCT... (products not to "
    f"inspect), {EXTENDED} PRODUCT... (products to search for in more places), {DIRECTORIES} "
    f"DIR... (absolute directories to search them in). Products: {', '.join(PRODUCTS)}. On "
    "edit, an option without values resets it."
)

# The established server's words for refused options, which its client prints after "Error:".
TOO_FEW = "Ensure this value is greater than or equal to 1."
TOO_MANY = f"Ensure this value is less than or equal to {MAX_CONCURRENCY}."
BAD_DIRECTORIES = "search_directories must be a JSON array of valid paths"

SCAN_FIELDS = ("id", "name", "options", "scan_type", "sources")
"""What the established client prints of a scan, with ``jobs`` and ``most_recent`` once run."""
NOT_STARTED = frozenset({"created", "pending", "held"})
"""Job statuses whose counts the established server leaves out: nothing was counted yet."""
TASK_FIELDS = (
    "sequence_number",
    "scan_type",
    "status",
    "status_message",
    "systems_count",
    "systems_scanned",
    "systems_failed",
    "systems_unreachable",
    "start_time",
    "end_time",
)
COUNTS = ("systems_count", "systems_scanned", "systems_failed", "systems_unreachable")
ENDED = frozenset({"completed", "failed", "canceled"})
TASK_MESSAGES = {
    "pending": "Task is pending.",
    "running": "Task is running.",
    "completed": "Task is complete.",
    "canceled": "Task is canceled.",
}


@dataclass(frozen=True, slots=True)
class ProductArgs:
    """The product options given: None when left out, [] when given without values."""

    disabled: list[str] | None = None
    extended: list[str] | None = None
    directories: list[str] | None = None

    def given(self) -> bool:
        return any(v is not None for v in (self.disabled, self.extended, self.directories))


def product_args(args: Sequence[str], *, adding: bool) -> ProductArgs:
    """The product options among a command's extra arguments (usage errors as argparse's).

    ``scan add`` wants at least one value after each, and ``--enabled-ext-product-search``
    whenever directories are given; ``scan edit`` takes options without values (resets).
    """
    values: dict[str, list[str]] = {}
    current: str | None = None
    for arg in args:
        name, equals, value = arg.partition("=")
        if arg.startswith("-") and name in PRODUCT_OPTIONS:
            current = name
            values[name] = [value] if equals else []
        elif arg.startswith("-"):
            usage_error(f"No such option: {name}")
        elif current is None:
            usage_error(f"Got unexpected extra argument ({arg})")
        else:
            values[current].append(arg)
    for name, given in values.items():
        if adding and not given:
            usage_error(f"argument {name}: expected at least one argument")
        if name != DIRECTORIES:
            for product in given:
                if product not in PRODUCTS:
                    choices = ", ".join(repr(p) for p in PRODUCTS)
                    usage_error(
                        f"argument {name}: invalid choice: {product!r} (choose from {choices})"
                    )
    if adding and DIRECTORIES in values and EXTENDED not in values:
        usage_error(f"the following arguments are required: {EXTENDED}")
    return ProductArgs(
        disabled=values.get(DISABLED),
        extended=values.get(EXTENDED),
        directories=values.get(DIRECTORIES),
    )


def product_options(given: ProductArgs, *, editing: bool) -> dict[str, Any]:
    """The ``options`` the established client sends for the product options given."""
    options: dict[str, Any] = {}
    if given.disabled is not None:
        # Listed products are left out; an empty list resets all of them.
        options["disabled_optional_products"] = dict.fromkeys(
            given.disabled, True
        ) or dict.fromkeys(PRODUCTS, False)
    extended = _extended(given, editing=editing)
    if extended is not None:
        options["enabled_extended_product_search"] = extended
    return options


def _extended(given: ProductArgs, *, editing: bool) -> dict[str, Any] | None:
    products, directories = given.extended, given.directories
    if products == [] and directories == []:
        return {**dict.fromkeys(PRODUCTS, False), SEARCH_DIRECTORIES: []}
    if directories == []:
        return {SEARCH_DIRECTORIES: [], **dict.fromkeys(products or [], True)}
    if products == []:
        reset: dict[str, Any] = dict.fromkeys(PRODUCTS, False)
        return reset | ({SEARCH_DIRECTORIES: directories} if directories else {})
    if products:
        searched: dict[str, Any] = dict.fromkeys(products, True)
        return searched | ({SEARCH_DIRECTORIES: directories} if directories else {})
    if directories and editing:
        return {SEARCH_DIRECTORIES: directories}
    return None


def check_options(*, max_concurrency: int | None, directories: list[str] | None) -> None:
    """Refuse what the server refuses, in the words the established client prints for it.

    The server checks the same; checking here too keeps the output the established one
    whatever the shape of the server's error answer.
    """
    if max_concurrency is not None and not 1 <= max_concurrency <= MAX_CONCURRENCY:
        message = TOO_FEW if max_concurrency < 1 else TOO_MANY
        fail(f"Error: {{'max_concurrency': [{message!r}]}}")
    if directories and not all(PurePosixPath(d).is_absolute() for d in directories):
        errors = {"enabled_extended_product_search": {SEARCH_DIRECTORIES: [BAD_DIRECTORIES]}}
        fail(f"Error: {errors}")


def shown_scan(scan: Mapping[str, Any], *, all_fields: bool) -> dict[str, Any]:
    """A scan as the established client prints it; its jobs and newest job only once run."""
    if all_fields:
        return dict(scan)
    shown = {field: scan.get(field) for field in SCAN_FIELDS}
    jobs = [_pruned(job) for job in scan.get("jobs") or []]
    if jobs:
        shown["jobs"] = jobs
    if scan.get("most_recent"):
        shown["most_recent"] = scan["most_recent"]
    return shown


def shown_job(job: Mapping[str, Any], *, all_fields: bool) -> dict[str, Any]:
    """A scan job as the established client prints it (``qpc scan job``).

    As the established server: fields without a value are left out, the counts are null
    until the job starts, a task names its source by id, and the last task is the one that
    builds the report (``fingerprint``). A merge or an upload has that task only.
    """
    if all_fields:
        return dict(job)
    inspects = job.get("scan_type") != "fingerprint"
    tasks = [_task(task) for task in job.get("tasks") or []] if inspects else []
    tasks.append(_fingerprint_task(job, number=len(tasks) + 1))
    shown = _pruned(
        {
            "id": job["id"],
            "sources": job.get("sources"),
            "scan_type": job.get("scan_type"),
            "status": job.get("status"),
            "status_message": job.get("status_message"),
            "tasks": tasks,
            "options": job.get("options"),
            "report_id": job.get("report_id"),
            "start_time": job.get("start_time"),
            "end_time": job.get("end_time"),
        }
    )
    started = job.get("status") not in NOT_STARTED
    shown["scan"] = job.get("scan")
    for count in COUNTS:
        # The established server counts the systems of connection and inspection tasks,
        # which a merge or an upload has none of.
        shown[count] = (job.get(count) if inspects else 0) if started else None
    shown["system_fingerprint_count"] = (
        (job.get("system_fingerprint_count") or 0) if started else None
    )
    return shown


def _task(task: Mapping[str, Any]) -> dict[str, Any]:
    shown = _pruned({field: task.get(field) for field in TASK_FIELDS})
    source = task.get("source") or {}
    if source.get("id") is not None:
        shown["source"] = source["id"]
    return shown


def _fingerprint_task(job: Mapping[str, Any], *, number: int) -> dict[str, Any]:
    """The task that builds the report: done once the report exists."""
    if job.get("status") in ("failed", "canceled"):
        status = str(job["status"])
    else:
        status = "completed" if job.get("report_id") is not None else "pending"
    message = job.get("status_message") if status == "failed" else TASK_MESSAGES.get(status)
    ended = status in ENDED
    task = {
        "sequence_number": number,
        "scan_type": "fingerprint",
        "status": status,
        "status_message": message,
        **dict.fromkeys(COUNTS, 0),
        "end_time": job.get("end_time") if ended else None,
    }
    shown = _pruned(task)
    if status == "completed":
        shown["system_fingerprint_count"] = job.get("system_fingerprint_count") or 0
    return shown


def _pruned(value: Mapping[str, Any]) -> dict[str, Any]:
    """``value`` without its empty fields, as the established server leaves them out (its
    numbers and booleans stay, even 0 and false)."""
    return {
        key: item
        for key, item in value.items()
        if isinstance(item, bool | int)
        or (item is not None and item != [] and item != {} and item != "")
    }
