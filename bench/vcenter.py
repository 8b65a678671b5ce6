"""vCenter benchmark: VMs inventoried per second from a simulated vCenter, Quipu against the
naive per-VM method, and the collector's peak memory at two inventory sizes.

Run: ``python -m bench.vcenter [--smoke] [--sizes 1000,5000] [--rounds 3] [--results PATH]``.

For each size, a simulated vCenter (govmomi's simulator, ``quipu.lab.vcenter``; 5 clusters
of 2 ESXi hosts, the VMs spread over the clusters) is started on loopback and stopped
afterwards. Each measure runs in a fresh interpreter, so one cannot warm or burden the next:

* Quipu: ``quipu.collectors.vcenter.inspect`` as a scanner runs it (login, the directory
  pass, the VMs page by page at the default page size, the hosts), with an ``emit`` that
  counts results and keeps none. Figure: VMs / seconds, the median of ``--rounds`` runs at
  the largest size; every run must report every VM and host.
* Memory: the same inspection once more under tracemalloc, in a fresh interpreter per
  size: the peak of Python allocations during ``inspect`` (pyVmomi's parsed pages, the
  facts, the directory), and the interpreter's peak RSS (``ru_maxrss``) for the record. Flat
  means the peak at the largest size is within one page's worth of the smallest.
* The reference, in the same run on the same simulator: the way a script written against
  pyVmomi's managed objects reads an inventory. A container view of every VM, then, VM by
  VM, each fact through the object's attributes (``vm.name``, ``vm.summary.config.uuid``,
  ``vm.guest.net``...): one round trip per attribute, about a dozen per VM. It is kind to
  the reference: host facts are read once per host and kept. ``--naive-vms`` caps how many
  VMs it reads (the rate is per VM, so a sample measures it as well as all of them).

``--smoke``: 20 and 60 VMs, one round. Goals (reported, never asserted): Quipu >= 20x the
naive rate at 5,000 VMs, and memory flat in the VM count.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

from bench.machine import machine, version
from quipu import wire
from quipu.lab.vcenter import Model, Vcsim, running_vcsim

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
SIZES = (1_000, 5_000)
SMOKE_SIZES = (20, 60)
CLUSTERS = 5
HOSTS_PER_CLUSTER = 2
GOAL_RATIO = 20.0


def _model(vms: int) -> Model:
    per_cluster = max(1, round(vms / CLUSTERS))
    return Model(
        datacenters=1,
        clusters=CLUSTERS,
        hosts_per_cluster=HOSTS_PER_CLUSTER,
        standalone_hosts=0,
        vms=per_cluster,
    )


def _job(target: dict[str, Any]) -> wire.Job:
    return wire.Job.model_validate(
        {
            "jobId": 1,
            "scanId": 1,
            "kind": "inspect",
            "sourceType": "vcenter",
            "targets": [{"range": target["host"], "ports": [target["port"]], "credentialId": 1}],
            "maxProbesPerSecond": 0,
            "credentials": [
                {
                    "id": 1,
                    "name": "bench",
                    "credType": "vcenter",
                    "username": target["username"],
                    "password": target["password"],
                }
            ],
            "options": {"sourceName": "bench", "sslCertVerify": False},
        }
    )


# The measures, each run in a child interpreter (``--child MEASURE`` with the target as JSON).


def _quipu_once(target: dict[str, Any]) -> tuple[float, dict[str, int]]:
    from quipu.collectors.vcenter import inspect

    counts = {"vms": 0, "hosts": 0, "failed": 0}

    async def emit(result: wire.SystemResult) -> None:
        if result.status != "success":
            counts["failed"] += 1
        elif "vm.name" in result.facts:
            counts["vms"] += 1
        else:
            counts["hosts"] += 1

    began = time.perf_counter()
    asyncio.run(inspect(_job(target), emit, asyncio.Event()))
    return time.perf_counter() - began, counts


def measure_quipu(target: dict[str, Any]) -> dict[str, Any]:
    seconds, counts = _quipu_once(target)
    return {"seconds": seconds, "vms_per_s": counts["vms"] / seconds, **counts}


def measure_memory(target: dict[str, Any]) -> dict[str, Any]:
    # Import everything first, so the trace holds what inspecting costs, not pyVmomi's types.
    import quipu.collectors.vcenter  # noqa: F401

    rss_before_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    seconds, counts = _quipu_once(target)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "traced_peak_mib": peak / 2**20,
        "rss_peak_mib": rss_peak_kib / 1024,
        "rss_before_mib": rss_before_kib / 1024,
        "seconds_traced": seconds,
        **counts,
    }


def measure_naive(target: dict[str, Any]) -> dict[str, Any]:
    from pyVim.connect import Disconnect, SmartConnect
    from pyVmomi import vim

    limit = target.get("naive_vms") or None
    began = time.perf_counter()
    si = SmartConnect(
        host=target["host"],
        port=target["port"],
        user=target["username"],
        pwd=target["password"],
        disableSslCertValidation=True,
    )
    hosts: dict[str, dict[str, Any]] = {}
    read = 0
    try:
        content = si.RetrieveContent()
        view = content.viewManager.CreateContainerView(
            content.rootFolder, [vim.VirtualMachine], True
        )
        for vm in view.view[:limit]:
            facts = {
                "vm.name": vm.name,
                "vm.uuid": vm.summary.config.uuid,
                "vm.state": vm.summary.runtime.powerState,
                "vm.is_template": vm.summary.config.template,
                "vm.os": vm.summary.config.guestFullName,
                "vm.dns_name": vm.summary.guest.hostName,
                "vm.cpu_count": vm.summary.config.numCpu,
                "vm.memory_size": vm.summary.config.memorySizeMB / 1024,
                "vm.mac_addresses": [nic.macAddress for nic in vm.guest.net],
            }
            host = vm.runtime.host
            if host._moId not in hosts:
                parent = host.parent
                hosts[host._moId] = {
                    "vm.host.name": host.name,
                    "vm.host.uuid": host.hardware.systemInfo.uuid,
                    "vm.host.cpu_count": host.summary.hardware.numCpuPkgs,
                    "vm.host.cpu_cores": host.summary.hardware.numCpuCores,
                    "vm.host.cpu_threads": host.summary.hardware.numCpuThreads,
                    "vm.cluster": parent.name,
                    "vm.datacenter": parent.parent.parent.name,
                }
            facts.update(hosts[host._moId])
            read += 1
        view.Destroy()
    finally:
        Disconnect(si)
    seconds = time.perf_counter() - began
    return {"seconds": seconds, "vms_per_s": read / seconds, "vms": read}


MEASURES = {"quipu": measure_quipu, "memory": measure_memory, "naive": measure_naive}


def _child(measure: str, sim: Vcsim, **extra: Any) -> dict[str, Any]:
    target = {
        "host": sim.host,
        "port": sim.port,
        "username": sim.username,
        "password": sim.password,
        **extra,
    }
    done = subprocess.run(
        [sys.executable, "-m", "bench.vcenter", "--child", measure, json.dumps(target)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"bench vcenter: the {measure} measure failed:\n{done.stderr[-3000:]}")
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def _check(name: str, figures: dict[str, Any], sim: Vcsim) -> list[str]:
    wanted = {"vms": sim.vm_count, "hosts": sim.host_count, "failed": 0}
    got = {key: figures[key] for key in wanted}
    return [] if got == wanted else [f"{name} reported {got}, the simulator has {wanted}"]


def _run(args: argparse.Namespace) -> dict[str, Any]:
    sizes = SMOKE_SIZES if args.smoke else tuple(args.sizes)
    rounds = 1 if args.smoke else args.rounds
    described = machine(pyvmomi=version("pyvmomi"))
    print(
        f"bench machine: cores={described['cores']} memory={described['memory_gib']}GiB "
        f"python={described['python']} pyvmomi={described['pyvmomi']}"
    )
    per_size: list[dict[str, Any]] = []
    warnings: list[str] = []
    for vms in sizes:
        started = time.perf_counter()
        with running_vcsim(model=_model(vms)) as sim:
            print(
                f"vcenter-{sim.vm_count}: simulator of {sim.vm_count} VMs and "
                f"{sim.host_count} hosts up in {time.perf_counter() - started:.1f} s"
            )
            memory = _child("memory", sim)
            warnings += _check(f"memory run at {sim.vm_count} VMs", memory, sim)
            runs: list[dict[str, Any]] = []
            naive: dict[str, Any] | None = None
            if vms == sizes[-1]:
                for _ in range(rounds):
                    runs.append(_child("quipu", sim))
                    warnings += _check(f"quipu at {sim.vm_count} VMs", runs[-1], sim)
                naive = _child("naive", sim, naive_vms=args.naive_vms)
            per_size.append(
                {
                    "vms": sim.vm_count,
                    "hosts": sim.host_count,
                    "memory": memory,
                    "quipu_runs": runs,
                    "naive": naive,
                }
            )
    largest = per_size[-1]
    quipu_rate = statistics.median(run["vms_per_s"] for run in largest["quipu_runs"])
    naive = largest["naive"]
    ratio = quipu_rate / naive["vms_per_s"]
    print(
        f"bench vcenter: quipu={quipu_rate:.1f} VMs/s reference={naive['vms_per_s']:.1f} VMs/s "
        f"ratio={ratio:.2f} vms={largest['vms']} naive_vms={naive['vms']} rounds={rounds}"
    )
    traced = " ".join(f"{s['vms']}={s['memory']['traced_peak_mib']:.1f}" for s in per_size)
    rss = " ".join(f"{s['vms']}={s['memory']['rss_peak_mib']:.1f}" for s in per_size)
    growth = per_size[-1]["memory"]["traced_peak_mib"] - per_size[0]["memory"]["traced_peak_mib"]
    print(f"bench vcenter-memory: quipu peak (tracemalloc) MiB {traced} growth={growth:+.1f} MiB")
    print(f"bench vcenter-rss: quipu interpreter peak RSS MiB {rss}")
    for warning in warnings:
        print(f"bench warning: {warning}")
    return {
        "benchmark": "vcenter",
        "machine": described,
        "smoke": args.smoke,
        "model": {"clusters": CLUSTERS, "hosts_per_cluster": HOSTS_PER_CLUSTER},
        "quipu_vms_per_s": quipu_rate,
        "reference_naive_vms_per_s": naive["vms_per_s"],
        "ratio": ratio,
        "goal_ratio": GOAL_RATIO,
        "memory_growth_mib": growth,
        "sizes": per_size,
        "warnings": warnings,
    }


def _sizes(text: str) -> list[int]:
    sizes = sorted({int(part) for part in text.split(",") if part.strip()})
    if not sizes or sizes[0] < 1:
        raise argparse.ArgumentTypeError("give VM counts such as 1000,5000")
    return sizes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.vcenter", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="20 and 60 VMs, one round")
    parser.add_argument(
        "--sizes", type=_sizes, default=list(SIZES), help="VM counts, smallest to largest"
    )
    parser.add_argument("--rounds", type=int, default=3, help="Quipu runs at the largest size")
    parser.add_argument(
        "--naive-vms", type=int, default=0, help="VMs the naive method reads (0: all)"
    )
    parser.add_argument("--results", type=Path, help="where to write the figures as JSON")
    parser.add_argument("--child", nargs=2, metavar=("MEASURE", "TARGET"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        measure, target = args.child
        print(json.dumps(MEASURES[measure](json.loads(target))))
        return 0
    report = _run(args)
    results = args.results or RESULTS / ("vcenter-smoke.json" if args.smoke else "vcenter.json")
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(report, indent=4, sort_keys=True) + "\n")
    print(f"bench results: {results}")
    return 1 if report["warnings"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
