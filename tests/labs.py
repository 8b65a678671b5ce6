"""Lab hosts for end-to-end tests: real sshd processes, always brought down afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from quipu.lab import Lab, lab_down, lab_up


@contextmanager
def running_lab(
    *, root: Path, hosts: int, net: str, port: int = 2222, slow: int = 0
) -> Iterator[Lab]:
    try:
        yield lab_up(root=root, hosts=hosts, net=net, port=port, slow=slow)
    finally:
        lab_down(root=root)
