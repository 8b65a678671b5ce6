"""The Satellite benchmark keeps working: its smoke mode inspects a small fake Satellite with
both clients, prints its figure and writes the JSON."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from bench.__main__ import parse_figure

REPO = Path(__file__).resolve().parents[2]


def test_smoke_mode_prints_the_figure(tmp_path: Path) -> None:
    output = tmp_path / "satellite.json"
    result = subprocess.run(
        [sys.executable, "-m", "bench.satellite", "--smoke", "--results", str(output)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(re.fullmatch(r"bench machine: cores=\d+ .* loop=(uvloop|asyncio)", x) for x in lines)
    figure = next(
        (
            line
            for line in lines
            if re.fullmatch(
                r"bench satellite: quipu=\d+\.\d hosts/s reference=\d+\.\d hosts/s "
                r"ratio=\d+\.\d\d hosts=20 latency_ms=20 concurrency=25 rounds=1",
                line,
            )
        ),
        None,
    )
    assert figure is not None, result.stdout
    assert parse_figure(figure) is not None
    assert not any(line.startswith("bench warning") for line in lines), result.stdout

    report = json.loads(output.read_text())
    assert report["smoke"] is True
    assert report["hosts"] == 20
    assert {"cores", "python", "httpx", "loop"} <= set(report["machine"])
    assert [run["correct"] for run in report["quipu"]["runs"]] == [20]
    assert [run["correct"] for run in report["reference_sequential"]["runs"]] == [20]
    # Quipu had several requests in flight; the sequential client never more than one.
    assert report["quipu"]["runs"][0]["max_in_flight"] > 1
    assert report["reference_sequential"]["runs"][0]["max_in_flight"] == 1
