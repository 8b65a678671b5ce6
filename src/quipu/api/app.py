"""The FastAPI application factory: builds the app for given settings and a store."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from fastapi import FastAPI

import quipu
from quipu.api import errors, status, users
from quipu.services import auth
from quipu.settings import Settings
from quipu.store import Store
from quipu.store.migrate import upgrade

log = logging.getLogger(__name__)


def create_app(settings: Settings, *, store: Store | None = None) -> FastAPI:
    """The server app; migrations run at start-up, the store is disposed at shutdown."""
    owned = store is None
    store = store or Store.from_url(settings.database_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        upgrade(store.engine)
        generated = auth.ensure_admin(
            store,
            data_dir=settings.data_dir,
            password=settings.admin_password,
            now=datetime.now(UTC),
        )
        if generated:
            # Shown once: the operator has no other way to learn the first password.
            log.warning(
                "Created user admin with password %s (also in %s)",
                generated,
                settings.data_dir / "admin-password",
            )
        try:
            yield
        finally:
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
    app.state.store = store
    errors.install(app)
    for module in (status, users):
        app.include_router(module.router)
    return app
