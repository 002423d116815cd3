"""Cytokine storm CDS: a CDS Hooks 2.0 service."""
