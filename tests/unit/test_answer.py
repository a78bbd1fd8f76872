"""The pure parts of /answer: citation markers, graph facts, the prompt, conversations, language."""

from __future__ import annotations

import pytest

from gateway_core.errors import BadRequest
from gateway_core.models.graph import Subgraph, SubgraphEdge, SubgraphNode
from gateway_core.services.answer import (
    Passage,
    answer_messages,
    cited_numbers,
    clean_rewrite,
    graph_facts,
    language_of,
    parse_citations,
    question_and_history,
    with_recent_questions,
    without_reasoning,
)

PASSAGES = [
    Passage(n=1, chunk_id="a.md#0", doc_id="a.md", source="s3://docs/a.md", text="Lin founded Northwind in 2011."),
    Passage(n=2, chunk_id="a.md#1", doc_id="a.md", source=None, text="Northwind makes heat pumps."),
    Passage(n=3, chunk_id="b.md#0", doc_id="b.md", source=None, text="The lab is in Hsinchu."),
]


@pytest.mark.parametrize(
    ("text", "numbers"),
    [
        ("Founded in 2011 [1].", [1]),
        ("Both [1, 3] say so.", [1, 3]),
        ("Adjacent [2][1] markers.", [2, 1]),
        ("A range [1-3].", [1, 2, 3]),
        ("研發實驗室位於新竹【3】，成立於二〇一一年［1，2］。", [3, 1, 2]),
        ("Repeated [2] and [2].", [2]),
        ("Footnotes [^2] and labels [Passage 3], [source 1].", [2, 3, 1]),
        ("No markers, just [text] and (1).", []),
    ],
)
def test_cited_numbers_reads_every_marker_style(text, numbers):
    assert cited_numbers(text) == numbers


def test_citations_map_numbers_to_their_chunks():
    citations = parse_citations("Heat pumps [2], founded [1].", PASSAGES)
    assert [(c["n"], c["chunk_id"], c["doc_id"]) for c in citations] == [(2, "a.md#1", "a.md"), (1, "a.md#0", "a.md")]


def test_a_number_outside_the_context_is_dropped():
    assert [c["n"] for c in parse_citations("See [4], [0] and [3].", PASSAGES)] == [3]


def test_facts_are_named_and_marked_with_the_passages_they_came_from():
    subgraph = Subgraph(
        nodes=[
            SubgraphNode(id="p:lin", type="Person", props={"name": "Lin"}),
            SubgraphNode(id="c:nw", type="Company", props={"name": "Northwind"}),
            SubgraphNode(id="x:taichung", type="Place", props={"name": "Taichung"}),
        ],
        edges=[
            SubgraphEdge(src="c:nw", dst="x:taichung", type="LOCATED_IN", props={"sources": ["elsewhere#9"]}),
            SubgraphEdge(src="p:lin", dst="c:nw", type="FOUNDED", props={"sources": ["a.md#0"], "year": 2011}),
        ],
    )
    assert graph_facts(subgraph, PASSAGES) == [
        "Lin FOUNDED Northwind (year: 2011) [1]",
        "Northwind LOCATED_IN Taichung",
    ]


def test_the_prompt_asks_for_grounded_cited_answers_in_the_questions_language():
    system, _ = answer_messages("Who founded Northwind?", PASSAGES, [])
    rules = system["content"]
    assert "using only the numbered passages" in rules and "like [1] or [2][3]" in rules
    assert "Answer in the language of the question." in rules and "the documents do not contain it" in rules


def test_the_prompt_numbers_the_passages_and_lists_the_facts():
    _, user = answer_messages("Who founded Northwind?", PASSAGES, ["Lin FOUNDED Northwind [1]"])
    assert "[3] (document: b.md) The lab is in Hsinchu." in user["content"]
    assert "- Lin FOUNDED Northwind [1]" in user["content"] and user["content"].endswith(
        "Question: Who founded Northwind?"
    )


def test_the_last_user_turn_is_the_question_and_earlier_turns_the_history():
    question, history = question_and_history(
        [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "What does Northwind make?"},
            {"role": "assistant", "content": "Heat pumps [2]."},
            {"role": "user", "content": "Who founded it?"},
        ]
    )
    assert question == "Who founded it?" and [turn["role"] for turn in history] == ["user", "assistant"]


def test_a_conversation_that_does_not_end_with_a_question_is_refused():
    with pytest.raises(BadRequest):
        question_and_history([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}])


def test_a_rewrite_keeps_its_first_line_without_quotes():
    assert clean_rewrite('"Who founded Northwind Thermal?"\n(rewritten)') == "Who founded Northwind Thermal?"


def test_a_rewrite_drops_reasoning_and_a_label():
    text = "<think>The user means Northwind.</think>\nRewritten question: Who founded Northwind Thermal?"
    assert clean_rewrite(text) == "Who founded Northwind Thermal?"


def test_reasoning_blocks_do_not_count_as_citations():
    assert [c["n"] for c in parse_citations(without_reasoning("<think>maybe [3]</think>It is [1]."), PASSAGES)] == [1]


def test_without_a_rewrite_the_earlier_questions_join_the_follow_up():
    history = [
        {"role": "user", "content": "Tell me about Northwind."},
        {"role": "assistant", "content": "It makes heat pumps."},
    ]
    assert with_recent_questions("Who founded it?", history) == "Tell me about Northwind.\nWho founded it?"


@pytest.mark.parametrize(
    ("text", "language"),
    [("北風熱能的研發實驗室在哪裡？", "zh"), ("Where is the lab?", "en"), ("Breeze 5 是哪一年推出的？", "zh")],
)
def test_language_of_tells_chinese_from_english(text, language):
    assert language_of(text) == language
