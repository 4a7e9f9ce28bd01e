"""MCP: the gateway as a client of Model Context Protocol servers, and their tools offered to the model.

- :mod:`app.mcp.jsonrpc` — JSON-RPC 2.0 messages (pure);
- :mod:`app.mcp.transport`, :mod:`app.mcp.stdio`, :mod:`app.mcp.http` — how bytes reach a server;
- :mod:`app.mcp.client` — the protocol lifecycle and tool calls over any transport;
- :mod:`app.mcp.manifest` — which servers are declared, and where;
- :mod:`app.mcp.launch` — a declared server's environment, sandbox and transport;
- :mod:`app.mcp.supervisor` — each worker's servers, kept running;
- :mod:`app.mcp.content` — tool results as Anthropic ``tool_result`` content;
- :mod:`app.mcp.tools` — the tools offered to the model; :mod:`app.mcp.commands` — ``lynkr mcp``.
"""
