"""Quipu's domain: states, transition tables and scan rules. Standard library only, no I/O."""

from quipu.domain.errors import (
    AlreadyExists,
    Conflict,
    Forbidden,
    IllegalTransition,
    InUse,
    InvalidInput,
    IpBindingViolation,
    NotFound,
    QuipuError,
    Unauthenticated,
)
from quipu.domain.states import (
    ScanJobAction,
    ScanJobStatus,
    ScannerJobAction,
    ScannerJobStatus,
    SystemStatus,
    TaskAction,
    TaskKind,
    TaskStatus,
)

__all__ = [
    "AlreadyExists",
    "Conflict",
    "Forbidden",
    "IllegalTransition",
    "InUse",
    "InvalidInput",
    "IpBindingViolation",
    "NotFound",
    "QuipuError",
    "ScanJobAction",
    "ScanJobStatus",
    "ScannerJobAction",
    "ScannerJobStatus",
    "SystemStatus",
    "TaskAction",
    "TaskKind",
    "TaskStatus",
    "Unauthenticated",
]
