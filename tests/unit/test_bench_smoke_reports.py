"""The reports benchmark runs end to end at its smoke size and reports honest figures."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from bench.reports import main


def test_reports_bench_smoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = tmp_path / "reports.json"
    assert main(["--smoke", "--results", str(results)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^bench reports-1000: quipu=\d+\.\d{3} s peak=\d+\.\d MiB$", out, re.M), out
    assert re.search(r"^bench reports-linearity: seconds per 1k systems 1000=\d+\.\d+$", out, re.M)
    (size,) = json.loads(results.read_text())["sizes"]
    assert size["systems"] == 1000
    # Every synthetic system has its own MAC, so a correct merge finds each exactly once.
    assert size["deployments"] == size["expected_deployments"] == 1000
    assert size["records"] > size["systems"]
