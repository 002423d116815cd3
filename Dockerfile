# cytokine-cds: the CDS Hooks service as a container.
# Build: docker build -t cytokine-cds .   Run: docker run -p 8080:8080 -e CYTOKINE_CDS_... cytokine-cds

# --- build stage: turn the source into a wheel ------------------------------------------------
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY cds_service ./cds_service
COPY cards ./cards
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

# --- runtime stage: the wheel and its dependencies, run as a non-root user --------------------
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CYTOKINE_CDS_HOST=0.0.0.0 \
    CYTOKINE_CDS_PORT=8080
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin cds
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER 10001
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2)"]
CMD ["cytokine-cds", "serve"]
