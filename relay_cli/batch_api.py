"""``relay batch``'s HTTP side: which API it talks to, with which key, and its errors.

The API is ``--base-url``, else ``RELAY_API_URL``, else that of the running ``relay up`` (found
as :mod:`relay_cli.farms` says, from any folder), else http://127.0.0.1:8000; the key
``--api-key`` or ``RELAY_API_KEY``.
"""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported when a command runs: registering stays cheap
    import httpx

DEFAULT_URL = "http://127.0.0.1:8000"


class ApiError(Exception):
    pass


def base_url(args: argparse.Namespace) -> str:
    if args.base_url:
        return str(args.base_url)
    from_env = os.environ.get("RELAY_API_URL")
    if from_env:
        return from_env
    from relay_cli.farms import locate

    found = locate()
    if found.ambiguous:
        raise ApiError(f"{found.several()} (or pass --base-url)")
    return found.info.api_url if found.info is not None and found.info.api_url else DEFAULT_URL


def client(args: argparse.Namespace) -> httpx.Client:
    import httpx

    key = args.api_key or os.environ.get("RELAY_API_KEY")
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.Client(base_url=base_url(args).rstrip("/"), headers=headers, timeout=120)


def call(http: httpx.Client, method: str, path: str, **kw: Any) -> Any:
    r = http.request(method, path, **kw)
    if r.status_code >= 400:
        try:
            message = r.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = r.text[:300]
        raise ApiError(f"{method} {path}: {r.status_code}: {message}")
    return r.json()
