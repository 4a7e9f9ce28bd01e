# Lynkr gateway image. Listens on 0.0.0.0:8080 inside the container, so it needs
# LYNKR_API_KEYS (or LYNKR_ALLOW_OPEN=true when something else guards the port).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOST=0.0.0.0 \
    PORT=8080 \
    SESSION_DB_PATH=/data/lynkr.db

# ripgrep backs workspace_search; bubblewrap sandboxes the shell tool where the container may
# create namespaces (otherwise the container itself is the boundary: see the README).
RUN apt-get update && apt-get install -y --no-install-recommends ripgrep bubblewrap \
    && rm -rf /var/lib/apt/lists/*

RUN useradd --system --uid 10001 --home-dir /srv/lynkr --shell /usr/sbin/nologin lynkr \
    && mkdir -p /data && chown lynkr /data

WORKDIR /srv/lynkr
COPY setup.cfg pyproject.toml README.md ./
COPY app ./app
COPY migrations ./migrations
COPY gunicorn.conf.py ./
# The PostgreSQL and Redis clients too, so DATABASE_URL and REDIS_URL work in the image.
RUN pip install --no-cache-dir '.[postgres,redis]'

USER lynkr
VOLUME ["/data"]
EXPOSE 8080
# On whatever PORT the container is given.
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health/live' % os.environ.get('PORT', '8080'), timeout=2)" || exit 1
# `lynkr serve` is PID 1 and owns shutdown: `docker stop` sends it SIGTERM, it drains (5 s), then
# streams get up to 30 s. docker's default 10 s would cut them: `docker run --stop-timeout 50`.
STOPSIGNAL SIGTERM
CMD ["lynkr", "serve"]
