"""The report API after real scans of lab hosts: v2 list and summary, aggregate, insights,
the details CSV and the download, checked against each other."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import tarfile
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from quipu.lab import Lab
from quipu.reports.aggregate import INSTANCE_FIELDS
from tests.e2e.scans import run_scan
from tests.labs import running_lab
from tests.servers import register_secret

pytestmark = pytest.mark.lab

SERVER_ENV = {"QUIPU_DISPATCH_INTERVAL_S": "0.2", "QUIPU_SSH_CONNECT_TIMEOUT_S": "3"}
HOSTS = 3


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    root = tmp_path_factory.mktemp("api-reports-lab") / "lab"
    with running_lab(root=root, hosts=HOSTS, net="127.0.227", port=2227) as lab:
        yield lab


def make_scan(api: httpx.Client, lab: Lab) -> int:
    key = lab.sudo_key_path.read_text()
    register_secret(*(line for line in key.splitlines() if "PRIVATE KEY" not in line))
    cred = api.post(
        "/api/v2/credentials/",
        json={"name": "lab", "cred_type": "network", "username": lab.sudo_user, "ssh_key": key},
    )
    assert cred.status_code == 201, cred.text
    source = api.post(
        "/api/v2/sources/",
        json={
            "name": "lab",
            "source_type": "network",
            "hosts": [h.address for h in lab.hosts],
            "port": lab.hosts[0].port,
            "credentials": [cred.json()["id"]],
        },
    )
    assert source.status_code == 201, source.text
    scan = api.post("/api/v1/scans/", json={"name": "nightly", "sources": [source.json()["id"]]})
    assert scan.status_code == 201, scan.text
    scan_id: int = scan.json()["id"]
    return scan_id


def ok(response: httpx.Response) -> httpx.Response:
    assert response.status_code == 200, response.text
    return response


def members(body: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as archive:
        return {
            m.name: archive.extractfile(m).read()  # type: ignore[union-attr]
            for m in archive.getmembers()
            if m.isfile()
        }


def slice_counts(files: dict[str, Any], *, report_id: int) -> list[int]:
    """Each slice's host count, checked against its metadata.json entry."""
    metadata = files[f"report_id_{report_id}/metadata.json"]
    counts = []
    for slice_id, counted in metadata["report_slices"].items():
        hosts = files[f"report_id_{report_id}/{slice_id}.json"]["hosts"]
        assert len(hosts) == counted["number_hosts"]
        counts.append(len(hosts))
    assert len(files) == len(counts) + 1
    return counts


def test_report_api_after_two_scans(api: httpx.Client, lab: Lab) -> None:
    scan_id = make_scan(api, lab)
    jobs = [run_scan(api, scan_id) for _ in range(2)]
    assert [j["status"] for j in jobs] == ["completed", "completed"], jobs
    first, second = (j["report_id"] for j in jobs)

    # v2: the established fields, newest first, a page at a time
    page = ok(api.get("/api/v2/reports/", params={"page_size": 1})).json()
    assert page["count"] == 2 and page["previous"] is None and page["next"]
    assert [r["id"] for r in page["results"]] == [second]
    following = ok(api.get(page["next"])).json()
    assert [r["id"] for r in following["results"]] == [first]
    assert following["next"] is None and following["previous"]
    report = ok(api.get(f"/api/v2/reports/{first}/")).json()
    assert following["results"] == [report]
    assert report == {
        "id": first,
        "created_at": report["created_at"],
        "updated_at": report["created_at"],
        "report_version": report["report_version"],
        "report_platform_id": report["report_platform_id"],
        "origin": "local",
        "scan_id": scan_id,
        "scan_name": "nightly",
        "can_download": True,
        "cannot_download_reason": None,
        "can_publish": False,
        "cannot_publish_reason": "auth_missing",
    }
    assert api.get("/api/v2/reports/999/").json() == {"detail": "Report 999 does not exist."}
    # the v1 list the older clients read stays as it was
    assert ok(api.get("/api/v1/reports/")).json()["count"] == 2

    deployments = ok(api.get(f"/api/v1/reports/{first}/deployments/")).json()
    systems = deployments["system_fingerprints"]
    details = ok(api.get(f"/api/v1/reports/{first}/details/")).json()
    aggregate = ok(api.get(f"/api/v1/reports/{first}/aggregate/")).json()
    # older established clients ask for the JSON in a .tar.gz
    for kind, document in (("details", details), ("deployments", deployments)):
        packed = ok(
            api.get(f"/api/v1/reports/{first}/{kind}/", headers={"Accept": "application/json+gzip"})
        )
        ((name, body),) = members(packed.content).items()
        assert name == f"report_id_{first}/{kind}.json"
        assert json.loads(body) == document
    assert sum(aggregate["results"][f] for f in INSTANCE_FIELDS) == len(systems) == HOSTS
    assert aggregate["diagnostics"]["inspect_result_status_success"] == HOSTS

    details_csv = ok(
        api.get(f"/api/v1/reports/{first}/details/", headers={"Accept": "text/csv"})
    ).text
    rows = list(csv.reader(io.StringIO(details_csv, newline="")))
    version, platform_id = report["report_version"], report["report_platform_id"]
    assert rows[1] == [str(first), "details", version, platform_id, "1"]
    fact_rows = rows[rows.index(["Facts"]) + 2 :]
    assert len([r for r in fact_rows if r]) == HOSTS

    gzip_body = ok(
        api.get(f"/api/v1/reports/{first}/insights/", headers={"Accept": "application/gzip"})
    ).content
    as_tar = {name: json.loads(body) for name, body in members(gzip_body).items()}
    as_json = ok(api.get(f"/api/v1/reports/{first}/insights/")).json()
    assert sum(slice_counts(as_tar, report_id=first)) == HOSTS
    assert slice_counts(as_json, report_id=first) == slice_counts(as_tar, report_id=first)
    metadata = as_tar[f"report_id_{first}/metadata.json"]
    assert metadata["report_id"] == report["report_platform_id"]
    assert api.get("/api/v1/reports/999/insights/").status_code == 404
    assert api.get("/api/v1/reports/999/aggregate/").status_code == 404

    download = ok(api.get(f"/api/v1/reports/{first}/download/"))
    assert download.headers["content-type"] == "application/gzip"
    files = members(download.content)
    root = f"report_id_{first}"
    sums = files.pop(f"{root}/SHA256SUM").decode("ascii").splitlines()
    assert sorted(files) == sorted(f"{root}/{line.split('  ', 1)[1]}" for line in sums)
    for line in sums:
        digest, name = line.split("  ", 1)
        assert hashlib.sha256(files[f"{root}/{name}"]).hexdigest() == digest
    assert json.loads(files[f"{root}/aggregate.json"]) == aggregate
    assert json.loads(files[f"{root}/details.json"]) == details
    assert json.loads(files[f"{root}/deployments.json"]) == deployments
    assert files[f"{root}/details.csv"].decode() == details_csv
    # the established client asks for the download at the report itself, without the slash
    fetched = ok(
        api.get(
            f"/api/v1/reports/{first}",
            headers={"Accept": "application/gzip"},
            follow_redirects=True,
        )
    )
    assert sorted(members(fetched.content)) == sorted([*files, f"{root}/SHA256SUM"])
    assert ok(api.get(f"/api/v1/reports/{first}/")).json()["id"] == first
    nested = members(files[f"{root}/insights.tar.gz"])
    inner = {name: json.loads(body) for name, body in nested.items()}
    assert slice_counts(inner, report_id=first) == slice_counts(as_tar, report_id=first)

    # a merge and an upload are reports too: no scan, and every report made from their facts
    merged = api.post("/api/v1/reports/merge/", json={"reports": [first, second]})
    assert merged.status_code == 201, merged.text
    uploaded = api.post("/api/v1/reports/", json=details)
    assert uploaded.status_code == 201, uploaded.text
    for made, origin, records in ((merged, "merged", 2 * HOSTS), (uploaded, "uploaded", HOSTS)):
        report_id = made.json()["report_id"]
        summary = ok(api.get(f"/api/v2/reports/{report_id}/")).json()
        assert (summary["origin"], summary["scan_id"], summary["scan_name"]) == (
            origin,
            None,
            None,
        )
        assert summary["can_download"] is True
        systems = ok(api.get(f"/api/v1/reports/{report_id}/deployments/")).json()[
            "system_fingerprints"
        ]
        assert len(systems) == HOSTS  # the same hosts, deduplicated
        counts = ok(api.get(f"/api/v1/reports/{report_id}/aggregate/")).json()
        assert sum(counts["results"][f] for f in INSTANCE_FIELDS) == HOSTS
        assert counts["diagnostics"]["inspect_result_status_success"] == records
        as_json = ok(api.get(f"/api/v1/reports/{report_id}/insights/")).json()
        assert sum(slice_counts(as_json, report_id=report_id)) == HOSTS
        files = members(ok(api.get(f"/api/v1/reports/{report_id}/download/")).content)
        assert json.loads(files[f"report_id_{report_id}/aggregate.json"]) == counts
    listed = ok(api.get("/api/v2/reports/")).json()
    assert [r["origin"] for r in listed["results"]] == ["uploaded", "merged", "local", "local"]
