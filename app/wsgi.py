"""The WSGI entry point gunicorn loads: ``app.wsgi:application``."""

from app import create_app

application = create_app()
