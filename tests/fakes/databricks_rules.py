"""What Databricks' Anthropic Messages endpoint rejects with a 400, as one pure check.

Used by the fake upstream's strict mode: a gateway that forwards Claude Code's newest request
fields, system turns, betas or client headers unchanged gets the 400 Databricks would send.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

ALLOWED_FIELDS = frozenset({
    "model", "messages", "system", "max_tokens", "metadata", "stop_sequences", "stream",
    "temperature", "top_p", "top_k", "tools", "tool_choice", "thinking",
})
ALLOWED_BETAS = frozenset({"interleaved-thinking-2025-05-14", "fine-grained-tool-streaming-2025-05-14"})
MAX_TOKENS_LIMIT = 64_000
# Headers only the client itself sends; a gateway must never pass them on.
CLIENT_ONLY_HEADERS = frozenset({
    "x-app", "anthropic-dangerous-direct-browser-access", "x-claude-code-session-id", "x-api-key",
})


def strict_violation(headers: Mapping[str, str], body: Any, own_host: str) -> str | None:
    """The reason Databricks would reject this request, or None when it would accept it.

    ``headers`` must have lower-case names; ``own_host`` is the ``host:port`` of the server.
    """
    return next(_violations(headers, body, own_host), None)


def _violations(headers: Mapping[str, str], body: Any, own_host: str) -> Iterator[str]:
    yield from _header_violations(headers, own_host)
    if not isinstance(body, dict):
        yield "request body must be a JSON object"
        return
    extra = sorted(set(body) - ALLOWED_FIELDS)
    if extra:
        yield f"{extra[0]}: Extra inputs are not permitted"
    max_tokens = body.get("max_tokens")
    if not isinstance(max_tokens, int) or max_tokens < 1:
        yield "max_tokens: Field required"
    elif max_tokens > MAX_TOKENS_LIMIT:
        yield f"max_tokens: {max_tokens} > {MAX_TOKENS_LIMIT}, which is the maximum allowed for this model"
    yield from _thinking_violations(body.get("thinking"), max_tokens)
    for tool in body.get("tools") or []:
        if isinstance(tool, dict) and "defer_loading" in tool:
            yield f"tools.{tool.get('name')}.defer_loading: Extra inputs are not permitted"
    for position, turn in enumerate(body.get("messages") or []):
        role = turn.get("role") if isinstance(turn, dict) else None
        if role not in ("user", "assistant"):
            yield f"messages.{position}.role: Input should be 'user' or 'assistant'"
        elif any(block.get("type") == "tool_reference" for block in _blocks(turn.get("content"))):
            yield f"messages.{position}.content: tool_reference blocks are not supported"


def _header_violations(headers: Mapping[str, str], own_host: str) -> Iterator[str]:
    if headers.get("host") != own_host:
        yield f"host header {headers.get('host')!r} is not this server's ({own_host})"
    for name in headers:
        if name.startswith("x-stainless-") or name in CLIENT_ONLY_HEADERS:
            yield f"header {name} must not be forwarded by a gateway"
    user_agent = headers.get("user-agent", "")
    if user_agent.startswith("claude-cli"):
        yield f"user-agent {user_agent!r} is the client's, not the gateway's"
    for flag in (f.strip() for f in headers.get("anthropic-beta", "").split(",")):
        if flag and flag not in ALLOWED_BETAS:
            yield f"Unsupported anthropic-beta header value: {flag}"


def _thinking_violations(thinking: Any, max_tokens: Any) -> Iterator[str]:
    if thinking is None:
        return
    if not isinstance(thinking, dict):
        yield "thinking: Input should be an object"
        return
    kind = thinking.get("type")
    if kind == "adaptive":
        yield "thinking.type: Input should be 'enabled' or 'disabled'"
    elif kind == "enabled":
        budget = thinking.get("budget_tokens")
        if not isinstance(budget, int) or budget < 1024:
            yield "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
        elif isinstance(max_tokens, int) and budget >= max_tokens:
            yield "`max_tokens` must be greater than `thinking.budget_tokens`"
    elif kind != "disabled":
        yield f"thinking.type: unknown type {kind!r}"


def _blocks(content: Any) -> Iterator[dict[str, Any]]:
    """Every content block of a turn, including blocks nested in tool_result content."""
    if not isinstance(content, list):
        return
    for block in content:
        if not isinstance(block, dict):
            continue
        yield block
        if block.get("type") == "tool_result":
            yield from _blocks(block.get("content"))
