"""Relay's own provider clients against the simulator, over real HTTP. For every API family:
a plain answer, a streamed answer, and a 429 in each retry-after form the family uses, a 5xx,
a wrong key, a timeout and garbage, each → the right :mod:`relay_core.errors` class, with
``retry_after`` where the form gives one, and the key never in the error.

The clients are built exactly as a process builds them (``build_provider`` with a pooled
``make_http_client()``); the simulator is one server for the module, with a provider per case
so that no two tests share a limit window. Limit windows run on a clock the tests set, so the
retry delays are exact.

Ollama is tested for what a real Ollama does. A local Ollama takes no key and has no rate
limits: it never answers 401 or 429 (when its queue is full it answers 503 "server busy",
which the 5xx cases cover), so the wrong-key and 429 cases do not apply to it.
"""

from __future__ import annotations

import math
import ssl
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from relay_core.catalogue.models import ApiFamily, ModelConfig, ProviderConfig
from relay_core.errors import (
    RateLimited,
    UpstreamAuthError,
    UpstreamError,
    UpstreamMalformed,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from relay_core.providers.base import Completion, Provider
from relay_core.providers.registry import build_provider, make_http_client
from relay_core.schemas.chat import ChatCompletionChunk, ChatCompletionRequest
from relay_sim import SimConfig, SimServer

KEY = "sk-matrix-5f4e3d2c1b0a99887766"
WRONG_KEY = "sk-wrong-0a1b2c3d4e5f66778899"
MODEL = "m1"
FAMILIES: tuple[ApiFamily, ...] = ("openai", "gemini", "anthropic", "ollama")
KEYED: tuple[ApiFamily, ...] = ("openai", "gemini", "anthropic")  # Ollama takes no key
MODES = ("complete", "stream")
HANG_TIMEOUT_S = 0.2
# The 429 cases spend a provider's one request of the minute, then ask again this much later:
# the wait is then 59.5 s, which the seconds forms round up to 60 and the others keep.
STEP_S = 0.5


@dataclass(frozen=True)
class Case:
    """One simulated provider and how the client is set up to call it."""

    family: ApiFamily
    name: str
    sim: dict[str, Any] = field(default_factory=dict)
    key: str | None = KEY
    timeout_s: float = 5.0

    def sim_provider(self) -> dict[str, Any]:
        expected = KEY if self.family in KEYED else None
        return {
            "name": self.name,
            "api": self.family,
            "api_key": expected,
            "chunk_chars": 5,  # several chunks per streamed answer
            "models": [{"id": MODEL}],
            **self.sim,
        }


@dataclass(frozen=True)
class RateForm:
    """A 429 in one of the forms a family really uses, and the delay the client must read."""

    family: ApiFamily
    form: str
    sim: dict[str, Any]
    retry_after: float
    tolerance: float = 0.0


RATE_FORMS = (
    RateForm("openai", "retry-after", {}, 60.0),
    RateForm("openai", "retry-after-ms", {"retry_after_ms": True}, 59.5),
    RateForm("openai", "x-ratelimit-reset", {"retry_after": False}, 59.5),
    RateForm("gemini", "RetryInfo.retryDelay", {}, 60.0),
    RateForm("anthropic", "retry-after", {}, 60.0),
    # An RFC 3339 time read against the real clock: a second of rounding, plus elapsed time.
    RateForm("anthropic", "anthropic-ratelimit-reset", {"retry_after": False}, 60.0, 2.0),
)


@dataclass(frozen=True)
class Fault:
    name: str
    sim: dict[str, Any]
    error: type[UpstreamError]
    status: int | None
    wrong_key: bool = False
    timeout_s: float = 5.0
    families: tuple[ApiFamily, ...] = FAMILIES


FAULTS = (
    Fault("500", {"error_rate": 1.0}, UpstreamUnavailable, 500),
    Fault("503", {"outage": True}, UpstreamUnavailable, 503),
    Fault("401", {}, UpstreamAuthError, 401, wrong_key=True, families=KEYED),
    Fault("timeout", {"hang": True}, UpstreamTimeout, None, timeout_s=HANG_TIMEOUT_S),
    Fault("garbage", {"garbage": True}, UpstreamMalformed, None),
)


def rate_case(form: RateForm, mode: str) -> Case:
    name = f"{form.family}-429-{form.form.lower().replace('.', '-')}-{mode}"
    return Case(form.family, name, {"rpm": 1, **form.sim})


def fault_case(fault: Fault, family: ApiFamily, mode: str) -> Case:
    key = WRONG_KEY if fault.wrong_key else (KEY if family in KEYED else None)
    name = f"{family}-{fault.name}-{mode}"
    return Case(family, name, fault.sim, key=key, timeout_s=fault.timeout_s)


def answer_case(family: ApiFamily) -> Case:
    return Case(family, f"{family}-ok", key=KEY if family in KEYED else None)


RATE_COMBOS = [(form, mode) for form in RATE_FORMS for mode in MODES]
FAULT_COMBOS = [
    (fault, family, mode) for fault in FAULTS for family in fault.families for mode in MODES
]
RATE_PARAMS = [pytest.param(f, m, id=f"{f.family}-{f.form}-{m}") for f, m in RATE_COMBOS]
FAULT_PARAMS = [pytest.param(f, a, m, id=f"{a}-{f.name}-{m}") for f, a, m in FAULT_COMBOS]


def all_cases() -> list[Case]:
    cases = [answer_case(f) for f in FAMILIES]
    cases += [rate_case(form, mode) for form, mode in RATE_COMBOS]
    cases += [fault_case(*combo) for combo in FAULT_COMBOS]
    return cases


class Clock:
    """The simulator's clock: set by the tests, read by the server thread."""

    def __init__(self) -> None:
        self.now = float(math.floor(time.time()))

    def __call__(self) -> float:
        return self.now


# ---- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clock() -> Clock:
    return Clock()


@pytest.fixture(scope="module")
def sim(clock: Clock) -> Iterator[SimServer]:
    config = SimConfig.model_validate({"providers": [c.sim_provider() for c in all_cases()]})
    with SimServer(config, clock=clock) as server:
        yield server


@pytest.fixture(scope="module")
def ssl_context() -> ssl.SSLContext:
    """One SSL context for every client (building one per client costs ~75 ms of CPU)."""
    return ssl.create_default_context()


@pytest.fixture
async def http(ssl_context: ssl.SSLContext) -> AsyncIterator[httpx.AsyncClient]:
    client = make_http_client(ssl_context=ssl_context)
    try:
        yield client
    finally:
        await client.aclose()


def connect(sim: SimServer, http: httpx.AsyncClient, case: Case) -> Provider:
    config = ProviderConfig(
        name=case.name,
        api=case.family,
        base_url=sim.base_url(case.name),
        timeout_s=case.timeout_s,
        models=[ModelConfig(id=MODEL)],
    )
    return build_provider(config, http, case.key)


# ---- calls ----------------------------------------------------------------------------------


def ask(text: str, *, stream: bool = False) -> ChatCompletionRequest:
    body: dict[str, Any] = {"model": "chat", "messages": [{"role": "user", "content": text}]}
    if stream:
        body |= {"stream": True, "stream_options": {"include_usage": True}}
    return ChatCompletionRequest.model_validate(body)


async def read_stream(provider: Provider, text: str) -> list[ChatCompletionChunk]:
    async with provider.stream(ask(text, stream=True), MODEL) as stream:
        return [chunk async for chunk in stream]


async def attempt(provider: Provider, mode: str, text: str) -> Completion | list[Any]:
    if mode == "stream":
        return await read_stream(provider, text)
    return await provider.complete(ask(text), MODEL)


def assert_no_key(err: UpstreamError, *keys: str | None) -> None:
    shown = (str(err), repr(err), err.upstream_body or "", err.to_info().model_dump_json())
    for key in keys:
        if key is not None:
            assert all(key not in text for text in shown), shown


# ---- answers --------------------------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
async def test_plain_answer(sim: SimServer, http: httpx.AsyncClient, family: ApiFamily) -> None:
    case = answer_case(family)
    completion = await connect(sim, http, case).complete(ask("Hello there"), MODEL)
    body = completion.body
    assert body.model == MODEL
    (choice,) = body.choices
    assert choice.message.role == "assistant"
    assert choice.message.content == f"sim:{case.name}/{MODEL}: Hello there"
    assert choice.finish_reason == "stop"
    assert body.usage is not None
    assert body.usage.prompt_tokens == 3  # "Hello there": 11 characters / 4, rounded up
    assert body.usage.completion_tokens == math.ceil(len(choice.message.content) / 4)
    assert body.usage.total_tokens == body.usage.prompt_tokens + body.usage.completion_tokens


@pytest.mark.parametrize("family", FAMILIES)
async def test_streamed_answer_assembles_to_the_plain_answer(
    sim: SimServer, http: httpx.AsyncClient, family: ApiFamily
) -> None:
    provider = connect(sim, http, answer_case(family))
    plain = await provider.complete(ask("Stream me a longer answer"), MODEL)
    chunks = await read_stream(provider, "Stream me a longer answer")

    with_choices = [c for c in chunks if c.choices]
    assert len(with_choices) > 3  # really streamed, in pieces of 5 characters
    text = "".join(c.choices[0].delta.content or "" for c in with_choices)
    assert text == plain.body.choices[0].message.content
    assert with_choices[0].choices[0].delta.role == "assistant"
    assert all(c.choices[0].delta.role is None for c in with_choices[1:])
    assert with_choices[-1].choices[0].finish_reason == "stop"
    assert all(c.choices[0].finish_reason is None for c in with_choices[:-1])
    assert chunks[-1].usage == plain.body.usage
    assert len({c.id for c in chunks}) == 1


# ---- 429 ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("form", "mode"), RATE_PARAMS)
async def test_rate_limited_with_the_retry_after_the_family_gives(
    sim: SimServer, http: httpx.AsyncClient, clock: Clock, form: RateForm, mode: str
) -> None:
    case = rate_case(form, mode)
    provider = connect(sim, http, case)
    clock.now = float(math.floor(time.time()))
    await provider.complete(ask("the one request of the minute"), MODEL)
    clock.now += STEP_S

    with pytest.raises(RateLimited) as caught:
        await attempt(provider, mode, "one too many")

    err = caught.value
    assert (err.provider, err.model, err.upstream_status) == (case.name, MODEL, 429)
    assert err.retry_after is not None
    assert err.retry_after == pytest.approx(form.retry_after, abs=form.tolerance)
    assert_no_key(err, KEY)


# ---- every other failure --------------------------------------------------------------------


@pytest.mark.parametrize(("fault", "family", "mode"), FAULT_PARAMS)
async def test_failure_becomes_the_right_error(
    sim: SimServer, http: httpx.AsyncClient, fault: Fault, family: ApiFamily, mode: str
) -> None:
    case = fault_case(fault, family, mode)

    started = time.monotonic()
    with pytest.raises(UpstreamError) as caught:
        await attempt(connect(sim, http, case), mode, "Hello there")
    elapsed = time.monotonic() - started

    err = caught.value
    assert type(err) is fault.error, repr(err)
    assert (err.provider, err.model, err.upstream_status) == (case.name, MODEL, fault.status)
    assert err.retry_after is None
    assert_no_key(err, case.key, KEY)
    if fault.name == "timeout":
        assert elapsed < 10 * HANG_TIMEOUT_S  # the catalogue's timeout_s, not the pool's 60 s
