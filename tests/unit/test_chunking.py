"""Chunking: sizes, coverage, overlap, sentence ends in English and Chinese, and the shipped sample graphs."""

from __future__ import annotations

import hashlib
import itertools
import json
import random
from pathlib import Path

import pytest

from gateway_core.services.chunking import Chunk, chunk_text, content_hash, normalize, sentence_spans
from gateway_core.services.documents import parse_document
from gateway_core.settings import Settings
from gateway_core.stores.graph.identifiers import is_identifier
from infra.demo.samples import build_graphs

SAMPLES = Path(build_graphs.__file__).parent

ENGLISH = (
    " ".join(
        [
            "Northwind Thermal was founded in 2011 by Lin Xiaoming and Sara Holm.",
            "The Breeze 5 runs at 19 decibels, e.g. at night, and draws 3.5 kW at most!",
            "Dr. Wang Jun leads the Acoustics Lab.",
            "Is it quiet?",
            "Yes, quieter than a library.",
        ]
        * 6
    )
    + "\n\n"
    + " ".join(
        [
            "The European office is in Gothenburg, where Sara Holm and her team of eighteen sell to the Nordic countries.",
            "Nordhem Housing installed 1,200 units.",
        ]
        * 8
    )
)

CHINESE = (
    "北風熱能由林小明與莎拉·霍姆共同創立。公司的聲學實驗室位於新竹，專門開發安靜的熱泵！"
    "微風五號的夜間噪音只有十九分貝；員工餐廳每天中午開放？「靜芯」壓縮機只用於自家產品。"
) * 12


def assert_tiles(text: str, chunks: list[Chunk], size: int) -> None:
    """Chunks are non-empty, at most `size`, in order, exact slices, and their new parts rebuild the text."""
    normalized = normalize(text)
    assert chunks and chunks[0].start == 0 and chunks[-1].end == len(normalized)
    rebuilt = chunks[0].text
    for index, chunk in enumerate(chunks):
        assert chunk.index == index
        assert chunk.text and chunk.text == chunk.text.strip() and len(chunk.text) <= size
        assert normalized[chunk.start : chunk.end] == chunk.text
    for previous, chunk in itertools.pairwise(chunks):
        assert previous.start < chunk.start and previous.end < chunk.end
        if chunk.start >= previous.end:  # no overlap: only whitespace between them
            assert normalized[previous.end : chunk.start].strip() == ""
        rebuilt += normalized[previous.end : chunk.end]
    assert rebuilt == normalized


def overlap(previous: Chunk, chunk: Chunk) -> str:
    return previous.text[chunk.start - previous.start :] if chunk.start < previous.end else ""


# --- sizes, coverage, overlap --------------------------------------------------------------------


@pytest.mark.parametrize("text", [ENGLISH, CHINESE], ids=["english", "chinese"])
@pytest.mark.parametrize("size,overlap_chars", [(100, 0), (200, 60), (800, 120)])
def test_chunks_fit_cover_the_text_in_order_and_overlap_by_whole_sentences(text, size, overlap_chars):
    chunks = chunk_text(text, size=size, overlap=overlap_chars)
    assert len(chunks) >= 2
    assert_tiles(text, chunks, size)
    normalized = normalize(text)
    spans = sentence_spans(normalized)
    starts = {s for s, _ in spans}
    overlapping = 0
    for previous, chunk in itertools.pairwise(chunks):
        shared = overlap(previous, chunk)
        assert len(shared) <= overlap_chars
        assert previous.text.endswith(shared) and chunk.text.startswith(shared)
        overlapping += bool(shared)
        last = next((s for s, e in spans if e == previous.end), None)  # the previous chunk's last sentence
        if last is None:
            continue  # a cut inside a long sentence: see the tests below
        assert not shared or chunk.start in starts  # whole trailing sentences, never a piece of one
        following = next(e for s, e in spans if s >= previous.end)
        if overlap_chars and previous.end - last <= overlap_chars and following - last <= size:
            assert shared, (previous, chunk)  # it fits, so it is repeated
    assert overlapping if overlap_chars else not overlapping


@pytest.mark.parametrize("text", [ENGLISH, CHINESE], ids=["english", "chinese"])
def test_chunks_end_at_sentence_ends(text):
    ends = ("。", "！", "？", "；") if text is CHINESE else (".", "!", "?")
    chunks = chunk_text(text, size=150, overlap=40)
    assert all(chunk.text.endswith(ends) for chunk in chunks)


def test_chinese_needs_no_spaces():
    assert " " not in CHINESE
    spans = sentence_spans(CHINESE)
    assert [CHINESE[s:e] for s, e in spans[:5]] == [
        "北風熱能由林小明與莎拉·霍姆共同創立。",
        "公司的聲學實驗室位於新竹，專門開發安靜的熱泵！",
        "微風五號的夜間噪音只有十九分貝；",
        "員工餐廳每天中午開放？",
        "「靜芯」壓縮機只用於自家產品。",
    ]
    assert all(len(c.text) <= 100 for c in chunk_text(CHINESE, size=100, overlap=30))


def test_mixed_script_closing_quotes_stay_with_their_sentence():
    text = '他說：「熱泵很安靜。」然後離開了。 She said "It is quiet." Then she left.'
    assert [text[s:e] for s, e in sentence_spans(text)] == [
        "他說：「熱泵很安靜。」",
        "然後離開了。",
        'She said "It is quiet."',
        "Then she left.",
    ]


# --- sentence ends -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text,sentences",
    [
        ("The pump uses 3.5 kW. It is quiet.", ["The pump uses 3.5 kW.", "It is quiet."]),
        (
            "Heat pumps, e.g. the Breeze 5, are quiet. Others i.e. old ones are not.",
            ["Heat pumps, e.g. the Breeze 5, are quiet.", "Others i.e. old ones are not."],
        ),
        (
            "Dr. Wang and Prof. Lindqvist met Mr. Ek in St. Petersburg. They talked.",
            ["Dr. Wang and Prof. Lindqvist met Mr. Ek in St. Petersburg.", "They talked."],
        ),
        (
            "J. R. R. Tolkien wrote it in the U.S. Army era. Then what?",
            ["J. R. R. Tolkien wrote it in the U.S. Army era.", "Then what?"],
        ),
        (
            "It costs approx. five dollars. Version 2.0.1 ships soon... Really?! Yes.",
            ["It costs approx. five dollars.", "Version 2.0.1 ships soon...", "Really?!", "Yes."],
        ),
        ("Founded in 2011. The end.", ["Founded in 2011.", "The end."]),
        ("Steps:\n1. Mount the unit\n2. Connect it", ["Steps:", "1. Mount the unit", "2. Connect it"]),
        ("A heading\n\nA paragraph without a period", ["A heading", "A paragraph without a period"]),
    ],
)
def test_sentence_ends_skip_abbreviations_decimals_and_initials(text, sentences):
    assert [text[s:e] for s, e in sentence_spans(text)] == sentences


def test_abbreviations_and_decimals_never_end_a_chunk():
    text = "The Breeze 5 draws 3.5 kW, e.g. on cold nights, says Dr. Wang Jun of the lab. " * 20
    for chunk in chunk_text(text, size=200, overlap=90):
        assert chunk.text.startswith("The Breeze 5") and chunk.text.endswith("of the lab.")


def test_a_chunk_never_ends_on_a_heading():
    text = "\n\n".join(f"Section {i}\n\n" + "A sentence about heat pumps. " * 5 for i in range(8))
    chunks = chunk_text(text, size=180, overlap=0)
    assert_tiles(text, chunks, 180)
    assert all(chunk.text.endswith("heat pumps.") for chunk in chunks)
    assert all(chunk.text.startswith("Section") for chunk in chunks)


# --- long sentences ------------------------------------------------------------------------------


def test_a_long_chinese_sentence_is_cut_after_a_comma():
    sentence = "，".join(f"熱泵{i:02d}號很安靜又省電" for i in range(40)) + "。"  # commas every 12 characters
    chunks = chunk_text(sentence, size=100, overlap=0)
    assert_tiles(sentence, chunks, 100)
    assert all(chunk.text.endswith("，") for chunk in chunks[:-1]) and chunks[-1].text.endswith("。")
    assert all(len(chunk.text) >= 50 for chunk in chunks[:-1])  # cuts are in the second half of the window


def test_a_long_sentence_without_commas_is_cut_between_words_or_at_the_size():
    english = " ".join(f"word{i}" for i in range(100)) + "."
    chunks = chunk_text(english, size=100, overlap=0)
    assert_tiles(english, chunks, 100)
    words = set(english.rstrip(".").split())
    assert all(set(chunk.text.rstrip(".").split()) <= words for chunk in chunks)  # no word cut in two

    chinese = "熱" * 350
    chunks = chunk_text(chinese, size=100, overlap=0)
    assert [len(chunk.text) for chunk in chunks] == [100, 100, 100, 50]


def test_the_overlap_after_a_cut_is_the_tail_of_the_piece():
    chinese = "熱泵" * 200
    chunks = chunk_text(chinese, size=100, overlap=30)
    assert_tiles(chinese, chunks, 100)
    for previous, chunk in itertools.pairwise(chunks):
        assert previous.end - chunk.start == 30 and len(overlap(previous, chunk)) == 30

    english = " ".join(f"w{i:03d}" for i in range(150))
    chunks = chunk_text(english, size=100, overlap=30)
    assert_tiles(english, chunks, 100)
    for previous, chunk in itertools.pairwise(chunks):
        shared = overlap(previous, chunk)
        assert 0 < len(shared) <= 30 and shared.split()[0] in english.split()  # starts on a whole word


def test_a_long_sentence_between_short_ones():
    text = "Short one. " + "，".join(["很長的句子"] * 60) + "。 Short two. Short three."
    chunks = chunk_text(text, size=120, overlap=20)
    assert_tiles(text, chunks, 120)
    assert chunks[0].text.startswith("Short one.") and chunks[-1].text.endswith("Short three.")


# --- normalization, determinism, arguments -------------------------------------------------------


def test_whitespace_is_normalized_before_chunking():
    text = "  First\tline   with   spaces \r\nsecond\u00a0line\u3000here\r\n\r\n\r\n\r\n  Third paragraph.  "
    assert normalize(text) == "First line with spaces\nsecond line here\n\nThird paragraph."
    assert [c.text for c in chunk_text(text)] == ["First line with spaces\nsecond line here\n\nThird paragraph."]


def test_chunking_is_deterministic_and_idempotent_on_normalized_text():
    first = chunk_text(ENGLISH + "\n\n" + CHINESE, size=300, overlap=80)
    assert first == chunk_text(ENGLISH + "\n\n" + CHINESE, size=300, overlap=80)
    assert first == chunk_text(normalize(ENGLISH + "\n\n" + CHINESE), size=300, overlap=80)


def test_empty_or_blank_text_has_no_chunks():
    assert chunk_text("") == [] and chunk_text(" \n\n\t \u3000") == []


def test_short_text_is_one_chunk():
    assert chunk_text("  Quiet heat pumps.  ") == [Chunk(index=0, text="Quiet heat pumps.", start=0, end=17)]


@pytest.mark.parametrize("size,overlap_chars", [(99, 0), (100, -1), (100, 50), (300, 150), (300, 400)])
def test_bad_arguments_are_refused(size, overlap_chars):
    with pytest.raises(ValueError):
        chunk_text("text", size=size, overlap=overlap_chars)


def test_the_largest_allowed_overlap_is_accepted():
    assert chunk_text(ENGLISH, size=100, overlap=49)


def test_content_hash_is_the_sha256_of_the_utf8_text():
    assert content_hash("北風熱能") == hashlib.sha256("北風熱能".encode()).hexdigest()
    assert content_hash("a") != content_hash("a ") and len(content_hash("")) == 64


def test_random_texts_keep_every_invariant():
    pieces = [
        "heat",
        "pump",
        "Dr.",
        "e.g.",
        "3.5",
        "Taichung,",
        "熱泵",
        "北風熱能",
        "。",
        "！",
        "，",
        "、",
        "？",
        "Yes.",
        "No!",
        "「好。」",
        "x" * 40,
        "長" * 90,
        "y" * 150,
        "\n",
        "\n\n",
        "   ",
    ]
    generator = random.Random(20240601)
    for _ in range(300):
        text = "".join(
            generator.choice(pieces) + generator.choice(["", " ", " ", "\n"]) for _ in range(generator.randint(0, 300))
        )
        size = generator.choice([100, 150, 400, 800])
        overlap_chars = generator.choice([0, 1, 30, size // 2 - 1])
        chunks = chunk_text(text, size=size, overlap=overlap_chars)
        if not normalize(text):
            assert chunks == []
            continue
        assert_tiles(text, chunks, size)
        assert all(len(overlap(p, c)) <= overlap_chars for p, c in itertools.pairwise(chunks))


# --- the demo's sample documents and their shipped graphs ----------------------------------------


def sample_documents() -> list[Path]:
    return sorted(p for p in SAMPLES.glob("*.md"))


def shipped_graph(document: Path) -> dict:
    return json.loads((SAMPLES / (document.stem + ".graph.json")).read_text(encoding="utf-8"))


def test_the_samples_are_one_english_and_one_chinese_document_of_the_intended_length():
    english, chinese = (p.read_text(encoding="utf-8") for p in sample_documents())
    assert 1500 <= len(english.split()) <= 2000
    assert 2500 <= len("".join(chinese.split())) <= 3500


@pytest.mark.parametrize("document", sample_documents(), ids=lambda p: p.name)
def test_every_shipped_chunk_hash_still_matches_the_chunker(document):
    shipped = shipped_graph(document)
    assert shipped["document"] == document.name
    assert (shipped["chunk_size"], shipped["chunk_overlap"]) == (
        Settings.model_fields["chunk_size"].default,
        Settings.model_fields["chunk_overlap"].default,
    )
    text = parse_document(document.read_bytes(), filename=document.name).text
    chunks = chunk_text(text, size=shipped["chunk_size"], overlap=shipped["chunk_overlap"])
    assert [entry["index"] for entry in shipped["chunks"]] == [chunk.index for chunk in chunks]
    assert [entry["content_hash"] for entry in shipped["chunks"]] == [content_hash(c.text) for c in chunks], (
        f"{document.name}: the chunker changed; run python -m infra.demo.samples.build_graphs"
    )


def test_the_shipped_graphs_are_what_the_generator_writes():
    assert build_graphs.main(["--check"]) == 0


@pytest.mark.parametrize("document", sample_documents(), ids=lambda p: p.name)
def test_shipped_graphs_are_valid_and_self_contained_per_chunk(document):
    for entry in shipped_graph(document)["chunks"]:
        ids = {node["id"] for node in entry["nodes"]}
        assert entry["edges"], entry["index"]
        for node in entry["nodes"]:
            assert is_identifier(node["type"]) and node["name"]
            assert all(is_identifier(prop["key"]) for prop in node["props"])
        for edge in entry["edges"]:
            assert is_identifier(edge["type"]) and {edge["src"], edge["dst"]} <= ids


def test_the_two_graphs_join_on_shared_entity_ids():
    english, chinese = (
        {node["id"] for entry in shipped_graph(p)["chunks"] for node in entry["nodes"]} for p in sample_documents()
    )
    assert 25 <= len(english | chinese) <= 50
    assert {"company:northwind", "person:lin-xiaoming", "lab:acoustics-lab", "place:hsinchu"} <= english & chinese
    assert english - chinese and chinese - english  # each document also adds facts of its own


def test_the_graph_hop_question_needs_two_chunks():
    """QuietCore -> Acoustics Lab and Acoustics Lab -> Hsinchu are stated in different chunks only."""
    english = next(p for p in sample_documents() if p.stem.endswith("-en"))
    chunks = shipped_graph(english)["chunks"]

    def stating(src: str, type_: str, dst: str) -> set[int]:
        return {
            e["index"]
            for e in chunks
            for edge in e["edges"]
            if (edge["src"], edge["type"], edge["dst"]) == (src, type_, dst)
        }

    developed = stating("lab:acoustics-lab", "DEVELOPED", "product:quietcore")
    located = stating("lab:acoustics-lab", "LOCATED_IN", "place:hsinchu")
    assert developed and located and not developed & located


def test_the_questions_expect_entities_the_graphs_contain():
    questions = json.loads((SAMPLES / "questions.json").read_text(encoding="utf-8"))
    assert len(questions) == 3 and {q["language"] for q in questions} == {"en", "zh-Hant"}
    entities = {node["id"] for p in sample_documents() for e in shipped_graph(p)["chunks"] for node in e["nodes"]}
    texts = [parse_document(p.read_bytes(), filename=p.name).text for p in sample_documents()]
    for question in questions:
        assert set(question) == {"question", "language", "expect_in_hits", "expect_entities", "why"}
        assert set(question["expect_entities"]) <= entities
        assert all(any(s in text for text in texts) for s in question["expect_in_hits"])
