# syntax=docker/dockerfile:1
# The LiveDash pipeline image: one image for every process (`livedash worker|scheduler|health|run|db upgrade`).
#
#   docker build -t livedash-pipeline:local .
#   docker run --rm livedash-pipeline:local worker --list
#
# Dependencies come from requirements.lock (every distribution pinned with its hashes, `make lock`), installed
# with --require-hashes in a throw-away stage, then the project itself without dependencies, so that the
# runtime image holds the virtual environment and nothing else.
#
# The base image is pinned by tag, not digest: pin it by digest in your build (PYTHON_IMAGE=python:3.11-slim@
# sha256:...) from the registry you pull from (docs/security.md).

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/livedash
# pyproject.toml names README.md as the package's readme, so it is part of the build input.
COPY requirements-pip.lock requirements.lock pyproject.toml README.md ./
RUN /opt/livedash/bin/pip install --require-hashes -r requirements-pip.lock \
    && /opt/livedash/bin/pip install --require-hashes -r requirements.lock
COPY pipeline ./pipeline
RUN /opt/livedash/bin/pip install --no-deps . \
    && /opt/livedash/bin/livedash --help >/dev/null

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="livedash-pipeline" \
      org.opencontainers.image.description="LiveDash chat-analytics pipeline: Dramatiq actors on RabbitMQ and PostgreSQL"
ENV PATH=/opt/livedash/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
# A fixed, non-root uid/gid, so Kubernetes' runAsNonRoot can check it and volumes can be owned by it.
RUN groupadd --system --gid 10001 livedash \
    && useradd --system --uid 10001 --gid livedash --home-dir /app --create-home --shell /usr/sbin/nologin livedash
COPY --from=build /opt/livedash /opt/livedash
# /app/data: a writable place owned by the service user (the compose demo's data set lives in a volume there;
# Docker gives a new named volume the ownership of the directory it is mounted on).
RUN install -d -o livedash -g livedash /app/data
WORKDIR /app
USER 10001:10001

# 3000: `livedash health` (HEALTH_PORT); 9191: a worker pool's metrics (METRICS_PORT);
# 9192: the scheduler's metrics (SCHEDULER_METRICS_PORT).
EXPOSE 3000 9191 9192

# Independent of `livedash`: GET $HEALTHCHECK_URL (a worker pool's metrics by default); any error or a status
# of 400 and above (urllib raises on those, e.g. a 503 from /healthz) marks the container unhealthy. Set
# HEALTHCHECK_URL per process: http://127.0.0.1:3000/healthz for `livedash health`,
# http://127.0.0.1:9192/metrics for `livedash scheduler`.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(os.environ.get('HEALTHCHECK_URL', 'http://127.0.0.1:9191/metrics'), timeout=4).close()"]

ENTRYPOINT ["livedash"]
CMD ["--help"]
