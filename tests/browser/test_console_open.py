"""The console of a farm with no gateway keys: every page opens and works without a login
(the playground answers, the pool lists the providers, a batch runs to 100 % and its output
downloads, the usage counts what was sent).

A module of its own: its farm starts once the keyed farm of test_console.py has stopped (two
in-process Celery workers at once share Celery's global worker state).
"""

from __future__ import annotations

import json
from pathlib import Path

from playwright.sync_api import Page, Route, expect

from tests.support.farm import Farm


def test_with_no_gateway_keys_every_page_works_without_a_login(
    page: Page, open_farm: Farm, tmp_path: Path
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

    prompts = tmp_path / "open.txt"
    prompts.write_text("".join(f"open line {i}\n" for i in range(1, 21)))
    page.set_input_files("#batch-file", str(prompts))
    page.fill("#batch-model", "chat")
    page.click("#batch-upload")
    expect(page.locator("#estimate h3")).to_have_text("open.jsonl: 20 lines")
    page.click("#batch-start")
    expect(page.locator("#batch-percent")).to_have_text("100 %", timeout=40_000)
    expect(page.locator("#batch-status")).to_have_text("completed", timeout=20_000)
    with page.expect_download() as download:
        page.click("#batch-download-output")
    rows = [json.loads(line) for line in Path(download.value.path()).read_text().splitlines()]
    assert len(rows) == 20
    for row in rows:
        n = row["custom_id"].removeprefix("line-")
        content = row["response"]["body"]["choices"][0]["message"]["content"]
        assert content.endswith(f"open line {n}"), content

    page.click('#tabs a[data-tab="usage"]')
    expect(page.locator("#usage-table tr.total")).to_be_visible()
    expect(page.locator("#usage-table tr.total td").nth(3)).not_to_have_text("0")


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
