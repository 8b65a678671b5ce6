"""The FastAPI application factory: builds the app for given settings and a store."""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import signal
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool

import quipu
from quipu import logs, web
from quipu.api import (
    credentials,
    errors,
    guard,
    jobs,
    report_imports,
    reports,
    scan_status,
    scanner_api,
    scans,
    sources,
    status,
    users,
    vault,
)
from quipu.api import scanners as scanners_api
from quipu.api.long_poll import WorkWaiters
from quipu.clock import Clock, clock_for
from quipu.dispatch.loop import DispatchLoop
from quipu.scanner.run import AgentThread, make_agent
from quipu.services import auth, protocol, scanners
from quipu.settings import Settings
from quipu.store import Store, notify
from quipu.store.migrate import upgrade
from quipu.store.secrets import SecretBox

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BuiltinScanner:
    """Where the in-process scanner reaches this server."""

    url: str
    verify: bool | str = True
    concurrency: int = 2


def create_app(
    settings: Settings,
    *,
    store: Store | None = None,
    builtin_scanner: BuiltinScanner | None = None,
    dispatch: bool = True,
) -> FastAPI:
    """The server app. Start-up applies migrations, creates the first admin, starts the
    dispatcher and the built-in scanner; shutdown stops them in reverse order."""
    owned = store is None
    store = store or Store.from_url(settings.database_url)
    clock = clock_for(settings.clock_file)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        logs.quiet_protocol_access()
        upgrade(store.engine)
        generated = auth.ensure_admin(
            store,
            data_dir=settings.data_dir,
            password=settings.admin_password,
            now=clock.now(),
        )
        if generated:
            # Shown once: the operator has no other way to learn the first password.
            log.warning(
                "Created user admin with password %s (also in %s)",
                generated,
                settings.data_dir / "admin-password",
            )
        waiters = WorkWaiters(asyncio.get_running_loop())
        app.state.work_waiters = waiters
        keys: scanners.KeyCache = app.state.scanner_keys
        duties = node_duties(settings.data_dir)
        dispatcher = DispatchLoop(store, settings=settings, clock=clock) if dispatch else None
        if dispatcher is not None and not duties:
            dispatcher = None  # another worker process of this node runs it
        app.state.dispatcher = dispatcher
        unsubscribe = [
            store.bus.subscribe(notify.WORK, waiters.notified),
            store.bus.subscribe(notify.SCANNERS, keys.forget),
        ]
        if dispatcher is not None:
            unsubscribe.append(store.bus.subscribe(notify.DISPATCH, lambda _: dispatcher.poke()))
        store.bus.listen(store.engine)
        _answer_long_polls_on_exit(waiters)
        beats: protocol.Heartbeats = app.state.heartbeats
        flushing = asyncio.create_task(_flush_heartbeats(beats, store, clock))
        agent_thread = None
        if dispatcher is not None:
            dispatcher.start()
        if builtin_scanner is not None and duties:
            api_key = scanners.ensure_builtin(store, data_dir=settings.data_dir, now=clock.now())
            agent_thread = AgentThread(
                make_agent(
                    server=builtin_scanner.url,
                    api_key=api_key,
                    verify=builtin_scanner.verify,
                    concurrency=builtin_scanner.concurrency,
                    heartbeat_s=settings.heartbeat_s,
                    # A rotated key is taken up at once: its key is this server's to read.
                    rekey=lambda: scanners.ensure_builtin(
                        store, data_dir=settings.data_dir, now=clock.now()
                    ),
                )
            )
            agent_thread.start()
        try:
            yield
        finally:
            waiters.close()
            flushing.cancel()
            await asyncio.gather(flushing, return_exceptions=True)
            beats.flush(store, now=clock.now())
            if agent_thread is not None:
                agent_thread.stop()
            if dispatcher is not None:
                dispatcher.stop()
            for stop in unsubscribe:
                stop()
            if owned:
                store.dispose()

    app = FastAPI(
        title="Quipu",
        version=quipu.__version__,
        openapi_url="/api/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.clock = clock
    app.state.store = store
    app.state.secrets = SecretBox.from_data_dir(settings.data_dir)
    app.state.scanner_keys = scanners.KeyCache()
    app.state.heartbeats = protocol.Heartbeats()
    errors.install(app)
    guard.install(app)
    for module in (
        scanner_api,  # first: a fleet's calls are most of the traffic, matched soonest
        status,
        users,
        credentials,
        sources,
        scans,
        scan_status,
        jobs,
        report_imports,
        reports,
        scanners_api,
        vault,
    ):
        app.include_router(module.router)
    app.include_router(reports.router_v2)
    web.install(app)
    return app


async def _flush_heartbeats(beats: protocol.Heartbeats, store: Store, clock: Clock) -> None:
    """Write the heartbeats taken in memory, once a second."""
    while True:
        await asyncio.sleep(FLUSH_HEARTBEATS_S)
        try:
            await run_in_threadpool(beats.flush, store, now=clock.now())
        except Exception:  # the next second tries again; the heartbeats are repeated anyway
            log.exception("writing heartbeats failed")


FLUSH_HEARTBEATS_S = 1.0

WORKERS_ENV = "QUIPU_SERVER_WORKERS"
"""Set by ``quipu server --workers N`` for its worker processes."""
_held: list[int] = []


def node_duties(data_dir: Path) -> bool:
    """Whether this process runs the node's dispatcher and built-in scanner: always when
    the server is one process; with several worker processes, the one that holds the data
    dir's lock (another takes it over if that one dies)."""
    if int(os.environ.get(WORKERS_ENV) or 1) <= 1:
        return True
    if _held:
        return True
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(data_dir / "node-duties.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return False
    _held.append(fd)  # held for the life of the process
    return True


def _answer_long_polls_on_exit(waiters: WorkWaiters) -> None:
    """When the server is told to stop, answer the long polls at once: the server waits for
    requests in flight before it stops, and long polls would hold it up to their ``wait``."""
    if threading.current_thread() is not threading.main_thread():
        return  # served by a test client: no signals
    for sig in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(sig)
        if not callable(previous):
            continue

        def handler(signum: int, frame: Any, previous: Any = previous) -> None:
            waiters.close()
            previous(signum, frame)

        signal.signal(sig, handler)


def app_from_env() -> FastAPI:
    """The app of a worker process of ``quipu server --workers N`` (settings from the
    environment the command set)."""
    logs.configure(os.environ.get("QUIPU_LOG_LEVEL") or "info")
    url = os.environ.get("QUIPU_BUILTIN_SCANNER_URL")
    builtin = None
    if url:
        verify_env = os.environ.get("QUIPU_BUILTIN_SCANNER_VERIFY", "true")
        verify: bool | str = {"true": True, "false": False}.get(verify_env, verify_env)
        builtin = BuiltinScanner(
            url=url,
            verify=verify,
            concurrency=int(os.environ.get("QUIPU_BUILTIN_SCANNER_CONCURRENCY") or 2),
        )
    return create_app(Settings.from_env(), builtin_scanner=builtin)
