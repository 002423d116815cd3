"""FHIR input: reading prefetch values (and, later, the FHIR client)."""

from .prefetch import BundlePage, PrefetchKeyStatus, PrefetchRead, read_bundle_page, read_prefetch

__all__ = ["BundlePage", "PrefetchKeyStatus", "PrefetchRead", "read_bundle_page", "read_prefetch"]
