"""FHIR input: reading prefetch values, the FHIR client, and gathering both for one hook call."""

from .prefetch import PrefetchKeyStatus, PrefetchRead, read_prefetch

__all__ = ["PrefetchKeyStatus", "PrefetchRead", "read_prefetch"]
