"""Placeholders and trivial secrets do not guard a public bind, and no secret is too short to
be redacted from the logs.

Real ``relay api`` processes for the refusals (exit 2 at once, saying what to do, never
quoting the key); the log filter as every component builds it from the environment; the
compose file's observability profile (Prometheus, Grafana) and Flower as published.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from relay_cli.exposure import weak_secret
from relay_cli.logs import RedactingFilter, secret_values
from tests.security.test_bind import START_TIMEOUT_S, api_env, free_port, relay_api

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
STRONG = "sk-relay-0123456789abcdef"


def env_example() -> dict[str, str]:
    pairs = [
        line.split("=", 1) for line in (ROOT / "deploy" / "env.example").read_text().split("\n")
    ]
    return {p[0]: p[1] for p in pairs if len(p) == 2 and not p[0].startswith("#")}


@pytest.mark.parametrize(
    ("keys", "why"),
    [
        (env_example()["RELAY_API_KEYS"], "key 1 of RELAY_API_KEYS is a placeholder"),
        ("x", "key 1 of RELAY_API_KEYS is shorter than 16 characters"),
        (f"{STRONG},abc123", "key 2 of RELAY_API_KEYS is shorter than 16 characters"),
        (f"{STRONG},your-key-here-0123456789", "key 2 of RELAY_API_KEYS is a placeholder"),
    ],
)
def test_a_public_bind_with_a_weak_gateway_key_is_refused(keys: str, why: str) -> None:
    done = subprocess.run(
        relay_api("--host", "0.0.0.0", "--port", str(free_port())),
        env=api_env(api_keys=keys),
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "refusing to bind to 0.0.0.0 with a weak gateway key" in done.stderr
    assert why in done.stderr
    assert "or bind 127.0.0.1" in done.stderr
    for key in keys.split(","):
        assert key == "x" or key not in done.stderr


def test_the_minimum_is_a_setting() -> None:
    done = subprocess.run(
        relay_api("--host", "0.0.0.0", "--port", str(free_port())),
        env=api_env(api_keys=STRONG, min_secret_chars="40"),
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "shorter than 40 characters (RELAY_MIN_SECRET_CHARS)" in done.stderr


@pytest.mark.parametrize(
    "value",
    ["change-me-to-a-long-random-key", "change-me-too", "Relay", "PASSWORD", "<placeholder>"],
)
def test_known_placeholders_are_weak_at_any_length(value: str) -> None:
    assert weak_secret(value, 1) == "a placeholder or default value"


def test_long_random_secrets_are_not_weak() -> None:
    assert weak_secret(STRONG, 16) is None
    assert weak_secret("Zq3-vT9_wK2!mN8#", 16) is None


def redacted(environ: dict[str, str], message: str) -> str:
    redactor = RedactingFilter(secret_values(environ))
    record = logging.LogRecord("t", logging.INFO, __file__, 1, message, None, None)
    redactor.filter(record)
    return record.getMessage()


def test_short_secrets_are_redacted_too() -> None:
    env = {
        "RELAY_API_KEYS": "k9,abc",
        "RELAY_FLOWER_PASSWORD": "pw1",
        "GROQ_API_KEY": "EMPTY",
        "RELAY_MIN_SECRET_CHARS": "32",  # a setting, not a secret
        "RELAY_CONTEXT_SUMMARY_TOKENS": "512",
        "KEYTIMEOUT": "1",  # a short number under a secret-like name: a count
    }
    line = "keys k9 and abc, password pw1, groq EMPTY; 32 chars, 512 tokens, 1 s"
    assert redacted(env, line) == (
        "keys *** and ***, password ***, groq ***; 32 chars, 512 tokens, 1 s"
    )
    # Standing alone only: the same letters inside a longer word are not the secret.
    assert redacted(env, "abcdef k9x pw12 EMPTYING") == "abcdef k9x pw12 EMPTYING"
    assert redacted(env, "key=abc; Bearer k9 'pw1' (EMPTY)") == "key=***; Bearer *** '***' (***)"


def test_a_key_containing_another_is_redacted_whole() -> None:
    env = {"RELAY_API_KEYS": "abc,abcdefghij-long-key"}
    assert redacted(env, "got abcdefghij-long-key") == "got ***"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


@pytest.mark.parametrize("service", ["prometheus", "grafana", "flower"])
def test_dashboards_are_published_on_loopback_only(compose: dict[str, Any], service: str) -> None:
    for port in compose["services"][service]["ports"]:
        # "${X_BIND:-127.0.0.1}:host port:container port": loopback unless X_BIND says else
        assert re.match(r"\$\{[A-Z_]+_BIND:-127\.0\.0\.1\}:.+:\d+$", port), port


def test_grafana_has_no_default_admin_and_no_anonymous_viewers(compose: dict[str, Any]) -> None:
    env = compose["services"]["grafana"]["environment"]
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert "GF_AUTH_ANONYMOUS_ORG_ROLE" not in env
    assert env["GF_SECURITY_ADMIN_PASSWORD"] == "${GRAFANA_ADMIN_PASSWORD:-}"


@pytest.mark.skipif(shutil.which("sh") is None, reason="no POSIX shell")
@pytest.mark.parametrize(("password", "starts"), [("", False), ("admin", False), (STRONG, True)])
def test_grafana_does_not_start_without_an_admin_password(
    compose: dict[str, Any], password: str, starts: bool
) -> None:
    """The entrypoint's guard, run as the container would (``$$`` is compose's ``$``), with
    Grafana's own start replaced by ``true``."""
    entrypoint = compose["services"]["grafana"]["entrypoint"]
    script = entrypoint[-1].replace("$$", "$").replace("exec /run.sh", "exec true")
    done = subprocess.run(
        [*entrypoint[:-1], script],
        env={"GF_SECURITY_ADMIN_PASSWORD": password},
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    assert (done.returncode == 0) is starts, done.stderr
    if not starts:
        assert "set GRAFANA_ADMIN_PASSWORD in .env" in done.stderr
