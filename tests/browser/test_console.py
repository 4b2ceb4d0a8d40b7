"""The console in a real browser against a real farm: log in, run and follow batches, cancel
one, use the playground and see its usage, see another key's batches and usage stay hidden,
watch the pool page show a provider the simulator took down. With
``RELAY_UPDATE_SCREENSHOTS=1`` the pictures of each page go to ``docs/img/console-*.png``
(docs/console.md shows them)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import httpx
from playwright.sync_api import Page, expect

from tests.browser.conftest import KEY_A, KEY_B
from tests.support.farm import Farm

SHOTS = Path(__file__).resolve().parents[2] / "docs" / "img"
LINES = 200


def log_in(page: Page, farm: Farm, key: str = KEY_A, where: str = "") -> None:
    page.goto(f"{farm.url}/{where}")
    page.fill("#login-key", key)
    page.click("#login-form button")
    expect(page.locator("#tabs")).to_be_visible()


def screenshot(page: Page, name: str, tmp_path: Path) -> None:
    """A picture of the page: into docs/img/ with RELAY_UPDATE_SCREENSHOTS=1, else tmp_path."""
    folder = SHOTS if os.environ.get("RELAY_UPDATE_SCREENSHOTS") == "1" else tmp_path
    page.screenshot(path=str(folder / f"console-{name}.png"), full_page=True)


def upload(page: Page, path: Path, model: str) -> None:
    page.goto(page.url.split("#")[0] + "#batches")
    page.set_input_files("#batch-file", str(path))
    page.fill("#batch-model", model)
    page.click("#batch-upload")
    expect(page.locator("#batch-start")).to_be_visible()


def test_a_key_is_asked_for_kept_in_the_tab_and_never_in_the_url(
    page: Page, farm: Farm, tmp_path: Path
) -> None:
    page.goto(f"{farm.url}/")
    expect(page.locator("#login")).to_be_visible()
    page.fill("#login-key", "sk-not-a-key")
    page.click("#login-form button")
    expect(page.locator("#login-error")).to_have_text("That key was refused.")
    screenshot(page, "login", tmp_path)

    log_in(page, farm)
    expect(page.locator("#pool-table tr.provider")).to_have_count(5)
    assert KEY_A not in page.url
    assert page.evaluate("() => sessionStorage.getItem('relay.gatewayKey')") == KEY_A
    page.click("#logout")
    expect(page.locator("#login")).to_be_visible()
    assert page.evaluate("() => sessionStorage.length") == 0


def test_a_200_line_file_runs_to_100_percent_and_its_output_downloads(
    page: Page, farm: Farm, tmp_path: Path
) -> None:
    prompts = tmp_path / "numbers.txt"
    prompts.write_text("".join(f"Say the number {i}\n" for i in range(1, LINES + 1)))
    log_in(page, farm, where="#batches")
    upload(page, prompts, "chat")
    expect(page.locator("#estimate h3")).to_have_text(f"numbers.jsonl: {LINES} lines")
    expect(page.locator("#estimate-text")).to_contain_text("Pooled ceiling")
    screenshot(page, "estimate", tmp_path)

    page.click("#batch-start")
    expect(page.locator("#batch-percent")).to_have_text("100 %", timeout=40_000)
    expect(page.locator("#batch-status")).to_have_text("completed", timeout=20_000)
    expect(page.locator("#batch-counts")).to_contain_text(f"{LINES} done, 0 failed")
    screenshot(page, "batches", tmp_path)

    with page.expect_download() as download:
        page.click("#batch-download-output")
    rows = [json.loads(line) for line in Path(download.value.path()).read_text().splitlines()]
    assert sorted(r["custom_id"] for r in rows) == sorted(f"line-{i}" for i in range(1, 201))
    for row in rows:
        n = row["custom_id"].removeprefix("line-")
        assert row["response"]["status_code"] == 200
        content = row["response"]["body"]["choices"][0]["message"]["content"]
        assert content.endswith(f"Say the number {n}"), content


def test_a_running_batch_is_cancelled_from_the_page(page: Page, farm: Farm, tmp_path: Path) -> None:
    lines = [
        {
            "custom_id": f"slow-{i}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": "slow", "messages": [{"role": "user", "content": f"wait {i}"}]},
        }
        for i in range(40)  # at SLOW_RPM, over a minute of work
    ]
    batch_file = tmp_path / "slow.jsonl"
    batch_file.write_text("".join(json.dumps(line) + "\n" for line in lines))
    log_in(page, farm, where="#batches")
    upload(page, batch_file, "")
    page.click("#batch-start")
    expect(page.locator("#batch-status")).to_have_text("in_progress", timeout=15_000)
    page.click("#batch-cancel")
    expect(page.locator("#batch-status")).to_have_text("cancelled", timeout=20_000)
    counts = page.locator("#batch-counts").inner_text()
    answered = re.search(r"(\d+) done", counts)
    assert answered is not None and int(answered.group(1)) < 40, counts  # stopped early


def test_the_playground_shows_the_answer_and_who_served_it(
    page: Page, farm: Farm, tmp_path: Path
) -> None:
    log_in(page, farm, where="#playground")
    page.fill("#chat-model", "chat")
    page.fill("#chat-prompt", "Hello from the playground")
    page.click("#chat-send")
    expect(page.locator("#chat-answer")).to_contain_text("Hello from the playground")
    provider = page.locator('#chat-served tr[data-header="x-relay-provider"] td')
    expect(provider).to_have_text(re.compile(r"^p-(openai|gemini|claude|ollama)$"))
    expect(page.locator('#chat-served tr[data-header="x-relay-attempts"] td')).to_have_text("1")
    expect(page.locator("#chat-candidates tbody tr")).to_have_count(4)

    page.check("#chat-stream")
    page.fill("#chat-prompt", "And streamed")
    page.click("#chat-send")
    expect(page.locator("#chat-answer")).to_contain_text("And streamed")
    expect(provider).to_have_text(re.compile(r"^p-"))
    screenshot(page, "playground", tmp_path)

    page.click('#tabs a[data-tab="usage"]')
    expect(page.locator("#usage-table tr.total")).to_be_visible()
    total = page.locator("#usage-table tr.total td").nth(3)
    expect(total).not_to_have_text("0")
    screenshot(page, "usage", tmp_path)


def test_another_key_sees_none_of_these_batches(page: Page, farm: Farm) -> None:
    with farm.client(headers={"Authorization": f"Bearer {KEY_A}"}) as http:
        assert http.get("/v1/batches").json()["data"], "the tests above made batches as A"
    log_in(page, farm, key=KEY_B, where="#batches")
    expect(page.locator("#batch-list tbody")).to_have_text("No batch yet.")
    page.click('#tabs a[data-tab="usage"]')
    expect(page.locator("#usage-table tbody")).to_have_text("No usage yet.")


def test_the_pool_page_shows_a_provider_the_simulator_took_down(
    page: Page, farm: Farm, tmp_path: Path
) -> None:
    log_in(page, farm, where="#pool")
    row = page.locator('#pool-table tr.provider[data-provider="p-openai"]')
    expect(row.locator("td.breaker")).to_have_text("closed")
    expect(page.locator("#workers-table tbody tr")).to_have_count(1)

    farm.sim("p-openai", outage=True)
    try:
        with farm.client(headers={"Authorization": f"Bearer {KEY_A}"}) as http:
            for _ in range(3):
                body = {
                    "model": "p-openai/p-openai-m",
                    "messages": [{"role": "user", "content": "x"}],
                }
                assert http.post("/v1/chat/completions", json=body).status_code >= 500
        expect(row.locator("td.breaker")).to_have_text("open", timeout=10_000)
        expect(row.locator("td.errors")).not_to_have_text("-")
        screenshot(page, "pool", tmp_path)
    finally:
        farm.sim("p-openai", outage=False)


def test_the_pool_endpoint_needs_a_key(farm: Farm) -> None:
    assert httpx.get(f"{farm.url}/v1/relay/pool").status_code == 401
