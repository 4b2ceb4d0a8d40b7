"""The console of a farm with no gateway keys: every page opens without a login.

A module of its own: its farm starts once the keyed farm of test_console.py has stopped (two
in-process Celery workers at once share Celery's global worker state).
"""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.support.farm import Farm


def test_with_no_gateway_keys_the_console_opens_without_a_login(
    page: Page, open_farm: Farm
) -> None:
    page.goto(f"{open_farm.url}/console#playground")
    expect(page.locator("#who")).to_have_text("open: no gateway keys configured")
    expect(page.locator("#login")).to_be_hidden()
    expect(page.locator("#logout")).to_be_hidden()
    page.fill("#chat-model", "chat")
    page.fill("#chat-prompt", "open door")
    page.click("#chat-send")
    expect(page.locator("#chat-answer")).to_contain_text("open door")
    page.click('#tabs a[data-tab="pool"]')
    expect(page.locator("#pool-table tr.provider")).to_have_count(4)
    page.click('#tabs a[data-tab="batches"]')
    expect(page.locator("#batch-list tbody")).to_have_text("No batch yet.")
