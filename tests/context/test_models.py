from datetime import UTC, datetime

from cds_service.context.models import EMPTY_CHART, ChartContext, DrugExposure, SettingFinding

T0 = datetime(2026, 11, 28, 8, tzinfo=UTC)


def _dose(drug: str, drug_class: str, when: datetime | None) -> DrugExposure:
    return DrugExposure(drug, drug_class, "administration", when, None, "completed", None)


def test_given_filters_by_drug_or_class_and_time_newest_first() -> None:
    early, late, undated = (
        _dose("tocilizumab", "il6-blocker", T0),
        _dose("tocilizumab", "il6-blocker", T0.replace(day=29)),
        _dose("tocilizumab", "il6-blocker", None),
    )
    other = _dose("dexamethasone", "corticosteroid", T0)
    chart = ChartContext((), (early, other, undated, late), None, (), (), (), None, ())
    assert chart.given("tocilizumab") == (late, early, undated)
    assert chart.given("il6-blocker", since=T0.replace(hour=9)) == (late,)
    assert chart.given("corticosteroid") == (other,)
    assert chart.given("anakinra") == ()


def test_has_and_findings() -> None:
    covid = SettingFinding("covid19", "Condition COVID-19 (U07.1)", "Condition/a", T0)
    older = SettingFinding("covid19", "Condition COVID-19 (840539006)", None, None)
    chart = ChartContext((older, covid), (), None, (), ("anakinra",), (), None, ())
    assert chart.has("covid19") and not chart.has("iec")
    assert chart.findings("covid19") == (covid, older)
    assert chart.allergic_to("anakinra") and not chart.allergic_to("tocilizumab", "il6-blocker")
    assert not EMPTY_CHART.has("covid19")
