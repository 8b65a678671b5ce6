"""``qpc source``: the networks, vCenter and Satellite servers a scan looks at."""

from __future__ import annotations

import enum
from typing import Annotated, Any

import typer

from quipu.cli.qpc_common import fail, hosts_from, parse_bool, print_json, usage_error
from quipu.cli.qpc_cred import PATH as CREDENTIALS_PATH
from quipu.cli.qpc_http import Api, clear_objects, connect
from quipu.domain.source_types import rules_of
from quipu.domain.states import SourceType

app = typer.Typer(help="Manage sources.", no_args_is_help=True)

PATH = "/api/v2/sources/"
SCANNERS_PATH = "/api/v1/scanners/"


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
Port = Annotated[int | None, typer.Option("--port", help="Port (default 22 or 443).")]
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
ProxyUrl = Annotated[
    str | None,
    typer.Option(
        "--proxy-url", help="HTTP(S) proxy to reach the server through (vcenter, satellite)."
    ),
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


def format_ssl_error(options: list[str], *, source_type: str) -> str:
    return f"Error: Invalid SSL options for {source_type} source: {', '.join(options)}"


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


def _body(
    api: Api,
    *,
    source_type: str,
    hosts: list[str] | None,
    exclude_hosts: list[str] | None,
    creds: list[str] | None,
    port: int | None,
    ssl_cert_verify: str | None,
    ssl_protocol: SslProtocol | None,
    disable_ssl: str | None,
    proxy_url: str | None,
    scheduling_mode: SchedulingMode | None,
    max_probes_per_second: float | None,
    scanners: list[str] | None,
) -> dict[str, Any]:
    """The request body for the options given; refuses SSL options where they do not apply."""
    ssl_given = [
        option
        for option, value in (
            ("--ssl-cert-verify", ssl_cert_verify),
            ("--ssl-protocol", ssl_protocol),
            ("--disable-ssl", disable_ssl),
            ("--proxy-url", proxy_url),
        )
        if value is not None
    ]
    if ssl_given and not rules_of(source_type).tls_options:
        fail(format_ssl_error(ssl_given, source_type=source_type))
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
    if scheduling_mode is not None:
        body["scheduling_mode"] = scheduling_mode.value
    if max_probes_per_second is not None:
        body["max_probes_per_second"] = max_probes_per_second
    if creds:
        body["credentials"] = _ids(api, path=CREDENTIALS_PATH, names=creds, noun="Credential")
    if scanners:
        body["scanners"] = _ids(api, path=SCANNERS_PATH, names=scanners, noun="Scanner")
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
    scheduling_mode: Scheduling = None,
    max_probes_per_second: Rate = None,
    scanner: Scanners = None,
    allow_large: AllowLarge = False,
) -> None:
    """Add a source."""
    if not hosts:
        usage_error("Missing option '--hosts'.")
    if not cred:
        usage_error("Missing option '--cred'.")
    with connect() as api:
        body = _body(
            api,
            source_type=source_type.value,
            hosts=hosts,
            exclude_hosts=exclude_hosts,
            creds=cred,
            port=port,
            ssl_cert_verify=ssl_cert_verify,
            ssl_protocol=ssl_protocol,
            disable_ssl=disable_ssl,
            proxy_url=proxy_url,
            scheduling_mode=scheduling_mode,
            max_probes_per_second=max_probes_per_second,
            scanners=scanner,
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
    scheduling_mode: Scheduling = None,
    max_probes_per_second: Rate = None,
    scanner: Scanners = None,
    allow_large: AllowLarge = False,
) -> None:
    """Change a source: only the options given change."""
    options = (hosts, cred, exclude_hosts, port, ssl_cert_verify, ssl_protocol, disable_ssl)
    more = (proxy_url, scheduling_mode, max_probes_per_second, scanner)
    if all(value is None for value in (*options, *more)):
        usage_error("Nothing to change: give at least one option besides --name.")
    with connect() as api:
        source = find_source(api, name=name)
        body = _body(
            api,
            source_type=source["source_type"],
            hosts=hosts,
            exclude_hosts=exclude_hosts,
            creds=cred,
            port=port,
            ssl_cert_verify=ssl_cert_verify,
            ssl_protocol=ssl_protocol,
            disable_ssl=disable_ssl,
            proxy_url=proxy_url,
            scheduling_mode=scheduling_mode,
            max_probes_per_second=max_probes_per_second,
            scanners=scanner,
        )
        params = {"allow_large": "true"} if allow_large else None
        api.request("PATCH", f"{PATH}{source['id']}/", json=body, params=params)
    typer.echo(f'Source "{name}" was updated.')


@app.command("list")
def list_sources(
    source_type: Annotated[
        SourceType | None, typer.Option("--type", help="Only sources of this type.")
    ] = None,
) -> None:
    """List sources as JSON."""
    params = {"source_type": source_type.value} if source_type else {}
    with connect() as api:
        sources = api.all(PATH, params=params)
    if not sources:
        typer.echo("No sources exist yet.")
        return
    print_json(sources)


@app.command()
def show(name: Name) -> None:
    """Show one source as JSON."""
    with connect() as api:
        print_json(find_source(api, name=name))


@app.command()
def clear(
    name: Annotated[str | None, typer.Option("--name", help="Source to remove.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Remove every source.")] = False,
) -> None:
    """Remove one source, or all of them."""
    clear_objects(name=name, all_=all_, path=PATH, noun="Source", plural="sources")
