"""``/docs`` and ``/redoc`` work offline: every asset they name is same-origin and served."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest

from relay_api.app import create_app
from relay_core.settings import Settings

ASSET = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|url:\s*'([^']+)'""")


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings())  # no lifespan: these pages need no Redis
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://relay.test") as c:
        yield c


def assets(html: str) -> list[str]:
    return [a or b for a, b in ASSET.findall(html)]


@pytest.mark.parametrize(("page", "script"), [("/docs", "swagger-ui"), ("/redoc", "redoc")])
async def test_a_docs_page_names_only_same_origin_assets_and_they_are_served(
    client: httpx.AsyncClient, page: str, script: str
) -> None:
    reply = await client.get(page)
    assert reply.status_code == 200
    found = assets(reply.text)
    assert any(script in a and a.endswith(".js") for a in found), found
    for url in found:
        assert url.startswith("/") and not url.startswith("//"), f"{page} loads {url}"
        served = await client.get(url)
        assert served.status_code == 200, url
        assert len(served.content) > 0, url
    assert "fonts.googleapis" not in reply.text


async def test_a_path_outside_the_static_folder_is_not_served(client: httpx.AsyncClient) -> None:
    reply = await client.get("/static/..%2F..%2Fapp.py")
    assert reply.status_code == 404
