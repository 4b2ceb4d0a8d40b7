from __future__ import annotations

from relay_sim.answer import (
    DEFAULT_MAX_TOKENS,
    Call,
    Finish,
    Triggers,
    estimate_tokens,
    make_answer,
)


def test_estimate_is_chars_over_four_rounded_up():
    assert [estimate_tokens(n) for n in (0, 1, 4, 5, 8)] == [0, 1, 1, 2, 2]


def test_answer_echoes_the_last_user_message():
    call = Call(model="alias", text="hello", prompt_chars=40)
    answer = make_answer("sim-groq", "llama", call)
    assert answer.content == "sim:sim-groq/llama: hello"
    assert answer.finish is Finish.stop
    assert answer.prompt_tokens == 10
    assert answer.completion_tokens == estimate_tokens(len(answer.content))
    assert answer.total_tokens == answer.prompt_tokens + answer.completion_tokens


def test_answer_is_cut_to_max_tokens():
    call = Call(model="m", text="x" * 100, prompt_chars=100, max_tokens=5)
    answer = make_answer("p", "m", call)
    assert answer.content == "sim:p/m: " + "x" * 11
    assert answer.finish is Finish.length
    assert answer.completion_tokens == 5


def test_tool_call_needs_tools_and_the_marker():
    with_tools = Call(model="m", text="do it [call:get_weather]", prompt_chars=10, tools=("x",))
    answer = make_answer("p", "m", with_tools)
    assert answer.tool == "get_weather"
    assert answer.finish is Finish.tool_calls
    without_tools = Call(model="m", text="do it [call:get_weather]", prompt_chars=10)
    assert make_answer("p", "m", without_tools).tool is None


def test_cost_is_prompt_plus_requested_output():
    assert Call("m", "", prompt_chars=40).cost() == 10 + DEFAULT_MAX_TOKENS
    assert Call("m", "", prompt_chars=40, max_tokens=100).cost() == 110
    assert Call("m", "", prompt_chars=40, embed_inputs=("a",)).cost() == 10


def test_embeddings_answer_has_no_completion():
    answer = make_answer("p", "e", Call("e", "abc", prompt_chars=8, embed_inputs=("abc",)))
    assert (answer.prompt_tokens, answer.completion_tokens, answer.content) == (2, 0, "")


def test_pieces_cover_the_content():
    answer = make_answer("p", "m", Call("m", "a" * 50, prompt_chars=1))
    pieces = answer.pieces(16)
    assert "".join(pieces) == answer.content
    assert all(len(p) <= 16 for p in pieces)


def test_triggers():
    assert Triggers.parse("nothing here") == Triggers()
    t = Triggers.parse("x [sim:429] [sim:500] [sim:hang] [sim:garbage] [sim:slow=250]")
    assert t == Triggers(rate_limit=True, server_error=True, hang=True, garbage=True, slow_ms=250)
    assert Triggers.parse("cut [sim:truncate]") == Triggers(truncate=True)
    assert Triggers.parse("[sim:bogus] [sim:slow=]") == Triggers()
