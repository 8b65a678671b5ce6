"""The database tables, as SQLAlchemy 2 declarative models; migrations/ must agree with them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from quipu.domain.states import (
    SCANNER_JOB_FINAL,
    ReportOrigin,
    ScanJobStatus,
    ScanJobType,
    ScannerJobStatus,
    SourceType,
    SystemStatus,
    TaskKind,
    TaskStatus,
)

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

OPEN_SCANNER_JOBS = "status IN ({})".format(
    ", ".join(repr(st.value) for st in ScannerJobStatus if st not in SCANNER_JOB_FINAL)
)
"""A scanner job not ended yet (pending, claimed or running), as SQL."""

Id = BigInteger().with_variant(Integer(), "sqlite")
"""Primary keys: BIGINT on PostgreSQL, INTEGER (the rowid alias) on SQLite."""


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both databases (SQLite keeps no zone: add it back)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: Quipu stores aware UTC times only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _in(column: str, values: Any) -> str:
    return f"{column} IN ({', '.join(repr(str(v.value)) for v in values)})"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UtcDateTime(),
        dict[str, Any]: JSON,
        list[Any]: JSON,
    }


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    username: Mapped[str] = mapped_column(String(150), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]


class Token(Base):
    __tablename__ = "tokens"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class LoginFailure(Base):
    """Failed logins per username, to slow down password guessing."""

    __tablename__ = "login_failures"
    username: Mapped[str] = mapped_column(String(150), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)
    last_at: Mapped[datetime]


class Credential(Base):
    __tablename__ = "credentials"
    __table_args__ = (CheckConstraint(_in("cred_type", SourceType), name="cred_type"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    cred_type: Mapped[str] = mapped_column(String(16))
    username: Mapped[str | None] = mapped_column(String(255))
    password_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    ssh_key_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    ssh_passphrase_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    auth_token_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    become_method: Mapped[str | None] = mapped_column(String(16))
    become_user: Mapped[str | None] = mapped_column(String(64))
    become_password_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    vault_mount_point: Mapped[str | None] = mapped_column(String(255))
    vault_secret_path: Mapped[str | None] = mapped_column(String(512))
    vault_secret_key: Mapped[str | None] = mapped_column(String(255))
    """A credential whose secret (token or password) HashiCorp Vault holds names it here;
    the secret is read when a job is handed to a scanner, never stored."""
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Vault(Base):
    """The HashiCorp Vault that holds credentials' secrets: one row (id 1) or none."""

    __tablename__ = "vault"
    __table_args__ = (
        CheckConstraint("id = 1", name="single"),
        CheckConstraint("port BETWEEN 1 AND 65535", name="port"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    address: Mapped[str] = mapped_column(String(255))
    port: Mapped[int] = mapped_column(Integer)
    ssl_verify: Mapped[bool] = mapped_column(Boolean, default=True)
    ca_cert: Mapped[str | None] = mapped_column(Text)
    """PEM CA bundle that signs Vault's server certificate; None: the system's trust store."""
    client_cert: Mapped[str] = mapped_column(Text)
    """PEM client certificate Quipu logs in to Vault with (its TLS certificate auth method)."""
    client_key_enc: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Source(Base):
    __tablename__ = "sources"
    __table_args__ = (
        CheckConstraint(_in("source_type", SourceType), name="source_type"),
        CheckConstraint("port BETWEEN 1 AND 65535", name="port"),
        CheckConstraint("scheduling_mode IN ('immediate', 'mediated')", name="scheduling_mode"),
        CheckConstraint("max_probes_per_second >= 0", name="max_probes_per_second"),
    )
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    source_type: Mapped[str] = mapped_column(String(16))
    hosts: Mapped[list[Any]]
    exclude_hosts: Mapped[list[Any]]
    port: Mapped[int] = mapped_column(Integer)
    ssl_cert_verify: Mapped[bool | None] = mapped_column(Boolean)
    ssl_protocol: Mapped[str | None] = mapped_column(String(16))
    disable_ssl: Mapped[bool | None] = mapped_column(Boolean)
    proxy_url: Mapped[str | None] = mapped_column(String(512))
    use_paramiko: Mapped[bool | None] = mapped_column(Boolean)
    """Kept for the established client's scripts; Quipu's SSH client is always asyncssh."""
    scheduling_mode: Mapped[str] = mapped_column(String(16), default="immediate")
    windows: Mapped[list[Any]] = mapped_column(JSON, default=list)
    """Time windows (days, hours, time zone) outside of which this source's jobs do not run."""
    max_probes_per_second: Mapped[float] = mapped_column(Float, default=0)
    """This source's ranges' probe limit, shared by all scanners scanning them; 0 = none."""
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    credentials: Mapped[list[SourceCredential]] = relationship(
        order_by="SourceCredential.position", cascade="all, delete-orphan"
    )
    scanners: Mapped[list[SourceScanner]] = relationship(cascade="all, delete-orphan")


class SourceCredential(Base):
    """A source's credentials, tried in ``position`` order."""

    __tablename__ = "source_credentials"
    source_id: Mapped[int] = mapped_column(
        ForeignKey("sources.id", ondelete="CASCADE"), primary_key=True
    )
    credential_id: Mapped[int] = mapped_column(
        ForeignKey("credentials.id", ondelete="RESTRICT"), primary_key=True, index=True
    )
    position: Mapped[int] = mapped_column(Integer)


class SourceScanner(Base):
    """The scanners assigned to a source (none = the built-in scanner)."""

    __tablename__ = "source_scanners"
    source_id: Mapped[int] = mapped_column(
        ForeignKey("sources.id", ondelete="CASCADE"), primary_key=True
    )
    scanner_id: Mapped[int] = mapped_column(
        ForeignKey("scanners.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class Scan(Base):
    __tablename__ = "scans"
    __table_args__ = (CheckConstraint("max_concurrency BETWEEN 1 AND 200", name="max_concurrency"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    scan_type: Mapped[str] = mapped_column(String(16), default="inspect")
    max_concurrency: Mapped[int] = mapped_column(Integer, default=25)
    options: Mapped[dict[str, Any]]
    schedule_cron: Mapped[str | None] = mapped_column(String(128))
    """A cron expression: each firing starts a scan job; none: started by hand only."""
    schedule_timezone: Mapped[str | None] = mapped_column(String(64))
    next_fire_at: Mapped[datetime | None] = mapped_column(index=True)
    """The schedule's next firing; a node fires it by moving it on (a guarded UPDATE)."""
    windows: Mapped[list[Any]] = mapped_column(JSON, default=list)
    """Time windows outside of which this scan's jobs do not run."""
    retry: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    """Retry policy when every target is offline: attempts, delay_s, backoff; {}: no retry."""
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    sources: Mapped[list[ScanSource]] = relationship(
        order_by="ScanSource.position", cascade="all, delete-orphan"
    )


class ScanSource(Base):
    __tablename__ = "scan_sources"
    scan_id: Mapped[int] = mapped_column(
        ForeignKey("scans.id", ondelete="CASCADE"), primary_key=True
    )
    source_id: Mapped[int] = mapped_column(
        ForeignKey("sources.id", ondelete="RESTRICT"), primary_key=True, index=True
    )
    position: Mapped[int] = mapped_column(Integer)


class _Counted:
    systems_count: Mapped[int] = mapped_column(Integer, default=0)
    systems_scanned: Mapped[int] = mapped_column(Integer, default=0)
    systems_failed: Mapped[int] = mapped_column(Integer, default=0)
    systems_unreachable: Mapped[int] = mapped_column(Integer, default=0)


class ScanJob(_Counted, Base):
    __tablename__ = "scan_jobs"
    __table_args__ = (
        CheckConstraint(_in("status", ScanJobStatus), name="status"),
        CheckConstraint(_in("scan_type", ScanJobType), name="scan_type"),
        Index(None, "status", "queued_at"),
    )
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    scan_type: Mapped[str] = mapped_column(String(16), default=ScanJobType.INSPECT.value)
    """inspect: a run of a scan; fingerprint: a merge or an upload, which has no scan."""
    scan_id: Mapped[int | None] = mapped_column(
        ForeignKey("scans.id", ondelete="SET NULL"), index=True
    )
    scan_name: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    status_message: Mapped[str] = mapped_column(Text, default="")
    options: Mapped[dict[str, Any]]
    """The scan's options as they were at start."""
    created_at: Mapped[datetime]
    queued_at: Mapped[datetime | None]
    """When the job last became pending: the serial queue's order."""
    start_time: Mapped[datetime | None]
    end_time: Mapped[datetime | None]
    updated_at: Mapped[datetime]
    trigger: Mapped[str] = mapped_column(String(16), default="user")
    """What started it: ``user`` or ``schedule``."""
    not_before: Mapped[datetime | None]
    """Pending until then: its time window opens, or its retry delay ends."""
    windows: Mapped[list[Any]] = mapped_column(JSON, default=list)
    """The scan's time windows at start (each task's source snapshot holds the source's)."""
    retry: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    """The scan's retry policy at start."""
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    """Retries spent so far."""
    hold_expires_at: Mapped[datetime | None]
    """A held job not approved by then fails; none: never."""
    approved_by: Mapped[str | None] = mapped_column(String(150))
    approved_at: Mapped[datetime | None]
    tasks: Mapped[list[Task]] = relationship(order_by="Task.id", cascade="all, delete-orphan")


class Task(_Counted, Base):
    """One phase of one source within a scan job, with a snapshot of that source."""

    __tablename__ = "tasks"
    __table_args__ = (
        CheckConstraint(_in("status", TaskStatus), name="status"),
        CheckConstraint(_in("kind", TaskKind), name="kind"),
        CheckConstraint(_in("source_type", SourceType), name="source_type"),
        UniqueConstraint("scan_job_id", "source_id", "kind"),
    )
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    scan_job_id: Mapped[int] = mapped_column(ForeignKey("scan_jobs.id", ondelete="CASCADE"))
    source_id: Mapped[int | None] = mapped_column(ForeignKey("sources.id", ondelete="SET NULL"))
    source_name: Mapped[str] = mapped_column(String(64))
    source_type: Mapped[str] = mapped_column(String(16))
    source: Mapped[dict[str, Any]]
    """The source (hosts, port, options; credential ids) as it was when the job started."""
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    status_message: Mapped[str] = mapped_column(Text, default="")
    start_time: Mapped[datetime | None]
    end_time: Mapped[datetime | None]


class Scanner(Base):
    __tablename__ = "scanners"
    __table_args__ = (CheckConstraint("max_probes_per_second >= 0", name="max_probes_per_second"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    api_key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    builtin: Mapped[bool] = mapped_column(Boolean, default=False)
    bind: Mapped[list[Any]]
    """IPs/CIDRs the scanner may fetch jobs from; empty = anywhere."""
    max_probes_per_second: Mapped[float] = mapped_column(Float, default=0)
    version: Mapped[str | None] = mapped_column(String(32))
    capacity: Mapped[int | None] = mapped_column(Integer)
    draining: Mapped[bool] = mapped_column(Boolean, default=False)
    """Takes no new work; what it holds finishes."""
    agent_id: Mapped[str | None] = mapped_column(String(64))
    """The running agent process; a new one means the old one's claimed jobs are orphans."""
    last_heartbeat: Mapped[datetime | None]
    created_at: Mapped[datetime]


class ScannerJob(Base):
    """A unit of work handed to one scanner: some targets of one task."""

    __tablename__ = "scanner_jobs"
    __table_args__ = (
        CheckConstraint(_in("status", ScannerJobStatus), name="status"),
        CheckConstraint(_in("kind", TaskKind), name="kind"),
        Index(None, "scanner_id", "status"),
        # A task's open work, found by an index probe when a job ends (is it the last one?)
        Index(
            "ix_scanner_jobs_open_task_id",
            "task_id",
            postgresql_where=text(OPEN_SCANNER_JOBS),
            sqlite_where=text(OPEN_SCANNER_JOBS),
        ),
    )
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    scan_job_id: Mapped[int] = mapped_column(
        ForeignKey("scan_jobs.id", ondelete="CASCADE"), index=True
    )
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    scanner_id: Mapped[int | None] = mapped_column(ForeignKey("scanners.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    targets: Mapped[list[Any]]
    max_probes_per_second: Mapped[float] = mapped_column(Float, default=0)
    progress_count: Mapped[int] = mapped_column(Integer, default=0)
    result_count: Mapped[int] = mapped_column(Integer, default=0)
    error_message: Mapped[str] = mapped_column(Text, default="")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime]
    claimed_at: Mapped[datetime | None]
    claim_id: Mapped[str | None] = mapped_column(String(64))
    """The scanner's name for the claim that took the job: asking again under it (an answer
    lost on the way) returns the jobs it took, not new ones."""
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class SystemResult(Base):
    """One system's outcome in one task; for inspection, its raw facts."""

    __tablename__ = "system_results"
    __table_args__ = (
        CheckConstraint(_in("status", SystemStatus), name="status"),
        UniqueConstraint("task_id", "system"),
    )
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    scan_job_id: Mapped[int] = mapped_column(
        ForeignKey("scan_jobs.id", ondelete="CASCADE"), index=True
    )
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    scanner_job_id: Mapped[int | None] = mapped_column(
        ForeignKey("scanner_jobs.id", ondelete="SET NULL"), index=True
    )
    system: Mapped[str] = mapped_column(String(255))
    """The address or name the system was reached at."""
    port: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    message: Mapped[str] = mapped_column(Text, default="")
    credential_id: Mapped[int | None] = mapped_column(
        ForeignKey("credentials.id", ondelete="SET NULL")
    )
    facts: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]


class Report(Base):
    """The reports of a completed scan job, built once and kept (gzip-compressed JSON)."""

    __tablename__ = "reports"
    __table_args__ = (CheckConstraint(_in("origin", ReportOrigin), name="origin"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    scan_job_id: Mapped[int] = mapped_column(
        ForeignKey("scan_jobs.id", ondelete="CASCADE"), unique=True
    )
    origin: Mapped[str] = mapped_column(String(16), default=ReportOrigin.LOCAL.value)
    report_version: Mapped[str] = mapped_column(String(32))
    report_platform_id: Mapped[str] = mapped_column(String(36))
    systems_count: Mapped[int] = mapped_column(Integer)
    """Systems inspected (rows of the details report)."""
    deployments_count: Mapped[int] = mapped_column(Integer)
    """Distinct systems after deduplication and merge."""
    details_gz: Mapped[bytes] = mapped_column(LargeBinary)
    deployments_gz: Mapped[bytes] = mapped_column(LargeBinary)
    summary_gz: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    """Each deployments system's ``SUMMARY_FIELDS`` (services.reports), one per line: what a
    list of systems reads, without decompressing the provenance (None for older reports)."""
    created_at: Mapped[datetime]


class Alarm(Base):
    __tablename__ = "alarms"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    scan_job_id: Mapped[int | None] = mapped_column(
        ForeignKey("scan_jobs.id", ondelete="CASCADE"), index=True
    )
    message: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    scanner_id: Mapped[int | None] = mapped_column(ForeignKey("scanners.id", ondelete="SET NULL"))
    scanner_job_id: Mapped[int | None] = mapped_column(
        ForeignKey("scanner_jobs.id", ondelete="CASCADE")
    )
    source_id: Mapped[int | None] = mapped_column(ForeignKey("sources.id", ondelete="SET NULL"))
    actions: Mapped[list[Any]] = mapped_column(JSON, default=list)
    """The repair actions an operator can take on it (redispatch, reassign, drain, fail)."""
    key: Mapped[str | None] = mapped_column(String(128), unique=True)
    """Identifies an open alarm's condition so it is raised once; cleared when resolved."""
    resolved_at: Mapped[datetime | None]


class ScanJobEvent(Base):
    """One entry of a scan job's append-only log: a move, a start or end, an alarm, an error."""

    __tablename__ = "scan_job_events"
    __table_args__ = (Index(None, "scan_job_id", "id"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    scan_job_id: Mapped[int] = mapped_column(ForeignKey("scan_jobs.id", ondelete="CASCADE"))
    at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(16))
    """scan_job, task, scanner_job, schedule, reassign, alarm, error, repair."""
    subject_id: Mapped[int | None] = mapped_column(Id)
    """The task or scanner job the entry is about, when not the scan job itself."""
    action: Mapped[str] = mapped_column(String(32), default="")
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str | None] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(160))
    """Who or what caused it: ``user:NAME``, ``schedule``, ``window``, ``retry``,
    ``dispatcher``, ``scanner:NAME``."""
    message: Mapped[str] = mapped_column(Text, default="")


class Lease(Base):
    """A named lease that one ingest node holds at a time (leader-only duties)."""

    __tablename__ = "leases"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[datetime]
