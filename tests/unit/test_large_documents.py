"""A 1 MB document parses and chunks in linear time, whatever markup it is made of.

The bound is generous (a guard against quadratic blow-up, not a benchmark: `make bench` measures):
before the fix, 24 KB of Markdown took seconds and 1 MB of `*a ` did not finish in ten minutes.
"""

from __future__ import annotations

import time

import pytest

from gateway_core.services.chunking import chunk_text
from gateway_core.services.documents import parse_document

SIZE = 1_000_000
BOUND_S = 8.0


def _repeat(piece: str) -> str:
    return piece * (SIZE // len(piece))


DOCUMENTS = {
    "markdown prose": ("a.md", _repeat("# Title\n\nSome *text* with **bold**, [a link](http://x) and `code`.\n\n")),
    "unclosed emphasis": ("a.md", _repeat("*a ")),
    "unclosed underscores": ("a.md", _repeat("_a ")),
    "unclosed strong": ("a.md", _repeat("**a ")),
    "unclosed strikethrough": ("a.md", _repeat("~~a ")),
    "unclosed link text": ("a.md", _repeat("[a ")),
    "unclosed link target": ("a.md", _repeat("![a](")),
    "unclosed inline tags": ("a.md", _repeat("<a ")),
    "heading with trailing spaces": ("a.md", "# x" + " " * SIZE + "x"),
    "table separator look-alike": ("a.md", "--" + " " * SIZE + "x"),
    "html unclosed tags": ("a.html", _repeat("<a")),
    "html processing instructions": ("a.html", _repeat("<?")),
    "html end tags": ("a.html", _repeat("</")),
    "html unclosed comments": ("a.html", _repeat("<!--")),
    "text without spaces": ("a.txt", _repeat("北風熱能.是誰創立的")),
    "one-word lines ending in a period": ("a.txt", _repeat("word.\n")),
    "periods and spaces": ("a.txt", _repeat(". ")),
}


@pytest.mark.parametrize("filename, text", DOCUMENTS.values(), ids=DOCUMENTS.keys())
def test_a_megabyte_document_parses_and_chunks_within_seconds(filename: str, text: str) -> None:
    started = time.perf_counter()
    document = parse_document(text.encode(), filename=filename)
    chunks = chunk_text(document.text)
    elapsed = time.perf_counter() - started
    assert elapsed < BOUND_S, f"{elapsed:.1f} s"
    assert all(len(chunk.text) <= 800 for chunk in chunks)


def test_defused_markup_is_still_text_and_real_tags_still_work() -> None:
    html = "<p>a <b>bold</b> move</p><p>x <a<y and <!-- hidden --> 1 < 2 </p><!-- open"
    assert parse_document(html.encode(), filename="a.html").text == "a bold move\n\nx <a<y and 1 < 2\n\n<!-- open"


def test_markdown_spans_still_close_across_other_markup() -> None:
    markdown = "**bold *and* more**, _snake_case inside_, [wiki](https://w.org/Foo_(bar)) and ## not a heading"
    parsed = parse_document(markdown.encode(), filename="a.md").text
    assert parsed == "bold and more, snake_case inside, wiki and ## not a heading"
