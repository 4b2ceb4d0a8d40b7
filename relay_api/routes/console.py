"""The web console at ``/`` and ``/console`` (docs/console.md): one static page and its scripts.

The page is plain HTML with small ES modules under ``/static/console/`` and no build step; it
talks to the API with the gateway key the user typed (kept in the tab's ``sessionStorage``,
sent as ``Authorization``), so what it shows is what the API lets that key see.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import FileResponse

from relay_api.routes.docs import STATIC_DIR

router = APIRouter(include_in_schema=False)

PAGE = STATIC_DIR / "console" / "index.html"
# The page may not be framed, and runs only its own scripts (no inline script, no CDN).
HEADERS = {
    "cache-control": "no-cache",
    "content-security-policy": (
        "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}


@router.get("/")
@router.get("/console")
async def console() -> FileResponse:
    return FileResponse(PAGE, media_type="text/html", headers=HEADERS)
