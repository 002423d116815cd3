"""The calling client, as the auth layer verified it, in the shape the audit store records."""

from __future__ import annotations

from flask import g

from cds_service.store import ClientIdentity


def calling_client() -> ClientIdentity | None:
    """`iss`/`tenant` of the verified client (flask.g.cds_client), or None when unauthenticated."""
    return ClientIdentity.from_verified(g.get("cds_client"))
