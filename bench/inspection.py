"""Inspection benchmark: lab hosts inspected per second over SSH, Quipu against Ansible.

Run: ``.venv/bin/python -m bench.inspection [--hosts 50] [--smoke] [--output PATH]``.

A lab of ``--hosts`` sshd hosts is brought up (and always brought down). Quipu inspects
them with ``inspect_many`` at concurrency 50: one connection and one script per host. The
reference runs the same fact commands with Ansible's ``raw`` module, one task per command,
forks=50, Ansible's default SSH multiplexing and the curve25519 key exchange pinned (as the
incumbent tool does); when paramiko is installed, a sequential loop with one channel per
command is measured too. Quipu and Ansible run alternately, ``--rounds`` times each, and
the figures are medians. ``--smoke`` inspects 3 hosts, once, with Quipu only.

The references need ``ansible-core`` (and ``paramiko``) installed in the same environment;
without them only Quipu's figure is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.machine import machine, version
from quipu.collectors.network import script
from quipu.collectors.network.inspect import inspect_many
from quipu.lab import Lab, lab_down, lab_up
from quipu.wire import Credential, SystemResult

RESULTS = Path(__file__).parent / "results"
CONCURRENCY = 50
TIMEOUT = 120.0
KEX = "curve25519-sha256"


def _ansible_playbook() -> str | None:
    beside = Path(sys.executable).parent / "ansible-playbook"
    return str(beside) if beside.exists() else shutil.which("ansible-playbook")


def _machine(loop_name: str) -> dict[str, Any]:
    sshd = subprocess.run(["/usr/sbin/sshd", "-V"], capture_output=True, text=True, check=False)
    return machine(
        openssh=sshd.stderr.strip().split(",")[0],
        asyncssh=version("asyncssh"),
        ansible_core=version("ansible-core"),
        paramiko=version("paramiko"),
        loop=loop_name,
    )


@contextlib.contextmanager
def _lab(*, hosts: int, net: str, port: int) -> Iterator[Lab]:
    root = Path(tempfile.mkdtemp(prefix="quipu-bench-inspection-")) / "lab"
    try:
        yield lab_up(root=root, hosts=hosts, net=net, port=port)
    finally:
        lab_down(root=root)
        with contextlib.suppress(OSError):
            root.parent.rmdir()


def _credential(lab: Lab) -> Credential:
    return Credential(
        id=1, name="bench", username=lab.sudo_user, ssh_key=lab.sudo_key_path.read_text()
    )


async def _quipu(lab: Lab) -> dict[str, Any]:
    credential = _credential(lab)
    results: list[SystemResult] = []

    async def collect(result: SystemResult) -> None:
        results.append(result)

    started = time.perf_counter()
    await inspect_many(
        systems=[(host.address, host.port, credential) for host in lab.hosts],
        concurrency=CONCURRENCY,
        timeout=TIMEOUT,
        on_result=collect,
    )
    seconds = time.perf_counter() - started
    succeeded = [r for r in results if r.status == "success" and r.facts.get("has_sudo")]
    failures = sorted({r.message for r in results if r not in succeeded})
    return {
        "seconds": seconds,
        "hosts_per_s": len(succeeded) / seconds,
        "succeeded": len(succeeded),
        "failures": failures,
    }


def _tasks(marker: str) -> list[tuple[script.Command, str]]:
    return [(command, script.standalone(command, marker=marker)) for command in script.COMMANDS]


def _playbook(marker: str) -> str:
    tasks = []
    for command, text in _tasks(marker):
        become = command.privilege is not script.Privilege.NONE
        tasks.append(
            {
                "name": command.name,
                "raw": text,
                "become": become,
                "failed_when": False,
                "changed_when": False,
            }
        )
    play = [{"hosts": "lab", "gather_facts": False, "tasks": tasks}]
    # JSON is YAML: no YAML library is needed to write the playbook.
    return json.dumps(play, indent=2)


def _ansible_files(lab: Lab, directory: Path) -> tuple[Path, Path, Path]:
    inventory = directory / "inventory.ini"
    ssh_args = f"-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o KexAlgorithms={KEX}"
    lines = ["[lab]"]
    lines += [f"h{i} ansible_host={host.address}" for i, host in enumerate(lab.hosts, start=1)]
    lines += [
        "[lab:vars]",
        f"ansible_port={lab.hosts[0].port}",
        f"ansible_user={lab.sudo_user}",
        f"ansible_ssh_private_key_file={lab.sudo_key_path}",
        f"ansible_ssh_common_args='{ssh_args}'",
    ]
    inventory.write_text("\n".join(lines) + "\n")
    playbook = directory / "inspect.json"
    playbook.write_text(_playbook(script.new_marker()))
    config = directory / "ansible.cfg"
    config.write_text(
        "[defaults]\n"
        f"forks = {CONCURRENCY}\n"
        "host_key_checking = False\n"
        "gathering = explicit\n"
        "retry_files_enabled = False\n"
        "[ssh_connection]\n"
        # Ansible's default multiplexing, with masters that outlive a round only briefly.
        "ssh_args = -C -o ControlMaster=auto -o ControlPersist=30s\n"
        f"control_path_dir = {directory / 'cp'}\n"
    )
    return inventory, playbook, config


def _end_ssh_masters(directory: Path) -> None:
    """Ask each multiplexing master this round started to exit, so that the next round
    connects afresh as the first one did."""
    for socket_path in (directory / "cp").glob("*"):
        subprocess.run(
            ["ssh", "-o", f"ControlPath={socket_path}", "-O", "exit", "lab"],
            capture_output=True,
            check=False,
        )


def _ansible(lab: Lab, *, executable: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="quipu-bench-ansible-") as temporary:
        directory = Path(temporary)
        inventory, playbook, config = _ansible_files(lab, directory)
        env = {
            **os.environ,
            "ANSIBLE_CONFIG": str(config),
            "ANSIBLE_HOME": str(directory / "home"),
            "ANSIBLE_LOCAL_TEMP": str(directory / "tmp"),
            "ANSIBLE_NOCOLOR": "1",
        }
        started = time.perf_counter()
        run = subprocess.run(
            [executable, "-i", str(inventory), str(playbook)],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        seconds = time.perf_counter() - started
        _end_ssh_masters(directory)
    tasks = len(script.COMMANDS)
    succeeded = 0
    for line in run.stdout.splitlines():
        words = dict(part.split("=", 1) for part in line.split() if "=" in part)
        if words.get("ok") == str(tasks) and words.get("failed") == words.get("unreachable") == "0":
            succeeded += 1
    failures = [] if succeeded == len(lab.hosts) else [run.stdout[-2000:] + run.stderr[-2000:]]
    return {
        "seconds": seconds,
        "hosts_per_s": succeeded / seconds,
        "succeeded": succeeded,
        "failures": failures,
    }


def _paramiko_sequential(lab: Lab) -> dict[str, Any] | None:
    try:
        import paramiko
    except ImportError:
        return None
    key = paramiko.Ed25519Key.from_private_key_file(str(lab.sudo_key_path))
    commands = []
    for command, text in _tasks(script.new_marker()):
        if command.privilege is not script.Privilege.NONE:
            text = f"sudo -n /bin/sh -c {shlex.quote(text)}"
        commands.append(text)
    succeeded = 0
    started = time.perf_counter()
    for host in lab.hosts:
        client = paramiko.SSHClient()
        # Lab hosts have fresh keys on every start; nothing to verify them against.
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        client.connect(
            host.address,
            port=host.port,
            username=lab.sudo_user,
            pkey=key,
            look_for_keys=False,
            allow_agent=False,
        )
        try:
            for text in commands:
                _, stdout, _ = client.exec_command(text)
                stdout.read()
                stdout.channel.recv_exit_status()
            succeeded += 1
        finally:
            client.close()
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "hosts_per_s": succeeded / seconds, "succeeded": succeeded}


def _median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "hosts_per_s": statistics.median(run["hosts_per_s"] for run in runs),
        "runs": runs,
    }


def _run(args: argparse.Namespace, loop_name: str) -> dict[str, Any]:
    hosts = 3 if args.smoke else args.hosts
    rounds = 1 if args.smoke else args.rounds
    ansible = None if args.smoke else _ansible_playbook()
    described = _machine(loop_name)
    print(
        f"bench machine: cores={described['cores']} memory={described['memory_gib']}GiB "
        f"python={described['python']} {described['openssh']} asyncssh={described['asyncssh']} "
        f"ansible-core={described['ansible_core'] or 'missing'} loop={loop_name}"
    )
    runner = _loop_runner(loop_name)
    quipu_runs: list[dict[str, Any]] = []
    ansible_runs: list[dict[str, Any]] = []
    with _lab(hosts=hosts, net=args.net, port=args.port) as lab:
        for _ in range(rounds):
            quipu_runs.append(runner(_quipu(lab)))
            if ansible is not None:
                ansible_runs.append(_ansible(lab, executable=ansible))
        sequential = None if args.smoke else _paramiko_sequential(lab)
    quipu = _median(quipu_runs)
    reference = _median(ansible_runs) if ansible_runs else None
    line = f"bench inspection: quipu={quipu['hosts_per_s']:.1f} hosts/s"
    if reference is not None:
        ratio = quipu["hosts_per_s"] / reference["hosts_per_s"] if reference["hosts_per_s"] else 0
        line += f" reference={reference['hosts_per_s']:.1f} hosts/s ratio={ratio:.2f}"
    else:
        line += " reference=n/a ratio=n/a"
    line += f" hosts={hosts} concurrency={CONCURRENCY} rounds={rounds}"
    print(line)
    if sequential is not None:
        print(f"bench inspection-paramiko-sequential: {sequential['hosts_per_s']:.2f} hosts/s")
    for name, runs in (("quipu", quipu_runs), ("ansible", ansible_runs)):
        for run in runs:
            for failure in run["failures"]:
                print(f"bench warning: {name}: {failure}")
    return {
        "machine": described,
        "smoke": args.smoke,
        "hosts": hosts,
        "concurrency": CONCURRENCY,
        "fact_commands": len(script.COMMANDS),
        "quipu": quipu,
        "reference_ansible_raw": reference,
        "reference_paramiko_sequential": sequential,
    }


def _loop_runner(loop_name: str) -> Any:
    if loop_name == "uvloop":
        import uvloop

        return uvloop.run
    return asyncio.run


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.inspection", description=__doc__)
    parser.add_argument("--hosts", type=int, default=50, help="lab hosts to inspect")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each tool")
    parser.add_argument("--smoke", action="store_true", help="3 hosts, once, Quipu only")
    parser.add_argument("--net", default="127.0.215", help="the lab's first three octets")
    parser.add_argument("--port", type=int, default=22215, help="the lab hosts' SSH port")
    parser.add_argument("--output", type=Path, help="where to write the figures as JSON")
    args = parser.parse_args()
    if os.geteuid() != 0:
        parser.error("the lab starts sshd and needs root")
    try:
        import uvloop  # noqa: F401
    except ImportError:
        loop_name = "asyncio"
    else:
        loop_name = "uvloop"
    report = _run(args, loop_name)
    output = args.output or RESULTS / ("inspection-smoke.json" if args.smoke else "inspection.json")
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=4, sort_keys=True) + "\n")
    print(f"bench results: {output}")


if __name__ == "__main__":
    main()
