"""The simulated vCenter's runner, without running it: where it looks, what it says."""

from __future__ import annotations

from pathlib import Path

import pytest

from quipu.lab.errors import LabError
from quipu.lab.vcenter import Model, vcsim_binary


def test_a_missing_simulator_says_how_to_build_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("QUIPU_VCSIM", str(tmp_path / "vcsim"))
    with pytest.raises(LabError) as caught:
        vcsim_binary()
    assert str(caught.value) == (
        f"The vCenter simulator is not built ($QUIPU_VCSIM names {tmp_path / 'vcsim'}): run "
        "scripts/setup to build it."
    )


def test_quipu_vcsim_names_the_binary(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    binary = tmp_path / "vcsim"
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    monkeypatch.setenv("QUIPU_VCSIM", str(binary))
    assert vcsim_binary() == binary


def test_model_counts_and_flags() -> None:
    model = Model(datacenters=2, clusters=3, hosts_per_cluster=2, standalone_hosts=1, vms=5)
    assert (model.vm_count, model.host_count) == (2 * 4 * 5, 2 * 7)
    assert model.flags() == ["-dc=2", "-cluster=3", "-host=2", "-standalone-host=1", "-vm=5"]
