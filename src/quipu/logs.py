"""Logging set-up for Quipu's processes (the server and its worker processes, scanners)."""

from __future__ import annotations

import logging


def configure(level: str) -> None:
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    # one line per SSH connection is noise at scale; its warnings still show
    logging.getLogger("asyncssh").setLevel(max(logging.WARNING, logging.getLogger().level))
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLogger().level))


class _QuietProtocolAccess(logging.Filter):
    """Drops the access-log lines of scanner protocol calls that succeeded (a fleet makes
    thousands a second); failed ones, and every other request, are still logged."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        # uvicorn's access record: (client, method, path, HTTP version, status)
        if isinstance(args, tuple) and len(args) == 5:
            path, status = str(args[2]), args[4]
            if path.startswith("/scanner/") and isinstance(status, int) and status < 400:
                return False
        return True


def quiet_protocol_access() -> None:
    """Keep successful scanner protocol calls out of the server's access log (once)."""
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, _QuietProtocolAccess) for f in access.filters):
        access.addFilter(_QuietProtocolAccess())
