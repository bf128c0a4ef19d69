# syntax=docker/dockerfile:1
FROM python:3.12-slim AS app

ENV MALLOC_ARENA_MAX=2 PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy \
    UV_PROJECT_ENVIRONMENT=/opt/venv PATH="/opt/venv/bin:$PATH"
RUN pip install --no-cache-dir uv \
    && apt-get update && apt-get install -y --no-install-recommends tesseract-ocr curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 spendtrackr \
    && mkdir -p /data/receipts && chown spendtrackr /data/receipts
WORKDIR /app

COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY alembic.ini ./
COPY migrations ./migrations
COPY src ./src
RUN uv sync --frozen --no-dev

USER spendtrackr
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --retries=5 CMD curl -fsS http://127.0.0.1:8000/healthz || exit 1
# exec: the server replaces the shell as PID 1, so the SIGTERM of `docker stop` reaches it and
# its workers finish the requests in flight (a shell as PID 1 ignores it until SIGKILL).
CMD ["sh", "-c", "spendtrackr migrate && exec spendtrackr serve --host 0.0.0.0 --port 8000 --workers ${WORKERS:-2}"]
