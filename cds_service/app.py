"""The Flask application factory."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import orjson
from flask import Flask, Response, request
from flask.json.provider import JSONProvider
from flask_cors import CORS
from werkzeug.exceptions import HTTPException

from cds_service.api import discovery, evaluate, feedback, health, hooks
from cds_service.api.auth import install_client_auth
from cds_service.api.errors import ApiError
from cds_service.api.observe import install_observability, logged_path
from cds_service.api.profile import install_profile_page
from cds_service.api.runtime import EXTENSION_KEY
from cds_service.composition import build_runtime, client_verifier, open_audit_store, profile_links
from cds_service.settings import Settings
from cds_service.store import AuditStore

log = logging.getLogger(__name__)


class OrjsonProvider(JSONProvider):
    """orjson for request and response bodies: several times faster than the stdlib on cards."""

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        return orjson.dumps(obj).decode()

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return orjson.loads(s)

    def response(self, *args: Any, **kwargs: Any) -> Response:
        return json_response(self._prepare_response_obj(args, kwargs))


def json_response(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status=status, mimetype="application/json")


def create_app(settings: Settings | None = None) -> Flask:
    """Build the service. Knowledge files are loaded and validated here, once."""
    settings = settings or Settings()
    app = Flask(__name__, static_folder=None)
    # "/cds-services/x/" is "/cds-services/x": clients and people typing URLs add the slash.
    app.url_map.strict_slashes = False
    # "//" would be answered with Werkzeug's HTML redirect to a Location built from the Host
    # header; it gets the JSON 404 below instead, which names the empty segment.
    app.url_map.merge_slashes = False
    app.json = OrjsonProvider(app)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_request_bytes
    # Well before gunicorn kills a worker still reading (its answer then is a bare 500).
    app.config["BODY_READ_SECONDS"] = settings.worker_timeout / 2
    store = _open_store(settings)
    runtime = build_runtime(settings, store=store, profile_links=profile_links(settings))
    app.extensions[EXTENSION_KEY] = runtime

    CORS(
        app,
        origins=settings.cors_origins,
        allow_headers=["Authorization", "Content-Type", "Accept"],
        methods=["GET", "POST", "OPTIONS"],
        expose_headers=["WWW-Authenticate"],
        max_age=600,
    )
    _register_error_handlers(app, settings)
    # The request log line and metrics come before authentication, so that refused calls are
    # timed and counted too.
    metrics_token = settings.metrics_token.get_secret_value() if settings.metrics_token else None
    install_observability(app, metrics_token)
    install_client_auth(app, client_verifier(settings, store), settings.public_base_url)
    for blueprint in (discovery.bp, hooks.bp, feedback.bp, evaluate.bp, health.bp):
        app.register_blueprint(blueprint)
    if settings.profile_page:
        notice = runtime.cards.kit.common.notice
        scores = {id_: s.scores for id_, s in runtime.rules.settings.items()}
        install_profile_page(app, notice, settings.profile_frame_ancestors, scores)
    return app


def _open_store(settings: Settings) -> AuditStore:
    """The audit store, migrated (or checked) here: with gunicorn's preload this runs once, in
    the master, and its connections are closed before the workers fork."""
    store = open_audit_store(settings)
    store.prepare(settings.db_auto_upgrade)
    return store


def _register_error_handlers(app: Flask, settings: Settings) -> None:
    def error_response(error: ApiError) -> Response:
        response = json_response(error.body(), error.status)
        response.headers.update(error.headers)
        return response

    @app.errorhandler(ApiError)
    def _api_error(error: ApiError) -> Response:
        return error_response(error)

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException) -> Response:
        status = error.code or 500
        messages = {
            404: f"No endpoint at {request.path}."
            + (
                " The path has an empty segment ('//'): check the service's base URL for a "
                "trailing slash."
                if "//" in request.path
                else ""
            ),
            405: f"Method {request.method} is not allowed on {request.path}.",
            413: (
                f"The request body is larger than {settings.max_request_bytes} bytes "
                "(setting CYTOKINE_CDS_MAX_REQUEST_BYTES)."
            ),
        }
        message = messages.get(status, error.description or error.name)
        headers = {}
        if status == 405 and hasattr(error, "valid_methods") and error.valid_methods:
            headers["Allow"] = ", ".join(error.valid_methods)
        return error_response(ApiError(status, message, headers=headers))

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Response:
        # The body names a reference to the log line, never the exception or its traceback.
        reference = uuid.uuid4().hex[:12]
        log.exception("unhandled error (reference %s) on %s", reference, logged_path())
        return error_response(
            ApiError(500, f"Internal error; the service log names it as reference {reference}.")
        )
