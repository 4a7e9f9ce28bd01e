"""``app.wsgi:application``: the app built from the environment, without the PostgreSQL driver on SQLite."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import json, sys
from app.wsgi import application, config
client = application.test_client()
reply = client.get("/health/live")
print(json.dumps({"status": reply.status_code, "body": reply.get_json(), "db": config.session_db_path,
                  "psycopg2": "absent" if sys.modules.get("psycopg2", "x") is None else "loaded"}))
"""


def import_wsgi(tmp_path: Path, **env: str) -> dict:
    environ = {key: value for key, value in os.environ.items()
               if not key.startswith(("LYNKR_", "DATABASE_URL", "REDIS_URL", "MODEL_PROVIDER"))}
    environ.update(env)
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=tmp_path, env={**environ, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_the_application_answers_and_sqlite_workers_never_load_psycopg2(tmp_path: Path) -> None:
    db_path = str(tmp_path / "w.db")
    assert import_wsgi(tmp_path, SESSION_DB_PATH=db_path) == {
        "status": 200, "body": {"status": "ok"}, "db": db_path, "psycopg2": "absent"}
