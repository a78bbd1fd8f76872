"""Document parsing: each format, format detection, text decoding and the errors callers see."""

from __future__ import annotations

import codecs
import io

import pytest
from pypdf import PdfReader, PdfWriter

from gateway_core.errors import Unprocessable
from gateway_core.services.documents import (
    ParsedDocument,
    UndecodableDocument,
    UnsupportedDocument,
    detect_format,
    parse_document,
)


def pdf_with_pages(*texts: str) -> bytes:
    """A real PDF, one page per text in Helvetica, with a correct cross-reference table."""
    count = len(texts)
    font = 3 + 2 * count
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids ["
        + b" ".join(b"%d 0 R" % (3 + 2 * i) for i in range(count))
        + b"] /Count %d >>" % count,
    ]
    for i, text in enumerate(texts):
        stream = b"BT /F1 12 Tf 72 720 Td (" + text.encode("latin-1") + b") Tj ET"
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents %d 0 R "
            b"/Resources << /Font << /F1 %d 0 R >> >> >>" % (4 + 2 * i, font)
        )
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def encrypted(pdf: bytes, *, user_password: str) -> bytes:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf)))
    writer.encrypt(user_password=user_password, owner_password="owner-secret", algorithm="AES-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


# --- PDF -----------------------------------------------------------------------------------------


def test_pdf_pages_are_extracted_and_joined_with_blank_lines():
    parsed = parse_document(
        pdf_with_pages("Northwind Thermal builds heat pumps.", "The lab is in Hsinchu."), filename="profile.pdf"
    )
    assert parsed == ParsedDocument(
        text="Northwind Thermal builds heat pumps.\n\nThe lab is in Hsinchu.", format="pdf", pages=2
    )


def test_a_pdf_is_recognised_by_content_type_or_by_its_header():
    data = pdf_with_pages("Quiet pumps")
    assert parse_document(data, filename="upload", content_type="application/pdf").text == "Quiet pumps"
    assert parse_document(data, filename="upload").format == "pdf"


def test_a_pdf_with_a_user_password_is_refused_but_an_owner_only_lock_is_read():
    data = pdf_with_pages("Secret figures")
    with pytest.raises(UndecodableDocument, match="encrypted"):
        parse_document(encrypted(data, user_password="user-secret"), filename="locked.pdf")
    assert parse_document(encrypted(data, user_password=""), filename="print-locked.pdf").text == "Secret figures"


@pytest.mark.parametrize(
    "data", [b"%PDF-1.4 garbage", b"", pdf_with_pages("cut short")[:150]], ids=["garbage", "empty", "truncated"]
)
def test_a_broken_pdf_is_an_error_not_a_crash(data):
    with pytest.raises(UndecodableDocument, match="PDF") as caught:
        parse_document(data, filename="broken.pdf")
    assert caught.value.status == 422 and caught.value.code == "undecodable_document"


# --- Markdown ------------------------------------------------------------------------------------

MARKDOWN = """# Northwind Thermal #

Some *emphasis*, __strong__, snake_case_name, 3*4*5 and 2 * 3. See [the docs](https://x.example/a) \
or ![the logo](logo.png) or <https://auto.example>.

```python
print("**kept as code**")
```

> quoted **line**
- bullet one
* [x] bullet two
1. first step

---

| model | noise |
|-------|------:|
| Breeze 5 | 19 dB |

[ref]: https://example.com/reference
Setext heading
==============
\\*not emphasis\\* and ~~struck~~ `inline code` and <b>bold tag</b>.
"""


def test_markdown_keeps_the_text_and_drops_the_markup():
    parsed = parse_document(MARKDOWN.encode(), filename="profile.md")
    assert parsed.format == "markdown" and parsed.pages is None
    assert parsed.text == (
        "Northwind Thermal\n\n"
        "Some emphasis, strong, snake_case_name, 3*4*5 and 2 * 3. See the docs or the logo or https://auto.example.\n\n"
        'print("**kept as code**")\n\n'
        "quoted line\nbullet one\nbullet two\n1. first step\n\n"
        "model | noise\nBreeze 5 | 19 dB\n\n"
        "Setext heading\n*not emphasis* and struck inline code and bold tag."
    )


# --- HTML ----------------------------------------------------------------------------------------

HTML = """<!doctype html><html><head><title>Profile &amp; facts</title>
<style>p { color: red }</style><script>var tracking = 1;</script></head>
<body><nav><a href="/">Home</a> | <a href="/about">About</a></nav>
<h1>Northwind&nbsp;Thermal</h1><p>Fish &amp; chips &lt;3 &#x53F0;&#20013;</p>
<p>Line one<br>line two<br/>line three</p>
<ul><li>Breeze 5</li><li>Breeze Mini</li></ul>
<table><tr><td>model</td><td>dB</td></tr><tr><td>Breeze 5</td><td>19</td></tr></table>
<div>Unclosed <b>bold <i>and italic</div>
<script type="text/javascript">document.write("no")</script><noscript>enable JS</noscript></body></html>"""


def test_html_drops_scripts_styles_and_navigation_and_unescapes_entities():
    parsed = parse_document(HTML.encode(), filename="index.html")
    assert parsed.format == "html"
    assert parsed.text == (
        "Profile & facts\n\nNorthwind Thermal\n\nFish & chips <3 台中\n\n"
        "Line one\nline two\nline three\n\nBreeze 5\nBreeze Mini\n\nmodel dB\nBreeze 5 19\n\n"
        "Unclosed bold and italic"
    )
    for noise in ("tracking", "color", "Home", "About", "document.write", "enable JS"):
        assert noise not in parsed.text


def test_html_declared_charset_in_the_content_type_is_honoured():
    data = "<p>Caf\u00e9 cr\u00e8me</p>".encode("latin-1")
    with pytest.raises(UndecodableDocument):
        parse_document(data, filename="menu.html")  # not UTF-8, and nothing says otherwise
    parsed = parse_document(data, filename="menu", content_type="text/html; charset=ISO-8859-1")
    assert parsed.text == "Café crème" and parsed.format == "html"


# --- JSON lines ----------------------------------------------------------------------------------


def test_jsonl_takes_text_then_content_then_body_else_the_string_values():
    lines = [
        '{"text": "from text", "content": "not this", "id": 7}',
        "",
        '{"content": "from content", "body": "not this"}',
        '{"body": "from body", "text": null}',
        '{"title": "Breeze 5", "summary": "A quiet pump.", "rating": 5}',
        '"a bare string"',
        "   ",
        '{"id": 3}',
    ]
    parsed = parse_document("\n".join(lines).encode(), filename="records.jsonl")
    assert parsed.format == "jsonl"
    assert parsed.text == "from text\n\nfrom content\n\nfrom body\n\nBreeze 5\nA quiet pump.\n\na bare string"


def test_jsonl_names_the_bad_line():
    data = b'{"text": "ok"}\n\n{"text": "also ok"}\n{"text": broken\n'
    with pytest.raises(UndecodableDocument, match="line 4") as caught:
        parse_document(data, filename="records.jsonl")
    assert caught.value.details == {"line": 4}


# --- text, decoding, detection -------------------------------------------------------------------


def test_plain_text_is_tidied_but_otherwise_kept():
    parsed = parse_document(b"First line   \r\nsecond line\r\n\r\n\r\n\r\nlast\r\n", filename="notes.txt")
    assert parsed == ParsedDocument(text="First line\nsecond line\n\nlast", format="text", pages=None)


@pytest.mark.parametrize(
    "data",
    [
        codecs.BOM_UTF8 + "北風熱能 heat pumps".encode(),
        codecs.BOM_UTF16_LE + "北風熱能 heat pumps".encode("utf-16-le"),
        codecs.BOM_UTF16_BE + "北風熱能 heat pumps".encode("utf-16-be"),
        "北風熱能 heat pumps".encode("utf-16"),
        codecs.BOM_UTF32_LE + "北風熱能 heat pumps".encode("utf-32-le"),
    ],
    ids=["utf8-bom", "utf16-le", "utf16-be", "utf16-native", "utf32-le"],
)
def test_byte_order_marks_choose_the_encoding_and_are_dropped(data):
    assert parse_document(data, filename="a.txt").text == "北風熱能 heat pumps"


@pytest.mark.parametrize(
    "data,reason",
    [
        (bytes(range(128, 256)), "not valid utf-8"),
        ("北風熱能".encode("big5"), "not valid utf-8"),
        ("heat pumps".encode("utf-16-le"), "NUL"),  # UTF-16 without a BOM is not guessed
    ],
    ids=["latin-bytes", "big5", "utf16-without-bom"],
)
def test_undecodable_text_is_refused_with_a_reason(data, reason):
    with pytest.raises(UndecodableDocument, match=reason) as caught:
        parse_document(data, filename="a.txt")
    assert isinstance(caught.value, Unprocessable) and caught.value.status == 422


def test_an_unknown_declared_charset_is_refused():
    with pytest.raises(UndecodableDocument, match="charset"):
        parse_document(b"text", filename="a.txt", content_type="text/plain; charset=x-no-such-charset")


@pytest.mark.parametrize(
    "filename,content_type,expected",
    [
        ("a.txt", None, "text"),
        ("a.md", "text/plain", "markdown"),  # a generic label: the extension decides
        ("a.md", "application/octet-stream", "markdown"),
        ("a.txt", "text/html; charset=utf-8", "html"),  # a specific type wins over the extension
        ("a.HTM", None, "html"),
        ("a.ndjson", None, "jsonl"),
        ("a", "application/x-ndjson", "jsonl"),
        ("data.csv", "text/csv", "text"),  # unknown text/* is plain text
        ("README", None, "text"),  # no extension, no type, and the bytes are text
    ],
)
def test_format_detection(filename, content_type, expected):
    media_type = (content_type or "").split(";")[0]
    assert detect_format(b"plain words", filename=filename, media_type=media_type) == expected


@pytest.mark.parametrize(
    "data,filename,content_type,named",
    [
        (b"\x89PNG\r\n\x1a\n", "logo.png", "image/png", "image/png"),
        (b"PK\x03\x04", "archive.zip", "application/octet-stream", ".zip"),
        (b"\x00\x01\x02binary", "blob", None, "unknown"),
        (b"a,b", "sheet.xlsx", None, ".xlsx"),
    ],
)
def test_unsupported_types_are_refused_by_name(data, filename, content_type, named):
    with pytest.raises(UnsupportedDocument, match=named) as caught:
        parse_document(data, filename=filename, content_type=content_type)
    assert caught.value.status == 422 and caught.value.body()["error"] == "unsupported_document"


@pytest.mark.parametrize(
    "data,filename",
    [(b"", "a.txt"), (b"  \n\n ", "a.md"), (b"<script>only()</script>", "a.html"), (b"\n\n", "a.jsonl")],
)
def test_a_document_without_text_parses_to_the_empty_string(data, filename):
    assert parse_document(data, filename=filename).text == ""
