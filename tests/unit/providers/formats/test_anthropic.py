"""to_upstream / filter_betas: each rewriting rule for Anthropic-format hosts, with exact output.

DATABRICKS and AZURE are the built-in profiles (neither takes system turns, adaptive thinking
or deferred tools); ANTHROPIC forwards everything, so it shows what "untouched" means.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import pytest

from app.anthropic.events import StreamBuilder, StreamGrammarError
from app.anthropic.sse import FramedEvent
from app.providers.capabilities import HOST_PROFILES, HostProfile, ModelCapabilities
from app.providers.formats.anthropic import EMPTY_MESSAGE, StreamTranslator, filter_betas, to_upstream
from tests.conftest import load_fixture

DATABRICKS = HOST_PROFILES["databricks"]
AZURE = HOST_PROFILES["azure-anthropic"]
ANTHROPIC = HOST_PROFILES["anthropic"]
CAPS = ModelCapabilities(max_output_tokens=64_000)
MODEL = "upstream-model"


def make_request(**fields: Any) -> dict[str, Any]:
    return {"model": "claude-sonnet-4-5", "max_tokens": 4096, "messages": [{"role": "user", "content": "hi"}],
            **fields}


def send(request: dict[str, Any], profile: HostProfile = DATABRICKS, caps: ModelCapabilities = CAPS) -> dict:
    return to_upstream(request, model=MODEL, profile=profile, caps=caps)


def tool(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "description": f"{name} tool", "input_schema": {"type": "object"}, **extra}


def tool_use_turn(*blocks: dict[str, Any]) -> dict[str, Any]:
    return {"role": "assistant", "content": [*blocks, {"type": "tool_use", "id": "toolu_1", "name": "Bash",
                                                        "input": {"command": "ls"}}]}


TOOL_RESULT = {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "a.txt"}]}


# -- every profile ----------------------------------------------------------------------------


@pytest.mark.parametrize("profile", [DATABRICKS, AZURE, ANTHROPIC], ids=lambda p: p.name)
def test_a_plain_request_only_gets_the_upstream_model(profile: HostProfile) -> None:
    request = make_request(system="Be brief.", temperature=0.2, stop_sequences=["END"])
    assert send(request, profile) == {**request, "model": MODEL}


def test_the_request_is_not_mutated() -> None:
    request = load_fixture("v2.1.331-model-haiku-request2.json")["body"]
    before = copy.deepcopy(request)
    send(request)
    assert request == before


# -- system turns -----------------------------------------------------------------------------


def test_system_turns_are_hoisted_after_the_system_prompt_in_order() -> None:
    second = {"type": "text", "text": "second", "cache_control": {"type": "ephemeral"}}
    request = make_request(system="Base", messages=[
        {"role": "user", "content": "a"},
        {"role": "system", "content": "first", "output_config": {"effort": "low"}},
        {"role": "assistant", "content": "b"},
        {"role": "system", "content": [second, {"type": "image", "source": {"type": "url", "url": "u"}}]},
        {"role": "user", "content": "c"},
    ])
    assert send(request) == {**request, "model": MODEL, "system": [
        {"type": "text", "text": "Base"}, {"type": "text", "text": "first"}, second,
    ], "messages": [
        {"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"},
    ]}


def test_system_turns_without_text_are_removed_and_add_no_system() -> None:
    request = make_request(messages=[{"role": "user", "content": "a"}, {"role": "system", "content": []}])
    assert send(request) == {**request, "model": MODEL, "messages": [{"role": "user", "content": "a"}]}


def test_system_turns_stay_in_place_where_the_host_takes_them() -> None:
    request = make_request(system="Base", messages=[{"role": "user", "content": "a"},
                                                    {"role": "system", "content": "first"}])
    assert send(request, ANTHROPIC) == {**request, "model": MODEL}


# -- thinking ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("output_config", "budget"), [
    ({"effort": "low"}, 4_096), ({"effort": "medium"}, 10_000), ({"effort": "high"}, 24_000),
    ({"effort": "max"}, 32_000), ({"effort": "xhigh"}, 10_000), ({}, 10_000), (None, 10_000),
])
def test_adaptive_thinking_becomes_enabled_with_the_effort_budget(output_config: Any, budget: int) -> None:
    request = make_request(max_tokens=64_000, thinking={"type": "adaptive", "display": "omitted"})
    if output_config is not None:
        request["output_config"] = output_config
    assert send(request) == {**make_request(max_tokens=64_000), "model": MODEL,
                             "thinking": {"type": "enabled", "budget_tokens": budget}}


def test_adaptive_budget_stays_below_max_tokens() -> None:
    request = make_request(max_tokens=16_000, thinking={"type": "adaptive"}, output_config={"effort": "high"})
    assert send(request)["thinking"] == {"type": "enabled", "budget_tokens": 15_999}


@pytest.mark.parametrize(("max_tokens", "kept"), [(1_024, False), (1_025, True)])
def test_thinking_is_dropped_when_the_budget_would_fall_below_1024(max_tokens: int, kept: bool) -> None:
    request = make_request(max_tokens=max_tokens, thinking={"type": "adaptive"})
    sent = send(request)
    assert sent == {**make_request(max_tokens=max_tokens), "model": MODEL,
                    **({"thinking": {"type": "enabled", "budget_tokens": 1_024}} if kept else {})}


def test_enabled_thinking_is_fitted_below_max_tokens_and_loses_newer_options() -> None:
    request = make_request(max_tokens=32_000, thinking={"type": "enabled", "budget_tokens": 31_999,
                                                        "display": "omitted"})
    assert send(request)["thinking"] == {"type": "enabled", "budget_tokens": 31_999}
    request["max_tokens"] = 8_000
    assert send(request)["thinking"] == {"type": "enabled", "budget_tokens": 7_999}
    assert send(request, ANTHROPIC)["thinking"] == {"type": "enabled", "budget_tokens": 7_999, "display": "omitted"}


def test_adaptive_thinking_and_output_config_pass_untouched_where_the_host_takes_them() -> None:
    request = make_request(max_tokens=2_000, thinking={"type": "adaptive", "display": "updates"},
                           output_config={"effort": "max"})
    assert send(request, ANTHROPIC) == {**request, "model": MODEL}


@pytest.mark.parametrize(("blocks", "kept"), [
    ((), False),
    (({"type": "thinking", "thinking": "t", "signature": "sig"},), True),
    (({"type": "redacted_thinking", "data": "d"},), True),
])
def test_a_tool_continuation_keeps_thinking_only_if_its_turn_has_thinking(blocks: tuple, kept: bool) -> None:
    messages = [{"role": "user", "content": "run"}, tool_use_turn(*blocks), TOOL_RESULT]
    request = make_request(thinking={"type": "enabled", "budget_tokens": 2_000}, messages=messages)
    assert ("thinking" in send(request)) is kept


def test_an_earlier_tool_turn_without_thinking_does_not_turn_thinking_off() -> None:
    messages = [{"role": "user", "content": "run"}, tool_use_turn(), TOOL_RESULT,
                {"role": "assistant", "content": [{"type": "text", "text": "done"}]},
                {"role": "user", "content": "thanks"}]
    request = make_request(thinking={"type": "enabled", "budget_tokens": 2_000}, messages=messages)
    assert send(request)["thinking"] == {"type": "enabled", "budget_tokens": 2_000}


@pytest.mark.parametrize("profile", [DATABRICKS, ANTHROPIC], ids=lambda p: p.name)
def test_synthetic_thinking_is_removed_and_real_thinking_kept(profile: HostProfile) -> None:
    real = {"type": "thinking", "thinking": "mine", "signature": "EqQBCkYIBxgCKkA"}
    synthetic = {"type": "thinking", "thinking": "from gpt", "signature": "lynkr-synthetic:abc"}
    request = make_request(thinking={"type": "enabled", "budget_tokens": 2_000}, messages=[
        {"role": "user", "content": "a"}, {"role": "assistant", "content": [real, {"type": "text", "text": "b"}]},
        {"role": "user", "content": "run"}, tool_use_turn(synthetic), TOOL_RESULT,
    ])
    sent = send(request, profile)
    assert sent["messages"] == [*request["messages"][:3], tool_use_turn(), TOOL_RESULT]
    assert "thinking" not in sent


# -- deferred tools and tool_reference ---------------------------------------------------------


def test_deferred_tools_become_ordinary_tools_and_tool_search_is_kept() -> None:
    tool_search = tool("ToolSearch", input_schema={"$schema": "https://json-schema.org/draft/2020-12/schema",
                                                   "type": "object", "properties": {"query": {"type": "string"}}})
    server = {"type": "web_search_20250305", "name": "web_search", "max_uses": 5}
    request = make_request(tools=[
        tool("Read"), tool_search,
        tool("mcp__slack__send", defer_loading=True, strict=True, input_examples=[{}]),
        tool("WebFetch", type="custom", defer_loading=True, cache_control={"type": "ephemeral"}),
        server,
    ])
    assert send(request)["tools"] == [
        tool("Read"), tool_search, tool("mcp__slack__send"),
        tool("WebFetch", type="custom", cache_control={"type": "ephemeral"}), server,
    ]


def test_tool_references_in_tool_results_become_text() -> None:
    result = {"type": "tool_result", "tool_use_id": "toolu_ts", "is_error": False,
              "cache_control": {"type": "ephemeral"}, "content": [
                  {"type": "tool_reference", "tool_name": "WebFetch"},
                  {"type": "tool_reference", "tool_name": "mcp__slack__send"},
                  {"type": "text", "text": "2 tools loaded"}]}
    plain = {"type": "tool_result", "tool_use_id": "toolu_2", "content": "ok"}
    request = make_request(messages=[{"role": "user", "content": "search"},
                                     {"role": "assistant", "content": [{"type": "text", "text": "x"}]},
                                     {"role": "user", "content": [result, plain]}])
    assert send(request)["messages"] == [*request["messages"][:2], {"role": "user", "content": [
        {**result, "content": [{"type": "text", "text": "Tool WebFetch is now available to call."},
                               {"type": "text", "text": "Tool mcp__slack__send is now available to call."},
                               {"type": "text", "text": "2 tools loaded"}]},
        plain,
    ]}]


def test_deferred_tools_and_tool_references_pass_untouched_where_the_host_takes_them() -> None:
    request = make_request(tools=[tool("ToolSearch"), tool("WebFetch", defer_loading=True)], messages=[
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_ts", "content": [
            {"type": "tool_reference", "tool_name": "WebFetch"}]}]}])
    assert send(request, ANTHROPIC) == {**request, "model": MODEL}


# -- fields and betas -------------------------------------------------------------------------


NEWER_FIELDS = {"context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
                "output_config": {"effort": "low"}, "future_field": {"x": [1]}}
CORE_VALUES = {"metadata": {"user_id": "u"}, "stop_sequences": ["END"], "stream": True, "temperature": 1,
               "top_p": 0.9, "top_k": 5, "tool_choice": {"type": "auto"}, "tools": [tool("Read")],
               "system": [{"type": "text", "text": "s"}]}


@pytest.mark.parametrize(("host", "kept"), [
    ("databricks", set()), ("azure-anthropic", {"context_management"}), ("anthropic", set(NEWER_FIELDS)),
])
def test_fields_the_host_does_not_take_are_dropped(host: str, kept: set[str]) -> None:
    request = make_request(**CORE_VALUES, **NEWER_FIELDS)
    assert send(request, HOST_PROFILES[host]) == {**make_request(**CORE_VALUES), "model": MODEL,
                                      **{k: v for k, v in NEWER_FIELDS.items() if k in kept}}


@pytest.mark.parametrize(("header", "profile", "expected"), [
    (None, DATABRICKS, None),
    ("", ANTHROPIC, None),
    ("claude-code-20250219, interleaved-thinking-2025-05-14,context-management-2025-06-27,"
     "fine-grained-tool-streaming-2025-05-14", DATABRICKS,
     "interleaved-thinking-2025-05-14,fine-grained-tool-streaming-2025-05-14"),
    ("claude-code-20250219,context-management-2025-06-27,effort-2025-11-24", AZURE, "context-management-2025-06-27"),
    ("claude-code-20250219,effort-2025-11-24", DATABRICKS, None),
    ("claude-code-20250219, effort-2025-11-24,", ANTHROPIC, "claude-code-20250219,effort-2025-11-24"),
], ids=["absent", "empty", "databricks", "azure", "none-left", "all-normalised"])
def test_betas_the_host_does_not_take_are_dropped(header: str | None, profile: HostProfile,
                                                  expected: str | None) -> None:
    assert filter_betas(header, profile) == expected


# -- max_tokens -------------------------------------------------------------------------------


@pytest.mark.parametrize("profile", [DATABRICKS, ANTHROPIC], ids=lambda p: p.name)
@pytest.mark.parametrize(("asked", "sent"), [(128_000, 64_000), (64_000, 64_000), (100, 100)])
def test_max_tokens_is_clamped_to_the_model_limit_on_every_host(profile: HostProfile, asked: int, sent: int) -> None:
    assert send(make_request(max_tokens=asked), profile) == {**make_request(max_tokens=sent), "model": MODEL}


def test_the_thinking_budget_fits_the_clamped_max_tokens() -> None:
    request = make_request(max_tokens=128_000, thinking={"type": "adaptive"}, output_config={"effort": "max"})
    sent = send(request, caps=ModelCapabilities(max_output_tokens=8_192))
    assert (sent["max_tokens"], sent["thinking"]) == (8_192, {"type": "enabled", "budget_tokens": 8_191})


# -- recorded Claude Code requests ------------------------------------------------------------


def test_recorded_first_request_fitted_to_databricks() -> None:
    body = load_fixture("v2.1.331-model-haiku-request1.json")["body"]
    user, system_turn = body["messages"]
    placeholder = body["tools"][10]
    assert placeholder["defer_loading"] is True
    assert send(body) == {
        "model": MODEL, "max_tokens": 64_000, "stream": True, "metadata": body["metadata"],
        "system": body["system"] + system_turn["content"], "messages": [user],
        "tools": [*body["tools"][:10], {k: v for k, v in placeholder.items() if k != "defer_loading"},
                  body["tools"][11]],
        "thinking": {"type": "enabled", "budget_tokens": 10_000},
    }


def test_recorded_continuation_fitted_to_azure() -> None:
    body = load_fixture("v2.1.331-model-haiku-request2.json")["body"]
    user, system_text, assistant, result, system_blocks = body["messages"]
    assert isinstance(system_text["content"], str)
    sent = send(body, AZURE)
    assert sent == {
        "model": MODEL, "max_tokens": 64_000, "stream": True, "metadata": body["metadata"],
        "context_management": body["context_management"],
        "system": [*body["system"], {"type": "text", "text": system_text["content"]}, *system_blocks["content"]],
        "messages": [user, assistant, result],
        "tools": [{k: v for k, v in t.items() if k != "defer_loading"} for t in body["tools"]],
    }


def relay(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    translator = StreamTranslator(StreamBuilder(message_id="msg_1", model="claude-sonnet-4-5"))
    out = [sent for event in events for sent in translator.feed(event)]
    return out + translator.close()


MESSAGE_START = {"type": "message_start", "message": {"id": "msg_up", "type": "message", "role": "assistant",
                                                      "model": "up", "content": [], "stop_reason": None,
                                                      "usage": {"input_tokens": 3, "output_tokens": 0}}}


def test_a_relayed_message_with_no_block_and_no_stop_reason_ends_in_an_error() -> None:
    out = relay([MESSAGE_START, {"type": "message_delta", "delta": {"stop_reason": None}, "usage": {}},
                 {"type": "message_stop"}])
    assert [event["type"] for event in out] == ["message_start", "message_delta", "error"]
    assert out[-1]["error"] == {"type": "api_error", "message": EMPTY_MESSAGE}


def test_a_relayed_message_with_a_stop_reason_and_no_block_is_an_empty_answer() -> None:
    out = relay([MESSAGE_START, {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {}},
                 {"type": "message_stop"}])
    assert out[-1] == {"type": "message_stop"}


def test_a_relayed_message_with_a_block_is_relayed_whole() -> None:
    block = {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
    out = relay([MESSAGE_START, block, {"type": "content_block_stop", "index": 0},
                 {"type": "message_delta", "delta": {"stop_reason": None}, "usage": {}}, {"type": "message_stop"}])
    assert out[-1] == {"type": "message_stop"}


FORMAT = {"type": "json_schema", "schema": {"type": "object", "properties": {"a": {"type": "string"}},
                                            "additionalProperties": False}}


def test_a_structured_output_passes_untouched_where_the_host_takes_everything() -> None:
    body = send(make_request(output_config={"format": FORMAT, "effort": "low"}), ANTHROPIC)
    assert body["output_config"] == {"format": FORMAT, "effort": "low"}


@pytest.mark.parametrize("profile", [DATABRICKS, AZURE])
def test_a_structured_output_is_dropped_where_the_host_does_not_take_it(profile: HostProfile) -> None:
    assert "output_config" not in send(make_request(output_config={"format": FORMAT, "effort": "low"}), profile)


def test_a_host_profile_that_takes_structured_outputs_gets_only_the_format() -> None:
    profile = dataclasses.replace(DATABRICKS, output_format=True)
    body = send(make_request(output_config={"format": FORMAT, "effort": "low"}), profile)
    assert body["output_config"] == {"format": FORMAT}  # effort is not among Databricks' fields


def test_a_host_that_takes_output_config_but_not_the_format_keeps_the_rest() -> None:
    profile = dataclasses.replace(AZURE, fields=AZURE.fields | {"output_config"})
    body = send(make_request(output_config={"format": FORMAT, "effort": "low"}), profile)
    assert body["output_config"] == {"effort": "low"}


def test_a_framed_delta_goes_on_as_its_own_bytes_and_is_accounted_for() -> None:
    builder = StreamBuilder(message_id="msg_1", model="claude-sonnet-4-5")
    translator = StreamTranslator(builder)
    translator.feed(MESSAGE_START)
    translator.feed({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})
    raw = b'event: content_block_delta\ndata: {"type": "content_block_delta", "index": 0, "delta": {...}}\n\n'
    delta = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "hi", "x": 1}}

    assert translator.frame(FramedEvent(delta, raw)) == raw
    assert builder.accumulator.message["content"] == [{"type": "text", "text": "hi"}]
    assert translator.frame(delta) is None  # no bytes of its own: fed instead
    assert translator.frame(FramedEvent({"type": "ping"}, b"event: ping\ndata: {}\n\n")) is None
    assert translator.frame(FramedEvent(delta, b"event: ping\ndata: {}\n\n")) is None  # named otherwise


def test_a_framed_delta_for_a_block_that_is_not_open_breaks_the_grammar() -> None:
    translator = StreamTranslator(StreamBuilder(message_id="msg_1", model="claude-sonnet-4-5"))
    translator.feed(MESSAGE_START)
    delta = {"type": "content_block_delta", "index": 3, "delta": {"type": "text_delta", "text": "hi"}}
    with pytest.raises(StreamGrammarError):
        translator.frame(FramedEvent(delta, b"event: content_block_delta\ndata: {}\n\n"))
