"""What every collector takes and gives: the job as the scanner API carries it, results, errors.

A collector package (one per source type, see ``quipu.collectors.registry``) exposes two
coroutines with the :data:`Run` signature: ``connect`` and ``inspect``. Each calls ``emit``
once per system as that system's outcome is known, and returns early when ``stop`` is set.

Results are :class:`quipu.wire.SystemResult`: system, port, status (success, failed or
unreachable), message, the credential that logged in, and facts.

A collector that cannot use its source at all (refused login, unknown host, TLS failure,
timeout) raises :class:`SourceUnavailable` with a message an operator can act on: the
scanner job fails with it, and by the source type's rule the task does too.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import ssl
from collections.abc import Awaitable, Callable
from typing import Any, Final

from quipu import wire

Emit = Callable[[wire.SystemResult], Awaitable[None]]
Run = Callable[[wire.Job, Emit, asyncio.Event], Awaitable[None]]
"""``connect`` or ``inspect`` of a collector: (job, emit, stop)."""

SUCCESS: Final = "success"
FAILED: Final = "failed"
UNREACHABLE: Final = "unreachable"

DEFAULT_TIMEOUT_S = 30.0
"""Connect and read timeout of one request to an API source."""


def log_job(log: logging.Logger, job: wire.Job, message: str, *args: object) -> None:
    """Log at INFO what a collector did for ``job``, prefixed with the job and its scan."""
    log.info("scanner job %s (scan %s): " + message, job.job_id, job.scan_id, *args)


class SourceUnavailable(Exception):
    """The job cannot use its source; the scanner job fails with this message."""


def result(
    *,
    system: str,
    port: int,
    status: wire.Status,
    message: str = "",
    credential_id: int | None = None,
    facts: dict[str, Any] | None = None,
) -> wire.SystemResult:
    """One system's outcome, as the scanner uploads it."""
    return wire.SystemResult(
        system=system,
        port=port,
        status=status,
        message=message,
        credential_id=credential_id,
        facts=facts or {},
    )


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ApiSource:
    """An API source (vCenter, Satellite, ...) as one scanner job describes it.

    Such a source has one host and one credential; TLS options come from the source.
    """

    source_name: str
    host: str
    port: int
    credential_id: int | None
    username: str = ""
    password: str = dataclasses.field(default="", repr=False)
    token: str = dataclasses.field(default="", repr=False)
    ssl_cert_verify: bool = True
    ssl_protocol: str | None = None
    """SSLv23 (negotiate), TLSv1, TLSv1_1, TLSv1_2 or TLSv1_3 (exactly that version)."""
    disable_ssl: bool = False
    """Plain HTTP instead of HTTPS."""
    proxy_url: str | None = None
    max_concurrency: int = 25
    timeout_s: float = DEFAULT_TIMEOUT_S

    @classmethod
    def from_job(cls, job: wire.Job, *, timeout_variable: str | None = None) -> ApiSource:
        """The source of ``job``; ``timeout_variable`` names the scanner's environment
        variable that may set the timeout of one request (default 30 s)."""
        target = job.targets[0]
        options = job.options
        credential = next(
            (c for c in job.credentials if c.id == target.credential_id),
            job.credentials[0] if job.credentials else None,
        )
        return cls(
            source_name=options.source_name,
            host=target.range,
            port=target.ports[0],
            credential_id=credential.id if credential else None,
            username=credential.username if credential else "",
            password=(credential.password or "") if credential else "",
            token=(credential.auth_token or "") if credential else "",
            ssl_cert_verify=options.ssl_cert_verify is not False,
            ssl_protocol=options.ssl_protocol or None,
            disable_ssl=bool(options.disable_ssl),
            proxy_url=options.proxy_url or None,
            max_concurrency=max(1, options.max_concurrency),
            timeout_s=_seconds(timeout_variable) if timeout_variable else DEFAULT_TIMEOUT_S,
        )

    @property
    def base_url(self) -> str:
        scheme = "http" if self.disable_ssl else "https"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"

    def ssl_context(self) -> ssl.SSLContext:
        """The TLS context the source's options ask for.

        Verification uses the scanner machine's trust store (``SSL_CERT_FILE`` and
        ``SSL_CERT_DIR`` are honoured), so an estate's own CA is trusted where it is installed.
        """
        context = ssl.create_default_context()
        if not self.ssl_cert_verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        version = _TLS_VERSIONS.get(self.ssl_protocol or "")
        if version is not None:
            # Old servers may speak only an old protocol: allow exactly the one asked for.
            context.minimum_version = version
            context.maximum_version = version
            if version < ssl.TLSVersion.TLSv1_2:
                context.set_ciphers("DEFAULT:@SECLEVEL=0")
        return context

    def result(
        self,
        *,
        system: str,
        status: wire.Status,
        message: str = "",
        facts: dict[str, Any] | None = None,
    ) -> wire.SystemResult:
        """One system found or inspected through this source."""
        return result(
            system=system,
            port=self.port,
            status=status,
            message=message,
            credential_id=self.credential_id,
            facts=facts,
        )


def _seconds(variable: str) -> float:
    """A timeout from the scanner's environment; the default when unset or not a number."""
    try:
        return max(0.1, float(os.environ.get(variable) or DEFAULT_TIMEOUT_S))
    except ValueError:
        return DEFAULT_TIMEOUT_S


_TLS_VERSIONS = {
    "TLSv1": ssl.TLSVersion.TLSv1,
    "TLSv1_1": ssl.TLSVersion.TLSv1_1,
    "TLSv1_2": ssl.TLSVersion.TLSv1_2,
    "TLSv1_3": ssl.TLSVersion.TLSv1_3,
}
