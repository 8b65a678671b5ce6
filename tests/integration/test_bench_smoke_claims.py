"""The claims benchmark keeps working: its smoke mode drains real claims on PostgreSQL, through
the store and over HTTP, prints every figure with zero double claims, and cleans up."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from bench.__main__ import Outcome, format_summary, parse_figure
from sqlalchemy.engine import make_url

from tests.databases import PG_URL

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.postgresql

FIGURE = re.compile(
    r"bench claims-(?P<how>direct|http)-(?P<concurrency>1|8|32): quipu=\d+ jobs/s "
    r"reference=(?P<reference>\d+|n/a) jobs/s ratio=(\d+\.\d{2,3}|n/a) batch=10 "
    r"double_claims=0 lost=0"
)


def _databases(prefix: str) -> list[str]:
    url = make_url(PG_URL)
    with psycopg.connect(
        host=url.host, port=url.port, user=url.username, dbname=url.database, autocommit=True
    ) as conn:
        rows = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s", (f"{prefix}%",)
        ).fetchall()
    return [row[0] for row in rows]


def test_smoke_mode_prints_every_figure_and_drops_its_databases(tmp_path: Path) -> None:
    output = tmp_path / "claims.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.claims", "--smoke", "--output", str(output)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    stdout, stderr = process.communicate(timeout=240)
    assert process.returncode == 0, stdout[-3000:] + stderr[-3000:]
    lines = stdout.splitlines()
    assert any(re.fullmatch(r"bench machine: cores=\d+ .* pgqueuer=\S+ loop=\w+", x) for x in lines)
    figures = [match for line in lines if (match := FIGURE.fullmatch(line))]
    assert {(m["how"], m["concurrency"]) for m in figures} == {
        (how, c) for how in ("direct", "http") for c in ("1", "8", "32")
    }, stdout
    if importlib.util.find_spec("pgqueuer") is None:
        assert "bench note: PgQueuer is not installed here: its reference was skipped" in lines
        assert {m["reference"] for m in figures} == {"n/a"}
    assert any(line.startswith("bench claims-goals: ") for line in lines)
    assert "integrity=ok" in next(x for x in lines if x.startswith("bench claims-goals: "))

    report = json.loads(output.read_text())
    assert {"cores", "python", "postgresql", "loop"} <= set(report["machine"])
    for figure in report["figures"]:
        assert figure["quipu"] > 0, figure["name"]
        run = figure["quipu_round"]
        assert (run["double_claims"], run["lost"], run["errors"]) == (0, 0, []), figure["name"]
    # Its own databases are gone (named after the benchmark's process).
    assert _databases(f"quipu_bench_claims_{process.pid}_") == []
    assert _databases(f"pgq_bench_{process.pid}_") == []

    # The runner's summary keeps every figure line.
    parsed = [figure for line in lines if (figure := parse_figure(line))]
    assert {name for name, _ in parsed} >= {f"claims-direct-{c}" for c in (1, 8, 32)}
    summary = format_summary([Outcome("claims", 0, 12.0, parsed)], smoke=True)
    assert summary.splitlines()[0].startswith("== summary (smoke): ")
    for name, rest in parsed:
        assert any(name in row and rest in row for row in summary.splitlines()), name
