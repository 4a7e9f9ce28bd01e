"""A real MCP server for the tests, written with the official ``mcp`` SDK.

Run as ``python demo_mcp.py stdio`` or ``python demo_mcp.py http PORT``. Its tools cover what
the gateway maps and survives: text, an image, an error result, a slow tool (which writes a
marker file when it is cancelled), a crash, a tool list that grows, an environment probe and a
file write (for the sandbox).
"""

from __future__ import annotations

import os
import socket
import struct
import sys
import zlib
from pathlib import Path

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.utilities.types import Image

server = MCPServer("demo", version="1.0")


def png_pixel() -> bytes:
    """A valid 1x1 red PNG."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00"))
            + chunk(b"IEND", b""))


@server.tool(description="Echo the text back.")
def echo(text: str) -> str:
    return f"echo: {text}"


@server.tool(description="A 1x1 red PNG.")
def pixel() -> Image:
    return Image(data=png_pixel(), format="png")


@server.tool(description="Always fails.")
def fail(reason: str = "as asked") -> str:
    raise ToolError(f"failed {reason}")


@server.tool(description="Sleep, then answer; writes marker_path if cancelled first.")
async def slow(seconds: float, marker_path: str = "") -> str:
    try:
        await anyio.sleep(seconds)
    except anyio.get_cancelled_exc_class():
        if marker_path:
            Path(marker_path).write_text("cancelled")
        raise
    return f"slept {seconds}"


@server.tool(description="Exit the process at once.")
def crash() -> str:
    os._exit(3)


@server.tool(description="The value of an environment variable, or <unset>.")
def env(name: str) -> str:
    return os.environ.get(name, "<unset>")


@server.tool(description="Write text to a file.")
def write(path: str, text: str) -> str:
    try:
        Path(path).write_text(text)
    except OSError as exc:
        raise ToolError(f"{exc.strerror}: {path}") from exc
    return f"wrote {len(text)} characters to {path}"


@server.tool(description="Open a TCP connection to 127.0.0.1:port.")
def connect(port: int) -> str:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except OSError as exc:
        raise ToolError(f"cannot connect: {exc.strerror or exc}") from exc
    return f"connected to port {port}"


@server.tool(description="Add the tool 'late' and tell the client the list changed.")
async def grow(ctx: Context) -> str:
    def late() -> str:
        return "late tool"

    server.add_tool(late, name="late", description="Added by grow.")
    await ctx.request_context.session.send_tool_list_changed()
    return "grown"


if __name__ == "__main__":
    if os.environ.get("DEMO_STDERR"):  # a line for the gateway's log
        print(os.environ["DEMO_STDERR"], file=sys.stderr, flush=True)
    if sys.argv[1:2] == ["http"]:
        server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
    else:
        server.run("stdio")
