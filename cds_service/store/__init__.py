"""The audit trail and feedback store (SQLAlchemy; SQLite by default, PostgreSQL for replicas)."""

from cds_service.store.audit import (
    AuditStore,
    FeedbackResult,
    PurgeResult,
    StoreError,
    StoreUnavailable,
)
from cds_service.store.records import (
    CardRecord,
    ClientIdentity,
    EhrTrigger,
    EvidenceEntry,
    HookCallRecord,
    ProblemEntry,
    ProfileRecord,
)

__all__ = [
    "AuditStore",
    "CardRecord",
    "ClientIdentity",
    "EhrTrigger",
    "EvidenceEntry",
    "FeedbackResult",
    "HookCallRecord",
    "ProblemEntry",
    "ProfileRecord",
    "PurgeResult",
    "StoreError",
    "StoreUnavailable",
]
