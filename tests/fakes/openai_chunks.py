"""Bodies, chunks and frames as OpenAI's chat-completions API sends them, for the fake OpenAI
upstream (:mod:`tests.fakes.openai_upstream`) and the tests that script it.

:func:`completion` is a whole ``chat.completion`` body; :func:`chunk`, :func:`text_chunks`,
:func:`tool_call_chunks` and :func:`usage_chunk` are ``chat.completion.chunk`` objects;
:func:`sse_data` frames one of them (or ``[DONE]``) for the wire; :func:`error_body` is
OpenAI's error envelope.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Sequence
from typing import Any

DEFAULT_TEXT = "Hello from the fake upstream."
DEFAULT_USAGE = (12, 6)  # prompt_tokens, completion_tokens
CREATED = 1_760_000_000
_ids = itertools.count(1)


def next_id(prefix: str) -> str:
    """A fresh id such as ``chatcmpl-fake000001``."""
    return f"{prefix}fake{next(_ids):06d}"


# -- bodies and chunks --------------------------------------------------------------------------


def tool_call(name: str, arguments: dict[str, Any] | str, call_id: str | None = None) -> dict[str, Any]:
    """A complete tool call as in a ``chat.completion`` message."""
    args = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return {"id": call_id or next_id("call_"), "type": "function", "function": {"name": name, "arguments": args}}


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    """OpenAI's usage object."""
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0}}


def completion(content: str | None = DEFAULT_TEXT, *, tool_calls: list[dict[str, Any]] | None = None,
               finish_reason: str | None = None, model: str = "gpt-4o",
               prompt_tokens: int = DEFAULT_USAGE[0], completion_tokens: int = DEFAULT_USAGE[1]) -> dict[str, Any]:
    """A whole ``chat.completion`` body."""
    message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {
        "id": next_id("chatcmpl-"), "object": "chat.completion", "created": CREATED, "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None,
                     "finish_reason": finish_reason or ("tool_calls" if tool_calls else "stop")}],
        "usage": usage(prompt_tokens, completion_tokens), "service_tier": "default",
        "system_fingerprint": "fp_fake",
    }


def chunk(delta: dict[str, Any] | None, *, finish_reason: str | None = None, model: str = "gpt-4o",
          chunk_id: str = "chatcmpl-fake", with_usage_field: bool = True) -> dict[str, Any]:
    """One ``chat.completion.chunk``; ``delta=None`` is the final usage chunk's empty ``choices``."""
    body: dict[str, Any] = {"id": chunk_id, "object": "chat.completion.chunk", "created": CREATED, "model": model,
                            "service_tier": "default", "system_fingerprint": "fp_fake", "choices": []}
    if delta is not None:
        body["choices"] = [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]
    if with_usage_field:
        body["usage"] = None  # as OpenAI sends it on every chunk when include_usage is set
    return body


def usage_chunk(prompt_tokens: int, completion_tokens: int, *, model: str = "gpt-4o",
                chunk_id: str = "chatcmpl-fake") -> dict[str, Any]:
    """The last chunk of a stream with ``include_usage``: no choices, the usage."""
    return {**chunk(None, model=model, chunk_id=chunk_id), "usage": usage(prompt_tokens, completion_tokens)}


def text_chunks(pieces: Iterable[str], *, model: str = "gpt-4o", finish_reason: str = "stop",
                prompt_tokens: int | None = DEFAULT_USAGE[0], completion_tokens: int = DEFAULT_USAGE[1]
                ) -> list[dict[str, Any]]:
    """A whole stream answering with text; ``prompt_tokens=None`` leaves out the usage chunk."""
    cid = next_id("chatcmpl-")
    out = [chunk({"role": "assistant", "content": "", "refusal": None}, model=model, chunk_id=cid)]
    out += [chunk({"content": piece}, model=model, chunk_id=cid) for piece in pieces]
    out.append(chunk({}, finish_reason=finish_reason, model=model, chunk_id=cid))
    if prompt_tokens is not None:
        out.append(usage_chunk(prompt_tokens, completion_tokens, model=model, chunk_id=cid))
    return out


def tool_call_chunks(calls: Sequence[tuple[str, str, dict[str, Any]]], *, preface: str | None = None,
                     model: str = "gpt-4o", prompt_tokens: int | None = 20, completion_tokens: int = 15
                     ) -> list[dict[str, Any]]:
    """A stream of ``(call_id, name, arguments)`` calls, as OpenAI streams them.

    The first fragment of a call carries index, id, type, name and empty arguments; the
    arguments follow in three pieces that split the JSON anywhere.
    """
    cid = next_id("chatcmpl-")
    out = [chunk({"role": "assistant", "content": preface if preface else None, "refusal": None},
                 model=model, chunk_id=cid)]
    for index, (call_id, name, arguments) in enumerate(calls):
        head = {"index": index, "id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}
        out.append(chunk({"tool_calls": [head]}, model=model, chunk_id=cid))
        text = json.dumps(arguments)
        cuts = [0, len(text) // 3, 2 * len(text) // 3, len(text)]
        for start, end in itertools.pairwise(cuts):
            fragment = {"index": index, "function": {"arguments": text[start:end]}}
            out.append(chunk({"tool_calls": [fragment]}, model=model, chunk_id=cid))
    out.append(chunk({}, finish_reason="tool_calls", model=model, chunk_id=cid))
    if prompt_tokens is not None:
        out.append(usage_chunk(prompt_tokens, completion_tokens, model=model, chunk_id=cid))
    return out


def error_body(message: str, error_type: str = "invalid_request_error", param: str | None = None,
               code: str | None = None) -> dict[str, Any]:
    """OpenAI's error envelope."""
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}


def sse_data(item: dict[str, Any] | str) -> bytes:
    """One SSE frame as OpenAI sends it: a ``data:`` line and a blank line."""
    payload = item if isinstance(item, str) else json.dumps(item, ensure_ascii=False)
    return f"data: {payload}\n\n".encode()
