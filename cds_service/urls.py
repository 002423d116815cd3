"""Base URLs of the servers the service reads, and loopback hosts: parsed from the text alone.

URLs are parsed with urllib3's parser, the one that later opens the connection, and URLs on which
parsers are known to disagree (backslashes, user info, whitespace) are refused outright. Nothing
here resolves a name or opens a connection.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from urllib3.exceptions import LocationParseError
from urllib3.util import parse_url

_DEFAULT_PORTS = {"http": 80, "https": 443}


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
        return is_loopback_host(self.host)

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


def is_loopback_host(host: str) -> bool:
    """localhost, 127.0.0.0/8 or ::1 (brackets allowed); a name is never looked up."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
