"""The fake AAP controller's answers, called directly: the documented page shape, logins, the
fault switches, and what ``quipu lab ansible`` prints."""

from __future__ import annotations

import base64
import json
from email.message import Message
from pathlib import Path
from typing import Any

from quipu.cli.lab_ansible import format_controller
from quipu.lab.ansible import (
    ACTIVE_NODE,
    Behaviour,
    FakeController,
    Inventory,
    RunningController,
)
from quipu.lab.https import Request

TOKEN = "a-token-for-the-tests"
PASSWORD = "a-password-for-the-tests"


def _controller(behaviour: Behaviour | None = None, **counts: int) -> FakeController:
    return FakeController(
        inventory=Inventory(**counts),
        username="admin",
        password=PASSWORD,
        token=TOKEN,
        behaviour=behaviour or Behaviour(),
    )


def _get(
    controller: FakeController, path: str, *, auth: str | None = f"Bearer {TOKEN}", **query: str
) -> tuple[int, Any]:
    headers = Message()
    if auth is not None:
        headers["Authorization"] = auth
    reply = controller.route(Request(method="GET", path=path, query=query, headers=headers))
    try:
        return reply.status, json.loads(reply.body)
    except ValueError:
        return reply.status, reply.body


def test_listings_follow_the_documented_page_shape() -> None:
    controller = _controller(hosts=12)
    status, first = _get(controller, "/api/v2/hosts/", page_size="5")
    assert status == 200
    assert set(first) == {"count", "next", "previous", "results"}
    assert (first["count"], len(first["results"]), first["previous"]) == (12, 5, None)
    assert first["next"] == "/api/v2/hosts/?page=2&page_size=5"
    _, last = _get(controller, "/api/v2/hosts/", page="3", page_size="5")
    assert (len(last["results"]), last["next"]) == (2, None)
    assert last["previous"] == "/api/v2/hosts/?page=2&page_size=5"
    assert _get(controller, "/api/v2/hosts/", page="4", page_size="5") == (
        404,
        {"detail": "Invalid page."},
    )
    _, capped = _get(controller, "/api/v2/hosts/", page_size="100000")
    assert len(capped["results"]) == 12


def test_events_are_filtered_by_kind_and_keep_the_filter_in_their_links() -> None:
    controller = _controller(jobs=2, hosts_per_job=3, behaviour=Behaviour(max_page_size=4))
    _, page = _get(controller, "/api/v2/jobs/2/job_events/", event="runner_on_start")
    assert page["count"] == 6  # two tasks on each of three hosts
    assert {e["event"] for e in page["results"]} == {"runner_on_start"}
    assert "event=runner_on_start" in page["next"]
    _, everything = _get(controller, "/api/v2/jobs/2/job_events/")
    assert everything["count"] == 14
    assert _get(controller, "/api/v2/jobs/3/job_events/")[0] == 404


def test_ping_and_the_roots_need_no_login_and_the_rest_does() -> None:
    controller = _controller()
    assert _get(controller, "/api/", auth=None)[1]["available_versions"] == {"v2": "/api/v2/"}
    assert "host_metrics" in _get(controller, "/api/v2/", auth=None)[1]
    assert _get(controller, "/api/v2/ping/", auth=None)[1]["active_node"] == ACTIVE_NODE
    assert _get(controller, "/api/v2/me/", auth=None)[0] == 401
    basic = "Basic " + base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
    status, me = _get(controller, "/api/v2/me/", auth=basic)
    assert (status, me["results"][0]["username"]) == (200, "admin")
    wrong = "Basic " + base64.b64encode(b"admin:wrong").decode()
    assert _get(controller, "/api/v2/me/", auth=wrong) == (
        401,
        {"detail": "Invalid username/password."},
    )


def test_the_fault_switches() -> None:
    expired = _controller(Behaviour(expired_token=True))
    assert _get(expired, "/api/v2/me/")[0] == 401
    old = _controller(Behaviour(host_metrics=False))
    assert "host_metrics" not in _get(old, "/api/v2/")[1]
    assert _get(old, "/api/v2/host_metrics/")[0] == 404
    forbidden = _controller(Behaviour(forbidden_path="jobs/"))
    assert _get(forbidden, "/api/v2/jobs/")[0] == 403
    failing = _controller(Behaviour(failing_page=("hosts/", 2), max_page_size=3))
    assert _get(failing, "/api/v2/hosts/", page="2")[0] == 500
    assert _get(failing, "/api/v2/hosts/", page="1")[0] == 200
    malformed = _controller(Behaviour(malformed_path="ping/"))
    status, body = _get(malformed, "/api/v2/ping/")
    assert status == 200 and isinstance(body, bytes)
    gateway = _controller(Behaviour(gateway=True))
    assert _get(gateway, "/api/")[1]["apis"]["controller"] == "/api/controller/"
    assert _get(gateway, "/api/v2/ping/")[0] == 404
    assert _get(gateway, "/api/controller/v2/ping/")[0] == 200


def test_the_lab_command_prints_the_logins_and_the_qpc_commands() -> None:
    controller = _controller()
    running = RunningController(
        host="127.0.0.1",
        port=8444,
        username="admin",
        password=PASSWORD,
        token=TOKEN,
        cert_path=Path("/tmp/server.crt"),
        inventory=controller.inventory,
        behaviour=controller.behaviour,
        controller=controller,
    )
    text = format_controller(running)
    assert "https://127.0.0.1:8444" in text
    assert PASSWORD in text and TOKEN in text
    assert "qpc cred add --name aap --type ansible --token" in text
    assert "qpc source add --name aap --type ansible --hosts 127.0.0.1 --port 8444" in text
