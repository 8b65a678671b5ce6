"""The real ``qpc`` against a real server: config, login, credentials, sources, scans."""

from __future__ import annotations

import stat
from pathlib import Path

import asyncssh
import httpx
import pytest

from tests.e2e.qpc import Qpc
from tests.servers import ADMIN_PASSWORD, RunningServer, free_port

PASSWORD = "qpc-Net-Password-4410"
BECOME_PASSWORD = "qpc-Become-Password-9021"
PASSPHRASE = "qpc-Key-Passphrase-3377"
KEY = (
    asyncssh.generate_private_key("ssh-rsa", key_size=2048)
    .export_private_key("pkcs8-pem", passphrase=PASSPHRASE)
    .decode()
)
KEY_LINES = tuple(line for line in KEY.splitlines() if len(line) > 40 and "KEY" not in line)
SECRETS = (PASSWORD, BECOME_PASSWORD, PASSPHRASE, ADMIN_PASSWORD, *KEY_LINES)
LOGIN_FIRST = 'Log in with "qpc server login" first.'


@pytest.fixture
def qpc(tmp_path: Path) -> Qpc:
    return Qpc(config_home=tmp_path / "config", secrets=SECRETS)


@pytest.fixture
def logged_in(server: RunningServer, qpc: Qpc) -> Qpc:
    qpc.ok("server", "config", "--host", "127.0.0.1", "--port", str(server.port), "--use-http")
    qpc.ok("server", "login", "--username", "admin", input=ADMIN_PASSWORD + "\n")
    return qpc


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "id_rsa"
    path.write_text(KEY)
    return path


def add_password_credential(qpc: Qpc, name: str, cred_type: str = "network") -> None:
    added = qpc.ok(
        "cred", "add", "--name", name, "--type", cred_type, "--username", "root", "--password",
        input=PASSWORD + "\n",
    )  # fmt: skip
    assert added.stdout == f'Credential "{name}" was added.\n'


def test_server_config_login_status_logout(server: RunningServer, qpc: Qpc) -> None:
    unconfigured = qpc.fails("cred", "list")
    assert 'qpc server config --host HOST --port PORT" first.' in unconfigured.stderr
    assert qpc("server", "config", "--port", "9443").code == 2
    assert qpc("server", "config", "--host", "h", "--port", "70000").code == 2

    https = qpc.ok("server", "config", "--host", "127.0.0.1", "--port", str(server.port))
    assert https.stdout == (
        "Server connectivity was successfully configured. The server will be contacted via "
        f'"https" at host "127.0.0.1" with port "{server.port}".\n'
    )
    assert "will not be verified" in https.stderr
    configured = qpc.ok(
        "server", "config", "--host", "127.0.0.1", "--port", str(server.port), "--use-http"
    )
    assert (configured.stdout, configured.stderr) == (
        "Server connectivity was successfully configured. The server will be contacted via "
        f'"http" at host "127.0.0.1" with port "{server.port}".\n',
        "",
    )
    assert qpc.fails("cred", "list").stderr == f"You are not logged in. {LOGIN_FIRST}\n"

    wrong = qpc.fails("server", "login", "--username", "admin", input="wrong\n")
    assert wrong.stderr.endswith("Unable to log in with provided credentials.\n")
    assert not (qpc.config_dir / "client_token").exists()
    login = qpc.ok("server", "login", input=f"admin\n{ADMIN_PASSWORD}\n")
    assert login.stdout == "Login successful.\n"
    assert "User: " in login.stderr and "Password: " in login.stderr
    token_file = qpc.config_dir / "client_token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    token = token_file.read_text()

    status = qpc.ok("server", "status").json()
    assert status["server_version"] and status["api_version"] == 1
    empty = qpc.ok("cred", "list")
    assert (empty.stdout, empty.stderr) == ("", "No credentials exist yet.\n")

    assert qpc.ok("server", "logout").stdout == "Logged out.\n"
    assert not token_file.exists()
    assert qpc.fails("cred", "list").stderr == f"You are not logged in. {LOGIN_FIRST}\n"
    # The server revoked the token: a copy of it logs no one in any more.
    token_file.write_text(token)
    expired = qpc.fails("source", "list")
    assert expired.stderr == (
        f"Your login is no longer valid (expired or logged out). {LOGIN_FIRST}\n"
    )
    assert qpc.ok("server", "logout").stdout == "Logged out.\n"

    nobody = free_port()
    qpc.ok("server", "config", "--host", "127.0.0.1", "--port", str(nobody), "--use-http")
    unreachable = qpc.fails("server", "status")
    assert f"Cannot reach the Quipu server at 127.0.0.1:{nobody}" in unreachable.stderr
    assert '"qpc server config' in unreachable.stderr


def test_cred_commands(logged_in: Qpc, key_file: Path, tmp_path: Path) -> None:
    qpc = logged_in
    added = qpc.ok(
        "cred", "add", "--name", "pw", "--type", "network", "--username", "root", "--password",
        "--become-method", "doas", "--become-password",
        input=f"{PASSWORD}\n{BECOME_PASSWORD}\n",
    )  # fmt: skip
    assert added.stdout == 'Credential "pw" was added.\n'
    assert added.stderr == (
        "Provide a connection password.\nPassword: \n"
        "Provide a privilege escalation password to be used when running a network scan.\n"
        "Password: \n"
    )
    keyed = qpc.ok(
        "cred", "add", "--name=keyed", "--type=network", "--username=scan",
        f"--sshkeyfile={key_file}", "--sshpassphrase",
        input=PASSPHRASE + "\n",
    )  # fmt: skip
    assert keyed.stdout == 'Credential "keyed" was added.\n'
    assert "Provide a passphrase for the SSH Key.\nPassword: " in keyed.stderr
    piped = qpc.ok(
        "cred", "add", "--name", "piped", "--type", "network", "--username", "scan",
        "--sshkeyfile", "-", "--sshpassphrase",
        input=KEY + PASSPHRASE + "\n",
    )  # fmt: skip
    assert piped.stdout == 'Credential "piped" was added.\n'
    assert piped.stderr.startswith("Private SSH Key:\n")
    add_password_credential(qpc, "vc", "vcenter")

    duplicate = qpc.fails(
        "cred", "add", "--name", "pw", "--type", "network", "--username", "u", "--password",
        input=PASSWORD + "\n",
    )  # fmt: skip
    assert duplicate.stderr.endswith("name: credential with this name already exists.\n")
    not_a_key = tmp_path / "not-a-key"
    not_a_key.write_text("hello\n")
    bad_key = qpc.fails(
        "cred", "add", "--name", "bad", "--type", "network", "--username", "u",
        "--sshkeyfile", str(not_a_key),
    )  # fmt: skip
    assert "ssh_key is not a private key" in bad_key.stderr
    missing = qpc.fails(
        "cred", "add", "--name", "bad", "--type", "network", "--username", "u",
        "--sshkeyfile", str(tmp_path / "absent"),
    )  # fmt: skip
    assert missing.stderr == f'The SSH key file "{tmp_path / "absent"}" cannot be read ' + (
        "(No such file or directory).\n"
    )
    for usage in [
        ("cred", "add", "--type", "network", "--username", "u", "--password"),
        ("cred", "add", "--name", "x", "--type", "ldap", "--username", "u", "--password"),
        ("cred", "add", "--name", "x", "--type", "network", "--username", "u"),
        ("cred", "add", "--name", "x", "--type", "network", "--username", "u", "--password",
         "--sshkeyfile", str(key_file)),
        ("cred", "clear"),
        ("cred", "clear", "--name", "pw", "--all"),
        ("cred", "show"),
    ]:  # fmt: skip
        assert qpc(*usage).code == 2, usage
    assert qpc.fails("cred", "edit", "--name", "pw").stderr == (
        'No arguments were provided to edit credential "pw".\n'
    )

    listed = qpc.ok("cred", "list").json()
    assert [c["name"] for c in listed] == ["keyed", "piped", "pw", "vc"]
    assert [c["name"] for c in qpc.ok("cred", "list", "--type", "vcenter").json()] == ["vc"]
    shown = qpc.ok("cred", "show", "--name", "pw").json()
    assert (shown["become_method"], shown["has_become_password"], shown["auth_type"]) == (
        "doas",
        True,
        "password",
    )
    assert qpc.ok("cred", "show", "--name", "keyed").json()["has_ssh_passphrase"] is True
    assert (
        qpc.fails("cred", "show", "--name", "nope").stderr == 'Credential "nope" does not exist.\n'
    )

    edited = qpc.ok("cred", "edit", "--name", "pw", "--username", "other")
    assert edited.stdout == 'Credential "pw" was updated.\n'
    assert qpc.ok("cred", "show", "--name", "pw").json()["username"] == "other"
    switched = qpc.ok(
        "cred", "edit", "--name", "pw", "--sshkeyfile", str(key_file), "--sshpassphrase",
        input=PASSPHRASE + "\n",
    )  # fmt: skip
    assert switched.stdout == 'Credential "pw" was updated.\n'
    now = qpc.ok("cred", "show", "--name", "pw").json()
    assert (now["auth_type"], now["has_password"], now["has_become_password"]) == (
        "ssh_key",
        False,
        True,
    )
    unknown = qpc.fails("cred", "edit", "--name", "nope", "--username", "x")
    assert unknown.stderr == 'Credential "nope" does not exist.\n'

    assert qpc.fails("cred", "clear", "--name", "nope").stderr == (
        'Credential "nope" was not found.\n'
    )
    assert qpc.ok("cred", "clear", "--name", "vc").stdout == 'Credential "vc" was removed.\n'
    assert qpc.ok("cred", "clear", "--all").stdout == (
        "Successfully deleted 3 credentials. 0 credentials could not be deleted.\n"
    )
    assert qpc.ok("cred", "list").stderr == "No credentials exist yet.\n"
    assert qpc.fails("cred", "clear", "--all").stderr == "No credentials exist to be removed.\n"


def test_source_commands(logged_in: Qpc, tmp_path: Path) -> None:
    qpc = logged_in
    add_password_credential(qpc, "one")
    add_password_credential(qpc, "two")
    add_password_credential(qpc, "vc", "vcenter")

    added = qpc.ok(
        "source", "add", "--name", "lab", "--type", "network",
        "--hosts", "10.0.0.1", "10.0.1.0/30", "10.0.2.[1:5]", "--cred", "two", "one",
        "--port", "2222", "--max-probes-per-second", "100",
    )  # fmt: skip
    assert added.stdout == 'Source "lab" was added.\n'
    lab = qpc.ok("source", "show", "--name", "lab", "--all-fields").json()
    assert lab["hosts"] == ["10.0.0.1", "10.0.1.0/30", "10.0.2.[1:5]"]
    assert [c["name"] for c in lab["credentials"]] == ["two", "one"]
    assert (lab["port"], lab["max_probes_per_second"], lab["source_type"]) == (2222, 100, "network")

    qpc.ok(
        "source", "add", "--name", "repeated", "--type", "network",
        "--hosts", "10.0.3.1", "--hosts=10.0.3.2", "--cred=one",
    )  # fmt: skip
    assert qpc.ok("source", "show", "--name", "repeated").json()["hosts"] == [
        "10.0.3.1",
        "10.0.3.2",
    ]
    hosts_file = tmp_path / "hosts.txt"
    hosts_file.write_text("10.0.4.1\n\n10.0.4.0/29\ndb1.example.com\n")
    exclude_file = tmp_path / "exclude.txt"
    exclude_file.write_text("10.0.4.3\n")
    qpc.ok(
        "source", "add", "--name", "from-file", "--type", "network", "--hosts", str(hosts_file),
        "--exclude-hosts", str(exclude_file), "--cred", "one", "--scheduling-mode", "mediated",
    )  # fmt: skip
    from_file = qpc.ok("source", "show", "--name", "from-file", "--all-fields").json()
    assert from_file["hosts"] == ["10.0.4.1", "10.0.4.0/29", "db1.example.com"]
    assert (from_file["exclude_hosts"], from_file["scheduling_mode"]) == (["10.0.4.3"], "mediated")

    before = qpc.ok("source", "list").stdout
    ssl = qpc.fails(
        "source", "add", "--name", "x", "--type", "network", "--hosts", "10.0.0.1",
        "--cred", "one", "--disable-ssl", "true",
    )  # fmt: skip
    assert ssl.stderr == "Error: Invalid SSL options for network source: disable_ssl\n"
    two_ssl = qpc.fails(
        "source", "edit", "--name", "lab", "--ssl-cert-verify", "false", "--ssl-protocol",
        "TLSv1_2",
    )  # fmt: skip
    assert two_ssl.stderr == (
        "Error: Invalid SSL options for network source: ssl_cert_verify, ssl_protocol\n"
    )
    bad_host = qpc.fails(
        "source", "add", "--name", "x", "--type", "network", "--hosts", "10.0.0.300",
        "--cred", "one",
    )  # fmt: skip
    assert bad_host.stderr.startswith("hosts entry '10.0.0.300' is not valid")
    unknown_cred = qpc.fails(
        "source", "add", "--name", "x", "--type", "network", "--hosts", "10.0.0.1",
        "--cred", "one", "nope",
    )  # fmt: skip
    assert unknown_cred.stderr == (
        'An error occurred while processing the "--cred" input values. References for the '
        'following credential could not be found: nope. Failed to add source "x". For more '
        "information, see the server log file.\n"
    )
    mismatch = qpc.fails(
        "source", "add", "--name", "x", "--type", "vcenter", "--hosts", "vc.example.com",
        "--cred", "one",
    )  # fmt: skip
    assert mismatch.stderr == "source_type: Credentials must have the same type as source.\n"
    large = ("source", "add", "--name", "big", "--type", "network", "--hosts", "10.0.0.0/8",
             "--cred", "one")  # fmt: skip
    assert "more than 65,536 systems" in qpc.fails(*large).stderr
    assert qpc.ok("source", "list").stdout == before
    assert qpc(*large[:-1], "--ssl-cert-verify", "maybe").code == 2
    assert qpc.ok(*large, "--allow-large").stdout == 'Source "big" was added.\n'

    before = qpc.ok("source", "list").stdout
    proxy = qpc.fails(
        "source", "add", "--name", "x", "--type", "network", "--hosts", "10.0.0.1",
        "--cred", "one", "--proxy-url", "http://proxy.example.com:3128",
    )  # fmt: skip
    assert proxy.stderr == "proxy_url: The proxy_url option is not valid for this source.\n"
    bad_proxy = qpc.fails(
        "source", "add", "--name", "x", "--type", "vcenter", "--hosts", "vc.example.com",
        "--cred", "vc", "--proxy-url", "proxy.example.com",
    )  # fmt: skip
    assert "proxy_url must be an http:// or https:// URL" in bad_proxy.stderr
    assert qpc.ok("source", "list").stdout == before
    qpc.ok(
        "source", "add", "--name", "vcenter", "--type", "vcenter", "--hosts", "vc.example.com",
        "--cred", "vc", "--ssl-cert-verify", "false", "--ssl-protocol", "TLSv1_2",
        "--disable-ssl", "false", "--proxy-url", "http://proxy.example.com:3128",
    )  # fmt: skip
    vcenter = qpc.ok("source", "show", "--name", "vcenter").json()
    assert (
        vcenter["port"],
        vcenter["ssl_cert_verify"],
        vcenter["ssl_protocol"],
        vcenter["disable_ssl"],
        vcenter["proxy_url"],
    ) == (443, False, "TLSv1_2", False, "http://proxy.example.com:3128")
    qpc.ok("source", "edit", "--name", "vcenter", "--proxy-url", "https://other.example.com")
    assert qpc.ok("source", "show", "--name", "vcenter").json()["proxy_url"] == (
        "https://other.example.com"
    )
    names = [s["name"] for s in qpc.ok("source", "list").json()]
    assert names == ["big", "from-file", "lab", "repeated", "vcenter"]
    assert [s["name"] for s in qpc.ok("source", "list", "--type", "vcenter").json()] == ["vcenter"]
    assert qpc.fails("source", "show", "--name", "nope").stderr == 'Source "nope" does not exist.\n'

    edited = qpc.ok("source", "edit", "--name", "lab", "--hosts", "10.0.9.9", "--cred", "one")
    assert edited.stdout == 'Source "lab" was updated.\n'
    lab = qpc.ok("source", "show", "--name", "lab").json()
    assert (lab["hosts"], [c["name"] for c in lab["credentials"]], lab["port"]) == (
        ["10.0.9.9"],
        ["one"],
        2222,
    )
    assert qpc.fails("source", "edit", "--name", "lab").stderr == (
        "No arguments were provided to edit source lab.\n"
    )
    assert qpc.fails("source", "edit", "--name", "nope", "--port", "1").stderr == (
        'Source "nope" does not exist.\n'
    )
    in_use = qpc.fails("cred", "clear", "--name", "one")
    assert in_use.stderr.startswith('Credential "one" is used by sources "big", "from-file"')

    qpc.ok("scan", "add", "--name", "nightly", "--sources", "lab")
    scan_id = qpc.ok("scan", "show", "--name", "nightly").json()["id"]
    used = qpc.fails("source", "clear", "--name", "lab")
    assert (
        used.stderr == 'Source "lab" is used by scan "nightly"; remove it from that scan first.\n'
    )
    partial = qpc.fails("source", "clear", "--all")
    assert partial.stderr == (
        f"Could not delete source ID {lab['id']} because it is assigned to at least one scan "
        f"(scan ID {scan_id}).\n"
        "Successfully deleted 4 sources. 1 sources could not be deleted.\n"
    )
    qpc.ok("scan", "clear", "--name", "nightly")
    assert qpc.ok("source", "clear", "--name", "lab").stdout == 'Source "lab" was removed.\n'
    assert qpc.ok("source", "list").stderr == "No sources exist yet.\n"
    assert qpc.fails("source", "clear", "--all").stderr == "No sources exist to be removed.\n"


def test_scan_commands(logged_in: Qpc, server: RunningServer) -> None:
    qpc = logged_in
    add_password_credential(qpc, "one")
    for name in ("a", "b"):
        qpc.ok("source", "add", "--name", name, "--type", "network", "--hosts", "127.0.0.1",
               "--cred", "one")  # fmt: skip
    added = qpc.ok("scan", "add", "--name", "nightly", "--sources", "b", "a",
                   "--max-concurrency", "10")  # fmt: skip
    assert added.stdout == 'Scan "nightly" was added.\n'
    nightly = qpc.ok("scan", "show", "--name", "nightly").json()
    assert [s["name"] for s in nightly["sources"]] == ["b", "a"]
    assert (nightly["options"], nightly["scan_type"]) == ({"max_concurrency": 10}, "inspect")
    assert "most_recent_scanjob" not in nightly  # only once a job exists
    assert qpc.fails("scan", "add", "--name", "x", "--sources", "nope").stderr == (
        'Source "nope" does not exist.\n'
    )
    zero = qpc.fails("scan", "add", "--name", "x", "--sources", "a", "--max-concurrency", "0")
    assert "max_concurrency" in zero.stderr  # the exact words are the scan commands' own
    assert qpc("scan", "add", "--name", "x").code == 2
    assert qpc.fails("scan", "add", "--name", "nightly", "--sources", "a").stderr == (
        "name: Scan with name=nightly already exists\n"
    )

    assert qpc.ok("scan", "edit", "--name", "nightly", "--sources", "a").stdout == (
        'Scan "nightly" was updated.\n'
    )
    qpc.ok("scan", "edit", "--name", "nightly", "--max-concurrency", "50")
    nightly = qpc.ok("scan", "show", "--name", "nightly").json()
    assert ([s["name"] for s in nightly["sources"]], nightly["options"]) == (
        ["a"],
        {"max_concurrency": 50},
    )
    assert qpc("scan", "edit", "--name", "nightly").code == 2
    assert qpc.fails("scan", "edit", "--name", "nope", "--sources", "a").stderr == (
        'Scan "nope" does not exist.\n'
    )
    assert qpc.fails("scan", "show", "--name", "nope").stderr == 'Scan "nope" does not exist.\n'

    qpc.ok("scan", "add", "--name", "weekly", "--sources", "a", "b")
    assert [s["name"] for s in qpc.ok("scan", "list").json()] == ["nightly", "weekly"]
    with httpx.Client(base_url=server.url) as client:
        token = (qpc.config_dir / "client_token").read_text().split('"')[3]
        listed = client.get("/api/v1/scans/", headers={"Authorization": f"Token {token}"})
    assert listed.json()["results"] == qpc.ok("scan", "list", "--all-fields").json()

    assert qpc.fails("scan", "clear", "--name", "nope").stderr == 'Scan "nope" was not found.\n'
    assert qpc.ok("scan", "clear", "--name", "weekly").stdout == 'Scan "weekly" was removed.\n'
    assert qpc.ok("scan", "clear", "--all").stdout == "Successfully deleted 1 scans.\n"
    empty = qpc.ok("scan", "list")
    assert (empty.stdout, empty.stderr) == ("", "No scans found.\n")
    assert qpc.fails("scan", "clear", "--all").stderr == "No scans exist to be removed.\n"
    assert qpc.ok("server", "logout").stdout == "Logged out.\n"
    assert qpc.fails("scan", "list").stderr == f"You are not logged in. {LOGIN_FIRST}\n"
