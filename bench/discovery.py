"""Discovery benchmark: TCP probes per second of Quipu's probe against nmap, and rate fidelity.

Run: ``.venv/bin/python -m bench.discovery [--smoke] [--output PATH]``.

Both tools scan the same loopback targets in the same run, alternately, several times; the
figure is the median. Listening sockets opened here (never accepting: the kernel completes
handshakes into their backlog) make some ports open. A scenario runs for several rounds
in one invocation of each tool, so that nmap's own start-up (measured too, and reported)
weighs little on its figure; Quipu's figure is the time of its ``probe`` call.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import socket
import statistics
import subprocess
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.machine import machine
from quipu.collectors.network.probe import ProbeState, probe

RESULTS = Path(__file__).parent / "results"
CONCURRENCY = 256
TIMEOUT = 1.0


@dataclass(frozen=True)
class Scenario:
    name: str
    addresses: list[str]
    ports: list[int]
    listening: list[tuple[str, int]]
    rounds: int

    @property
    def probes(self) -> int:
        return len(self.addresses) * len(self.ports) * self.rounds


@dataclass
class Figure:
    name: str
    quipu: float
    reference: float | None
    unit: str
    details: dict[str, Any]

    def line(self) -> str:
        reference = f"{self.reference:.0f}" if self.reference else "n/a"
        ratio = f"{self.quipu / self.reference:.2f}" if self.reference else "n/a"
        return (
            f"bench {self.name}: quipu={self.quipu:.0f} {self.unit} "
            f"reference={reference} {self.unit} ratio={ratio}"
        )


def _scenarios(*, smoke: bool) -> list[Scenario]:
    if smoke:
        grid = [f"127.0.150.{i}" for i in range(1, 17)]
        return [
            Scenario("discovery-16x2", grid, [22, 8080], [(grid[0], 8080)], rounds=1),
            Scenario("discovery-1x50", ["127.0.152.1"], list(range(1, 51)), [], rounds=1),
        ]
    grid = [f"127.0.150.{i}" for i in range(1, 255)]
    ports = [22, 80, 443, 8080]
    one = "127.0.152.1"
    well_known = [7, 22, 80, 111, 139, 443, 445, 631, 873, 993]
    return [
        Scenario(
            "discovery-254x4",
            grid,
            ports,
            [(address, port) for address in grid[::8] for port in (22, 8080)],
            rounds=10,
        ),
        Scenario(
            "discovery-1x1000",
            [one],
            list(range(1, 1001)),
            [(one, port) for port in well_known],
            rounds=10,
        ),
    ]


@contextlib.contextmanager
def _listeners(endpoints: list[tuple[str, int]]) -> Iterator[set[tuple[str, int]]]:
    """Listen on ``endpoints``; yield those where something listens (ours or another's)."""
    sockets = []
    listening = set()
    try:
        for address, port in endpoints:
            sock = socket.socket()
            try:
                sock.bind((address, port))
            except OSError:
                sock.close()
                continue
            sock.listen(4096)
            sockets.append(sock)
            listening.add((address, port))
        yield listening
    finally:
        for sock in sockets:
            sock.close()


def _machine(loop_name: str) -> dict[str, Any]:
    nmap = shutil.which("nmap")
    nmap_version = "missing"
    if nmap:
        output = subprocess.run([nmap, "--version"], capture_output=True, text=True).stdout
        nmap_version = output.split("\n", 1)[0].removeprefix("Nmap version ").split(" ")[0]
    return machine(nmap=nmap_version, loop=loop_name)


async def _quipu(scenario: Scenario) -> tuple[float, set[tuple[str, int]]]:
    started = time.perf_counter()
    results = await probe(
        systems=scenario.addresses * scenario.rounds,
        ports=scenario.ports,
        max_probes_per_second=0,
        concurrency=CONCURRENCY,
        timeout=TIMEOUT,
    )
    elapsed = time.perf_counter() - started
    assert len(results) == scenario.probes
    found = {(r.address, r.port) for r in results if r.state == ProbeState.OPEN}
    return scenario.probes / elapsed, found


def _nmap_command(*, addresses: list[str], ports: list[int]) -> list[str]:
    port_list = ",".join(str(port) for port in ports)
    return ["nmap", "-sT", "-n", "-Pn", "-p", port_list, "-oX", "-", *addresses]


async def _nmap(*, addresses: list[str], ports: list[int]) -> tuple[float, set[tuple[str, int]]]:
    """Seconds of the whole nmap run, and the open ports it found."""
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        *_nmap_command(addresses=addresses, ports=ports),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    output, errors = await process.communicate()
    elapsed = time.perf_counter() - started
    if process.returncode != 0:
        raise RuntimeError(f"nmap failed: {errors.decode(errors='replace')}")
    found = set()
    for host in ElementTree.fromstring(output).iter("host"):
        address_element = host.find("address")
        address = address_element.get("addr", "") if address_element is not None else ""
        for port in host.iter("port"):
            state = port.find("state")
            if state is not None and state.get("state") == "open":
                found.add((address, int(port.get("portid", "0"))))
    return elapsed, found


async def _compare(scenario: Scenario, *, repeats: int, with_nmap: bool) -> Figure:
    quipu_rates: list[float] = []
    nmap_rates: list[float] = []
    with _listeners(scenario.listening) as listening:
        expected = {
            (address, port)
            for address in scenario.addresses
            for port in scenario.ports
            if (address, port) in listening
        }
        quipu_found: set[tuple[str, int]] = set()
        nmap_found: set[tuple[str, int]] = set()
        for _ in range(repeats):
            rate, quipu_found = await _quipu(scenario)
            quipu_rates.append(rate)
            if with_nmap:
                elapsed, nmap_found = await _nmap(
                    addresses=scenario.addresses * scenario.rounds, ports=scenario.ports
                )
                nmap_rates.append(scenario.probes / elapsed)
    quipu = statistics.median(quipu_rates)
    reference = statistics.median(nmap_rates) if nmap_rates else None
    details = {
        "probes_per_measure": scenario.probes,
        "rounds": scenario.rounds,
        "repeats": repeats,
        "concurrency": CONCURRENCY,
        "timeout_s": TIMEOUT,
        "quipu_runs": [round(rate) for rate in quipu_rates],
        "reference_runs": [round(rate) for rate in nmap_rates],
        "reference_command": "nmap -sT -n -Pn -p <ports> -oX - <targets>",
        "open_expected": len(expected),
        "quipu_open_correct": quipu_found >= expected,
        "reference_open_correct": (nmap_found >= expected) if with_nmap else None,
        "same_open_ports": (quipu_found == nmap_found) if with_nmap else None,
    }
    return Figure(scenario.name, quipu, reference, "probes/s", details)


async def _fidelity(*, cap: float, probes: int) -> Figure:
    addresses = [f"127.0.151.{i}" for i in range(1, 251)]
    ports = [9, 10, 11, 12]
    systems = [addresses[index % len(addresses)] for index in range(probes // len(ports))]
    started = time.perf_counter()
    results = await probe(
        systems=systems,
        ports=ports,
        max_probes_per_second=cap,
        concurrency=CONCURRENCY,
        timeout=TIMEOUT,
    )
    measured = len(results) / (time.perf_counter() - started)
    error = (measured - cap) / cap * 100
    return Figure(
        "discovery-rate-fidelity",
        measured,
        None,
        "probes/s",
        {"cap": cap, "probes": len(results), "error_percent": round(error, 2)},
    )


async def _nmap_startup(*, repeats: int) -> float:
    runs = []
    for _ in range(repeats):
        elapsed, _ = await _nmap(addresses=["127.0.152.254"], ports=[9])
        runs.append(elapsed)
    return statistics.median(runs)


async def _main(*, smoke: bool, loop_name: str) -> dict[str, Any]:
    with_nmap = shutil.which("nmap") is not None
    repeats = 1 if smoke else 5
    described = _machine(loop_name)
    print(
        f"bench machine: cores={described['cores']} memory={described['memory_gib']}GiB "
        f"python={described['python']} nmap={described['nmap']} loop={loop_name}"
    )
    figures = [
        await _compare(scenario, repeats=repeats, with_nmap=with_nmap)
        for scenario in _scenarios(smoke=smoke)
    ]
    for figure in figures:
        print(figure.line())
    cap, probes = (200.0, 100) if smoke else (2000.0, 10_000)
    fidelity = await _fidelity(cap=cap, probes=probes)
    print(
        f"bench {fidelity.name}: quipu={fidelity.quipu:.1f} probes/s cap={cap:.0f} "
        f"error={fidelity.details['error_percent']:+.2f}%"
    )
    startup = await _nmap_startup(repeats=repeats) if with_nmap else None
    if startup is not None:
        print(f"bench note: one nmap run costs {startup * 1000:.0f} ms before it probes anything")
    return {
        "machine": described,
        "smoke": smoke,
        "reference_startup_s": startup,
        "figures": [asdict(figure) for figure in [*figures, fidelity]],
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.discovery", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: seconds, not minutes")
    parser.add_argument("--output", type=Path, help="where to write the figures as JSON")
    args = parser.parse_args()
    output = args.output or RESULTS / ("discovery-smoke.json" if args.smoke else "discovery.json")
    try:
        import uvloop
    except ImportError:
        report = asyncio.run(_main(smoke=args.smoke, loop_name="asyncio"))
    else:
        report = uvloop.run(_main(smoke=args.smoke, loop_name="uvloop"))
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=4, sort_keys=True) + "\n")
    print(f"bench results: {output}")


if __name__ == "__main__":
    main()
