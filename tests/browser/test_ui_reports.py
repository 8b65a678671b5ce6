"""Reports in the browser: the list, a report's systems sorted, searched, filtered and paged,
one system's facts and sources, every download, the overview's estate chart, and a fact
holding markup shown as text (never run)."""

from __future__ import annotations

import csv
import io
import json
import re
import tarfile
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import new_context, shot, sign_in
from tests.estates import established_details
from tests.servers import RunningServer

pytestmark = pytest.mark.browser

SCRIPT = "<script>alert(1)</script>"
FLEET = 60
"""Systems of the extra network source: more than a page of 50."""


def fleet_source() -> dict[str, Any]:
    """A network source of ``FLEET`` systems; one's OS name (and a raw fact) holds markup."""
    facts = []
    for n in range(1, FLEET + 1):
        facts.append(
            {
                "connection_host": f"10.9.0.{n}",
                "has_sudo": True,
                "uname_hostname": f"fleet{n:02d}.example.com",
                "uname_processor": "x86_64" if n % 3 else "aarch64",
                "etc_release_name": SCRIPT if n == 7 else ("CentOS Stream" if n % 2 else "Fedora"),
                "etc_release_version": "9",
                "etc_machine_id": f"{n:032x}",
                "dmi_system_uuid": f"4c4c4544-0009-4000-8000-{n:012x}",
                "cpu_count": n % 8 + 1,
                "virt_what_type": "kvm" if n % 4 == 0 else "bare metal",
                "ifconfig_mac_addresses": [f"52:54:00:09:00:{n:02x}"],
                "ifconfig_ip_addresses": [f"10.9.0.{n}"],
                "motd": f"Welcome {SCRIPT}" if n == 7 else "Welcome",
            }
        )
    details = established_details()
    template = details["sources"][0]
    return {**template, "source_name": "fleet", "source_type": "network", "facts": facts}


def upload(server: RunningServer) -> tuple[int, int]:
    """A report of the established estate plus the fleet; (report id, its systems)."""
    details = established_details()
    details["sources"].append(fleet_source())
    with server.client() as api:
        made = api.post("/api/v1/reports/", json=details)
        assert made.status_code == 201, made.text
        report_id = int(made.json()["report_id"])
        summary = api.get(f"/api/v1/reports/{report_id}/").json()
    return report_id, int(summary["deployments_count"])


def rows(page: Page) -> Any:
    return page.locator("table.systems tbody tr")


def column(page: Page, heading: str) -> list[str]:
    """The texts of a column of the systems table, by its heading's position."""
    headings = [h.strip() for h in page.locator("table.systems thead th").all_inner_texts()]
    index = next(i for i, text in enumerate(headings) if text.split("\n")[0].startswith(heading))
    return page.locator(f"table.systems tbody tr td:nth-child({index + 1})").all_inner_texts()


def downloaded(page: Page, link: str, where: Path) -> tuple[str, bytes]:
    with page.expect_download() as info:
        page.get_by_role("link", name=link, exact=True).click()
    download = info.value
    path = where / download.suggested_filename
    download.save_as(path)
    return download.suggested_filename, path.read_bytes()


def test_a_report_browsed_searched_opened_and_downloaded(
    page: Page, server: RunningServer, browser: Browser, tmp_path: Path
) -> None:
    report_id, systems = upload(server)
    assert systems > 50
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

    # The overview pictures the latest report's estate.
    page.goto("/")
    estate = page.locator("section", has=page.get_by_role("heading", name="Estate"))
    expect(estate).to_contain_text(f"{systems} systems in report {report_id}")
    by_os = page.get_by_role("list", name="By operating system")
    expect(by_os.get_by_role("listitem").filter(has_text="CentOS Stream")).to_contain_text("30")
    expect(by_os.get_by_role("link", name=SCRIPT)).to_be_visible()
    expect(page.get_by_role("list", name="By infrastructure type")).to_contain_text("physical")
    assert page.locator("svg rect.fill").count() >= 4
    shot(page, "overview-estate")

    # The list, then the report.
    page.get_by_role("link", name="Reports", exact=True).click()
    expect(page.get_by_role("heading", name="Reports")).to_be_visible()
    expect(page.get_by_role("row").filter(has_text=f"Report {report_id}")).to_contain_text(
        "uploaded"
    )
    shot(page, "reports")
    page.get_by_role("link", name=f"Report {report_id}", exact=True).click()
    expect(page.get_by_role("heading", name=re.compile(f"^Report {report_id}"))).to_be_visible()
    expect(page.get_by_role("status")).to_have_text(f"{systems} systems · page 1 of 2.")
    expect(rows(page)).to_have_count(50)
    names = column(page, "Name")
    assert names == sorted(names, key=str.casefold)

    # Sorted by OS: the markup sorts first ("<") and shows as text; again: descending.
    page.get_by_role("link", name=re.compile(r"^OS\s*, sort ascending$")).click()
    expect(page).to_have_url(re.compile(r"sort=os_name"))
    expect(page.locator("th[aria-sort=ascending]")).to_contain_text("OS")
    assert column(page, "OS")[0] == SCRIPT
    page.get_by_role("link", name=re.compile(r"^OS\W*, sorted ascending")).click()
    expect(page.locator("th[aria-sort=descending]")).to_contain_text("OS")
    shown = [text for text in column(page, "OS") if text != "—"]
    assert shown == sorted(shown, key=str.casefold, reverse=True)

    # Paged: the second page holds the rest, in the same order.
    page.get_by_role("link", name="Next").click()
    expect(page.get_by_role("status")).to_have_text(f"{systems} systems · page 2 of 2.")
    expect(rows(page)).to_have_count(systems - 50)
    expect(page).to_have_url(re.compile(r"page_no=2.*sort=os_name"))

    # Search by keyboard: by name, then by IP address.
    search = page.get_by_label("Search")
    search.fill("db1")
    search.press("Enter")
    expect(page.get_by_role("status")).to_have_text(f"1 system of {systems}.")
    expect(rows(page).first).to_contain_text("db1")
    page.get_by_label("Search").fill("10.9.0.1")
    page.get_by_role("button", name="Apply").click()
    # 10.9.0.1 and 10.9.0.10 .. 10.9.0.19
    expect(page.get_by_role("status")).to_have_text(f"11 systems of {systems}.")

    # Filters: OS and source type and infrastructure type together.
    page.get_by_role("link", name="Clear").click()
    page.get_by_label("Operating system").select_option(label=f"Fedora ({FLEET // 2})")
    page.get_by_label("Source type").select_option("network")
    page.get_by_label("Infrastructure type").select_option("virtualized")
    page.get_by_label("Systems per page").select_option("100")
    page.get_by_role("button", name="Apply").click()
    # Fedora is every even n, virtualized every n divisible by 4
    expect(page.get_by_role("status")).to_have_text(f"{FLEET // 4} systems of {systems}.")
    assert set(column(page, "OS")) == {"Fedora"}
    assert set(column(page, "Infrastructure")) == {"virtualized"}
    shot(page, "report")
    page.get_by_role("link", name="Clear").click()

    # The system whose facts hold markup: every fact, its source, raw facts, all as text.
    page.get_by_label("Search").fill("fleet07")
    page.get_by_label("Search").press("Enter")
    expect(rows(page)).to_have_count(1)
    assert column(page, "OS") == [SCRIPT]
    shot(page, "report-search")
    page.get_by_role("link", name="fleet07.example.com").click()
    expect(page.get_by_role("heading", name=re.compile("^fleet07.example.com"))).to_be_visible()
    facts = page.get_by_role("table").filter(has_text="Raw fact")
    os_row = facts.get_by_role("row").filter(has=page.get_by_role("rowheader", name="os_name"))
    expect(os_row).to_contain_text(SCRIPT)
    expect(os_row).to_contain_text("fleet (network)")
    expect(os_row).to_contain_text("etc_release_name")
    ip_row = facts.get_by_role("row").filter(has=page.get_by_role("rowheader", name="ip_addresses"))
    expect(ip_row).to_contain_text("10.9.0.7")
    fleet = page.locator("section.source-facts", has_text="fleet (network)")
    expect(fleet.locator("details").first).to_contain_text(f"Welcome {SCRIPT}")
    expect(fleet.locator("details")).to_have_count(1)
    assert page.locator("script:not([src])").count() == 0
    shot(page, "system")

    # Back to the report, where it was left.
    page.get_by_role("link", name=f"Report {report_id}").click()
    expect(page.get_by_label("Search")).to_have_value("fleet07")

    # A system seen by three sources lists each with its records.
    page.get_by_label("Search").fill("web1")
    page.get_by_label("Search").press("Enter")
    page.locator("table.systems tbody a").first.click()
    for source in ("lab (network)", "sat (satellite)", "vc (vcenter)"):
        expect(
            page.locator("section.source-facts", has_text=source).locator("details")
        ).to_have_count(1)
    page.go_back()

    # Every download, named as the API names it, with content that parses.
    files: dict[str, bytes] = {}
    for link in (
        "Deployments (JSON)",
        "Deployments (CSV)",
        "Details (JSON)",
        "Details (CSV)",
        "Every report (.tar.gz)",
    ):
        name, body = downloaded(page, link, tmp_path)
        files[name] = body
    assert set(files) == {
        f"report_{report_id}_deployments.json",
        f"report_{report_id}_deployments.csv",
        f"report_{report_id}_details.json",
        f"report_{report_id}_details.csv",
        f"report_id_{report_id}.tar.gz",
    }
    deployments = json.loads(files[f"report_{report_id}_deployments.json"])
    assert len(deployments["system_fingerprints"]) == systems
    assert json.loads(files[f"report_{report_id}_details.json"])["report_type"] == "details"
    table = list(csv.reader(io.StringIO(files[f"report_{report_id}_deployments.csv"].decode())))
    assert table[0][:2] == ["name", "os_name"] and len(table) == systems + 1
    assert files[f"report_{report_id}_details.csv"].decode().startswith("Report ID,")
    with tarfile.open(fileobj=io.BytesIO(files[f"report_id_{report_id}.tar.gz"])) as archive:
        members = archive.getnames()
    assert f"report_id_{report_id}/deployments.json" in members

    # A download needs the session: signed out, it sends to sign-in.
    anonymous = (
        page.context.browser.new_context(base_url=server.url) if page.context.browser else None
    )
    assert anonymous is not None
    try:
        answer = anonymous.request.get(
            f"/reports/{report_id}/files/deployments.json", max_redirects=0
        )
        assert answer.status == 303 and answer.headers["location"].startswith("/login")
    finally:
        anonymous.close()
    assert dialogs == []

    # Readable 390 px wide: only the tables scroll, inside their box.
    narrow = new_context(browser, server, width=390)
    try:
        small = narrow.new_page()
        sign_in(small)
        small.goto(f"/reports/{report_id}")
        expect(rows(small)).to_have_count(50)
        assert small.evaluate("document.documentElement.scrollWidth") <= 390
        shot(small, "report-390")
        small.goto(f"/reports/{report_id}/systems/1")
        assert small.evaluate("document.documentElement.scrollWidth") <= 390
        shot(small, "system-390")
    finally:
        narrow.close()
    assert not narrow.outside  # type: ignore[attr-defined]


def test_a_missing_report_or_system_is_a_page(page: Page, server: RunningServer) -> None:
    report_id, systems = upload(server)
    page.goto("/reports/999")
    expect(page.get_by_text("Report 999 does not exist.")).to_be_visible()
    page.goto(f"/reports/{report_id}/systems/{systems + 1}")
    expect(page.get_by_text(f"Report {report_id} has no system {systems + 1}.")).to_be_visible()
    # Odd query values: the last page instead, the default sort and size; markup searched.
    page.goto(f"/reports/{report_id}?page_no=99&sort=bogus&per_page=7&q={quote(SCRIPT)}")
    expect(page.get_by_label("Search")).to_have_value(SCRIPT)
    expect(page.get_by_role("status")).to_have_text(f"1 system of {systems}.")
    expect(page.get_by_label("Systems per page")).to_have_value("50")
    page.goto(f"/reports/{report_id}?q=no-such-system")
    expect(page.get_by_role("status")).to_have_text(f"0 systems of {systems}.")
    expect(rows(page)).to_have_count(0)
