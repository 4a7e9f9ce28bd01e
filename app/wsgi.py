"""The WSGI entry point gunicorn loads: ``app.wsgi:application``."""

import sys

from app import create_app
from app.config import load_config

config = load_config()
if not config.database_url:
    # peewee imports the PostgreSQL driver eagerly when it is installed; a worker on SQLite never
    # uses it, and the driver and libpq cost about 7 MB of memory per worker.
    sys.modules.setdefault("psycopg2", None)  # type: ignore[arg-type]  # None in sys.modules blocks the import

application = create_app(config)
