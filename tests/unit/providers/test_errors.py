"""Every row of the error tables, for every family, through ``complete`` and ``stream``."""

from __future__ import annotations

import time
from email.utils import formatdate

import httpx
import pytest

from relay_core.errors import (
    RateLimited,
    UpstreamAuthError,
    UpstreamBadRequest,
    UpstreamEmptyStream,
    UpstreamError,
    UpstreamMalformed,
    UpstreamModelNotFound,
    UpstreamQuotaExhausted,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from relay_core.providers._http import UPSTREAM_BODY_LIMIT
from tests.unit.providers.support import (
    SECRET,
    BrokenStream,
    fixture_json,
    fixture_text,
    json_response,
    request,
)

FAMILIES = ["openai", "gemini", "anthropic", "ollama"]


async def _call(provider, mode: str) -> None:
    """Make one call, as ``complete`` or as ``stream`` (errors must raise on enter)."""
    if mode == "complete":
        await provider.complete(request(), "model-a")
        return
    async with provider.stream(request(), "model-a"):
        pytest.fail("the stream must not open")


async def _raises(provider, mode: str, cls: type[UpstreamError]) -> UpstreamError:
    with pytest.raises(cls) as caught:
        await _call(provider, mode)
    error = caught.value
    assert type(error) is cls
    return error


@pytest.fixture(params=["complete", "stream"])
def mode(request):
    return request.param


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, UpstreamBadRequest),
        (401, UpstreamAuthError),
        (402, UpstreamQuotaExhausted),
        (403, UpstreamAuthError),
        (404, UpstreamModelNotFound),
        (408, UpstreamTimeout),
        (413, UpstreamBadRequest),
        (418, UpstreamUnavailable),
        (422, UpstreamBadRequest),
        (429, RateLimited),
        (500, UpstreamUnavailable),
        (502, UpstreamUnavailable),
        (503, UpstreamUnavailable),
        (529, UpstreamUnavailable),
    ],
)
async def test_status_table(connect, mode, family, status, cls):
    body = {"error": {"message": "it went wrong"}}
    provider, _ = connect(family, lambda _: json_response(status, body))
    error = await _raises(provider, mode, cls)
    assert error.provider == f"test-{family}"
    assert error.model == "model-a"
    assert error.upstream_status == status
    assert error.upstream_body == '{"error":{"message":"it went wrong"}}'
    assert "it went wrong" in error.message
    assert error.retry_after is None


@pytest.mark.parametrize(
    ("headers", "retry_after"),
    [
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after": "17"}, 17.0),
        (
            {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "2m59.56s"},
            179.56,
        ),
        (
            {
                "x-ratelimit-remaining-requests": "12",
                "x-ratelimit-remaining-tokens": "0",
                "x-ratelimit-reset-requests": "1h",
                "x-ratelimit-reset-tokens": "6s",
            },
            6.0,
        ),
    ],
)
async def test_429_retry_after_from_headers(connect, mode, headers, retry_after):
    body = fixture_json("openai", "error_rate_limit.json")
    provider, _ = connect("openai", lambda _: json_response(429, body, headers))
    error = await _raises(provider, mode, RateLimited)
    assert error.retry_after == pytest.approx(retry_after)


async def test_429_retry_after_http_date(connect, mode):
    headers = {"retry-after": formatdate(time.time() + 120, usegmt=True)}
    provider, _ = connect("openai", lambda _: json_response(429, {}, headers))
    error = await _raises(provider, mode, RateLimited)
    assert error.retry_after == pytest.approx(120, abs=2)


async def test_503_keeps_its_retry_after(connect, mode):
    provider, _ = connect("anthropic", lambda _: json_response(503, {}, {"retry-after": "5"}))
    error = await _raises(provider, mode, UpstreamUnavailable)
    assert error.retry_after == 5.0


@pytest.mark.parametrize(
    ("family", "status", "fixture", "cls"),
    [
        ("openai", 429, "error_insufficient_quota.json", UpstreamQuotaExhausted),
        ("openai", 429, "error_rate_limit.json", RateLimited),
        ("openai", 400, "error_invalid_api_key.json", UpstreamAuthError),
        ("openai", 429, "error_cloudflare_daily.json", UpstreamQuotaExhausted),
        ("gemini", 400, "error_api_key_invalid.json", UpstreamAuthError),
        ("gemini", 400, "error_invalid_argument.json", UpstreamBadRequest),
        ("gemini", 400, "error_failed_precondition.json", UpstreamAuthError),
        ("gemini", 503, "error_unavailable.json", UpstreamUnavailable),
        ("anthropic", 529, "error_overloaded.json", UpstreamUnavailable),
        ("anthropic", 429, "error_rate_limit.json", RateLimited),
        ("anthropic", 401, "error_authentication.json", UpstreamAuthError),
        ("anthropic", 400, "error_billing.json", UpstreamQuotaExhausted),
        ("ollama", 404, "error_not_found.json", UpstreamModelNotFound),
    ],
)
async def test_error_type_field_table(connect, mode, family, status, fixture, cls):
    body = fixture_json(family, fixture)
    provider, _ = connect(family, lambda _: json_response(status, body))
    error = await _raises(provider, mode, cls)
    assert error.upstream_status == status


async def test_gemini_resource_exhausted_uses_retry_delay(connect, mode):
    body = fixture_json("gemini", "error_resource_exhausted.json")
    provider, _ = connect("gemini", lambda _: json_response(429, body))
    error = await _raises(provider, mode, RateLimited)
    assert error.retry_after == 36.0


async def test_gemini_error_wrapped_in_a_list(connect, mode):
    body = [fixture_json("gemini", "error_resource_exhausted.json")]
    provider, _ = connect("gemini", lambda _: json_response(429, body))
    error = await _raises(provider, mode, RateLimited)
    assert error.retry_after == 36.0


def _raise(exc_type: type[httpx.RequestError], message: str = "boom"):
    def respond(req: httpx.Request) -> httpx.Response:
        raise exc_type(message, request=req)

    return respond


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize(
    ("exc_type", "cls"),
    [
        (httpx.ReadTimeout, UpstreamTimeout),
        (httpx.ConnectTimeout, UpstreamTimeout),
        (httpx.PoolTimeout, UpstreamTimeout),
        (httpx.ConnectError, UpstreamUnavailable),
        (httpx.RemoteProtocolError, UpstreamUnavailable),
        (httpx.ReadError, UpstreamUnavailable),
    ],
)
async def test_transport_table(connect, mode, family, exc_type, cls):
    provider, _ = connect(family, _raise(exc_type))
    error = await _raises(provider, mode, cls)
    assert error.upstream_status is None
    assert exc_type.__name__ in error.message
    assert isinstance(error.__cause__, exc_type)


@pytest.mark.parametrize("family", FAMILIES)
async def test_connection_lost_mid_stream(connect, family):
    first_line = {
        "openai": b'data: {"id":"x","model":"m","choices":[{"delta":{"content":"Hi"}}]}\n\n',
        "gemini": b'data: {"candidates":[{"content":{"parts":[{"text":"Hi"}]},"index":0}]}\n\n',
        "anthropic": fixture_text("anthropic", "stream.sse").split("event: ping")[0].encode(),
        "ollama": b'{"message":{"role":"assistant","content":"Hi"},"done":false}\n',
    }[family]
    provider, _ = connect(family, lambda _: httpx.Response(200, stream=BrokenStream([first_line])))
    with pytest.raises(UpstreamUnavailable):
        async with provider.stream(request(), "model-a") as stream:
            async for _ in stream:
                pass


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("content", [b"<html>Bad gateway</html>", b"", b'{"truncated": '])
async def test_200_that_is_not_json(connect, family, content):
    provider, _ = connect(family, lambda _: httpx.Response(200, content=content))
    error = await _raises(provider, "complete", UpstreamMalformed)
    assert error.upstream_body == content.decode()


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("body", [[1, 2], {"unexpected": True}, {"choices": "none"}, "text"])
async def test_200_with_the_wrong_shape(connect, family, body):
    provider, _ = connect(family, lambda _: json_response(200, body))
    await _raises(provider, "complete", UpstreamMalformed)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("text", ["data: not json\n\n", "", "not ndjson\n"])
async def test_stream_that_is_not_the_wire_format(connect, family, text):
    provider, _ = connect(family, lambda _: httpx.Response(200, content=text.encode()))
    with pytest.raises(UpstreamMalformed):  # or UpstreamEmptyStream, when nothing parsed
        await _call(provider, "stream")


@pytest.mark.parametrize("family", FAMILIES)
async def test_an_empty_200_stream_is_an_empty_stream(connect, family):
    """Not a mere malformed answer: near the window it is the prompt's fault (executor)."""
    provider, _ = connect(family, lambda _: httpx.Response(200, content=b""))
    await _raises(provider, "stream", UpstreamEmptyStream)


async def test_error_body_is_truncated(connect, mode):
    body = {"error": {"message": "x" * 10_000}}
    provider, _ = connect("openai", lambda _: json_response(500, body))
    error = await _raises(provider, mode, UpstreamUnavailable)
    assert error.upstream_body is not None
    assert len(error.upstream_body) == UPSTREAM_BODY_LIMIT
    assert len(error.message) < 500


@pytest.mark.parametrize("family", FAMILIES)
async def test_the_key_never_shows(connect, mode, family):
    echo = {"error": {"message": f"Incorrect API key provided: {SECRET}", "type": "x"}}
    provider, _ = connect(family, lambda _: json_response(401, echo))
    error = await _raises(provider, mode, UpstreamAuthError)
    for text in (str(error), repr(error), error.message, error.upstream_body or "", repr(provider)):
        assert SECRET not in text
    assert SECRET not in error.to_info().model_dump_json()
    assert "[redacted]" in error.message


@pytest.mark.parametrize("family", FAMILIES)
async def test_the_key_never_shows_in_transport_errors(connect, family):
    provider, _ = connect(family, _raise(httpx.ConnectError, f"cannot reach {SECRET}"))
    error = await _raises(provider, "complete", UpstreamUnavailable)
    assert SECRET not in str(error)
    assert SECRET not in repr(error)


TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File "/usr/lib/python3/site-packages/llama_cpp/server/app.py", line 312, in create\n'
    '  File "C:\\Program Files\\llama\\llama_chat_format.py", line 88, in chat\n'
    "KeyError: 'schema' (model C:\\models\\smol.gguf, cache /var/cache/llama)"
)
LEAKS = ("/usr/lib", "site-packages", "Program Files", "C:\\", "smol.gguf", "/var/cache")


@pytest.mark.parametrize("family", FAMILIES)
async def test_an_upstreams_file_paths_never_show(connect, mode, family):
    """A server's traceback in its 500: message and kept body say ``[path]`` instead."""
    body = {"error": {"message": TRACEBACK, "type": "server_error"}}
    provider, _ = connect(family, lambda _: json_response(500, body))
    error = await _raises(provider, mode, UpstreamUnavailable)
    assert "[path]" in error.message and "KeyError: 'schema'" in error.message
    for text in (error.message, error.upstream_body or "", error.to_info().model_dump_json()):
        for leak in LEAKS:
            assert leak not in text, (leak, text)


async def test_a_plain_text_traceback_body_is_scrubbed_too(connect, mode):
    provider, _ = connect("openai", lambda _: httpx.Response(500, text=TRACEBACK))
    error = await _raises(provider, mode, UpstreamUnavailable)
    assert error.upstream_body is not None and "[path]" in error.upstream_body
    assert not any(leak in error.upstream_body for leak in LEAKS)
