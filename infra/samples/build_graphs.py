"""Regenerate the sample documents' graphs (`<doc>.graph.json`) from hand-written facts.

Each fact names the phrase of the document that states it; the fact goes to
every chunk (default chunking) whose text contains that phrase, in the
extract schema, with the chunk's content hash so the demo can match it to the
chunk the ingest function indexed. Run `python -m infra.samples.build_graphs`
after editing a document or the facts.
"""

from __future__ import annotations

import json
from pathlib import Path

from gateway_core.services.chunking import chunk_text, content_hash
from gateway_core.services.documents import parse_document
from gateway_core.settings import Settings

HERE = Path(__file__).parent

ENTITIES = {  # id -> (type, English name, Chinese name, other aliases...)
    "company:northwind": ("Company", "Northwind Thermal", "北風熱能"),
    "person:lin-xiaoming": ("Person", "Lin Xiaoming", "林小明"),
    "person:sara-holm": ("Person", "Sara Holm", "莎拉·霍姆"),
    "person:chen-mei-ling": ("Person", "Chen Mei-ling", "陳美玲"),
    "person:wang-jun": ("Person", "Wang Jun", "王俊"),
    "place:taichung": ("Place", "Taichung", "台中"),
    "place:hsinchu": ("Place", "Hsinchu", "新竹"),
    "place:gothenburg": ("Place", "Gothenburg", "哥特堡"),
    "place:tainan": ("Place", "Tainan", "台南"),
    "lab:hsinchu-research": ("Lab", "Hsinchu research laboratory", "新竹研發實驗室", "research laboratory",
                             "研發實驗室"),
    "office:europe": ("Office", "European office", "歐洲辦公室"),
    "product:breeze-5": ("Product", "Breeze 5", "微風五號"),
    "product:breeze-1": ("Product", "Breeze 1", "微風一號"),
    "product:breeze-mini": ("Product", "Breeze Mini", "微風迷你"),
    "product:quietcore": ("Component", "QuietCore compressor", "靜芯壓縮機"),
    "org:lund-university": ("University", "Lund University", "隆德大學"),
    "org:nordhem-housing": ("Customer", "Nordhem Housing", "北方家園住宅合作社"),
    "org:formosa-rentals": ("Customer", "Formosa Rentals", "福爾摩沙租賃公司"),
}

# (source, relation, target, phrase stating it): English and Chinese documents.
FACTS = {
    "northwind-en.md": [
        ("person:lin-xiaoming", "FOUNDED", "company:northwind", "founded in 2011 in Taichung by Lin Xiaoming"),
        ("person:sara-holm", "FOUNDED", "company:northwind", "and Sara Holm, a Swedish product designer"),
        ("company:northwind", "FOUNDED_IN", "place:taichung", "founded in 2011 in Taichung"),
        ("company:northwind", "MAKES", "product:breeze-1", "called the Breeze 1"),
        ("person:chen-mei-ling", "CEO_OF", "company:northwind", "Chen Mei-ling is the CEO of Northwind Thermal"),
        ("person:lin-xiaoming", "CTO_OF", "company:northwind", "Lin Xiaoming is co-founder and CTO"),
        ("person:sara-holm", "LEADS", "office:europe", "head of the European office"),
        ("org:lund-university", "PARTNER_OF", "company:northwind", "partnership with Lund University"),
        ("person:wang-jun", "LEADS", "lab:hsinchu-research", "Dr. Wang Jun leads the research laboratory"),
        ("company:northwind", "HEADQUARTERED_IN", "place:taichung", "headquarters and the main factory are in Taichung"),
        ("lab:hsinchu-research", "LOCATED_IN", "place:hsinchu", "The research laboratory is in Hsinchu"),
        ("office:europe", "LOCATED_IN", "place:gothenburg", "The European office is in Gothenburg"),
        ("company:northwind", "MAKES", "product:breeze-5", "The Breeze 5 is the flagship heat pump"),
        ("product:breeze-5", "USES", "product:quietcore", "Inside the Breeze 5 is the QuietCore compressor"),
        ("lab:hsinchu-research", "DEVELOPED", "product:quietcore",
         "The QuietCore compressor was developed by the Hsinchu research laboratory"),
        ("company:northwind", "MAKES", "product:breeze-mini", "The Breeze Mini is a smaller unit"),
        ("org:nordhem-housing", "CUSTOMER_OF", "company:northwind", "Nordhem Housing, a housing cooperative"),
        ("org:nordhem-housing", "LOCATED_IN", "place:gothenburg", "a housing cooperative in Gothenburg"),
        ("org:formosa-rentals", "CUSTOMER_OF", "company:northwind", "largest customer is Formosa Rentals"),
        ("org:formosa-rentals", "BUYS", "product:breeze-mini", "buys mostly the Breeze Mini"),
    ],
    "northwind-zh-hant.md": [
        ("company:northwind", "位於", "place:taichung", "北風熱能是一家位於台中的熱泵製造商"),
        ("person:lin-xiaoming", "創立", "company:northwind", "由林小明與瑞典設計師莎拉·霍姆共同創立"),
        ("person:sara-holm", "創立", "company:northwind", "由林小明與瑞典設計師莎拉·霍姆共同創立"),
        ("company:northwind", "生產", "product:breeze-1", "推出第一款自有產品「微風一號」"),
        ("person:chen-mei-ling", "擔任執行長", "company:northwind", "陳美玲出任執行長"),
        ("lab:hsinchu-research", "位於", "place:hsinchu", "北風熱能的研發實驗室位於新竹"),
        ("person:wang-jun", "領導", "lab:hsinchu-research", "實驗室由王俊博士領導"),
        ("lab:hsinchu-research", "開發", "product:quietcore", "「靜芯」壓縮機是新竹研發實驗室"),
        ("product:breeze-5", "採用", "product:quietcore", "旗艦機種「微風五號」就是採用靜芯壓縮機"),
        ("person:lin-xiaoming", "擔任技術長", "company:northwind", "林小明是共同創辦人兼技術長"),
        ("person:sara-holm", "領導", "office:europe", "在瑞典哥特堡負責歐洲辦公室"),
        ("office:europe", "位於", "place:gothenburg", "在瑞典哥特堡負責歐洲辦公室"),
        ("org:formosa-rentals", "客戶", "company:northwind", "最大的客戶是福爾摩沙租賃公司"),
        ("org:formosa-rentals", "購買", "product:breeze-mini", "主要購買小型機種「微風迷你」"),
        ("org:nordhem-housing", "客戶", "company:northwind", "哥特堡的北方家園住宅合作社是最大的客戶"),
        ("org:lund-university", "測試", "company:northwind", "瑞典的隆德大學每年冬天"),
    ],
}


def node(entity_id: str, chinese: bool) -> dict[str, object]:
    kind, english, zh, *others = ENTITIES[entity_id]
    return {"id": entity_id, "type": kind, "name": zh if chinese else english,
            "props": [{"key": "aliases", "value": [english, zh, *others]}]}


def build(document: str) -> dict[str, object]:
    settings = Settings()
    path = HERE / document
    text = parse_document(path.read_bytes(), filename=path.name).text
    chunks = chunk_text(text, size=settings.chunk_size, overlap=settings.chunk_overlap)
    chinese = "zh" in document
    for src, _, dst, phrase in FACTS[document]:
        if not any(phrase in chunk.text for chunk in chunks):
            raise SystemExit(f"{document}: no chunk states {phrase!r}")
    entries = []
    for chunk in chunks:
        facts = [f for f in FACTS[document] if f[3] in chunk.text]
        ids = list(dict.fromkeys(i for src, _, dst, _ in facts for i in (src, dst)))
        entries.append({"index": chunk.index, "content_hash": content_hash(chunk.text),
                        "nodes": [node(i, chinese) for i in ids],
                        "edges": [{"src": s, "dst": d, "type": rel, "props": []} for s, rel, d, _ in facts]})
    return {"document": document, "chunk_size": settings.chunk_size, "chunk_overlap": settings.chunk_overlap,
            "chunks": entries}


def main() -> None:
    for document in FACTS:
        target = HERE / document.replace(".md", ".graph.json")
        target.write_text(json.dumps(build(document), ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        print(target.name)


if __name__ == "__main__":
    main()
