"""A real farm (simulator, Redis, a Celery worker, the API) and Debian's Chromium, driven by
Playwright, for the console's tests. One farm and one browser serve the whole module.

The browser is the system's ``/usr/bin/chromium`` (``.ci/run`` installs it from Debian's
packages): nothing here downloads a browser build, and ``playwright install`` is never run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright
from pydantic import SecretStr

from tests.integration.batch.conftest import BATCH_DEFAULTS
from tests.integration.farm.conftest import four_providers
from tests.support.farm import Farm, farm_factory, model, sim_provider

CHROMIUM = os.environ.get("RELAY_TEST_CHROMIUM", "/usr/bin/chromium")
KEY_A = "sk-console-alice-0123456789"
KEY_B = "sk-console-bob-9876543210"
# A condition the page must reach may take this long on a loaded 2-core machine (a passing run
# waits only as long as it takes).
expect.set_options(timeout=20_000)
SLOW_RPM = 30  # p-slow serves "slow" at one line every 2 s: a batch that is still running


def providers(sim_url: str) -> list[dict[str, Any]]:
    """The four providers serving "chat" (paced at 600 RPM each), and one slow one."""
    fast = four_providers(sim_url, rpm=600, tpm=200_000, rpd=20_000)
    slow = sim_provider("p-slow", "openai", sim_url, [model("p-slow-m", aliases=["slow"])])
    slow["limits"] = {"rpm": SLOW_RPM}
    return [*fast, slow]


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Farm]:
    folder = tmp_path_factory.mktemp("console")
    settings = {
        **BATCH_DEFAULTS,
        "storage_dir": folder / "files",
        "api_keys": [SecretStr(KEY_A), SecretStr(KEY_B)],
        "breaker_failures": 2,  # the pool test opens a breaker with a few calls
        "breaker_cooldown_s": 60.0,  # and it stays open while the page is read
    }
    with farm_factory(folder, providers, **settings) as make:
        yield make(sim_overrides={"latency_ms": 5, "jitter_ms": 5})


@pytest.fixture(scope="module")
def open_farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Farm]:
    """A farm with no gateway keys: the console opens without a login."""
    folder = tmp_path_factory.mktemp("console-open")
    with farm_factory(folder, four_providers, storage_dir=folder / "files") as make:
        yield make(sim_overrides={"latency_ms": 5})


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"no {CHROMIUM}: apt-get install chromium (.ci/run does)")
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh tab (its own sessionStorage) that fails the test on any script error."""
    context = browser.new_context(viewport={"width": 1280, "height": 860}, accept_downloads=True)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    yield tab
    context.close()
    assert not errors, errors
