# syntax=docker/dockerfile:1
# One image for every Liandong service; the service to run is chosen at start-up by $SERVICE:
#   docker build -t liandong .
#   docker run --rm -e SERVICE=tracker -e AMQP_URI=amqp://... liandong
FROM python:3.11-slim

# PYTHONPATH=/app: the copied sources (next to contracts/ and config.yaml) win over the
# copy that `pip install .` puts in site-packages, also for the `liandong` console script
# (shared/standards.py finds contracts/ relative to the shared package).
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/app \
    LIANDONG_DATA_DIR=/data

# Unprivileged runtime user; the code stays root-owned (read-only for the app), only the
# data directory (SQLite files, logs when DATABASE_URL is not set) is writable.
RUN groupadd --system --gid 10001 liandong \
 && useradd --system --uid 10001 --gid liandong --home-dir /app --no-create-home \
            --shell /usr/sbin/nologin liandong \
 && mkdir -p /data /keys \
 && chown liandong:liandong /data /keys

WORKDIR /app

# The PDF forms (services/documents/forms.py): WeasyPrint's Pango, HarfBuzz's subsetter and
# CJK fonts; /blobs is the case files' blob store (a volume shared by gateway + documents).
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 \
        libharfbuzz-subset0 fonts-noto-cjk \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /blobs && chown liandong:liandong /blobs

# Pinned dependencies first: this layer is reused as long as requirements.txt is unchanged.
COPY requirements.txt ./
RUN pip install -r requirements.txt

# Then the project itself (no dependency resolution: everything is pinned above).
COPY pyproject.toml config.yaml ./
COPY shared/ ./shared/
COPY services/ ./services/
COPY contracts/ ./contracts/
COPY deploy/ ./deploy/
RUN pip install --no-deps . \
 && rm -rf build ./*.egg-info

USER liandong

# RPC round-trip to the service over RabbitMQ (compose overrides this with the same check).
HEALTHCHECK --interval=15s --timeout=15s --start-period=40s --retries=3 \
    CMD python -m shared.healthcheck "$SERVICE"

# exec: the service becomes PID 1 and gets SIGTERM directly (graceful worker shutdown,
# bounded by LIANDONG_STOP_TIMEOUT, 10 s: shared/serve.py is `nameko run` with that bound).
CMD ["sh", "-c", "exec python -m shared.serve --config config.yaml services.${SERVICE:?set SERVICE to the service to run, e.g. tracker}.service"]
