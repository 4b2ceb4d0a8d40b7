"""Per-component logging: human-readable by default, JSON on request, secrets redacted."""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
from collections.abc import Mapping

_SECRET_ENV = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|AUTH|CREDENTIAL)", re.IGNORECASE)
_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._\-]{6,}")
# user:password@ in URLs (redis://:secret@host, https://user:secret@host)
_URL_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.\-]*://[^:/@\s]*:)[^@\s/]+@", re.IGNORECASE)


# Names that match _SECRET_ENV but hold no secret (redacting them would garble every log line).
_NOT_SECRET = re.compile(r"(_PREFIX|_DIR|_PATH|_FILE|XAUTHORITY)$", re.IGNORECASE)


def secret_values(environ: Mapping[str, str] | None = None) -> list[str]:
    """Values of environment variables that look like secrets (long enough to matter).

    A comma-separated list (``RELAY_API_KEYS``) counts whole and item by item: one key of the
    list may be logged alone."""
    env = os.environ if environ is None else environ
    found = [v for k, v in env.items() if _SECRET_ENV.search(k) and not _NOT_SECRET.search(k)]
    items = [item.strip() for v in found if "," in v for item in v.split(",")]
    return [v for v in [*found, *items] if len(v) >= 6]


class RedactingFilter(logging.Filter):
    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = sorted(set(secrets), key=len, reverse=True)

    def redact(self, text: str) -> str:
        for s in self.secrets:
            text = text.replace(s, "***")
        text = _URL_PASSWORD.sub(r"\1***@", text)
        return _BEARER.sub(r"\1***", text)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.msg = self.redact(message)
        record.args = None
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        return True


class JsonFormatter(logging.Formatter):
    def __init__(self, component: str) -> None:
        super().__init__()
        self.component = component

    def format(self, record: logging.LogRecord) -> str:
        data = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "component": self.component,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_text:
            data["exc"] = record.exc_text
        return json.dumps(data)


def json_line(component: str, message: str, level: str = "info") -> str:
    """One JSON log line, the shape :class:`JsonFormatter` writes (for foreign output)."""
    data = {"ts": round(time.time(), 3), "level": level, "component": component}
    return json.dumps({**data, "message": message})


def setup_logging(component: str, fmt: str = "text", level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactingFilter(secret_values()))
    if fmt == "json":
        handler.setFormatter(JsonFormatter(component))
    else:
        handler.setFormatter(
            logging.Formatter(f"%(asctime)s {component:<6} %(levelname)-7s %(message)s", "%H:%M:%S")
        )
        logging.Formatter.converter = time.localtime
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
