"""The rhacs collector (connect and inspect, see quipu.collectors.base)."""

from __future__ import annotations

import asyncio
from typing import Any

from quipu.collectors.base import Emit, SourceUnavailable


async def connect(job: dict[str, Any], emit: Emit, stop: asyncio.Event) -> None:
    raise SourceUnavailable("rhacs sources are not collected yet.")


async def inspect(job: dict[str, Any], emit: Emit, stop: asyncio.Event) -> None:
    raise SourceUnavailable("rhacs sources are not collected yet.")
