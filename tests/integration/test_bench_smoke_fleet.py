"""The fleet benchmark keeps working: its smoke mode runs a small simulated fleet on two real
ingest nodes, SIGKILLs one, prints every figure with its integrity intact, and cleans up."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from bench.__main__ import BENCHMARKS, parse_figure

from tests.integration.test_bench_smoke_claims import _databases

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.postgresql

CALL = re.compile(
    r"bench fleet-(?P<call>heartbeat|claim|start|progress|results|complete): "
    r"p50=\d+\.\dms p99=\d+\.\dms max=\d+\.\dms n=(?P<n>\d+) errors=0 "
    r"\(goal p99 < 50 ms, no errors: (met|missed)\)"
)


def test_smoke_mode_prints_every_figure_kills_a_node_and_drops_its_database(
    tmp_path: Path,
) -> None:
    assert "fleet" in BENCHMARKS
    output = tmp_path / "fleet.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.fleet", "--smoke", "--output", str(output)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stdout[-3000:] + stderr[-3000:]
    lines = stdout.splitlines()
    calls = {m["call"]: int(m["n"]) for line in lines if (m := CALL.fullmatch(line))}
    assert set(calls) == {"heartbeat", "claim", "start", "progress", "results", "complete"}
    assert all(n > 0 for n in calls.values()), calls
    idle = next(x for x in lines if x.startswith("bench fleet-idle: "))
    assert re.search(r"scanners=200 requests=\d+/s node_cpu=\d+\.\d% ", idle), idle
    kill = next(x for x in lines if x.startswith("bench fleet-kill: "))
    assert re.search(r"switched=100/100 ", kill), kill
    integrity = next(x for x in lines if x.startswith("bench fleet-integrity: "))
    assert "unfinished=0 double_claims=0" in integrity and "results_lost=0" in integrity
    assert integrity.endswith("(ok)"), integrity
    assert not [x for x in lines if x.startswith("bench warning: ")], stdout

    report = json.loads(output.read_text())
    assert report["integrity"]["jobs"] == report["integrity"]["completed"] > 0
    assert report["switch_s"]["max"] > 0
    assert _databases(f"quipu_bench_fleet_{process.pid}_") == []
    # The runner's summary keeps the figure lines.
    names = {figure[0] for line in lines if (figure := parse_figure(line))}
    assert {"fleet-idle", "fleet-kill", "fleet-integrity", "fleet-claim"} <= names
