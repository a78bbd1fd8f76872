"""The benchmark sample as the public API takes it: chunks for /index/chunks, graphs for /graph/upsert.

The sample (see its README) holds passages with the subject-relation-object triples an
LLM extracted from them, and questions with their supporting passages (`gold`).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAX_IDENTIFIER = 64


@dataclass(frozen=True)
class Sample:
    passages: list[dict[str, Any]]
    questions: list[dict[str, Any]]
    digest: str  # of the file's bytes: the cached index is keyed by it


def load(path: Path) -> Sample:
    raw = path.read_bytes()
    document = json.loads(gzip.decompress(raw))
    return Sample(document["passages"], document["questions"], hashlib.sha256(raw).hexdigest())


def entity_id(name: str) -> str:
    """One node per surface name, compared case- and width-insensitively (the API resolves no more)."""
    return "e:" + " ".join(unicodedata.normalize("NFKC", name).casefold().split())


def relation_type(phrase: str) -> str:
    """A free-text relation phrase ("was born in") as a relation type (WAS_BORN_IN)."""
    words = re.findall(r"\w+", unicodedata.normalize("NFKC", phrase).upper())
    name = "_".join(words)[:MAX_IDENTIFIER] or "RELATED_TO"
    return name if name.isidentifier() else f"R_{name}"[:MAX_IDENTIFIER]


def chunk(passage: dict[str, Any]) -> dict[str, Any]:
    """The paragraph id is both document and chunk id: titles repeat across paragraphs."""
    text = f"{passage['title']}\n{passage['text']}" if passage.get("title") else passage["text"]
    return {"doc_id": passage["id"], "chunk_id": passage["id"], "text": text}


def graph(passage: dict[str, Any]) -> dict[str, Any]:
    """The passage's entities and facts; its id goes as `sources` with the upsert."""
    names = [name for name in passage.get("entities", []) if name.strip()]
    edges = []
    for subject, phrase, obj in passage.get("triples", []):
        if not (subject.strip() and obj.strip()):
            continue
        names += [subject, obj]
        edges.append(
            {
                "src": entity_id(subject),
                "dst": entity_id(obj),
                "type": relation_type(phrase),
                "props": [{"key": "phrase", "value": phrase}],
            }
        )
    nodes = {entity_id(name): {"id": entity_id(name), "type": "Entity", "name": name.strip()} for name in names}
    return {"nodes": list(nodes.values()), "edges": edges}
