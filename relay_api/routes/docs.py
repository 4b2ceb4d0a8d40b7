"""``/docs`` (Swagger UI) and ``/redoc`` (ReDoc) from assets served by the API itself.

FastAPI's own pages load their scripts from a CDN, so they are blank offline. These serve the
same pages with every script, stylesheet and icon under ``/static/vendor/`` (copied from the npm
packages ``swagger-ui-dist`` and ``redoc``; ``relay_api/static/vendor/README.md`` says which
versions and how to refresh them), and ReDoc without Google Fonts.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"
STATIC_URL = "/static"
VENDOR = f"{STATIC_URL}/vendor"
FAVICON = f"{VENDOR}/swagger-ui/favicon-32x32.png"

router = APIRouter(include_in_schema=False)


@router.get("/docs")
async def swagger_ui() -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="Relay - API docs",
        swagger_js_url=f"{VENDOR}/swagger-ui/swagger-ui-bundle.js",
        swagger_css_url=f"{VENDOR}/swagger-ui/swagger-ui.css",
        swagger_favicon_url=FAVICON,
    )


@router.get("/redoc")
async def redoc() -> HTMLResponse:
    return get_redoc_html(
        openapi_url="/openapi.json",
        title="Relay - API reference",
        redoc_js_url=f"{VENDOR}/redoc/redoc.standalone.js",
        redoc_favicon_url=FAVICON,
        with_google_fonts=False,
    )


def install_static(app: FastAPI) -> None:
    """Serve ``relay_api/static/`` at ``/static`` and the offline docs pages."""
    app.mount(STATIC_URL, StaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(router)
