"""`cytokine-cds report` and `cytokine-cds db ...` on a known set of cards and feedback."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cds_service.settings import Settings
from cds_service.store import AuditStore, migrate
from tests.servers import BIN
from tests.store.helpers import feedback_item, hook_call_record, make_card

NOW = datetime.now(UTC)
T1 = "2026-11-20T08:00:00Z"
T2 = "2026-11-20T09:00:00Z"


def cli(
    settings: Settings, *args: str, env_extra: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The real command, configured like `serve` (environment variables only)."""
    env = {**os.environ, "CYTOKINE_CDS_DATA_DIR": str(settings.data_dir), **(env_extra or {})}
    if settings.database_url:
        env["CYTOKINE_CDS_DATABASE_URL"] = settings.database_url.get_secret_value()
    return subprocess.run(
        [str(BIN / "cytokine-cds"), *args], env=env, capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def known_store(store: AuditStore) -> AuditStore:
    """il6driven: 3 shown, 1 accepted, 1 overridden; il1driven: 4 shown, 2 accepted,
    2 overridden; mixed: 1 shown 40 days ago, accepted; plus one orphan feedback item."""
    a, b, c = (make_card("il6driven") for _ in range(3))
    d, e, f, g = (make_card("il1driven") for _ in range(4))
    old = make_card("mixed")
    store.record_hook_call(hook_call_record([a, b, c], called_at=NOW - timedelta(days=2)))
    store.record_hook_call(hook_call_record([d, e], called_at=NOW - timedelta(days=1)))
    store.record_hook_call(hook_call_record([f, g], called_at=NOW - timedelta(hours=1)))
    store.record_hook_call(hook_call_record([old], called_at=NOW - timedelta(days=40)))
    items = [
        feedback_item(a),
        feedback_item(b, "overridden", reason="already-on-therapy"),
        # c: no feedback
        feedback_item(d, at=T1),  # accepted, then dismissed: counts as accepted
        feedback_item(d, "overridden", reason="not-indicated", at=T2),
        feedback_item(e, "overridden", reason="not-indicated", at=T1),
        feedback_item(e, "overridden", reason="patient-declined", at=T2),  # the latest reason
        feedback_item(f, "overridden", comment="no coded reason"),
        feedback_item(g, at=T1),
        feedback_item(g, at=T2),  # accepted twice: one accepted card
        feedback_item(old),
        feedback_item("card-unknown-to-this-store", accepted=["s-1"]),
    ]
    store.record_feedback("cytokine-storm-patient-view", items)
    return store


EXPECTED = [
    {
        "topic": "il1driven",
        "shown": 4,
        "accepted": 2,
        "overridden": 2,
        "override_reasons": {"patient-declined": 1, "unspecified": 1},
        "acceptance_rate": 0.5,
    },
    {
        "topic": "il6driven",
        "shown": 3,
        "accepted": 1,
        "overridden": 1,
        "override_reasons": {"already-on-therapy": 1},
        "acceptance_rate": 0.333,
    },
    {
        "topic": "mixed",
        "shown": 1,
        "accepted": 1,
        "overridden": 0,
        "override_reasons": {},
        "acceptance_rate": 1.0,
    },
]


def test_report_json(known_store: AuditStore, store_settings: Settings) -> None:
    result = cli(store_settings, "report", "--format", "json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == EXPECTED
    assert "scanning" not in result.stderr  # no progress bar when stderr is not a terminal


def test_report_since_leaves_out_older_cards(
    known_store: AuditStore, store_settings: Settings
) -> None:
    since = (NOW - timedelta(days=30)).date().isoformat()
    result = cli(store_settings, "report", "--since", since, "--format", "json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == EXPECTED[:2]
    later = (NOW - timedelta(hours=3)).isoformat()
    only_recent = json.loads(
        cli(store_settings, "report", "--since", later, "--format", "json").stdout
    )
    assert only_recent == [
        {
            "topic": "il1driven",
            "shown": 2,
            "accepted": 1,
            "overridden": 1,
            "override_reasons": {"unspecified": 1},
            "acceptance_rate": 0.5,
        }
    ]


def test_report_csv(known_store: AuditStore, store_settings: Settings) -> None:
    result = cli(store_settings, "report", "--format", "csv")
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert rows == [
        {
            "topic": "il1driven",
            "shown": "4",
            "accepted": "2",
            "overridden": "2",
            "acceptance_rate": "0.500",
            "override_reasons": "patient-declined=1; unspecified=1",
        },
        {
            "topic": "il6driven",
            "shown": "3",
            "accepted": "1",
            "overridden": "1",
            "acceptance_rate": "0.333",
            "override_reasons": "already-on-therapy=1",
        },
        {
            "topic": "mixed",
            "shown": "1",
            "accepted": "1",
            "overridden": "0",
            "acceptance_rate": "1.000",
            "override_reasons": "",
        },
    ]


def test_report_table(known_store: AuditStore, store_settings: Settings) -> None:
    result = cli(store_settings, "report")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == [
        "card",
        "type",
        "shown",
        "accepted",
        "overridden",
        "acceptance",
        "override",
        "reasons",
    ]
    assert lines[2].split() == [
        "il1driven",
        "4",
        "2",
        "2",
        "0.500",
        "patient-declined=1;",
        "unspecified=1",
    ]
    assert lines[3].split() == ["il6driven", "3", "1", "1", "0.333", "already-on-therapy=1"]
    assert lines[4].split() == ["mixed", "1", "1", "0", "1.000", "-"]
    assert lines[5].startswith("1 feedback item(s) name a card this store does not know")


def test_report_on_an_empty_store(store: AuditStore, store_settings: Settings) -> None:
    assert json.loads(cli(store_settings, "report", "--format", "json").stdout) == []
    assert "no cards served" in cli(store_settings, "report").stdout


def test_report_rejects_a_bad_date(store: AuditStore, store_settings: Settings) -> None:
    result = cli(store_settings, "report", "--since", "last tuesday")
    assert result.returncode == 2
    assert "not a date" in result.stderr


@pytest.mark.parametrize("extreme", ["9999-12-31T23:59:59-12:00", "0001-01-01T00:00:00+14:00"])
def test_report_rejects_a_date_beyond_the_calendar_in_utc(tmp_path: Path, extreme: str) -> None:
    # Refused while the arguments are read, before any database is opened.
    settings = Settings(auth="off", data_dir=tmp_path / "data")
    result = cli(settings, "report", "--since", extreme)
    assert result.returncode == 2
    assert "out of range" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("days", ["1000000", "99999999999999", "inf", "nan", "-1"])
def test_db_purge_refuses_days_no_date_can_be_counted_back(tmp_path: Path, days: str) -> None:
    # A million days before now is before year 1: refused with the range, nothing deleted.
    settings = Settings(auth="off", data_dir=tmp_path / "data")
    result = cli(settings, "db", "purge", "--older-than", days)
    assert result.returncode == 2
    assert "must be 0 to 36,500 days" in result.stderr
    assert "Traceback" not in result.stderr


def test_db_purge_then_report(known_store: AuditStore, store_settings: Settings) -> None:
    result = cli(store_settings, "db", "purge", "--older-than", "29.5")
    assert result.returncode == 0, result.stderr
    assert "purged 1 hook call(s), 1 card(s)" in result.stdout
    assert "older than 29.5 day(s)" in result.stdout
    report = json.loads(cli(store_settings, "report", "--format", "json").stdout)
    assert [row["topic"] for row in report] == ["il1driven", "il6driven"]


def test_db_upgrade_and_current_on_a_new_database(database_url: str, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", database_url=database_url)  # type: ignore[arg-type]
    before = cli(settings, "db", "current")
    assert before.stdout.startswith("empty (behind")
    refused = cli(settings, "report")
    assert refused.returncode == 1
    assert "run `cytokine-cds db upgrade`" in refused.stderr
    upgraded = cli(settings, "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    head = migrate.head_revision()
    assert f"upgraded from empty to {head}" in upgraded.stdout
    assert "schema is current" in cli(settings, "db", "upgrade").stdout
    assert cli(settings, "db", "current").stdout.startswith(f"{head} (current)")


def test_db_commands_report_an_unreachable_store(tmp_path: Path) -> None:
    from tests.servers import free_port

    url = f"postgresql://postgres:secretpw@127.0.0.1:{free_port()}/cds"
    settings = Settings(data_dir=tmp_path / "data", database_url=url)  # type: ignore[arg-type]
    for args in (["db", "upgrade"], ["report"], ["db", "purge", "--older-than", "1"]):
        result = cli(settings, *args)
        assert result.returncode == 1
        assert "cannot reach the audit store" in result.stderr
        assert "secretpw" not in result.stderr + result.stdout


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_on_a_terminal_only(
    known_store: AuditStore, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from cds_service.store import commands

    monkeypatch.setattr(commands, "PROGRESS_DELAY_SECONDS", 0)  # a small store scans fast
    terminal = _Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    built = commands._build_with_progress(known_store, since=None)
    assert "scanning: 100%" in terminal.getvalue() and "8/8" in terminal.getvalue()
    assert [t.shown for t in built.topics] == [4, 3, 1]

    monkeypatch.setattr("sys.stderr", io.StringIO())  # a pipe or a file: no bar
    commands._build_with_progress(known_store, since=None)
    assert sys.stderr.getvalue() == ""  # type: ignore[attr-defined]


def test_serve_refuses_to_start_on_a_schema_behind(database_url: str, tmp_path: Path) -> None:
    from tests.servers import free_port

    settings = Settings(data_dir=tmp_path / "data", database_url=database_url)  # type: ignore[arg-type]
    result = cli(
        settings,
        "serve",
        "--port",
        str(free_port()),
        env_extra={"CYTOKINE_CDS_DB_AUTO_UPGRADE": "false", "CYTOKINE_CDS_AUTH": "off"},
    )
    assert result.returncode == 2  # a configuration problem, like every start-up refusal
    assert "run `cytokine-cds db upgrade`" in result.stderr


def test_read_only_commands_never_create_a_store(tmp_path: Path) -> None:
    """Run from a folder without the service's data dir: say that no store is there and how to
    point at one (exit 2); never create an empty store and then advise migrating it."""
    from tests.servers import cytokine_cds

    env = {k: v for k, v in os.environ.items() if not k.startswith("CYTOKINE_CDS_")}
    where = tmp_path.resolve() / "data" / "cytokine-cds.db"
    for args in (["report"], ["db", "current"], ["db", "purge", "--older-than", "1"]):
        result = cytokine_cds(*args, env=env, cwd=tmp_path)
        assert result.returncode == 2, (args, result.stderr)
        assert result.stderr.startswith(f"cytokine-cds: no audit store at {where}"), result.stderr
        assert "CYTOKINE_CDS_DATA_DIR" in result.stderr and "db upgrade" not in result.stderr
        assert list(tmp_path.iterdir()) == []  # nothing created
    created = cytokine_cds("db", "upgrade", env=env, cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    assert "no cards served" in cytokine_cds("report", env=env, cwd=tmp_path).stdout
