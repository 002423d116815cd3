"""The package's layering, checked on the source: what may import Flask, the HTTP error type and
the settings module.

Only the HTTP layer (cds_service/api/, the app factory, the serving process) knows HTTP; only the
composition root and the entry points that build it (app factory, command line and its
subcommand modules, serving) read Settings. Everything else takes plain arguments, so it can be
called from a hook, /evaluate, the CLI or a batch job alike. Imports inside functions count too.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "cds_service"

HTTP_LAYER = ("api/", "app.py", "serving.py")
HTTP_MODULES = ("flask", "flask_cors", "cds_service.api")
# The command line's subcommand modules (`<package>/commands.py`) are entry points too.
COMPOSITION_ROOT = ("composition.py", "app.py", "cli.py", "serving.py", "settings.py")
COMMAND_MODULE = "commands.py"


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _imports(path: Path) -> Iterator[str]:
    """Every module `path` imports, absolute (relative imports resolved against the package)."""
    package = path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package[: len(package) - node.level + 1], base]).rstrip(".")
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def _relative(path: Path) -> str:
    return path.relative_to(PACKAGE).as_posix()


def _is(name: str, modules: tuple[str, ...]) -> bool:
    return any(name == m or name.startswith(m + ".") for m in modules)


def _offenders(allowed: tuple[str, ...], forbidden: tuple[str, ...]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in _modules():
        where = _relative(path)
        if any(where == a or (a.endswith("/") and where.startswith(a)) for a in allowed):
            continue
        if allowed is COMPOSITION_ROOT and path.name == COMMAND_MODULE:
            continue
        hits = sorted({name for name in _imports(path) if _is(name, forbidden)})
        if hits:
            found[where] = hits
    return found


def test_nothing_below_the_http_layer_imports_flask_or_the_http_error_type() -> None:
    assert _offenders(HTTP_LAYER, HTTP_MODULES) == {}


def test_only_the_composition_root_imports_the_settings_module() -> None:
    assert _offenders(COMPOSITION_ROOT, ("cds_service.settings",)) == {}


def test_settings_import_no_package_that_could_import_them_back() -> None:
    imported = set(_imports(PACKAGE / "settings.py"))
    assert not {name for name in imported if _is(name, ("cds_service.fhir", "cds_service.store"))}


@pytest.mark.parametrize(
    ("source", "imports"),
    [
        ("import flask\n", {"flask"}),
        ("def f():\n    from flask import g\n", {"flask", "flask.g"}),
        ("from cds_service.api.errors import ApiError\n", {"cds_service.api.errors"}),
        ("from ..settings import Settings\n", {"cds_service.settings"}),
    ],
)
def test_the_check_sees_every_kind_of_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str, imports: set[str]
) -> None:
    module = tmp_path / "cds_service" / "fhir" / "probe.py"
    module.parent.mkdir(parents=True)
    module.write_text(source, encoding="utf-8")
    monkeypatch.setattr(f"{__name__}.PACKAGE", tmp_path / "cds_service")
    assert imports <= set(_imports(module))
    forbidden = ("flask", "cds_service.api", "cds_service.settings")
    assert _offenders((), forbidden) == {"fhir/probe.py": sorted(set(_imports(module)))}
