"""Credentials, sources and scans in the browser: a lab scan made and started through the
forms, edits that keep secrets without ever showing them, the services' refusals shown on
the forms, search and paging, an API source type, and a phone-wide screen."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from quipu.lab import Lab
from tests.browser.conftest import new_context, shot, sign_in
from tests.e2e.scans import created
from tests.labs import running_lab
from tests.servers import RunningServer, register_secret

pytestmark = [pytest.mark.browser, pytest.mark.lab]

SERVER_ENV = {"QUIPU_DISPATCH_INTERVAL_S": "0.2", "QUIPU_SSH_CONNECT_TIMEOUT_S": "6"}
SAT_PASSWORD = "Sat-Secret-pw-1"
PAGED_PASSWORD = "Paged-Secret-pw-2"
register_secret(SAT_PASSWORD, PAGED_PASSWORD)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    root = tmp_path_factory.mktemp("ui-catalog-lab") / "lab"
    with running_lab(root=root, hosts=2, net="127.0.237", port=2237) as lab:
        yield lab


def key_lines(lab: Lab) -> list[str]:
    lines = [
        line.strip()
        for line in lab.sudo_key_path.read_text().splitlines()
        if line.strip() and "PRIVATE KEY" not in line
    ]
    register_secret(*lines)
    return lines


def assert_no_secret(page: Page, secrets: list[str]) -> None:
    html = page.content()
    leaked = [s for s in secrets if s in html]
    assert not leaked, f"{page.url} holds a secret"


def flash(page: Page) -> str:
    return page.locator("p.flash").first.inner_text()


def test_a_lab_scan_made_in_the_forms_runs_to_completed(
    page: Page, server: RunningServer, lab: Lab
) -> None:
    secrets = key_lines(lab)
    # A network credential with the lab's SSH key pasted in.
    page.goto("/credentials")
    page.get_by_label("Add a credential of type").select_option("network")
    page.get_by_role("button", name="Add credential").click()
    expect(page.get_by_role("heading", name="Add a network credential")).to_be_visible()
    page.get_by_label("Name", exact=True).fill("lab-key")
    page.get_by_label("Username").fill(lab.sudo_user)
    page.get_by_label("SSH private key").fill(lab.sudo_key_path.read_text())
    page.get_by_role("button", name="Add credential").click()
    expect(page.locator("p.flash")).to_have_text('Credential "lab-key" added.')
    expect(page.locator("#credentials")).to_contain_text("SSH key")
    assert_no_secret(page, secrets)
    shot(page, "credentials")

    # A network source of the lab hosts; a bad range first, refused in the service's words.
    page.goto("/sources")
    page.get_by_label("Add a source of type").select_option("network")
    page.get_by_role("button", name="Add source").click()
    page.get_by_label("Name", exact=True).fill("lab")
    page.get_by_label("Hosts", exact=True).fill(f"{lab.hosts[0].address}\n10.0.0.0/33")
    page.get_by_label("Port").fill(str(lab.hosts[0].port))
    page.get_by_label("Credential 1").select_option(label="lab-key")
    page.get_by_role("button", name="Add source").click()
    expect(page.locator("#form-error")).to_contain_text(
        "hosts entry '10.0.0.0/33' is not valid ('33' is not a valid netmask)"
    )
    expect(page.locator("#hosts-error")).to_contain_text("10.0.0.0/33")
    expect(page.get_by_label("Hosts", exact=True)).to_have_attribute("aria-invalid", "true")
    with server.client() as api:
        assert api.get("/api/v2/sources/").json()["count"] == 0
    # What was typed is still there: only the hosts need fixing.
    expect(page.get_by_label("Port")).to_have_value(str(lab.hosts[0].port))
    expect(page.get_by_label("Credential 1")).to_have_value(re.compile(r"\d+"))
    page.get_by_label("Hosts", exact=True).fill(
        ", ".join(h.address for h in lab.hosts)  # comma separated, as qpc takes them
    )
    shot(page, "source-form")
    page.get_by_role("button", name="Add source").click()
    expect(page.locator("p.flash")).to_have_text('Source "lab" added.')
    expect(page.locator("#sources")).to_contain_text(lab.hosts[1].address)
    shot(page, "sources")

    # A scan of it, submitted from the keyboard; started from its page.
    page.goto("/scans/new")
    page.get_by_label("Source 1").select_option(label="lab (network)")
    page.get_by_label("Max concurrency").fill("4")
    page.get_by_label("Name", exact=True).fill("lab-scan")
    page.get_by_label("Name", exact=True).press("Enter")
    expect(page.locator("p.flash")).to_have_text('Scan "lab-scan" added.')
    expect(page.locator(".facts")).to_contain_text("4")
    shot(page, "scan")
    page.get_by_role("button", name="Start scan").click()
    expect(page).to_have_url(re.compile(r"/jobs/\d+$"))
    expect(page.locator("#job-status")).to_have_text("completed", timeout=60_000)
    expect(page.locator("#results")).to_contain_text(lab.hosts[0].address)
    page.goto("/scans")
    expect(page.locator("#scans")).to_contain_text("completed")
    shot(page, "scans")

    # An edit that does not retype the key keeps it, and no page shows it.
    page.goto("/credentials")
    page.get_by_role("link", name="Edit credential lab-key").click()
    expect(page.get_by_label("SSH private key")).to_have_value("")
    expect(page.locator("#ssh_key-hint")).to_contain_text("leave empty to keep the current one")
    assert_no_secret(page, secrets)
    page.get_by_label("Vault secret key").fill("password")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#vault_secret_key-error")).to_have_text(
        "vault_secret_key is allowed only with a vault_secret_path."
    )
    assert_no_secret(page, secrets)
    shot(page, "credential-form")
    page.get_by_label("Vault secret key").fill("")
    page.get_by_label("Name", exact=True).fill("lab-key-2")
    page.get_by_label("Become user").fill("root")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("p.flash")).to_have_text('Credential "lab-key-2" saved.')
    assert_no_secret(page, secrets)
    with server.client() as api:
        (cred,) = api.get("/api/v2/credentials/").json()["results"]
        assert cred["name"] == "lab-key-2" and cred["has_ssh_key"] and not cred["has_password"]

    # A credential a source uses is not deleted: the server's refusal is shown.
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete credential lab-key-2").click()
    expect(page.locator("p.flash.error")).to_have_text(
        'Credential "lab-key-2" is used by source "lab"; remove it from that source first.'
    )
    expect(page.locator("#credentials")).to_contain_text("lab-key-2")
    page.once("dialog", lambda dialog: dialog.accept())
    page.goto("/sources")
    page.get_by_role("button", name="Delete source lab").click()
    expect(page.locator("p.flash.error")).to_contain_text('is used by scan "lab-scan"')


def test_search_and_paging_of_a_list(page: Page, server: RunningServer) -> None:
    with server.client() as api:
        for i in range(23):
            body = {
                "name": f"paged-{i:02d}",
                "cred_type": "network",
                "username": "u",
                "password": PAGED_PASSWORD,
            }
            created(api.post("/api/v2/credentials/", json=body))
    page.goto("/credentials")
    expect(page.locator("#count")).to_have_text("23 credentials.")
    expect(page.locator("#credentials tbody tr")).to_have_count(20)
    expect(page.locator(".pager")).to_contain_text("Page 1 of 2")
    page.get_by_role("link", name="Next").click()
    expect(page.locator(".pager")).to_contain_text("Page 2 of 2")
    expect(page.locator("#credentials tbody tr")).to_have_count(3)
    expect(page.locator("#credentials")).to_contain_text("paged-22")
    expect(page.locator("#credentials")).to_contain_text("password")
    assert_no_secret(page, [PAGED_PASSWORD])
    page.get_by_label("Search credentials by name").fill("GED-1")
    page.get_by_label("Search credentials by name").press("Enter")
    expect(page.locator("#count")).to_have_text("10 credentials matching “GED-1”.")
    expect(page.locator(".pager")).to_have_count(0)
    page.get_by_label("Search credentials by name").fill("nothing-like-it")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#count")).to_have_text("0 credentials matching “nothing-like-it”.")


def test_a_satellite_source_with_its_ssl_options(
    page: Page, server: RunningServer, browser: Browser
) -> None:
    page.goto("/credentials/new?cred_type=satellite")
    # Only a satellite credential's fields: no SSH key, token or become.
    expect(page.get_by_label("SSH private key")).to_have_count(0)
    expect(page.get_by_label("API token")).to_have_count(0)
    for field in page.locator(
        "#credential-form :is(input:not([type=hidden]), select, textarea)"
    ).all():
        field_id = field.get_attribute("id")
        assert page.locator(f"label[for='{field_id}']").count() == 1, field_id
    page.get_by_label("Name", exact=True).fill("sat-admin")
    page.get_by_label("Password", exact=True).fill(SAT_PASSWORD)
    page.get_by_role("button", name="Add credential").click()
    expect(page.locator("#form-error")).to_have_text("username is required.")
    expect(page.locator("#username-error")).to_have_text("username is required.")
    # The password typed is not sent back: it is typed again.
    expect(page.get_by_label("Password", exact=True)).to_have_value("")
    assert_no_secret(page, [SAT_PASSWORD])
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password", exact=True).fill(SAT_PASSWORD)
    page.get_by_role("button", name="Add credential").click()
    expect(page.locator("p.flash")).to_have_text('Credential "sat-admin" added.')

    page.goto("/sources/new?source_type=satellite")
    expect(page.get_by_label("Exclude hosts")).to_have_count(0)
    page.get_by_label("Name", exact=True).fill("satellite")
    page.get_by_label("Host", exact=True).fill("satellite.example.com")
    page.get_by_label("Port").fill("70000")
    page.get_by_label("Credential 1").select_option(label="sat-admin")
    expect(page.get_by_label("Verify the server's SSL certificate")).to_be_checked()
    page.get_by_label("Verify the server's SSL certificate").uncheck()
    page.get_by_label("SSL protocol").select_option("TLSv1_2")
    page.get_by_label("Proxy URL").fill("ftp://proxy")
    page.get_by_role("button", name="Add source").click()
    expect(page.locator("#port-error")).to_have_text(
        "port must be between 1 and 65535 (got 70000)."
    )
    page.get_by_label("Port").fill("8443")
    page.get_by_role("button", name="Add source").click()
    expect(page.locator("#proxy_url-error")).to_contain_text("proxy_url must be an http://")
    page.get_by_label("Proxy URL").fill("")
    with server.client() as api:
        assert api.get("/api/v2/sources/").json()["count"] == 0
    page.get_by_role("button", name="Add source").click()
    expect(page.locator("p.flash")).to_have_text('Source "satellite" added.')
    with server.client() as api:
        (source,) = api.get("/api/v2/sources/").json()["results"]
    assert source["hosts"] == ["satellite.example.com"] and source["port"] == 8443
    assert source["ssl_cert_verify"] is False and source["ssl_protocol"] == "TLSv1_2"
    assert source["credentials"][0]["name"] == "sat-admin"
    page.get_by_role("link", name="Edit source satellite").click()
    expect(page.get_by_label("Verify the server's SSL certificate")).not_to_be_checked()
    expect(page.get_by_label("SSL protocol")).to_have_value("TLSv1_2")
    page.get_by_label("Disable SSL (plain HTTP)").check()
    page.get_by_role("button", name="Save").click()
    expect(page.locator("p.flash")).to_have_text('Source "satellite" saved.')
    with server.client() as api:
        edited = api.get(f"/api/v2/sources/{source['id']}/").json()
    assert edited["disable_ssl"] is True and edited["port"] == 8443

    # 390 px wide: nothing is wider than the screen; tables scroll inside their box.
    context = new_context(browser, server, width=390)
    phone = context.new_page()
    sign_in(phone)
    expect(phone.get_by_role("heading", name="Overview")).to_be_visible()
    paths = ["/credentials", "/sources", f"/sources/{source['id']}/edit", "/scans/new"]
    for path in [*paths, "/sources/new?source_type=network", "/credentials/new?cred_type=network"]:
        phone.goto(path)
        wide = phone.evaluate(
            "() => Array.from(document.querySelectorAll('body *')).filter(e =>"
            " e.getBoundingClientRect().right > window.innerWidth + 1 && !e.closest('.scroll'))"
            ".map(e => e.tagName + '#' + e.id)"
        )
        width = phone.evaluate("document.documentElement.scrollWidth")
        assert width <= 390 and not wide, f"{path} is {width} px wide: {wide}"
    shot(phone, "sources-narrow")
    context.close()
