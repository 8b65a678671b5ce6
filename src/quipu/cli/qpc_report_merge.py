"""``qpc report merge`` and ``qpc report upload``: reports made from other reports' facts."""

from __future__ import annotations

from quipu.cli.qpc_report import app  # noqa: F401  (the commands register on the report app)
