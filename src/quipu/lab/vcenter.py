"""The simulated vCenter: govmomi's simulator (``lab/vcsim/main.go``) run as a child process.

``scripts/setup`` builds it to ``build/vcsim/vcsim``; ``$QUIPU_VCSIM`` names another build.
Its inventory: per datacenter, ``standalone_hosts`` standalone ESXi hosts and ``clusters``
clusters of ``hosts_per_cluster`` hosts; ``vms`` VMs in each cluster and on each standalone
host. The first VM by name is a template, the second is powered off, every other one is
powered on with a guest host name and an IPv4 address; memory sizes run from 512 MB to 2 GB.
The simulator pages property-collector results by ``maxObjects`` as vCenter does.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import select
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from quipu.lab.errors import LabError

logger = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[3]
READY_TIMEOUT_S = 300.0
"""Building the inventory takes about 2.5 ms per VM; 100,000 VMs take minutes."""
STOP_TIMEOUT_S = 10.0


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Model:
    """The size of the simulated inventory."""

    datacenters: int = 1
    clusters: int = 1
    hosts_per_cluster: int = 3
    standalone_hosts: int = 1
    vms: int = 2
    """VMs in each cluster and on each standalone host."""

    @property
    def vm_count(self) -> int:
        return self.datacenters * (self.clusters + self.standalone_hosts) * self.vms

    @property
    def host_count(self) -> int:
        return self.datacenters * (self.clusters * self.hosts_per_cluster + self.standalone_hosts)

    def flags(self) -> list[str]:
        return [
            f"-dc={self.datacenters}",
            f"-cluster={self.clusters}",
            f"-host={self.hosts_per_cluster}",
            f"-standalone-host={self.standalone_hosts}",
            f"-vm={self.vms}",
        ]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Vcsim:
    """A running simulator and how to log in to it."""

    host: str
    port: int
    username: str
    password: str
    url: str
    """The SDK endpoint, e.g. ``https://127.0.0.1:8989/sdk``."""
    tls: bool
    vm_count: int
    host_count: int
    process: subprocess.Popen[str]


def vcsim_binary() -> Path:
    """The simulator's executable; raises LabError saying how to build it when missing."""
    configured = os.environ.get("QUIPU_VCSIM")
    binary = Path(configured) if configured else REPO / "build" / "vcsim" / "vcsim"
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        where = "$QUIPU_VCSIM names" if configured else "the simulator would be at"
        raise LabError(
            f"The vCenter simulator is not built ({where} {binary}): run scripts/setup to build it."
        )
    return binary


def _read_ready(
    process: subprocess.Popen[str], *, log: Path, timeout_s: float
) -> dict[str, object]:
    """The JSON line the simulator prints once it serves; LabError if it dies or hangs first."""
    stdout = process.stdout
    assert stdout is not None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        readable, _, _ = select.select([stdout], [], [], 0.5)
        if readable:
            line = stdout.readline()
            if not line:
                break
            try:
                ready = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(ready, dict) and "port" in ready:
                return ready
        elif process.poll() is not None:
            break
    if process.poll() is None:
        raise LabError(f"The vCenter simulator did not start within {timeout_s:g} s.")
    detail = ""
    with contextlib.suppress(OSError):
        detail = " ".join(log.read_text(errors="replace")[-2000:].split())
    raise LabError(
        f"The vCenter simulator exited with code {process.returncode} before serving"
        + (f": {detail}" if detail else ".")
    )


def _stop(process: subprocess.Popen[str]) -> None:
    """SIGTERM (the simulator then removes its datastore directories), SIGKILL if it hangs."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if process.stdout is not None:
        process.stdout.close()


@contextlib.contextmanager
def running_vcsim(
    *,
    model: Model | None = None,
    address: str = "127.0.0.1",
    port: int = 0,
    username: str = "user",
    password: str = "pass",
    tls: bool = True,
    ready_timeout_s: float = READY_TIMEOUT_S,
) -> Iterator[Vcsim]:
    """A simulated vCenter on ``address:port`` (0: a free port) until the block ends.

    The process and every file it made (its datastores live in a temporary directory of
    their own) are gone afterwards, however the block ends.
    """
    model = model or Model()
    binary = vcsim_binary()
    scratch = Path(tempfile.mkdtemp(prefix="quipu-vcsim-"))
    command = [
        str(binary),
        *model.flags(),
        f"-listen={address}:{port}",
        f"-username={username}",
        f"-password={password}",
        f"-tls={'true' if tls else 'false'}",
    ]
    log = scratch / "vcsim.log"
    try:
        # Its log goes to a file: a pipe nobody reads would stall it once full.
        with log.open("w") as log_file:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log_file,
                text=True,
                env={**os.environ, "TMPDIR": str(scratch)},
                start_new_session=True,
            )
    except OSError as error:
        shutil.rmtree(scratch, ignore_errors=True)
        raise LabError(f"The vCenter simulator {binary} could not be started: {error}.") from None
    try:
        ready = _read_ready(process, log=log, timeout_s=ready_timeout_s)
        logger.info("vCenter simulator (pid %d) serves %s", process.pid, ready["url"])
        yield Vcsim(
            host=str(ready["host"]),
            port=int(str(ready["port"])),
            username=username,
            password=password,
            url=str(ready["url"]),
            tls=tls,
            vm_count=int(str(ready["vms"])),
            host_count=int(str(ready["hosts"])),
            process=process,
        )
    finally:
        _stop(process)
        shutil.rmtree(scratch, ignore_errors=True)
