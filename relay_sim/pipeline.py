"""One simulated call, whatever the family: the order in which a provider says no.

1. unknown provider (or another family's path) → 404
2. wrong or missing key, when the provider expects one → 401
3. a body the family cannot read → 400; an unknown model → 404
4. ``outage`` (or the down half of ``flap_s``) → 503
5. ``hang`` / ``[sim:hang]`` → no answer until the client gives up; ``[sim:400]`` → 400
6. ``[sim:429]``, then the limits (concurrency, RPM, TPM, RPD, TPD of provider and model) → 429
7. ``error_rate`` / ``[sim:500]`` → 500 (the request already counted against the limits)
8. latency (:mod:`relay_sim.timing`: the first byte, plus ``[sim:slow=MS]``, then the output
   time ``ms_per_output_token`` per completion token; a stream spreads it over its frames)
9. ``garbage`` / ``[sim:garbage]`` → 200 with a body that is not the wire format
10. ``truncate`` / ``[sim:truncate]`` → 200 whose body stops half-way (the connection drops)
11. the answer, whole or streamed (``chunk_delay_ms`` between frames); JSON when JSON was
    asked, prose instead for ``invalid_json_first`` / ``invalid_json_rate``

With ``echo_key_in_errors`` every error message quotes the key the caller sent, one character
of it JSON-escaped; with ``echo_key_in_answers`` every answer's text ends with it.

A request is *in flight* from its admission (or the start of its hang) until its answer is
out; refused requests never are, so ``max_in_flight`` is the provider's real concurrency.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from relay_sim import timing
from relay_sim.answer import Answer, Call, Triggers, estimate_tokens, make_answer
from relay_sim.config import SimProvider
from relay_sim.families.base import Family
from relay_sim.faults import FaultKind, SimFault
from relay_sim.headers import retry_headers
from relay_sim.limits import LimitKind
from relay_sim.quality import degrade, quality_for
from relay_sim.state import Counters, ModelState, ProviderState, SimState, Ticket
from relay_sim.vectors import DEFAULT_DIMENSIONS

Parser = Callable[[object, Request], Call]
Renderer = Callable[[Call, Answer], bytes]

JSON = "application/json"

# What a server that cannot handle a request feature answers (llama.cpp's server: the
# Python exception's text, in a 500).
_UNSUPPORTED: Mapping[str, str] = MappingProxyType(
    {
        "json_schema": "'schema'",
        "null_content": 'can only concatenate str (not "NoneType") to str',
    }
)

# What a Python server's 5xx quotes with ``traceback_in_errors``: its own file paths.
TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File "/usr/lib/python3/site-packages/llama_cpp/server/app.py", line 312, in create\n'
    '  File "C:\\Users\\runner\\llama_cpp\\llama_chat_format.py", line 88, in chat\n'
    "    llama = Llama(model_path='/opt/llama/models/smollm2.gguf')"
)

# Which counter a fault is counted in.
_COUNTED_AS: Mapping[FaultKind, str] = MappingProxyType(
    {
        FaultKind.bad_request: "client_errors",
        FaultKind.context_length_exceeded: "client_errors",
        FaultKind.unauthorized: "client_errors",
        FaultKind.not_found: "client_errors",
        FaultKind.model_not_found: "client_errors",
        FaultKind.rate_limited: "rate_limited",
        FaultKind.server_error: "errors",
        FaultKind.unavailable: "errors",
    }
)


class TrackedStream(StreamingResponse):
    """A streamed answer that leaves its :class:`Ticket` when the stream ends, however."""

    def __init__(
        self, frames: AsyncIterator[bytes], ticket: Ticket, headers: dict[str, str], media_type: str
    ) -> None:
        super().__init__(frames, headers=headers, media_type=media_type)
        self.ticket = ticket

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.ticket.leave()


class Truncated(Response):
    """A 200 that stops half-way, as when a provider (or a proxy in front of it) dies
    mid-answer: the headers promise the whole body (``Content-Length``), half of it is sent,
    then the connection drops (uvicorn closes it, and logs that the answer was cut short)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        start = {"type": "http.response.start", "status": self.status_code}
        await send({**start, "headers": self.raw_headers})
        half = self.body[: len(self.body) // 2]
        await send({"type": "http.response.body", "body": half, "more_body": True})


def json_escaped(key: str) -> bytes:
    """``key`` as a careless JSON encoder may write it: the same string once decoded, but its
    second character as ``\\u00XX`` and every ``/`` as ``\\/`` (no raw-text search finds it)."""
    if len(key) < 2:
        return key.encode()
    rest = key[2:].replace("/", "\\/")
    return f"{key[0]}\\u{ord(key[1]):04x}{rest}".encode()


def error_response(
    family: Family, fault: SimFault, config: SimProvider | None = None, echo: str | None = None
) -> Response:
    """``fault`` in ``family``'s shape; ``echo``: the caller's key, quoted in the message
    (and with ``traceback_in_errors``, a 5xx's message ends with :data:`TRACEBACK`)."""
    if echo:
        fault.message = f"{fault.message} (request sent with key {echo})"
    if config is not None and config.traceback_in_errors and _COUNTED_AS[fault.kind] == "errors":
        fault.message = f"{fault.message}\n{TRACEBACK}"
    status, body = family.error(fault)
    if echo:
        body = body.replace(echo.encode(), json_escaped(echo))
    headers = dict(fault.headers)
    if fault.retry_after_s is not None:
        millis = config is not None and config.retry_after_ms
        seconds = family.retry_after_header and (config is None or config.retry_after)
        headers.update(retry_headers(fault.retry_after_s, seconds=seconds, millis=millis))
    return Response(body, status, headers, media_type=JSON)


def _count(field: str, *counters: Counters) -> None:
    for c in counters:
        setattr(c, field, getattr(c, field) + 1)


async def serve(
    state: SimState, family: Family, request: Request, parse: Parser, render: Renderer
) -> Response:
    provider = state.provider(request.path_params["provider"], family.api)
    if provider is None:
        url = f"Invalid URL ({request.method} {request.url.path})"
        return error_response(family, SimFault(FaultKind.not_found, url))
    provider.counters.requests += 1
    config = provider.config
    echo = family.api_key(request) if config.echo_key_in_errors else None
    try:
        call, model = await _read(family, provider, request, parse)
    except SimFault as fault:
        provider.counters.client_errors += 1
        return error_response(family, fault, echo=echo)
    model.counters.requests += 1
    quoted = (family.api_key(request) or "") if config.echo_key_in_answers else ""
    try:
        return await _respond(_Job(state, family, provider, model, call, render, quoted), request)
    except SimFault as fault:
        _count(_COUNTED_AS[fault.kind], provider.counters, model.counters)
        return error_response(family, fault, config, echo)


def check_key(family: Family, provider: ProviderState, request: Request) -> None:
    expected = provider.config.expected_key()
    if expected is None:
        return
    sent = family.api_key(request)
    if sent is None or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise SimFault(FaultKind.unauthorized, "Incorrect API key provided.")


async def _read(
    family: Family, provider: ProviderState, request: Request, parse: Parser
) -> tuple[Call, ModelState]:
    check_key(family, provider, request)
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        raise SimFault.bad_request("We could not parse the JSON body of your request.") from None
    call = parse(body, request)
    _quirks(call, provider.config)
    model = provider.model(call.model)
    if model is None:
        raise SimFault.model_not_found(call.model)
    if call.embed_inputs is not None:
        _check_embeddings(call, model)
    _check_window(call, model, provider.config)
    return call, model


def _check_embeddings(call: Call, model: ModelState) -> None:
    config = model.config
    if not config.embeddings:
        raise SimFault.bad_request(f"{config.id} does not support embeddings", "model")
    call.embed_native = config.dimensions or DEFAULT_DIMENSIONS
    asked = call.embed_dimensions
    if asked is not None and asked > call.embed_native:
        raise SimFault.bad_request(
            f"{config.id} answers at most {call.embed_native} dimensions, not {asked}",
            "dimensions",
        )


def _quirks(call: Call, config: SimProvider) -> None:
    """What a server that implements less than OpenAI does makes of the request."""
    if config.ignores_max_completion_tokens:
        call.max_tokens = call.max_tokens_param
    if config.ignores_n:
        call.n = 1
    call.repeat_tool_ids = config.repeats_tool_call_ids


def _check_window(call: Call, model: ModelState, config: SimProvider) -> None:
    window = model.config.context_window
    if window is None:
        return
    prompt = estimate_tokens(call.prompt_chars, config.token_density)
    if prompt + (call.max_tokens or 0) > window:
        if call.stream and config.empty_stream_over_window:
            call.over_window = True
            return
        raise SimFault(
            FaultKind.context_length_exceeded,
            f"This model's maximum context length is {window} tokens. However, your messages "
            f"resulted in {prompt} tokens. Please reduce the length of the messages.",
            param="messages",
        )


@dataclass(frozen=True, slots=True)
class _Job:
    """One admitted-so-far call and everything answering it needs."""

    state: SimState
    family: Family
    provider: ProviderState
    model: ModelState
    call: Call
    render: Renderer
    echo: str  # the key to quote in the answer ("" unless ``echo_key_in_answers``)

    def count(self, field: str) -> None:
        _count(field, self.provider.counters, self.model.counters)

    def ticket(self) -> Ticket:
        return Ticket(
            self.state.flight, self.provider.counters, self.model.counters, on_leave=self.ended
        )

    def ended(self) -> None:
        self.provider.ended(self.model, self.state.clock())


async def _respond(job: _Job, request: Request) -> Response:
    provider, model = job.provider, job.model
    now = job.state.clock()
    triggers = Triggers.parse(job.call.text)
    if provider.is_down(now):
        raise SimFault(FaultKind.unavailable, "The service is temporarily unavailable.")
    if provider.config.hang or triggers.hang:
        return await _hang(job, request)
    if triggers.bad_request:
        raise SimFault.bad_request(f"Invalid request (triggered by [sim:400]): {job.call.text}")
    if triggers.rate_limit:
        raise SimFault(
            FaultKind.rate_limited,
            "Rate limit reached (triggered by [sim:429]).",
            retry_after_s=1.0,
            limit=LimitKind.requests,
            headers=provider.rate_headers(model, now),
        )
    config = provider.config
    charge = job.call.charge(config.tpm_counting, config.token_density)
    headers = provider.admit(model, charge, now)
    job.count("accepted")
    # In flight from admission until the answer is out (for a paced stream: its last frame).
    ticket = job.ticket()
    response: Response | None = None
    try:
        response = await _admitted(job, triggers, headers, ticket)
        return response
    finally:
        if not isinstance(response, TrackedStream):
            ticket.leave()


async def _admitted(
    job: _Job, triggers: Triggers, headers: dict[str, str], ticket: Ticket
) -> Response:
    config, family, call = job.provider.config, job.family, job.call
    if triggers.server_error or (config.error_rate and job.state.rng.random() < config.error_rate):
        message = "The server had an error while processing your request."
        raise SimFault(FaultKind.server_error, message, headers=headers)
    failing = sorted(call.features.intersection(config.fails_on))
    if failing:
        raise SimFault(FaultKind.server_error, _UNSUPPORTED[failing[0]], headers=headers)
    quality = quality_for(config, call)
    first_s = timing.first_byte_s(config, job.state.rng) + triggers.slow_ms / 1000
    first_s += quality.latency_ms / 1000
    media = family.stream_media_type if call.stream else JSON
    if call.over_window or config.garbage or triggers.garbage:
        await _wait(first_s)
        if call.over_window:
            job.count("empty_streams")
            return Response(b"", headers=headers, media_type=media)
        job.count("garbage")
        return Response(family.garbage(call.stream), headers=headers, media_type=media)
    if call.json_mode:
        _json_quirk(job, quality.invalid_json)
    answer = make_answer(config.name, job.model.config.id, call, job.echo, config.token_density)
    judged = degrade(answer, call, quality, job.state.rng)
    answer = judged.answer
    if judged.fault is not None:
        job.count(judged.fault)
    call.include_usage = call.include_usage and config.stream_usage
    output_s = timing.output_s(config, answer.completion_tokens)
    if not call.stream or config.truncate or triggers.truncate:
        await _wait(first_s + output_s)
        job.provider.answered(job.model, answer, first_s + output_s, job.state.clock())
        if config.truncate or triggers.truncate:
            return _truncated(job, answer, headers, media)
        _record(answer, job.provider.counters, job.model.counters)
        return Response(job.render(call, answer), headers=headers, media_type=media)
    return await _stream(job, answer, headers, ticket, first_s=first_s, output_s=output_s)


async def _stream(
    job: _Job,
    answer: Answer,
    headers: dict[str, str],
    ticket: Ticket,
    *,
    first_s: float,
    output_s: float,
) -> Response:
    """A streamed answer after ``first_s``; its frames spread ``output_s`` between them."""
    config, media = job.provider.config, job.family.stream_media_type
    frames = list(job.family.frames(job.call, answer, config.chunk_chars))
    gaps = timing.frame_gaps_s(len(frames), config.chunk_delay_ms / 1000, output_s)
    await _wait(first_s)
    job.provider.answered(job.model, answer, first_s + sum(gaps), job.state.clock())
    _record(answer, job.provider.counters, job.model.counters)
    if not any(gaps):
        # Unpaced: the whole event stream as one body. Clients read it exactly as a stream,
        # and it costs no more than a JSON answer (a paced stream costs a task per request).
        return Response(b"".join(frames), headers=headers, media_type=media)
    return TrackedStream(_paced(frames, gaps), ticket, headers, media)


async def _wait(seconds: float) -> None:
    if seconds > 0:
        await asyncio.sleep(seconds)


def _truncated(job: _Job, answer: Answer, headers: dict[str, str], media: str) -> Truncated:
    job.count("truncated")
    if job.call.stream:
        whole = b"".join(job.family.frames(job.call, answer, job.provider.config.chunk_chars))
    else:
        whole = job.render(job.call, answer)
    return Truncated(whole, headers=headers, media_type=media)


def _json_quirk(job: _Job, family_rate: float = 0.0) -> None:
    """Whether this JSON-asked answer comes as prose (``invalid_json_first`` / ``_rate``, or
    the family's quality profile, ``family_rate``: the larger rate applies)."""
    config, counters = job.provider.config, job.provider.counters
    first = counters.json_asked < config.invalid_json_first
    rate = max(config.invalid_json_rate, family_rate)
    job.call.prose = first or (rate > 0 and job.state.rng.random() < rate)
    job.count("json_asked")
    if job.call.prose:
        job.count("invalid_json")


def _record(answer: Answer, *counters: Counters) -> None:
    for c in counters:
        c.succeeded += 1
        c.prompt_tokens += answer.prompt_tokens
        c.completion_tokens += answer.completion_tokens
        c.total_tokens += answer.total_tokens


async def _paced(frames: list[bytes], gaps_s: list[float]) -> AsyncIterator[bytes]:
    for frame, gap in zip(frames, gaps_s, strict=True):
        await _wait(gap)
        yield frame


async def _hang(job: _Job, request: Request) -> Response:
    """Answer nothing until the client disconnects (or the server stops)."""

    async def disconnected() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    job.count("hung")
    ticket = job.ticket()
    closing = job.state.closing.wait()
    waiters = {asyncio.ensure_future(disconnected()), asyncio.ensure_future(closing)}
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        ticket.leave()
        for waiter in waiters:
            waiter.cancel()
    return Response(status_code=503)  # the client is gone, or the server is stopping
