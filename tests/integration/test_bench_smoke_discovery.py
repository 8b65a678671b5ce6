"""The discovery benchmark keeps working: its smoke mode prints every figure and the JSON."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_smoke_mode_prints_every_figure(tmp_path: Path) -> None:
    output = tmp_path / "discovery.json"
    result = subprocess.run(
        [sys.executable, "-m", "bench.discovery", "--smoke", "--output", str(output)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(re.fullmatch(r"bench machine: cores=\d+ .* loop=(uvloop|asyncio)", x) for x in lines)
    comparisons = [
        line
        for line in lines
        if re.fullmatch(
            r"bench discovery-\w+: quipu=\d+ probes/s reference=(\d+|n/a) probes/s "
            r"ratio=(\d+\.\d\d|n/a)",
            line,
        )
    ]
    assert len(comparisons) == 2
    assert any(
        re.fullmatch(
            r"bench discovery-rate-fidelity: quipu=\d+\.\d probes/s cap=200 error=[+-]\d+\.\d\d%",
            line,
        )
        for line in lines
    )
    report = json.loads(output.read_text())
    assert {"cores", "memory_gib", "python", "nmap", "loop"} <= set(report["machine"])
    figures = {figure["name"]: figure for figure in report["figures"]}
    assert "discovery-rate-fidelity" in figures
    for name, figure in figures.items():
        assert figure["quipu"] > 0, name
        if name != "discovery-rate-fidelity":
            assert figure["details"]["quipu_open_correct"], name
