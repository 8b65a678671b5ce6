"""qpc credentials and sources of the OpenShift, AAP and RHACS types, through a real server:
a token or a username and password as each type allows, the refusals naming the field, and
the established output of add, show, list and source add."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from tests.e2e.qpc import Qpc, logged_in
from tests.servers import RunningServer

TOKEN = "sha256~ocp-Token-Value-4242"
PASSWORD = "aap-Password-Value-9090"
TOKEN_PROMPT = "Provide a token for authentication.\nToken: \n"
PASSWORD_PROMPT = "Provide a connection password.\nPassword: \n"


def cred(*, name: str, cred_type: str, username: str | None, auth_type: str) -> dict[str, Any]:
    """A credential of an API type as ``qpc cred show`` prints it (times as ``<time>``)."""
    return {
        "auth_type": auth_type,
        "become_method": None,
        "become_user": None,
        "created_at": "<time>",
        "cred_type": cred_type,
        "has_auth_token": auth_type == "auth_token",
        "has_become_password": False,
        "has_password": auth_type == "password",
        "has_ssh_key": False,
        "has_ssh_passphrase": False,
        "name": name,
        "sources": [],
        "ssh_keyfile": None,
        "updated_at": "<time>",
        "username": username,
        "vault_mount_point": None,
        "vault_secret_key": None,
        "vault_secret_path": None,
    }


def shown(value: dict[str, Any]) -> dict[str, Any]:
    """``value`` without its id, and its times checked and replaced by ``<time>``."""
    result = {k: v for k, v in value.items() if k != "id"}
    for key in ("created_at", "updated_at"):
        assert datetime.fromisoformat(result[key]).utcoffset() is not None
        result[key] = "<time>"
    return result


def add(qpc: Qpc, name: str, *args: str, secret: str) -> str:
    result = qpc.ok("cred", "add", "--name", name, *args, input=secret + "\n")
    assert result.stdout == f'Credential "{name}" was added.\n'
    return result.stderr


def test_qpc_adds_and_shows_openshift_ansible_and_rhacs_credentials_and_sources(
    server: RunningServer, tmp_path: Path
) -> None:
    qpc = logged_in(server, config_home=tmp_path / "config", secrets=(TOKEN, PASSWORD))
    assert add(qpc, "ocp", "--type", "openshift", "--token", secret=TOKEN) == TOKEN_PROMPT
    assert (
        add(qpc, "ocp-user", "--type", "openshift", "--username", "kubeadmin", "--password",
            secret=PASSWORD)
        == PASSWORD_PROMPT
    )  # fmt: skip
    add(qpc, "aap", "--type", "ansible", "--username", "admin", "--password", secret=PASSWORD)
    add(qpc, "aap-token", "--type", "ansible", "--token", secret=TOKEN)
    add(qpc, "acs", "--type", "rhacs", "--token", secret=TOKEN)

    expected = {
        "aap": cred(name="aap", cred_type="ansible", username="admin", auth_type="password"),
        "aap-token": cred(
            name="aap-token", cred_type="ansible", username=None, auth_type="auth_token"
        ),
        "acs": cred(name="acs", cred_type="rhacs", username=None, auth_type="auth_token"),
        "ocp": cred(name="ocp", cred_type="openshift", username=None, auth_type="auth_token"),
        "ocp-user": cred(
            name="ocp-user", cred_type="openshift", username="kubeadmin", auth_type="password"
        ),
    }
    assert [shown(c) for c in qpc.ok("cred", "list").json()] == list(expected.values())
    shown_one = qpc.ok("cred", "show", "--name", "ocp").json()
    assert shown(shown_one) == expected["ocp"]

    refusals = {
        ("--type", "rhacs", "--username", "admin", "--password"):
            "username is not allowed for a rhacs credential: rhacs takes an auth_token.",
        ("--type", "satellite", "--username", "admin", "--token"):
            "auth_token is not allowed for a satellite credential: satellite logs in with a "
            "username and a password.",
        ("--type", "ansible", "--password"): "username is required.",
    }  # fmt: skip
    for args, message in refusals.items():
        failed = qpc.fails("cred", "add", "--name", "bad", *args, input=TOKEN + "\n")
        assert message in failed.stderr, (args, failed.stderr)
    unknown = qpc.fails("cred", "add", "--name", "x", "--type", "kubernetes", "--token", code=2)
    assert "openshift" in unknown.stderr and "rhacs" in unknown.stderr

    for name, source_type in (("ocp", "openshift"), ("aap", "ansible"), ("acs", "rhacs")):
        added = qpc.ok(
            "source", "add", "--name", name, "--type", source_type,
            "--hosts", f"{name}.example.com", "--cred", name,
        )  # fmt: skip
        assert (added.stdout, added.stderr) == (f'Source "{name}" was added.\n', "")
    listed_sources = {s["name"]: s for s in qpc.ok("source", "list").json()}
    assert {
        name: (s["source_type"], s["port"], s["ssl_cert_verify"], s["credentials"][0]["name"])
        for name, s in listed_sources.items()
    } == {
        "aap": ("ansible", 443, True, "aap"),
        "acs": ("rhacs", 443, True, "acs"),
        "ocp": ("openshift", 6443, True, "ocp"),
    }
