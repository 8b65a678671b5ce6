"""Run the benchmarks one after another, each in a fresh interpreter, then sum up their figures.

Run: ``python -m bench [--smoke] [NAME ...]`` (``scripts/bench`` does it in the bench
environment, where the reference tools are installed). Each benchmark's output is streamed as
it comes; the summary at the end repeats every ``bench <figure>: ...`` line, so one run
leaves one table to compare.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import FrameType

BENCHMARKS = (
    "discovery",
    "inspection",
    "reports",
    "claims",
    "fleet",
    "reassign",
    "vcenter",
    "satellite",
    "ui",
)
METADATA = frozenset({"machine", "results"})
"""``bench <word>:`` lines that describe a run rather than give a figure."""


@dataclass
class Outcome:
    name: str
    returncode: int
    seconds: float
    lines: list[tuple[str, str]] = field(default_factory=list)
    """(figure, the rest of its line) for every figure line the benchmark printed."""


def parse_figure(line: str) -> tuple[str, str] | None:
    """``bench <figure>: <rest>`` as (figure, rest); None for any other line."""
    if not line.startswith("bench ") or ":" not in line:
        return None
    name, rest = line.removeprefix("bench ").split(":", 1)
    if " " in name or name in METADATA:
        return None
    return name, rest.strip()


_current: subprocess.Popen[str] | None = None


def _forward(signum: int, _frame: FrameType | None) -> None:
    """Stop the running benchmark the way we were stopped, so it cleans up after itself."""
    if _current is not None and _current.poll() is None:
        _current.send_signal(signum)
        try:
            _current.wait(60)
        except subprocess.TimeoutExpired:
            _current.kill()
    sys.exit(128 + signum)


def run_one(name: str, *, smoke: bool) -> Outcome:
    global _current
    command = [sys.executable, "-m", f"bench.{name}", *(["--smoke"] if smoke else [])]
    print(f"\n== bench {name}: {' '.join(command[1:])}", flush=True)
    started = time.monotonic()
    outcome = Outcome(name, 0, 0.0)
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, bufsize=1) as process:
        _current = process
        assert process.stdout is not None
        for line in process.stdout:
            print(line, end="", flush=True)
            figure = parse_figure(line.rstrip("\n"))
            if figure is not None:
                outcome.lines.append(figure)
    _current = None
    outcome.returncode = process.returncode
    outcome.seconds = time.monotonic() - started
    return outcome


def format_summary(outcomes: Sequence[Outcome], *, smoke: bool) -> str:
    """The table of every figure, benchmark by benchmark, and how each run ended."""
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    rows = [("benchmark", "figure", "result")]
    for outcome in outcomes:
        status = "ok" if outcome.returncode == 0 else f"FAILED (exit {outcome.returncode})"
        rows.append((outcome.name, "", f"{status} in {outcome.seconds:.0f} s"))
        rows.extend(("", figure, rest) for figure, rest in outcome.lines)
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    mode = " (smoke)" if smoke else ""
    lines = [f"== summary{mode}: {when}, {os.cpu_count()} cores"]
    for benchmark, figure, result in rows:
        lines.append(f"{benchmark:<{widths[0]}}  {figure:<{widths[1]}}  {result}".rstrip())
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument("--smoke", action="store_true", help="every benchmark at its tiny size")
    parser.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help=f"benchmarks to run, in the order given (default: all: {', '.join(BENCHMARKS)})",
    )
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {unknown[0]!r}; choose from {', '.join(BENCHMARKS)}")
    names = list(dict.fromkeys(args.names)) or list(BENCHMARKS)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _forward)
    outcomes = [run_one(name, smoke=args.smoke) for name in names]
    print("\n" + format_summary(outcomes, smoke=args.smoke), flush=True)
    return 0 if all(outcome.returncode == 0 for outcome in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
