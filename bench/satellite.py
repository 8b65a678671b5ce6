"""Satellite benchmark: hosts inspected per second from a fake Satellite 6, Quipu against a
sequential client.

Run: ``.venv/bin/python -m bench.satellite [--hosts 2000] [--latency-ms 20] [--smoke]
[--results PATH]``.

The fake Satellite of ``quipu.lab.satellite`` serves ``--hosts`` hosts over HTTPS on
127.0.0.1 and answers every request after ``--latency-ms``, as a remote, busy Satellite
does; it runs in a process of its own so that its threads do not share an interpreter with
the clients measured. Quipu runs the Satellite collector's ``inspect`` on a scan job with
the default ``maxConcurrency`` (25), as a scanner does. The reference is the plain way:
one ``httpx.Client`` making the same requests one after another (``/api/status``, each page
of ``/api/v2/hosts``, then each host's details and subscriptions) and reading the same
facts. Figure: hosts / seconds, from the first request to the last host's facts. Every
host's facts are compared with what the fake says they are; a wrong or missing host makes
the run exit 1. Quipu runs ``--rounds`` times (median), the reference ``--reference-rounds``
times, alternately. ``--smoke``: 20 hosts, one round of each.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import resource
import ssl
import statistics
import sys
import time
from collections.abc import Iterator
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx

from bench.machine import machine, version
from quipu import wire
from quipu.collectors.satellite.client import PER_PAGE
from quipu.collectors.satellite.collector import inspect
from quipu.collectors.satellite.facts import host_facts
from quipu.lab.satellite import Behaviour, expected_facts, running_satellite

RESULTS = Path(__file__).parent / "results"
CONCURRENCY = 25
"""The scan's default max_concurrency, which a Satellite scan job carries."""
SMOKE_HOSTS = 20


def _serve(conn: Connection, hosts: int, latency_s: float) -> None:
    """The fake Satellite's process: says where it listens, answers counts, stops on "stop"."""
    with running_satellite(hosts=hosts, behaviour=Behaviour(latency_s=latency_s)) as sat:
        conn.send(
            {
                "port": sat.port,
                "username": sat.username,
                "password": sat.password,
                "cert_path": str(sat.cert_path),
            }
        )
        while (command := conn.recv()) != "stop":
            if command == "counts":
                conn.send(sat.satellite.take_counts())


@contextlib.contextmanager
def _satellite(*, hosts: int, latency_s: float) -> Iterator[tuple[dict[str, Any], Connection]]:
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    process = context.Process(target=_serve, args=(theirs, hosts, latency_s), daemon=True)
    process.start()
    try:
        deadline = time.monotonic() + 60
        while not ours.poll(0.2):
            if not process.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the fake Satellite did not start (see its error above)")
        yield ours.recv(), ours
    finally:
        with contextlib.suppress(OSError):
            ours.send("stop")
        process.join(10)
        if process.is_alive():
            process.kill()
            process.join()


def _counts(conn: Connection) -> dict[str, int]:
    conn.send("counts")
    counts: dict[str, int] = conn.recv()
    return counts


def _job(server: dict[str, Any], *, concurrency: int) -> wire.Job:
    return wire.Job.model_validate(
        {
            "jobId": 1,
            "scanId": 1,
            "kind": "inspect",
            "sourceType": "satellite",
            "targets": [{"range": "127.0.0.1", "ports": [server["port"]], "credentialId": 1}],
            "maxProbesPerSecond": 0,
            "credentials": [
                {
                    "id": 1,
                    "name": "bench",
                    "credType": "satellite",
                    "username": server["username"],
                    "password": server["password"],
                }
            ],
            "options": {
                "sourceName": "bench",
                "maxConcurrency": concurrency,
                "sslCertVerify": False,
                "sslProtocol": None,
                "disableSsl": False,
                "proxyUrl": None,
            },
        }
    )


async def _quipu(
    server: dict[str, Any], *, concurrency: int, expected: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    correct = 0
    statuses: dict[str, int] = {}

    async def emit(result: wire.SystemResult) -> None:
        nonlocal correct
        statuses[result.status] = statuses.get(result.status, 0) + 1
        correct += result.facts == expected.get(result.system)

    started = time.perf_counter()
    await inspect(_job(server, concurrency=concurrency), emit, asyncio.Event())
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "hosts_per_s": correct / seconds, "correct": correct, **statuses}


def _sequential(server: dict[str, Any], *, expected: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The same requests one after another on one keep-alive connection."""
    tls = ssl.create_default_context()
    tls.check_hostname = False
    tls.verify_mode = ssl.CERT_NONE
    correct = 0
    with httpx.Client(
        base_url=f"https://127.0.0.1:{server['port']}",
        auth=(server["username"], server["password"]),
        verify=tls,
        timeout=30.0,
        trust_env=False,
    ) as client:
        started = time.perf_counter()
        status = client.get("/api/status")
        status.raise_for_status()
        if status.json().get("api_version") != 2:
            raise RuntimeError("the fake Satellite does not speak API version 2")
        page = 1
        while True:
            listing = client.get(
                "/api/v2/hosts", params={"page": page, "per_page": PER_PAGE, "thin": 1}
            )
            listing.raise_for_status()
            body = listing.json()
            for host in body["results"]:
                details = client.get(f"/api/v2/hosts/{host['id']}", params={"fields": "full"})
                subscriptions = client.get(f"/api/v2/hosts/{host['id']}/subscriptions")
                if details.status_code == subscriptions.status_code == 200:
                    facts = host_facts(
                        details.json(), subscriptions=subscriptions.json()["results"]
                    )
                    correct += facts == expected.get(host["name"])
            if not body["results"] or page * body["per_page"] >= body["total"]:
                break
            page += 1
        seconds = time.perf_counter() - started
    return {"seconds": seconds, "hosts_per_s": correct / seconds, "correct": correct}


def _machine(loop_name: str) -> dict[str, Any]:
    return machine(httpx=version("httpx"), openssl=ssl.OPENSSL_VERSION, loop=loop_name)


def _loop() -> tuple[str, Any]:
    try:
        import uvloop
    except ImportError:
        return "asyncio", asyncio.run
    return "uvloop", uvloop.run


def _run(args: argparse.Namespace) -> tuple[dict[str, Any], bool]:
    hosts = SMOKE_HOSTS if args.smoke else args.hosts
    rounds = 1 if args.smoke else args.rounds
    reference_rounds = 1 if args.smoke else args.reference_rounds
    latency_s = args.latency_ms / 1000
    loop_name, run = _loop()
    described = _machine(loop_name)
    print(
        f"bench machine: cores={described['cores']} memory={described['memory_gib']}GiB "
        f"python={described['python']} httpx={described['httpx']} loop={loop_name}"
    )
    expected = expected_facts(hosts=hosts)
    quipu_runs: list[dict[str, Any]] = []
    reference_runs: list[dict[str, Any]] = []
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with _satellite(hosts=hosts, latency_s=latency_s) as (server, conn):
        for round_number in range(max(rounds, reference_rounds)):
            if round_number < rounds:
                _counts(conn)
                outcome = run(_quipu(server, concurrency=args.concurrency, expected=expected))
                quipu_runs.append({**outcome, **_counts(conn)})
            if round_number < reference_rounds:
                _counts(conn)
                reference_runs.append({**_sequential(server, expected=expected), **_counts(conn)})
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    quipu = statistics.median(r["hosts_per_s"] for r in quipu_runs)
    reference = statistics.median(r["hosts_per_s"] for r in reference_runs)
    print(
        f"bench satellite: quipu={quipu:.1f} hosts/s reference={reference:.1f} hosts/s "
        f"ratio={quipu / reference:.2f} hosts={hosts} latency_ms={args.latency_ms:g} "
        f"concurrency={args.concurrency} rounds={rounds}"
    )
    in_flight = max(r["max_in_flight"] for r in quipu_runs)
    print(
        f"satellite: quipu {quipu_runs[0]['seconds']:.2f} s for {hosts} hosts "
        f"({quipu_runs[0]['requests']} requests, at most {in_flight} at once); "
        f"sequential {reference_runs[0]['seconds']:.2f} s"
    )
    complete = all(r["correct"] == hosts for r in quipu_runs + reference_runs)
    if not complete:
        print(
            "bench warning: some hosts were missing or wrong: "
            f"quipu {[r['correct'] for r in quipu_runs]}, "
            f"sequential {[r['correct'] for r in reference_runs]} of {hosts}"
        )
    report = {
        "benchmark": "satellite",
        "smoke": args.smoke,
        "hosts": hosts,
        "latency_ms": args.latency_ms,
        "concurrency": args.concurrency,
        "machine": described,
        "quipu": {"hosts_per_s": quipu, "runs": quipu_runs},
        "reference_sequential": {"hosts_per_s": reference, "runs": reference_runs},
        "ratio": quipu / reference,
        "client_peak_rss_growth_mib": round((rss_after - rss_before) / 1024, 1),
    }
    return report, complete


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.satellite", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument("--hosts", type=int, default=2000, help="hosts the fake Satellite has")
    parser.add_argument(
        "--latency-ms", type=float, default=20.0, help="added to every answer of the fake"
    )
    parser.add_argument(
        "--concurrency", type=int, default=CONCURRENCY, help="the scan job's maxConcurrency"
    )
    parser.add_argument("--rounds", type=int, default=3, help="runs of Quipu (median)")
    parser.add_argument(
        "--reference-rounds", type=int, default=1, help="runs of the sequential client"
    )
    parser.add_argument("--smoke", action="store_true", help=f"{SMOKE_HOSTS} hosts, one round")
    parser.add_argument(
        "--results", "--output", dest="results", type=Path, help="where to write the JSON"
    )
    args = parser.parse_args(argv)
    if args.hosts < 1 or args.rounds < 1 or args.reference_rounds < 1 or args.concurrency < 1:
        parser.error("--hosts, --concurrency, --rounds and --reference-rounds must be at least 1")
    report, complete = _run(args)
    results = args.results or RESULTS / ("satellite-smoke.json" if args.smoke else "satellite.json")
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(report, indent=4, sort_keys=True) + "\n")
    print(f"bench results: {results}")
    return 0 if complete else 1


if __name__ == "__main__":
    sys.exit(main())
