"""Run the service under gunicorn, the production WSGI server, configured from Settings."""

from __future__ import annotations

from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication

from cds_service.settings import Settings


def gunicorn_options(settings: Settings) -> dict[str, Any]:
    return {
        "bind": f"{settings.host}:{settings.port}",
        "workers": settings.workers,
        "worker_class": "gthread",
        "threads": settings.threads,
        "timeout": settings.worker_timeout,
        "graceful_timeout": settings.graceful_timeout,
        "keepalive": settings.keepalive,
        # The app is built (and its knowledge files validated) once, before workers fork.
        "preload_app": True,
        "accesslog": None,
        "errorlog": "-",
        "loglevel": settings.log_level.lower(),
        "proc_name": "cytokine-cds",
    }


class GunicornServer(BaseApplication):  # type: ignore[misc]
    def __init__(self, app: Flask, options: dict[str, Any]) -> None:
        self._app = app
        self._options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        return self._app


def serve(app: Flask, settings: Settings) -> None:
    GunicornServer(app, gunicorn_options(settings)).run()
