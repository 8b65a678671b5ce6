"""ansible facts -> fingerprint fields (see quipu.reports.fingerprint for the contract)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from quipu.reports.fields import Draft


def read(facts: Mapping[str, Any], draft: Draft) -> bool | None:
    """Not collected yet: no system."""
    return False
