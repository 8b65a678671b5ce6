"""The web UI benchmark keeps working: its smoke mode stores a 1,000-system report, renders
its first page cold and warm beside the API's deployments JSON, prints every figure and
writes the JSON."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from bench.__main__ import parse_figure

REPO = Path(__file__).resolve().parents[2]

SECONDS = r"\d+\.\d{3} s"


def test_smoke_mode_prints_the_figures(tmp_path: Path) -> None:
    output = tmp_path / "ui.json"
    result = subprocess.run(
        [sys.executable, "-m", "bench.ui", "--smoke", "--results", str(output)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(
        re.fullmatch(r"bench machine: cores=\d+ .* database=sqlite transport=asgi", x)
        for x in lines
    )
    page = next(
        (
            line
            for line in lines
            if re.fullmatch(
                rf"bench ui-report-1000: cold={SECONDS} warm={SECONDS} reference={SECONDS} "
                r"ratio=\d+\.\d rounds=3 page=50 rows cache=-?\d+\.\d MiB",
                line,
            )
        ),
        None,
    )
    assert page is not None, result.stdout
    assert parse_figure(page) is not None
    queries = next(line for line in lines if line.startswith("bench ui-report-1000-queries: "))
    for figure in ("last_page", "search+filters", "sort_first", "sort_warm", "system_warm"):
        assert re.search(rf"\b{re.escape(figure)}={SECONDS}", queries), queries
    assert any(line.startswith("bench ui-goal: warm first page < 1 s: ") for line in lines)
    assert not any(line.startswith("bench warning") for line in lines), result.stdout

    report = json.loads(output.read_text())
    assert report["smoke"] is True
    assert report["systems"] == 1000
    assert {"cores", "python", "httpx"} <= set(report["machine"])
    figures = report["figures"]
    assert figures["warm_s"] > 0 and figures["cold_s"] > 0 and figures["reference_s"] > 0
    assert figures["reference_rounds"] == 3
