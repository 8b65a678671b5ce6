"""Source use cases: add, edit, read, list and delete the places a scan looks at."""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import re
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, selectinload

from quipu.collectors.network.targets import expand, validate_host
from quipu.domain.errors import InUse, InvalidInput, NotFound
from quipu.domain.source_types import SourceTypeRules, rules_of, source_type_of
from quipu.domain.windows import parse_windows
from quipu.services.credentials import (
    AllOrIds,
    BulkDeleted,
    Ref,
    Skipped,
    bulk_result,
    check_name,
    find_ids,
    name_filters,
    page,
    quoted_names,
)
from quipu.store import Store
from quipu.store.tables import (
    Credential,
    Scan,
    Scanner,
    ScanSource,
    Source,
    SourceCredential,
    SourceScanner,
)

log = logging.getLogger(__name__)

SSL_PROTOCOLS = ("SSLv23", "TLSv1", "TLSv1_1", "TLSv1_2", "TLSv1_3")
SCHEDULING_MODES = ("immediate", "mediated")
SSL_FIELDS = ("ssl_cert_verify", "ssl_protocol", "disable_ssl")
"""The SSL options of the sources reached over HTTPS, in the order the established server names
them when refusing them elsewhere."""
ONE_HOST = "This source must have a single host."
ONE_CREDENTIAL = "This source must have a single credential."
EXCLUDE_HOSTS_REFUSED = "The exclude_hosts option is not valid for this source."
PROXY_URL_REFUSED = "The proxy_url option is not valid for this source."
WRONG_CREDENTIAL_TYPE = "Credentials must have the same type as source."
MAX_SYSTEMS = 65_536
"""A network source expanding past this many systems needs ``allow_large``."""

_HOST_NAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceFields:
    """A source as written by an operator; None means "the default of its type"."""

    name: str
    source_type: str
    hosts: Sequence[str]
    exclude_hosts: Sequence[str] | None = None
    port: int | None = None
    credentials: Sequence[int] = field(default_factory=list)
    """Credential ids, in the order they are tried."""
    ssl_cert_verify: bool | None = None
    ssl_protocol: str | None = None
    disable_ssl: bool | None = None
    proxy_url: str | None = None
    use_paramiko: bool | None = None
    """Network: stored and shown for the established client's sake; Quipu's SSH client is
    asyncssh whatever it says."""
    scheduling_mode: str | None = None
    max_probes_per_second: float | None = None
    scanners: Sequence[int] = field(default_factory=list)
    """Scanner ids; none means the built-in scanner."""
    windows: Sequence[Any] | None = None
    """Time windows its systems may be scanned in, as given (see
    ``quipu.domain.windows.parse_windows``); none: any time."""


@dataclass(frozen=True, slots=True)
class CredentialRef:
    id: int
    name: str
    cred_type: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceView:
    id: int
    name: str
    source_type: str
    hosts: list[str]
    exclude_hosts: list[str]
    port: int
    credentials: list[CredentialRef]
    ssl_cert_verify: bool | None
    ssl_protocol: str | None
    disable_ssl: bool | None
    proxy_url: str | None
    use_paramiko: bool | None
    scheduling_mode: str
    max_probes_per_second: float
    scanners: list[Ref]
    windows: list[dict[str, Any]]
    created_at: datetime
    updated_at: datetime


def add_source(
    store: Store, *, fields: SourceFields, allow_large: bool = False, now: datetime
) -> SourceView:
    fields = checked(fields, allow_large=allow_large)
    with store.transaction() as s:
        _check_name_free(s, name=fields.name)
        _check_links(s, fields=fields)
        row = Source(created_at=now, updated_at=now)
        _write(row, fields=fields)
        s.add(row)
        s.flush()
        view = _views(s, rows=[row])[0]
    log.info("source %s (%s) added", view.id, view.name)
    return view


def edit_source(
    store: Store,
    *,
    source_id: int,
    changes: Mapping[str, Any],
    allow_large: bool = False,
    now: datetime,
) -> SourceView:
    """Apply ``changes`` (field -> value; None restores the default) to a source."""
    unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(SourceFields)})
    if unknown:
        raise InvalidInput(f"Unknown source field: {', '.join(unknown)}.", field=unknown[0])
    with store.transaction() as s:
        row = _get(s, source_id=source_id)
        if "source_type" in changes and changes["source_type"] != row.source_type:
            raise InvalidInput(
                f'source_type cannot be changed (source "{row.name}" is {row.source_type}); '
                "add a new source instead.",
                field="source_type",
            )
        fields = checked(dataclasses.replace(_read(row), **changes), allow_large=allow_large)
        if fields.name != row.name:
            _check_name_free(s, name=fields.name)
        _check_links(s, fields=fields)
        _write(row, fields=fields)
        row.updated_at = now
        s.flush()
        view = _views(s, rows=[row])[0]
    log.info("source %s (%s) edited", view.id, view.name)
    return view


def get_source(store: Store, *, source_id: int) -> SourceView:
    with store.transaction() as s:
        return _views(s, rows=[_get(s, source_id=source_id)])[0]


def list_sources(
    store: Store,
    *,
    name: str | None = None,
    search_by_name: str | None = None,
    source_type: str | None = None,
    offset: int = 0,
    limit: int = 100,
) -> tuple[int, list[SourceView]]:
    """One page of sources ordered by name, and how many match in all."""
    conditions = name_filters(Source.name, name=name, search_by_name=search_by_name)
    if source_type is not None:
        conditions.append(Source.source_type == source_type)
    with store.transaction() as s:
        count, rows = page(
            s,
            query=select(Source),
            order=Source.name,
            conditions=conditions,
            offset=offset,
            limit=limit,
        )
        return count, _views(s, rows=rows)


def delete_source(store: Store, *, source_id: int) -> None:
    with store.transaction() as s:
        row = _get(s, source_id=source_id)
        users = [name for _, name in _users(s, ids=[row.id]).get(row.id, [])]
        if users:
            raise InUse(
                f'Source "{row.name}" is used by {quoted_names("scan", names=users)}; '
                f"remove it from {'them' if len(users) > 1 else 'that scan'} first."
            )
        s.delete(row)
    log.info("source %s deleted", source_id)


def bulk_delete_sources(store: Store, *, ids: AllOrIds) -> BulkDeleted:
    """Delete the sources no scan uses; the others are skipped, naming their scans."""
    with store.transaction() as s:
        found, missing = find_ids(s, model=Source, ids=ids)
        users = _users(s, ids=list(found))
        skipped = [
            Skipped(
                id=i,
                name=found[i],
                reason=f"used by {quoted_names('scan', names=[n for _, n in users[i]])}",
                users=tuple(sorted(u for u, _ in users[i])),
            )
            for i in found
            if i in users
        ]
        deleted = [i for i in found if i not in users]
        if deleted:
            s.execute(delete(Source).where(Source.id.in_(deleted)))
    log.info("sources %s deleted", deleted)
    return bulk_result(noun="sources", deleted=deleted, skipped=skipped, missing=missing)


def checked(fields: SourceFields, *, allow_large: bool) -> SourceFields:
    """``fields`` with the defaults of its type, or InvalidInput naming what is wrong.

    Only what needs no database is checked here; credentials and scanners are checked
    against the store by the caller.
    """
    rules = rules_of(source_type_of(fields.source_type))
    check_name(fields.name)
    port = rules.default_port if fields.port is None else fields.port
    if not 1 <= port <= 65535:
        raise InvalidInput(f"port must be between 1 and 65535 (got {port}).", field="port")
    mode = fields.scheduling_mode or "immediate"
    if mode not in SCHEDULING_MODES:
        raise InvalidInput(
            f"scheduling_mode must be one of {', '.join(SCHEDULING_MODES)} (got {mode!r}).",
            field="scheduling_mode",
        )
    rate = fields.max_probes_per_second or 0.0
    if rate < 0:
        raise InvalidInput(
            f"max_probes_per_second must be 0 (no limit) or more (got {rate}).",
            field="max_probes_per_second",
        )
    if not fields.hosts:
        raise InvalidInput("hosts needs at least one host.", field="hosts")
    if not fields.credentials:
        raise InvalidInput("credentials needs at least one credential id.", field="credentials")
    _check_unique(fields.credentials, field_name="credentials", noun="credential")
    _check_unique(fields.scanners or [], field_name="scanners", noun="scanner")
    common = dataclasses.replace(
        fields,
        port=port,
        scheduling_mode=mode,
        max_probes_per_second=rate,
        hosts=list(fields.hosts),
        exclude_hosts=list(fields.exclude_hosts or []),
        credentials=list(fields.credentials),
        scanners=list(fields.scanners or []),
        windows=parse_windows(
            None if fields.windows is None else list(fields.windows), field="windows"
        ),
    )
    common = _checked_tls(common, rules=rules)
    if rules.many_hosts:
        return _checked_hosts(common, allow_large=allow_large)
    return _checked_server(common, rules=rules)


def _checked_tls(fields: SourceFields, *, rules: SourceTypeRules) -> SourceFields:
    """The TLS options given where they apply, with their defaults; refused elsewhere.

    Refusals name the field ``options`` with the established server's sentences, as its
    clients print them.
    """
    if not rules.tls_options:
        given = [name for name in SSL_FIELDS if getattr(fields, name) is not None]
        if given:
            raise InvalidInput(
                f"Invalid SSL options for {fields.source_type} source: {', '.join(given)}",
                field="options",
            )
        if fields.proxy_url is not None:
            raise InvalidInput(PROXY_URL_REFUSED, field="proxy_url")
        return fields
    if fields.use_paramiko is not None:
        raise InvalidInput(
            f"Invalid options for '{fields.source_type}': use_paramiko.", field="options"
        )
    if fields.ssl_protocol is not None and fields.ssl_protocol not in SSL_PROTOCOLS:
        raise InvalidInput(
            f"ssl_protocol must be one of {', '.join(SSL_PROTOCOLS)} "
            f"(got {fields.ssl_protocol!r}).",
            field="ssl_protocol",
        )
    if fields.proxy_url is not None:
        check_proxy_url(fields.proxy_url)
    # disable_ssl stays None (no) unless given, as the established server shows it.
    return dataclasses.replace(
        fields, ssl_cert_verify=True if fields.ssl_cert_verify is None else fields.ssl_cert_verify
    )


def check_proxy_url(url: str) -> None:
    """InvalidInput unless ``url`` is an http(s) proxy URL with a host."""
    parsed = urllib.parse.urlsplit(url)
    try:
        port = parsed.port
    except ValueError:
        port = -1
    if parsed.scheme not in ("http", "https") or not parsed.hostname or port == -1:
        raise InvalidInput(
            f"proxy_url must be an http:// or https:// URL with a host, such as "
            f"http://proxy.example.com:3128 (got {url!r}).",
            field="proxy_url",
        )


def _checked_hosts(fields: SourceFields, *, allow_large: bool) -> SourceFields:
    for host in fields.hosts:
        validate_host(host, field="hosts")
    for host in fields.exclude_hosts or []:
        validate_host(host, field="exclude_hosts")
    if not allow_large:
        # Expanding stops just past the limit; an allowed large source is not expanded here.
        expand(
            hosts=list(fields.hosts),
            exclude_hosts=list(fields.exclude_hosts or []),
            limit=MAX_SYSTEMS,
            allow_large=False,
        )
    return fields


def _checked_server(fields: SourceFields, *, rules: SourceTypeRules) -> SourceFields:
    kind = fields.source_type
    if len(fields.hosts) != 1 or "[" in fields.hosts[0] or "/" in fields.hosts[0]:
        raise InvalidInput(ONE_HOST, field="hosts")
    host = fields.hosts[0]
    if not _is_single_host(host):
        raise InvalidInput(
            f"A {kind} source's host must be one IP address or host name (got {host!r}).",
            field="hosts",
        )
    if fields.exclude_hosts and not rules.exclude_hosts:
        raise InvalidInput(EXCLUDE_HOSTS_REFUSED, field="exclude_hosts")
    if len(fields.credentials) != 1 and not rules.many_credentials:
        raise InvalidInput(ONE_CREDENTIAL, field="credentials")
    return fields


def _is_single_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return bool(_HOST_NAME.match(host)) and not host.replace(".", "").isdigit()
    return True


def _check_unique(ids: Sequence[int], *, field_name: str, noun: str) -> None:
    seen: set[int] = set()
    for i in ids:
        if i in seen:
            raise InvalidInput(f"{field_name} lists {noun} {i} more than once.", field=field_name)
        seen.add(i)


def _check_links(s: Session, *, fields: SourceFields) -> None:
    """The credentials exist and suit the source's type; the scanners exist."""
    credentials = {
        c.id: c for c in s.scalars(select(Credential).where(Credential.id.in_(fields.credentials)))
    }
    for credential_id in fields.credentials:
        credential = credentials.get(credential_id)
        if credential is None:
            raise InvalidInput(
                f"credentials: credential {credential_id} does not exist.", field="credentials"
            )
        if credential.cred_type != fields.source_type:
            raise InvalidInput(WRONG_CREDENTIAL_TYPE, field="source_type")
    scanners = set(s.scalars(select(Scanner.id).where(Scanner.id.in_(fields.scanners))))
    for scanner_id in fields.scanners:
        if scanner_id not in scanners:
            raise InvalidInput(f"scanners: scanner {scanner_id} does not exist.", field="scanners")


def _check_name_free(s: Session, *, name: str) -> None:
    if s.scalar(select(Source.id).where(Source.name == name)) is not None:
        # The established server's words for a taken name, so its clients read the same.
        raise InvalidInput(f"Source with name={name} already exists", field="name")


def _get(s: Session, *, source_id: int) -> Source:
    row = s.get(Source, source_id)
    if row is None:
        raise NotFound(f"Source {source_id} does not exist.")
    return row


def _write(row: Source, *, fields: SourceFields) -> None:
    row.name = fields.name
    row.source_type = fields.source_type
    row.hosts = list(fields.hosts)
    row.exclude_hosts = list(fields.exclude_hosts or [])
    assert fields.port is not None and fields.scheduling_mode is not None  # set by checked()
    row.port = fields.port
    row.ssl_cert_verify = fields.ssl_cert_verify
    row.ssl_protocol = fields.ssl_protocol
    row.disable_ssl = fields.disable_ssl
    row.proxy_url = fields.proxy_url
    row.use_paramiko = fields.use_paramiko
    row.scheduling_mode = fields.scheduling_mode
    row.max_probes_per_second = fields.max_probes_per_second or 0.0
    row.credentials = [
        SourceCredential(credential_id=credential_id, position=position)
        for position, credential_id in enumerate(fields.credentials)
    ]
    row.scanners = [SourceScanner(scanner_id=scanner_id) for scanner_id in fields.scanners]
    row.windows = list(fields.windows or [])


def _read(row: Source) -> SourceFields:
    return SourceFields(
        name=row.name,
        source_type=row.source_type,
        hosts=list(row.hosts),
        exclude_hosts=list(row.exclude_hosts),
        port=row.port,
        credentials=[link.credential_id for link in row.credentials],
        ssl_cert_verify=row.ssl_cert_verify,
        ssl_protocol=row.ssl_protocol,
        disable_ssl=row.disable_ssl,
        proxy_url=row.proxy_url,
        use_paramiko=row.use_paramiko,
        scheduling_mode=row.scheduling_mode,
        max_probes_per_second=row.max_probes_per_second,
        scanners=sorted(link.scanner_id for link in row.scanners),
        windows=list(row.windows or []),
    )


def _users(s: Session, *, ids: Sequence[int]) -> dict[int, list[tuple[int, str]]]:
    """The scans (id, name) using each of ``ids`` (only those used by one), by name."""
    users: dict[int, list[tuple[int, str]]] = {}
    rows = s.execute(
        select(ScanSource.source_id, Scan.id, Scan.name)
        .join(Scan, Scan.id == ScanSource.scan_id)
        .where(ScanSource.source_id.in_(ids))
        .order_by(Scan.name)
    )
    for source_id, scan_id, scan_name in rows:
        users.setdefault(source_id, []).append((scan_id, scan_name))
    return users


def _views(s: Session, *, rows: Sequence[Source]) -> list[SourceView]:
    ids = [r.id for r in rows]
    loaded = {
        r.id: r
        for r in s.scalars(
            select(Source)
            .where(Source.id.in_(ids))
            .options(selectinload(Source.credentials), selectinload(Source.scanners))
        )
    }
    credential_ids = {link.credential_id for r in loaded.values() for link in r.credentials}
    credentials = {
        c.id: CredentialRef(id=c.id, name=c.name, cred_type=c.cred_type)
        for c in s.scalars(select(Credential).where(Credential.id.in_(credential_ids)))
    }
    scanner_ids = {link.scanner_id for r in loaded.values() for link in r.scanners}
    scanners = {
        i: Ref(id=i, name=n)
        for i, n in s.execute(select(Scanner.id, Scanner.name).where(Scanner.id.in_(scanner_ids)))
    }
    views = []
    for r in (loaded[i] for i in ids):
        views.append(
            SourceView(
                id=r.id,
                name=r.name,
                source_type=r.source_type,
                hosts=list(r.hosts),
                exclude_hosts=list(r.exclude_hosts),
                port=r.port,
                credentials=[credentials[link.credential_id] for link in r.credentials],
                ssl_cert_verify=r.ssl_cert_verify,
                ssl_protocol=r.ssl_protocol,
                disable_ssl=r.disable_ssl,
                proxy_url=r.proxy_url,
                use_paramiko=r.use_paramiko,
                scheduling_mode=r.scheduling_mode,
                max_probes_per_second=r.max_probes_per_second,
                scanners=sorted(
                    (scanners[link.scanner_id] for link in r.scanners), key=lambda x: x.name
                ),
                windows=list(r.windows or []),
                created_at=r.created_at,
                updated_at=r.updated_at,
            )
        )
    return views
