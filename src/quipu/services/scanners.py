"""Scanner use cases: register, enable, disable, drain, rotate keys, authenticate, liveness."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import secrets
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select

from quipu.domain.errors import (
    AlreadyExists,
    Forbidden,
    InvalidInput,
    IpBindingViolation,
    NotFound,
    Unauthenticated,
)
from quipu.domain.states import SCANNER_JOB_HELD
from quipu.services.credentials import check_name
from quipu.store import Store
from quipu.store.notify import SCANNERS, notify
from quipu.store.statements import announce_work
from quipu.store.tables import Scanner, ScannerJob

log = logging.getLogger(__name__)

BUILTIN_NAME = "local"
BUILTIN_KEY_FILE = "builtin-scanner.key"


def new_api_key() -> str:
    """256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


def key_digest(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


def parse_bind(values: Sequence[str]) -> list[str]:
    """Normalized IPs/CIDRs a scanner may fetch jobs from; InvalidInput names a bad entry."""
    networks = []
    for value in values:
        try:
            networks.append(str(ipaddress.ip_network(value.strip(), strict=False)))
        except ValueError:
            raise InvalidInput(
                f"Invalid bind address {value!r}: give an IP address or a CIDR such as "
                "10.0.0.0/24.",
                field="bind",
            ) from None
    return networks


def validate_rate(value: float) -> float:
    if value < 0:
        raise InvalidInput(
            f"max_probes_per_second must be 0 (no limit) or more (got {value}).",
            field="max_probes_per_second",
        )
    return value


@dataclass(frozen=True, slots=True)
class ScannerView:
    scanner: Scanner
    online: bool
    running_jobs: int
    api_key: str | None = None
    """Only right after add or rotate-key: the key is shown once, then only its hash is kept."""


def is_online(scanner: Scanner, *, now: datetime, timeout_s: float) -> bool:
    return scanner.last_heartbeat is not None and scanner.last_heartbeat > now - timedelta(
        seconds=timeout_s
    )


def add(
    store: Store,
    *,
    name: str,
    bind: Sequence[str] = (),
    max_probes_per_second: float = 0,
    now: datetime,
) -> ScannerView:
    name = name.strip()
    if not name:
        raise InvalidInput("A scanner needs a name.", field="name")
    check_name(name)
    networks = parse_bind(bind)
    validate_rate(max_probes_per_second)
    api_key = new_api_key()
    with store.transaction() as s:
        if s.scalar(select(Scanner.id).where(Scanner.name == name)) is not None:
            raise AlreadyExists(f'Scanner "{name}" already exists.')
        scanner = Scanner(
            name=name,
            api_key_hash=key_digest(api_key),
            enabled=True,
            builtin=False,
            bind=networks,
            max_probes_per_second=max_probes_per_second,
            created_at=now,
        )
        s.add(scanner)
    log.info("scanner %s added", name)
    return ScannerView(scanner=scanner, online=False, running_jobs=0, api_key=api_key)


def _views(
    store: Store, rows: Sequence[Scanner], *, now: datetime, timeout_s: float
) -> list[ScannerView]:
    ids = [r.id for r in rows]
    with store.transaction() as s:
        rows_by_scanner = s.execute(
            select(ScannerJob.scanner_id, func.count())
            .where(
                ScannerJob.scanner_id.in_(ids),
                ScannerJob.status.in_([st.value for st in SCANNER_JOB_HELD]),
            )
            .group_by(ScannerJob.scanner_id)
        ).all()
        # a list of pairs: a Result has keys(), so dict() would read it as a mapping
        running: dict[int | None, int] = dict(rows_by_scanner)
    return [
        ScannerView(
            scanner=r,
            online=is_online(r, now=now, timeout_s=timeout_s),
            running_jobs=running.get(r.id, 0),
        )
        for r in rows
    ]


def list_scanners(
    store: Store, *, now: datetime, timeout_s: float, name: str | None = None
) -> list[ScannerView]:
    query = select(Scanner).order_by(Scanner.name)
    if name is not None:
        query = query.where(Scanner.name == name)
    with store.transaction() as s:
        rows = s.scalars(query).all()
    return _views(store, rows, now=now, timeout_s=timeout_s)


def get(store: Store, *, scanner_id: int, now: datetime, timeout_s: float) -> ScannerView:
    with store.transaction() as s:
        row = s.get(Scanner, scanner_id)
    if row is None:
        raise NotFound(f"Scanner {scanner_id} does not exist.")
    return _views(store, [row], now=now, timeout_s=timeout_s)[0]


def set_enabled(
    store: Store, *, scanner_id: int, enabled: bool, now: datetime, timeout_s: float
) -> ScannerView:
    with store.transaction() as s:
        row = s.get(Scanner, scanner_id)
        if row is None:
            raise NotFound(f"Scanner {scanner_id} does not exist.")
        row.enabled = enabled
        notify(s, SCANNERS, [str(scanner_id)])
    log.info("scanner %s %s", scanner_id, "enabled" if enabled else "disabled")
    return get(store, scanner_id=scanner_id, now=now, timeout_s=timeout_s)


def set_draining(
    store: Store, *, scanner_id: int, draining: bool, now: datetime, timeout_s: float
) -> ScannerView:
    """A draining scanner claims no new work; what it holds finishes. Undraining lets it
    claim again."""
    with store.transaction() as s:
        row = s.get(Scanner, scanner_id)
        if row is None:
            raise NotFound(f"Scanner {scanner_id} does not exist.")
        row.draining = draining
        notify(s, SCANNERS, [str(scanner_id)])
        if not draining:
            announce_work(s, scanner_ids=[scanner_id])
    log.info("scanner %s %s", scanner_id, "draining" if draining else "undrained")
    return get(store, scanner_id=scanner_id, now=now, timeout_s=timeout_s)


def takes_work(scanner: Scanner) -> bool:
    """Enabled and not draining: may be given new work."""
    return scanner.enabled and not scanner.draining


def rotate_key(store: Store, *, scanner_id: int, now: datetime, timeout_s: float) -> ScannerView:
    """A new API key; the old one stops working at once."""
    api_key = new_api_key()
    with store.transaction() as s:
        row = s.get(Scanner, scanner_id)
        if row is None:
            raise NotFound(f"Scanner {scanner_id} does not exist.")
        row.api_key_hash = key_digest(api_key)
        notify(s, SCANNERS, [str(scanner_id)])
    log.info("scanner %s key rotated", scanner_id)
    view = get(store, scanner_id=scanner_id, now=now, timeout_s=timeout_s)
    return ScannerView(
        scanner=view.scanner, online=view.online, running_jobs=view.running_jobs, api_key=api_key
    )


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated, enabled scanner, as its protocol calls see it."""

    id: int
    name: str
    bind: tuple[str, ...]


class KeyCache:
    """API keys recently seen, by digest, so that a protocol call costs no query to
    authenticate. Entries live ``ttl_s``; a disabled or re-keyed scanner is forgotten at once
    when its notification arrives (every node, every worker: ``forget``), and everything when
    the node's listening connection was lost (it may have missed some). A lookup that raced a
    ``forget`` is not cached (the generation moved on). The lifetime exceeds the heartbeat
    interval and a long poll's wait: a steady scanner is looked up once a minute, not at every
    other call."""

    def __init__(self, *, ttl_s: float = 60.0, max_entries: int = 100_000) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._entries: dict[str, tuple[float, Caller]] = {}
        self._lock = threading.Lock()
        self.generation = 0

    def get(self, digest: str) -> Caller | None:
        entry = self._entries.get(digest)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, digest: str, caller: Caller, *, generation: int) -> None:
        with self._lock:
            if generation != self.generation:
                return
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            self._entries[digest] = (time.monotonic() + self.ttl_s, caller)

    def forget(self, payload: str) -> None:
        """Forget the scanners named in a notification (comma-separated ids; ``*``: all)."""
        ids = set(payload.split(","))
        with self._lock:
            self.generation += 1
            if "*" in ids:
                self._entries.clear()
                return
            for digest, (_, caller) in list(self._entries.items()):
                if str(caller.id) in ids:
                    del self._entries[digest]


def authenticate(store: Store, *, api_key: str | None, cache: KeyCache | None = None) -> Caller:
    """The enabled scanner holding ``api_key``: 401 when unknown, 403 when disabled."""
    if not api_key:
        raise Unauthenticated("Missing X-API-Key header.")
    digest = key_digest(api_key)
    if cache is not None and (caller := cache.get(digest)) is not None:
        return caller
    generation = cache.generation if cache is not None else 0
    with store.transaction() as s:
        row = s.execute(
            select(Scanner.id, Scanner.name, Scanner.bind, Scanner.enabled).where(
                Scanner.api_key_hash == digest
            )
        ).first()
    if row is None:
        raise Unauthenticated("Invalid API key.")
    if not row.enabled:
        raise Forbidden(f'Scanner "{row.name}" is disabled.')
    caller = Caller(id=row.id, name=row.name, bind=tuple(row.bind or ()))
    if cache is not None:
        cache.put(digest, caller, generation=generation)
    return caller


def check_binding(scanner: Caller, *, client_ip: str | None) -> None:
    """IP_BINDING_VIOLATION unless the caller's address is inside the scanner's bound nets."""
    if not scanner.bind:
        return
    try:
        address = ipaddress.ip_address(client_ip or "")
    except ValueError:
        address = None
    if address is None or not any(
        address in ipaddress.ip_network(net, strict=False) for net in scanner.bind
    ):
        raise IpBindingViolation(
            f'Scanner "{scanner.name}" may not fetch jobs from {client_ip}; '
            f"it is bound to {', '.join(scanner.bind)}."
        )


def ensure_builtin(store: Store, *, data_dir: Path, now: datetime) -> str:
    """Register scanner ``local`` (the server's own) and return its API key.

    The key lives in the data dir (0600) so restarts keep it; a key that no longer matches
    (another node rotated it) is replaced.
    """
    key_path = data_dir / BUILTIN_KEY_FILE
    api_key = key_path.read_text().strip() if key_path.exists() else ""
    with store.transaction() as s:
        row = s.scalar(select(Scanner).where(Scanner.name == BUILTIN_NAME))
        if (
            row is not None
            and api_key
            and hmac.compare_digest(row.api_key_hash, key_digest(api_key))
        ):
            return api_key
        api_key = new_api_key()
        if row is None:
            s.add(
                Scanner(
                    name=BUILTIN_NAME,
                    api_key_hash=key_digest(api_key),
                    enabled=True,
                    builtin=True,
                    bind=[],
                    max_probes_per_second=0,
                    created_at=now,
                )
            )
        else:
            row.api_key_hash = key_digest(api_key)
            notify(s, SCANNERS, [str(row.id)])
    data_dir.mkdir(parents=True, exist_ok=True)
    key_path.touch(mode=0o600, exist_ok=True)
    key_path.chmod(0o600)
    key_path.write_text(api_key + "\n")
    return api_key
