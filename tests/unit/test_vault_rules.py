"""Credentials whose secret is in HashiCorp Vault: which secret it stands for, per type, and
the rules that keep it from being mixed with a secret Quipu holds; PEM input of the Vault."""

from __future__ import annotations

import base64
import dataclasses

import pytest

from quipu.domain.errors import InvalidInput
from quipu.services.credentials import CredentialFields, checked, vault_stands_for
from quipu.services.vault import pem_text

PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def held(cred_type: str, **changes: object) -> CredentialFields:
    fields = CredentialFields(
        name="held",
        cred_type=cred_type,
        vault_secret_path="team/secret",
        vault_secret_key="value",
    )
    return dataclasses.replace(fields, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("cred_type", "username", "stands_for"),
    [
        ("network", "root", "password"),
        ("vcenter", "admin", "password"),
        ("satellite", "admin", "password"),
        ("openshift", None, "auth_token"),
        ("openshift", "kubeadmin", "password"),
        ("ansible", None, "auth_token"),
        ("ansible", "admin", "password"),
        ("rhacs", None, "auth_token"),
    ],
)
def test_the_vault_secret_stands_for_the_types_login_secret(
    cred_type: str, username: str | None, stands_for: str
) -> None:
    assert vault_stands_for(cred_type=cred_type, username=username) == stands_for
    fields = checked(held(cred_type, username=username))
    assert fields.vault_mount_point == "secret"
    assert (fields.password, fields.auth_token, fields.ssh_key) == (None, None, None)


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"cred_type": "satellite"}, "username", "username is required"),
        ({"cred_type": "network"}, "username", "username is required"),
        ({"username": "u", "password": "pw"}, "password", "not both"),
        ({"auth_token": "tok"}, "auth_token", "not both"),
        ({"vault_secret_key": None}, "vault_secret_key", "required"),
        ({"vault_secret_key": ""}, "vault_secret_key", "cannot be empty"),
        ({"vault_secret_path": "/team/x/"}, "vault_secret_path", "slashes"),
        ({"vault_mount_point": "a/b"}, "vault_mount_point", "one KV version 2 engine"),
        (
            {"vault_secret_path": None, "vault_secret_key": None, "vault_mount_point": "kv"},
            "vault_mount_point",
            "only with a vault_secret_path",
        ),
    ],
)
def test_wrong_vault_fields_name_the_field(
    changes: dict[str, object], field: str, words: str
) -> None:
    base = held("openshift") if "cred_type" not in changes else held(str(changes.pop("cred_type")))
    with pytest.raises(InvalidInput) as caught:
        checked(dataclasses.replace(base, **changes))  # type: ignore[arg-type]
    assert caught.value.field == field
    assert words in str(caught.value)


def test_rhacs_takes_no_username_even_with_vault() -> None:
    with pytest.raises(InvalidInput, match="rhacs takes an auth_token") as caught:
        checked(held("rhacs", username="admin"))
    assert caught.value.field == "username"


def test_pem_input_is_taken_as_text_or_base64() -> None:
    assert pem_text(PEM, field="client_cert") == PEM
    assert pem_text(base64.b64encode(PEM.encode()).decode(), field="client_cert") == PEM
    for bad in ("%%%", base64.b64encode(b"plain words").decode()):
        with pytest.raises(InvalidInput) as caught:
            pem_text(bad, field="ca_cert")
        assert caught.value.field == "ca_cert"
