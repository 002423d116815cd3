"""Which FHIR servers the service may contact, decided from the URL alone.

A hook request names the FHIR server to read (`fhirServer`). Reading whatever a caller names would
make the service a tool for reaching hosts it should not reach (SSRF), so a server must be on a
configured allowlist (or on loopback in a demo), over https unless told otherwise. Nothing here
resolves a name or opens a connection: a refused host is never looked up.

URLs are parsed by `cds_service.urls.parse_base_url` (urllib3's parser, strict).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from cds_service.urls import FhirBase, parse_base_url


class ServerRefused(ValueError):
    """The request's fhirServer may not be contacted; `setting` is the one that decides it."""

    def __init__(self, message: str, setting: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.setting = setting


@dataclass(frozen=True)
class ServerPolicy:
    allowlist: tuple[FhirBase, ...]
    allow_loopback: bool = False
    allow_http: bool = False

    @classmethod
    def from_entries(
        cls, entries: Iterable[str], *, allow_loopback: bool = False, allow_http: bool = False
    ) -> ServerPolicy:
        return cls(
            tuple(parse_base_url(entry) for entry in entries),
            allow_loopback=allow_loopback,
            allow_http=allow_http,
        )

    def check(self, fhir_server: str) -> FhirBase:
        """The normalised base of `fhir_server` if the service may read it; else ServerRefused."""
        try:
            base = parse_base_url(fhir_server)
        except ValueError as exc:
            raise ServerRefused(f"fhirServer is not a usable FHIR base URL: {exc}.") from None
        if base.scheme == "http" and not base.is_loopback and not self.allow_http:
            raise ServerRefused(
                f"fhirServer {base.url} uses plain http on a host that is not loopback; the "
                "service reads FHIR servers over https only "
                "(setting CYTOKINE_CDS_FHIR_ALLOW_HTTP).",
                "CYTOKINE_CDS_FHIR_ALLOW_HTTP",
            )
        if self.allow_loopback and base.is_loopback:
            return base
        if any(entry.contains(base) for entry in self.allowlist):
            return base
        raise ServerRefused(
            f"fhirServer {base.url} is not on the list of FHIR servers this service may read "
            "(setting CYTOKINE_CDS_FHIR_ALLOWLIST).",
            "CYTOKINE_CDS_FHIR_ALLOWLIST",
        )
