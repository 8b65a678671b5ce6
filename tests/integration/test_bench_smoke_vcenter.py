"""The vCenter benchmark keeps working: its smoke mode inventories two tiny simulated
vCenters, prints its figures and writes the JSON."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_smoke_mode_prints_the_figures(tmp_path: Path) -> None:
    output = tmp_path / "vcenter.json"
    command = [sys.executable, "-m", "bench.vcenter", "--smoke", "--results", str(output)]
    result = subprocess.run(
        command, cwd=REPO, capture_output=True, text=True, timeout=240, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert any(re.fullmatch(r"bench machine: cores=\d+ .* pyvmomi=\S+", line) for line in lines)
    assert any(
        re.fullmatch(
            r"bench vcenter: quipu=\d+\.\d VMs/s reference=\d+\.\d VMs/s ratio=\d+\.\d\d "
            r"vms=60 naive_vms=60 rounds=1",
            line,
        )
        for line in lines
    ), result.stdout
    assert any(
        re.fullmatch(
            r"bench vcenter-memory: quipu peak \(tracemalloc\) MiB 20=\d+\.\d 60=\d+\.\d "
            r"growth=[+-]\d+\.\d MiB",
            line,
        )
        for line in lines
    ), result.stdout
    assert not any(line.startswith("bench warning") for line in lines), result.stdout
    report = json.loads(output.read_text())
    assert report["smoke"] is True
    assert [size["vms"] for size in report["sizes"]] == [20, 60]
    assert [run["vms"] for run in report["sizes"][-1]["quipu_runs"]] == [60]
    assert report["sizes"][-1]["naive"]["vms"] == 60
    assert report["warnings"] == []
