"""The trusted-clients file: which CDS clients (JWT issuers) may call, and with which keys.

    {"clients": [{"iss": "https://ehr.example.org",
                  "jku": ["https://ehr.example.org/.well-known/jwks.json"],
                  "jwks": {"keys": [...]},
                  "tenants": ["hospital-a"],
                  "algorithms": ["ES384"],
                  "cards": {"alternative_order": "two-suggestions"}}]}

Per issuer: the `jku` URLs it may name (fetched only if listed), and/or a static JWK Set
(public keys communicated out of band); optionally the tenants and algorithms it may use, and
how cards are shaped for it where documented clients conflict (`cards`), the audiences and
`sub` its JWTs must carry.
The file is read and checked once, at start-up; any problem stops start-up with a message.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from cds_service.auth.algorithms import JwtAlgorithm
from cds_service.auth.jwks import JwkError, VerificationKey, jku_problem, parse_jwk_set
from cds_service.validation import error_lines


class TrustedClientsError(ValueError):
    """The trusted-clients file cannot be used; the message names the file and the problem."""


class CardOptions(BaseModel):
    """Where documented clients conflict, how this client's cards are shaped."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    alternative_order: Literal["two-suggestions", "one-suggestion"] = Field(
        "two-suggestions",
        description=(
            "An order that does not fit, with an alternative: two suggestions, 'remove the "
            "draft' and 'order the alternative' (Epic, Oracle Health, the CDS Hooks sandbox), "
            "or one suggestion with both actions (Da Vinci CRD's 'propose alternate request')."
        ),
    )

    rxnorm_system: Literal["url", "oid"] = Field(
        "url",
        description=(
            "How suggested drugs name RxNorm: its URL (the FHIR standard) or its OID "
            "urn:oid:2.16.840.1.113883.6.88 (as Epic's own messages do)."
        ),
    )


class TrustedClient(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    iss: str = Field(min_length=1, description="The `iss` claim this client's JWTs carry.")
    name: str | None = Field(None, description="A label for people reading the file and logs.")
    jku: list[str] = Field(
        default_factory=list,
        description="JWK Set URLs the client may name in its JWT's `jku` header.",
    )
    jwks: dict[str, Any] | None = Field(None, description="A static JWK Set (public keys).")
    tenants: list[str] | None = Field(
        None, description="If set, the `tenant` claim must be one of these."
    )
    algorithms: list[JwtAlgorithm] | None = Field(
        None, description="If set, the only algorithms accepted from this client."
    )
    audiences: list[str] | None = Field(
        None,
        description=(
            "If set, the only `aud` values accepted from this client (absolute URLs, as typed "
            "into the EHR). Default: the URL called, and on /feedback also its service's URL, "
            "both on CYTOKINE_CDS_PUBLIC_BASE_URL."
        ),
    )
    sub: str | None = Field(
        None, description="If set, the `sub` claim must be this (Epic: the client id)."
    )
    cards: CardOptions = Field(default_factory=CardOptions)

    @field_validator("jku")
    @classmethod
    def _jku_urls(cls, urls: list[str]) -> list[str]:
        for url in urls:
            problem = jku_problem(url)
            if problem:
                raise ValueError(f"jku URL '{url}' {problem}")
        if len(set(urls)) != len(urls):
            raise ValueError("a jku URL is listed twice")
        return urls

    @field_validator("jwks")
    @classmethod
    def _static_keys(cls, jwks: dict[str, Any] | None) -> dict[str, Any] | None:
        if jwks is not None:
            try:
                if not parse_jwk_set(jwks, strict=True):
                    raise ValueError("the JWK Set has no keys")
            except JwkError as exc:
                raise ValueError(str(exc)) from None
        return jwks

    @field_validator("audiences")
    @classmethod
    def _absolute_audiences(cls, urls: list[str] | None) -> list[str] | None:
        for url in urls or ():
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"audience '{url}' is not an absolute http(s) URL")
        return urls

    @field_validator("tenants", "algorithms", "audiences")
    @classmethod
    def _not_empty(cls, values: list[Any] | None) -> list[Any] | None:
        if values is not None and not values:
            raise ValueError("leave it out rather than list nothing (nothing would be accepted)")
        return values

    @model_validator(mode="after")
    def _has_keys(self) -> TrustedClient:
        if not self.jku and self.jwks is None:
            raise ValueError(f"client '{self.iss}' needs `jku` URLs or a static `jwks`")
        return self

    def static_keys(self) -> dict[str, VerificationKey]:
        return parse_jwk_set(self.jwks, strict=True) if self.jwks is not None else {}


class TrustedClientsFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    clients: list[TrustedClient] = Field(min_length=1)

    @field_validator("clients")
    @classmethod
    def _unique_issuers(cls, clients: list[TrustedClient]) -> list[TrustedClient]:
        seen: set[str] = set()
        for client in clients:
            if client.iss in seen:
                raise ValueError(f"issuer '{client.iss}' is listed twice")
            seen.add(client.iss)
        return clients


def load_trusted_clients(path: Path) -> TrustedClientsFile:
    where = f"trusted-clients file {path}"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TrustedClientsError(f"{where} cannot be read: {exc.strerror or exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TrustedClientsError(
            f"{where} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        ) from None
    try:
        return TrustedClientsFile.model_validate(data)
    except ValidationError as exc:
        lines, _ = error_lines(exc, top_level="(top level)")
        problems = [f"{path}: {message}" for path, message in lines]
        raise TrustedClientsError(f"{where} is invalid: {'; '.join(problems)}") from None
