"""The README tells the truth: every setting is in its configuration table, every file it names
exists, and its two quick-start commands are the Makefile's."""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Iterator

import pytest
from flask.testing import FlaskClient

from cds_service.cli import build_parser
from cds_service.settings import Settings
from tests.conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")


def section(title: str) -> str:
    start = README.index(f"## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end != -1 else None]


def test_every_setting_is_in_the_configuration_table() -> None:
    table = section("Configuration")
    missing = [
        f"CYTOKINE_CDS_{name.upper()}"
        for name in Settings.model_fields
        if f"| `CYTOKINE_CDS_{name.upper()}` |" not in table
    ]
    assert missing == []


def test_the_configuration_table_names_no_setting_that_does_not_exist() -> None:
    named = set(re.findall(r"\| `CYTOKINE_CDS_([A-Z0-9_]+)` \|", section("Configuration")))
    assert named <= {name.upper() for name in Settings.model_fields}


def test_every_command_is_documented() -> None:
    commands = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    table = section("Command line")
    assert [c for c in commands if f"`cytokine-cds {c}" not in table] == []


def _options(parser: argparse.ArgumentParser) -> Iterator[str]:
    """The long options of a command and of its own subcommands (`db purge --older-than`)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _options(sub)
        else:
            yield from (o for o in action.option_strings if o.startswith("--") and o != "--help")


def test_each_command_row_lists_the_commands_options() -> None:
    commands = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    rows = section("Command line").splitlines()
    missing = {}
    for name, parser in commands.items():
        (row,) = [r for r in rows if r.startswith(f"| `cytokine-cds {name}")]
        usage = row.split("` |")[0]
        absent = [o for o in _options(parser) if not re.search(rf"{o}(?![\w-])", usage)]
        if absent:
            missing[name] = absent
    assert missing == {}


def test_files_named_in_the_readme_exist() -> None:
    for path in set(
        re.findall(r"\b((?:fixtures|deploy|cards|cds_service|bench)/[\w./-]+\.\w+)", README)
    ):
        assert (ROOT / path).exists(), path


def test_quick_start_is_the_two_make_targets() -> None:
    quick = section("Quick start")
    assert "make run" in quick and "make test" in quick
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^run:", makefile, re.M) and re.search(r"^test:", makefile, re.M)
    assert "make test" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "name", sorted(p.stem for p in (ROOT / "fixtures" / "hooks").glob("*.json"))
)
def test_the_ready_made_hook_requests_answer_as_the_readme_says(
    client: FlaskClient, name: str
) -> None:
    """Quick start: a ready-made request's results are past their windows, so it answers
    `{"cards": []}`: its prefetch carries every key the service asks for (a key missing from it
    would answer a data-incomplete card instead)."""
    body = json.loads((ROOT / "fixtures" / "hooks" / f"{name}.json").read_text(encoding="utf-8"))
    services = {s["hook"]: s for s in client.get("/cds-services").get_json()["services"]}
    service = services[body["hook"]]
    assert set(service["prefetch"]) <= set(body["prefetch"]), name
    response = client.post(f"/cds-services/{service['id']}", json=body)
    assert response.status_code == 200
    assert response.get_json() == {"cards": []}
