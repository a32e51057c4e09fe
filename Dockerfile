# The worker's container image.
#
#   docker build -t faceguard:0.1.0 .
#   docker run --read-only --tmpfs /tmp -e KAFKA_BOOTSTRAP_SERVERS=broker:9092 -p 9400:9400 faceguard:0.1.0
#
# The build stage runs ops/install_image.sh, the same script tests/integration/test_image_install.py runs on a
# fresh copy of the files copied here: locked dependencies (requirements/image.txt) without dev extras, exactly
# one OpenCV (the headless one), and the BlazeFace models from the pinned mediapipe wheel with
# their sha256 checked. The final stage holds only the virtualenv and the models; nothing is
# downloaded at run time. It runs as an unprivileged user and needs no writable path but /tmp.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
# Keep in step with UV_VERSION in the Makefile (tests/integration/test_image_install.py checks).
ARG UV_VERSION=0.13.9
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1
WORKDIR /app
RUN pip install --no-cache-dir "uv==${UV_VERSION}"
COPY pyproject.toml README.md ./
COPY requirements/image.txt ./requirements/
COPY consumer ./consumer
COPY schemas ./schemas
COPY ops/install_image.sh ops/fetch_models.py ops/check_opencv.py ./ops/
RUN sh ops/install_image.sh /app

FROM ${PYTHON_IMAGE}
ARG VERSION=0.1.0
ARG CREATED=unknown
ARG REVISION=unknown
LABEL org.opencontainers.image.title="faceguard" \
      org.opencontainers.image.description="Kafka workers that mask every face in the images they are pointed at" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN useradd --system --uid 10001 --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin faceguard
COPY --from=build /app/.venv /app/.venv
COPY --from=build /app/models /app/models
# No bytecode writes (the root filesystem is read-only; it was compiled at build time), no output
# buffering (log lines reach the collector at once), temp files in /tmp only.
ENV PATH=/app/.venv/bin:$PATH \
    FACEGUARD_MODELS_DIR=/app/models \
    FACEGUARD_PROBE_PORT=9400 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TMPDIR=/tmp
WORKDIR /app
USER 10001:10001
# The worker's /metrics, /healthz, /readyz; `serve`'s HTTP API (FACEGUARD_HTTP_PORT, with its own probes)
EXPOSE 9400 8080
# The worker runs as PID 1 (exec form, no shell in between) and handles SIGTERM itself: it stops
# taking records, finishes in-flight work within FACEGUARD_DRAIN_TIMEOUT_S, commits and exits 0.
# `serve` (the HTTP API: `docker run ... faceguard serve`) drains the same way: requests under way
# finish within FACEGUARD_HTTP_DRAIN_TIMEOUT_S. Its health check is its own /readyz, not `probe`.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 CMD ["faceguard", "probe", "live"]
ENTRYPOINT ["faceguard"]
CMD ["worker"]
