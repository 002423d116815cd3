"""The CDS Hooks 2.0 response, emitted strictly.

Every Card, Source, Suggestion, Action, Link and systemActions field of the spec, with the rules
the spec and the HL7 tools-IG invariants (cds-resp-1..6) put on them. Optional members without a
value are omitted on the wire, never sent as null or [] (spec, "Use of JSON").
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

Text = Annotated[str, StringConstraints(min_length=1)]
AbsoluteUrl = Annotated[str, StringConstraints(pattern=r"^https?://[^\s/]+\S*$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def to_json(self) -> dict[str, Any]:
        return cast(dict[str, Any], _prune(self.model_dump(mode="json", exclude_none=True)))


def _prune(value: Any) -> Any:
    """Drop empty lists and objects, which the spec forbids for optional members.

    (Recurses into containers only: on the hot path it walks every card and suggested
    resource of the answer.)"""
    if type(value) is dict:
        pruned = {}
        for key, item in value.items():
            if type(item) is dict or type(item) is list:
                item = _prune(item)
                if not item:
                    continue
            pruned[key] = item
        return pruned
    if type(value) is list:
        return [_prune(item) if type(item) in (dict, list) else item for item in value]
    return value


class Coding(_Strict):
    system: Text
    code: Text
    display: Text | None = None


class Source(_Strict):
    label: Text
    url: AbsoluteUrl | None = None
    icon: AbsoluteUrl | None = None
    topic: Coding | None = None


class Action(_Strict):
    type: Literal["create", "update", "delete"]
    description: Text
    resource: dict[str, Any] | None = None
    resourceId: Text | None = None

    @model_validator(mode="after")
    def _payload_fits_type(self) -> Action:
        if self.type in ("create", "update") and not self.resource:
            raise ValueError(f"a {self.type} action needs a resource")
        if self.type == "delete" and not self.resourceId:
            # cds-resp-2: deletes name the resource by resourceId (resource is deprecated).
            raise ValueError("a delete action needs a resourceId")
        return self


class Suggestion(_Strict):
    label: Text
    uuid: Text | None = None
    isRecommended: bool | None = None
    actions: list[Action] | None = None


class Link(_Strict):
    label: Text
    url: AbsoluteUrl
    type: Literal["absolute", "smart"]
    appContext: Text | None = None
    autolaunchable: bool | None = None

    @model_validator(mode="after")
    def _app_context_only_for_smart(self) -> Link:
        if self.appContext is not None and self.type != "smart":
            raise ValueError("appContext is only valid for smart links")  # cds-resp-3
        return self


class Card(_Strict):
    uuid: Text | None = None
    # "One-sentence, <140-character summary".
    summary: Annotated[str, StringConstraints(min_length=1, max_length=139)]
    detail: Text | None = None
    indicator: Literal["info", "warning", "critical"]
    source: Source
    suggestions: list[Suggestion] | None = None
    selectionBehavior: Literal["at-most-one", "any"] | None = None
    overrideReasons: list[Coding] | None = None
    links: list[Link] | None = None

    @model_validator(mode="after")
    def _spec_rules(self) -> Card:
        if self.suggestions and self.selectionBehavior is None:
            raise ValueError("selectionBehavior is required when suggestions exist")  # cds-resp-6
        if self.selectionBehavior == "at-most-one" and self.suggestions:
            recommended = sum(1 for s in self.suggestions if s.isRecommended)
            if recommended > 1:
                raise ValueError("at-most-one allows one recommended suggestion")  # cds-resp-1
        for reason in self.overrideReasons or ():
            if not reason.display:
                raise ValueError("override reasons need a display")  # cds-resp-4
        return self


class CdsResponse(_Strict):
    cards: list[Card] = Field(default_factory=list)
    systemActions: list[Action] | None = None

    def to_json(self) -> dict[str, Any]:
        body = super().to_json()
        body.setdefault("cards", [])  # the one empty array the spec asks for
        return body


class ServiceDescription(_Strict):
    """One entry of the discovery response."""

    id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._~-]+$")]
    hook: Text
    title: Text | None = None
    description: Text
    prefetch: dict[str, Text] | None = None
    usageRequirements: Text | None = None
