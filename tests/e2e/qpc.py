"""The real ``qpc`` client as a subprocess, with its own config directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quipu.lab import Lab
from tests.servers import ADMIN_PASSWORD, RunningServer

QPC = Path(sys.executable).parent / "qpc"


@dataclass(frozen=True)
class Result:
    args: tuple[str, ...]
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        """stdout as JSON, checked to be exactly ``json.dumps(..., sort_keys=True, indent=4)``."""
        value = json.loads(self.stdout)
        assert self.stdout == json.dumps(value, sort_keys=True, indent=4) + "\n", self
        return value


@dataclass(frozen=True)
class Qpc:
    """Runs ``qpc`` with ``XDG_CONFIG_HOME`` in a test's own directory; stdin is a pipe.

    No output may contain any of ``secrets``.
    """

    config_home: Path
    secrets: tuple[str, ...] = ()

    @property
    def config_dir(self) -> Path:
        return self.config_home / "qpc"

    def __call__(self, *args: str, input: str = "", timeout: float = 60) -> Result:
        env = {**os.environ, "XDG_CONFIG_HOME": str(self.config_home)}
        done = subprocess.run(
            [str(QPC), *args],
            input=input,
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
            check=False,
        )
        for secret in self.secrets:
            assert secret not in done.stdout + done.stderr, (args, "printed a secret")
        return Result(args=args, code=done.returncode, stdout=done.stdout, stderr=done.stderr)

    def ok(self, *args: str, input: str = "") -> Result:
        """Run and require exit code 0."""
        result = self(*args, input=input)
        assert result.code == 0, result
        return result

    def fails(self, *args: str, input: str = "", code: int = 1) -> Result:
        """Run and require exit code ``code`` with nothing on stdout."""
        result = self(*args, input=input)
        assert result.code == code, result
        assert result.stdout == "", result
        return result


def logged_in(server: RunningServer, *, config_home: Path, secrets: tuple[str, ...] = ()) -> Qpc:
    """qpc configured for ``server`` and logged in as admin; no output may hold ``secrets``."""
    qpc = Qpc(config_home=config_home, secrets=(ADMIN_PASSWORD, *secrets))
    qpc.ok("server", "config", "--host", "127.0.0.1", "--port", str(server.port), "--use-http")
    qpc.ok("server", "login", "--username", "admin", input=ADMIN_PASSWORD + "\n")
    return qpc


def with_lab_credential(server: RunningServer, lab: Lab, *, config_home: Path) -> Qpc:
    """qpc logged in, with credential "lab": the lab's sudo user and key (never printed)."""
    key_lines = tuple(
        line for line in lab.sudo_key_path.read_text().splitlines() if "PRIVATE KEY" not in line
    )
    qpc = logged_in(server, config_home=config_home, secrets=key_lines)
    qpc.ok(
        "cred", "add", "--name", "lab", "--type", "network",
        "--username", lab.sudo_user, "--sshkeyfile", str(lab.sudo_key_path),
    )  # fmt: skip
    return qpc


def start_scan(qpc: Qpc, name: str) -> int:
    """``qpc scan start``: the new scan job's id."""
    out = qpc.ok("scan", "start", "--name", name).stdout
    assert out.startswith('Scan "') and out.endswith('" started.\n'), out
    return int(out.split('"')[1])


def scan_job(qpc: Qpc, job_id: int) -> dict[str, Any]:
    """``qpc scan job --id``, as JSON."""
    value: dict[str, Any] = qpc.ok("scan", "job", "--id", str(job_id)).json()
    return value


def add_lab_scan(
    qpc: Qpc, lab: Lab, *, name: str, hosts: list[str], mediated: bool = False
) -> None:
    """A network source of ``hosts`` with credential "lab", and a scan of it, both ``name``."""
    extra = ["--scheduling-mode", "mediated"] if mediated else []
    qpc.ok(
        "source", "add", "--name", name, "--type", "network", "--hosts", *hosts,
        "--port", str(lab.hosts[0].port), "--cred", "lab", *extra,
    )  # fmt: skip
    assert qpc.ok("scan", "add", "--name", name, "--sources", name).stdout == (
        f'Scan "{name}" was added.\n'
    )


def wait_job(qpc: Qpc, job_id: int, *statuses: str, timeout: float = 90) -> dict[str, Any]:
    """``qpc scan job --id`` once the job is in one of ``statuses``."""
    deadline = time.monotonic() + timeout
    while True:
        current = scan_job(qpc, job_id)
        if current["status"] in statuses:
            return current
        assert time.monotonic() < deadline, current
        time.sleep(0.2)
