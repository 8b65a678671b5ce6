"""The lab's one error: it could not be brought up or down."""

from __future__ import annotations

from quipu.domain.errors import QuipuError


class LabError(QuipuError):
    """The lab could not be brought up or down; the message says why and what to do."""

    code = "LAB_ERROR"
