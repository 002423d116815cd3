"""Reading the YAML knowledge files (catalog, rules, card templates) with errors that name the line.

A hospital edits these files by hand; when one is invalid the service must refuse to start with
a message a person can act on: the file, the line and what is wrong there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from cds_service.validation import error_message, error_path

M = TypeVar("M", bound=BaseModel)
Loc = tuple[str | int, ...]


class ConfigFileError(ValueError):
    """A knowledge file is invalid; the message names the file and, where known, the line."""


class YamlDocument:
    """Parsed YAML data plus its node tree, to map a path inside the data to a line."""

    def __init__(self, path: Path | str, text: str) -> None:
        self.path = path
        try:
            self.root: yaml.Node | None = yaml.compose(text, Loader=yaml.SafeLoader)
            self.data: Any = yaml.load(text, Loader=yaml.SafeLoader)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"line {mark.line + 1}: " if mark is not None else ""
            problem = getattr(exc, "problem", None) or exc.__class__.__name__
            raise ConfigFileError(f"{path}: {where}not valid YAML ({problem})") from exc

    @classmethod
    def read(cls, path: Path) -> YamlDocument:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigFileError(f"{path}: cannot be read ({exc.strerror})") from exc
        return cls(path, text)

    def line_of(self, loc: Loc) -> int | None:
        """The 1-based line of the deepest YAML node that `loc` (a data path) reaches."""
        node = self.root
        if node is None:
            return None
        line = node.start_mark.line + 1
        for part in loc:
            child: yaml.Node | None = None
            if isinstance(node, yaml.MappingNode):
                child = next((v for k, v in node.value if getattr(k, "value", None) == part), None)
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
                child = node.value[part] if 0 <= part < len(node.value) else None
            if child is None:
                break
            node, line = child, child.start_mark.line + 1
        return line

    def error(self, loc: Loc, message: str) -> ConfigFileError:
        line = self.line_of(loc)
        where = error_path(loc)
        text = f"{self.path}: {f'line {line}: ' if line else ''}{where + ': ' if where else ''}"
        return ConfigFileError(text + message)

    def validate(self, model: type[M]) -> M:
        try:
            return model.model_validate(self.data)
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            error = self.error(tuple(first["loc"]), error_message(first))
            more = exc.error_count() - 1
            if more:
                error = ConfigFileError(f"{error} (and {more} more problems)")
            raise error from None
