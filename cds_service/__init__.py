"""Cytokine storm CDS: a CDS Hooks 2.0 service that classifies hyperinflammation subtypes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cds_service.app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    # Imported on first use, so that the decision layer (batch workers, the CLI) loads no
    # web framework.
    if name == "create_app":
        from cds_service.app import create_app

        return create_app
    raise AttributeError(name)
