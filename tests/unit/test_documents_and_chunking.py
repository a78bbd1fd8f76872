from __future__ import annotations

import codecs
import itertools

import pytest

from gateway_core.services.chunking import chunk_text, normalize
from gateway_core.services.documents import UndecodableDocument, UnsupportedDocument, parse_document


def minimal_pdf(text: str) -> bytes:
    """A one-page PDF with `text` in Helvetica, offsets computed so pypdf reads it as a real file."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        (
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
            b"/Resources << /Font << /F1 5 0 R >> >> >>"
        ),
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def test_pdf_text_is_extracted():
    parsed = parse_document(minimal_pdf("Northwind Thermal builds heat pumps"), filename="a.pdf")
    assert parsed.format == "pdf" and parsed.pages == 1 and "Northwind Thermal builds heat pumps" in parsed.text


def test_broken_pdf_is_undecodable():
    with pytest.raises(UndecodableDocument):
        parse_document(b"%PDF-1.4 garbage", filename="a.pdf")


def test_markdown_keeps_text_and_drops_markup():
    text = parse_document(
        b"# Title\n\nSee [our site](http://x.example) and **bold** `code`.\n- item", filename="a.md"
    ).text
    assert text == "Title\n\nSee our site and bold code.\nitem"


def test_html_drops_scripts_styles_and_unescapes():
    html = (
        b"<html><head><style>p{}</style></head><body><p>Fish &amp; chips</p><script>alert(1)</script>"
        b"<div>\xe5\x8f\xb0\xe4\xb8\xad</div></body></html>"
    )
    text = parse_document(html, filename="a.html").text
    assert "Fish & chips" in text and "台中" in text and "alert" not in text and "p{}" not in text


def test_jsonl_picks_the_text_field_and_names_a_bad_line():
    data = b'{"text": "first", "id": 1}\n\n{"content": "second"}\n"third"\n'
    assert parse_document(data, filename="a.jsonl").text == "first\n\nsecond\n\nthird"
    with pytest.raises(UndecodableDocument, match="line 2"):
        parse_document(b'{"text": "ok"}\n{broken\n', filename="a.jsonl")


def test_text_decoding_boms_and_garbage():
    assert parse_document(codecs.BOM_UTF8 + "熱泵".encode(), filename="a.txt").text == "熱泵"
    assert parse_document("熱泵".encode("utf-16"), filename="a.txt").text == "熱泵"
    with pytest.raises(UndecodableDocument):
        parse_document(bytes(range(128, 256)), filename="a.txt")
    with pytest.raises(UnsupportedDocument):
        parse_document(b"\x89PNG", filename="a.png", content_type="image/png")


EN = (
    "Northwind Thermal was founded in 2011, e.g. by Dr. Lin in Taichung. It sells 3.5 kW pumps! "
    "Does it export? Yes, to Sweden.\n\n"
) * 25
ZH = "北風熱能由林小明創立。公司的研發實驗室位於新竹，專門開發安靜的熱泵！員工餐廳每天中午開放？" * 40


@pytest.mark.parametrize("text", [EN, ZH])
def test_chunks_respect_the_size_cover_the_text_in_order_and_overlap(text):
    chunks = chunk_text(text, size=300, overlap=60)
    normalized = normalize(text)
    assert len(chunks) > 3 and all(len(c.text) <= 300 for c in chunks)
    assert chunks[0].start == 0 and chunks[-1].end == len(normalized)
    for previous, chunk in itertools.pairwise(chunks):
        assert chunk.start < previous.end  # they overlap (every sentence fits the 60-char overlap): nothing skipped
        assert normalized[chunk.start : chunk.end] == chunk.text


def test_chinese_is_split_at_sentence_ends_without_spaces():
    chunks = chunk_text(ZH, size=100, overlap=20)
    assert all(c.text.endswith(("。", "！", "？")) for c in chunks[:-1])


def test_abbreviations_and_decimals_are_not_sentence_ends():
    first = chunk_text(EN, size=120, overlap=0)[0].text
    assert "e.g. by Dr. Lin in Taichung." in first and "3.5 kW" in chunk_text(EN, size=200, overlap=0)[0].text


def test_a_long_sentence_is_split_at_commas_and_the_chunker_is_deterministic():
    long_sentence = "，".join(["熱泵安靜"] * 80) + "。"
    chunks = chunk_text(long_sentence, size=100, overlap=0)
    assert all(len(c.text) <= 100 for c in chunks) and chunks == chunk_text(long_sentence, size=100, overlap=0)


@pytest.mark.parametrize("size,overlap", [(50, 0), (300, 150), (300, -1)])
def test_bad_arguments_are_refused(size, overlap):
    with pytest.raises(ValueError):
        chunk_text("text", size=size, overlap=overlap)
