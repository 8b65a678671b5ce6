"""Re-assignment benchmark: seconds from a scanner's SIGKILL to its jobs running on another.

Run: ``python -m bench.reassign [--smoke] [--rounds N] [--output PATH]`` (as root: the lab
starts sshd).

A lab of real sshd hosts comes up on loopback addresses (some of them slow: they accept TCP
and never answer SSH, so the scanner jobs that hold them run until stopped). For each
setting, a real ``quipu server`` (SQLite, no built-in scanner) and two real ``quipu scanner
run`` processes, ``a`` and ``b``, are started; a network scan of the lab is split into jobs
of two systems over both scanners. Once ``a`` runs a job, it is killed with SIGKILL, and the
database is watched until every job ``a`` held is assigned to ``b`` (``reassigned``) and
running or finished there (the figure).

Settings: ``default`` (QUIPU_HEARTBEAT_S=15, QUIPU_HEARTBEAT_TIMEOUT_S=45; the goal is at most
60 s) and ``tight`` (1 and 4). The dispatcher keeps its default interval (1 s). ``--smoke``
measures the tight setting once on a smaller lab. The lab, the servers and the scanners
are always brought down.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from bench.claims import Server
from bench.machine import machine
from quipu.lab import Lab, lab_down, lab_up
from quipu.store import Store
from quipu.store.tables import Scanner, ScannerJob

RESULTS = Path(__file__).parent / "results"
GOAL_S = 60.0
SETTINGS: dict[str, dict[str, str]] = {
    "default": {"QUIPU_HEARTBEAT_S": "15", "QUIPU_HEARTBEAT_TIMEOUT_S": "45"},
    "tight": {"QUIPU_HEARTBEAT_S": "1", "QUIPU_HEARTBEAT_TIMEOUT_S": "4"},
}
SCANNER_CONCURRENCY = 8
"""Enough slots that ``b`` takes ``a``'s jobs at once: the figure is the hand-over, not a
queue behind ``b``'s own work."""
HUNG_SSH_S = 600
"""The scanners' SSH connect timeout: a job holding a slow host runs until it is stopped."""


@dataclass
class Measure:
    setting: str
    heartbeat_s: float
    heartbeat_timeout_s: float
    held: int
    """Jobs ``a`` had claimed or was running when it was killed."""
    since_heartbeat_s: float
    """How long before the kill ``a`` had last heartbeated."""
    reassigned_s: float
    running_s: float


@contextlib.contextmanager
def _lab(*, hosts: int, slow: int, net: str, port: int) -> Iterator[Lab]:
    root = Path(tempfile.mkdtemp(prefix="quipu-bench-reassign-")) / "lab"
    try:
        yield lab_up(root=root, hosts=hosts, slow=slow, net=net, port=port)
    finally:
        lab_down(root=root)
        with contextlib.suppress(OSError):
            root.parent.rmdir()


def _scanner(server: Server, *, api_key: str, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **server.env,
        "QUIPU_SCANNER_API_KEY": api_key,
        "QUIPU_SSH_CONNECT_TIMEOUT_S": str(HUNG_SSH_S),
    }
    with log.open("wb") as out:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "quipu.cli.quipu",
                "scanner",
                "run",
                "--server",
                server.url,
                "--concurrency",
                str(SCANNER_CONCURRENCY),
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _stop_all(processes: Sequence[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        _stop(process)


def _wait(predicate: Any, *, timeout: float, what: str) -> float:
    """Seconds until ``predicate()`` holds, polled every 0.1 s."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic() - started
        time.sleep(0.1)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


def _start_scan(admin: httpx.Client, lab: Lab, *, scanner_ids: Sequence[int]) -> None:
    credential = admin.post(
        "/api/v2/credentials/",
        json={
            "name": "lab",
            "cred_type": "network",
            "username": lab.sudo_user,
            "ssh_key": lab.sudo_key_path.read_text(),
        },
    )
    credential.raise_for_status()
    first, last = lab.hosts[0].address, lab.hosts[-1].address
    source = admin.post(
        "/api/v2/sources/",
        json={
            "name": "lab",
            "source_type": "network",
            "hosts": [f"{first}-{last}"],
            "port": lab.hosts[0].port,
            "credentials": [credential.json()["id"]],
            "scanners": list(scanner_ids),
        },
    )
    source.raise_for_status()
    scan = admin.post("/api/v1/scans/", json={"name": "reassign", "sources": [source.json()["id"]]})
    scan.raise_for_status()
    admin.post(f"/api/v1/scans/{scan.json()['id']}/jobs/").raise_for_status()


def measure(setting: str, *, lab: Lab, env: Mapping[str, str]) -> Measure:
    """One server, two scanners, one kill."""
    heartbeat_timeout = float(env["QUIPU_HEARTBEAT_TIMEOUT_S"])
    data_dir = Path(tempfile.mkdtemp(prefix="quipu-bench-reassign-server-"))
    processes: list[subprocess.Popen[bytes]] = []
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, data_dir, ignore_errors=True)
        server = Server.start(
            data_dir=data_dir,
            database_url=f"sqlite:///{data_dir / 'quipu.db'}",
            env={**env, "QUIPU_SYSTEMS_PER_JOB": "2"},
        )
        stack.callback(server.stop)
        # Scanners stop before the server, so that they can hand their jobs back.
        stack.callback(_stop_all, processes)
        store = Store.from_url(f"sqlite:///{data_dir / 'quipu.db'}")
        stack.callback(store.dispose)
        admin = stack.enter_context(server.admin())
        ids: dict[str, int] = {}
        for name in ("a", "b"):
            response = admin.post("/api/v1/scanners/", json={"name": name})
            response.raise_for_status()
            ids[name] = int(response.json()["id"])
            processes.append(
                _scanner(
                    server,
                    api_key=response.json()["api_key"],
                    log=data_dir / f"scanner-{name}.log",
                )
            )
        _start_scan(admin, lab, scanner_ids=[ids["a"], ids["b"]])

        def held() -> list[int]:
            with store.transaction() as s:
                return list(
                    s.scalars(
                        select(ScannerJob.id).where(
                            ScannerJob.scanner_id == ids["a"],
                            ScannerJob.status.in_(["claimed", "running"]),
                        )
                    )
                )

        def a_is_running() -> bool:
            with store.transaction() as s:
                return bool(
                    s.scalars(
                        select(ScannerJob.id).where(
                            ScannerJob.scanner_id == ids["a"], ScannerJob.status == "running"
                        )
                    ).first()
                )

        _wait(a_is_running, timeout=120, what="scanner a to run a job")
        jobs = held()
        processes[0].send_signal(signal.SIGKILL)
        processes[0].wait()
        killed = time.monotonic()
        killed_at = datetime.now(UTC)
        with store.transaction() as s:
            last_heartbeat = s.get_one(Scanner, ids["a"]).last_heartbeat
        since_heartbeat = (killed_at - last_heartbeat).total_seconds() if last_heartbeat else 0.0

        def rows() -> list[tuple[int | None, str]]:
            with store.transaction() as s:
                return [
                    (sid, status)
                    for sid, status in s.execute(
                        select(ScannerJob.scanner_id, ScannerJob.status).where(
                            ScannerJob.id.in_(jobs)
                        )
                    )
                ]

        def reassigned() -> bool:
            return all(sid == ids["b"] for sid, _ in rows())

        def running_on_b() -> bool:
            return all(
                sid == ids["b"] and status in ("running", "completed", "failed")
                for sid, status in rows()
            )

        limit = heartbeat_timeout + 120
        _wait(reassigned, timeout=limit, what="scanner a's jobs to be re-assigned")
        reassigned_s = time.monotonic() - killed
        _wait(running_on_b, timeout=limit, what="scanner a's jobs to run on scanner b")
        running_s = time.monotonic() - killed
    return Measure(
        setting=setting,
        heartbeat_s=float(env["QUIPU_HEARTBEAT_S"]),
        heartbeat_timeout_s=heartbeat_timeout,
        held=len(jobs),
        since_heartbeat_s=round(since_heartbeat, 3),
        reassigned_s=round(reassigned_s, 3),
        running_s=round(running_s, 3),
    )


def _line(setting: str, runs: Sequence[Measure]) -> str:
    seconds = statistics.median(m.running_s for m in runs)
    timeout = runs[0].heartbeat_timeout_s
    if setting == "default":
        verdict = "met" if seconds <= GOAL_S else "missed"
        return f"bench reassign-default: quipu={seconds:.1f} s goal={GOAL_S:.0f} s ({verdict})"
    return f"bench reassign-{setting}: quipu={seconds:.1f} s heartbeat_timeout={timeout:.0f} s"


def run(args: argparse.Namespace) -> dict[str, Any]:
    settings = ["tight"] if args.smoke else ["default", "tight"]
    rounds = 1 if args.smoke else args.rounds
    hosts, slow = (1, 3) if args.smoke else (4, 8)
    info = machine(database="sqlite", scanner_concurrency=SCANNER_CONCURRENCY)
    print(
        f"bench machine: cores={info['cores']} memory={info['memory_gib']}GiB "
        f"python={info['python']} database=sqlite lab={hosts}+{slow} slow",
        flush=True,
    )
    results: dict[str, list[Measure]] = {}
    with _lab(hosts=hosts, slow=slow, net=args.net, port=args.port) as lab:
        for setting in settings:
            # The default setting waits a whole timeout per round: it is measured once.
            count = 1 if setting == "default" else rounds
            results[setting] = [
                measure(setting, lab=lab, env=SETTINGS[setting]) for _ in range(count)
            ]
            for m in results[setting]:
                print(
                    f"reassign-{setting}: held={m.held} "
                    f"since_heartbeat={m.since_heartbeat_s:.1f} s "
                    f"reassigned={m.reassigned_s:.1f} s running={m.running_s:.1f} s",
                    flush=True,
                )
            print(_line(setting, results[setting]), flush=True)
    return {
        "benchmark": "reassign",
        "machine": info,
        "smoke": args.smoke,
        "lab": {"hosts": hosts, "slow": slow},
        "goal_s": GOAL_S,
        "settings": {name: SETTINGS[name] for name in settings},
        "figures": [
            {
                "name": f"reassign-{setting}",
                "unit": "s",
                "quipu": statistics.median(m.running_s for m in runs),
                "runs": [asdict(m) for m in runs],
            }
            for setting, runs in results.items()
        ],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.reassign", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument("--smoke", action="store_true", help="tight setting once, small lab")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the tight setting")
    parser.add_argument("--net", default="127.0.241", help="the lab's first three octets")
    parser.add_argument("--port", type=int, default=2241, help="the lab hosts' SSH port")
    parser.add_argument("--output", type=Path, help="where to write the figures as JSON")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        parser.error("the lab starts sshd and needs root")
    # Stopped from outside (the runner, a timeout): unwind, so the lab comes down.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    report = run(args)
    output = args.output or RESULTS / ("reassign-smoke.json" if args.smoke else "reassign.json")
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=4, sort_keys=True) + "\n")
    print(f"bench results: {output}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
