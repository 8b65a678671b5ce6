"""Schedules, time windows and retry policies in the browser: an operator sets them in the
scan form and reads the next firings on the scan's page, sets a source's windows in the
source form, and a bad value shows an error naming its field and saves nothing."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.sync_api import Page, expect

from quipu.web.render import when
from tests.browser.conftest import shot
from tests.e2e.scans import created
from tests.servers import RunningServer

pytestmark = pytest.mark.browser

NET = "127.0.250"
PORT = 2250
PARIS = ZoneInfo("Europe/Paris")
SHOWN_TIME = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$")


def catalog(server: RunningServer) -> tuple[dict[str, Any], dict[str, Any]]:
    """A credential and a network source, made over the API: the forms under test are the
    scan's and the source's lifecycle fields."""
    with server.client() as api:
        cred = created(
            api.post(
                "/api/v2/credentials/",
                json={"name": "c", "cred_type": "network", "username": "u", "password": "pw"},
            )
        )
        source = created(
            api.post(
                "/api/v2/sources/",
                json={
                    "name": "office",
                    "source_type": "network",
                    "hosts": [f"{NET}.1"],
                    "port": PORT,
                    "credentials": [cred["id"]],
                },
            )
        )
    return cred, source


def scan_of(server: RunningServer, scan_id: int) -> dict[str, Any]:
    with server.client() as api:
        body: dict[str, Any] = api.get(f"/api/v1/scans/{scan_id}/").json()
    return body


def source_of(server: RunningServer, source_id: int) -> dict[str, Any]:
    with server.client() as api:
        body: dict[str, Any] = api.get(f"/api/v2/sources/{source_id}/").json()
    return body


def shown_firings(page: Page) -> list[str]:
    """The next firings on a scan's page, in UTC."""
    return [t.strip() for t in page.locator("#next-firings li time").all_inner_texts()]


def local_firings(page: Page) -> list[str]:
    """The same, each in the schedule's own time zone."""
    return [t.strip() for t in page.locator("#next-firings li .local").all_inner_texts()]


def field_error(page: Page, field: str) -> str:
    return page.locator(f"#{field}-error").inner_text()


def test_an_operator_schedules_a_scan_and_reads_its_next_firings(
    page: Page, server: RunningServer
) -> None:
    catalog(server)
    page.goto("/scans/new")
    page.get_by_label("Name", exact=True).fill("nightly")
    page.get_by_label("Source 1").select_option(label="office (network)")
    page.get_by_label("Cron expression").fill("0 2 * * 1-5")
    page.get_by_label("Time zone").fill("Europe/Paris")
    page.get_by_label("Windows", exact=True).fill("mon-fri 01:00-05:00 Europe/Paris")
    page.get_by_label("Retries").fill("3")
    page.get_by_label("Delay (seconds)").fill("60")
    page.get_by_label("Backoff factor").fill("1.5")
    page.get_by_role("button", name="Add scan").click()
    expect(page.locator("p.flash")).to_have_text('Scan "nightly" added.')
    scan_id = int(page.url.rstrip("/").rsplit("/", 1)[1])

    expect(page.locator("#scan-schedule")).to_have_text("0 2 * * 1-5 (Europe/Paris)")
    stored = scan_of(server, scan_id)
    assert stored["schedule"]["cron"] == "0 2 * * 1-5"
    assert stored["schedule"]["timezone"] == "Europe/Paris"
    assert stored["retry"] == {"attempts": 3, "delay_s": 60.0, "backoff": 1.5}
    assert len(stored["windows"]) == 1
    firings = [datetime.fromisoformat(t) for t in stored["schedule"]["next_firings"]]
    assert shown_firings(page) == [when(t) for t in firings]
    assert all(SHOWN_TIME.match(t) for t in shown_firings(page))
    for at in firings:
        local = at.astimezone(PARIS)
        assert (local.hour, local.minute, local.weekday() < 5) == (2, 0, True)
    assert local_firings(page) == [
        t.astimezone(PARIS).strftime("%a %Y-%m-%d 02:00 Europe/Paris") for t in firings
    ]
    expect(page.locator("#scan-windows")).to_have_text("mon-fri 01:00-05:00 Europe/Paris")
    expect(page.locator("#scan-retry")).to_have_text("3 times, first after 60 s, each delay × 1.5")  # noqa: RUF001
    shot(page, "scan-schedule")

    # The edit form shows what was saved; a new cron expression moves the firings.
    page.get_by_role("link", name="Edit", exact=True).click()
    expect(page.get_by_label("Cron expression")).to_have_value("0 2 * * 1-5")
    expect(page.get_by_label("Time zone")).to_have_value("Europe/Paris")
    expect(page.get_by_label("Retries")).to_have_value("3")
    expect(page.get_by_label("Delay (seconds)")).to_have_value("60")
    expect(page.get_by_label("Backoff factor")).to_have_value("1.5")
    expect(page.get_by_label("Windows", exact=True)).to_have_value(
        "mon-fri 01:00-05:00 Europe/Paris"
    )
    page.get_by_label("Cron expression").fill("30 6 * * *")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("p.flash")).to_have_text('Scan "nightly" saved.')
    expect(page.locator("#scan-schedule")).to_have_text("30 6 * * * (Europe/Paris)")
    moved = [
        datetime.fromisoformat(t) for t in scan_of(server, scan_id)["schedule"]["next_firings"]
    ]
    assert [t.astimezone(PARIS).strftime("%H:%M") for t in moved] == ["06:30"] * 5
    assert shown_firings(page) == [when(t) for t in moved]
    # The windows and the retry policy were kept as they were.
    assert scan_of(server, scan_id)["windows"] == stored["windows"]
    assert scan_of(server, scan_id)["retry"] == stored["retry"]


@pytest.mark.parametrize(
    ("field", "label", "value", "error_field", "words"),
    [
        ("schedule_cron", "Cron expression", "61 * * * *", "schedule_cron", "schedule"),
        ("schedule_timezone", "Time zone", "Mars/Olympus", "schedule_timezone", "timezone"),
        ("windows", "Windows", "mon-fri 09:00-25:00 UTC", "windows", "windows"),
        ("retry_attempts", "Retries", "many", "retry_attempts", "retry.attempts"),
        ("retry_delay_s", "Delay (seconds)", "-5", "retry_delay_s", "delay_s"),
        ("retry_backoff", "Backoff factor", "soon", "retry_backoff", "retry.backoff"),
    ],
)
def test_a_bad_lifecycle_value_in_the_scan_form_names_its_field_and_saves_nothing(
    page: Page,
    server: RunningServer,
    field: str,
    label: str,
    value: str,
    error_field: str,
    words: str,
) -> None:
    _, source = catalog(server)
    with server.client() as api:
        scan = created(
            api.post(
                "/api/v1/scans/",
                json={
                    "name": "kept",
                    "sources": [source["id"]],
                    "schedule": {"cron": "0 3 * * *", "timezone": "UTC"},
                    "retry": {"attempts": 1},
                },
            )
        )
    before = scan_of(server, scan["id"])
    page.goto(f"/scans/{scan['id']}/edit")
    page.get_by_label(label, exact=True).fill(value)
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#form-error")).to_be_visible()
    message = field_error(page, error_field)
    assert words in message, message
    assert page.locator("#form-error").inner_text() == message
    expect(page.get_by_label(label, exact=True)).to_have_attribute("aria-invalid", "true")
    # What was typed is still there to be corrected.
    expect(page.get_by_label(label, exact=True)).to_have_value(value)
    after = scan_of(server, scan["id"])
    assert {k: v for k, v in after.items() if k != "schedule"} == {
        k: v for k, v in before.items() if k != "schedule"
    }
    assert (after["schedule"]["cron"], after["schedule"]["timezone"]) == ("0 3 * * *", "UTC")
    # Nor does a new scan with that value get made.
    page.goto("/scans/new")
    page.get_by_label("Name", exact=True).fill("refused")
    page.get_by_label("Source 1").select_option(label="office (network)")
    if field != "schedule_cron":
        page.get_by_label("Cron expression").fill("0 2 * * *")
    if field.startswith("retry_") and field != "retry_attempts":
        page.get_by_label("Retries").fill("2")
    page.get_by_label(label, exact=True).fill(value)
    page.get_by_role("button", name="Add scan").click()
    assert words in field_error(page, error_field)
    with server.client() as api:
        assert api.get("/api/v1/scans/", params={"name": "refused"}).json()["count"] == 0


def test_an_operator_sets_a_source_s_windows_and_a_bad_one_is_refused(
    page: Page, server: RunningServer
) -> None:
    _, source = catalog(server)
    page.goto(f"/sources/{source['id']}/edit")
    page.get_by_label("Time windows").fill(
        "mon-fri 08:00-18:00 Europe/Paris\nsat,sun 22:00-06:00 UTC"
    )
    page.get_by_role("button", name="Save").click()
    expect(page.locator("p.flash")).to_contain_text("office")
    stored = source_of(server, source["id"])["windows"]
    assert len(stored) == 2
    assert stored[0]["timezone"] == "Europe/Paris" and stored[1]["timezone"] == "UTC"
    assert (stored[1]["start"], stored[1]["end"]) == ("22:00", "06:00")
    row = page.locator("tr", has_text="office")
    expect(row.locator(".windows")).to_contain_text("08:00-18:00 Europe/Paris")
    expect(row.locator(".windows")).to_contain_text("22:00-06:00 UTC")

    # The form shows them again as typed lines; a bad one is refused and nothing changes.
    page.goto(f"/sources/{source['id']}/edit")
    shown = page.get_by_label("Time windows").input_value().splitlines()
    assert len(shown) == 2 and shown[0].endswith("08:00-18:00 Europe/Paris")
    page.get_by_label("Time windows").fill("mon-fri 08:00-18:00 Europe/Paris\nsomeday 10:00-11:00")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#form-error")).to_be_visible()
    message = field_error(page, "windows")
    assert "windows" in message and "someday" in message, message
    expect(page.get_by_label("Time windows")).to_have_attribute("aria-invalid", "true")
    assert source_of(server, source["id"])["windows"] == stored
    shot(page, "source-windows-refused")

    # A scan of that source shows its own windows; the source's stay on the source.
    with server.client() as api:
        scan = created(api.post("/api/v1/scans/", json={"name": "s", "sources": [source["id"]]}))
    page.goto(f"/scans/{scan['id']}")
    expect(page.locator("#scan-windows")).to_have_text("none: any time")
    expect(page.locator("#scan-schedule")).to_have_text("none: started by hand only")
    expect(page.locator("#next-firings")).to_have_count(0)


def test_the_scan_list_shows_each_scan_s_schedule(page: Page, server: RunningServer) -> None:
    _, source = catalog(server)
    with server.client() as api:
        for name, schedule in (
            ("by-hand", None),
            ("weekdays", {"cron": "0 2 * * 1-5", "timezone": "Europe/Paris"}),
        ):
            created(
                api.post(
                    "/api/v1/scans/",
                    json={"name": name, "sources": [source["id"]], "schedule": schedule},
                )
            )
        first = datetime.fromisoformat(
            api.get("/api/v1/scans/", params={"name": "weekdays"}).json()["results"][0]["schedule"][
                "next_firings"
            ][0]
        )
    page.goto("/scans")
    expect(page.locator("tr", has_text="weekdays")).to_contain_text("0 2 * * 1-5")
    expect(page.locator("tr", has_text="weekdays")).to_contain_text(when(first))
    expect(page.locator("tr", has_text="by-hand")).not_to_contain_text("UTC")
    assert httpx.get(f"{server.url}/api/v1/scans/").status_code == 401
