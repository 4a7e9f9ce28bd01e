"""Lynkr's own tools. The registry is :data:`app.tools.registry.TOOLS`.

This package's ``__init__`` imports nothing: the agent loads the registry (and with it every
tool module) only when server-side tools are on, so workers without them stay smaller.
"""
