"""The FastAPI application factory: builds the app for given settings and a store."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fastapi import FastAPI

import quipu
from quipu import web
from quipu.api import (
    credentials,
    errors,
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
from quipu.clock import clock_for
from quipu.dispatch.loop import DispatchLoop
from quipu.scanner.run import AgentThread, make_agent
from quipu.services import auth, scanners
from quipu.settings import Settings
from quipu.store import Store
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
        dispatcher = DispatchLoop(store, settings=settings, clock=clock) if dispatch else None
        app.state.dispatcher = dispatcher
        agent_thread = None
        if dispatcher is not None:
            dispatcher.start()
        if builtin_scanner is not None:
            api_key = scanners.ensure_builtin(store, data_dir=settings.data_dir, now=clock.now())
            agent_thread = AgentThread(
                make_agent(
                    server=builtin_scanner.url,
                    api_key=api_key,
                    verify=builtin_scanner.verify,
                    concurrency=builtin_scanner.concurrency,
                    heartbeat_s=settings.heartbeat_s,
                )
            )
            agent_thread.start()
        try:
            yield
        finally:
            if agent_thread is not None:
                agent_thread.stop()
            if dispatcher is not None:
                dispatcher.stop()
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
    errors.install(app)
    for module in (
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
        scanner_api,
        vault,
    ):
        app.include_router(module.router)
    app.include_router(reports.router_v2)
    web.install(app)
    return app
