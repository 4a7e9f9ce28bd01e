"""JSON-RPC 2.0 framing for MCP: building messages and telling incoming ones apart.

Pure functions and data only — no I/O. A transport turns bytes into dicts; :func:`parse`
says whether a dict is a request, a notification or a response (and raises
:class:`ProtocolError` for anything else), and the builders make the messages the client sends.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

VERSION = "2.0"
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603

RequestId = int | str


class ProtocolError(Exception):
    """A message that is not valid JSON-RPC 2.0."""


class RemoteError(Exception):
    """The peer answered a request with a JSON-RPC error object."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(f"{message} (JSON-RPC error {code})")
        self.code = code
        self.message = message
        self.data = data


@dataclass(frozen=True)
class Request:
    """A call that expects a response with the same ``id``."""

    id: RequestId
    method: str
    params: dict[str, Any] | None = None


@dataclass(frozen=True)
class Notification:
    """A one-way message: no ``id``, no response."""

    method: str
    params: dict[str, Any] | None = None


@dataclass(frozen=True)
class Response:
    """The answer to a request: ``result`` or ``error`` (never both)."""

    id: RequestId | None
    result: Any = None
    error: RemoteError | None = None


Message = Request | Notification | Response


def request(request_id: RequestId, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """The wire form of a request."""
    message: dict[str, Any] = {"jsonrpc": VERSION, "id": request_id, "method": method}
    if params is not None:
        message["params"] = params
    return message


def notification(method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """The wire form of a notification."""
    message: dict[str, Any] = {"jsonrpc": VERSION, "method": method}
    if params is not None:
        message["params"] = params
    return message


def result(request_id: RequestId, value: Any) -> dict[str, Any]:
    """The wire form of a successful response."""
    return {"jsonrpc": VERSION, "id": request_id, "result": value}


def error(request_id: RequestId | None, code: int, message: str) -> dict[str, Any]:
    """The wire form of an error response."""
    return {"jsonrpc": VERSION, "id": request_id, "error": {"code": code, "message": message}}


def parse(message: Any) -> Message:
    """The typed form of one decoded message; :class:`ProtocolError` when it is not JSON-RPC 2.0."""
    if not isinstance(message, dict) or message.get("jsonrpc") != VERSION:
        raise ProtocolError(f"not a JSON-RPC 2.0 message: {_preview(message)}")
    params = message.get("params")
    if params is not None and not isinstance(params, dict):
        raise ProtocolError(f"params must be an object: {_preview(message)}")
    if "method" in message:
        if not isinstance(message["method"], str):
            raise ProtocolError(f"method must be a string: {_preview(message)}")
        if "id" in message:
            return Request(_request_id(message), message["method"], params)
        return Notification(message["method"], params)
    if "result" in message:
        return Response(_request_id(message), result=message["result"])
    if "error" in message:
        return Response(None if message.get("id") is None else _request_id(message), error=_remote_error(message))
    raise ProtocolError(f"neither a request, a notification nor a response: {_preview(message)}")


def parse_batch(payload: Any) -> list[Message]:
    """The messages of one decoded payload: a single message or a batch (array)."""
    if isinstance(payload, list):
        return [parse(item) for item in payload]
    return [parse(payload)]


def _request_id(message: dict[str, Any]) -> RequestId:
    value = message.get("id")
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ProtocolError(f"id must be a string or an integer: {_preview(message)}")
    return value


def _remote_error(message: dict[str, Any]) -> RemoteError:
    body = message["error"]
    if not isinstance(body, dict) or not isinstance(body.get("code"), int):
        raise ProtocolError(f"error must be an object with an integer code: {_preview(message)}")
    return RemoteError(body["code"], str(body.get("message", "")), body.get("data"))


def _preview(message: Any) -> str:
    text = repr(message)
    return text if len(text) <= 200 else text[:200] + "…"
