"""The official OpenAI SDK streams through the farm unchanged."""

from __future__ import annotations

import openai
import pytest

from tests.integration.streaming.test_stream import two_providers
from tests.support.farm import FarmFactory

pytestmark = pytest.mark.integration


def test_the_sdk_streams_text_and_usage(make_farm: FarmFactory) -> None:
    farm = make_farm()
    client = openai.OpenAI(base_url=f"{farm.url}/v1", api_key="unused", max_retries=0)
    chunks = list(
        client.chat.completions.create(
            model="p-gemini/p-gemini-m",
            messages=[{"role": "user", "content": "hello from the SDK"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "sim:p-gemini/p-gemini-m: hello from the SDK"
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0
    assert chunks[-2].choices[0].finish_reason == "stop"
    client.close()


def test_the_sdk_raises_on_an_error_event_after_the_first_chunk(make_farm: FarmFactory) -> None:
    farm = make_farm(two_providers)
    farm.sim("a", truncate=True)  # the stream stops half-way through the answer
    client = openai.OpenAI(base_url=f"{farm.url}/v1", api_key="unused", max_retries=0)
    text = "break, some way into a longer answer"
    stream = client.chat.completions.create(
        model="chat", messages=[{"role": "user", "content": text}], stream=True
    )
    seen = []
    with pytest.raises(openai.APIError) as info:
        for chunk in stream:
            seen.append(chunk)
    assert seen and seen[0].choices[0].delta.role == "assistant"
    assert any(c.choices and c.choices[0].delta.content for c in seen)
    assert info.value.code == "upstream_unavailable"
    client.close()


def test_the_sdk_sees_an_error_before_the_first_chunk_as_a_status_error(
    make_farm: FarmFactory,
) -> None:
    farm = make_farm(two_providers)
    farm.sim("a", outage=True)
    farm.sim("b", outage=True)
    client = openai.OpenAI(base_url=f"{farm.url}/v1", api_key="unused", max_retries=0)
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(
            model="chat", messages=[{"role": "user", "content": "x"}], stream=True
        )
    assert info.value.status_code == 503
    client.close()
