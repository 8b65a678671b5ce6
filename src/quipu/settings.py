"""Settings read from the environment once, by whoever starts a process."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TypeVar

from quipu.domain.errors import InvalidInput


@dataclasses.dataclass(frozen=True, slots=True)
class Settings:
    data_dir: Path
    database_url: str
    """SQLAlchemy URL; default: SQLite file ``quipu.db`` in ``data_dir``."""
    max_running_jobs: int = 1
    heartbeat_s: float = 15.0
    heartbeat_timeout_s: float = 45.0
    systems_per_job: int = 64
    token_ttl_s: float = 24 * 3600.0
    dispatch_interval_s: float = 1.0
    admin_password: str | None = None
    """Password for user ``admin`` created on first start; generated when not given."""
    approval_timeout_s: float = 0.0
    """A held job not approved within this many seconds fails; 0: held jobs never expire."""
    stall_unclaimed_s: float = 300.0
    """Work no scanner has claimed for this long raises an alarm."""
    stall_unstarted_s: float = 120.0
    """Work claimed but not started for this long raises an alarm."""
    stall_overrun_factor: float = 3.0
    """A job running this many times longer than its progress predicts raises an alarm."""
    clock_file: Path | None = None
    """Test tooling: the server's time is the system time plus the seconds in this file."""

    @property
    def database_kind(self) -> str:
        return "postgresql" if self.database_url.startswith("postgresql") else "sqlite"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        default_dir = Path.home() / ".local" / "share" / "quipu"
        data_dir = Path(env.get("QUIPU_DATA_DIR") or default_dir).expanduser()
        url = env.get("QUIPU_DATABASE_URL") or f"sqlite:///{data_dir / 'quipu.db'}"
        return cls(
            data_dir=data_dir,
            database_url=url,
            max_running_jobs=_number(env, "QUIPU_MAX_RUNNING_JOBS", 1, int, minimum=1),
            heartbeat_s=_number(env, "QUIPU_HEARTBEAT_S", 15.0, float, minimum=0.1),
            heartbeat_timeout_s=_number(env, "QUIPU_HEARTBEAT_TIMEOUT_S", 45.0, float, minimum=0.1),
            systems_per_job=_number(env, "QUIPU_SYSTEMS_PER_JOB", 64, int, minimum=1),
            token_ttl_s=_number(env, "QUIPU_TOKEN_TTL_S", 24 * 3600.0, float, minimum=1),
            dispatch_interval_s=_number(env, "QUIPU_DISPATCH_INTERVAL_S", 1.0, float, minimum=0.01),
            admin_password=env.get("QUIPU_ADMIN_PASSWORD") or None,
            approval_timeout_s=_number(env, "QUIPU_APPROVAL_TIMEOUT_S", 0.0, float, minimum=0),
            stall_unclaimed_s=_number(env, "QUIPU_STALL_UNCLAIMED_S", 300.0, float, minimum=1),
            stall_unstarted_s=_number(env, "QUIPU_STALL_UNSTARTED_S", 120.0, float, minimum=1),
            stall_overrun_factor=_number(
                env, "QUIPU_STALL_OVERRUN_FACTOR", 3.0, float, minimum=1.1
            ),
            clock_file=Path(env["QUIPU_CLOCK_FILE"]) if env.get("QUIPU_CLOCK_FILE") else None,
        )


N = TypeVar("N", int, float)


def _number(env: Mapping[str, str], name: str, default: N, kind: type[N], *, minimum: N) -> N:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise InvalidInput(f"{name} must be a {kind.__name__} (got {raw!r}).", field=name) from None
    if value < minimum:
        raise InvalidInput(f"{name} must be at least {minimum} (got {raw!r}).", field=name)
    return value
