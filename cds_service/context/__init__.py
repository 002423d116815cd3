"""The chart around the labs: clinical settings, drugs, respiratory support, allergies."""

from .catalog import ContextCatalog, ContextCatalogError, load_context_catalog
from .models import ChartContext, DrugExposure, OxygenSupport, Setting, SettingFinding
from .reader import order_indication, read_chart

__all__ = [
    "ChartContext",
    "ContextCatalog",
    "ContextCatalogError",
    "DrugExposure",
    "OxygenSupport",
    "Setting",
    "SettingFinding",
    "load_context_catalog",
    "order_indication",
    "read_chart",
]
