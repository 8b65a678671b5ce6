"""Credentials, sources and scans over HTTP against a real server; no secret ever comes back."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import asyncssh
import httpx
import pytest

from tests.servers import RunningServer

PASSWORD = "e2e-Net-Password-7391"
BECOME_PASSWORD = "e2e-Become-Password-2204"
PASSPHRASE = "e2e-Key-Passphrase-5561"
TOKEN = "e2e-Satellite-Token-8812"
KEY = (
    asyncssh.generate_private_key("ssh-rsa", key_size=2048)
    .export_private_key("pkcs8-pem", passphrase=PASSPHRASE)
    .decode()
)
KEY_LINES = [line for line in KEY.splitlines() if len(line) > 40 and "PRIVATE KEY" not in line]
SECRETS = [PASSWORD, BECOME_PASSWORD, PASSPHRASE, TOKEN, *KEY_LINES]


def _no_secret_in(response: httpx.Response) -> None:
    body = response.read().decode(errors="replace")
    for secret in SECRETS:
        assert secret not in body, f"{response.request.method} {response.request.url} leaked"


@pytest.fixture
def api(server: RunningServer) -> Iterator[httpx.Client]:
    """A logged-in client whose every response body is checked for the test secrets."""
    with httpx.Client(
        base_url=server.url,
        headers={"Authorization": f"Token {server.token()}"},
        timeout=30,
        event_hooks={"response": [_no_secret_in]},
    ) as client:
        yield client
    log = server.log()
    assert not any(secret in log for secret in SECRETS), "a secret was logged"


def everything(api: httpx.Client) -> list[Any]:
    """Every credential, source and scan, as the API lists them."""
    return [
        api.get(path, params={"page_size": 1000}).json()
        for path in ("/api/v2/credentials/", "/api/v2/sources/", "/api/v1/scans/")
    ]


def created(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def refused(
    api: httpx.Client,
    method: str,
    path: str,
    *,
    json: Any,
    field: str,
    says: str,
    params: dict[str, str] | None = None,
) -> None:
    """The request gets a 400 naming ``field`` (saying ``says``) and changes nothing."""
    before = everything(api)
    response = api.request(method, path, json=json, params=params)
    assert response.status_code == 400, (json, response.text)
    body = response.json()
    assert says in body["detail"], (json, body)
    assert field in body, (json, body)
    assert everything(api) == before


def network_credential(api: httpx.Client, name: str, **extra: Any) -> dict[str, Any]:
    body = {"name": name, "cred_type": "network", "username": "root", "password": PASSWORD}
    return created(api.post("/api/v2/credentials/", json={**body, **extra}))


def network_source(api: httpx.Client, name: str, credential_ids: list[int]) -> dict[str, Any]:
    body = {"name": name, "source_type": "network", "hosts": ["127.0.0.1"]}
    return created(api.post("/api/v2/sources/", json={**body, "credentials": credential_ids}))


def test_credential_routes(api: httpx.Client) -> None:
    net = network_credential(api, "net", become_password=BECOME_PASSWORD, become_method="su")
    assert {k: net[k] for k in ("cred_type", "username", "become_method", "become_user")} == {
        "cred_type": "network",
        "username": "root",
        "become_method": "su",
        "become_user": "root",
    }
    assert (net["has_password"], net["has_become_password"], net["auth_type"]) == (
        True,
        True,
        "password",
    )
    for secret in ("password", "ssh_key", "ssh_passphrase", "auth_token", "become_password"):
        assert secret not in net
    keyed = created(
        api.post(
            "/api/v2/credentials/",
            json={
                "name": "Keyed",
                "cred_type": "network",
                "username": "scan",
                "ssh_key": KEY,
                "ssh_passphrase": PASSPHRASE,
            },
        )
    )
    assert (keyed["auth_type"], keyed["has_ssh_key"], keyed["has_ssh_passphrase"]) == (
        "ssh_key",
        True,
        True,
    )
    sat = created(
        api.post(
            "/api/v2/credentials/",
            json={"name": "sat", "cred_type": "satellite", "username": "u", "password": TOKEN},
        )
    )
    assert (sat["has_password"], sat["has_auth_token"], sat["become_method"]) == (True, False, None)

    listed = api.get("/api/v2/credentials/").json()
    assert [c["name"] for c in listed["results"]] == ["Keyed", "net", "sat"]
    assert (listed["count"], listed["next"], listed["previous"]) == (3, None, None)
    assert api.get("/api/v2/credentials/", params={"search_by_name": "KEY"}).json()["count"] == 1
    assert api.get("/api/v2/credentials/", params={"name": "keyed"}).json()["count"] == 0
    by_type = api.get("/api/v2/credentials/", params={"cred_type": "satellite"}).json()
    assert [c["id"] for c in by_type["results"]] == [sat["id"]]
    first = api.get("/api/v2/credentials/", params={"page_size": 2}).json()
    assert len(first["results"]) == 2 and first["previous"] is None
    second = api.get(first["next"]).json()
    assert [c["name"] for c in second["results"]] == ["sat"] and second["next"] is None
    assert api.get(f"/api/v2/credentials/{keyed['id']}/").json() == keyed

    replaced = api.put(
        f"/api/v2/credentials/{net['id']}/",
        json={"name": "net", "cred_type": "network", "username": "admin"},
    )
    assert replaced.status_code == 200, replaced.text
    # Secrets left out of a PUT are kept; optional fields left out get their defaults.
    assert (replaced.json()["has_password"], replaced.json()["become_method"]) == (True, "sudo")
    patched = api.patch(f"/api/v2/credentials/{keyed['id']}/", json={"password": PASSWORD})
    assert patched.status_code == 200, patched.text
    assert (patched.json()["auth_type"], patched.json()["has_ssh_key"]) == ("password", False)
    assert patched.json()["updated_at"] > keyed["updated_at"]

    assert api.delete(f"/api/v2/credentials/{sat['id']}/").status_code == 204
    missing = api.get(f"/api/v2/credentials/{sat['id']}/")
    assert missing.status_code == 404
    assert missing.json()["detail"] == f"Credential {sat['id']} does not exist."
    bulk = api.post("/api/v2/credentials/bulk_delete/", json={"ids": [net["id"], 9999]})
    assert bulk.json() == {
        "message": "Successfully deleted 1 credentials. 1 credentials could not be deleted.",
        "deleted": [net["id"]],
        "skipped": [],
        "missing": [9999],
    }
    assert [c["name"] for c in api.get("/api/v2/credentials/").json()["results"]] == ["Keyed"]


def test_credential_validation_errors_change_nothing(api: httpx.Client) -> None:
    cred = network_credential(api, "net")
    path = "/api/v2/credentials/"
    base = {"name": "new", "cred_type": "network", "username": "root"}
    cases: list[tuple[dict[str, Any], str, str]] = [
        (base, "password", "needs a password or an ssh_key"),
        ({**base, "password": PASSWORD, "ssh_key": KEY}, "ssh_key", "not both"),
        ({**base, "ssh_key": "not a key"}, "ssh_key", "not a private key"),
        ({**base, "ssh_key": KEY}, "ssh_passphrase", "ssh_passphrase"),
        ({**base, "ssh_key": KEY, "ssh_passphrase": "wrong"}, "ssh_passphrase", "passphrase"),
        ({**base, "password": PASSWORD, "ssh_passphrase": PASSPHRASE}, "ssh_passphrase", "only"),
        ({**base, "password": PASSWORD, "become_method": "sudoo"}, "become_method", "'doas'"),
        ({**base, "password": PASSWORD, "cred_type": "ldap"}, "cred_type", "'network'"),
        ({**base, "password": PASSWORD, "pasword": PASSWORD}, "pasword", "Extra inputs"),
        ({**base, "password": ""}, "password", "at least 1 character"),
        ({**base, "name": "x" * 65, "password": PASSWORD}, "name", "at most 64"),
        (
            {**base, "cred_type": "vcenter", "password": PASSWORD, "become_user": "root"},
            "become_user",
            "only for network credentials",
        ),
        (
            {**base, "cred_type": "vcenter", "password": PASSWORD, "ssh_key": KEY},
            "ssh_key",
            "only for network credentials",
        ),
    ]
    for body, field, says in cases:
        refused(api, "POST", path, json=body, field=field, says=says)
    duplicate = {**base, "name": "net", "password": PASSWORD}
    before = everything(api)
    answer = api.post(path, json=duplicate)
    assert answer.status_code == 400
    assert answer.json() == {
        "detail": "credential with this name already exists.",
        "name": ["credential with this name already exists."],
    }
    assert everything(api) == before
    one = f"{path}{cred['id']}/"
    refused(api, "PATCH", one, json={"cred_type": "vcenter"}, field="cred_type", says="changed")
    refused(api, "PATCH", one, json={"password": None}, field="password", says="needs a password")
    refused(api, "PUT", one, json={"name": "net"}, field="cred_type", says="Field required")
    refused(api, "POST", f"{path}bulk_delete/", json={"ids": []}, field="ids", says='"all"')


def test_source_routes(api: httpx.Client) -> None:
    one = network_credential(api, "one")
    two = network_credential(api, "two")
    vc_cred = created(
        api.post(
            "/api/v2/credentials/",
            json={"name": "vc", "cred_type": "vcenter", "username": "u", "password": PASSWORD},
        )
    )
    hosts = ["10.1.0.5", "10.1.1.0/24", "10.1.2.1-10.1.2.20", "10.1.3.[1:100]", "db1.example.com"]
    lab = created(
        api.post(
            "/api/v2/sources/",
            json={
                "name": "lab",
                "source_type": "network",
                "hosts": hosts,
                "exclude_hosts": ["10.1.1.7"],
                "credentials": [two["id"], one["id"]],
                "max_probes_per_second": 500,
                "scheduling_mode": "mediated",
            },
        )
    )
    assert lab["hosts"] == hosts and lab["exclude_hosts"] == ["10.1.1.7"]
    assert lab["credentials"] == [
        {"id": two["id"], "name": "two", "cred_type": "network"},
        {"id": one["id"], "name": "one", "cred_type": "network"},
    ]
    assert (lab["port"], lab["max_probes_per_second"], lab["scheduling_mode"]) == (
        22,
        500,
        "mediated",
    )
    assert (lab["ssl_cert_verify"], lab["ssl_protocol"], lab["disable_ssl"]) == (None, None, None)
    assert lab["scanners"] == []
    vc = created(
        api.post(
            "/api/v2/sources/",
            json={
                "name": "vcenter",
                "source_type": "vcenter",
                "hosts": ["vc.example.com"],
                "credentials": [vc_cred["id"]],
                "ssl_protocol": "TLSv1_2",
            },
        )
    )
    assert (vc["port"], vc["ssl_cert_verify"], vc["disable_ssl"], vc["ssl_protocol"]) == (
        443,
        True,
        None,
        "TLSv1_2",
    )
    assert [s["name"] for s in api.get("/api/v2/sources/").json()["results"]] == ["lab", "vcenter"]
    network_only = api.get("/api/v2/sources/", params={"source_type": "network"}).json()
    assert [s["name"] for s in network_only["results"]] == ["lab"]
    assert api.get("/api/v2/sources/", params={"search_by_name": "CENT"}).json()["count"] == 1
    assert api.get(f"/api/v2/sources/{lab['id']}/").json() == lab
    used_by = api.get(f"/api/v2/credentials/{one['id']}/").json()["sources"]
    assert used_by == [{"id": lab["id"], "name": "lab"}]

    patched = api.patch(
        f"/api/v2/sources/{lab['id']}/", json={"credentials": [one["id"]], "port": 2222}
    )
    assert patched.status_code == 200, patched.text
    assert [c["name"] for c in patched.json()["credentials"]] == ["one"]
    assert (patched.json()["port"], patched.json()["hosts"]) == (2222, hosts)
    put = api.put(
        f"/api/v2/sources/{lab['id']}/",
        json={
            "name": "lab",
            "source_type": "network",
            "hosts": ["127.0.0.1"],
            "credentials": [two["id"]],
        },
    )
    assert put.status_code == 200, put.text
    assert (put.json()["port"], put.json()["scheduling_mode"], put.json()["exclude_hosts"]) == (
        22,
        "immediate",
        None,
    )

    assert api.delete(f"/api/v2/sources/{vc['id']}/").status_code == 204
    assert api.get(f"/api/v2/sources/{vc['id']}/").status_code == 404
    bulk = api.post("/api/v2/sources/bulk_delete/", json={"ids": "all"}).json()
    assert (bulk["deleted"], bulk["skipped"]) == ([lab["id"]], [])
    assert api.get("/api/v2/sources/").json()["count"] == 0


def test_source_validation_errors_change_nothing(api: httpx.Client) -> None:
    net = network_credential(api, "net")
    vc = created(
        api.post(
            "/api/v2/credentials/",
            json={"name": "vc", "cred_type": "vcenter", "username": "u", "password": PASSWORD},
        )
    )
    source = network_source(api, "lab", [net["id"]])
    path = "/api/v2/sources/"
    base = {"name": "new", "source_type": "network", "hosts": ["10.0.0.1"]}
    base["credentials"] = [net["id"]]
    vcenter = {**base, "source_type": "vcenter", "hosts": ["vc.example.com"]}
    vcenter["credentials"] = [vc["id"]]
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({**base, "hosts": ["10.0.0.256"]}, "hosts", "'10.0.0.256' is not valid"),
        ({**base, "hosts": ["10.0.0.9-10.0.0.1"]}, "hosts", "ends before it starts"),
        ({**base, "hosts": ["bad host"]}, "hosts", "not a host name"),
        ({**base, "hosts": []}, "hosts", "at least 1 item"),
        ({**base, "exclude_hosts": ["10.0.0.0/33"]}, "exclude_hosts", "exclude_hosts entry"),
        ({**base, "credentials": [9999]}, "credentials", "credential 9999 does not exist"),
        ({**base, "credentials": [vc["id"]]}, "source_type", "must have the same type"),
        ({**base, "credentials": []}, "credentials", "at least 1 item"),
        ({**base, "scanners": [9999]}, "scanners", "scanner 9999 does not exist"),
        ({**base, "port": 0}, "port", "greater than or equal to 1"),
        ({**base, "port": 70000}, "port", "less than or equal to 65535"),
        ({**base, "max_probes_per_second": -1}, "max_probes_per_second", "greater than or equal"),
        ({**base, "scheduling_mode": "soon"}, "scheduling_mode", "'immediate' or 'mediated'"),
        (
            {**base, "disable_ssl": True},
            "options",
            "Invalid SSL options for network source: disable_ssl",
        ),
        (
            {**base, "ssl_cert_verify": False, "ssl_protocol": "TLSv1_2"},
            "options",
            "Invalid SSL options for network source: ssl_cert_verify, ssl_protocol",
        ),
        ({**base, "proxy_url": "http://proxy.example.com:3128"}, "proxy_url", "not valid"),
        ({**base, "hosts": ["10.0.0.0/8"]}, "hosts", "more than 65,536 systems"),
        ({**vcenter, "hosts": ["a.example.com", "b.example.com"]}, "hosts", "a single host"),
        ({**vcenter, "hosts": ["10.0.0.[1:2]"]}, "hosts", "a single host"),
        ({**vcenter, "credentials": [net["id"]]}, "source_type", "must have the same type"),
        ({**vcenter, "ssl_protocol": "SSLv2"}, "ssl_protocol", "'TLSv1_3'"),
        ({**vcenter, "exclude_hosts": ["10.0.0.1"]}, "exclude_hosts", "is not valid for this"),
        ({**vcenter, "use_paramiko": False}, "options", "Invalid options for 'vcenter'"),
        ({**base, "name": "lab"}, "name", ""),
    ]
    for body, field, says in cases:
        if field == "name":
            before = everything(api)
            answer = api.post(path, json=body)
            assert answer.status_code == 400
            assert answer.json() == {
                "detail": "Source with name=lab already exists",
                "name": ["Source with name=lab already exists"],
            }
            assert everything(api) == before
            continue
        refused(api, "POST", path, json=body, field=field, says=says)
    large = {**base, "hosts": ["10.0.0.0/8"]}
    allowed = api.post(path, json=large, params={"allow_large": "true"})
    assert allowed.status_code == 201, allowed.text
    one = f"{path}{source['id']}/"
    refused(
        api,
        "PATCH",
        one,
        json={"source_type": "vcenter"},
        field="source_type",
        says="cannot be changed",
    )
    refused(api, "PATCH", one, json={"hosts": ["10.0.0.0/8"]}, field="hosts", says="65,536")
    refused(api, "PATCH", one, json={"disable_ssl": False}, field="options", says="SSL")
    refused(
        api,
        "PUT",
        one,
        json={**base, "name": "lab", "port": 0},
        field="port",
        says="greater than or equal to 1",
    )


def test_scan_routes(api: httpx.Client) -> None:
    cred = network_credential(api, "net")
    a = network_source(api, "a", [cred["id"]])
    b = network_source(api, "b", [cred["id"]])
    scan = created(
        api.post("/api/v1/scans/", json={"name": "nightly", "sources": [b["id"], a["id"]]})
    )
    assert scan["sources"] == [
        {"id": b["id"], "name": "b", "source_type": "network"},
        {"id": a["id"], "name": "a", "source_type": "network"},
    ]
    assert (scan["scan_type"], scan["options"], scan["most_recent_scanjob"]) == (
        "inspect",
        {"max_concurrency": 25},
        None,
    )
    other = created(
        api.post(
            "/api/v1/scans/",
            json={
                "name": "weekly",
                "scan_type": "inspect",
                "sources": [a["id"]],
                "options": {"max_concurrency": 200},
            },
        )
    )
    assert other["options"] == {"max_concurrency": 200}
    assert [s["name"] for s in api.get("/api/v1/scans/").json()["results"]] == ["nightly", "weekly"]
    assert api.get("/api/v1/scans/", params={"name": "weekly"}).json()["results"] == [other]
    assert api.get(f"/api/v1/scans/{scan['id']}/").json() == scan

    patched = api.patch(
        f"/api/v1/scans/{scan['id']}/",
        json={"options": {"disabled_optional_products": {"jboss_eap": True}}},
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["options"] == {
        "max_concurrency": 25,
        "disabled_optional_products": {
            "jboss_eap": True,
            "jboss_fuse": False,
            "jboss_ws": False,
        },
    }
    put = api.put(f"/api/v1/scans/{scan['id']}/", json={"name": "nightly", "sources": [a["id"]]})
    assert put.status_code == 200, put.text
    assert (put.json()["options"], [s["name"] for s in put.json()["sources"]]) == (
        {"max_concurrency": 25},
        ["a"],
    )

    in_use = api.delete(f"/api/v2/sources/{a['id']}/")
    assert in_use.status_code == 400
    assert in_use.json()["detail"] == (
        'Source "a" is used by scans "nightly", "weekly"; remove it from them first.'
    )
    cred_in_use = api.delete(f"/api/v2/credentials/{cred['id']}/")
    assert cred_in_use.status_code == 400
    assert cred_in_use.json()["detail"] == (
        'Credential "net" is used by sources "a", "b"; remove it from them first.'
    )
    skipped = api.post("/api/v2/sources/bulk_delete/", json={"ids": "all"}).json()
    assert skipped["deleted"] == [b["id"]]
    assert skipped["skipped"] == [
        {
            "id": a["id"],
            "name": "a",
            "reason": 'used by scans "nightly", "weekly"',
            "source": a["id"],
            "scans": sorted([scan["id"], other["id"]]),
        }
    ]
    assert skipped["message"] == ("Successfully deleted 1 sources. 1 sources could not be deleted.")

    assert api.delete(f"/api/v1/scans/{other['id']}/").status_code == 204
    assert api.get(f"/api/v1/scans/{other['id']}/").status_code == 404
    bulk = api.post("/api/v1/scans/bulk_delete/", json={"ids": "all"}).json()
    assert bulk["message"] == "Successfully deleted 1 scans. 0 scans could not be deleted."
    assert api.delete(f"/api/v2/sources/{a['id']}/").status_code == 204


def test_scan_validation_errors_change_nothing(api: httpx.Client) -> None:
    cred = network_credential(api, "net")
    source = network_source(api, "a", [cred["id"]])
    scan = created(api.post("/api/v1/scans/", json={"name": "s", "sources": [source["id"]]}))
    path = "/api/v1/scans/"
    base = {"name": "new", "sources": [source["id"]]}
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({**base, "options": {"max_concurrency": 0}}, "options.max_concurrency", ">= 1"),
        ({**base, "options": {"max_concurrency": 201}}, "options.max_concurrency", "<= 200"),
        ({**base, "options": {"colour": 1}}, "options.colour", "Extra inputs"),
        ({**base, "sources": []}, "sources", "at least 1 item"),
        ({**base, "sources": [9999]}, "sources", "source 9999 does not exist"),
        ({**base, "sources": [source["id"], source["id"]]}, "sources", "more than once"),
        ({**base, "scan_type": "connect"}, "scan_type", "'inspect'"),
    ]
    for body, field, says in cases:
        says = says.replace(">= 1", "greater than or equal to 1")
        says = says.replace("<= 200", "less than or equal to 200")
        refused(api, "POST", path, json=body, field=field, says=says)
    one = f"{path}{scan['id']}/"
    refused(
        api,
        "PATCH",
        one,
        json={"options": {"max_concurrency": 0}},
        field="options.max_concurrency",
        says="greater than or equal to 1",
    )
    refused(api, "PATCH", one, json={"sources": [9999]}, field="sources", says="9999")
    assert api.get(one).json() == scan


def test_routes_need_login_and_are_documented(server: RunningServer, api: httpx.Client) -> None:
    for path in ("/api/v2/credentials/", "/api/v2/sources/", "/api/v1/scans/"):
        anonymous = httpx.get(f"{server.url}{path}")
        assert anonymous.status_code == 401
        assert httpx.post(f"{server.url}{path}", json={}).status_code == 401
        assert httpx.post(f"{server.url}{path}bulk_delete/", json={"ids": "all"}).status_code == 401
    paths = httpx.get(f"{server.url}/api/openapi.json").json()["paths"]
    expected = {
        "/api/v2/credentials/": {"get", "post"},
        "/api/v2/credentials/{credential_id}/": {"get", "put", "patch", "delete"},
        "/api/v2/credentials/bulk_delete/": {"post"},
        "/api/v2/sources/": {"get", "post"},
        "/api/v2/sources/{source_id}/": {"get", "put", "patch", "delete"},
        "/api/v2/sources/bulk_delete/": {"post"},
        "/api/v1/scans/": {"get", "post"},
        "/api/v1/scans/{scan_id}/": {"get", "put", "patch", "delete"},
        "/api/v1/scans/bulk_delete/": {"post"},
    }
    for path, methods in expected.items():
        assert set(paths[path]) == methods, path
        for method in methods:
            assert paths[path][method]["description"] or paths[path][method]["summary"]


def test_duplicates_invisible_characters_host_bits_and_bad_json_name_their_field(
    api: httpx.Client,
) -> None:
    cred = network_credential(api, "twin")
    network_source(api, "lo", [cred["id"]])
    body = {"name": "twin", "cred_type": "network", "username": "u", "password": "p"}
    refused(api, "POST", "/api/v2/credentials/", json=body, field="name", says="already exists")
    source = {"source_type": "network", "hosts": ["127.0.0.1"], "credentials": [cred["id"]]}
    for path, extra in (("/api/v2/sources/", source), ("/api/v2/credentials/", body)):
        refused(
            api,
            "POST",
            path,
            json={**extra, "name": "lo\u200b"},
            field="name",
            says="invisible or control characters (U+200B at position 3)",
        )
    refused(
        api,
        "POST",
        "/api/v2/sources/",
        json={**source, "name": "net", "hosts": ["127.0.171.5/24"]},
        field="hosts",
        says="host bits are set: write 127.0.171.0/24 for the network, or 127.0.171.5",
    )
    before = everything(api)
    malformed = api.post(
        "/api/v2/credentials/",
        content=b'{"name": "x",',
        headers={"Content-Type": "application/json"},
    )
    assert malformed.status_code == 400
    assert "body" in malformed.json() and "malformed JSON" in malformed.json()["detail"]
    assert everything(api) == before
