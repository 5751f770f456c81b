"""Reading a report page back without a browser: its images, links and metric cells."""
from __future__ import annotations

from dataclasses import dataclass
from html.parser import HTMLParser


@dataclass
class Cell:
    key: str
    value: str                # the data-value attribute (exact number, "" for none)
    text: str = ""            # what the page prints
    run: str | None = None


class PageFacts(HTMLParser):
    """The <img> sources, other href/src references, tags, ids and metric cells of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.imgs: list[str] = []
        self.refs: list[str] = []
        self.tags: list[str] = []
        self.cells: list[Cell] = []
        self.ids: list[str] = []
        self._cell: Cell | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        if "id" in a:
            self.ids.append(a["id"])
        if tag == "img":
            self.imgs.append(a.get("src", ""))
        for name in ("href", "src"):
            if name in a and tag != "img":
                self.refs.append(a[name])
        if "data-key" in a and "data-value" in a:
            self._cell = Cell(a["data-key"], a["data-value"], "", a.get("data-run"))
            self.cells.append(self._cell)

    def handle_endtag(self, tag):
        if tag == "td":
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.text += data


def read_page(html: str) -> PageFacts:
    facts = PageFacts()
    facts.feed(html)
    facts.close()
    return facts
