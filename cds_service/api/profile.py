"""GET /profile/<token>: the cytokine profile page a card links to.

Outside /cds-services, so no CDS client JWT applies: the signed, expiring token is the
authorisation. An expired or forged token gets the same plain 403 page, whatever the reason;
a profile that was not kept gets 404, a store that cannot be read 503. Every answer carries
`Cache-Control: no-store` and a CSP that lets the page load nothing and run nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import cast

from flask import Blueprint, Flask, Response, current_app
from pydantic import ValidationError

from cds_service.api.runtime import current_runtime
from cds_service.profile.links import PROFILE_PATH, LinkRefused
from cds_service.profile.page import ProfilePages
from cds_service.profile.snapshot import StoredProfile
from cds_service.store import StoreUnavailable

log = logging.getLogger(__name__)

bp = Blueprint("profile", __name__)
PAGES_KEY = "cytokine_cds_profile_pages"
RETRY_AFTER_SECONDS = 30


def install_profile_page(
    app: Flask,
    notice: str,
    frame_ancestors: Sequence[str],
    setting_scores: Mapping[str, Sequence[str]] | None = None,
) -> None:
    """Serve the page (when it is off, the app does not call this: the route answers 404).

    `frame_ancestors`: origins that may show the page in a frame (none: no framing)."""
    pages = ProfilePages(notice, setting_scores=setting_scores)
    app.extensions[PAGES_KEY] = (pages, security_headers(frame_ancestors))
    app.register_blueprint(bp)


def security_headers(frame_ancestors: Sequence[str]) -> dict[str, str]:
    ancestors = " ".join(frame_ancestors) or "'none'"
    headers = {
        "Cache-Control": "no-store",
        # Inline styles only: matplotlib's SVG styles its elements with style attributes.
        "Content-Security-Policy": (
            "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; "
            f"form-action 'none'; frame-ancestors {ancestors}"
        ),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Robots-Tag": "noindex, nofollow",
        "Cross-Origin-Opener-Policy": "same-origin",
    }
    if ancestors == "'none'":
        headers["X-Frame-Options"] = "DENY"  # for browsers without CSP frame-ancestors
    return headers


@bp.get(f"{PROFILE_PATH}/<token>")
def profile_page(token: str) -> Response:
    pages, headers = cast(tuple[ProfilePages, dict[str, str]], current_app.extensions[PAGES_KEY])
    runtime = current_runtime()

    def answer(body: str, status: int = 200) -> Response:
        response = Response(body, status=status, mimetype="text/html")
        response.headers.update(headers)
        if status == 503:
            response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response

    links, store = runtime.profile_links, runtime.store
    if links is None or store is None:
        return answer(pages.refused(404), 404)
    try:
        assessment_id = links.read(token)
    except LinkRefused as refusal:
        log.info("profile link refused (%s)", refusal)  # never the token
        return answer(pages.refused(403), 403)
    cached = pages.cached(assessment_id)
    if cached is not None:
        return answer(cached)
    try:
        data = store.profile(assessment_id)
    except StoreUnavailable:
        return answer(pages.refused(503), 503)
    if data is None:
        return answer(pages.refused(404), 404)
    try:
        stored = StoredProfile.model_validate(data)
    except ValidationError as exc:
        log.error("profile page: a stored profile cannot be read (%d problems)", exc.error_count())
        return answer(pages.refused(404), 404)
    return answer(pages.profile(assessment_id, stored))
