"""Gunicorn settings for Lynkr, flat, from the same configuration the app reads.

``lynkr serve`` runs gunicorn with this file, and ``gunicorn -c gunicorn.conf.py
app.wsgi:application`` gets the same semantics from it: the master hooks of :mod:`app.master`
prepare what every worker shares (metrics, circuit breakers, the drain flag) before the first
fork, and turn SIGTERM into a drain followed by a graceful stop.

gthread workers: each thread holds one request or one minutes-long Claude Code stream, mostly
waiting on its upstream, so a worker has many threads (LYNKR_THREADS, 1024) with small stacks, and
the app caps model requests below that so health checks always find a free thread.
"""

import signal

from app.config import load_config
from app.host import default_workers
from app.master import on_exit, on_starting  # noqa: F401 - gunicorn reads its hooks from this namespace

_config = load_config()

bind = f"[{_config.host}]:{_config.port}" if ":" in _config.host else f"{_config.host}:{_config.port}"
workers = _config.workers or default_workers()
worker_class = "gthread"
threads = _config.threads
worker_connections = max(1000, threads + 256)  # every thread's connection, plus idle keep-alives
# gthread workers heartbeat from their main loop, so a long stream never trips this.
timeout = 60
graceful_timeout = max(1, round(_config.graceful_shutdown_timeout_ms / 1000))
keepalive = 75  # longer than nginx's upstream keepalive_timeout, so it closes first
accesslog = None  # the app writes one JSON line per request itself
logger_class = "app.gunicorn_logger.Logger"
errorlog = "-"
loglevel = _config.log_level
proc_name = "lynkr"
# gunicorn 23+'s control socket lives at a fixed path per user; several instances would collide.
control_socket_disable = True
# gunicorn's own lines in the same JSON shape as the app's.
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "app.logging.json_formatter"}},
    # gunicorn's defaults refer to handlers by these two names.
    "handlers": {name: {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
                 for name in ("console", "error_console")},
    "loggers": {"gunicorn.error": {"handlers": ["error_console"], "level": _config.log_level.upper(),
                                   "propagate": False}},
}
forwarded_allow_ips = "127.0.0.1,::1"


def post_fork(server, worker):
    # Before the worker's thread pool starts any thread.
    from app.host import use_small_thread_stacks

    use_small_thread_stacks()


def post_worker_init(worker):
    # The master owns Ctrl-C: a terminal's SIGINT reaches the whole process group.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Each worker runs its own MCP servers, started here with MCP_START=boot (after the app loaded).
    from app.host import exempt_loaded_objects
    from app.mcp.supervisor import start_at_boot

    start_at_boot(worker.wsgi.extensions["lynkr"].config)
    exempt_loaded_objects()


def child_exit(server, worker):
    # In the master: the exited worker's live gauges (active streams, breaker state) leave the
    # multiprocess sums; its counters and histograms stay, since those requests happened.
    from app.metrics.multiproc import mark_worker_dead

    mark_worker_dead(worker.pid)


def worker_exit(server, worker):
    from app import shutdown

    if getattr(worker, "wsgi", None) is not None:
        shutdown(worker.wsgi)
