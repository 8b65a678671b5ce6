"""The re-assignment benchmark keeps working: its smoke mode kills a real scanner process on a
tiny lab, prints how long its jobs took to run elsewhere, and leaves no process behind."""

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


def test_smoke_mode_prints_the_tight_figure(tmp_path: Path) -> None:
    output = tmp_path / "reassign.json"
    command = [sys.executable, "-m", "bench.reassign", "--smoke", "--output", str(output)]
    command += ["--net", "127.0.243", "--port", "2243"]
    result = subprocess.run(
        command, cwd=REPO, capture_output=True, text=True, timeout=240, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert any(re.fullmatch(r"bench machine: cores=\d+ .* database=sqlite .*", x) for x in lines)
    assert any(
        re.fullmatch(r"bench reassign-tight: quipu=\d+\.\d s heartbeat_timeout=4 s", line)
        for line in lines
    ), result.stdout
    assert not any(line.startswith("bench reassign-default:") for line in lines)

    (figure,) = json.loads(output.read_text())["figures"]
    (run,) = figure["runs"]
    assert run["held"] >= 1
    # Handed over no sooner than the timeout allows, and running only once handed over.
    assert run["heartbeat_timeout_s"] == 4
    assert 0 < run["reassigned_s"] <= run["running_s"]
    # Nothing of the run is left: no server, no scanner, no lab host on its addresses.
    leftovers = subprocess.run(
        ["pgrep", "-af", "quipu-bench-reassign|127.0.243"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    assert leftovers == ""
