# Minimal image for the worker; issue "Ship it" hardens it (read-only root, healthcheck, labels).
FROM python:3.11-slim AS build
WORKDIR /app
RUN pip install --no-cache-dir uv==0.13.9
COPY pyproject.toml uv.lock README.md ./
COPY consumer ./consumer
COPY schemas ./schemas
COPY ops/fetch_models.py ./ops/fetch_models.py
# Locked dependencies; mediapipe's opencv-contrib-python is overridden away (see pyproject).
RUN uv sync --frozen --no-dev --no-editable && python ops/fetch_models.py --dest /app/models

FROM python:3.11-slim
RUN useradd --uid 10001 --no-create-home faceguard
WORKDIR /app
COPY --from=build /app /app
ENV PATH=/app/.venv/bin:$PATH FACEGUARD_MODELS_DIR=/app/models
USER 10001
STOPSIGNAL SIGTERM
ENTRYPOINT ["faceguard"]
CMD ["worker"]
