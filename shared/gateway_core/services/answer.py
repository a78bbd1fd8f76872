"""Grounded answers with citations: retrieve, then have a model answer from the passages only.

Retrieval is `/retrieve`'s own code path (`retrieve.retrieve`). The prompt
numbers the passages and lists the graph facts; the model cites `[n]`, and only
numbers that were in the context become citations. A follow-up question is
first rewritten into a self-contained one (one LLM call, only with history).
Nothing retrieved: an answer that says so, without calling the LLM. No LLM, or
every provider failing: the passages themselves, with `degraded: ["llm: ..."]`
(docs/architecture.md, rule 3: degrade, don't fail).

`prepare` does everything before generation (its errors are the request's);
`answer` then generates at once, `answer_events` streams `Delta`s as the
provider sends them and ends with one `Done`.
"""

from __future__ import annotations

import asyncio
import contextvars
import re
import time
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ..clients import llm
from ..deadline import Deadline, set_current
from ..deadline import current as current_deadline
from ..errors import ApiError, BadRequest, NotConfigured, UpstreamError
from ..models.graph import Subgraph
from ..models.search import SearchFilter
from ..observability import Stopwatch
from ..racing import AllProvidersFailed, Strategy, first_acceptable
from ..settings import ProviderConfig, get_settings
from . import chat as chat_service
from .retrieve import RetrieveOptions, RetrieveResult, retrieve

T = TypeVar("T")

MAX_PASSAGE_CHARS = 4_000
MAX_FACTS = 40
HISTORY_TURNS = 6  # the turns a rewrite sees: enough to resolve "it" and "that one"
REWRITE_SHARE = 0.3  # of the remaining budget, so a hanging model leaves retrieval and generation their time
RESERVE_S, RESERVE_SHARE = 0.5, 0.1  # kept after generation to answer with the passages if the model is late

SYSTEM_PROMPT = """You answer questions about a collection of documents, using only the numbered \
passages and the graph facts given with the question.
- Use only what the passages and facts state; add no outside knowledge.
- After each statement, cite the passages that support it by their numbers in square brackets, \
like [1] or [2][3]. Cite only numbers that appear in the passages.
- Answer in the language of the question.
- If the passages and facts do not contain the answer, say plainly that the documents do not \
contain it, and do not guess."""

REWRITE_PROMPT = """Rewrite the user's last question as one self-contained question that can be \
understood without the conversation: replace pronouns and references with what they refer to. \
Keep the language of the last question. Reply with the rewritten question only."""

MESSAGES = {
    "nothing_found": {
        "en": "The documents contain nothing relevant to this question.",
        "zh": "文件中沒有與這個問題相關的內容。",
    },
    "passages_only": {
        "en": "No answer could be generated (the language model is unavailable). "
        "The most relevant passages from the documents:",
        "zh": "無法產生回答（語言模型無法使用）。文件中最相關的段落：",
    },
}


@dataclass
class AnswerOptions:
    top_k: int = 5
    max_hops: int = 2
    filters: SearchFilter | None = None
    model: str | None = None  # default: ANSWER_MODEL, else every provider in order
    strategy: Strategy = "sequential"
    temperature: float | None = None
    max_tokens: int | None = None
    history: list[dict[str, str]] = field(default_factory=list)  # earlier turns: {role, content}
    rerank: bool = False
    expand_hits: bool = False
    collection: str | None = None


@dataclass(frozen=True)
class Passage:
    n: int
    chunk_id: str
    doc_id: str | None
    source: str | None
    text: str

    def citation(self) -> dict[str, Any]:
        return {"n": self.n, "chunk_id": self.chunk_id, "doc_id": self.doc_id, "source": self.source, "text": self.text}


@dataclass
class Prepared:
    """Everything before generation: the question as retrieved, its context and the prompt."""

    question: str
    model: str | None
    options: AnswerOptions
    retrieval: RetrieveResult
    passages: list[Passage]
    facts: list[str]
    messages: list[dict[str, str]]
    llm_missing: str | None  # why no provider can be asked, if none can
    watch: Stopwatch  # stage timings, from the start of the request's answer
    degraded: list[str]


@dataclass
class AnswerResult:
    answer: str
    citations: list[dict[str, Any]]
    question: str
    hits: list[dict[str, Any]]
    subgraph: Subgraph
    timings_ms: dict[str, float]
    degraded: list[str]
    provider: str | None = None
    model: str | None = None
    usage: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Delta:
    text: str


@dataclass(frozen=True)
class Done:
    result: AnswerResult


def rag_model_name() -> str:
    """The model name under which the OpenAI-compatible API answers with /answer."""
    return get_settings().rag_model_name


def question_and_history(messages: list[dict[str, Any]]) -> tuple[str, list[dict[str, str]]]:
    """A chat conversation as /answer takes it: the last user turn is the question, earlier turns the history.

    System prompts are left out: the answer's own rules decide how it is grounded.
    """
    turns = [
        {"role": str(m["role"]), "content": str(m.get("content") or "")}
        for m in messages
        if m.get("role") in ("user", "assistant")
    ]
    if not turns or turns[-1]["role"] != "user" or not turns[-1]["content"].strip():
        raise BadRequest(
            "The last message must be a user message with text: it is the question.", code="invalid_request"
        )
    return turns[-1]["content"], turns[:-1]


# --------------------------------------------------------------------------- before generation


async def prepare(tenant: str, query: str, options: AnswerOptions) -> Prepared:
    watch = Stopwatch()
    degraded: list[str] = []
    model = options.model or get_settings().answer_model
    llm_missing = _why_no_provider(model)
    question = query
    if options.history:
        if llm_missing is None:
            question = await watch.time("rewrite", standalone_question(query, options.history, model, degraded))
        else:
            question = with_recent_questions(query, options.history)
    retrieval = await watch.time("retrieve", retrieve(tenant, question, _retrieve_options(options)))
    degraded.extend(retrieval.degraded)
    passages = number_passages(retrieval.hits)
    facts = graph_facts(retrieval.subgraph, passages)
    return Prepared(
        question=question,
        model=model,
        options=options,
        retrieval=retrieval,
        passages=passages,
        facts=facts,
        messages=answer_messages(question, passages, facts),
        llm_missing=llm_missing,
        watch=watch,
        degraded=degraded,
    )


def _why_no_provider(model: str | None) -> str | None:
    """None when `model` has providers; the reason when none is configured. An unknown model is the caller's error."""
    try:
        llm.resolve(model)
    except NotConfigured as exc:
        return exc.message
    return None


def _retrieve_options(options: AnswerOptions) -> RetrieveOptions:
    return RetrieveOptions(
        top_k=options.top_k,
        max_hops=options.max_hops,
        include_subgraph=True,
        filters=options.filters,
        expand_hits=options.expand_hits,
        rerank=options.rerank,
        collection=options.collection,
    )


async def standalone_question(query: str, history: list[dict[str, str]], model: str | None, degraded: list[str]) -> str:
    """The follow-up `query` rewritten to stand alone; without a working LLM, the query with the earlier questions."""
    try:
        result = await _within(
            current_deadline().timeout() * REWRITE_SHARE,
            chat_service.chat(rewrite_messages(query, history), model=model, temperature=0, max_tokens=300),
        )
    except ApiError as exc:
        degraded.append(f"rewrite: {exc.message}")
        return with_recent_questions(query, history)
    return clean_rewrite(str(result.data)) or with_recent_questions(query, history)


def rewrite_messages(query: str, history: list[dict[str, str]]) -> list[dict[str, str]]:
    turns = [f"{turn['role']}: {_clip(turn['content'], 1_000)}" for turn in history[-HISTORY_TURNS:]]
    conversation = "\n".join(turns)
    return [
        {"role": "system", "content": REWRITE_PROMPT},
        {"role": "user", "content": f"Conversation:\n{conversation}\n\nLast question: {query}"},
    ]


def clean_rewrite(text: str) -> str:
    """The first line of the model's rewrite, without reasoning, label or quotes; empty if it is unusable."""
    lines = [line.strip() for line in without_reasoning(text).splitlines() if line.strip()]
    first = _REWRITE_LABEL.sub("", lines[0]).strip().strip("\"'“”「」") if lines else ""
    return first if len(first) <= 2_000 else ""


def without_reasoning(text: str) -> str:
    """The text without the `<think>...</think>` blocks that reasoning models put in their content."""
    return _THINK.sub("", text).strip()


def with_recent_questions(query: str, history: list[dict[str, str]]) -> str:
    """Retrieval text for a follow-up when no model can rewrite it: the last two user questions, then this one."""
    earlier = [turn["content"] for turn in history if turn.get("role") == "user"][-2:]
    return "\n".join([*(_clip(text, 1_000) for text in earlier), query])


def number_passages(hits: list[dict[str, Any]]) -> list[Passage]:
    passages = []
    for n, hit in enumerate(hits, start=1):
        cited = (hit.get("citations") or [{}])[0]
        passages.append(
            Passage(
                n=n,
                chunk_id=str(cited.get("chunk_id") or hit.get("id") or ""),
                doc_id=cited.get("doc_id"),
                source=cited.get("uri"),  # where the document came from (its s3:// address)
                text=str(hit.get("text") or ""),
            )
        )
    return passages


def graph_facts(subgraph: Subgraph, passages: list[Passage]) -> list[str]:
    """One line per edge, `name RELATION name`, marked with the passages it was extracted from.

    Facts drawn from the passages come first: they are the ones the model can cite.
    """
    names = {node.id: str(node.props.get("name") or node.id) for node in subgraph.nodes}
    number_of = {passage.chunk_id: passage.n for passage in passages}
    grounded: list[str] = []
    other: list[str] = []
    for edge in subgraph.edges:
        sources = edge.props.get("sources") or []
        markers = "".join(f"[{number_of[s]}]" for s in sorted(set(sources), key=str) if s in number_of)
        extra = {k: v for k, v in edge.props.items() if k not in ("sources", "tenant")}
        details = f" ({', '.join(f'{k}: {v}' for k, v in sorted(extra.items()))})" if extra else ""
        line = f"{names.get(edge.src, edge.src)} {edge.type} {names.get(edge.dst, edge.dst)}{details}"
        (grounded if markers else other).append(f"{line} {markers}" if markers else line)
    return (grounded + other)[:MAX_FACTS]


def answer_messages(question: str, passages: list[Passage], facts: list[str]) -> list[dict[str, str]]:
    lines = ["Passages:"]
    lines += [f"[{p.n}] (document: {p.doc_id}) {_clip(p.text, MAX_PASSAGE_CHARS)}" for p in passages] or ["(none)"]
    if facts:
        lines += [
            "",
            "Graph facts (from a knowledge graph of the same documents; [n] is the passage a fact comes from):",
        ]
        lines += [f"- {fact}" for fact in facts]
    lines += ["", f"Question: {question}"]
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": "\n".join(lines)}]


# --------------------------------------------------------------------------- generation


async def answer(prepared: Prepared) -> AnswerResult:
    """The whole answer at once."""
    if not prepared.passages and not prepared.facts:
        return nothing_found(prepared)
    if prepared.llm_missing is not None:
        return passages_only(prepared, prepared.llm_missing)
    try:
        with prepared.watch.stage("generate"):
            result = await _within(
                generation_budget(),
                chat_service.chat(
                    prepared.messages,
                    model=prepared.model,
                    temperature=prepared.options.temperature,
                    max_tokens=prepared.options.max_tokens,
                    strategy=prepared.options.strategy,
                ),
            )
    except ApiError as exc:
        return passages_only(prepared, exc.message)
    completion = result.completion
    text = without_reasoning(str(result.data))
    return _finished(prepared, text, completion.provider, completion.model, completion.usage)


async def answer_events(prepared: Prepared) -> AsyncIterator[Delta | Done]:
    """The answer as the provider streams it (`Delta`s), then one `Done` with citations and timings."""
    if not prepared.passages and not prepared.facts:
        async for event in _at_once(nothing_found(prepared)):
            yield event
        return
    if prepared.llm_missing is not None:
        async for event in _at_once(passages_only(prepared, prepared.llm_missing)):
            yield event
        return
    generated = prepared.watch.start("generate")
    try:
        stream = await open_answer_stream(prepared)
    except ApiError as exc:
        generated()
        async for event in _at_once(passages_only(prepared, exc.message)):
            yield event
        return
    pieces: list[str] = []
    try:
        text: str | None = stream.first
        while text is not None:
            if text:
                pieces.append(text)
                yield Delta(text)
            text = await stream.next_text()
    except ApiError as exc:  # the provider broke off: what was sent stands, and the answer says it is cut short
        prepared.degraded.append(f"llm: {exc.message} (the answer is incomplete)")
    finally:
        await stream.aclose()
    generated()
    yield Done(_finished(prepared, "".join(pieces), stream.provider, stream.model, {}))


async def open_answer_stream(prepared: Prepared) -> llm.CompletionStream:
    """The first provider (by the request's strategy) whose stream starts with text; the others are cancelled."""
    budget = generation_budget()
    failures: dict[str, ApiError] = {}
    opened: list[llm.CompletionStream] = []

    async def open_one(provider: ProviderConfig) -> llm.CompletionStream:
        try:
            stream = await llm.open_stream(
                provider,
                prepared.messages,
                temperature=prepared.options.temperature,
                max_tokens=prepared.options.max_tokens,
                timeout=budget,
            )
        except ApiError as exc:
            failures[provider.name] = exc
            raise
        opened.append(stream)
        return stream

    try:
        outcome = await first_acceptable(
            llm.resolve(prepared.model), open_one, name=lambda p: p.name, strategy=prepared.options.strategy
        )
    except AllProvidersFailed as exc:
        if len(failures) == 1:
            raise next(iter(failures.values())) from None
        raise UpstreamError(f"Every provider failed: {exc}") from None
    for stream in opened:  # two that started in the same instant: only the winner is read
        if stream is not outcome.value:
            await stream.aclose()
    return outcome.value


def generation_budget() -> float:
    """The remaining budget minus a reserve, so a late model still leaves time to answer with the passages."""
    remaining = current_deadline().timeout()
    return remaining - min(RESERVE_S, remaining * RESERVE_SHARE)


def nothing_found(prepared: Prepared) -> AnswerResult:
    """Nothing retrieved: say so without asking the LLM."""
    return _finished(prepared, MESSAGES["nothing_found"][language_of(prepared.question)], None, None, {})


def passages_only(prepared: Prepared, reason: str) -> AnswerResult:
    """No model answered: the passages themselves, numbered as they would have been cited."""
    prepared.degraded.append(f"llm: {reason}")
    header = MESSAGES["passages_only"][language_of(prepared.question)]
    listed = [f"[{p.n}] {_clip(' '.join(p.text.split()), 400)}" for p in prepared.passages]
    return _finished(prepared, "\n\n".join([header, *listed]) if listed else header, None, None, {})


def _finished(
    prepared: Prepared, text: str, provider: str | None, model: str | None, usage: dict[str, Any]
) -> AnswerResult:
    prepared.watch.timings_ms["total"] = prepared.watch.total_ms()
    return AnswerResult(
        answer=text,
        citations=parse_citations(without_reasoning(text), prepared.passages),
        question=prepared.question,
        hits=prepared.retrieval.hits,
        subgraph=prepared.retrieval.subgraph,
        timings_ms=prepared.watch.timings_ms,
        degraded=prepared.degraded,
        provider=provider,
        model=model,
        usage=usage,
    )


async def _at_once(result: AnswerResult) -> AsyncIterator[Delta | Done]:
    yield Delta(result.answer)
    yield Done(result)


# --------------------------------------------------------------------------- citations and language

# [1], [1, 3], [1-3], [1][2], [^1], [Passage 1]; full-width brackets and separators too, as models answering
# in Chinese write them.
_MARKER = re.compile(
    r"[\[［【]\s*(?:\^|(?:passages?|sources?|段落|來源|来源)\s*)?(\d+(?:\s*[-–~,，、;；]\s*\d+)*)\s*[\]］】]",
    re.IGNORECASE,
)
_THINK = re.compile(r"<think>.*?(?:</think>|$)", re.DOTALL)
_REWRITE_LABEL = re.compile(r"^(?:rewritten|standalone|self-contained)?\s*question\s*[:：]\s*", re.IGNORECASE)
_ITEM = re.compile(r"(\d+)(?:\s*[-–~]\s*(\d+))?")
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN = re.compile(r"[A-Za-z]")


def cited_numbers(text: str) -> list[int]:
    """Every passage number the text cites, in order of first citation."""
    numbers: dict[int, None] = {}
    for marker in _MARKER.finditer(text):
        for item in _ITEM.finditer(marker.group(1)):
            first = int(item.group(1))
            last = int(item.group(2)) if item.group(2) else first
            numbers.update(dict.fromkeys(range(first, last + 1) if 0 <= last - first <= 20 else [first, last]))
    return list(numbers)


def parse_citations(text: str, passages: list[Passage]) -> list[dict[str, Any]]:
    """The cited passages, in order of first citation; a number that was not in the context is dropped."""
    by_number = {passage.n: passage for passage in passages}
    return [by_number[n].citation() for n in cited_numbers(text) if n in by_number]


def language_of(text: str) -> str:
    """`zh` when the text is mostly Chinese, else `en` (for the gateway's own few sentences)."""
    return "zh" if len(_HAN.findall(text)) * 3 >= max(len(_LATIN.findall(text)), 1) else "en"


# --------------------------------------------------------------------------- helpers


async def _within(seconds: float, work: Coroutine[Any, Any, T]) -> T:
    """Run `work` under a deadline `seconds` from now (never later than the request's).

    The downstream calls read the deadline from the context, so a copy of the
    context carries the tighter one and the rest of the request keeps its own.
    """
    request = current_deadline()
    context = contextvars.copy_context()
    context.run(set_current, Deadline(min(request.expires_at, time.monotonic() + max(seconds, 0.0))))
    return await asyncio.create_task(work, context=context)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
