"""Host names of network sources resolved with the event loop's getaddrinfo."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from quipu.collectors.network.targets import resolve


def test_names_resolve_and_addresses_map_to_themselves() -> None:
    resolved = asyncio.run(resolve(names=["localhost", "10.0.0.5", "localhost"]))
    assert resolved == {"localhost": "127.0.0.1", "10.0.0.5": "10.0.0.5"}


def test_a_name_that_does_not_resolve_maps_to_none(monkeypatch: pytest.MonkeyPatch) -> None:
    # The machine may reach no name server; the failure is made where getaddrinfo fails.
    async def fails(*args: Any, **kwargs: Any) -> list[Any]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    async def run() -> dict[str, str | None]:
        monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", fails)
        return await resolve(names=["nowhere.invalid", "127.0.0.9"])

    assert asyncio.run(run()) == {"nowhere.invalid": None, "127.0.0.9": "127.0.0.9"}


def test_a_name_that_resolves_too_slowly_maps_to_none(monkeypatch: pytest.MonkeyPatch) -> None:
    async def hangs(*args: Any, **kwargs: Any) -> list[Any]:
        await asyncio.sleep(60)
        return []

    async def run() -> dict[str, str | None]:
        monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", hangs)
        return await resolve(names=["slow.example"], timeout=0.1)

    assert asyncio.run(run()) == {"slow.example": None}
