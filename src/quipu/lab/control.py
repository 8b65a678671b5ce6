"""Bringing a lab up and down: validation, prerequisites, parallel start, readiness, cleanup."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from quipu.domain.errors import Conflict, InvalidInput
from quipu.lab import accounts, processes
from quipu.lab.errors import LabError
from quipu.lab.sshd import SSHD, HostFiles, launch_command, namespace_setup, write_host
from quipu.lab.state import MARKER_FILE, Cleanup, Lab, LabHost, LabState, load, save

logger = logging.getLogger(__name__)

_NET = re.compile(r"127\.(\d{1,3})\.(\d{1,3})")
_START_TIMEOUT = 30.0
_SUDOERS_DIR = Path("/etc/sudoers.d")
_PRIVSEP_DIR = Path("/run/sshd")
_HOMES = Path("/home")
_HUNG_PID_FILE = "hung.pid"


def _validate(*, net: str, hosts: int, port: int, slow: int) -> None:
    match = _NET.fullmatch(net)
    if match is None or any(int(octet) > 255 for octet in match.groups()):
        raise InvalidInput(
            f"net must be the first three octets of a loopback address, like 127.0.100 "
            f"(got {net!r}).",
            field="net",
        )
    if not 1 <= hosts <= 250:
        raise InvalidInput(f"hosts must be between 1 and 250 (got {hosts}).", field="hosts")
    if not 1 <= port <= 65535:
        raise InvalidInput(f"port must be between 1 and 65535 (got {port}).", field="port")
    if slow < 0 or hosts + slow > 254:
        raise InvalidInput(
            f"slow must be at least 0, and hosts + slow at most 254 (got hosts={hosts}, "
            f"slow={slow}).",
            field="slow",
        )


def _run_quietly(command: list[str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    return subprocess.run(command, capture_output=True, text=True, check=False, env=env)


def _ensure_packages() -> None:
    """Install OpenSSH's server and sudo from Debian's archive when they are missing."""
    missing = [
        package
        for present, package in ((SSHD.exists(), "openssh-server"), (_has_sudo(), "sudo"))
        if not present
    ]
    if not missing:
        return
    logger.warning("the lab needs %s: installing with apt-get", " and ".join(missing))
    result = _run_quietly(["apt-get", "install", "-y", *missing])
    if result.returncode != 0:
        _run_quietly(["apt-get", "update"])
        result = _run_quietly(["apt-get", "install", "-y", *missing])
    if result.returncode != 0:
        raise LabError(
            f"Could not install {' '.join(missing)} with apt-get: "
            f"{result.stderr.strip()[-500:]} Install them and run the lab again."
        )


def _has_sudo() -> bool:
    return shutil.which("sudo", path="/usr/bin:/bin:/usr/sbin:/sbin") is not None


def _namespaces_permitted() -> bool:
    if shutil.which("unshare") is None:
        return False
    result = _run_quietly(["unshare", "--uts", "--mount", "--propagation", "private", "true"])
    return result.returncode == 0


def _machine_identity() -> tuple[str, str]:
    machine_id = Path("/etc/machine-id")
    return socket.gethostname(), machine_id.read_text().strip() if machine_id.exists() else ""


def _prepare_root(root: Path) -> None:
    """Make ``root`` ready for a new lab: refuse a running one, clear a stale one."""
    state = load(root)
    if state is not None and any(processes.is_running(p) for p in state.processes):
        raise Conflict(
            f"A lab is already up at {root}; stop it with `quipu lab down` before starting another."
        )
    if (root / MARKER_FILE).exists():
        logger.info("clearing the stopped lab left at %s", root)
        lab_down(root=root)
    elif root.exists() and any(root.iterdir()):
        raise LabError(f"{root} exists and is not a lab directory; choose another data dir.")
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    (root / MARKER_FILE).touch()


def _plan_hosts(*, net: str, hosts: int, slow: int, port: int, namespaced: bool) -> list[LabHost]:
    width = max(2, len(str(hosts)))
    shared = _machine_identity()
    planned = []
    for index in range(1, hosts + 1):
        hostname, machine_id = (
            (f"lab-{index:0{width}d}", secrets.token_hex(16)) if namespaced else shared
        )
        planned.append(
            LabHost(
                address=f"{net}.{index}",
                port=port,
                hostname=hostname,
                machine_id=machine_id,
                slow=False,
            )
        )
    for index in range(hosts + 1, hosts + slow + 1):
        planned.append(
            LabHost(address=f"{net}.{index}", port=port, hostname="", machine_id="", slow=True)
        )
    return planned


def _host_files(root: Path, index: int) -> HostFiles:
    return HostFiles(root / "hosts" / f"{index:03d}")


def _prepare_machine(
    *, state: LabState, users: list[accounts.Account], authorized_key: str
) -> None:
    """Where namespaces are not permitted, the lab users, their homes and the sudo rule
    must be real; each change is recorded before it is made so that ``lab_down`` undoes it.

    The homes go to /home: users cannot reach a directory under a root-only one (such as
    /root), and without a mount namespace nothing can bind them elsewhere.
    """
    cleanup = state.cleanup
    existing = [str(user.home) for user in users if user.home.exists()]
    if existing:
        raise LabError(f"{', '.join(existing)} already exists; remove it before starting the lab.")
    cleanup.users = [user.name for user in users]
    cleanup.trees = [str(user.home) for user in users]
    sudoers = _SUDOERS_DIR / f"quipu-lab-{secrets.token_hex(4)}"
    cleanup.files.append(str(sudoers))
    if not _PRIVSEP_DIR.exists():
        cleanup.directories.append(str(_PRIVSEP_DIR))
    save(state)
    accounts.create_real_users(users)
    accounts.make_homes(accounts=users, base=_HOMES, authorized_key=authorized_key)
    sudoers.touch(mode=0o440)
    sudoers.write_text(accounts.sudoers_rules())
    _PRIVSEP_DIR.mkdir(mode=0o755, exist_ok=True)


def _launch(command: list[str], *, log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with log.open("wb") as output:
        return subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )


def _tail(*paths: Path, lines: int = 5) -> str:
    text = []
    for path in paths:
        with contextlib.suppress(OSError):
            text += path.read_text(errors="replace").strip().splitlines()
    return " | ".join(text[-lines:]) or "no output"


def _read_pid(path: Path, *, deadline: float) -> int | None:
    # A launcher exits once the pid file has content; it may still be being written.
    while True:
        with contextlib.suppress(OSError, ValueError):
            return int(path.read_text().strip())
        if time.monotonic() > deadline:
            return None
        time.sleep(0.01)


def _answers(host: LabHost, *, deadline: float) -> bool:
    """True once the host accepts TCP and, unless slow, sends an SSH banner."""
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host.address, host.port), timeout=5) as sock:
                if host.slow:
                    return True
                banner = b""
                while b"\n" not in banner:
                    chunk = sock.recv(256)
                    if not chunk:
                        break
                    banner += chunk
                if banner.startswith(b"SSH-"):
                    return True
        except OSError:
            pass
        time.sleep(0.05)
    return False


@dataclasses.dataclass(frozen=True)
class _Launch:
    label: str
    process: subprocess.Popen[bytes]
    pid_file: Path
    logs: tuple[Path, ...]
    namespaced: bool
    """True when the process runs in namespaces of its own (the hung hosts do not)."""


def _start(
    *, state: LabState, launches: list[tuple[list[str], HostFiles]], hung: list[str]
) -> None:
    """Start every host at once, record their processes, and wait until each answers."""
    lab = state.lab
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
    started = [
        _Launch(
            label=files.directory.name,
            process=_launch(command, log=files.launch_log, env=env),
            pid_file=files.pid_file,
            logs=(files.launch_log, files.log),
            namespaced=lab.namespaces,
        )
        for command, files in launches
    ]
    if hung:
        pid_file, log = lab.root / _HUNG_PID_FILE, lab.root / "hung.log"
        command = [sys.executable, "-m", "quipu.lab.hung", "--port", str(lab.hosts[0].port)]
        command += ["--pid-file", str(pid_file), *hung]
        process = _launch(command, log=log, env=dict(os.environ))
        started.append(_Launch("hung hosts", process, pid_file, (log,), namespaced=False))
    deadline = time.monotonic() + _START_TIMEOUT
    failures = []
    try:
        for launch in started:
            try:
                code = launch.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                failures.append(f"{launch.label}: still starting after {_START_TIMEOUT:.0f} s")
                continue
            if code != 0:
                failures.append(f"{launch.label}: {_tail(*launch.logs)}")
    finally:
        for launch in started:
            if launch.process.poll() is None:
                # The whole group: a launcher's sshd shares it.
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(launch.process.pid, signal.SIGKILL)
                launch.process.wait()
    for launch in started:
        pid = _read_pid(launch.pid_file, deadline=time.monotonic() + (0 if failures else 1))
        found = None if pid is None else processes.record(pid=pid, namespaced=launch.namespaced)
        if found is not None:
            state.processes.append(found)
        elif not failures:
            failures.append(f"{launch.label}: no process after start ({_tail(*launch.logs)})")
    save(state)
    if failures:
        raise LabError("Lab hosts failed to start: " + "; ".join(failures))
    with ThreadPoolExecutor(max_workers=min(32, len(lab.hosts))) as pool:
        answered = list(pool.map(lambda host: _answers(host, deadline=deadline), lab.hosts))
    silent = [host.address for host, ok in zip(lab.hosts, answered, strict=True) if not ok]
    if silent:
        raise LabError(f"Lab hosts did not answer within {_START_TIMEOUT:.0f} s: {silent}")


def lab_up(
    *, root: Path, hosts: int = 3, net: str = "127.0.100", port: int = 2222, slow: int = 0
) -> Lab:
    """Start ``hosts`` sshd hosts on ``{net}.1`` onwards and ``slow`` hung ones after them,
    all on ``port``; everything the lab needs lives under ``root``."""
    _validate(net=net, hosts=hosts, port=port, slow=slow)
    if os.geteuid() != 0:
        raise LabError("The lab needs root: sshd must switch to the lab users.")
    root = root.resolve()
    _ensure_packages()
    namespaced = _namespaces_permitted()
    if namespaced and root.is_relative_to("/run"):
        raise InvalidInput(
            f"The lab directory cannot be under /run (got {root}); each host has a /run of "
            "its own. Choose another data dir.",
            field="root",
        )
    if not namespaced:
        logger.warning(
            "unshare is not permitted here: lab hosts share this machine's hostname and "
            "machine id, and the lab users are added to this machine until `quipu lab down`"
        )
    _prepare_root(root)
    started_at = time.monotonic()
    try:
        lab = _build(root=root, net=net, hosts=hosts, port=port, slow=slow, namespaced=namespaced)
    except BaseException:
        lab_down(root=root)
        raise
    logger.info(
        "lab up at %s: %d hosts, %d slow, in %.1f s",
        root,
        hosts,
        slow,
        time.monotonic() - started_at,
    )
    return lab


def _build(*, root: Path, net: str, hosts: int, port: int, slow: int, namespaced: bool) -> Lab:
    password = accounts.new_password()
    users = accounts.plan(password=password, home_base=_HOMES, real=not namespaced)
    key_path = root / "keys" / accounts.SUDO_USER
    lab = Lab(
        root=root,
        hosts=_plan_hosts(net=net, hosts=hosts, slow=slow, port=port, namespaced=namespaced),
        sudo_user=accounts.SUDO_USER,
        sudo_key_path=key_path,
        password_user=accounts.PASSWORD_USER,
        password=password,
        namespaces=namespaced,
    )
    state = LabState(lab=lab, cleanup=Cleanup())
    save(state)
    authorized_key = accounts.write_key_pair(key_path)
    etc_copies = root / "etc"
    if namespaced:
        accounts.make_homes(accounts=users, base=root / "home", authorized_key=authorized_key)
        accounts.write_account_files(accounts=users, target=etc_copies)
    else:
        _prepare_machine(state=state, users=users, authorized_key=authorized_key)
    launches = []
    for index, host in enumerate(lab.hosts, start=1):
        if host.slow:
            continue
        files = _host_files(root, index)
        write_host(
            files=files,
            address=host.address,
            port=host.port,
            hostname=host.hostname,
            machine_id=host.machine_id,
            namespaced=namespaced,
        )
        setup = (
            namespace_setup(
                files=files,
                hostname=host.hostname,
                root=root,
                etc_copies=etc_copies,
                users=[user.name for user in users],
            )
            if namespaced
            else None
        )
        launches.append((launch_command(files=files, setup=setup), files))
    hung = [host.address for host in lab.hosts if host.slow]
    _start(state=state, launches=launches, hung=hung)
    return lab


def load_lab(*, root: Path) -> Lab | None:
    """The running lab described by ``root``, or None when none is running there."""
    state = load(root.resolve())
    if state is None or not any(processes.is_running(p) for p in state.processes):
        return None
    return state.lab


def lab_down(*, root: Path) -> None:
    """Stop every process the lab at ``root`` started, undo its changes to the machine and
    remove ``root``; does nothing when there is no lab there."""
    root = root.resolve()
    if not root.exists():
        return
    if not (root / MARKER_FILE).exists():
        if any(root.iterdir()):
            raise LabError(f"{root} is not a lab directory; it was left as it is.")
        root.rmdir()
        return
    state = load(root)
    if state is not None:
        namespaces = processes.live_namespaces(state.processes)
        processes.terminate(processes.members(state.processes))
        # Sessions forked while the listeners were being stopped.
        processes.terminate(processes.in_namespaces(namespaces))
        _undo(state.cleanup)
    shutil.rmtree(root)
    logger.info("lab at %s is down", root)


def _undo(cleanup: Cleanup) -> None:
    for user in cleanup.users:
        accounts.remove_real_user(user)
    for file in cleanup.files:
        with contextlib.suppress(FileNotFoundError):
            Path(file).unlink()
    for tree in cleanup.trees:
        shutil.rmtree(tree, ignore_errors=True)
    for directory in cleanup.directories:
        with contextlib.suppress(OSError):
            Path(directory).rmdir()
