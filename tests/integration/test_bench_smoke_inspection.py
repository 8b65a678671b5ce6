"""The inspection benchmark keeps working: its smoke mode inspects a tiny lab, prints its
figure and writes the JSON."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="the lab starts sshd and needs root"),
]


def test_smoke_mode_prints_the_figure(tmp_path: Path) -> None:
    output = tmp_path / "inspection.json"
    command = [sys.executable, "-m", "bench.inspection", "--smoke", "--output", str(output)]
    command += ["--net", "127.0.217", "--port", "22217"]
    result = subprocess.run(
        command, cwd=REPO, capture_output=True, text=True, timeout=240, check=False
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(re.fullmatch(r"bench machine: cores=\d+ .* loop=(uvloop|asyncio)", x) for x in lines)
    assert any(
        re.fullmatch(
            r"bench inspection: quipu=\d+\.\d hosts/s reference=n/a ratio=n/a "
            r"hosts=3 concurrency=50 rounds=1",
            line,
        )
        for line in lines
    ), result.stdout
    assert not any(line.startswith("bench warning") for line in lines), result.stdout
    report = json.loads(output.read_text())
    assert report["smoke"] is True
    assert report["hosts"] == 3
    assert [run["succeeded"] for run in report["quipu"]["runs"]] == [3]
    assert report["reference_ansible_raw"] is None
