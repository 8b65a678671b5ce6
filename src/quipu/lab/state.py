"""What a lab is (hosts, users, keys) and the state file that lets another process stop it."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

from quipu.lab.processes import ProcessRecord

STATE_FILE = "lab.json"
MARKER_FILE = ".quipu-lab"
"""Present in every lab root: ``lab_down`` removes only directories that carry it."""


@dataclasses.dataclass(frozen=True)
class LabHost:
    """One lab host; a ``slow`` one accepts TCP and never answers SSH, and has neither
    hostname nor machine id."""

    address: str
    port: int
    hostname: str
    machine_id: str
    slow: bool


@dataclasses.dataclass(frozen=True)
class Lab:
    root: Path
    """The lab directory."""
    hosts: list[LabHost]
    """Normal hosts first, then slow ones."""
    sudo_user: str
    """Logs in with the key ``sudo_key_path`` (no passphrase) and has passwordless sudo."""
    sudo_key_path: Path
    """OpenSSH private key (ed25519) of ``sudo_user``."""
    password_user: str
    """Logs in with ``password``; no sudo."""
    password: str
    namespaces: bool
    """False when unshare was not permitted: every host then shares the machine's
    hostname and machine id."""


@dataclasses.dataclass
class Cleanup:
    """Changes made to the machine itself (only where namespaces are not permitted)."""

    users: list[str] = dataclasses.field(default_factory=list)
    files: list[str] = dataclasses.field(default_factory=list)
    directories: list[str] = dataclasses.field(default_factory=list)
    """Removed only if empty by then: something else may have come to use them."""
    trees: list[str] = dataclasses.field(default_factory=list)
    """Removed with everything in them (the lab users' homes)."""


@dataclasses.dataclass
class LabState:
    lab: Lab
    processes: list[ProcessRecord] = dataclasses.field(default_factory=list)
    cleanup: Cleanup = dataclasses.field(default_factory=Cleanup)


def save(state: LabState) -> None:
    """Write the state atomically, readable by root only (it holds the lab password)."""
    lab = state.lab
    data: dict[str, Any] = {
        "version": 1,
        "hosts": [dataclasses.asdict(host) for host in lab.hosts],
        "sudo_user": lab.sudo_user,
        "sudo_key_path": str(lab.sudo_key_path),
        "password_user": lab.password_user,
        "password": lab.password,
        "namespaces": lab.namespaces,
        "processes": [dataclasses.asdict(process) for process in state.processes],
        "cleanup": dataclasses.asdict(state.cleanup),
    }
    path = lab.root / STATE_FILE
    partial = path.with_name(STATE_FILE + ".partial")
    partial.touch(mode=0o600)
    partial.write_text(json.dumps(data, indent=2, sort_keys=True))
    os.replace(partial, path)


def load(root: Path) -> LabState | None:
    """The state written at ``root``, or None when there is none (or it is unreadable)."""
    try:
        data = json.loads((root / STATE_FILE).read_text())
        lab = Lab(
            root=root,
            hosts=[LabHost(**host) for host in data["hosts"]],
            sudo_user=data["sudo_user"],
            sudo_key_path=Path(data["sudo_key_path"]),
            password_user=data["password_user"],
            password=data["password"],
            namespaces=data["namespaces"],
        )
        return LabState(
            lab=lab,
            processes=[ProcessRecord(**process) for process in data["processes"]],
            cleanup=Cleanup(**data["cleanup"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
