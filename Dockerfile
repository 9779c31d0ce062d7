# syntax=docker/dockerfile:1
# Prime Portal: one image for every process of the Procfile. The role is the
# command: web (default), worker, beat, feed, engine, migrate, or `manage <args>`
# (deploy/entrypoint.sh runs the role's Procfile line). See README "Deploying".
#
#   docker build -t prime-portal .
#   docker run --env-file deploy/.env prime-portal web
#
# No secret is baked in: settings come from the environment at run time
# (deploy/.env.example lists them); collectstatic runs with throwaway values.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: the virtualenv, from the same requirements.txt as `make run` --------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
# A compiler for any dependency that ships no wheel for this platform; it stays
# in this stage.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
COPY requirements.txt /tmp/requirements.txt
RUN /opt/venv/bin/pip install --no-cache-dir -r /tmp/requirements.txt

# --- runtime ---------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
# tini: PID 1 that forwards SIGTERM and reaps children (Celery's pool, uvicorn's workers).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 portal \
    && useradd --system --uid 10001 --gid portal --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin portal

COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DJANGO_SETTINGS_MODULE=portal.settings.production \
    WEB_HOST=0.0.0.0 \
    WEB_PORT=8000 \
    MEDIA_ROOT=/app/var/media

WORKDIR /app
# Code and static files belong to root: the app user can read, not change, them.
COPY . /app
RUN DJANGO_SECRET_KEY=collectstatic-only \
    PAYMENT_WEBHOOK_SECRET=collectstatic-only \
    LINKED_CREDENTIAL_KEYS=collectstatic-only \
    DATABASE_URL=postgres://collectstatic@127.0.0.1:1/none \
    python manage.py collectstatic --noinput --verbosity 0 \
    && python -m compileall -q -j 0 /app/accounts /app/portal /app/trading \
    && chmod 0755 /app/deploy/entrypoint.sh /app/deploy/healthcheck.py \
    && mkdir -p /app/var/media \
    && chown -R portal:portal /app/var

USER 10001:10001
EXPOSE 8000
# The web role answers /ready/ (database, Redis, feed, engine and workers); other
# roles check their process kind's heartbeat (deploy/healthcheck.py). Kubernetes
# ignores this and uses the probes in deploy/k8s/.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "/app/deploy/healthcheck.py"]
ENTRYPOINT ["tini", "--", "/app/deploy/entrypoint.sh"]
CMD ["web"]
