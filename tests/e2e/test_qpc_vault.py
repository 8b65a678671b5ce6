"""qpc vault add, show and clear through a real server, and qpc credentials that name a secret
in that Vault: never the key in any output, clear refused while a credential uses the Vault."""

from __future__ import annotations

from pathlib import Path

from quipu.lab.https import write_certificate, write_client_certificate
from tests.e2e.qpc import logged_in
from tests.servers import RunningServer, register_secret


def test_qpc_configures_shows_and_clears_the_vault_that_credentials_use(
    server: RunningServer, tmp_path: Path
) -> None:
    ca = write_certificate(tmp_path, stem="vault-ca")
    cert, key = write_client_certificate(tmp_path, ca=ca, common_name="quipu-scanner")
    key_lines = tuple(line for line in key.read_text().splitlines() if "PRIVATE KEY" not in line)
    register_secret(*key_lines)
    qpc = logged_in(server, config_home=tmp_path / "config", secrets=key_lines)
    none = qpc.fails("vault", "show")
    assert none.stderr == "No HashiCorp Vault is configured: add one with `qpc vault add`.\n"
    early = qpc.fails(
        "cred", "add", "--name", "sat", "--type", "satellite", "--username", "admin",
        "--vault-secret-path", "team/satellite", "--vault-secret-key", "password",
    )  # fmt: skip
    assert "none is configured: add one with `qpc vault add` first." in early.stderr

    files = ("--client-cert", str(cert), "--client-key", str(key))
    no_ca = qpc.fails("vault", "add", "--address", "127.0.0.1", *files)
    assert "--ca-cert is required when --ssl-verify is true" in no_ca.stderr
    added = qpc.ok(
        "vault", "add", "--address", "vault.example.com", "--port", "8201", *files,
        "--ca-cert", str(ca[0]),
    )  # fmt: skip
    assert (added.stdout, added.stderr) == (
        "HashiCorp Vault configuration was successfully configured.\n",
        "",
    )
    show = qpc.ok("vault", "show")
    shown = show.json()
    assert "PRIVATE KEY" not in show.stdout
    assert {k: shown[k] for k in ("address", "port", "ssl_verify", "has_ca_cert")} == {
        "address": "vault.example.com",
        "port": 8201,
        "ssl_verify": True,
        "has_ca_cert": True,
    }
    assert shown["client_cert_subject"] == "CN=quipu-scanner,O=Quipu lab"
    wrong_key = qpc.fails(
        "vault", "add", "--address", "v", "--client-cert", str(cert), "--client-key",
        str(ca[1]), "--ssl-verify", "false",
    )  # fmt: skip
    assert "client_key does not belong to client_cert" in wrong_key.stderr

    qpc.ok(
        "cred", "add", "--name", "sat", "--type", "satellite", "--username", "admin",
        "--vault-secret-path", "team/satellite", "--vault-secret-key", "password",
    )  # fmt: skip
    qpc.ok(
        "cred", "add", "--name", "ocp", "--type", "openshift", "--vault-secret-path", "ocp/prod",
        "--vault-secret-key", "token", "--vault-mount-point", "kv",
    )  # fmt: skip
    creds = {c["name"]: c for c in qpc.ok("cred", "list").json()}
    assert {
        name: (
            c["auth_type"],
            c["has_password"],
            c["has_auth_token"],
            c["vault_mount_point"],
            c["vault_secret_path"],
            c["vault_secret_key"],
        )
        for name, c in creds.items()
    } == {
        "ocp": ("auth_token", False, False, "kv", "ocp/prod", "token"),
        "sat": ("password", False, False, "secret", "team/satellite", "password"),
    }
    mixed = qpc.fails(
        "cred", "add", "--name", "x", "--type", "openshift", "--token",
        "--vault-secret-path", "p", "--vault-secret-key", "k", code=2,
    )  # fmt: skip
    assert "argument --vault-secret-path: not allowed with argument --token" in mixed.stderr
    assert (
        qpc.fails(
            "cred", "add", "--name", "x", "--type", "rhacs", "--vault-secret-path", "p"
        ).stderr
        == "--vault-secret-key is required with --vault-secret-path.\n"
    )

    refused = qpc.fails("vault", "clear")
    assert refused.stderr == (
        'The HashiCorp Vault cannot be cleared: credentials "ocp", "sat" take their secrets '
        "from it; edit or remove them first.\n"
    )
    qpc.ok("cred", "clear", "--all")
    cleared = qpc.ok("vault", "clear")
    assert cleared.stdout == "HashiCorp Vault configuration was cleared.\n"
    qpc.fails("vault", "show")
