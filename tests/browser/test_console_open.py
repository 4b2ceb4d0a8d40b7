"""The console of a farm with no gateway keys: every page opens without a login.

A module of its own: its farm starts once the keyed farm of test_console.py has stopped (two
in-process Celery workers at once share Celery's global worker state).
"""

from __future__ import annotations

from playwright.sync_api import Page, Route, expect

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


def test_the_api_docs_render_with_every_other_origin_cut_off(page: Page, open_farm: Farm) -> None:
    elsewhere: list[str] = []

    def same_origin_only(route: Route) -> None:
        if route.request.url.startswith(open_farm.url):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    page.route("**/*", same_origin_only)
    page.goto(f"{open_farm.url}/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Relay")
    expect(page.locator(".opblock-summary-path", has_text="/v1/relay/pool")).to_be_visible()
    page.goto(f"{open_farm.url}/redoc")
    expect(page.locator("h1", has_text="Relay")).to_be_visible(timeout=15_000)
    expect(page.get_by_text("/v1/relay/pool").first).to_be_attached()
    assert elsewhere == []
