"""``lynkr serve``: gunicorn in-process, with the settings and hooks of ``gunicorn.conf.py``.

The master's setup (shared metrics directory, breaker store and drain flag, the drain-safe
stop) lives in :mod:`app.master`, installed by ``gunicorn.conf.py``'s hooks, so plain
``gunicorn -c gunicorn.conf.py app.wsgi:application`` behaves the same. A ``gunicorn.conf.py``
of one's own in the working directory that leaves those hooks out still gets them here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.arbiter import Arbiter

from app import master

CONF_NAME = "gunicorn.conf.py"
MASTER_HOOKS = ("on_starting", "on_exit")


def conf_file() -> Path:
    """``gunicorn.conf.py`` in the working directory, else the one beside the package."""
    here = Path.cwd() / CONF_NAME
    return here if here.is_file() else Path(__file__).resolve().parent.parent / CONF_NAME


class LynkrApplication(BaseApplication):
    """Gunicorn settings from ``gunicorn.conf.py``; the app from :mod:`app.wsgi`."""

    def __init__(self, conf_path: Path) -> None:
        self.conf_path = conf_path
        super().__init__()

    def load_config(self) -> None:
        settings = _read_settings(self.conf_path)
        for name, value in settings.items():
            if name in self.cfg.settings and value is not None:
                self.cfg.set(name, value)
        for hook in MASTER_HOOKS:
            if hook not in settings:
                self.cfg.set(hook, getattr(master, hook))

    def load(self) -> Any:
        from app.wsgi import application

        return application


def _read_settings(path: Path) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__file__": str(path), "__name__": "__gunicorn_conf__"}
    exec(compile(path.read_text(), str(path), "exec"), namespace)  # noqa: S102 - our own config file
    return {k: v for k, v in namespace.items() if not k.startswith("__")}


def run() -> None:
    """Run gunicorn with the settings of :func:`conf_file` until it stops."""
    Arbiter(LynkrApplication(conf_file())).run()
