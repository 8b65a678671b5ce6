"""SSH login for the connection phase, and the connection settings and bounded fan-out that
the inspection phase shares with it."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import asyncssh

from quipu.collectors.base import FAILED, SUCCESS, UNREACHABLE
from quipu.wire import Credential, SystemResult

logger = logging.getLogger(__name__)

Item = TypeVar("Item")
OnResult = Callable[[SystemResult], Awaitable[None]]

KEX_ALGS = (
    "curve25519-sha256",
    "curve25519-sha256@libssh.org",
    "ecdh-sha2-nistp256",
    "ecdh-sha2-nistp384",
    "ecdh-sha2-nistp521",
    "diffie-hellman-group14-sha256",
    "diffie-hellman-group16-sha512",
    # Old estates (OpenSSH before 5.7) offer nothing newer. The group-exchange methods stay
    # out: each costs about a second of this scanner's CPU per connection.
    "diffie-hellman-group14-sha1",
    "diffie-hellman-group1-sha1",
)
PER_ADDRESS = 8
"""Connections to one address at a time: sshd's default MaxStartups begins dropping new
connections beyond 10 unauthenticated ones."""
STOP_GRACE_S = 3.0
"""How long an interrupted session may take to close before it is abandoned."""


class KeyUnreadable(Exception):
    """A credential's private key cannot be parsed (bad text or wrong passphrase)."""


@functools.lru_cache(maxsize=256)
def _import_key(text: str, passphrase: str | None) -> asyncssh.SSHKey | str:
    """Parse a private key once; the error text in place of a key when it cannot be read.

    Parsing is costly (an encrypted OpenSSH key runs bcrypt), and a scan connects with the
    same credential to thousands of systems, so both outcomes are kept.
    """
    try:
        return asyncssh.import_private_key(text, passphrase)
    except (asyncssh.KeyImportError, ValueError) as error:
        return str(error) or type(error).__name__


def auth_methods(credential: Credential) -> str:
    methods = []
    if credential.ssh_key:
        methods.append("publickey")
    if credential.password:
        methods.append("password")
    return ", ".join(methods) or "none"


def connection_options(
    credential: Credential, *, connect_timeout: float
) -> asyncssh.SSHClientConnectionOptions:
    """Connection settings for ``credential``; raises KeyUnreadable for a key that cannot be
    parsed."""
    client_keys = None
    if credential.ssh_key:
        key = _import_key(credential.ssh_key, credential.ssh_passphrase)
        if isinstance(key, str):
            raise KeyUnreadable(
                f"The SSH key of credential {credential.name!r} cannot be read: {key}."
            )
        client_keys = [key]
    return asyncssh.SSHClientConnectionOptions(
        username=credential.username,
        password=credential.password,
        client_keys=client_keys,
        # Discovery meets systems nobody has recorded a host key for; refusing unknown keys
        # would refuse the whole estate. Host keys are reported as facts instead.
        known_hosts=None,
        # The scanner's own ~/.ssh (config, agent, default keys) must not leak into a scan.
        config=None,
        agent_path=None,
        gss_host=None,
        kex_algs=list(KEX_ALGS),
        connect_timeout=connect_timeout,
    )


def unreachable_reason(error: BaseException, *, port: int, timeout: float) -> str | None:
    """Why the system cannot be reached, or None when ``error`` came from a system that
    answers SSH."""
    if isinstance(error, TimeoutError):
        return f"no SSH answer on port {port} within {timeout:g} s"
    if isinstance(error, ConnectionRefusedError):
        return f"port {port} refused the connection"
    if isinstance(error, ConnectionResetError | asyncssh.ConnectionLost):
        return f"port {port} closed the connection before an SSH login (not an SSH server?)"
    if isinstance(error, OSError):
        return f"cannot connect to port {port}: {error.strerror or error}"
    return None


def _denied(credential: Credential) -> str:
    return f"Permission denied for {credential.username} ({auth_methods(credential)})"


async def login(
    *,
    address: str,
    port: int,
    credentials: Sequence[Credential],
    connect_timeout: float = 10,
) -> SystemResult:
    """Log in to one system with each credential in turn until one works."""
    reasons: list[str] = []
    answered = False
    for credential in credentials:
        if not (credential.password or credential.ssh_key):
            reasons.append(f"credential {credential.name!r} has neither a password nor a key")
            continue
        try:
            options = connection_options(credential, connect_timeout=connect_timeout)
            async with asyncssh.connect(address, port, options=options):
                pass
        except KeyUnreadable as error:
            reasons.append(str(error))
            continue
        except asyncssh.PermissionDenied:
            answered = True
            reasons.append(_denied(credential))
            continue
        except (OSError, asyncssh.Error) as error:
            unreachable = unreachable_reason(error, port=port, timeout=connect_timeout)
            if unreachable is not None and not answered:
                logger.info("system %s:%d is unreachable: %s", address, port, unreachable)
                return SystemResult(
                    system=address, port=port, status=UNREACHABLE, message=unreachable
                )
            # Key exchange or protocol failures do not depend on the credential.
            reasons.append(unreachable or f"SSH error: {_describe(error)}")
            answered = True
            break
        logger.info(
            "logged in to %s:%d with credential %d (%s)",
            address,
            port,
            credential.id,
            credential.name,
        )
        return SystemResult(system=address, port=port, status=SUCCESS, credential_id=credential.id)
    if not credentials:
        reasons.append("no credential to log in with")
    message = "; ".join(reasons)
    logger.info("cannot log in to %s:%d: %s", address, port, message)
    return SystemResult(system=address, port=port, status=FAILED, message=message)


def _describe(error: BaseException) -> str:
    reason = getattr(error, "reason", None)
    return str(reason or error) or type(error).__name__


async def login_many(
    *,
    systems: Sequence[tuple[str, int]],
    credentials: Sequence[Credential],
    concurrency: int,
    connect_timeout: float,
    on_result: OnResult,
    stop: asyncio.Event | None = None,
) -> None:
    """Log in to every system, ``concurrency`` at a time, reporting each as it ends; returns
    early, without reporting the logins in flight, once ``stop`` is set."""
    limits = AddressLimits()

    async def one(system: tuple[str, int]) -> SystemResult:
        address, port = system
        async with limits.for_address(address):
            return await login(
                address=address,
                port=port,
                credentials=credentials,
                connect_timeout=connect_timeout,
            )

    await run_each(
        items=systems, collect=one, on_result=on_result, concurrency=concurrency, stop=stop
    )


class AddressLimits:
    """At most PER_ADDRESS connections to one address at a time."""

    def __init__(self) -> None:
        self._semaphores: defaultdict[str, asyncio.Semaphore] = defaultdict(
            lambda: asyncio.Semaphore(PER_ADDRESS)
        )

    def for_address(self, address: str) -> asyncio.Semaphore:
        return self._semaphores[address]


async def run_each(
    *,
    items: Sequence[Item],
    collect: Callable[[Item], Awaitable[SystemResult]],
    on_result: OnResult,
    concurrency: int,
    stop: asyncio.Event | None,
) -> None:
    """Collect every item with ``concurrency`` workers and report each result.

    Once ``stop`` is set no item starts, collections in flight are cancelled (closing their
    sessions) and not reported: their systems are collected again when the job resumes.
    An unexpected error stops every worker and is raised.
    """
    stop = stop or asyncio.Event()
    pending = iter(items)

    async def worker() -> None:
        for item in pending:
            if stop.is_set():
                return
            result = await _unless_stopped(collect(item), stop=stop)
            if result is None:
                return
            await on_result(result)

    workers = [asyncio.create_task(worker()) for _ in range(max(1, min(concurrency, len(items))))]
    try:
        await asyncio.gather(*workers)
    except BaseException:
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        raise


async def _unless_stopped(
    collection: Awaitable[SystemResult], *, stop: asyncio.Event
) -> SystemResult | None:
    """The collection's result, or None when ``stop`` was set first (it is then cancelled)."""
    task = asyncio.ensure_future(collection)
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        task.cancel()
        raise
    finally:
        stopped.cancel()
    if task.done():
        return task.result()
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=STOP_GRACE_S)
    if not done:
        logger.warning("an interrupted SSH session did not close within %g s", STOP_GRACE_S)
    elif not task.cancelled() and task.exception() is not None:
        logger.debug("interrupted session ended with %r", task.exception())
    return None
