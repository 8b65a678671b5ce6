"""qpc's credential and source commands print exactly what the established client prints.

Each test drives the real ``qpc`` against a real server (SQLite and PostgreSQL) and compares
whole outputs: every stdout and stderr string, and every JSON object with only its ids and
timestamps taken from the server.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncssh
import httpx
import pytest

from tests.e2e.qpc import Qpc
from tests.servers import ADMIN_PASSWORD, RunningServer

PASSWORD = "compat-Net-Password-5521"
SECRETS = (PASSWORD, ADMIN_PASSWORD)
PASSWORD_PROMPT = "Provide a connection password.\nPassword: \n"
CRED_FIELDS = {
    "auth_type",
    "become_method",
    "become_user",
    "created_at",
    "cred_type",
    "has_auth_token",
    "has_become_password",
    "has_password",
    "has_ssh_key",
    "has_ssh_passphrase",
    "id",
    "name",
    "sources",
    "ssh_keyfile",
    "updated_at",
    "username",
    "vault_mount_point",
    "vault_secret_key",
    "vault_secret_path",
}
SOURCE_FIELDS = {
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
}
DEBUG_LINE = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} - [\w.]+ - (DEBUG|INFO|WARNING) - \[\w+\] - "
    r"\S+:\d+ - .*$"
)


@pytest.fixture
def qpc(server: RunningServer, tmp_path: Path) -> Qpc:
    """qpc configured for ``server`` and logged in."""
    client = Qpc(config_home=tmp_path / "config", secrets=SECRETS)
    configured = client.ok(
        "server", "config", "--host", "127.0.0.1", "--port", str(server.port), "--use-http"
    )
    assert (configured.stdout, configured.stderr) == (
        "Server connectivity was successfully configured. The server will be contacted via "
        f'"http" at host "127.0.0.1" with port "{server.port}".\n',
        "",
    )
    login = client.ok("server", "login", "--username", "admin", input=ADMIN_PASSWORD + "\n")
    assert login.stdout == "Login successful.\n"
    return client


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "id_ed25519"
    path.write_text(asyncssh.generate_private_key("ssh-ed25519").export_private_key().decode())
    return path


def add_cred(qpc: Qpc, name: str, cred_type: str = "network", *options: str) -> None:
    added = qpc.ok(
        "cred", "add", "--name", name, "--type", cred_type, "--username", "admin", "--password",
        *options, input=PASSWORD + "\n",
    )  # fmt: skip
    assert (added.stdout, added.stderr) == (f'Credential "{name}" was added.\n', PASSWORD_PROMPT)


def stamped(value: dict[str, Any]) -> dict[str, Any]:
    """``value`` with its timestamps, checked to be ISO 8601 UTC times, as ``<time>``."""
    result = dict(value)
    for key in ("created_at", "updated_at"):
        if key in result:
            assert datetime.fromisoformat(result[key]).utcoffset() is not None, result[key]
            result[key] = "<time>"
    return result


def ids(api: httpx.Client, path: str) -> dict[str, int]:
    """name -> id of every object at ``path``."""
    results = api.get(path, params={"page_size": 1000}).json()["results"]
    return {item["name"]: item["id"] for item in results}


def cred_json(
    *,
    id: int,
    name: str,
    cred_type: str,
    username: str = "admin",
    sources: list[dict[str, Any]] | None = None,
    auth_type: str = "password",
) -> dict[str, Any]:
    network = cred_type == "network"
    return {
        "auth_type": auth_type,
        "become_method": "sudo" if network else None,
        "become_user": "root" if network else None,
        "created_at": "<time>",
        "cred_type": cred_type,
        "has_auth_token": False,
        "has_become_password": False,
        "has_password": auth_type == "password",
        "has_ssh_key": auth_type == "ssh_key",
        "has_ssh_passphrase": False,
        "id": id,
        "name": name,
        "sources": sources or [],
        "ssh_keyfile": None,
        "updated_at": "<time>",
        "username": username,
        "vault_mount_point": None,
        "vault_secret_key": None,
        "vault_secret_path": None,
    }


def source_json(
    *, id: int, name: str, source_type: str, hosts: list[str], credentials: list[dict[str, Any]]
) -> dict[str, Any]:
    network = source_type == "network"
    return {
        "credentials": credentials,
        "disable_ssl": None,
        "exclude_hosts": None,
        "hosts": hosts,
        "id": id,
        "name": name,
        "port": 22 if network else 443,
        "proxy_url": None,
        "source_type": source_type,
        "ssl_cert_verify": None if network else True,
        "ssl_protocol": None,
        "use_paramiko": None,
    }


def test_cred_commands_print_the_established_output(
    qpc: Qpc, api: httpx.Client, key_file: Path
) -> None:
    empty = qpc.ok("cred", "list")
    assert (empty.stdout, empty.stderr) == ("", "No credentials exist yet.\n")

    add_cred(qpc, "net")
    keyed = qpc.ok(
        "cred", "add", "--name", "key", "--type", "network", "--username", "scan",
        "--sshkeyfile", str(key_file),
    )  # fmt: skip
    assert (keyed.stdout, keyed.stderr) == ('Credential "key" was added.\n', "")
    add_cred(qpc, "vc", "vcenter")
    add_cred(qpc, "sat", "satellite")
    cred_ids = ids(api, "/api/v2/credentials/")

    expected = {
        "key": cred_json(
            id=cred_ids["key"],
            name="key",
            cred_type="network",
            username="scan",
            auth_type="ssh_key",
        ),
        "net": cred_json(id=cred_ids["net"], name="net", cred_type="network"),
        "sat": cred_json(id=cred_ids["sat"], name="sat", cred_type="satellite"),
        "vc": cred_json(id=cred_ids["vc"], name="vc", cred_type="vcenter"),
    }
    for name, want in expected.items():
        shown = qpc.ok("cred", "show", "--name", name)
        assert (stamped(shown.json()), shown.stderr) == (want, "")
    assert [stamped(c) for c in qpc.ok("cred", "list").json()] == list(expected.values())
    assert [stamped(c) for c in qpc.ok("cred", "list", "--type", "vcenter").json()] == [
        expected["vc"]
    ]
    every = qpc.ok("cred", "show", "--name", "net", "--all-fields").json()
    assert every == api.get(f"/api/v2/credentials/{cred_ids['net']}/").json()

    edited = qpc.ok("cred", "edit", "--name", "net", "--username", "other")
    assert (edited.stdout, edited.stderr) == ('Credential "net" was updated.\n', "")
    assert stamped(qpc.ok("cred", "show", "--name", "net").json()) == {
        **expected["net"],
        "username": "other",
    }

    before = qpc.ok("cred", "list").stdout
    duplicate = qpc.fails(
        "cred", "add", "--name", "net", "--type", "network", "--username", "u", "--password",
        input=PASSWORD + "\n",
    )  # fmt: skip
    assert duplicate.stderr == PASSWORD_PROMPT + "name: credential with this name already exists.\n"
    assert qpc.fails("cred", "show", "--name", "nope").stderr == (
        'Credential "nope" does not exist.\n'
    )
    assert qpc.fails("cred", "edit", "--name", "nope", "--username", "x").stderr == (
        'Credential "nope" does not exist.\n'
    )
    assert qpc.fails("cred", "edit", "--name", "net").stderr == (
        'No arguments were provided to edit credential "net".\n'
    )
    assert qpc.fails("cred", "clear", "--name", "nope").stderr == (
        'Credential "nope" was not found.\n'
    )
    usage = {
        ("cred", "add", "--name", "x", "--type", "vcenter", "--username", "u"):
            "Error: one of the arguments --password --sshkeyfile --token --vault-secret-path "
            "is required\n",
        ("cred", "add", "--name", "x", "--type", "network", "--username", "u", "--password",
         "--sshkeyfile", str(key_file)):
            "Error: argument --sshkeyfile: not allowed with argument --password\n",
        ("cred", "add", "--name", "x", "--type", "network", "--username", "u",
         f"--sshkeyfile={key_file}", "--password"):
            "Error: argument --password: not allowed with argument --sshkeyfile\n",
        ("cred", "clear",): "Error: one of the arguments --name --all is required\n",
        ("cred", "clear", "--name", "x", "--all"):
            "Error: argument --all: not allowed with argument --name\n",
    }  # fmt: skip
    for args, message in usage.items():
        assert qpc.fails(*args, code=2).stderr == message, args
    assert qpc.ok("cred", "list").stdout == before

    removed = qpc.ok("cred", "clear", "--name", "vc")
    assert (removed.stdout, removed.stderr) == ('Credential "vc" was removed.\n', "")
    cleared = qpc.ok("cred", "clear", "--all")
    assert (cleared.stdout, cleared.stderr) == (
        "Successfully deleted 3 credentials. 0 credentials could not be deleted.\n",
        "",
    )
    assert qpc.fails("cred", "clear", "--all").stderr == "No credentials exist to be removed.\n"


def test_source_commands_print_the_established_output(qpc: Qpc, api: httpx.Client) -> None:
    empty = qpc.ok("source", "list")
    assert (empty.stdout, empty.stderr) == ("", "No sources exist yet.\n")
    for name, cred_type in [
        ("net", "network"),
        ("net2", "network"),
        ("vc", "vcenter"),
        ("vc2", "vcenter"),
        ("sat", "satellite"),
    ]:
        add_cred(qpc, name, cred_type)
    cred = {name: {"id": i, "name": name} for name, i in ids(api, "/api/v2/credentials/").items()}

    added = {
        "lab": qpc.ok(
            "source", "add", "--name", "lab", "--type", "network",
            "--hosts", "10.0.0.[1:3]", "10.0.1.0/30", "db1.example.com", "--cred", "net2", "net",
        ),
        "paramiko": qpc.ok(
            "source", "add", "--name", "paramiko", "--type", "network", "--hosts", "10.0.2.0/29",
            "--exclude-hosts", "10.0.2.3", "--cred", "net", "--port", "2222",
            "--use-paramiko", "true",
        ),
        "vcenter": qpc.ok(
            "source", "add", "--name", "vcenter", "--type", "vcenter",
            "--hosts", "vc.example.com", "--cred", "vc",
        ),
        "satellite": qpc.ok(
            "source", "add", "--name", "satellite", "--type", "satellite",
            "--hosts", "sat.example.com", "--cred", "sat", "--port", "8443",
            "--ssl-cert-verify", "false", "--ssl-protocol", "TLSv1_2", "--disable-ssl", "true",
            "--proxy-url", "http://proxy.example.com:3128",
        ),
    }  # fmt: skip
    for name, result in added.items():
        assert (result.stdout, result.stderr) == (f'Source "{name}" was added.\n', "")
    source_ids = ids(api, "/api/v2/sources/")

    expected = {
        "lab": source_json(
            id=source_ids["lab"],
            name="lab",
            source_type="network",
            hosts=["10.0.0.[1:3]", "10.0.1.0/30", "db1.example.com"],
            credentials=[cred["net2"], cred["net"]],
        ),
        "paramiko": {
            **source_json(
                id=source_ids["paramiko"],
                name="paramiko",
                source_type="network",
                hosts=["10.0.2.0/29"],
                credentials=[cred["net"]],
            ),
            "exclude_hosts": ["10.0.2.3"],
            "port": 2222,
            "use_paramiko": True,
        },
        "satellite": {
            **source_json(
                id=source_ids["satellite"],
                name="satellite",
                source_type="satellite",
                hosts=["sat.example.com"],
                credentials=[cred["sat"]],
            ),
            "disable_ssl": True,
            "port": 8443,
            "proxy_url": "http://proxy.example.com:3128",
            "ssl_cert_verify": False,
            "ssl_protocol": "TLSv1_2",
        },
        "vcenter": source_json(
            id=source_ids["vcenter"],
            name="vcenter",
            source_type="vcenter",
            hosts=["vc.example.com"],
            credentials=[cred["vc"]],
        ),
    }
    for name, want in expected.items():
        shown = qpc.ok("source", "show", "--name", name)
        assert (shown.json(), shown.stderr) == (want, "")
    assert qpc.ok("source", "list").json() == list(expected.values())
    assert qpc.ok("source", "list", "--type", "satellite").json() == [expected["satellite"]]
    every = qpc.ok("source", "show", "--name", "lab", "--all-fields").json()
    assert every == api.get(f"/api/v2/sources/{source_ids['lab']}/").json()
    assert (every["scheduling_mode"], every["max_probes_per_second"], every["scanners"]) == (
        "immediate",
        0,
        [],
    )
    # A credential names the sources that use it, by name.
    assert qpc.ok("cred", "show", "--name", "net").json()["sources"] == [
        {"id": source_ids["lab"], "name": "lab"},
        {"id": source_ids["paramiko"], "name": "paramiko"},
    ]

    edits = {
        ("--hosts", "10.0.9.9", "--cred", "net"): {
            "hosts": ["10.0.9.9"],
            "credentials": [cred["net"]],
        },
        ("--use-paramiko", "false"): {"use_paramiko": False},
        ("--exclude-hosts", "10.0.9.10"): {"exclude_hosts": ["10.0.9.10"]},
    }
    want = expected["lab"]
    for options, changed in edits.items():
        edited = qpc.ok("source", "edit", "--name", "lab", *options)
        assert (edited.stdout, edited.stderr) == ('Source "lab" was updated.\n', "")
        want = {**want, **changed}
        assert qpc.ok("source", "show", "--name", "lab").json() == want

    before = qpc.ok("source", "list").stdout
    vcenter = ("source", "add", "--name", "x", "--type", "vcenter", "--hosts")
    network = ("source", "add", "--name", "x", "--type", "network", "--hosts", "10.0.0.1")
    refusals = {
        (*vcenter, "a.example.com", "b.example.com", "--cred", "vc"):
            "hosts: This source must have a single host.\n",
        (*vcenter, "10.0.0.[1:2]", "--cred", "vc"):
            "hosts: This source must have a single host.\n",
        (*vcenter, "vc.example.com", "--exclude-hosts", "10.0.0.1", "--cred", "vc"):
            "exclude_hosts: The exclude_hosts option is not valid for this source.\n",
        (*vcenter, "vc.example.com", "--cred", "vc", "vc2"):
            "credentials: This source must have a single credential.\n",
        (*vcenter, "vc.example.com", "--cred", "net"):
            "source_type: Credentials must have the same type as source.\n",
        (*vcenter, "vc.example.com", "--cred", "vc", "--use-paramiko", "true"):
            "Error: Invalid options for 'vcenter': use_paramiko.\n",
        (*network, "--cred", "net", "--ssl-cert-verify", "false"):
            "Error: Invalid SSL options for network source: ssl_cert_verify\n",
        (*network, "--cred", "net", "--ssl-protocol", "TLSv1_2"):
            "Error: Invalid SSL options for network source: ssl_protocol\n",
        (*network, "--cred", "net", "--disable-ssl", "true"):
            "Error: Invalid SSL options for network source: disable_ssl\n",
        ("source", "edit", "--name", "lab", "--disable-ssl", "false", "--ssl-cert-verify",
         "true"):
            "Error: Invalid SSL options for network source: ssl_cert_verify, disable_ssl\n",
        ("source", "add", "--name", "lab", "--type", "network", "--hosts", "10.0.0.1",
         "--cred", "net"):
            "name: Source with name=lab already exists\n",
        (*network, "--cred", "net", "nope", "gone"):
            'An error occurred while processing the "--cred" input values. References for the '
            'following credential could not be found: nope,gone. Failed to add source "x". '
            "For more information, see the server log file.\n",
        ("source", "edit", "--name", "lab", "--cred", "nope"):
            'An error occurred while processing the "--cred" input values. References for the '
            'following credential could not be found: nope. Failed to edit source "lab". '
            "For more information, see the server log file.\n",
        ("source", "show", "--name", "nope"): 'Source "nope" does not exist.\n',
        ("source", "edit", "--name", "nope", "--port", "1"): 'Source "nope" does not exist.\n',
        ("source", "edit", "--name", "lab"): "No arguments were provided to edit source lab.\n",
        ("source", "clear", "--name", "nope"): 'Source "nope" was not found.\n',
    }  # fmt: skip
    for args, message in refusals.items():
        assert qpc.fails(*args).stderr == message, args
    usage = {
        ("source", "add", "--name", "x", "--type", "network"):
            "Error: the following arguments are required: --hosts, --cred\n",
        ("source", "add", "--name", "x", "--type", "network", "--hosts", "10.0.0.1"):
            "Error: the following arguments are required: --cred\n",
        (*vcenter, "vc.example.com", "--cred", "vc", "--port", "70000"):
            "Error: argument --port: Port value 70000 should be a positive integer in the "
            "valid range (0-65535)\n",
        (*vcenter, "vc.example.com", "--cred", "vc", "--ssl-cert-verify", "maybe"):
            "Error: argument --ssl-cert-verify: invalid choice: 'maybe' (choose from 'true', "
            "'false')\n",
    }  # fmt: skip
    for args, message in usage.items():
        assert qpc.fails(*args, code=2).stderr == message, args
    assert qpc.ok("source", "list").stdout == before

    # A scan keeps its source, and the source its credentials, from being cleared.
    scan = api.post("/api/v1/scans/", json={"name": "nightly", "sources": [source_ids["lab"]]})
    assert scan.status_code == 201, scan.text
    held = qpc.fails("cred", "clear", "--all")
    assert held.stderr == (
        f"Could not delete credential ID {cred['net']['id']} because it is assigned to at "
        f"least one source (source ID {source_ids['lab']}, {source_ids['paramiko']}).\n"
        f"Could not delete credential ID {cred['vc']['id']} because it is assigned to at "
        f"least one source (source ID {source_ids['vcenter']}).\n"
        f"Could not delete credential ID {cred['sat']['id']} because it is assigned to at "
        f"least one source (source ID {source_ids['satellite']}).\n"
        "Successfully deleted 2 credentials. 3 credentials could not be deleted.\n"
    )
    partial = qpc.fails("source", "clear", "--all")
    assert partial.stderr == (
        f"Could not delete source ID {source_ids['lab']} because it is assigned to at least "
        f"one scan (scan ID {scan.json()['id']}).\n"
        "Successfully deleted 3 sources. 1 sources could not be deleted.\n"
    )
    assert api.delete(f"/api/v1/scans/{scan.json()['id']}/").status_code == 204
    removed = qpc.ok("source", "clear", "--name", "lab")
    assert (removed.stdout, removed.stderr) == ('Source "lab" was removed.\n', "")
    assert qpc.fails("source", "clear", "--all").stderr == "No sources exist to be removed.\n"
    cleared = qpc.ok("cred", "clear", "--all")
    assert (
        cleared.stdout
        == "Successfully deleted 3 credentials. 0 credentials could not be deleted.\n"
    )


def test_verbosity_shows_http_lines_only_at_debug(qpc: Qpc, server: RunningServer) -> None:
    quiet = qpc.ok(
        "-v", "cred", "add", "--name", "net", "--type", "network", "--username", "root",
        "--password", input=PASSWORD + "\n",
    )  # fmt: skip
    assert (quiet.stdout, quiet.stderr) == ('Credential "net" was added.\n', PASSWORD_PROMPT)
    plain = qpc.ok("cred", "show", "--name", "net")
    verbose = qpc.ok("-v", "cred", "show", "--name", "net")
    assert (verbose.stdout, verbose.stderr) == (plain.stdout, "")
    assert qpc.ok("-v", "source", "list").stderr == "No sources exist yet.\n"

    debug = qpc.ok("-vv", "cred", "show", "--name", "net")
    assert debug.stdout == plain.stdout
    lines = debug.stderr.splitlines()
    assert lines and all(DEBUG_LINE.match(line) for line in lines), debug.stderr
    request = f'HTTP Request: GET {server.url}/api/v2/credentials/?name=net "HTTP/1.1 200 OK"'
    assert any(" - httpx - INFO - " in line and line.endswith(request) for line in lines)
    assert qpc.ok("-vvv", "cred", "show", "--name", "net").stdout == plain.stdout

    failed = qpc.fails("-vv", "source", "show", "--name", "nope")
    assert failed.stderr.endswith('\nSource "nope" does not exist.\n')


def test_api_carries_the_established_fields(qpc: Qpc, api: httpx.Client) -> None:
    add_cred(qpc, "net")
    qpc.ok("source", "add", "--name", "lab", "--type", "network", "--hosts", "10.0.0.1",
           "--cred", "net", "--use-paramiko", "true")  # fmt: skip
    credential = api.get("/api/v2/credentials/", params={"name": "net"}).json()["results"][0]
    assert CRED_FIELDS <= set(credential)
    assert "password" not in credential
    source = api.get("/api/v2/sources/", params={"name": "lab"}).json()["results"][0]
    assert SOURCE_FIELDS | {"scheduling_mode", "max_probes_per_second", "scanners"} <= set(source)
    assert (source["use_paramiko"], source["exclude_hosts"], source["disable_ssl"]) == (
        True,
        None,
        None,
    )
    assert source["credentials"] == [
        {"id": credential["id"], "name": "net", "cred_type": "network"}
    ]

    patched = api.patch(f"/api/v2/sources/{source['id']}/", json={"use_paramiko": False})
    assert patched.json()["use_paramiko"] is False
    refused = api.post(
        "/api/v2/sources/",
        json={
            "name": "x",
            "source_type": "network",
            "hosts": ["10.0.0.1"],
            "credentials": [credential["id"]],
            "ssl_cert_verify": False,
        },
    )
    assert refused.status_code == 400
    assert refused.json()["options"] == ["Invalid SSL options for network source: ssl_cert_verify"]

    scan = api.post("/api/v1/scans/", json={"name": "nightly", "sources": [source["id"]]})
    held_cred = api.post("/api/v2/credentials/bulk_delete/", json={"ids": "all"}).json()
    assert held_cred["skipped"] == [
        {
            "id": credential["id"],
            "name": "net",
            "reason": 'used by source "lab"',
            "credential": credential["id"],
            "sources": [source["id"]],
        }
    ]
    held_source = api.post("/api/v2/sources/bulk_delete/", json={"ids": "all"}).json()
    assert held_source["skipped"] == [
        {
            "id": source["id"],
            "name": "lab",
            "reason": 'used by scan "nightly"',
            "source": source["id"],
            "scans": [scan.json()["id"]],
        }
    ]
