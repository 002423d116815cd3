"""Which FHIR servers the service may contact, decided from the URL alone.

A hook request names the FHIR server to read (`fhirServer`). Reading whatever a caller names would
make the service a tool for reaching hosts it should not reach (SSRF), so a server must be on a
configured allowlist (or on loopback in a demo), over https unless told otherwise. Nothing here
resolves a name or opens a connection: a refused host is never looked up.

URLs are parsed with urllib3's parser, the one that later opens the connection, and URLs on which
parsers are known to disagree (backslashes, user info, whitespace) are refused outright.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from urllib3.exceptions import LocationParseError
from urllib3.util import parse_url

_DEFAULT_PORTS = {"http": 80, "https": 443}


class ServerRefused(ValueError):
    """The request's fhirServer may not be contacted; `setting` is the one that decides it."""

    def __init__(self, message: str, setting: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.setting = setting


@dataclass(frozen=True)
class FhirBase:
    """A FHIR base URL, normalised: lower-case scheme and host, explicit port, no trailing '/'."""

    scheme: str
    host: str
    port: int
    path: str

    @property
    def url(self) -> str:
        default = _DEFAULT_PORTS[self.scheme]
        port = "" if self.port == default else f":{self.port}"
        return f"{self.scheme}://{self.host}{port}{self.path}"

    @property
    def is_loopback(self) -> bool:
        return _is_loopback(self.host)

    def contains(self, other: FhirBase) -> bool:
        """True when `other` is this base or lies below it, on the same origin."""
        same_origin = (self.scheme, self.host, self.port) == (other.scheme, other.host, other.port)
        return same_origin and (other.path == self.path or other.path.startswith(self.path + "/"))

    def owns(self, url: str) -> bool:
        """True when the absolute `url` (a query or a `next` link) stays on this base."""
        try:
            target = _parse(url, allow_query=True)
        except ValueError:
            return False
        return self.contains(target)


def parse_base_url(url: str) -> FhirBase:
    """Parse a FHIR base URL (from settings or a request); ValueError names what is wrong."""
    return _parse(url, allow_query=False)


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


def _parse(url: str, *, allow_query: bool) -> FhirBase:
    if not url.isascii() or any(ch.isspace() or ord(ch) < 32 or ch == "\\" for ch in url):
        raise ValueError("it must be plain ASCII without spaces, control characters or '\\'")
    try:
        parts = parse_url(url)
    except LocationParseError:
        raise ValueError("it does not parse as a URL") from None
    scheme = (parts.scheme or "").lower()
    if scheme not in _DEFAULT_PORTS or not parts.host:
        raise ValueError("it must be an absolute http(s) URL")
    if parts.auth is not None:
        raise ValueError("it must not carry user info (user:password@)")
    if parts.fragment is not None:
        raise ValueError("it must not carry a fragment (#...)")
    if parts.query is not None and not allow_query:
        raise ValueError("a base URL must not carry a query (?...)")
    host = parts.host.lower()
    # The stdlib parser must see the same host: a disagreement is how filters get bypassed.
    split_host = urlsplit(url).hostname or ""
    if split_host.lower() != host.strip("[]"):
        raise ValueError("its host is ambiguous")
    raw_path = urlsplit(url).path
    if any(unquote(segment) in (".", "..") for segment in raw_path.split("/")):
        raise ValueError("its path must not contain '.' or '..' segments")
    port = parts.port or _DEFAULT_PORTS[scheme]
    return FhirBase(scheme, host, port, (parts.path or "").rstrip("/"))


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
