"""Every environment variable Lynkr reads, declared once: name, parser, default, unit, secrecy.

:data:`SETTINGS` drives parsing, the masked view ``lynkr check`` prints and ``.env.example``;
:mod:`app.config` turns it into a :class:`~app.config.Config`. Names are the Node Lynkr's wherever
it had one, and durations keep its unit (milliseconds). A parser raises ``ValueError`` with what
it expected; the loader turns that into one sentence naming the variable.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


def _bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError("expected true or false")


def _int(raw: str) -> int:
    value = int(raw.strip())
    if value < 0:
        raise ValueError("expected a whole number of at least 0")
    return value


def _float(raw: str) -> float:
    return float(raw.strip())


def _money(raw: str) -> float:
    value = float(raw.strip())
    if not value >= 0:
        raise ValueError("expected an amount in USD of at least 0")
    return value


def _str(raw: str) -> str:
    return raw.strip()


def _list(raw: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in raw.split(",") if item.strip())


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"b": 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3}


def _size(raw: str) -> int:
    match = _SIZE.match(raw)
    if not match:
        raise ValueError("expected a size such as 32mb, 512kb or a number of bytes")
    return int(float(match.group(1)) * _SIZE_UNITS[(match.group(2) or "b").lower()])


def _provider(raw: str) -> str:
    value = raw.strip().lower()
    if value not in PROVIDER_NAMES:
        raise ValueError("expected one of " + ", ".join(sorted(PROVIDER_NAMES)))
    return value


def _tool_mode(raw: str) -> str:
    value = raw.strip().lower()
    if value not in {"server", "client", "passthrough"}:
        raise ValueError("expected server, client or passthrough")
    return value


def _api_format(raw: str) -> str:
    value = raw.strip().lower()
    if value not in {"", "anthropic", "openai"}:
        raise ValueError("expected anthropic or openai")
    return value


PROVIDER_NAMES = frozenset({
    "databricks", "azure-anthropic", "azure-openai", "openai", "openrouter", "ollama",
    "openai-compatible",
})


@dataclass(frozen=True)
class Setting:
    """One environment variable: how to read it, its default, and how to document it."""

    env: str
    attr: str
    parse: Callable[[str], Any]
    default: Any
    doc: str
    secret: bool = False


S = Setting
SETTINGS: tuple[Setting, ...] = (
    # Server
    S("HOST", "host", _str, "127.0.0.1", "address to bind; anything but loopback needs LYNKR_API_KEYS"),
    S("PORT", "port", _int, 8080, "TCP port"),
    S("WEB_CONCURRENCY", "workers", _int, 0,
      "gunicorn worker processes (0: one per CPU this process may use, cgroup quota included, at most 8)"),
    S("LYNKR_THREADS", "threads", _int, 1024,
      "threads per worker; each holds one request or stream, most of them waiting on their upstream"),
    S("LYNKR_MAX_CONCURRENT_STREAMS", "max_concurrent_requests", _int, 0,
      "model requests in flight per worker before 529 (0: threads minus 4)"),
    S("LYNKR_CAP_WAIT_MS", "cap_wait_ms", _int, 2000,
      "ms a model request waits for a free slot before 529 when the worker is at its cap"),
    S("GRACEFUL_SHUTDOWN_TIMEOUT", "graceful_shutdown_timeout_ms", _int, 30000,
      "ms in-flight requests get to finish on shutdown"),
    S("LYNKR_PRESTOP_DELAY_MS", "prestop_delay_ms", _int, 5000,
      "ms the service keeps accepting (answering 503) after SIGTERM before stopping"),
    S("LYNKR_UPSTREAM_TIMEOUT_MS", "upstream_timeout_ms", _int, 600000,
      "ms to wait for an upstream byte before giving up"),
    S("LYNKR_CONNECT_TIMEOUT_MS", "connect_timeout_ms", _int, 10000, "ms to connect upstream"),
    S("LYNKR_KEEPALIVE_COMMIT_MS", "keepalive_commit_ms", _int, 10000,
      "ms of upstream silence before a stream commits 200 and sends keepalives"),
    S("LYNKR_PING_INTERVAL_MS", "ping_interval_ms", _int, 15000, "ms of silence between ping events"),
    S("REQUEST_JSON_LIMIT", "request_json_limit", _size, 32 * 1024**2, "largest request body (e.g. 32mb)"),
    S("LYNKR_BODY_READ_TIMEOUT_MS", "body_read_timeout_ms", _int, 5000,
      "ms a request body may pause between bytes before the request ends as 408"),
    S("LYNKR_SLOW_BODY_LIMIT", "slow_body_limit", _int, 0,
      "threads per worker that may wait on a slowly sent body (0: a quarter of LYNKR_THREADS)"),
    S("LYNKR_MAX_UPSTREAM_EVENT_BYTES", "max_upstream_event_bytes", _size, 16 * 1024**2,
      "largest upstream JSON body, SSE line or NDJSON line (e.g. 16mb); a larger one is an upstream error"),
    # Inbound access
    S("LYNKR_API_KEYS", "api_keys", _list, (), "comma-separated keys clients must send", secret=True),
    S("LYNKR_ADMIN_KEYS", "admin_keys", _list, (), "keys that may also read every session", secret=True),
    S("LYNKR_ALLOW_OPEN", "allow_open", _bool, False, "allow a non-loopback bind without API keys"),
    # Budgets, rate limits and prices (0: no limit)
    S("BUDGET_KEY_DAILY_TOKENS", "budget_key_daily_tokens", _int, 0, "tokens per key per UTC day"),
    S("BUDGET_KEY_MONTHLY_TOKENS", "budget_key_monthly_tokens", _int, 0, "tokens per key per UTC month"),
    S("BUDGET_KEY_DAILY_USD", "budget_key_daily_usd", _money, 0.0, "USD per key per UTC day"),
    S("BUDGET_KEY_MONTHLY_USD", "budget_key_monthly_usd", _money, 0.0, "USD per key per UTC month"),
    S("BUDGET_SESSION_TOKENS", "budget_session_tokens", _int, 0, "tokens per session"),
    S("BUDGET_SESSION_USD", "budget_session_usd", _money, 0.0, "USD per session"),
    S("RATE_LIMIT_REQUESTS_PER_MINUTE", "rate_limit_requests_per_minute", _int, 0,
      "model requests per key in any 60 s (a sliding window) before 429"),
    S("RATE_LIMIT_TOKENS_PER_MINUTE", "rate_limit_tokens_per_minute", _int, 0,
      "tokens per key in any 60 s (a sliding window) before 429"),
    S("PRICE_TABLE", "price_table_file", _str, "",
      "JSON file of prices, USD per million tokens: {\"gpt-5*\": {\"input\": 1.25, \"output\": 10}}"),
    S("DEFAULT_PRICE_INPUT", "default_price_input", _money, None,
      "USD per million input tokens for models the price table lacks (unset: unknown)"),
    S("DEFAULT_PRICE_OUTPUT", "default_price_output", _money, None,
      "USD per million output tokens for models the price table lacks (unset: unknown)"),
    # Providers
    S("MODEL_PROVIDER", "model_provider", _provider, "databricks", "provider for every request"),
    S("MODEL_DEFAULT", "model_default", _str, "", "upstream model for Claude model names"),
    S("DATABRICKS_API_BASE", "databricks_api_base", _str, "", "workspace URL, https://<ws>.databricks.com"),
    S("DATABRICKS_API_KEY", "databricks_api_key", _str, "", "personal access token", secret=True),
    S("DATABRICKS_ENDPOINT_PATH", "databricks_endpoint_path", _str, "",
      "serving endpoint path; unset: /serving-endpoints/anthropic/v1/messages"),
    S("DATABRICKS_API_FORMAT", "databricks_api_format", _api_format, "",
      "anthropic or openai (default: from the endpoint path)"),
    S("AZURE_ANTHROPIC_ENDPOINT", "azure_anthropic_endpoint", _str, "",
      "full URL ending in /anthropic/v1/messages"),
    S("AZURE_ANTHROPIC_API_KEY", "azure_anthropic_api_key", _str, "", "Azure key", secret=True),
    S("AZURE_ANTHROPIC_VERSION", "azure_anthropic_version", _str, "",
      "anthropic-version sent upstream (default: the client's)"),
    S("AZURE_ANTHROPIC_MODEL", "azure_anthropic_model", _str, "", "deployment model name"),
    S("AZURE_OPENAI_ENDPOINT", "azure_openai_endpoint", _str, "", "https://<resource>.openai.azure.com"),
    S("AZURE_OPENAI_API_KEY", "azure_openai_api_key", _str, "", "Azure OpenAI key (api-key header)",
      secret=True),
    S("AZURE_OPENAI_DEPLOYMENT", "azure_openai_deployment", _str, "", "deployment name"),
    S("AZURE_OPENAI_API_VERSION", "azure_openai_api_version", _str, "2024-10-21", "api-version query value"),
    S("OPENAI_API_KEY", "openai_api_key", _str, "", "OpenAI key", secret=True),
    S("OPENAI_ENDPOINT", "openai_endpoint", _str, "https://api.openai.com/v1/chat/completions",
      "chat-completions URL"),
    S("OPENAI_MODEL", "openai_model", _str, "gpt-4o", "model for Claude model names"),
    S("OPENROUTER_API_KEY", "openrouter_api_key", _str, "", "OpenRouter key", secret=True),
    S("OPENROUTER_MODEL", "openrouter_model", _str, "openai/gpt-4o-mini", "model for Claude model names"),
    S("OPENROUTER_ENDPOINT", "openrouter_endpoint", _str, "https://openrouter.ai/api/v1/chat/completions",
      "chat-completions URL"),
    S("OPENROUTER_REFERER", "openrouter_referer", _str, "https://github.com/lynkr", "HTTP-Referer attribution"),
    S("OPENROUTER_TITLE", "openrouter_title", _str, "Lynkr", "X-Title attribution"),
    S("OPENAI_COMPATIBLE_ENDPOINT", "openai_compatible_endpoint", _str, "",
      "base URL of llama.cpp / vLLM / LM Studio, e.g. http://127.0.0.1:8000/v1"),
    S("OPENAI_COMPATIBLE_API_KEY", "openai_compatible_api_key", _str, "", "optional key", secret=True),
    S("OPENAI_COMPATIBLE_MODEL", "openai_compatible_model", _str, "", "model name the server serves"),
    S("OLLAMA_ENDPOINT", "ollama_endpoint", _str, "http://localhost:11434", "Ollama server URL"),
    S("OLLAMA_MODEL", "ollama_model", _str, "qwen2.5-coder:7b", "model for Claude model names"),
    S("OLLAMA_TIMEOUT_MS", "ollama_timeout_ms", _int, 120000, "ms to wait for Ollama to answer"),
    S("OLLAMA_KEEP_ALIVE", "ollama_keep_alive", _str, "", "how long Ollama keeps the model loaded, e.g. 5m"),
    S("SEND_USER_ID", "send_user_id", _bool, True, "send a hash of metadata.user_id as OpenAI's user"),
    S("MODEL_ALIASES", "model_aliases", _str, "",
      "tier overrides, e.g. haiku=databricks-claude-haiku-4-5,opus=databricks-claude-opus-4-5"),
    S("MODEL_CAPABILITIES", "model_capabilities_file", _str, "", "JSON file overriding the model table"),
    S("HOST_PROFILES", "host_profiles_file", _str, "", "JSON file overriding the host profiles"),
    # Storage
    S("SESSION_DB_PATH", "session_db_path", _str, "data/lynkr.db", "SQLite file (default store)"),
    S("DATABASE_URL", "database_url", _str, "", "postgresql://… to use PostgreSQL instead of SQLite",
      secret=True),
    S("REDIS_URL", "redis_url", _str, "", "redis://… shared tier for several instances", secret=True),
    # Prompt cache
    S("PROMPT_CACHE_ENABLED", "prompt_cache_enabled", _bool, True,
      "answer a repeated request with its stored complete, tool-free answer"),
    S("PROMPT_CACHE_MAX_ENTRIES", "prompt_cache_max_entries", _int, 1000,
      "answers kept per worker; the least recently used go first (0: off)"),
    S("PROMPT_CACHE_TTL_MS", "prompt_cache_ttl_ms", _int, 300000, "ms a stored answer is served (0: off)"),
    # Features
    S("WORKSPACE_ROOT", "workspace_root", _str, "", "directory server-side tools may touch"),
    S("TOOL_EXECUTION_MODE", "tool_execution_mode", _tool_mode, "server", "server, client or passthrough"),
    S("SERVER_TOOLS", "server_tools", _str, "auto",
      "Lynkr tools offered to the model in server mode: auto (those not duplicating a client tool), all, "
      "none, or a comma list of names"),
    # Agent loop policy
    S("POLICY_MAX_STEPS", "policy_max_steps", _int, 8, "model calls per client request in the server tool loop"),
    S("POLICY_MAX_TOOL_CALLS", "policy_max_tool_calls", _int, 12, "server tool runs per client request"),
    S("POLICY_MAX_DURATION_MS", "policy_max_duration_ms", _int, 300000,
      "ms one client request may spend in the server tool loop"),
    S("POLICY_DISALLOWED_TOOLS", "policy_disallowed_tools", _list, (), "Lynkr tools never run or offered"),
    S("POLICY_FILE_BLOCKED_PATHS", "policy_file_blocked_paths", _list, (),
      "extra glob patterns tools may not read or write, besides the built-in deny list (.env*, keys, data)"),
    S("POLICY_SAFE_COMMANDS_ENABLED", "policy_safe_commands_enabled", _bool, True,
      "refuse obviously destructive shell commands before they reach the sandbox"),
    S("POLICY_TOOL_DEDUP_WINDOW_MS", "policy_tool_dedup_window_ms", _int, 600000,
      "ms a tool result is reused when the same session repeats the same tool_use id"),
    S("TOOL_RESULT_MAX_CHARS", "tool_result_max_chars", _int, 50000, "longest tool result given to the model"),
    # Shell sandbox (the Node Lynkr's MCP_SANDBOX_* names)
    S("MCP_SANDBOX_ENABLED", "sandbox_enabled", _bool, True, "run model-written shell commands in a sandbox"),
    S("MCP_SANDBOX_RUNTIME", "sandbox_runtime", _str, "auto", "auto, bubblewrap or docker"),
    S("MCP_SANDBOX_IMAGE", "sandbox_image", _str, "", "image for the docker runtime"),
    S("MCP_SANDBOX_ALLOW_NETWORKING", "sandbox_allow_networking", _bool, False, "give sandboxed commands network"),
    S("MCP_SANDBOX_TIMEOUT_MS", "sandbox_timeout_ms", _int, 20000, "ms a shell command may run"),
    S("MCP_SANDBOX_PASSTHROUGH_ENV", "sandbox_passthrough_env", _list, ("PATH", "LANG", "LC_ALL", "TERM", "HOME"),
      "environment variables a sandboxed command keeps"),
    S("SHELL_ALLOW_UNSANDBOXED", "shell_allow_unsandboxed", _bool, False,
      "run shell commands without a sandbox when none is available (dangerous)"),
    S("SHELL_MAX_OUTPUT_BYTES", "shell_max_output_bytes", _int, 100000, "bytes of output kept per command"),
    # MCP servers (their stdio processes use the sandbox settings above)
    S("MCP_MANIFEST_DIRS", "mcp_manifest_dirs", _str, "~/.claude/mcp",
      "directories whose *.json files declare MCP servers (separated by ; : or ,)"),
    S("MCP_SERVER_MANIFEST", "mcp_server_manifest", _str, "", "one more MCP manifest file (Lynkr or .mcp.json shape)"),
    S("MCP_START", "mcp_start", _str, "boot", "start MCP servers at worker boot or lazy (on first use)"),
    S("MCP_TOOL_ALLOWLIST", "mcp_tool_allowlist", _list, (),
      "server/tool entries (server/* for all of one server); a server not named keeps all its tools"),
    S("MCP_CALL_TIMEOUT_MS", "mcp_call_timeout_ms", _int, 60000, "ms an MCP tool call may take before it is cancelled"),
    S("MCP_STARTUP_TIMEOUT_MS", "mcp_startup_timeout_ms", _int, 30000, "ms an MCP server has to finish its handshake"),
    # Workspace tests
    S("WORKSPACE_TEST_COMMAND", "workspace_test_command", _str, "", "test command, e.g. pytest or npm test"),
    S("WORKSPACE_TEST_ARGS", "workspace_test_args", _list, (), "extra arguments for the test command"),
    S("WORKSPACE_TEST_TIMEOUT_MS", "workspace_test_timeout_ms", _int, 600000, "ms a test run may take"),
    S("WORKSPACE_TEST_SANDBOX", "workspace_test_sandbox", _str, "auto",
      "auto (sandbox when one exists), always or never"),
    S("WORKSPACE_TEST_COVERAGE_FILES", "workspace_test_coverage_files", _list, ("coverage/coverage-summary.json",),
      "coverage summaries read after a run, relative to the workspace"),
    S("WORKSPACE_TEST_PROFILES", "workspace_test_profiles", _str, "",
      "JSON object of named test commands: {\"unit\": [\"pytest\", \"-q\", \"tests/unit\"]}"),
    # Code index, project summary and git tools
    S("INDEX_MAX_FILE_BYTES", "index_max_file_bytes", _size, 1024**2, "larger files are not indexed"),
    S("INDEX_WRITE_CLAUDE_MD", "index_write_claude_md", _bool, True,
      "an index rebuild writes the project summary into CLAUDE.md, between lynkr:summary markers"),
    S("GIT_AUTHOR_NAME", "git_author_name", _str, "", "commit author name (unset: the repository's user.name)"),
    S("GIT_AUTHOR_EMAIL", "git_author_email", _str, "", "commit author email (unset: the repository's user.email)"),
    S("GIT_HTTP_TOKEN", "git_http_token", _str, "", "token for pushing and pulling over https", secret=True),
    S("GIT_HTTP_USERNAME", "git_http_username", _str, "x-access-token", "user name sent with GIT_HTTP_TOKEN"),
    S("GIT_SSH_KEY_PATH", "git_ssh_key_path", _str, "", "private key for pushing and pulling over ssh"),
    S("POLICY_GIT_ALLOW_PUSH", "policy_git_allow_push", _bool, False,
      "let workspace_git_push (and git push in shell) push"),
    S("POLICY_GIT_REQUIRE_TESTS", "policy_git_require_tests", _bool, False,
      "refuse a commit until a test run after the last working-tree change has passed"),
    S("POLICY_GIT_TEST_COMMAND", "policy_git_test_command", _str, "",
      "the test command whose passing run a commit needs (unset: WORKSPACE_TEST_COMMAND)"),
    S("POLICY_GIT_COMMIT_REGEX", "policy_git_commit_regex", _str, "",
      "regular expression every commit message must match (unset: any message)"),
    # Web search and fetch
    S("WEB_SEARCH_ENDPOINT", "web_search_endpoint", _str, "", "SearXNG-style JSON search URL (unset: web_search off)"),
    S("WEB_SEARCH_API_KEY", "web_search_api_key", _str, "", "key sent to the search endpoint", secret=True),
    S("WEB_SEARCH_ALLOWED_HOSTS", "web_search_allowed_hosts", _list, (),
      "hosts web_fetch may reach (unset: any public host)"),
    S("WEB_SEARCH_TIMEOUT_MS", "web_search_timeout_ms", _int, 10000, "ms for a search or fetch"),
    S("WEB_FETCH_BODY_PREVIEW_MAX", "web_fetch_body_preview_max", _int, 10000, "characters of a fetched page kept"),
    S("WEB_FETCH_ALLOW_PRIVATE", "web_fetch_allow_private", _bool, False,
      "let web_fetch reach loopback, private and link-local addresses"),
    S("METRICS_ENABLED", "metrics_enabled", _bool, True, "serve /metrics/*"),
    S("METRICS_PUBLIC", "metrics_public", _bool, False,
      "serve /metrics/* without a key even when keys are set (Prometheus sends Authorization: Bearer)"),
    S("PROMETHEUS_MULTIPROC_DIR", "prometheus_multiproc_dir", _str, "",
      "directory lynkr serve keeps every worker's metric files in, emptied at start (unset: a temporary one)"),
    S("HEALTH_CHECK_ENABLED", "health_check_enabled", _bool, True, "serve /health/*"),
    S("HEALTH_DEEP_CACHE_MS", "health_deep_cache_ms", _int, 10000,
      "ms a deep readiness probe of the provider is reused before another upstream call"),
    S("REQUEST_LOGGING_ENABLED", "request_logging_enabled", _bool, True, "one JSON log line per request"),
    S("LOG_LEVEL", "log_level", _str, "info", "debug, info, warning or error"),
    S("SESSION_STORE_ENABLED", "session_store_enabled", _bool, True, "keep session transcripts"),
    S("LOAD_SHEDDING_MEMORY_THRESHOLD", "memory_threshold", _float, 0.85,
      "fraction of the cgroup memory limit above which readiness fails and requests are shed"),
    S("LOAD_SHEDDING_HEAP_THRESHOLD", "heap_threshold", _float, 0.90,
      "Node heap fraction, applied to process RSS / cgroup limit (0: off)"),
    S("LOAD_SHEDDING_ACTIVE_REQUESTS_THRESHOLD", "active_requests_threshold", _int, 0,
      "model requests in flight per worker before 503 (0: off; the per-worker cap, LYNKR_THREADS - 4, answers 529)"),
    S("LOAD_SHEDDING_MAX_QUEUE_MS", "max_queue_ms", _int, 0,
      "ms a request may wait before reaching the app, from nginx X-Request-Start (0: off)"),
    S("LOAD_SHEDDING_MAX_STREAMS", "max_in_flight_streams", _int, 0,
      "upstream streams open per worker before new model requests get 503 (0: off)"),
    # Routing and fallback
    S("PREFER_OLLAMA", "prefer_ollama", _bool, False, "hybrid routing: few tools → Ollama, more → cloud"),
    S("FALLBACK_ENABLED", "fallback_enabled", _bool, True, "try the next provider when one fails before a byte"),
    S("FALLBACK_PROVIDER", "fallback_provider", _provider, "databricks", "provider for large tool counts and failures"),
    S("ROUTING_RULES", "routing_rules_file", _str, "",
      "JSON file of rules: [{\"if\": {\"model\": \"haiku\"}, \"then\": \"ollama:qwen2.5-coder:7b\"}]"),
    S("OLLAMA_MAX_TOOLS_FOR_ROUTING", "ollama_max_tools", _int, 3, "fewer client tools than this → Ollama"),
    S("OPENROUTER_MAX_TOOLS_FOR_ROUTING", "openrouter_max_tools", _int, 15,
      "fewer client tools than this → OpenRouter / OpenAI / Azure OpenAI"),
    # Retries and circuit breakers
    S("API_RETRY_MAX_RETRIES", "retry_max_retries", _int, 3, "retries of a failed upstream call"),
    S("API_RETRY_INITIAL_DELAY", "retry_initial_delay_ms", _int, 1000, "ms, first backoff ceiling (full jitter)"),
    S("API_RETRY_MAX_DELAY", "retry_max_delay_ms", _int, 30000, "ms, longest wait before a retry"),
    S("API_RETRY_BUDGET_MS", "retry_budget_ms", _int, 20000, "ms one client request may spend retrying"),
    S("CIRCUIT_BREAKER_FAILURE_THRESHOLD", "breaker_failure_threshold", _int, 5,
      "consecutive failed client requests (each after all its retries) that open a provider's breaker"),
    S("CIRCUIT_BREAKER_SUCCESS_THRESHOLD", "breaker_success_threshold", _int, 2,
      "consecutive half-open successes that close it"),
    S("CIRCUIT_BREAKER_TIMEOUT", "breaker_recovery_timeout_ms", _int, 60000,
      "ms an open breaker refuses before one probe (a request no other provider can take probes at once)"),
)
del S
