"""Reads what a person sees on the profile page: the values table and the charts (stdlib only)."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser


@dataclass
class PageContent:
    rows: list[dict[str, str]] = field(default_factory=list)  # values table: class -> text
    group_of_row: list[str] = field(default_factory=list)
    figures: dict[str, list[str]] = field(default_factory=dict)  # figure id -> its <text> strings
    svg_labels: dict[str, str] = field(default_factory=dict)  # figure id -> aria-label
    ids: dict[str, str] = field(default_factory=dict)  # element id -> its text
    links: list[str] = field(default_factory=list)
    tags: set[str] = field(default_factory=set)
    attributes: list[tuple[str, str, str]] = field(default_factory=list)  # (tag, name, value)

    def row(self, marker: str, group: str | None = None) -> dict[str, str]:
        found = [
            r
            for r, g in zip(self.rows, self.group_of_row, strict=True)
            if r["marker"].removesuffix(" (supportive)") == marker and (group is None or g == group)
        ]
        assert found, f"no row for {marker!r} in {[r['marker'] for r in self.rows]}"
        return found[0]


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.page = PageContent()
        self._stack: list[tuple[str, dict[str, str]]] = []
        self._cell: str | None = None
        self._row: dict[str, str] | None = None
        self._group = ""
        self._text: list[str] = []
        self._figure: str | None = None
        self._id_text: list[tuple[str, list[str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {k: v or "" for k, v in attrs}
        self.page.tags.add(tag)
        for name, value in attributes.items():
            self.page.attributes.append((tag, name, value))
        self._stack.append((tag, attributes))
        classes = attributes.get("class", "").split()
        if tag == "figure":
            self._figure = attributes.get("id", "")
            self.page.figures[self._figure] = []
        if tag == "svg" and self._figure is not None:
            self.page.svg_labels[self._figure] = attributes.get("aria-label", "")
        if tag == "tr":
            self._row = {} if "group" not in classes else None
        if tag in ("td", "th") and self._row is not None and classes:
            self._cell = classes[0]
            self._text = []
        if tag == "th" and attributes.get("scope") == "colgroup":
            self._cell = "group"
            self._text = []
        if tag == "a" and "href" in attributes:
            self.page.links.append(attributes["href"])
        if "id" in attributes:
            self._id_text.append((attributes["id"], []))

    def handle_endtag(self, tag: str) -> None:
        while self._stack:
            open_tag, attributes = self._stack.pop()
            if "id" in attributes and self._id_text:
                element_id, parts = self._id_text.pop()
                self.page.ids[element_id] = " ".join("".join(parts).split())
            if open_tag == tag:
                break
        if tag in ("td", "th") and self._cell is not None:
            text = " ".join("".join(self._text).split())
            if self._cell == "group":
                self._group = text
            elif self._row is not None:
                self._row[self._cell] = text
            self._cell = None
        if tag == "tr" and self._row:
            self.page.rows.append(self._row)
            self.page.group_of_row.append(self._group)
            self._row = None
        if tag == "figure":
            self._figure = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._text.append(data)
        for _, parts in self._id_text:
            parts.append(data)
        if self._figure is not None and self._stack and self._stack[-1][0] == "text":
            self.page.figures[self._figure].append(data)


def read_page(html: str) -> PageContent:
    reader = _Reader()
    reader.feed(html)
    reader.close()
    return reader.page
