"""``/docs`` (Swagger UI) and ``/redoc`` (ReDoc) from assets served by the API itself.

FastAPI's own pages load their scripts from a CDN, so they are blank offline. These serve the
same pages with every script, stylesheet and icon under ``/static/vendor/`` (copied from the npm
packages ``swagger-ui-dist`` and ``redoc``; ``relay_api/static/vendor/README.md`` says which
versions and how to refresh them), ReDoc without Google Fonts and Swagger UI without its
online validator badge. A Content-Security-Policy keeps each page on this origin: the one thing
left that would still go out (ReDoc's "API docs by Redocly" logo, an image on its CDN) is not
fetched, and the page hides it.
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

# FastAPI's pages start the viewers with an inline script; ReDoc searches in a blob: worker.
CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; worker-src 'self' blob:; frame-ancestors 'none'; base-uri 'none'"
)

router = APIRouter(include_in_schema=False)


def _same_origin(page: HTMLResponse) -> HTMLResponse:
    page.headers["content-security-policy"] = CSP
    return page


@router.get("/docs")
async def swagger_ui() -> HTMLResponse:
    page = get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="Relay - API docs",
        swagger_js_url=f"{VENDOR}/swagger-ui/swagger-ui-bundle.js",
        swagger_css_url=f"{VENDOR}/swagger-ui/swagger-ui.css",
        swagger_favicon_url=FAVICON,
        swagger_ui_parameters={"validatorUrl": None},  # no badge from validator.swagger.io
    )
    return _same_origin(page)


@router.get("/redoc")
async def redoc() -> HTMLResponse:
    page = get_redoc_html(
        openapi_url="/openapi.json",
        title="Relay - API reference",
        redoc_js_url=f"{VENDOR}/redoc/redoc.standalone.js",
        redoc_favicon_url=FAVICON,
        with_google_fonts=False,
    )
    return _same_origin(page)


def install_static(app: FastAPI) -> None:
    """Serve ``relay_api/static/`` at ``/static`` and the offline docs pages."""
    app.mount(STATIC_URL, StaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(router)
