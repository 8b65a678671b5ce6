"""Real ``quipu server`` processes for end-to-end tests, on a free loopback port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from tests.databases import pg_database

ADMIN_PASSWORD = "e2e-admin-Secret-123"

SECRETS: set[str] = set()
"""Stored secrets that no response of any server in the suite may contain."""


def register_secret(*secrets: str) -> None:
    """Watch for ``secrets`` (passwords, key lines, tokens) in every response from now on."""
    SECRETS.update(s for s in secrets if len(s) >= 8)


def check_no_secret(response: httpx.Response) -> None:
    response.read()
    body = response.text
    leaked = [s for s in SECRETS if s in body]
    assert not leaked, f"{response.request.url} returned a stored secret"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class TestClock:
    """A server's clock a test moves: pass ``env`` to the server (every node of one test
    shares the file), then :meth:`advance` shifts the servers' time while they run."""

    __test__ = False  # not a test class, despite its name

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0.0
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("0")

    @property
    def env(self) -> dict[str, str]:
        return {"QUIPU_CLOCK_FILE": str(self.path)}

    def now(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self.offset)

    def advance(self, seconds: float) -> None:
        self.offset += seconds
        self.path.write_text(repr(self.offset))

    def set(self, when: datetime) -> None:
        """Move the clock so that it reads ``when`` now."""
        self.advance((when - self.now()).total_seconds())


@dataclass
class RunningServer:
    url: str
    port: int
    data_dir: Path
    database_url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def token(self, *, username: str = "admin", password: str = ADMIN_PASSWORD) -> str:
        response = httpx.post(
            f"{self.url}/api/v1/token/", json={"username": username, "password": password}
        )
        response.raise_for_status()
        token: str = response.json()["token"]
        return token

    def add_user(self, *, username: str, password: str, is_admin: bool = False) -> None:
        """A user of this server, written to its database (no API makes users)."""
        from quipu.services.auth import hash_password
        from quipu.store import Store
        from quipu.store.tables import User

        store = Store.from_url(self.database_url)
        try:
            with store.transaction() as s:
                s.add(
                    User(
                        username=username,
                        password_hash=hash_password(password),
                        is_admin=is_admin,
                        created_at=datetime.now(UTC),
                    )
                )
        finally:
            store.dispose()

    def client(self) -> httpx.Client:
        """An HTTP client logged in as admin."""
        return httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Token {self.token()}"},
            timeout=30,
            event_hooks={"response": [check_no_secret]},
        )

    def stop(self, *, sig: int = signal.SIGTERM, timeout: float = 20) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextmanager
def running_server(
    *,
    kind: str,
    data_dir: Path,
    env: Mapping[str, str] | None = None,
    args: tuple[str, ...] = (),
) -> Iterator[RunningServer]:
    """A server on a new database of ``kind`` (sqlite or postgresql), stopped afterwards."""
    if kind == "sqlite":
        url = f"sqlite:///{data_dir / 'quipu.db'}"
        server = start_server(data_dir=data_dir, database_url=url, env=env, args=args)
        try:
            yield server
        finally:
            server.stop()
        return
    with pg_database() as url:
        server = start_server(data_dir=data_dir, database_url=url, env=env, args=args)
        try:
            yield server
        finally:
            server.stop()


def start_server(
    *,
    data_dir: Path,
    database_url: str,
    env: Mapping[str, str] | None = None,
    args: tuple[str, ...] = (),
    port: int | None = None,
) -> RunningServer:
    """Start ``quipu server --http`` and wait until it answers (or fail with its log)."""
    port = port or free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / f"server-{port}.log"
    full_env = {
        **os.environ,
        "QUIPU_DATA_DIR": str(data_dir),
        "QUIPU_DATABASE_URL": database_url,
        "QUIPU_ADMIN_PASSWORD": ADMIN_PASSWORD,
        **(env or {}),
    }
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "quipu.cli.quipu",
                "server",
                "--http",
                "--port",
                str(port),
                *args,
            ],
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = RunningServer(
        url=f"http://127.0.0.1:{port}",
        port=port,
        data_dir=data_dir,
        database_url=database_url,
        process=process,
        log_path=log_path,
        env=full_env,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"quipu server exited with {process.returncode}:\n{server.log()}")
        try:
            if httpx.get(f"{server.url}/api/v1/status/", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"quipu server did not answer within 30 s:\n{server.log()}")


def start_scanner(
    server: RunningServer,
    *,
    api_key: str,
    log: Path,
    concurrency: int = 2,
    failover: Sequence[RunningServer] = (),
    wait: float = 5,
) -> subprocess.Popen[bytes]:
    """A real ``quipu scanner run`` process pulling work from ``server`` (then from each of
    ``failover`` in turn when it fails), its output in ``log``; the caller stops it.

    Its claims wait ``wait`` seconds at the server, below the 20 s default: a scanner told to
    stop waits for its claim's answer, and callers give it 20 s to exit."""
    urls = [url for s in (server, *failover) for url in ("--server", s.url)]
    with log.open("wb") as out:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "quipu.cli.quipu",
                "scanner",
                "run",
                *urls,
                "--concurrency",
                str(concurrency),
                "--wait",
                str(wait),
            ],
            env={**server.env, "QUIPU_SCANNER_API_KEY": api_key},
            stdout=out,
            stderr=subprocess.STDOUT,
        )


@contextmanager
def pg_nodes(tmp_path: Path, *, count: int = 2) -> Iterator[tuple[list[RunningServer], Any]]:
    """``count`` ingest nodes (servers without built-in scanners) on one new PostgreSQL
    database, and a store on it; all stopped and removed afterwards."""
    from quipu.store import Store

    with pg_database() as url:
        nodes: list[RunningServer] = []
        store = Store.from_url(url)
        try:
            for n in range(1, count + 1):
                nodes.append(
                    start_server(
                        data_dir=tmp_path / f"node-{n}",
                        database_url=url,
                        args=("--no-builtin-scanner",),
                    )
                )
            yield nodes, store
        finally:
            store.dispose()
            for node in nodes:
                node.stop()
