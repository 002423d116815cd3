"""Cytokine storm CDS: a CDS Hooks 2.0 service that classifies hyperinflammation subtypes."""

from __future__ import annotations

from typing import Any

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    # Imported on first use: the command line's batch jobs and Spark's Python workers import
    # parts of the package without paying for the web application's modules.
    if name == "create_app":
        from cds_service.app import create_app

        return create_app
    raise AttributeError(name)
