"""qpc manages scanners: the key is printed once, enable/disable/rotate-key work for real."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.e2e.qpc import logged_in
from tests.servers import RunningServer


def test_scanner_commands(server: RunningServer, tmp_path: Path) -> None:
    qpc = logged_in(server, config_home=tmp_path / "config")

    added = qpc.ok(
        "scanner", "add", "--name", "dc1", "--bind", "127.0.0.0/8", "--max-probes-per-second", "500"
    )
    lines = added.stdout.splitlines()
    assert lines[0] == 'Scanner "dc1" was added.'
    key = lines[-1]
    assert len(key) >= 43 and " " not in key  # 256 random bits, alone on its line

    def scanner_call(api_key: str) -> int:
        return httpx.post(
            f"{server.url}/scanner/heartbeat",
            headers={"X-API-Key": api_key},
            json={"version": "test"},
        ).status_code

    assert scanner_call(key) == 200
    shown = qpc.ok("scanner", "show", "--name", "dc1").json()
    assert (shown["bind"], shown["max_probes_per_second"], shown["online"]) == (
        ["127.0.0.0/8"],
        500,
        True,
    )
    assert "api_key" not in shown
    names = [s["name"] for s in qpc.ok("scanner", "list").json()]
    assert names == ["dc1", "local"]  # the server's built-in scanner is listed too

    assert qpc.ok("scanner", "disable", "--name", "dc1").stdout == 'Scanner "dc1" was disabled.\n'
    assert scanner_call(key) == 403
    assert qpc.ok("scanner", "enable", "--name", "dc1").stdout == 'Scanner "dc1" was enabled.\n'
    assert scanner_call(key) == 200

    rotated = qpc.ok("scanner", "rotate-key", "--name", "dc1").stdout.splitlines()[-1]
    assert rotated != key
    assert (scanner_call(key), scanner_call(rotated)) == (401, 200)

    duplicate = qpc.fails("scanner", "add", "--name", "dc1")
    assert "already exists" in duplicate.stderr
    unknown = qpc.fails("scanner", "show", "--name", "nope")
    assert unknown.stderr.strip() == 'Scanner "nope" does not exist.'
    bad_bind = qpc.fails("scanner", "add", "--name", "dc2", "--bind", "10.0.0.0/33")
    assert "bind" in bad_bind.stderr and "10.0.0.0/33" in bad_bind.stderr
    assert [s["name"] for s in qpc.ok("scanner", "list").json()] == ["dc1", "local"]

    qpc.ok(
        "cred", "add", "--name", "c", "--type", "network", "--username", "root", "--password",
        input="a-Password-1\n",
    )  # fmt: skip
    qpc.ok(
        "source", "add", "--name", "net", "--type", "network", "--hosts", "127.0.0.1",
        "--cred", "c", "--scanner", "dc1",
    )  # fmt: skip
    source = qpc.ok("source", "show", "--name", "net", "--all-fields").json()
    assert [s["name"] for s in source["scanners"]] == ["dc1"]


def test_openapi_describes_every_route(server: RunningServer) -> None:
    from quipu.api.app import create_app
    from quipu.settings import Settings

    spec = httpx.get(f"{server.url}/api/openapi.json").json()
    app = create_app(Settings(data_dir=server.data_dir, database_url=server.database_url))
    routes = {
        (route.path, method.lower())
        for route in app.routes
        if hasattr(route, "methods") and route.path.startswith(("/api/v", "/scanner/"))
        for method in route.methods  # type: ignore[attr-defined]
        if method != "HEAD"
    }
    described = {(path, method) for path, item in spec["paths"].items() for method in item}
    assert routes - described == set()
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            assert operation.get("summary") or operation.get("description"), (path, method)
