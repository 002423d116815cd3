"""Signed, expiring links to the profile page of one stored assessment.

The URL carries only an opaque token: a random assessment id, the time it was signed and an
HMAC-SHA256 signature (itsdangerous). No patient identifier and no lab value is in it, so it can
pass through EHR logs, browser history and proxies without disclosing anything; holding a valid,
unexpired token is the authorisation to see the page.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner

from cds_service.hooks.response import Link

PROFILE_PATH = "/profile"
LINK_LABEL = "View cytokine profile"
SECRET_FILE = "profile-link.secret"  # noqa: S105 (a file name, not a secret)
_SALT = "cytokine-cds/profile-link"
# 128 random bits, URL-safe: an id nobody can guess or derive from the patient.
_ID_BYTES = 16
_ID_LENGTH = 22  # len(secrets.token_urlsafe(16))
_ID_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


class LinkRefused(Exception):
    """The token is not one we signed, or it has expired. Callers answer 403 and say no more."""


@dataclass(frozen=True)
class ProfileLink:
    assessment_id: str
    token: str
    url: str


class _Signer(TimestampSigner):
    """A TimestampSigner whose clock can be set (tests sign and check at fixed times)."""

    def __init__(self, secret: bytes, clock: Callable[[], float]) -> None:
        super().__init__(secret, salt=_SALT, digest_method=hashlib.sha256)
        self._clock = clock

    def get_timestamp(self) -> int:
        return int(self._clock())


class ProfileLinks:
    """Makes and checks profile links. Thread-safe: it holds no mutable state."""

    def __init__(
        self, secret: bytes, lifetime_seconds: int, clock: Callable[[], float] = time.time
    ) -> None:
        self._signer = _Signer(secret, clock)
        self.lifetime_seconds = lifetime_seconds

    def issue(self, base_url: str) -> ProfileLink:
        """A new assessment id and its link under `base_url` (scheme://host[:port][/prefix])."""
        assessment_id = secrets.token_urlsafe(_ID_BYTES)
        token = self.sign(assessment_id)
        return ProfileLink(assessment_id, token, f"{base_url.rstrip('/')}{PROFILE_PATH}/{token}")

    def sign(self, assessment_id: str) -> str:
        """The token for `assessment_id`, stamped with the current time."""
        return self._signer.sign(assessment_id).decode("ascii")

    def read(self, token: str) -> str:
        """The assessment id a token names. Raises LinkRefused when it is forged or expired."""
        try:
            value = self._signer.unsign(token, max_age=self.lifetime_seconds)
        except SignatureExpired:
            raise LinkRefused("expired") from None
        except BadSignature:
            raise LinkRefused("bad signature") from None
        assessment_id = value.decode("ascii", errors="replace")
        if len(assessment_id) != _ID_LENGTH or not set(assessment_id) <= _ID_ALPHABET:
            raise LinkRefused("not an assessment id")  # signed by us, so never in practice
        return assessment_id


def issue_link(links: ProfileLinks | None, base_url: str | None) -> ProfileLink | None:
    """A link for the cards of one answer; None when the page is off or there is no base
    URL to build it on. (Whether a card carries it is the card builder's choice: a link no card
    carries is dropped with nothing stored.)"""
    if links is None or base_url is None:
        return None
    return links.issue(base_url)


def card_link(link: ProfileLink) -> Link:
    return Link(label=LINK_LABEL, url=link.url, type="absolute")
