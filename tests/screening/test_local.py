"""`cytokine-cds screen` with the local engine, on a synthetic census with planted patients."""

from __future__ import annotations

import json
import tempfile
import uuid
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from cds_service.screening.evaluate import URGENCY
from cds_service.screening.source import Line, patient_of
from tests.screening.conftest import (
    EXPECTED_CARDS,
    HEALTHY,
    card_type,
    copy_census,
    gzip_file,
    screen,
)

LISTED = {f"planted-{name}": cards for name, cards in EXPECTED_CARDS.items() if cards}


def test_planted_patients_are_listed_with_their_cards_and_no_healthy_one(
    census: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = screen(capsys, census, tmp_path / "out.ndjson", "--workers", "1")
    assert run.code == 0, run.stderr
    rows = run.rows()
    assert {row["patient"]: row["card_types"] for row in rows} == LISTED
    assert [(URGENCY.index(r["urgency"]), r["patient"]) for r in rows] == sorted(
        (URGENCY.index(r["urgency"]), r["patient"]) for r in rows
    )
    for row in rows:
        assert [card_type(card) for card in row["cards"]] == row["card_types"]
        assert row["urgency"] in {card["indicator"] for card in row["cards"]}
        assert row["decisive_values"], row["patient"]
        assert row["evaluated_at"] == "2026-11-20T12:00:00Z"
        for card in row["cards"]:
            uuid.UUID(card["uuid"])
    il6 = next(row for row in rows if row["patient"] == "planted-css-il6-covid")
    assert il6["pattern"] == "il6-driven"
    assert {"IL-6", "CRP"} <= {value["label"] for value in il6["decisive_values"]}
    total = HEALTHY + len(EXPECTED_CARDS)
    assert f"screened {total} patients" in run.stderr
    assert f"listed {len(LISTED)} patients with a card" in run.stderr
    assert f"{total - len(LISTED)} without a card (not written)" in run.stderr
    assert "il6driven 1" in run.stderr and "multiplexassayneeded 2" in run.stderr
    assert "data problems: none" in run.stderr


def test_split_gzip_files_and_worker_processes_give_the_same_bytes(
    census: Path, split_gzip_census: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parts = sorted(p.name for p in split_gzip_census.glob("Observation*.ndjson.gz"))
    assert len(parts) > 2 and "Observation.2.ndjson.gz" in parts
    one = screen(capsys, census, tmp_path / "one.ndjson", "--workers", "1")
    two = screen(capsys, split_gzip_census, tmp_path / "two.ndjson", "--workers", "2")
    assert one.code == two.code == 0, two.stderr
    assert one.out.read_bytes() == two.out.read_bytes()  # card uuids included
    assert len(one.rows()) == len(LISTED)


def test_a_malformed_line_is_the_patients_data_problem_and_is_skipped(
    census: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = copy_census(census, tmp_path / "census")
    observations = folder / "Observation.ndjson"
    lines = observations.read_text(encoding="utf-8").splitlines()
    older_il6 = next(i for i, line in enumerate(lines) if '"planted-css-il6-covid-il6-1"' in line)
    lines[older_il6] = lines[older_il6][:-30]  # cut off: its subject is still there
    anonymous = next(i for i, line in enumerate(lines) if "Patient/census-0000005" in line)
    lines[anonymous] = '{"resourceType": "Observation", "status": '
    observations.write_text("\n".join(lines) + "\n", encoding="utf-8")

    run = screen(capsys, folder, tmp_path / "out.ndjson", "--workers", "1")
    assert run.code == 0, run.stderr
    rows = {row["patient"]: row for row in run.rows()}
    assert set(rows) == set(LISTED)  # the run went on; the same patients are listed
    il6 = rows["planted-css-il6-covid"]
    assert il6["card_types"] == ["il6driven"]  # its newer IL-6 result still decides
    assert il6["problems"] == [
        {
            "code": "malformed",
            "reason": f"Observation.ndjson line {older_il6 + 1} is not a FHIR resource in "
            "JSON; it was skipped",
            "reference": f"Observation.ndjson:{older_il6 + 1}",
        }
    ]
    assert "data problems: 1 in 1 patients (malformed 1)" in run.stderr
    assert "malformed lines skipped: 2" in run.stderr
    assert (
        f"lines naming no patient (not screened): 1 (e.g. Observation.ndjson line {anonymous + 1})"
    ) in run.stderr


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("missing", "no such folder"),
        ("empty", "no NDJSON files"),
        ("bundle", "Observation.ndjson line 1: not NDJSON"),
        ("gzip", "Patient.ndjson.gz line "),
    ],
)
def test_bad_input_exits_2_naming_the_file_and_line(
    census: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], damage: str, message: str
) -> None:
    folder = tmp_path / "export"
    if damage == "empty":
        folder.mkdir()
        (folder / "notes.txt").write_text("not an export\n")
    elif damage == "bundle":  # a pretty-printed JSON Bundle under an NDJSON name
        copy_census(census, folder)
        bundle = {"resourceType": "Bundle", "type": "collection", "entry": []}
        (folder / "Observation.ndjson").write_text(json.dumps(bundle, indent=2))
    elif damage == "gzip":  # cut off mid-stream
        copy_census(census, folder)
        packed = gzip_file(folder / "Patient.ndjson")
        packed.write_bytes(packed.read_bytes()[: packed.stat().st_size // 2])
    out = tmp_path / "out.ndjson"
    run = screen(capsys, folder, out, "--workers", "1")
    assert run.code == 2
    assert message in run.stderr
    assert run.stderr.startswith("cytokine-cds: ")
    assert not out.exists()  # no half-written worklist


def test_a_time_without_zone_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from cds_service.cli import main

    code = main(["screen", str(tmp_path), "--out", str(tmp_path / "o"), "--as-of", "2026-11-20"])
    assert code == 2
    assert "needs a zone" in capsys.readouterr().err


def test_csv_worklist(census: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import csv

    run = screen(capsys, census, tmp_path / "worklist.csv", "--format", "csv", "--workers", "1")
    assert run.code == 0, run.stderr
    with run.out.open(newline="", encoding="utf-8") as handle:
        table = list(csv.DictReader(handle))
    assert table[0]["patient"] == "planted-css-immunoparalysis"  # warning first
    assert {row["patient"] for row in table} == set(LISTED)
    il6 = next(row for row in table if row["patient"] == "planted-css-il6-covid")
    assert il6["cards"] == "il6driven" and il6["urgency"] == "info"
    assert "IL-6 320 pg/mL (> 80 pg/mL)" in il6["decisive values"]
    assert il6["summary"].startswith("Cytokine pattern IL-6")  # no setting: hedged, no drug


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.tags: set[str] = set()
        self.attributes: set[str] = set()
        self._in_body = False
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.attributes |= {name for name, _ in attrs}
        if tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._in_body:
            self.rows.append([])
        elif tag == "td" and self._in_body:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "tbody":
            self._in_body = False
        elif tag == "td" and self._cell is not None:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def test_html_worklist_is_one_static_page_without_links(
    census: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = screen(capsys, census, tmp_path / "worklist.html", "--format", "html", "--workers", "1")
    assert run.code == 0, run.stderr
    page = _Page()
    page.feed(run.out.read_text(encoding="utf-8"))
    assert page.rows[0][1] == "planted-css-immunoparalysis"
    assert {row[1] for row in page.rows} == set(LISTED)
    assert not page.tags & {"a", "link", "img", "iframe", "form"}  # nothing to follow or load
    assert not page.attributes & {"href", "src", "action"}


@pytest.mark.parametrize(
    ("resource", "patient"),
    [
        ({"resourceType": "Patient", "id": "p1"}, "p1"),
        ({"resourceType": "Observation", "subject": {"reference": "Patient/p2"}}, "p2"),
        (
            {
                "resourceType": "Observation",
                "subject": {"reference": "https://ehr.example/fhir/Patient/p3/_history/2"},
            },
            "p3",
        ),
        ({"resourceType": "AllergyIntolerance", "patient": {"reference": "Patient/p4"}}, "p4"),
        ({"resourceType": "Observation", "subject": {"reference": "Group/g1"}}, None),
        ({"resourceType": "Practitioner", "id": "d1"}, None),
    ],
)
def test_the_patient_a_line_is_about(resource: dict[str, object], patient: str | None) -> None:
    raw = json.dumps(resource).encode()
    assert patient_of(Line("X.ndjson", 1, raw, resource)) == patient


def test_a_hadoop_uri_needs_the_spark_engine(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = screen(capsys, "hdfs://namenode.invalid/exports/today", tmp_path / "o.ndjson")
    assert run.code == 2
    assert "needs --engine spark" in run.stderr


def test_rows_name_the_applied_setting_and_only_its_scores(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The worklist says which setting's rules decided; `scores` holds the elevated cytokine
    axes and the clinical scores of that setting only (ASTCT grading is for CAR-T, cHIS for no
    recorded setting), never a score outside its population."""
    from cds_service.cli import main
    from tests.conftest import FIXTURES
    from tests.screening.conftest import AS_OF_TEXT

    plants = [FIXTURES / "patients" / f"{name}.json" for name in PLANTED_SETTINGS]
    folder = tmp_path / "census"
    census_args = ["synth-census", str(folder), "--patients", "3", "--as-of", AS_OF_TEXT]
    assert main([*census_args, "--plant", *map(str, plants)]) == 0
    run = screen(capsys, folder, tmp_path / "worklist.ndjson", "--workers", "1")
    assert run.code == 0, run.stderr
    rows = {row["patient"]: row for row in run.rows()}
    axes = {"il1", "ifng", "il6"}
    for name, (setting, clinical) in PLANTED_SETTINGS.items():
        row = rows[f"planted-{name}"]
        assert row["setting"] == setting, name
        assert set(row["scores"]) - axes == clinical, (name, row["scores"])


# planted patient -> (the applied setting, the clinical scores its worklist row lists)
PLANTED_SETTINGS = {
    "case-cart-day3": ("iec", {"astct"}),
    "css-il1-mals": ("sepsis", set()),
    "css-il6-covid": (None, {"chis"}),
}


@pytest.mark.parametrize("where", ["missing-folder", "a-folder", "under-a-file"])
def test_an_unwritable_out_is_refused_before_the_census_is_screened(
    census: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    out = {
        "missing-folder": tmp_path / "nonexistent" / "worklist.ndjson",
        "a-folder": tmp_path,
        "under-a-file": census / "Patient.ndjson" / "worklist.ndjson",
    }[where]
    run = screen(capsys, census, out, "--workers", "1")
    assert run.code == 2, run.stderr
    assert run.stderr.startswith(f"cytokine-cds: --out {out}: ")
    assert "Traceback" not in run.stderr
    assert "screened" not in run.stderr  # refused up front, not after the whole census


@pytest.mark.parametrize("where", ["missing", "a-file"])
def test_an_unusable_work_dir_is_refused_before_the_census_is_screened(
    census: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    work_dir = {"missing": tmp_path / "nonexistent", "a-file": census / "Patient.ndjson"}[where]
    out = tmp_path / "worklist.ndjson"
    run = screen(capsys, census, out, "--workers", "1", "--work-dir", str(work_dir))
    assert run.code == 2, run.stderr
    assert run.stderr.startswith(f"cytokine-cds: --work-dir {work_dir}: is not an existing folder")
    assert "Traceback" not in run.stderr
    assert not out.exists()


def test_the_buckets_are_written_in_the_work_dir(
    census: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """--work-dir holds the scratch files of a folder source too (a census's buckets can be
    large): the system's temporary folder is left alone."""
    work_dir, system_tmp = tmp_path / "scratch", tmp_path / "system-tmp"
    work_dir.mkdir()
    system_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(system_tmp))
    seen: list[str] = []
    real = tempfile.TemporaryDirectory

    def recording(*args: Any, **kwargs: Any) -> Any:
        made = real(*args, **kwargs)
        seen.append(made.name)
        return made

    monkeypatch.setattr(tempfile, "TemporaryDirectory", recording)
    run = screen(
        capsys, census, tmp_path / "w.ndjson", "--workers", "1", "--work-dir", str(work_dir)
    )
    assert run.code == 0, run.stderr
    assert seen and all(Path(name).parent == work_dir for name in seen)
    assert list(system_tmp.iterdir()) == []
