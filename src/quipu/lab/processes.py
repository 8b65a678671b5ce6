"""Lab processes: who they are (pid, start time, mount namespace) and how they are stopped."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import signal
import time
from collections.abc import Iterable
from pathlib import Path

logger = logging.getLogger(__name__)

_PROC = Path("/proc")


@dataclasses.dataclass(frozen=True, slots=True)
class ProcessRecord:
    """A process the lab started.

    ``starttime`` (clock ticks since boot) tells the process apart from a later one that
    reuses its pid; ``mnt_ns`` is the mount namespace the lab made for it, if any, so that
    every session process inside that namespace can be found again.
    """

    pid: int
    starttime: int
    mnt_ns: int | None = None


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name sits in parentheses and may itself hold spaces and parentheses.
    return text[text.rindex(")") + 2 :].split()


def _starttime(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return None if fields is None else int(fields[19])


def _is_zombie(pid: int) -> bool:
    fields = _stat_fields(pid)
    return fields is not None and fields[0] == "Z"


def mount_namespace(pid: int) -> int | None:
    """The inode of ``pid``'s mount namespace, or None when the process is gone."""
    try:
        return os.stat(_PROC / str(pid) / "ns" / "mnt").st_ino
    except OSError:
        # Gone, or a process (such as a container's init) that even root may not inspect.
        return None


def record(*, pid: int, namespaced: bool) -> ProcessRecord | None:
    """Describe a running process so that it can be stopped later, or None if it is gone.

    ``namespaced`` says the lab made a mount namespace for it; a process found in the
    machine's own namespace is recorded without one all the same.
    """
    starttime = _starttime(pid)
    if starttime is None:
        return None
    namespace = mount_namespace(pid) if namespaced else None
    if namespace is not None and namespace == mount_namespace(os.getpid()):
        namespace = None
    return ProcessRecord(pid=pid, starttime=starttime, mnt_ns=namespace)


def is_running(process: ProcessRecord) -> bool:
    """True while the very process recorded (not a reuse of its pid) is alive."""
    return _starttime(process.pid) == process.starttime and not _is_zombie(process.pid)


def _all_pids() -> list[int]:
    return [int(entry.name) for entry in _PROC.iterdir() if entry.name.isdigit()]


def _children_by_parent() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for pid in _all_pids():
        fields = _stat_fields(pid)
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(pid)
    return children


def live_namespaces(processes: Iterable[ProcessRecord]) -> set[int]:
    """The mount namespaces of those ``processes`` still running."""
    return {p.mnt_ns for p in processes if p.mnt_ns is not None and is_running(p)}


def in_namespaces(namespaces: set[int]) -> set[int]:
    """Every pid inside one of ``namespaces`` (login sessions and their commands)."""
    # Never the namespace this process runs in: that is the machine's, not a lab host's.
    namespaces = namespaces - {mount_namespace(os.getpid())}
    if not namespaces:
        return set()
    return {pid for pid in _all_pids() if mount_namespace(pid) in namespaces}


def members(processes: Iterable[ProcessRecord]) -> set[int]:
    """Every live pid belonging to ``processes``: themselves, their descendants and, for
    namespaced ones, every process in their mount namespace."""
    alive = [process for process in processes if is_running(process)]
    found = {process.pid for process in alive}
    children = _children_by_parent() if alive else {}
    stack = list(found)
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in found:
                found.add(child)
                stack.append(child)
    return (found | in_namespaces(live_namespaces(alive))) - {os.getpid()}


def _gone(pid: int) -> bool:
    # Our own children would stay zombies until reaped; others are reaped by init.
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    return _stat_fields(pid) is None or _is_zombie(pid)


def _signal_all(pids: Iterable[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def terminate(pids: set[int], *, grace: float = 3.0) -> None:
    """SIGTERM ``pids``, then SIGKILL those still alive after ``grace`` seconds; returns
    once all are gone."""
    pids = pids - {os.getpid(), os.getppid(), 1}
    if not pids:
        return
    _signal_all(pids, signal.SIGTERM)
    for sig, wait in ((signal.SIGKILL, grace), (None, 5.0)):
        deadline = time.monotonic() + wait
        remaining = {pid for pid in pids if not _gone(pid)}
        while remaining and time.monotonic() < deadline:
            time.sleep(0.02)
            remaining = {pid for pid in remaining if not _gone(pid)}
        if not remaining:
            return
        if sig is None:
            logger.warning("lab processes %s did not exit", sorted(remaining))
            return
        logger.info("lab processes %s ignored SIGTERM; killing them", sorted(remaining))
        _signal_all(remaining, sig)
