"""Per-request observability: one JSON log line and the request metrics; GET /metrics.

The log line names method, path, status, duration, endpoint, CDS service id, hookInstance (a
keyed hash unless it is a UUID) and the topic codes of the cards returned: never a patient id,
token, body or query string. A path is logged as requested only when it is one of ours (a known
service id in it, or no variable part); anything else is logged as its route pattern, since a
mistyped URL may hold anything.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Sequence

from flask import Flask, Response, current_app, g, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.routing import Rule

from cds_service.api.errors import ApiError
from cds_service.api.runtime import current_runtime
from cds_service.hooks.response import Card
from cds_service.observability.logs import ACCESS_LOGGER, logged_hook_instance
from cds_service.observability.metrics import (
    exposition,
    method_label,
    metrics,
    record_cards,
    status_label,
)

access_log = logging.getLogger(ACCESS_LOGGER)
# Probes and scrapes come every few seconds: their lines only at DEBUG unless they fail.
_QUIET_ENDPOINTS = frozenset({"health.healthz", "health.readyz", "metrics"})


def note_hook_call(hook_instance: str, cards: Sequence[Card]) -> None:
    """Called by the hook endpoint: what the request line and the card metric report."""
    g.hook_instance = hook_instance
    g.card_topics = [c.source.topic.code if c.source.topic else "none" for c in cards]


def install_observability(app: Flask, metrics_token: str | None) -> None:
    """Register the request timer (first, so it also times authentication) and /metrics.

    `metrics_token`: when set, GET /metrics requires it as a bearer token."""
    metrics()  # created now: under gunicorn in the master, before the workers fork

    @app.before_request
    def _start_timer() -> None:
        g.request_started = time.perf_counter()

    @app.after_request
    def _observe(response: Response) -> Response:
        _record(response)
        return response

    token = metrics_token.encode() if metrics_token else None

    @app.get("/metrics", endpoint="metrics")
    def metrics_endpoint() -> Response:
        if token is not None and not _bearer_matches(token):
            raise ApiError(
                401,
                "GET /metrics needs `Authorization: Bearer <token>` with the metrics token "
                "(setting CYTOKINE_CDS_METRICS_TOKEN).",
                headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
            )
        body, content_type = exposition()
        return Response(body, content_type=content_type)


def _bearer_matches(token: bytes) -> bool:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token)


def _record(response: Response) -> None:
    started = g.get("request_started")
    seconds = time.perf_counter() - started if started is not None else 0.0
    rule, _ = _route()
    endpoint = rule.endpoint if rule is not None else "unmatched"
    service = _known_service()
    status = status_label(response.status_code)
    method = method_label(request.method)
    m = metrics()
    m.requests.labels(endpoint, service, method, status).inc()
    m.request_seconds.labels(endpoint, service, status).observe(seconds)
    topics: list[str] = g.get("card_topics", [])
    if topics:
        record_cards(service, topics)
    level = (
        logging.DEBUG
        if endpoint in _QUIET_ENDPOINTS and response.status_code < 400
        else (logging.INFO)
    )
    if not access_log.isEnabledFor(level):
        return
    fields: dict[str, object] = {
        "method": method,
        "path": logged_path(service),
        "status": response.status_code,
        "duration_ms": round(seconds * 1000, 2),
        "endpoint": endpoint,
    }
    if service:
        fields["service"] = service
    hook_instance = g.get("hook_instance")
    if hook_instance is not None:
        fields["hookInstance"] = logged_hook_instance(hook_instance)
        fields["cards"] = topics
    access_log.log(level, "request", extra=fields)


def _route() -> tuple[Rule | None, dict[str, object]]:
    """The route the path matched and its arguments. A method the route does not allow (405)
    leaves Flask with no route: the path is matched again with a method it allows, so the wrong
    method is counted and logged against the endpoint it was sent to."""
    if request.url_rule is not None:
        return request.url_rule, dict(request.view_args or {})
    error = request.routing_exception
    if not isinstance(error, MethodNotAllowed) or not error.valid_methods:
        return None, {}
    adapter = current_app.create_url_adapter(request)
    if adapter is None:
        return None, {}
    try:
        allowed = next(iter(error.valid_methods))
        rule, args = adapter.match(method=allowed, return_rule=True)
    except HTTPException:
        return None, {}
    return rule, dict(args)


def _known_service() -> str:
    """The CDS service id of the path, only when it is one of ours (labels stay bounded)."""
    service_id = _route()[1].get("service_id")
    if isinstance(service_id, str) and service_id in current_runtime().services:
        return service_id
    return ""


def logged_path(service: str | None = None) -> str:
    """The request's path when it is one of ours, else its route pattern (or "<unmatched>")."""
    service = _known_service() if service is None else service
    rule, _ = _route()
    if rule is None:
        return "<unmatched>"
    if not rule.arguments or (service and rule.arguments == {"service_id"}):
        return request.path
    return rule.rule
