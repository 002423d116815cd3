"""Operating the service: metrics (Prometheus), structured logs and readiness."""
