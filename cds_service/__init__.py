"""Cytokine storm CDS: a CDS Hooks 2.0 service that classifies hyperinflammation subtypes."""

from cds_service.app import create_app

__all__ = ["create_app"]
