# cytokine-cds: the CDS Hooks service as a container image.
#   Build: docker build -t cytokine-cds .
#   Run:   docker run -p 8080:8080 -e CYTOKINE_CDS_TRUSTED_CLIENTS=/config/clients.json \
#            -v ./clients.json:/config/clients.json:ro cytokine-cds
# deploy/ has a docker-compose example (with PostgreSQL) and Kubernetes manifests.
# Pin the base image by digest in your own registry (FROM python:3.11-slim-bookworm@sha256:...).

# Build stage: the service and its dependencies in a virtual environment
FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/cytokine-cds
WORKDIR /src
COPY pyproject.toml README.md ./
COPY cds_service ./cds_service
COPY cards ./cards
# Every dependency ships manylinux wheels (orjson, pydantic-core, cryptography, psycopg-binary):
# no compiler is needed, and none reaches the runtime image.
RUN /opt/cytokine-cds/bin/pip install . \
 && find /opt/cytokine-cds -name '__pycache__' -type d -prune -exec rm -rf {} +

# Runtime stage: the virtual environment, run as a non-root user
FROM python:3.11-slim-bookworm
ENV PATH=/opt/cytokine-cds/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CYTOKINE_CDS_HOST=0.0.0.0 \
    CYTOKINE_CDS_PORT=8080 \
    CYTOKINE_CDS_DATA_DIR=/var/lib/cytokine-cds
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin cds \
 && install -d -o 10001 -g 10001 -m 0700 /var/lib/cytokine-cds
COPY --from=build /opt/cytokine-cds /opt/cytokine-cds
# The SQLite audit store and the generated patient-key secret (unless PostgreSQL and
# CYTOKINE_CDS_PATIENT_KEY_SECRET are configured). Metrics of the workers go to $TMPDIR (/tmp).
VOLUME ["/var/lib/cytokine-cds"]
USER 10001
WORKDIR /var/lib/cytokine-cds
EXPOSE 8080
# gunicorn stops gracefully on SIGTERM (in-flight calls get CYTOKINE_CDS_GRACEFUL_TIMEOUT s).
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2)"]
CMD ["cytokine-cds", "serve"]
