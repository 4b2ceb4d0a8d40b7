"""schemathesis against the live OpenAPI schema: no 500s, and every error is OpenAI-shaped.

Every operation of ``GET /openapi.json`` is fuzzed over real HTTP (a real farm: Redis, a Celery
worker, the simulator), with data that fits the schema and data that does not. A 5xx is a
failure unless it is a documented 503/504 (no capacity, no answer in time); any 4xx/5xx whose
body is not ``{"error": {"message", "type", "param", "code"}}`` is a failure too.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.core.result import Err, Ok

from tests.security.support import error_shape_problem
from tests.support.farm import FarmFactory

pytestmark = pytest.mark.integration

GATEWAY_KEY = "sk-relay-fuzz-0123456789"
EXAMPLES = 25
DOCUMENTED_5XX = {503, 504}
# Models the farm serves: some bodies are steered to them, so that fuzzed parameters reach the
# workers, the provider adapters of all four API families and the simulator.
SERVED = ["meta-model", "chat", "p-openai/p-openai-m", "p-gemini-m", "p-claude-m", "p-ollama-m"]


def check_answer(status: int, content_type: str, body: bytes) -> None:
    assert status < 500 or status in DOCUMENTED_5XX, f"server error {status}: {body!r:.300}"
    if status >= 400:
        problem = error_shape_problem(status, content_type, body)
        assert problem is None, problem


def fuzz_operation(operation: Any, base_url: str, mode: GenerationMode) -> str | None:
    """Run one operation's examples; the first failure (shrunk) as text, or None."""
    auth = {"Authorization": f"Bearer {GATEWAY_KEY}"}

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode), model=st.sampled_from([None, *SERVED]))
    def run(case: Any, model: str | None) -> None:
        if model and isinstance(case.body, dict) and isinstance(case.body.get("model"), str):
            case.body["model"] = model
        response = case.call(base_url=base_url, headers=auth, timeout=15)
        if case.method.upper() == "HEAD":  # headers only, by HTTP: an error has no body
            assert response.status_code < 500, f"HEAD answered {response.status_code}"
            assert not response.content, "HEAD answered with a body"
            return
        content_type = response.headers.get("content-type", [""])[0]
        check_answer(response.status_code, content_type, response.content)

    try:
        run()
    except Unsatisfiable:
        assert mode is GenerationMode.NEGATIVE, f"{operation.label}: no valid input at all"
        return None  # nothing to get wrong: an operation without parameters or body
    except AssertionError as exc:
        return f"{operation.label} [{mode.value}]: {exc}"
    return None


def test_every_operation_survives_fuzzing(make_farm: FarmFactory, tmp_path: Any) -> None:
    farm = make_farm(api_keys=[GATEWAY_KEY], storage_dir=tmp_path / "files", request_timeout_s=5)
    schema = schemathesis.openapi.from_url(f"{farm.url}/openapi.json")
    results = list(schema.get_all_operations())
    broken = [r.err() for r in results if isinstance(r, Err)]
    assert not broken, f"the OpenAPI schema has operations schemathesis cannot read: {broken}"
    operations = [r.ok() for r in results if isinstance(r, Ok)]
    assert len(operations) >= 10, [op.label for op in operations]
    failures = [
        failure
        for op in operations
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
        if (failure := fuzz_operation(op, farm.url, mode)) is not None
    ]
    assert not failures, "\n\n".join(failures)
