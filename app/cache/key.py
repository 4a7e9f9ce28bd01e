"""The prompt cache key: SHA-256 over the canonical JSON of what decides an answer.

Everything in the request body decides the answer except what is listed in :data:`IGNORED`
(the client's model name, which the provider and upstream model replace; the stream flag;
``metadata``; the service tier). Keeping unknown fields in the key is deliberate: ingress is
lenient and Anthropic-format upstreams receive them, so a field we have not met yet may change
the answer, and a needless miss costs less than a wrong hit.

Two things that do not decide the answer are normalised away inside the conversation:
``cache_control`` markers (Claude Code moves them every turn) and tool call ids, which are
renamed by first appearance (``id0``, ``id1``...) so a replayed conversation with fresh
``toolu_`` ids keys the same while each ``tool_result`` still points at its own call.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

KEY_VERSION = 1
IGNORED = frozenset({"model", "stream", "metadata", "service_tier"})
FLOAT_FIELDS = ("temperature", "top_p")  # 1 and 1.0 are the same temperature


def cache_key(request: dict[str, Any], provider: str, model: str) -> str:
    """The hex SHA-256 of ``request`` as answered by ``model`` on ``provider``."""
    canonical = canonical_request(request, provider, model)
    return hashlib.sha256(orjson.dumps(canonical, option=orjson.OPT_SORT_KEYS)).hexdigest()


def canonical_request(request: dict[str, Any], provider: str, model: str) -> dict[str, Any]:
    """The part of ``request`` that decides the answer, with ids and cache markers normalised."""
    ids: dict[str, str] = {}
    body = {k: v for k, v in request.items() if k not in IGNORED}
    if "system" in body:
        body["system"] = _content(body["system"], ids)
    if isinstance(body.get("messages"), list):
        body["messages"] = [_message(m, ids) for m in body["messages"]]
    if isinstance(body.get("tools"), list):
        body["tools"] = [_without_marker(t) for t in body["tools"]]
    for name in FLOAT_FIELDS:
        value = body.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            body[name] = float(value)
    return {"v": KEY_VERSION, "provider": provider, "model": model, "request": body}


def _message(message: Any, ids: dict[str, str]) -> Any:
    if not isinstance(message, dict) or "content" not in message:
        return message
    return {**message, "content": _content(message["content"], ids)}


def _content(content: Any, ids: dict[str, str]) -> Any:
    if isinstance(content, list):
        return [_block(block, ids) for block in content]
    return content


def _block(block: Any, ids: dict[str, str]) -> Any:
    if not isinstance(block, dict):
        return block
    out = {k: v for k, v in block.items() if k != "cache_control"}
    # tool_use, server_tool_use, mcp_tool_use carry "id"; their results carry "tool_use_id".
    if str(out.get("type", "")).endswith("tool_use") and isinstance(out.get("id"), str):
        out["id"] = _alias(out["id"], ids)
    if isinstance(out.get("tool_use_id"), str):
        out["tool_use_id"] = _alias(out["tool_use_id"], ids)
    if isinstance(out.get("content"), list):
        out["content"] = _content(out["content"], ids)
    return out


def _alias(tool_id: str, ids: dict[str, str]) -> str:
    return ids.setdefault(tool_id, f"id{len(ids)}")


def _without_marker(value: Any) -> Any:
    if isinstance(value, dict) and "cache_control" in value:
        return {k: v for k, v in value.items() if k != "cache_control"}
    return value
