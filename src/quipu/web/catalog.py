"""The catalog pages: credentials, sources and scans (each list, add, edit and delete), and
starting a scan. Every one calls the services the API calls, so it meets the same rules."""

from __future__ import annotations

from fastapi import APIRouter

from quipu.web import catalog_credentials, catalog_scans, catalog_sources

router = APIRouter(include_in_schema=False)
for _module in (catalog_credentials, catalog_sources, catalog_scans):
    router.include_router(_module.router)
