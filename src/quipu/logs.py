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
