"""The FastAPI application factory: builds the app for given settings and a store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

import quipu
from quipu.api import errors, status
from quipu.settings import Settings
from quipu.store import Store
from quipu.store.migrate import upgrade


def create_app(settings: Settings, *, store: Store | None = None) -> FastAPI:
    """The server app; migrations run at start-up, the store is disposed at shutdown."""
    owned = store is None
    store = store or Store.from_url(settings.database_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        upgrade(store.engine)
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
    app.include_router(status.router)
    return app
