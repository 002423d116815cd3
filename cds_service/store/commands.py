"""`cytokine-cds db upgrade|current|purge` and `cytokine-cds report`: the store's command line.

They open the store from the same settings (CYTOKINE_CDS_*) as `serve` (the command line passes
the opener in), so they work on the store it writes.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy.exc import OperationalError

from cds_service.store import migrate, report
from cds_service.store.audit import AuditStore, StoreError, StoreMissing

# A store without a patient key (nothing here needs one); the argument says that the store must
# exist already (StoreMissing otherwise): only `db upgrade` may create one.
StoreOpener = Callable[[bool], AuditStore]
# The progress bar appears only for scans that take longer than this.
PROGRESS_DELAY_SECONDS = 0.5


def add_commands(commands: Any, open_store: StoreOpener) -> None:
    """Register the store's subcommands on the main parser's subparsers."""
    db = commands.add_parser("db", help="audit store schema and retention")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    upgrade = db_commands.add_parser("upgrade", help="apply pending schema migrations")
    upgrade.set_defaults(handler=lambda args: _upgrade(open_store(False)))
    current = db_commands.add_parser("current", help="show the schema revision")
    current.set_defaults(handler=lambda args: _current(open_store))
    purge = db_commands.add_parser(
        "purge", help="delete hook calls, cards, profiles and feedback older than DAYS days"
    )
    purge.add_argument("--older-than", type=_days, required=True, metavar="DAYS")
    purge.set_defaults(handler=lambda args: _purge(open_store, args.older_than))

    show = commands.add_parser(
        "report", help="per card type: shown, accepted, overridden (by reason), acceptance rate"
    )
    show.add_argument(
        "--since", type=_since, metavar="DATE", help="only cards served on or after DATE (UTC)"
    )
    show.add_argument("--format", choices=report.FORMATS, default="table")
    show.add_argument(
        "--by",
        choices=report.GROUPINGS,
        default="topic",
        help="count per card type (topic) or per EHR trigger action and criteria id (trigger)",
    )
    show.set_defaults(handler=lambda args: _report(open_store, args.since, args.format, args.by))


# A century: further back than any audit trail reaches (and than dates can be counted from now).
_MOST_DAYS = 36_500


def _days(value: str) -> timedelta:
    try:
        days = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of days: {value!r}") from None
    if not 0 <= days <= _MOST_DAYS:  # NaN fails this too
        raise argparse.ArgumentTypeError(f"must be 0 to {_MOST_DAYS:,} days")
    return timedelta(days=days)


def _since(value: str) -> datetime:
    """YYYY-MM-DD (midnight UTC) or an ISO 8601 date-time (UTC when it has no zone)."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a date: {value!r} (use YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS][+HH:MM])"
        ) from None
    if len(value) == 10:
        parsed = datetime.combine(date.fromisoformat(value), datetime.min.time())
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise argparse.ArgumentTypeError(
            f"out of range: {value!r} is outside the years 1 to 9999 once in UTC"
        ) from None


def _fail(message: str, code: int = 1) -> int:
    print(f"cytokine-cds: {message}", file=sys.stderr)
    return code


def _upgrade(store: AuditStore) -> int:
    try:
        before = migrate.current_revision(store.engine)
        migrate.upgrade(store.engine)
        after = migrate.current_revision(store.engine)
    except OperationalError as exc:
        return _fail(f"cannot reach the audit store: {type(exc.orig).__name__}")
    finally:
        store.close()
    if before == after:
        print(f"audit store schema is current (revision {after})")
    else:
        print(f"audit store schema upgraded from {before or 'empty'} to {after}")
    return 0


def _current(open_store: StoreOpener) -> int:
    try:
        store = open_store(True)
    except StoreMissing as exc:
        return _fail(str(exc), 2)
    try:
        current = migrate.current_revision(store.engine)
    except OperationalError as exc:
        return _fail(f"cannot reach the audit store: {type(exc.orig).__name__}")
    finally:
        store.close()
    head = migrate.head_revision()
    state = "current" if current == head else f"behind: this version needs {head}"
    print(f"{current or 'empty'} ({state})")
    return 0


def _checked_store(open_store: StoreOpener) -> AuditStore:
    store = open_store(True)
    try:
        store.check_schema()
    except OperationalError as exc:
        store.close()
        raise StoreError(f"cannot reach the audit store: {type(exc.orig).__name__}") from None
    except StoreError:
        store.close()
        raise
    return store


def _purge(open_store: StoreOpener, older_than: timedelta) -> int:
    try:
        store = _checked_store(open_store)
    except StoreMissing as exc:
        return _fail(str(exc), 2)
    except StoreError as exc:
        return _fail(str(exc))
    try:
        result = store.purge(older_than)
    finally:
        store.close()
    print(
        f"purged {result.hook_calls} hook call(s), {result.cards} card(s), "
        f"{result.profiles} profile(s) and {result.feedback} feedback item(s) "
        f"older than {older_than.total_seconds() / 86400:g} day(s)"
    )
    return 0


def _report(open_store: StoreOpener, since: datetime | None, output: str, by: str = "topic") -> int:
    try:
        store = _checked_store(open_store)
    except StoreMissing as exc:
        return _fail(str(exc), 2)
    except StoreError as exc:
        return _fail(str(exc))
    try:
        built = _build_with_progress(store, since, by)
    finally:
        store.close()
    if output == "json":
        print(json.dumps(built.to_json(), indent=2))
    elif output == "csv":
        sys.stdout.write(report.as_csv(built))
    else:
        sys.stdout.write(report.as_table(built))
    return 0


def _build_with_progress(
    store: AuditStore, since: datetime | None, by: str = "topic"
) -> report.Report:
    """A progress bar on stderr when it is a terminal and the scan takes more than a moment."""
    if not sys.stderr.isatty():
        return report.build_report(store.engine, since, by=by)
    from tqdm import tqdm

    total = report.count_cards(store.engine, since)
    delay = PROGRESS_DELAY_SECONDS
    with tqdm(total=total, unit="card", desc="scanning", delay=delay, file=sys.stderr) as bar:
        return report.build_report(store.engine, since, progress=bar.update, by=by)
