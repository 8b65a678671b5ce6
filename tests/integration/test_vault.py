"""HashiCorp Vault on both databases and against the fake Vault over real HTTPS: reading secrets
(login, KV v2, each failure's message), the Vault's configuration, credentials that name a
Vault secret, and a claim that reads the secret outside its transaction or fails the job."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from quipu.dispatch.loop import DispatchLoop
from quipu.domain.errors import Conflict, InvalidInput, NotFound
from quipu.lab.https import write_certificate, write_client_certificate
from quipu.lab.vault import RunningVault, running_vault
from quipu.services import credentials, protocol, scan_jobs, scanners, scans, sources, vault
from quipu.services.credentials import CredentialFields
from quipu.services.scans import ScanFields
from quipu.services.sources import SourceFields
from quipu.services.vault import VaultFields, VaultUnavailable
from quipu.services.vault_secrets import VaultReader
from quipu.settings import Settings
from quipu.store import Store
from quipu.store.secrets import SecretBox
from quipu.store.tables import Credential, Scanner, ScannerJob, Vault
from tests.integration.factories import NOW

SECRET = "sat-Vault-Held-7734"


@pytest.fixture(scope="module")
def fake() -> Iterator[RunningVault]:
    with running_vault() as running:
        running.vault.put_secret("team/satellite", {"password": SECRET, "user": "admin"})
        running.vault.put_secret("team/numbers", {"pin": 1234})
        running.vault.deny("team/locked")
        running.vault.put_secret("team/locked", {"password": SECRET})
        yield running


@pytest.fixture(autouse=True)
def healthy(fake: RunningVault) -> Iterator[None]:
    yield
    fake.vault.refuse_login = fake.vault.server_error = fake.vault.malformed = False
    fake.vault.latency_s = 0.0


def fields_of(running: RunningVault, **changes: object) -> VaultFields:
    fields = VaultFields(
        address=running.host,
        port=running.port,
        ca_cert=running.ca_cert_path.read_text(),
        client_cert=running.client_cert_path.read_text(),
        client_key=running.client_key_path.read_text(),
    )
    return vault.checked(dataclasses.replace(fields, **changes))  # type: ignore[arg-type]


def read(fields: VaultFields, *, path: str = "team/satellite", key: str = "password") -> str:
    with VaultReader(fields, timeout_s=5) as reader:
        return reader.read(mount_point="secret", path=path, key=key)


def failure(fields: VaultFields, **kwargs: str) -> str:
    with pytest.raises(VaultUnavailable) as caught:
        read(fields, **kwargs)
    message = str(caught.value)
    assert SECRET not in message
    return message


# Reading secrets.


def test_a_certificate_login_reads_the_value_of_a_kv2_secret_once_per_reader(
    fake: RunningVault,
) -> None:
    before = fake.vault.logins
    fields = fields_of(fake)
    with VaultReader(fields) as reader:
        assert reader.read(mount_point="secret", path="team/satellite", key="password") == SECRET
        assert reader.read(mount_point="secret", path="team/satellite", key="user") == "admin"
    assert fake.vault.logins == before + 1


def test_each_failure_says_what_vault_answered(fake: RunningVault) -> None:
    fields = fields_of(fake)
    where = f"Vault {fake.host}:{fake.port}"
    assert failure(fields, path="team/nothing") == (
        f"{where} has no secret at secret/data/team/nothing: check the credential's "
        "vault_mount_point and vault_secret_path (a KV version 2 engine)."
    )
    assert f"{where} refused reading secret/data/team/locked (HTTP 403)" in failure(
        fields, path="team/locked"
    )
    missing = failure(fields, key="token")
    assert "the secret at secret/data/team/satellite" in missing.lower()
    assert "has no key 'token'" in missing and "'password'" in missing
    assert "holds no text under key 'pin'" in failure(fields, path="team/numbers", key="pin")
    fake.vault.refuse_login = True
    assert failure(fields).startswith(f"{where} refused the login (HTTP 403)")
    fake.vault.refuse_login = False
    fake.vault.server_error = True
    assert failure(fields).startswith(f"{where} failed the login (HTTP 500)")
    fake.vault.server_error = False
    fake.vault.malformed = True
    assert "with a body that is not JSON" in failure(fields)


def test_an_unreachable_or_untrusted_vault_is_named(fake: RunningVault, tmp_path: Path) -> None:
    closed = fields_of(fake, port=1)
    assert failure(closed).startswith(f"Vault {fake.host}:1 cannot be reached for the login")
    other_ca = write_certificate(tmp_path, stem="other")
    assert "TLS handshake" in failure(fields_of(fake, ca_cert=other_ca[0].read_text()))
    # A certificate the Vault's client CA did not sign is refused in the handshake.
    stranger = write_client_certificate(tmp_path, ca=other_ca, stem="stranger")
    untrusted = fields_of(
        fake, client_cert=stranger[0].read_text(), client_key=stranger[1].read_text()
    )
    assert failure(untrusted).startswith(
        f"Vault {fake.host}:{fake.port} refused Quipu's client certificate in the TLS handshake"
    )


def test_a_slow_vault_costs_one_timeout_per_reader(fake: RunningVault) -> None:
    fake.vault.latency_s = 2.0
    logins = fake.vault.paths.get("/v1/auth/cert/login", 0)
    with VaultReader(fields_of(fake), timeout_s=0.3) as reader:
        for path in ("team/satellite", "team/numbers"):
            with pytest.raises(
                VaultUnavailable, match=r"did not answer the login within 0\.3 seconds"
            ):
                reader.read(mount_point="secret", path=path, key="password")
    assert fake.vault.paths["/v1/auth/cert/login"] == logins + 1


# The Vault's configuration.


@pytest.fixture
def box(tmp_path: Path) -> SecretBox:
    return SecretBox.from_data_dir(tmp_path)


def test_vault_configuration_is_set_shown_replaced_and_cleared(
    store: Store, box: SecretBox, fake: RunningVault
) -> None:
    with pytest.raises(NotFound, match="qpc vault add"):
        vault.get_vault(store)
    view, created = vault.set_vault(store, box=box, fields=fields_of(fake), now=NOW)
    assert created and view.has_ca_cert and view.ssl_verify
    assert view.client_cert_subject == "CN=quipu,O=Quipu lab"
    assert view.client_cert_not_after > NOW
    with store.transaction() as s:
        row = s.get_one(Vault, 1)
        assert b"PRIVATE KEY" not in row.client_key_enc
    again, created = vault.set_vault(
        store, box=box, fields=fields_of(fake, ssl_verify=False, ca_cert=None), now=NOW
    )
    assert not created and not again.has_ca_cert and not again.ssl_verify
    vault.clear_vault(store)
    with pytest.raises(NotFound):
        vault.clear_vault(store)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"address": "https://vault.example.com"}, "address"),
        ({"port": 0}, "port"),
        ({"client_cert": "bm90IGEgY2VydA=="}, "client_cert"),
        (
            {"client_key": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"},
            "client_key",
        ),
        ({"ca_cert": "%%%"}, "ca_cert"),
    ],
)
def test_bad_vault_input_names_the_field(
    fake: RunningVault, changes: dict[str, object], field: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        fields_of(fake, **changes)
    assert caught.value.field == field


def test_a_key_of_another_certificate_is_refused(fake: RunningVault, tmp_path: Path) -> None:
    other = write_certificate(tmp_path, stem="other")
    with pytest.raises(InvalidInput, match="does not belong to client_cert"):
        fields_of(fake, client_key=other[1].read_text())


# Credentials that name a Vault secret.


def vault_credential(name: str = "sat-vault", **changes: object) -> CredentialFields:
    fields = CredentialFields(
        name=name,
        cred_type="satellite",
        username="admin",
        vault_secret_path="team/satellite",
        vault_secret_key="password",
    )
    return dataclasses.replace(fields, **changes)  # type: ignore[arg-type]


def test_a_vault_credential_needs_a_configured_vault_and_keeps_it_in_use(
    store: Store, box: SecretBox, fake: RunningVault
) -> None:
    with pytest.raises(InvalidInput, match="qpc vault add") as caught:
        credentials.add_credential(store, box=box, fields=vault_credential(), now=NOW)
    assert caught.value.field == "vault_secret_path"
    vault.set_vault(store, box=box, fields=fields_of(fake), now=NOW)
    view = credentials.add_credential(store, box=box, fields=vault_credential(), now=NOW)
    assert (view.vault_secret_path, view.vault_mount_point, view.vault_secret_key) == (
        "team/satellite",
        "secret",
        "password",
    )
    assert (view.has_password, view.auth_type) == (False, "password")
    with pytest.raises(Conflict, match='credential "sat-vault" takes its secret from it'):
        vault.clear_vault(store)
    # A password given later replaces the Vault secret; then Vault can go.
    edited = credentials.edit_credential(
        store, box=box, credential_id=view.id, changes={"password": "local-Pa55"}, now=NOW
    )
    assert edited.has_password and edited.vault_secret_path is None
    vault.clear_vault(store)


def test_vault_fields_follow_each_types_rules(
    store: Store, box: SecretBox, fake: RunningVault
) -> None:
    vault.set_vault(store, box=box, fields=fields_of(fake), now=NOW)
    token = credentials.add_credential(
        store,
        box=box,
        fields=vault_credential(
            "ocp", cred_type="openshift", username=None, vault_mount_point="kv"
        ),
        now=NOW,
    )
    assert (token.auth_type, token.vault_mount_point) == ("auth_token", "kv")
    rhacs = credentials.add_credential(
        store, box=box, fields=vault_credential("acs", cred_type="rhacs", username=None), now=NOW
    )
    assert rhacs.auth_type == "auth_token"
    net = credentials.add_credential(
        store,
        box=box,
        fields=vault_credential("net", cred_type="network", username="root"),
        now=NOW,
    )
    assert (net.auth_type, net.become_method) == ("password", "sudo")
    refusals = {
        "username": vault_credential("acs2", cred_type="rhacs", username="admin"),
        "password": vault_credential("mixed", password="also-here"),
        "vault_secret_key": vault_credential("nokey", vault_secret_key=None),
        "vault_mount_point": vault_credential(
            "lonely",
            vault_secret_path=None,
            vault_secret_key=None,
            vault_mount_point="kv",
            password="pw-12345678",
        ),
    }
    for field, fields in refusals.items():
        with pytest.raises(InvalidInput) as caught:
            credentials.add_credential(store, box=box, fields=fields, now=NOW)
        assert caught.value.field == field, (field, caught.value)
    with store.transaction() as s:
        assert all(c.password_enc is None for c in s.scalars(select(Credential)))


# A claim reads the secret, outside the claim's transaction, or fails the job.


def satellite_scan(store: Store, box: SecretBox, *, port: int) -> int:
    cred = credentials.add_credential(store, box=box, fields=vault_credential(), now=NOW)
    source = sources.add_source(
        store,
        fields=SourceFields(
            name="sat",
            source_type="satellite",
            hosts=["127.0.0.1"],
            port=port,
            credentials=[cred.id],
            ssl_cert_verify=False,
        ),
        now=NOW,
    )
    return scans.add_scan(store, fields=ScanFields(name="weekly", sources=[source.id]), now=NOW).id


def builtin(store: Store, tmp_path: Path) -> Scanner:
    scanners.ensure_builtin(store, data_dir=tmp_path, now=NOW)
    with store.transaction() as s:
        row = s.scalars(select(Scanner).where(Scanner.name == "local")).one()
        row.last_heartbeat = NOW
        return row


def test_a_claim_hands_out_the_secret_read_from_vault(
    store: Store, box: SecretBox, fake: RunningVault, tmp_path: Path, database_url: str
) -> None:
    vault.set_vault(store, box=box, fields=fields_of(fake), now=NOW)
    local = builtin(store, tmp_path)
    job_id = scan_jobs.start(
        store, scan_id=satellite_scan(store, box, port=9), now=NOW, by="user:admin"
    ).id
    DispatchLoop(store, settings=Settings(data_dir=tmp_path, database_url=database_url)).tick(NOW)
    [job] = protocol.claim(store, box, scanner=local, limit=1, now=NOW)
    [credential] = job.credentials
    assert (credential.username, credential.password) == ("admin", SECRET)
    assert credential.auth_token is None and "_vault" not in credential.to_wire()
    assert job.scan_id == job_id
    with store.transaction() as s:
        assert s.get_one(ScannerJob, job.job_id).status == "claimed"


def test_a_vault_that_refuses_fails_the_connection_task_and_the_job(
    store: Store, box: SecretBox, fake: RunningVault, tmp_path: Path, database_url: str
) -> None:
    vault.set_vault(store, box=box, fields=fields_of(fake), now=NOW)
    local = builtin(store, tmp_path)
    job_id = scan_jobs.start(
        store, scan_id=satellite_scan(store, box, port=9), now=NOW, by="user:admin"
    ).id
    loop = DispatchLoop(store, settings=Settings(data_dir=tmp_path, database_url=database_url))
    loop.tick(NOW)
    fake.vault.refuse_login = True
    assert protocol.claim(store, box, scanner=local, limit=10, now=NOW) == []
    loop.tick(NOW)
    job = scan_jobs.get(store, job_id=job_id)
    assert job.status == "failed"
    connect = next(t for t in job.tasks if t.kind == "connect")
    assert connect.status == "failed"
    assert connect.status_message.startswith(
        f"Connection to source 'sat' failed: Credential \"sat-vault\": Vault "
        f"{fake.host}:{fake.port} refused the login (HTTP 403)"
    )
    assert SECRET not in (job.status_message or "")
