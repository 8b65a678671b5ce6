"""SSH inspection: one connection and one script per system, turned into its facts."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime

import asyncssh

from quipu.collectors.base import FAILED, SUCCESS, UNREACHABLE
from quipu.collectors.network import facts, framing, script
from quipu.collectors.network.ssh import (
    AddressLimits,
    KeyUnreadable,
    OnResult,
    auth_methods,
    connection_options,
    run_each,
    unreachable_reason,
)
from quipu.wire import Credential, Status, SystemResult

logger = logging.getLogger(__name__)

_STDERR_TAIL = 300


async def inspect(
    *, address: str, port: int, credential: Credential, timeout: float = 120
) -> SystemResult:
    """Log in to one system, run the inspection script and parse its facts."""
    marker = script.new_marker()
    text = script.build(
        marker=marker,
        become_method=credential.become_method,
        become_user=credential.become_user,
        become_password=credential.become_password,
    )
    started = time.monotonic()

    def failed(message: str, status: Status = FAILED) -> SystemResult:
        logger.info("inspection of %s:%d failed: %s", address, port, message)
        return SystemResult(
            system=address,
            port=port,
            status=status,
            message=message,
            credential_id=credential.id,
        )

    try:
        options = connection_options(credential, connect_timeout=timeout)
        async with asyncio.timeout(timeout):
            async with asyncssh.connect(address, port, options=options) as connection:
                checked_in_at = datetime.now(UTC)
                completed = await connection.run(
                    script.INSPECT_COMMAND, input=text, check=False, errors="replace"
                )
    except TimeoutError:
        return failed(f"timed out after {timeout:g} s")
    except KeyUnreadable as error:
        return failed(str(error))
    except asyncssh.PermissionDenied:
        return failed(
            f"Permission denied for {credential.username} ({auth_methods(credential)}); "
            f"credential {credential.name!r} no longer logs in"
        )
    except (OSError, asyncssh.Error) as error:
        unreachable = unreachable_reason(error, port=port, timeout=timeout)
        if unreachable is not None:
            return failed(unreachable, UNREACHABLE)
        return failed(f"SSH error: {getattr(error, 'reason', None) or error}")
    sections = framing.parse_sections(_text(completed.stdout), marker=marker)
    if not sections:
        stderr = _text(completed.stderr).strip()[-_STDERR_TAIL:]
        return failed(
            f"the inspection script did not run (exit status {completed.exit_status}"
            + (f": {stderr})" if stderr else ")")
        )
    found = facts.extract(sections, marker=marker, checked_in_at=checked_in_at)
    logger.info(
        "inspected %s:%d with credential %d in %.2f s (privileged: %s)",
        address,
        port,
        credential.id,
        time.monotonic() - started,
        found["has_sudo"],
    )
    return SystemResult(
        system=address, port=port, status=SUCCESS, credential_id=credential.id, facts=found
    )


def _text(output: str | bytes | None) -> str:
    if isinstance(output, bytes):
        return output.decode(errors="replace")
    return output or ""


async def inspect_many(
    *,
    systems: Sequence[tuple[str, int, Credential]],
    concurrency: int,
    timeout: float,
    on_result: OnResult,
    stop: asyncio.Event | None = None,
) -> None:
    """Inspect every system, ``concurrency`` at a time, reporting each as it ends.

    A system's own failure is its result; only an unexpected error is raised. Once
    ``stop`` is set, sessions in flight are closed and their systems left unreported, to be
    inspected again when the job resumes.
    """
    limits = AddressLimits()

    async def one(system: tuple[str, int, Credential]) -> SystemResult:
        address, port, credential = system
        async with limits.for_address(address):
            return await inspect(address=address, port=port, credential=credential, timeout=timeout)

    await run_each(
        items=systems, collect=one, on_result=on_result, concurrency=concurrency, stop=stop
    )
