"""Running an agent in a process or a thread: event loop, signals, orderly shutdown."""

from __future__ import annotations

import asyncio
import logging
import resource
import signal
import threading
from collections.abc import Callable, Sequence

from quipu.scanner.agent import Agent
from quipu.scanner.client import ScannerClient

log = logging.getLogger(__name__)


def raise_file_limit() -> None:
    """Concurrent probes and SSH sessions need more than the common 1024 open files."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def make_agent(
    *,
    server: str | Sequence[str],
    api_key: str,
    verify: bool | str,
    concurrency: int,
    heartbeat_s: float,
    wait_s: float = 20,
    rekey: Callable[[], str] | None = None,
) -> Agent:
    """An agent pulling work from ``server``, or from the first of several that answers."""
    # Collectors pull in SSH and probing code: load them only where a scanner runs.
    from quipu.collectors.registry import run_job

    servers = [server] if isinstance(server, str) else list(server)
    client = ScannerClient(servers=servers, api_key=api_key, verify=verify, rekey=rekey)
    return Agent(
        client=client,
        collector=run_job,
        concurrency=concurrency,
        heartbeat_s=heartbeat_s,
        wait_s=wait_s,
    )


def run_in_process(agent: Agent) -> None:
    """Run until SIGTERM or SIGINT, then release unfinished jobs and exit."""
    raise_file_limit()
    loop = new_loop()
    asyncio.set_event_loop(loop)

    def shut_down() -> None:
        log.info("scanner shutting down: releasing its jobs")
        agent.shutdown.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, shut_down)
    try:
        loop.run_until_complete(_run(agent))
    finally:
        loop.close()


async def _run(agent: Agent) -> None:
    try:
        await agent.run()
    finally:
        await agent.client.aclose()


class AgentThread:
    """The built-in scanner: the same agent on its own event loop, inside the server."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self._loop = new_loop()
        self._thread = threading.Thread(
            target=self._main, name="quipu-builtin-scanner", daemon=True
        )

    def start(self) -> None:
        raise_file_limit()
        self._thread.start()

    def stop(self, timeout: float = 15) -> None:
        if self._thread.is_alive():
            # The server stops listening before its lifespan ends: this scanner cannot hand
            # its jobs back now; the next start releases them (a new agent id).
            self.agent.client.stopping = True
            self._loop.call_soon_threadsafe(self.agent.shutdown.set)
            self._thread.join(timeout)

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._run_forever())
        finally:
            self._loop.close()

    async def _run_forever(self) -> None:
        try:
            await _run(self.agent)
        except Exception:
            log.exception("the built-in scanner stopped")
