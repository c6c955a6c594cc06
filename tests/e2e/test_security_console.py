"""The audit trail in the console, in a real browser: search, chain check, export; through nginx too."""

from __future__ import annotations

import pytest
from browser import Console, login, shot
from playwright.sync_api import Page, expect

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.fleet]


def test_the_audit_page_searches_checks_the_chain_and_exports(page: Page, console: Console) -> None:
    """Logins are listed, a search by action narrows the list, the chain checks intact, and CSV export downloads."""
    login(page, console)
    page.goto(console.url + "#/audit")
    expect(page.locator("#audit-body tr[data-audit]").first).to_be_visible()
    page.fill("#a-action", "auth.login")
    page.click("#audit-form button[type=submit]")
    expect(page.locator("#audit-body tr[data-audit]").first).to_contain_text("auth.login")
    rows = page.locator("#audit-body tr[data-audit]")
    for i in range(rows.count()):
        expect(rows.nth(i)).to_contain_text("auth.login")
    page.click("#audit-verify")
    expect(page.locator("#audit-chain")).to_contain_text("intact")
    shot(page, f"audit-{console.mode}")
    with page.expect_download() as dl:
        page.click("#audit-export-csv")
    assert dl.value.suggested_filename == "small-yi-audit.csv"
