"""Credential, source and scan services on both databases: rules, references, secrets."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncssh
import pytest
from sqlalchemy import select

from quipu.domain.errors import InUse, InvalidInput, NotFound
from quipu.domain.states import ScanJobStatus
from quipu.services import credentials, scans, sources
from quipu.services.credentials import CredentialFields
from quipu.services.scans import ScanFields
from quipu.services.sources import SourceFields
from quipu.store import Store
from quipu.store.secrets import SecretBox
from quipu.store.tables import Credential, Scan, ScanJob
from tests.integration import factories
from tests.integration.factories import NOW

PASSWORD = "net-Pa55word-4711"
BECOME_PASSWORD = "become-Secret-0815"
PASSPHRASE = "key-Passphrase-2718"
TOKEN = "vc-Token-31415926"


@pytest.fixture(scope="module")
def plain_key() -> str:
    return asyncssh.generate_private_key("ssh-ed25519").export_private_key().decode()


@pytest.fixture(scope="module")
def encrypted_key() -> str:
    key = asyncssh.generate_private_key("ssh-rsa", key_size=2048)
    return key.export_private_key("pkcs8-pem", passphrase=PASSPHRASE).decode()


@pytest.fixture
def box(tmp_path: Path) -> SecretBox:
    return SecretBox.from_data_dir(tmp_path / "data")


def network(name: str = "net", **kwargs: Any) -> CredentialFields:
    values: dict[str, Any] = {"username": "root", "password": PASSWORD, **kwargs}
    return CredentialFields(name=name, cred_type="network", **values)


def vcenter(name: str = "vc", **kwargs: Any) -> CredentialFields:
    values: dict[str, Any] = {"username": "admin@vsphere.local", "password": PASSWORD, **kwargs}
    return CredentialFields(name=name, cred_type="vcenter", **values)


def everything(store: Store) -> tuple[list[Any], list[Any], list[Any]]:
    """Every credential, source and scan as the services show them."""
    return (
        credentials.list_credentials(store, limit=1000)[1],
        sources.list_sources(store, limit=1000)[1],
        scans.list_scans(store, limit=1000)[1],
    )


def refused(
    store: Store,
    error: type[Exception],
    call: Any,
    *,
    field: str | None = None,
    match: str | None = None,
) -> Exception:
    """``call()`` raises ``error`` (naming ``field``) and leaves every object as it was."""
    before = everything(store)
    with pytest.raises(error, match=match) as caught:
        call()
    if field is not None:
        assert isinstance(caught.value, InvalidInput)
        assert caught.value.field == field
    assert everything(store) == before
    return caught.value


def assert_no_secret(view: object, *secrets: str) -> None:
    text = repr(view) + repr(dataclasses.asdict(view))  # type: ignore[call-overload]
    for secret in secrets:
        assert secret not in text


def add_source(store: Store, name: str, cred_ids: list[int], **kwargs: Any) -> sources.SourceView:
    values: dict[str, Any] = {"source_type": "network", "hosts": ["127.0.0.1"], **kwargs}
    fields = SourceFields(name=name, credentials=cred_ids, **values)
    return sources.add_source(store, fields=fields, now=NOW)


# Credentials


def test_network_credential_secrets_are_encrypted_and_never_shown(
    store: Store, box: SecretBox
) -> None:
    view = credentials.add_credential(
        store, box=box, fields=network(become_password=BECOME_PASSWORD), now=NOW
    )
    assert (view.name, view.cred_type, view.username) == ("net", "network", "root")
    assert (view.become_method, view.become_user) == ("sudo", "root")
    assert (view.has_password, view.has_become_password, view.has_ssh_key) == (True, True, False)
    assert view.auth_type == "password"
    assert view.sources == []
    assert_no_secret(view, PASSWORD, BECOME_PASSWORD)
    assert_no_secret(credentials.get_credential(store, credential_id=view.id), PASSWORD)
    with store.transaction() as s:
        row = s.get_one(Credential, view.id)
        assert row.password_enc is not None and PASSWORD.encode() not in row.password_enc
        assert box.decrypt(row.password_enc) == PASSWORD
        assert row.become_password_enc is not None
        assert box.decrypt(row.become_password_enc) == BECOME_PASSWORD


def test_ssh_key_must_parse_with_its_passphrase(
    store: Store, box: SecretBox, plain_key: str, encrypted_key: str
) -> None:
    add = credentials.add_credential
    refused(
        store,
        InvalidInput,
        lambda: add(store, box=box, fields=network(password=None, ssh_key="nope"), now=NOW),
        field="ssh_key",
        match="ssh_key is not a private key",
    )
    refused(
        store,
        InvalidInput,
        lambda: add(store, box=box, fields=network(password=None, ssh_key=encrypted_key), now=NOW),
        field="ssh_passphrase",
        match="The ssh_key is encrypted: give its ssh_passphrase.",
    )
    wrong = network(password=None, ssh_key=encrypted_key, ssh_passphrase="wrong")
    refused(
        store,
        InvalidInput,
        lambda: add(store, box=box, fields=wrong, now=NOW),
        field="ssh_passphrase",
        match="ssh_passphrase does not open the ssh_key",
    )
    needless = network(password=None, ssh_key=plain_key, ssh_passphrase=PASSPHRASE)
    refused(
        store,
        InvalidInput,
        lambda: add(store, box=box, fields=needless, now=NOW),
        field="ssh_passphrase",
        match="not encrypted",
    )

    view = add(
        store,
        box=box,
        fields=network(password=None, ssh_key=encrypted_key, ssh_passphrase=PASSPHRASE),
        now=NOW,
    )
    assert (view.auth_type, view.has_ssh_key, view.has_ssh_passphrase) == ("ssh_key", True, True)
    assert view.has_password is False
    assert_no_secret(view, PASSPHRASE, "PRIVATE KEY")
    plain = add(store, box=box, fields=network("plain", password=None, ssh_key=plain_key), now=NOW)
    assert plain.auth_type == "ssh_key" and not plain.has_ssh_passphrase


@pytest.mark.parametrize(
    ("fields", "field", "match"),
    [
        (network(password=None), "password", "needs a password or an ssh_key"),
        (network(username=None), "username", "username is required"),
        (network(auth_token=TOKEN), "auth_token", "not allowed for a network credential"),
        (network(ssh_passphrase=PASSPHRASE), "ssh_passphrase", "only with an ssh_key"),
        (network(password=""), "password", "cannot be empty"),
        (network(become_method="sudoo"), "become_method", "must be one of sudo, su, pbrun"),
        (network(name=" "), "name", "cannot be blank"),
        (network(name="x" * 65), "name", "at most 64"),
        (vcenter(become_method="sudo"), "become_method", "only for network credentials"),
        (vcenter(become_user="root"), "become_user", "only for network credentials"),
        (vcenter(ssh_passphrase="x"), "ssh_passphrase", "only for network credentials"),
        (vcenter(password=None), "password", "needs a password"),
        (vcenter(auth_token=TOKEN), "auth_token", "not allowed for a vcenter credential"),
        (
            CredentialFields(name="sat", cred_type="satellite", username="u", auth_token=TOKEN),
            "auth_token",
            "logs in with a username and a password",
        ),
        (CredentialFields(name="x", cred_type="ldap", username="u"), "cred_type", "one of"),
    ],
)
def test_credential_rules(
    store: Store, box: SecretBox, fields: CredentialFields, field: str, match: str
) -> None:
    refused(
        store,
        InvalidInput,
        lambda: credentials.add_credential(store, box=box, fields=fields, now=NOW),
        field=field,
        match=match,
    )


def test_network_credential_takes_a_password_or_a_key_not_both(
    store: Store, box: SecretBox, plain_key: str
) -> None:
    refused(
        store,
        InvalidInput,
        lambda: credentials.add_credential(
            store, box=box, fields=network(ssh_key=plain_key), now=NOW
        ),
        field="ssh_key",
        match="not both",
    )
    refused(
        store,
        InvalidInput,
        lambda: credentials.add_credential(
            store, box=box, fields=vcenter(ssh_key=plain_key), now=NOW
        ),
        field="ssh_key",
    )


def test_api_credentials_take_a_username_and_a_password(store: Store, box: SecretBox) -> None:
    sat = credentials.add_credential(
        store,
        box=box,
        fields=CredentialFields(name="sat", cred_type="satellite", username="u", password=TOKEN),
        now=NOW,
    )
    assert (sat.auth_type, sat.has_auth_token, sat.has_password) == ("password", False, True)
    assert (sat.become_method, sat.become_user) == (None, None)
    assert_no_secret(sat, TOKEN)
    password = credentials.add_credential(store, box=box, fields=vcenter(), now=NOW)
    assert password.auth_type == "password"


def test_duplicate_names_are_refused(store: Store, box: SecretBox) -> None:
    first = credentials.add_credential(store, box=box, fields=network("a"), now=NOW)
    credentials.add_credential(store, box=box, fields=network("b"), now=NOW)
    refused(
        store,
        InvalidInput,
        lambda: credentials.add_credential(store, box=box, fields=network("a"), now=NOW),
        field="name",
        match="^credential with this name already exists.$",
    )
    refused(
        store,
        InvalidInput,
        lambda: credentials.edit_credential(
            store, box=box, credential_id=first.id, changes={"name": "b"}, now=NOW
        ),
        field="name",
        match="^credential with this name already exists.$",
    )


def test_edit_credential(store: Store, box: SecretBox, plain_key: str, encrypted_key: str) -> None:
    view = credentials.add_credential(store, box=box, fields=network(), now=NOW)
    later = NOW + timedelta(minutes=5)

    def edit(**changes: Any) -> credentials.CredentialView:
        return credentials.edit_credential(
            store, box=box, credential_id=view.id, changes=changes, now=later
        )

    renamed = edit(name="net2", username="scanner", become_method="doas")
    assert (renamed.name, renamed.username, renamed.become_method) == ("net2", "scanner", "doas")
    assert renamed.has_password and renamed.updated_at == later and renamed.created_at == NOW

    switched = edit(ssh_key=plain_key)
    assert (switched.auth_type, switched.has_password, switched.has_ssh_key) == (
        "ssh_key",
        False,
        True,
    )
    refused(store, InvalidInput, lambda: edit(ssh_passphrase="x"), field="ssh_passphrase")
    refused(store, InvalidInput, lambda: edit(ssh_key=encrypted_key), field="ssh_passphrase")
    with_passphrase = edit(ssh_key=encrypted_key, ssh_passphrase=PASSPHRASE)
    assert with_passphrase.has_ssh_passphrase
    refused(store, InvalidInput, lambda: edit(ssh_passphrase="wrong"), field="ssh_passphrase")

    back = edit(password=PASSWORD)
    assert (back.auth_type, back.has_ssh_key, back.has_ssh_passphrase) == ("password", False, False)
    refused(store, InvalidInput, lambda: edit(password=None), field="password")
    refused(store, InvalidInput, lambda: edit(cred_type="vcenter"), field="cred_type")
    refused(store, InvalidInput, lambda: edit(colour="red"), field="colour")
    with pytest.raises(NotFound, match=r"^Credential 999 does not exist\.$"):
        credentials.edit_credential(store, box=box, credential_id=999, changes={}, now=NOW)


def test_list_credentials_filters_orders_and_pages(store: Store, box: SecretBox) -> None:
    for name in ["delta", "Alpha", "charlie", "bravo_1", "bravo%2"]:
        credentials.add_credential(store, box=box, fields=network(name), now=NOW)
    credentials.add_credential(store, box=box, fields=vcenter("vc-alpha"), now=NOW)

    def names(**kwargs: Any) -> tuple[int, list[str]]:
        count, views = credentials.list_credentials(store, **kwargs)
        return count, [v.name for v in views]

    assert names(search_by_name="ALPHA") == (2, ["Alpha", "vc-alpha"])
    assert names(name="alpha") == (0, [])
    assert names(name="Alpha") == (1, ["Alpha"])
    assert names(search_by_name="%") == (1, ["bravo%2"])
    assert names(search_by_name="o_") == (1, ["bravo_1"])
    assert names(cred_type="vcenter") == (1, ["vc-alpha"])
    count, first = names(limit=2)
    assert count == 6 and len(first) == 2
    _, rest = names(offset=2, limit=10)
    assert sorted(first + rest, key=str.lower) == sorted(first + rest, key=str.lower)
    assert len(set(first + rest)) == 6


def test_credential_used_by_sources_cannot_be_deleted(store: Store, box: SecretBox) -> None:
    used = credentials.add_credential(store, box=box, fields=network("used"), now=NOW)
    free = credentials.add_credential(store, box=box, fields=network("free"), now=NOW)
    add_source(store, "b-source", [used.id])
    add_source(store, "a-source", [used.id])
    refused(
        store,
        InUse,
        lambda: credentials.delete_credential(store, credential_id=used.id),
        match='^Credential "used" is used by sources "a-source", "b-source"; '
        "remove it from them first.$",
    )
    result = credentials.bulk_delete_credentials(store, ids=[used.id, free.id, 999])
    assert result.deleted == [free.id]
    assert [(s.id, s.name) for s in result.skipped] == [(used.id, "used")]
    assert result.skipped[0].reason == 'used by sources "a-source", "b-source"'
    assert result.missing == [999]
    assert result.message == (
        "Successfully deleted 1 credentials. 2 credentials could not be deleted."
    )
    assert [v.name for v in credentials.list_credentials(store)[1]] == ["used"]
    assert [r.name for r in credentials.get_credential(store, credential_id=used.id).sources] == [
        "a-source",
        "b-source",
    ]


def test_bulk_delete_all_credentials(store: Store, box: SecretBox) -> None:
    for name in ["a", "b", "c"]:
        credentials.add_credential(store, box=box, fields=network(name), now=NOW)
    result = credentials.bulk_delete_credentials(store, ids="all")
    assert len(result.deleted) == 3 and result.skipped == [] and result.missing == []
    assert (
        result.message == "Successfully deleted 3 credentials. 0 credentials could not be deleted."
    )
    assert credentials.list_credentials(store) == (0, [])
    single = credentials.add_credential(store, box=box, fields=network("d"), now=NOW)
    credentials.delete_credential(store, credential_id=single.id)
    with pytest.raises(NotFound):
        credentials.get_credential(store, credential_id=single.id)


# Sources


def test_network_source_defaults_and_credential_order(store: Store, box: SecretBox) -> None:
    one = credentials.add_credential(store, box=box, fields=network("one"), now=NOW)
    two = credentials.add_credential(store, box=box, fields=network("two"), now=NOW)
    view = add_source(
        store,
        "lab",
        [two.id, one.id],
        hosts=["10.0.0.1", "10.0.1.0/24", "lab-host.example.com"],
        exclude_hosts=["10.0.1.7"],
    )
    assert view.hosts == ["10.0.0.1", "10.0.1.0/24", "lab-host.example.com"]
    assert view.exclude_hosts == ["10.0.1.7"]
    assert [(c.id, c.name, c.cred_type) for c in view.credentials] == [
        (two.id, "two", "network"),
        (one.id, "one", "network"),
    ]
    assert (view.port, view.scheduling_mode, view.max_probes_per_second) == (22, "immediate", 0)
    assert (view.ssl_cert_verify, view.ssl_protocol, view.disable_ssl) == (None, None, None)
    assert view.scanners == []
    assert sources.get_source(store, source_id=view.id) == view


def test_vcenter_source_defaults(store: Store, box: SecretBox) -> None:
    cred = credentials.add_credential(store, box=box, fields=vcenter(), now=NOW)
    view = sources.add_source(
        store,
        fields=SourceFields(
            name="vc", source_type="vcenter", hosts=["vcenter.example.com"], credentials=[cred.id]
        ),
        now=NOW,
    )
    assert (view.port, view.ssl_cert_verify, view.disable_ssl, view.ssl_protocol) == (
        443,
        True,
        None,
        None,
    )


@pytest.mark.parametrize(
    ("changes", "field", "match"),
    [
        ({"hosts": ["10.0.0.300"]}, "hosts", "not an IPv4 address"),
        ({"hosts": []}, "hosts", "at least one host"),
        ({"exclude_hosts": ["not a host!"]}, "exclude_hosts", "exclude_hosts"),
        ({"port": 0}, "port", "between 1 and 65535"),
        ({"port": 70000}, "port", "between 1 and 65535"),
        ({"credentials": []}, "credentials", "at least one credential"),
        ({"credentials": [999]}, "credentials", "credential 999 does not exist"),
        ({"scanners": [999]}, "scanners", "scanner 999 does not exist"),
        (
            {"disable_ssl": True},
            "options",
            "Invalid SSL options for network source: disable_ssl",
        ),
        (
            {"ssl_cert_verify": False, "ssl_protocol": "TLSv1_2"},
            "options",
            "Invalid SSL options for network source: ssl_cert_verify, ssl_protocol",
        ),
        ({"max_probes_per_second": -1}, "max_probes_per_second", "0 \\(no limit\\) or more"),
        ({"scheduling_mode": "later"}, "scheduling_mode", "immediate, mediated"),
        ({"hosts": ["10.0.0.0/8"]}, "hosts", "more than 65,536 systems"),
    ],
)
def test_network_source_rules(
    store: Store, box: SecretBox, changes: dict[str, Any], field: str, match: str
) -> None:
    cred = credentials.add_credential(store, box=box, fields=network(), now=NOW)
    base: dict[str, Any] = {
        "source_type": "network",
        "hosts": ["127.0.0.1"],
        "credentials": [cred.id],
    }
    fields = SourceFields(name="bad", **{**base, **changes})
    refused(
        store,
        InvalidInput,
        lambda: sources.add_source(store, fields=fields, now=NOW),
        field=field,
        match=match,
    )


def test_large_network_source_needs_allow_large(store: Store, box: SecretBox) -> None:
    cred = credentials.add_credential(store, box=box, fields=network(), now=NOW)
    fields = SourceFields(
        name="big", source_type="network", hosts=["10.0.0.0/15"], credentials=[cred.id]
    )
    refused(
        store,
        InvalidInput,
        lambda: sources.add_source(store, fields=fields, now=NOW),
        field="hosts",
    )
    view = sources.add_source(store, fields=fields, allow_large=True, now=NOW)
    assert view.hosts == ["10.0.0.0/15"]


def test_api_source_rules(store: Store, box: SecretBox) -> None:
    vc = credentials.add_credential(store, box=box, fields=vcenter(), now=NOW)
    vc2 = credentials.add_credential(store, box=box, fields=vcenter("vc2"), now=NOW)
    net = credentials.add_credential(store, box=box, fields=network(), now=NOW)

    def add(**changes: Any) -> None:
        values: dict[str, Any] = {
            "source_type": "vcenter",
            "hosts": ["vc.example.com"],
            "credentials": [vc.id],
            **changes,
        }
        sources.add_source(store, fields=SourceFields(name="vc", **values), now=NOW)

    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"hosts": ["a.example.com", "b.example.com"]}, "hosts", "must have a single host"),
        ({"hosts": ["10.0.0.0/24"]}, "hosts", "must have a single host"),
        ({"hosts": ["bad host"]}, "hosts", "one IP address or host name"),
        ({"credentials": [vc.id, vc2.id]}, "credentials", "must have a single credential"),
        ({"credentials": [net.id]}, "source_type", "must have the same type as source"),
        ({"exclude_hosts": ["10.0.0.1"]}, "exclude_hosts", "not valid for this source"),
        ({"use_paramiko": True}, "options", "Invalid options for 'vcenter': use_paramiko."),
        ({"ssl_protocol": "SSLv2"}, "ssl_protocol", "SSLv23, TLSv1"),
    ]
    for changes, field, match in cases:
        refused(store, InvalidInput, lambda c=changes: add(**c), field=field, match=match)
    add(ssl_protocol="TLSv1_2", ssl_cert_verify=False, disable_ssl=True, port=8443)
    view = sources.list_sources(store, name="vc")[1][0]
    assert (view.port, view.ssl_protocol, view.ssl_cert_verify, view.disable_ssl) == (
        8443,
        "TLSv1_2",
        False,
        True,
    )


def test_edit_source(store: Store, box: SecretBox) -> None:
    one = credentials.add_credential(store, box=box, fields=network("one"), now=NOW)
    two = credentials.add_credential(store, box=box, fields=network("two"), now=NOW)
    view = add_source(store, "lab", [one.id, two.id], port=2222)
    add_source(store, "other", [one.id])
    later = NOW + timedelta(hours=1)

    def edit(**changes: Any) -> sources.SourceView:
        return sources.edit_source(store, source_id=view.id, changes=changes, now=later)

    edited = edit(credentials=[two.id, one.id], hosts=["127.0.0.2", "127.0.0.3"])
    assert [c.name for c in edited.credentials] == ["two", "one"]
    assert edited.hosts == ["127.0.0.2", "127.0.0.3"] and edited.port == 2222
    assert edited.updated_at == later
    assert edit(port=None).port == 22
    refused(store, InvalidInput, lambda: edit(source_type="vcenter"), field="source_type")
    refused(
        store,
        InvalidInput,
        lambda: edit(name="other"),
        field="name",
        match="^Source with name=other already exists$",
    )
    refused(store, InvalidInput, lambda: edit(disable_ssl=False), field="options")
    with pytest.raises(NotFound, match=r"^Source 999 does not exist\.$"):
        sources.get_source(store, source_id=999)


def test_source_scanners(store: Store, box: SecretBox) -> None:
    cred = credentials.add_credential(store, box=box, fields=network(), now=NOW)
    with store.transaction() as s:
        far = factories.scanner(s, name="far").id
        near = factories.scanner(s, name="near").id
    view = add_source(store, "lab", [cred.id], scanners=[near, far])
    assert [(r.id, r.name) for r in view.scanners] == [(far, "far"), (near, "near")]
    refused(
        store,
        InvalidInput,
        lambda: add_source(store, "dup", [cred.id], scanners=[far, far]),
        field="scanners",
        match="more than once",
    )


def test_source_used_by_scans_cannot_be_deleted(store: Store, box: SecretBox) -> None:
    cred = credentials.add_credential(store, box=box, fields=network(), now=NOW)
    used = add_source(store, "used", [cred.id])
    free = add_source(store, "free", [cred.id])
    scans.add_scan(store, fields=ScanFields(name="nightly", sources=[used.id]), now=NOW)
    refused(
        store,
        InUse,
        lambda: sources.delete_source(store, source_id=used.id),
        match='^Source "used" is used by scan "nightly"; remove it from that scan first.$',
    )
    result = sources.bulk_delete_sources(store, ids="all")
    assert result.deleted == [free.id]
    assert [(s.name, s.reason) for s in result.skipped] == [("used", 'used by scan "nightly"')]
    assert result.message == "Successfully deleted 1 sources. 1 sources could not be deleted."
    # The credential is now used by one source only.
    assert [r.name for r in credentials.get_credential(store, credential_id=cred.id).sources] == [
        "used"
    ]


# Scans


def test_scan_sources_options_and_most_recent_job(store: Store, box: SecretBox) -> None:
    cred = credentials.add_credential(store, box=box, fields=network(), now=NOW)
    a = add_source(store, "a", [cred.id])
    b = add_source(store, "b", [cred.id])
    view = scans.add_scan(store, fields=ScanFields(name="nightly", sources=[b.id, a.id]), now=NOW)
    assert [(r.id, r.name, r.source_type) for r in view.sources] == [
        (b.id, "b", "network"),
        (a.id, "a", "network"),
    ]
    assert (view.scan_type, view.options, view.most_recent_scanjob) == (
        "inspect",
        {"max_concurrency": 25},
        None,
    )
    with store.transaction() as s:
        scan_row = s.get_one(Scan, view.id)
        factories.scan_job(s, scan_row=scan_row)
        newest = factories.scan_job(s, scan_row=scan_row).id
        factories.scan_job(s)  # another scan's job
    recent = scans.get_scan(store, scan_id=view.id).most_recent_scanjob
    assert recent is not None and (recent.id, recent.status) == (newest, "created")


@pytest.mark.parametrize(
    ("fields", "field", "match"),
    [
        (
            {"options": {"max_concurrency": 0}},
            "options.max_concurrency",
            "greater than or equal to 1",
        ),
        (
            {"options": {"max_concurrency": 201}},
            "options.max_concurrency",
            "less than or equal to 200",
        ),
        ({"options": {"colour": "red"}}, "options", "unknown option 'colour'"),
        ({"sources": []}, "sources", "at least one source"),
        ({"sources": [999]}, "sources", "source 999 does not exist"),
        ({"scan_type": "connect"}, "scan_type", "one of inspect"),
        ({"name": ""}, "name", "blank"),
    ],
)
def test_scan_rules(
    store: Store, box: SecretBox, fields: dict[str, Any], field: str, match: str
) -> None:
    cred = credentials.add_credential(store, box=box, fields=network(), now=NOW)
    source = add_source(store, "a", [cred.id])
    values: dict[str, Any] = {"name": "scan", "sources": [source.id], **fields}
    refused(
        store,
        InvalidInput,
        lambda: scans.add_scan(store, fields=ScanFields(**values), now=NOW),
        field=field,
        match=match,
    )


def test_edit_scan_merges_or_replaces_options(store: Store, box: SecretBox) -> None:
    cred = credentials.add_credential(store, box=box, fields=network(), now=NOW)
    a = add_source(store, "a", [cred.id])
    b = add_source(store, "b", [cred.id])
    products = {"jboss_eap": True, "jboss_fuse": False, "jboss_ws": False}
    view = scans.add_scan(
        store,
        fields=ScanFields(
            name="s",
            sources=[a.id],
            options={"max_concurrency": 50, "disabled_optional_products": products},
        ),
        now=NOW,
    )
    scans.add_scan(store, fields=ScanFields(name="t", sources=[a.id]), now=NOW)

    def edit(*, partial: bool = True, **changes: Any) -> scans.ScanView:
        return scans.edit_scan(store, scan_id=view.id, changes=changes, partial=partial, now=NOW)

    merged = edit(options={"max_concurrency": 10}, sources=[b.id, a.id])
    assert merged.options == {"max_concurrency": 10, "disabled_optional_products": products}
    assert [r.name for r in merged.sources] == ["b", "a"]
    replaced = edit(partial=False, name="s", sources=[a.id], options={})
    assert replaced.options == {"max_concurrency": 25}
    refused(store, InvalidInput, lambda: edit(name="t"), field="name", match="Scan with name=t")
    refused(store, InvalidInput, lambda: edit(sources=[a.id, a.id]), field="sources")


def test_deleting_a_scan_keeps_its_jobs(store: Store, box: SecretBox) -> None:
    cred = credentials.add_credential(store, box=box, fields=network(), now=NOW)
    source = add_source(store, "a", [cred.id])
    first = scans.add_scan(store, fields=ScanFields(name="first", sources=[source.id]), now=NOW)
    second = scans.add_scan(store, fields=ScanFields(name="second", sources=[source.id]), now=NOW)
    with store.transaction() as s:
        scan_row = s.get_one(Scan, first.id)
        job_id = factories.scan_job(s, scan_row=scan_row, status=ScanJobStatus.COMPLETED).id
    scans.delete_scan(store, scan_id=first.id)
    with store.transaction() as s:
        job = s.get_one(ScanJob, job_id)
        assert (job.scan_id, job.scan_name) == (None, "first")
    result = scans.bulk_delete_scans(store, ids=[second.id, 12345])
    assert (result.deleted, result.missing) == ([second.id], [12345])
    assert result.message == "Successfully deleted 1 scans. 1 scans could not be deleted."
    assert scans.list_scans(store) == (0, [])
    # With no scan left, the source can go.
    sources.delete_source(store, source_id=source.id)
    with store.transaction() as s:
        assert s.scalars(select(ScanJob.id)).all() == [job_id]
