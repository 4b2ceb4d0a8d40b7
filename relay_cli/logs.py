"""Per-component logging: human-readable by default, JSON on request, secrets redacted."""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
from collections.abc import Mapping
from typing import get_args

from pydantic import SecretStr

_SECRET_ENV = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|AUTH|CREDENTIAL)", re.IGNORECASE)
_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._\-]{6,}")
# user:password@ in URLs (redis://:secret@host, https://user:secret@host)
_URL_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.\-]*://[^:/@\s]*:)[^@\s/]+@", re.IGNORECASE)


# Names that match _SECRET_ENV but hold no secret (redacting them would garble every log line).
_NOT_SECRET = re.compile(r"(_PREFIX|_DIR|_PATH|_FILE|XAUTHORITY)$", re.IGNORECASE)
# A short number under a name like a secret's (``KEYTIMEOUT=1``) is a count, not a key.
_SHORT_NUMBER = re.compile(r"[0-9.]{1,5}")

# A secret this long is redacted wherever it appears; a shorter one (``abc``, ``EMPTY``) only
# where it stands alone, not inside a longer word, so ordinary text around it stays readable.
SUBSTRING_MIN_CHARS = 6


def _relay_secrets() -> tuple[set[str], set[str]]:
    """Relay's own variables: those of secret settings, and those of every other setting."""
    from relay_core.settings import Settings

    def secret(tp: object) -> bool:
        return tp is SecretStr or any(secret(arg) for arg in get_args(tp))

    names = {n: f"RELAY_{n.upper()}" for n in Settings.model_fields}
    secrets = {names[n] for n, f in Settings.model_fields.items() if secret(f.annotation)}
    return secrets, set(names.values()) - secrets


def secret_values(environ: Mapping[str, str] | None = None) -> list[str]:
    """Values of environment variables that hold secrets, whatever their length.

    Relay's own (``RELAY_API_KEYS``, ``RELAY_FLOWER_PASSWORD``, ``RELAY_OWNER_SECRET``) are
    known from the settings, and its other settings are none (``RELAY_MIN_SECRET_CHARS``);
    any other variable named like a secret (``*KEY*``, ``*TOKEN*``, ``*PASSWORD*``…) is one
    unless it is a short number. A comma-separated list counts whole and item by item: one
    key of the list may be logged alone."""
    env = os.environ if environ is None else environ
    known, plain = _relay_secrets()

    def holds_secret(name: str, value: str) -> bool:
        if name.upper() in known:
            return True
        if name.upper() in plain or _NOT_SECRET.search(name) or not _SECRET_ENV.search(name):
            return False
        return not _SHORT_NUMBER.fullmatch(value)

    found = [v for k, v in env.items() if holds_secret(k, v)]
    items = [item.strip() for v in found if "," in v for item in v.split(",")]
    return [v for v in [*found, *items] if v.strip()]


def _secret_pattern(secrets: list[str]) -> re.Pattern[str] | None:
    """One pattern for every secret, longest first (a key that contains another goes whole)."""
    alternatives = [
        re.escape(s) if len(s) >= SUBSTRING_MIN_CHARS else rf"(?<![^\W_]){re.escape(s)}(?![^\W_])"
        for s in sorted(set(secrets), key=len, reverse=True)
    ]
    return re.compile("|".join(alternatives)) if alternatives else None


class RedactingFilter(logging.Filter):
    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = sorted(set(secrets), key=len, reverse=True)
        self._pattern = _secret_pattern(self.secrets)

    def redact(self, text: str) -> str:
        if self._pattern is not None:
            text = self._pattern.sub("***", text)
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
