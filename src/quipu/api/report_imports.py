"""Routes that make reports from other reports' facts: merge, and upload of a details report."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1/reports", tags=["reports"])
