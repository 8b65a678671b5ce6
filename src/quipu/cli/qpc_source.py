"""``qpc source``: the networks and the servers of API sources (vCenter, Satellite, OpenShift,
AAP, RHACS) a scan looks at."""

from __future__ import annotations

import enum
from typing import Annotated, Any

import typer

from quipu.cli.qpc_common import (
    AllFields,
    established,
    fail,
    hosts_from,
    parse_bool,
    print_json,
    usage_error,
)
from quipu.cli.qpc_cred import PATH as CREDENTIALS_PATH
from quipu.cli.qpc_http import Api, clear_objects, connect
from quipu.domain.source_types import SOURCE_TYPES
from quipu.domain.states import SourceType

app = typer.Typer(help="Manage sources.", no_args_is_help=True)

PATH = "/api/v2/sources/"
SCANNERS_PATH = "/api/v1/scanners/"
FIELDS = (
    "credentials",
    "disable_ssl",
    "exclude_hosts",
    "hosts",
    "id",
    "name",
    "port",
    "proxy_url",
    "source_type",
    "ssl_cert_verify",
    "ssl_protocol",
    "use_paramiko",
)
"""What the established client prints of a source (its credentials as id and name)."""
CREDS_NOT_FOUND = (
    'An error occurred while processing the "--cred" input values. References for the '
    "following credential could not be found: {names}. Failed to {action} source "
    '"{source}". For more information, see the server log file.'
)


class SslProtocol(enum.StrEnum):
    SSLV23 = "SSLv23"
    TLSV1 = "TLSv1"
    TLSV1_1 = "TLSv1_1"
    TLSV1_2 = "TLSv1_2"
    TLSV1_3 = "TLSv1_3"


class SchedulingMode(enum.StrEnum):
    IMMEDIATE = "immediate"
    MEDIATED = "mediated"


Name = Annotated[str, typer.Option("--name", help="Source name.")]
Hosts = Annotated[
    list[str] | None,
    typer.Option(
        "--hosts", help="IPs, CIDRs, ranges, host names; or one file with a host per line."
    ),
]
ExcludeHosts = Annotated[
    list[str] | None,
    typer.Option("--exclude-hosts", help="Hosts to skip (network); or one file of them."),
]
Creds = Annotated[
    list[str] | None, typer.Option("--cred", help="Credential names, in the order tried.")
]


def _port(value: int | None) -> int | None:
    """The port given, refused as the established client refuses it when out of range."""
    if value is not None and not 0 <= value <= 65535:
        usage_error(
            f"argument --port: Port value {value} should be a positive integer in the valid "
            "range (0-65535)"
        )
    return value


DEFAULT_PORTS = ", ".join(f"{t.value} {r.default_port}" for t, r in SOURCE_TYPES.items())
API_TYPES = ", ".join(t.value for t, r in SOURCE_TYPES.items() if r.tls_options)
Port = Annotated[
    int | None,
    typer.Option("--port", help=f"Port (default: {DEFAULT_PORTS}).", callback=_port),
]
SslCertVerify = Annotated[
    str | None,
    typer.Option("--ssl-cert-verify", help="true or false: verify the server's certificate."),
]
SslProtocolOption = Annotated[
    SslProtocol | None, typer.Option("--ssl-protocol", help="SSL/TLS protocol to use.")
]
DisableSsl = Annotated[
    str | None, typer.Option("--disable-ssl", help="true or false: connect without SSL.")
]
UseParamiko = Annotated[
    str | None,
    typer.Option(
        "--use-paramiko",
        help="true or false (network). Accepted and stored for compatibility, with no "
        "effect: Quipu's SSH client is asyncssh, not paramiko.",
    ),
]
ProxyUrl = Annotated[
    str | None,
    typer.Option("--proxy-url", help=f"HTTP(S) proxy to reach the server through ({API_TYPES})."),
]
Scheduling = Annotated[
    SchedulingMode | None,
    typer.Option("--scheduling-mode", help="mediated: scan jobs wait for an approval."),
]
Rate = Annotated[
    float | None,
    typer.Option("--max-probes-per-second", help="Probe rate limit of the source; 0 = none."),
]
Scanners = Annotated[
    list[str] | None,
    typer.Option("--scanner", help="Scanner names to run it (default: the built-in one)."),
]
AllowLarge = Annotated[bool, typer.Option("--allow-large", help="Allow more than 65,536 systems.")]
Windows = Annotated[
    list[str] | None,
    typer.Option(
        "--window",
        help='A time window its systems may be scanned in, e.g. "mon-fri 08:00-18:00 '
        'Europe/Paris"; repeat for more; on edit the list given replaces the source\'s, "" '
        "removes them all.",
    ),
]


def shown(source: dict[str, Any], *, all_fields: bool) -> dict[str, Any]:
    """A source as the established client prints it (everything with ``all_fields``), and its
    time windows when it has some (the established server has none)."""
    result = established(source, fields=FIELDS, all_fields=all_fields)
    if not all_fields:
        result["credentials"] = [
            {"id": c["id"], "name": c["name"]} for c in source.get("credentials", [])
        ]
        if source.get("windows"):
            result["windows"] = source["windows"]
    return result


def find_source(api: Api, *, name: str) -> dict[str, Any]:
    source = api.find(PATH, name=name)
    if source is None:
        fail(f'Source "{name}" does not exist.')
    return source


def _ids(api: Api, *, path: str, names: list[str], noun: str) -> list[int]:
    ids = []
    for name in names:
        found = api.find(path, name=name)
        if found is None:
            fail(f'{noun} "{name}" does not exist.')
        ids.append(int(found["id"]))
    return ids


def _credential_ids(api: Api, *, names: list[str], source: str, action: str) -> list[int]:
    """The ids of the credentials named, in order; those missing named as established."""
    found = {name: api.find(CREDENTIALS_PATH, name=name) for name in names}
    missing = [name for name, credential in found.items() if credential is None]
    if missing:
        fail(CREDS_NOT_FOUND.format(names=",".join(missing), action=action, source=source))
    return [int(credential["id"]) for credential in found.values() if credential is not None]


def _body(
    api: Api,
    *,
    name: str,
    action: str,
    hosts: list[str] | None,
    exclude_hosts: list[str] | None,
    creds: list[str] | None,
    port: int | None,
    ssl_cert_verify: str | None,
    ssl_protocol: SslProtocol | None,
    disable_ssl: str | None,
    proxy_url: str | None,
    use_paramiko: str | None,
    scheduling_mode: SchedulingMode | None,
    max_probes_per_second: float | None,
    scanners: list[str] | None,
    windows: list[str] | None = None,
) -> dict[str, Any]:
    """The request body for the options given; the server says which do not apply."""
    body: dict[str, Any] = {}
    if hosts:
        body["hosts"] = hosts_from(hosts)
    if exclude_hosts:
        body["exclude_hosts"] = hosts_from(exclude_hosts)
    if port is not None:
        body["port"] = port
    if ssl_cert_verify is not None:
        body["ssl_cert_verify"] = parse_bool(ssl_cert_verify, option="--ssl-cert-verify")
    if ssl_protocol is not None:
        body["ssl_protocol"] = ssl_protocol.value
    if disable_ssl is not None:
        body["disable_ssl"] = parse_bool(disable_ssl, option="--disable-ssl")
    if proxy_url is not None:
        body["proxy_url"] = proxy_url
    if use_paramiko is not None:
        body["use_paramiko"] = parse_bool(use_paramiko, option="--use-paramiko")
    if scheduling_mode is not None:
        body["scheduling_mode"] = scheduling_mode.value
    if max_probes_per_second is not None:
        body["max_probes_per_second"] = max_probes_per_second
    if creds:
        body["credentials"] = _credential_ids(api, names=creds, source=name, action=action)
    if scanners:
        body["scanners"] = _ids(api, path=SCANNERS_PATH, names=scanners, noun="Scanner")
    if windows is not None:
        # Each --window is one window; "" alone clears them.
        body["windows"] = [w for w in windows if w.strip()]
    return body


@app.command()
def add(
    name: Name,
    source_type: Annotated[SourceType, typer.Option("--type", help="Source type.")],
    hosts: Hosts = None,
    cred: Creds = None,
    exclude_hosts: ExcludeHosts = None,
    port: Port = None,
    ssl_cert_verify: SslCertVerify = None,
    ssl_protocol: SslProtocolOption = None,
    disable_ssl: DisableSsl = None,
    proxy_url: ProxyUrl = None,
    use_paramiko: UseParamiko = None,
    scheduling_mode: Scheduling = None,
    max_probes_per_second: Rate = None,
    scanner: Scanners = None,
    window: Windows = None,
    allow_large: AllowLarge = False,
) -> None:
    """Add a source."""
    missing = [option for option, given in (("--hosts", hosts), ("--cred", cred)) if not given]
    if missing:
        usage_error(f"the following arguments are required: {', '.join(missing)}")
    with connect() as api:
        body = _body(
            api,
            name=name,
            action="add",
            hosts=hosts,
            exclude_hosts=exclude_hosts,
            creds=cred,
            port=port,
            ssl_cert_verify=ssl_cert_verify,
            ssl_protocol=ssl_protocol,
            disable_ssl=disable_ssl,
            proxy_url=proxy_url,
            use_paramiko=use_paramiko,
            scheduling_mode=scheduling_mode,
            max_probes_per_second=max_probes_per_second,
            scanners=scanner,
            windows=window,
        )
        body |= {"name": name, "source_type": source_type.value}
        params = {"allow_large": "true"} if allow_large else None
        api.request("POST", PATH, json=body, params=params)
    typer.echo(f'Source "{name}" was added.')


@app.command()
def edit(
    name: Name,
    hosts: Hosts = None,
    cred: Creds = None,
    exclude_hosts: ExcludeHosts = None,
    port: Port = None,
    ssl_cert_verify: SslCertVerify = None,
    ssl_protocol: SslProtocolOption = None,
    disable_ssl: DisableSsl = None,
    proxy_url: ProxyUrl = None,
    use_paramiko: UseParamiko = None,
    scheduling_mode: Scheduling = None,
    max_probes_per_second: Rate = None,
    scanner: Scanners = None,
    window: Windows = None,
    allow_large: AllowLarge = False,
) -> None:
    """Change a source: only the options given change."""
    options = (hosts, cred, exclude_hosts, port, ssl_cert_verify, ssl_protocol, disable_ssl)
    more = (proxy_url, use_paramiko, scheduling_mode, max_probes_per_second, scanner, window)
    if all(value is None for value in (*options, *more)):
        fail(f"No arguments were provided to edit source {name}.")
    with connect() as api:
        source = find_source(api, name=name)
        body = _body(
            api,
            name=name,
            action="edit",
            hosts=hosts,
            exclude_hosts=exclude_hosts,
            creds=cred,
            port=port,
            ssl_cert_verify=ssl_cert_verify,
            ssl_protocol=ssl_protocol,
            disable_ssl=disable_ssl,
            proxy_url=proxy_url,
            use_paramiko=use_paramiko,
            scheduling_mode=scheduling_mode,
            max_probes_per_second=max_probes_per_second,
            scanners=scanner,
            windows=window,
        )
        params = {"allow_large": "true"} if allow_large else None
        api.request("PATCH", f"{PATH}{source['id']}/", json=body, params=params)
    typer.echo(f'Source "{name}" was updated.')


@app.command("list")
def list_sources(
    source_type: Annotated[
        SourceType | None, typer.Option("--type", help="Only sources of this type.")
    ] = None,
    all_fields: AllFields = False,
) -> None:
    """List sources as JSON."""
    params = {"source_type": source_type.value} if source_type else {}
    with connect() as api:
        sources = api.all(PATH, params=params)
    if not sources:
        # The established client says so on stderr and succeeds.
        typer.echo("No sources exist yet.", err=True)
        return
    print_json([shown(source, all_fields=all_fields) for source in sources])


@app.command()
def show(name: Name, all_fields: AllFields = False) -> None:
    """Show one source as JSON."""
    with connect() as api:
        source = find_source(api, name=name)
    print_json(shown(source, all_fields=all_fields))


@app.command()
def clear(
    name: Annotated[str | None, typer.Option("--name", help="Source to remove.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Remove every source.")] = False,
) -> None:
    """Remove one source, or all of them."""
    clear_objects(name=name, all_=all_, path=PATH, noun="Source", plural="sources", used_by="scan")
