"""Hand-built chart contexts for rules tests (what `read_chart` gives for a chart)."""

from __future__ import annotations

from datetime import datetime, timedelta

from cds_service.context.models import (
    EMPTY_CHART,
    ChartContext,
    DrugExposure,
    OxygenSupport,
    SettingFinding,
)
from tests.evidence.observation_builders import AS_OF


def finding(setting: str, *, kind: str | None = None, day: int | None = None) -> SettingFinding:
    return SettingFinding(
        setting=setting,  # type: ignore[arg-type]
        reason=f"test finding for {setting}",
        reference=None,
        when=AS_OF - timedelta(days=day or 1),
        kind=kind,
        day=day,
    )


def given(
    drug: str, hours_ago: float, drug_class: str = "", source: str = "administration"
) -> DrugExposure:
    return DrugExposure(
        drug=drug,
        drug_class=drug_class,
        source=source,  # type: ignore[arg-type]
        when=AS_OF - timedelta(hours=hours_ago),
        dose_mg=None,
        status="completed",
        reference=None,
    )


def chart(
    *settings: SettingFinding,
    drugs: tuple[DrugExposure, ...] = (),
    oxygen: str | None = None,
    infections: tuple[str, ...] = (),
    latent_tb: bool | None = None,
    allergies: tuple[str, ...] = (),
    when: datetime = AS_OF,
) -> ChartContext:
    support = None
    if oxygen is not None:
        support = OxygenSupport(level=oxygen, flow_l_min=None, fio2=None, when=when)  # type: ignore[arg-type]
    return ChartContext(
        settings=settings,
        drugs=drugs,
        oxygen=support,
        vasopressors=(),
        allergies=allergies,
        active_infections=infections,
        latent_tb=latent_tb,
        problems=(),
    )


__all__ = ["EMPTY_CHART", "chart", "finding", "given"]
