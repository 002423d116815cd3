"""The app's Runtime, as the request handlers reach it (Flask's app extensions)."""

from __future__ import annotations

from typing import cast

from flask import current_app

from cds_service.runtime import Runtime

EXTENSION_KEY = "cytokine_cds"


def current_runtime() -> Runtime:
    return cast(Runtime, current_app.extensions[EXTENSION_KEY])
