"""Benchmark: building the deployments report for 1k, 10k and 100k systems.

Run ``python -m bench.reports [--smoke] [--results PATH]``. Each size runs in a fresh
interpreter so one size's memory cannot flatter or burden the next. The child generates
synthetic network, satellite and vCenter facts for ``n`` systems (materialized first, as the
server would hold a page of rows), then times ``build_deployments`` alone.

Memory is the resident set the build adds on top of its input: the child's peak RSS
(``ru_maxrss``, which counts every byte the process really touched, allocator slack
included) minus its RSS just before the build. tracemalloc was not used: it slows the
build and misses allocator overhead.

The estate overlaps the way real ones do, so every merge path runs: the network reaches
70% of systems (5% of them twice, once without sudo), Satellite knows the 60% that are
registered, vCenter every VM (half the systems); hypervisors disagree with guests on CPU
counts; every network record carries a loopback MAC, some a VPN adapter MAC shared by all,
and a few clones share a machine id and a placeholder BIOS UUID. Every system has its own
MAC, so a correct merge yields exactly one fingerprint per system: ``deployments`` must
equal ``expected``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import resource
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from quipu.reports import SourceFacts, build_deployments

SIZES = (1_000, 10_000, 100_000)
SMOKE_SIZES = (1_000,)
ROOT = Path(__file__).resolve().parent.parent
DEFAULT_RESULTS = ROOT / "bench" / "results" / "reports.json"
_PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024
_VPN_MAC = "00:05:9a:3c:7a:00"


def _mac(prefix: str, n: int) -> str:
    return f"{prefix}:{(n >> 16) & 255:02x}:{(n >> 8) & 255:02x}:{n & 255:02x}"


def synthetic_sources(systems: int, *, seed: int = 7) -> tuple[list[SourceFacts], int]:
    """Facts of ``systems`` systems as three sources report them, and the record count."""
    rng = random.Random(seed)
    lab: list[dict[str, Any]] = []
    sat: list[dict[str, Any]] = []
    vc: list[dict[str, Any]] = []
    for n in range(systems):
        is_vm = rng.random() < 0.5
        macs = [_mac("00:50:56" if is_vm else "a0:36:9f", n)]
        if rng.random() < 0.3:
            macs.append(_mac("00:1b:21", n))
        bios = str(uuid.UUID(int=(0x4221 << 112) | n))
        subscription = str(uuid.UUID(int=(0xAAAA << 112) | n))
        cloned = not is_vm and rng.random() < 0.01
        cpus = rng.choice((1, 2, 4, 8, 16))
        on_network = rng.random() < 0.7
        registered = rng.random() < 0.6
        if not (on_network or registered or is_vm):
            on_network = True
        if on_network:
            record = {
                "system": f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}",
                "has_sudo": True,
                "uname_hostname": f"host{n}.example.com",
                "uname_processor": "x86_64",
                "etc_release_name": "Red Hat Enterprise Linux",
                "etc_release_version": rng.choice(("8.9", "9.2", "9.4")),
                "etc_machine_id": "c10e" * 8 if cloned else f"{n + 1:032x}",
                "dmi_system_uuid": "Not Settable" if cloned else bios,
                "cpu_count": cpus,
                "cpu_socket_count": 1,
                "cpu_core_count": cpus,
                "system_memory_bytes": cpus * 2 * 1024**3 - 123_456_789,
                "virt_what_type": "vmware" if is_vm else "bare metal",
                "ifconfig_mac_addresses": [*macs, "00:00:00:00:00:00"]
                + ([_VPN_MAC] if rng.random() < 0.1 else []),
                "ifconfig_ip_addresses": [
                    f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}",
                    "127.0.0.1",
                ],
                "redhat_packages_gpg_num_rh_packages": rng.randint(300, 1500),
                "subman_consumed": [{"name": "Red Hat Enterprise Linux Server"}]
                if registered
                else [],
                "subscription_manager_id": subscription
                if registered and rng.random() < 0.5
                else None,
                "system_last_checkin_date": "2024-05-01T10:00:00Z",
            }
            lab.append(record)
            if rng.random() < 0.05:
                again = dict(record, has_sudo=False, dmi_system_uuid=None, cpu_socket_count=None)
                again["system"] = f"172.16.{n >> 8 & 255}.{n & 255}"
                lab.append(again)
        if registered:
            sat.append(
                {
                    "hostname": f"host{n}.example.com",
                    "uuid": subscription,
                    "os_name": "RedHat",
                    "os_release": "9.2",
                    "architecture": "x86_64",
                    "cores": cpus,
                    "num_sockets": 1,
                    "is_virtualized": is_vm,
                    "mac_addresses": list(macs),
                    "ip_addresses": [f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"],
                    "entitlements": [{"name": "Red Hat Enterprise Linux Server", "id": 1}],
                    "last_checkin_time": "2024-05-02 08:00:00 UTC",
                }
            )
        if is_vm:
            vc.append(
                {
                    "vm.name": f"vm-{n}",
                    "vm.uuid": bios,
                    "vm.os": "Red Hat Enterprise Linux 9 (64-bit)",
                    "vm.state": "poweredOn",
                    "vm.cpu_count": cpus * 2,
                    "vm.memory_size": cpus * 2,
                    "vm.mac_addresses": list(macs),
                    "vm.ip_addresses": [f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"],
                    "vm.host.name": f"esx{n % 97}",
                    "vm.host.cpu_count": 2,
                    "vm.host.cpu_cores": 48,
                    "vm.host.cpu_threads": 96,
                    "vm.cluster": f"cluster{n % 7}",
                    "vm.datacenter": "dc1",
                    "vm.last_check_in": "2024-05-03 09:30:00",
                }
            )
    for facts in (lab, sat, vc):
        rng.shuffle(facts)
    sources = [
        SourceFacts(source_name="lab", source_type="network", server_id="bench", facts=lab),
        SourceFacts(source_name="sat", source_type="satellite", server_id="bench", facts=sat),
        SourceFacts(source_name="vc", source_type="vcenter", server_id="bench", facts=vc),
    ]
    return sources, len(lab) + len(sat) + len(vc)


def _rss_kib() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * _PAGE_KIB


def measure(systems: int) -> dict[str, Any]:
    """Build one report over ``systems`` systems in this process; its figures."""
    start_kib = _rss_kib()
    sources, records = synthetic_sources(systems)
    gc.collect()
    before_kib = _rss_kib()
    began = time.perf_counter()
    report = build_deployments(
        report_id=1, sources=sources, report_version="bench", platform_id="bench"
    )
    seconds = time.perf_counter() - began
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "systems": systems,
        "records": records,
        "deployments": len(report["system_fingerprints"]),
        # Every system is seen by at least one source and has its own MAC address.
        "expected_deployments": systems,
        "seconds": round(seconds, 3),
        "peak_mib": round((peak_kib - before_kib) / 1024, 1),
        "input_mib": round((before_kib - start_kib) / 1024, 1),
        "seconds_per_1k": round(seconds / systems * 1000, 4),
    }


def _run_child(systems: int) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "bench.reports", "--one", str(systems)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.reports", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--smoke", action="store_true", help="1k systems only")
    parser.add_argument(
        "--results", type=Path, default=DEFAULT_RESULTS, help="where to write the JSON"
    )
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one is not None:
        print(json.dumps(measure(args.one)))
        return 0

    sizes = SMOKE_SIZES if args.smoke else SIZES
    results = []
    for systems in sizes:
        figures = _run_child(systems)
        results.append(figures)
        print(
            f"reports-{systems}: records={figures['records']} "
            f"deployments={figures['deployments']} expected={figures['expected_deployments']} "
            f"input={figures['input_mib']} MiB"
        )
        print(
            f"bench reports-{systems}: quipu={figures['seconds']:.3f} s "
            f"peak={figures['peak_mib']:.1f} MiB"
        )
    per_1k = " ".join(f"{r['systems']}={r['seconds_per_1k']:.4f}" for r in results)
    print(f"bench reports-linearity: seconds per 1k systems {per_1k}")
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(
        json.dumps(
            {
                "benchmark": "reports",
                "what": "build_deployments over synthetic network+satellite+vcenter facts",
                "memory": "peak RSS during the build minus RSS before it, fresh process per size",
                "python": platform.python_version(),
                "machine": platform.machine(),
                "cpus": os.cpu_count(),
                "sizes": results,
            },
            indent=4,
            sort_keys=True,
        )
        + "\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
