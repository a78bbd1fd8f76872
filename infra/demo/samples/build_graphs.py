"""Regenerate the sample documents' graphs (`<doc>.graph.json`) from hand-written facts.

The demo loads these graphs when no LLM is configured, so the facts below play
the extractor: they were written by hand from the documents. Each fact quotes
the phrase of the document that states it and goes to every chunk (default
chunking) whose text contains that phrase, so a chunk lists only what its own
text states, with the chunk's content hash so the demo can match it to the
chunk the ingest function indexed. Node ids are shared by both documents, so
their graphs join; node types are English in both, relation types are in the
document's language.

    python -m infra.demo.samples.build_graphs          # rewrite the .graph.json files
    python -m infra.demo.samples.build_graphs --check  # exit 1 if they are out of date
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway_core.models.graph import GraphData
from gateway_core.services.chunking import Chunk, chunk_text, content_hash
from gateway_core.services.documents import parse_document

HERE = Path(__file__).parent
CHUNK_SIZE = 800  # the defaults of chunk_text and of the CHUNK_SIZE / CHUNK_OVERLAP settings
CHUNK_OVERLAP = 120

Value = str | int | float


@dataclass(frozen=True)
class Entity:
    type: str
    en: str
    zh: str | None = None
    aliases: tuple[str, ...] = ()

    def names(self) -> list[str]:
        return list(dict.fromkeys(n for n in (self.en, self.zh, *self.aliases) if n))


@dataclass(frozen=True)
class Rel:
    src: str
    type: str
    dst: str
    evidence: str
    props: dict[str, Value] = field(default_factory=dict)


@dataclass(frozen=True)
class Prop:
    node: str
    key: str
    value: Value
    evidence: str


Fact = Rel | Prop


def rel(src: str, type_: str, dst: str, evidence: str, **props: Value) -> Rel:
    return Rel(src, type_, dst, evidence, props)


ENTITIES: dict[str, Entity] = {
    "company:northwind": Entity("Company", "Northwind Thermal", "北風熱能"),
    "person:lin-xiaoming": Entity("Person", "Lin Xiaoming", "林小明"),
    "person:sara-holm": Entity("Person", "Sara Holm", "莎拉·霍姆"),
    "person:chen-mei-ling": Entity("Person", "Chen Mei-ling", "陳美玲"),
    "person:wang-jun": Entity("Person", "Wang Jun", "王俊"),
    "person:huang-yi-ting": Entity("Person", "Huang Yi-ting", "黃怡婷"),
    "person:tsai-chia-hao": Entity("Person", "Tsai Chia-hao", "蔡家豪"),
    "person:jonas-ek": Entity("Person", "Jonas Ek"),
    "person:erik-lindqvist": Entity("Person", "Erik Lindqvist", "艾瑞克·林奎斯特"),
    "person:anna-berg": Entity("Person", "Anna Berg", "安娜·貝里"),
    "place:taiwan": Entity("Place", "Taiwan", "台灣"),
    "place:taichung": Entity("Place", "Taichung", "台中"),
    "place:taichung-industrial-park": Entity("Place", "Taichung Industrial Park", "台中工業區"),
    "place:hsinchu": Entity("Place", "Hsinchu", "新竹"),
    "place:tainan": Entity("Place", "Tainan", "台南"),
    "place:kaohsiung": Entity("Place", "Kaohsiung", "高雄"),
    "place:taipei": Entity("Place", "Taipei", "台北"),
    "place:sweden": Entity("Place", "Sweden", "瑞典"),
    "place:gothenburg": Entity("Place", "Gothenburg", "哥特堡"),
    "place:osaka": Entity("Place", "Osaka", "大阪"),
    "lab:acoustics-lab": Entity("Lab", "Acoustics Lab", "聲學實驗室"),
    "office:europe": Entity("Office", "European office", "歐洲辦公室", ("Gothenburg office",)),
    "factory:taichung": Entity("Factory", "Taichung factory", "台中總廠"),
    "factory:kaohsiung": Entity("Factory", "Kaohsiung factory", "高雄新廠"),
    "product:breeze-1": Entity("Product", "Breeze 1", "微風一號"),
    "product:breeze-3": Entity("Product", "Breeze 3", "微風三號"),
    "product:breeze-5": Entity("Product", "Breeze 5", "微風五號"),
    "product:breeze-mini": Entity("Product", "Breeze Mini", "微風迷你"),
    "product:quietcore": Entity("Component", "QuietCore compressor", "靜芯壓縮機", ("QuietCore", "靜芯")),
    "product:northlink": Entity("App", "NorthLink", "北風連線", ("NorthLink app",)),
    "material:r290": Entity("Refrigerant", "R290"),
    "org:lund-university": Entity("University", "Lund University", "隆德大學"),
    "org:nordhem-housing": Entity("Company", "Nordhem Housing", "北方家園住宅合作社"),
    "org:formosa-rentals": Entity("Company", "Formosa Rentals", "福爾摩沙租賃公司", ("福爾摩沙租賃",)),
    "org:kansai-compressor": Entity("Company", "Kansai Compressor", "關西壓縮機公司", ("關西壓縮機",)),
    "org:harbor-bridge-ventures": Entity("Investor", "Harbor Bridge Ventures", "港橋創投"),
    "org:dadu-cycles": Entity("Company", "Dadu Cycles", "大肚自行車"),
}

NW, LIN, SARA, CHEN, WANG = (
    "company:northwind",
    "person:lin-xiaoming",
    "person:sara-holm",
    "person:chen-mei-ling",
    "person:wang-jun",
)
HUANG, TSAI, JONAS, ERIK, ANNA = (
    "person:huang-yi-ting",
    "person:tsai-chia-hao",
    "person:jonas-ek",
    "person:erik-lindqvist",
    "person:anna-berg",
)
LAB, OFFICE, TC_FACTORY, KH_FACTORY = "lab:acoustics-lab", "office:europe", "factory:taichung", "factory:kaohsiung"
B1, B3, B5, MINI, QC, APP, R290 = (
    "product:breeze-1",
    "product:breeze-3",
    "product:breeze-5",
    "product:breeze-mini",
    "product:quietcore",
    "product:northlink",
    "material:r290",
)
LUND, NORDHEM, FORMOSA, KANSAI, HARBOR, DADU = (
    "org:lund-university",
    "org:nordhem-housing",
    "org:formosa-rentals",
    "org:kansai-compressor",
    "org:harbor-bridge-ventures",
    "org:dadu-cycles",
)
TAIWAN, TAICHUNG, PARK, HSINCHU, TAINAN, KAOHSIUNG, TAIPEI, SWEDEN, GOTHENBURG, OSAKA = (
    "place:taiwan",
    "place:taichung",
    "place:taichung-industrial-park",
    "place:hsinchu",
    "place:tainan",
    "place:kaohsiung",
    "place:taipei",
    "place:sweden",
    "place:gothenburg",
    "place:osaka",
)

FACTS: dict[str, list[Fact]] = {
    "northwind-en.md": [
        # History
        rel(NW, "BASED_IN", TAIWAN, "Northwind Thermal is a Taiwanese maker of quiet heat pumps"),
        rel(LIN, "COMES_FROM", TAICHUNG, "Lin Xiaoming, a refrigeration engineer from Taichung"),
        Prop(LIN, "occupation", "refrigeration engineer", "Lin Xiaoming, a refrigeration engineer"),
        rel(SARA, "COMES_FROM", SWEDEN, "Sara Holm, a Swedish product designer"),
        Prop(SARA, "occupation", "product designer", "Sara Holm, a Swedish product designer"),
        rel(
            LIN,
            "MET",
            SARA,
            "met Sara Holm, a Swedish product designer, at a heating and ventilation trade fair in Stockholm in 2009",
            year=2009,
            place="Stockholm",
        ),
        rel(
            LIN,
            "FOUNDED",
            NW,
            "Northwind Thermal was founded in 2011 in Taichung by Lin Xiaoming and Sara Holm",
            year=2011,
        ),
        rel(
            SARA,
            "FOUNDED",
            NW,
            "Northwind Thermal was founded in 2011 in Taichung by Lin Xiaoming and Sara Holm",
            year=2011,
        ),
        rel(NW, "FOUNDED_IN", TAICHUNG, "Northwind Thermal was founded in 2011 in Taichung"),
        Prop(NW, "founded", 2011, "Northwind Thermal was founded in 2011"),
        rel(NW, "STARTED_IN", PARK, "started in a rented workshop in Taichung Industrial Park"),
        rel(
            NW,
            "MAKES",
            B1,
            "In 2014 Northwind Thermal shipped its first own product, a wall-mounted heat pump called the Breeze 1",
        ),
        Prop(B1, "launched", 2014, "In 2014 Northwind Thermal shipped its first own product"),
        Prop(B1, "units_sold", 8000, "About 8,000 units were sold before the Breeze 1 was retired in 2020"),
        Prop(B1, "retired", 2020, "the Breeze 1 was retired in 2020"),
        rel(NW, "OPENED", LAB, "In 2016 the company opened the Acoustics Lab, its own research laboratory", year=2016),
        rel(WANG, "LEADS", LAB, "the Acoustics Lab, its own research laboratory, and hired Dr. Wang Jun to lead it"),
        rel(
            CHEN, "CEO_OF", NW, "In 2019 Chen Mei-ling joined Northwind Thermal as chief executive officer", since=2019
        ),
        rel(LIN, "CTO_OF", NW, "Lin Xiaoming became chief technology officer"),
        rel(SARA, "OPENED", OFFICE, "Sara Holm moved back to Sweden to open the European office", year=2019),
        rel(NW, "PARTNER_OF", LUND, "the company signed a research partnership with Lund University", since=2019),
        rel(NW, "MAKES", B5, "In 2021 the company launched the Breeze 5"),
        Prop(B5, "launched", 2021, "In 2021 the company launched the Breeze 5"),
        rel(B5, "USES", QC, "the Breeze 5, its first heat pump built around the QuietCore compressor"),
        # People
        rel(CHEN, "CEO_OF", NW, "Chen Mei-ling is the CEO of Northwind Thermal"),
        rel(CHEN, "WORKED_AT", DADU, "she spent ten years running operations at Dadu Cycles", years=10),
        rel(DADU, "LOCATED_IN", TAICHUNG, "Dadu Cycles, a bicycle manufacturer in Taichung"),
        rel(LIN, "CTO_OF", NW, "Lin Xiaoming is co-founder and CTO of Northwind Thermal"),
        rel(LIN, "FOUNDED", NW, "Lin Xiaoming is co-founder and CTO of Northwind Thermal"),
        Prop(LIN, "patents", 11, "Lin Xiaoming holds eleven patents"),
        rel(SARA, "FOUNDED", NW, "Sara Holm is co-founder of Northwind Thermal"),
        rel(SARA, "LEADS", OFFICE, "Sara Holm is co-founder of Northwind Thermal and head of the European office"),
        rel(
            SARA,
            "MANAGES_PARTNERSHIP_WITH",
            LUND,
            "Sara Holm is responsible for sales in the Nordic countries and for the partnership with Lund University",
        ),
        rel(WANG, "LEADS", LAB, "Dr. Wang Jun leads the Acoustics Lab"),
        Prop(WANG, "joined", 2016, "Before joining Northwind Thermal in 2016"),
        rel(WANG, "WORKED_IN", TAINAN, "he worked on low-noise cooling fans at a university in Tainan"),
        rel(
            WANG,
            "INVENTED_PART_OF",
            QC,
            "Wang Jun is the lead inventor of the magnetic damper inside the QuietCore compressor",
            part="magnetic damper",
        ),
        rel(
            JONAS,
            "WORKS_AT",
            OFFICE,
            "Jonas Ek leads the software team of the European office",
            role="head of software",
        ),
        rel(
            JONAS,
            "DEVELOPS",
            APP,
            "Jonas Ek leads the software team of the European office, six engineers who build the NorthLink app",
        ),
        # Places
        rel(
            NW,
            "HEADQUARTERED_IN",
            TAICHUNG,
            "The headquarters of Northwind Thermal and its main factory are in Taichung",
        ),
        rel(NW, "OPERATES", TC_FACTORY, "The headquarters of Northwind Thermal and its main factory are in Taichung"),
        rel(TC_FACTORY, "LOCATED_IN", TAICHUNG, "its main factory are in Taichung"),
        Prop(TC_FACTORY, "assembly_lines", 2, "The Taichung factory has two assembly lines"),
        Prop(
            TC_FACTORY,
            "units_per_year",
            30000,
            "The Taichung factory has two assembly lines and builds about 30,000 units a year",
        ),
        rel(LAB, "LOCATED_IN", HSINCHU, "The Acoustics Lab is located in Hsinchu"),
        Prop(LAB, "engineers", 22, "Twenty-two engineers work in the Acoustics Lab"),
        rel(OFFICE, "LOCATED_IN", GOTHENBURG, "The European office is in Gothenburg, Sweden"),
        rel(GOTHENBURG, "LOCATED_IN", SWEDEN, "Gothenburg, Sweden"),
        rel(
            APP,
            "DEVELOPED_IN",
            GOTHENBURG,
            "The software team that builds the NorthLink app also works from the Gothenburg office",
        ),
        # Products
        rel(NW, "MAKES", B5, "The Breeze 5 is the flagship heat pump of Northwind Thermal"),
        Prop(B5, "max_area_m2", 90, "apartments of up to 90 square metres"),
        Prop(B5, "night_noise_db", 19, "runs at 19 decibels on its night setting"),
        rel(B5, "USES", R290, "The Breeze 5 uses the natural refrigerant R290"),
        rel(B5, "USES", QC, "Inside the Breeze 5 is the QuietCore compressor"),
        rel(
            LAB,
            "DEVELOPED",
            QC,
            "The QuietCore compressor was developed by the Acoustics Lab between 2017 and 2020",
            start=2017,
            end=2020,
        ),
        rel(NW, "MAKES", MINI, "The Breeze Mini is Northwind Thermal's smaller unit"),
        rel(KANSAI, "SUPPLIES", MINI, "it uses a conventional compressor supplied by Kansai Compressor"),
        rel(KANSAI, "LOCATED_IN", OSAKA, "Kansai Compressor, a manufacturer based in Osaka"),
        Prop(MINI, "night_noise_db", 26, "The Breeze Mini runs at 26 decibels on its night setting"),
        rel(NW, "OFFERS", APP, "NorthLink is the app that controls Northwind Thermal's heat pumps from a phone"),
        rel(OFFICE, "DEVELOPED", APP, "The NorthLink app was built by the software team of the European office"),
        rel(
            JONAS,
            "DEVELOPS",
            APP,
            "The NorthLink app was built by the software team of the European office, led by Jonas Ek",
        ),
        rel(APP, "CONTROLS", B5, "NorthLink works with the Breeze 5"),
        rel(APP, "CONTROLS", MINI, "NorthLink works with the Breeze 5 and the Breeze Mini"),
        Prop(APP, "homes", 60000, "about 60,000 homes used it at the end of 2024"),
        Prop(B1, "launched", 2014, "The Breeze 1, launched in 2014"),
        rel(
            NW,
            "MAKES",
            B3,
            "The Breeze 3 followed in 2016: a larger unit for family apartments and the first "
            "Northwind Thermal heat pump",
        ),
        Prop(B3, "launched", 2016, "The Breeze 3 followed in 2016"),
        # Partners and customers
        rel(LUND, "TESTS", NW, "Lund University in Sweden tests Northwind Thermal's heat pumps"),
        rel(LUND, "LOCATED_IN", SWEDEN, "Lund University in Sweden"),
        rel(
            ERIK,
            "WORKS_AT",
            LUND,
            "Professor Erik Lindqvist of the energy sciences department at Lund University",
            role="professor",
        ),
        rel(ERIK, "TESTS", B5, "Erik Lindqvist's students measure how the Breeze 5 performs at minus twenty degrees"),
        rel(NORDHEM, "LOCATED_IN", GOTHENBURG, "Nordhem Housing is a housing cooperative in Gothenburg"),
        rel(
            NORDHEM,
            "CUSTOMER_OF",
            NW,
            "Nordhem Housing is a housing cooperative in Gothenburg and the company's largest European customer",
        ),
        rel(NORDHEM, "INSTALLED", B5, "Nordhem Housing installed 1,200 Breeze 5 units", units=1200),
        rel(
            ANNA, "WORKS_AT", NORDHEM, "Anna Berg, the technical director of Nordhem Housing", role="technical director"
        ),
        rel(ANNA, "CHOSE", B5, "Anna Berg, the technical director of Nordhem Housing, chose the Breeze 5"),
        rel(FORMOSA, "CUSTOMER_OF", NW, "the company's largest customer is Formosa Rentals"),
        rel(FORMOSA, "OPERATES_IN", TAICHUNG, "Formosa Rentals, which manages student apartments in Taichung"),
        rel(FORMOSA, "OPERATES_IN", TAINAN, "manages student apartments in Taichung and Tainan"),
        rel(
            FORMOSA,
            "BUYS",
            MINI,
            "Formosa Rentals buys mostly the Breeze Mini, and in 2024 it ordered 3,000 units",
            units_2024=3000,
        ),
        rel(KANSAI, "SUPPLIES", MINI, "Kansai Compressor supplies the compressors for the Breeze Mini"),
        rel(KANSAI, "SUPPLIER_OF", NW, "Northwind Thermal has bought from the Osaka company since 2018", since=2018),
        # Numbers, culture, outlook
        Prop(NW, "employees", 210, "In 2024 Northwind Thermal had 210 employees"),
        Prop(NW, "export_share_europe_percent", 35, "Exports to Europe made up 35 percent of sales"),
        rel(CHEN, "CHAIRS_MEETINGS_OF", NW, "the weekly quality meeting that Chen Mei-ling chairs"),
        rel(NW, "PARTNER_OF", LUND, "is working with Lund University on a model for colder climates"),
    ],
    "northwind-zh-hant.md": [
        rel(NW, "總部位於", TAICHUNG, "北風熱能是一家總部位於台中的熱泵製造商"),
        rel(LIN, "來自", TAICHUNG, "台中的冷凍空調工程師林小明"),
        Prop(LIN, "occupation", "refrigeration engineer", "冷凍空調工程師林小明"),
        rel(SARA, "來自", SWEDEN, "瑞典產品設計師莎拉·霍姆"),
        rel(
            LIN,
            "認識",
            SARA,
            "林小明在斯德哥爾摩的暖通空調展覽上認識了瑞典產品設計師莎拉·霍姆",
            year=2009,
            place="斯德哥爾摩",
        ),
        rel(LIN, "創立", NW, "林小明與莎拉·霍姆在台中共同創立北風熱能", year=2011),
        rel(SARA, "創立", NW, "林小明與莎拉·霍姆在台中共同創立北風熱能", year=2011),
        rel(NW, "創立於", TAICHUNG, "林小明與莎拉·霍姆在台中共同創立北風熱能"),
        Prop(NW, "founded", 2011, "二〇一一年，林小明與莎拉·霍姆在台中共同創立北風熱能"),
        rel(NW, "起家於", PARK, "在台中工業區租了一間小廠房"),
        rel(NW, "生產", B1, "公司推出第一款自有產品「微風一號」"),
        Prop(B1, "launched", 2014, "二〇一四年，公司推出第一款自有產品「微風一號」"),
        Prop(B1, "units_sold", 8000, "共賣出約八千台"),
        Prop(B1, "retired", 2020, "已於二〇二〇年停產"),
        rel(NW, "生產", B3, "二〇一六年，公司推出較大的「微風三號」"),
        Prop(B3, "launched", 2016, "二〇一六年，公司推出較大的「微風三號」"),
        rel(NW, "成立", LAB, "公司在新竹成立聲學實驗室", year=2016),
        rel(LAB, "位於", HSINCHU, "公司在新竹成立聲學實驗室"),
        rel(CHEN, "擔任執行長", NW, "二〇一九年，陳美玲出任執行長", since=2019),
        rel(LIN, "擔任技術長", NW, "林小明改任技術長"),
        rel(SARA, "成立", OFFICE, "莎拉·霍姆則回到瑞典成立歐洲辦公室", year=2019),
        rel(
            HARBOR,
            "投資",
            NW,
            "港橋創投領投北風熱能的B輪募資，金額為新台幣四億元",
            year=2020,
            round="B",
            amount="新台幣四億元",
        ),
        rel(NW, "生產", B5, "二〇二一年，旗艦機種「微風五號」上市"),
        Prop(B5, "launched", 2021, "二〇二一年，旗艦機種「微風五號」上市"),
        # 經營團隊
        rel(CHEN, "擔任執行長", NW, "陳美玲是北風熱能的執行長"),
        rel(CHEN, "曾任職於", DADU, "曾在台中的大肚自行車擔任營運主管十年", years=10),
        rel(DADU, "位於", TAICHUNG, "台中的大肚自行車"),
        rel(LIN, "擔任技術長", NW, "林小明是共同創辦人兼技術長"),
        rel(LIN, "創立", NW, "林小明是共同創辦人兼技術長"),
        rel(TSAI, "擔任財務長", NW, "蔡家豪是北風熱能的財務長，二〇二〇年加入公司", since=2020),
        rel(TSAI, "曾任職於", HARBOR, "蔡家豪過去在港橋創投擔任分析師"),
        rel(HUANG, "擔任廠長", TC_FACTORY, "黃怡婷是台中總廠的廠長"),
        Prop(HUANG, "joined", 2013, "黃怡婷在二〇一三年以品管工程師的身分加入北風熱能"),
        rel(WANG, "領導", LAB, "王俊博士是聲學實驗室主任"),
        Prop(WANG, "joined", 2016, "王俊博士是聲學實驗室主任，二〇一六年加入公司"),
        rel(WANG, "曾任職於", TAINAN, "曾在台南的一所大學研究低噪音風扇"),
        rel(SARA, "創立", NW, "莎拉·霍姆是共同創辦人"),
        rel(SARA, "負責", OFFICE, "莎拉·霍姆是共同創辦人，目前在瑞典負責歐洲辦公室"),
        # 台中總廠與高雄新廠
        rel(HUANG, "負責", TC_FACTORY, "台中總廠由廠長黃怡婷負責"),
        Prop(TC_FACTORY, "assembly_lines", 2, "台中總廠由廠長黃怡婷負責，共有兩條生產線"),
        Prop(TC_FACTORY, "units_per_year", 30000, "每年組裝約三萬台熱泵"),
        rel(NW, "興建", KH_FACTORY, "北風熱能正在高雄興建第二座工廠"),
        rel(KH_FACTORY, "位於", KAOHSIUNG, "北風熱能正在高雄興建第二座工廠"),
        Prop(KH_FACTORY, "production_start", 2026, "高雄新廠預計在二〇二六年投產"),
        rel(KH_FACTORY, "生產", B5, "將設置第三條生產線，專門生產微風五號"),
        rel(HUANG, "負責籌備", KH_FACTORY, "並由黃怡婷兼任籌備負責人"),
        # 聲學實驗室
        rel(LAB, "位於", HSINCHU, "北風熱能的聲學實驗室位於新竹"),
        rel(WANG, "領導", LAB, "實驗室由王俊博士領導"),
        Prop(LAB, "engineers", 22, "實驗室由王俊博士領導，共有二十二名工程師"),
        rel(LAB, "開發", QC, "「靜芯」壓縮機是聲學實驗室在二〇一七年到二〇二〇年間開發的", start=2017, end=2020),
        rel(WANG, "發明", QC, "王俊博士是磁性阻尼器的主要發明人", part="磁性阻尼器"),
        Prop(LAB, "patents", 14, "實驗室目前擁有十四項專利"),
        rel(LAB, "改良", MINI, "實驗室也為微風迷你重新設計了風扇葉片"),
        Prop(MINI, "night_noise_db", 26, "讓它的夜間噪音降到二十六分貝"),
        # 歐洲辦公室
        rel(OFFICE, "位於", GOTHENBURG, "歐洲辦公室位於瑞典哥特堡"),
        rel(GOTHENBURG, "位於", SWEDEN, "瑞典哥特堡"),
        rel(SARA, "負責", OFFICE, "歐洲辦公室位於瑞典哥特堡，由共同創辦人莎拉·霍姆負責"),
        rel(APP, "開發於", GOTHENBURG, "開發北風連線App的軟體團隊也在哥特堡辦公室工作"),
        Prop(OFFICE, "employees", 18, "歐洲辦公室目前有十八名員工"),
        # 產品
        rel(B5, "採用", QC, "旗艦機種「微風五號」採用靜芯壓縮機"),
        Prop(B5, "max_area_m2", 90, "適用於九十平方公尺以內的公寓"),
        Prop(B5, "night_noise_db", 19, "夜間模式的噪音只有十九分貝"),
        rel(B5, "使用", R290, "微風五號使用天然冷媒R290"),
        rel(NW, "生產", B3, "也是北風熱能第一款變頻熱泵"),
        rel(KANSAI, "供應", MINI, "使用大阪的關西壓縮機公司供應的傳統壓縮機"),
        rel(KANSAI, "位於", OSAKA, "大阪的關西壓縮機公司"),
        rel(NW, "提供", APP, "「北風連線」是用手機控制北風熱能熱泵的App"),
        rel(OFFICE, "開發", APP, "北風連線App由歐洲辦公室的軟體團隊開發"),
        rel(APP, "支援", B5, "支援微風五號與微風迷你"),
        rel(APP, "支援", MINI, "支援微風五號與微風迷你"),
        # 客戶與夥伴
        rel(FORMOSA, "客戶", NW, "在台灣，最大的客戶是福爾摩沙租賃公司"),
        rel(FORMOSA, "營運於", TAICHUNG, "它在台中和台南管理學生公寓"),
        rel(FORMOSA, "營運於", TAINAN, "它在台中和台南管理學生公寓"),
        rel(FORMOSA, "購買", MINI, "主要購買小型機種「微風迷你」"),
        rel(FORMOSA, "訂購", MINI, "福爾摩沙租賃公司為新落成的宿舍訂購了三千台微風迷你", year=2024, units=3000),
        rel(NORDHEM, "位於", GOTHENBURG, "哥特堡的北方家園住宅合作社"),
        rel(NORDHEM, "客戶", NW, "哥特堡的北方家園住宅合作社是最大的客戶"),
        rel(NORDHEM, "安裝", B5, "共安裝了一千二百台微風五號", units=1200),
        rel(ANNA, "任職於", NORDHEM, "北方家園住宅合作社的技術總監安娜·貝里", role="技術總監"),
        rel(LUND, "測試", NW, "瑞典的隆德大學每年冬天在零下二十度的環境中測試北風熱能的熱泵"),
        rel(LUND, "位於", SWEDEN, "瑞典的隆德大學"),
        rel(ERIK, "任職於", LUND, "隆德大學能源科學系的艾瑞克·林奎斯特教授", role="教授"),
        rel(HARBOR, "位於", TAIPEI, "總部位於台北的港橋創投"),
        rel(HARBOR, "投資", NW, "港橋創投除了是B輪募資的領投者，也協助北風熱能"),
        # 企業文化、永續、數字、展望
        rel(CHEN, "主持會議", NW, "陳美玲主持的每週品質會議"),
        Prop(NW, "installers", 40, "北風熱能在全台與四十家合作安裝商配合"),
        Prop(NW, "employees", 210, "北風熱能共有二百一十名員工"),
        Prop(NW, "export_share_europe_percent", 35, "外銷歐洲的比例為百分之三十五"),
        rel(LAB, "合作", LUND, "聲學實驗室正與隆德大學合作開發適合更寒冷地區的新機種"),
    ],
}


def chunks_of(document: str) -> list[Chunk]:
    path = HERE / document
    text = parse_document(path.read_bytes(), filename=path.name).text
    return chunk_text(text, size=CHUNK_SIZE, overlap=CHUNK_OVERLAP)


def node(entity_id: str, chinese: bool, props: list[Prop]) -> dict[str, Any]:
    entity = ENTITIES[entity_id]
    name = (entity.zh if chinese else None) or entity.en
    stated = {p.key: p.value for p in props if p.node == entity_id}
    return {
        "id": entity_id,
        "type": entity.type,
        "name": name,
        "props": [
            {"key": "aliases", "value": entity.names()},
            *({"key": key, "value": value} for key, value in stated.items()),
        ],
    }


def chunk_graph(chunk: Chunk, facts: list[Fact], chinese: bool) -> dict[str, Any]:
    stated = [fact for fact in facts if fact.evidence in chunk.text]
    rels = [f for f in stated if isinstance(f, Rel)]
    props = [f for f in stated if isinstance(f, Prop)]
    ids = dict.fromkeys(i for f in stated for i in ((f.src, f.dst) if isinstance(f, Rel) else (f.node,)))
    edges = {(r.src, r.type, r.dst): r for r in rels}  # one edge per triple; the last statement's props win
    return {
        "index": chunk.index,
        "content_hash": content_hash(chunk.text),
        "nodes": [node(i, chinese, props) for i in ids],
        "edges": [
            {"src": r.src, "dst": r.dst, "type": r.type, "props": [{"key": k, "value": v} for k, v in r.props.items()]}
            for r in edges.values()
        ],
    }


def build(document: str) -> dict[str, Any]:
    chunks = chunks_of(document)
    facts = FACTS[document]
    for fact in facts:
        for entity_id in (fact.src, fact.dst) if isinstance(fact, Rel) else (fact.node,):
            if entity_id not in ENTITIES:
                raise SystemExit(f"{document}: unknown entity {entity_id!r}")
        if not any(fact.evidence in chunk.text for chunk in chunks):
            raise SystemExit(f"{document}: no chunk states {fact.evidence!r}")
    entries = [chunk_graph(chunk, facts, chinese="zh" in document) for chunk in chunks]
    for entry in entries:  # exactly what /graph/upsert will accept
        GraphData.model_validate({"nodes": entry["nodes"], "edges": entry["edges"]})
    return {"document": document, "chunk_size": CHUNK_SIZE, "chunk_overlap": CHUNK_OVERLAP, "chunks": entries}


def graph_path(document: str) -> Path:
    return HERE / (Path(document).stem + ".graph.json")


def render(graph: dict[str, Any]) -> str:
    return json.dumps(graph, ensure_ascii=False, indent=1) + "\n"


def main(argv: list[str]) -> int:
    stale = []
    for document in FACTS:
        target, content = graph_path(document), render(build(document))
        if "--check" in argv:
            if not target.exists() or target.read_text(encoding="utf-8") != content:
                stale.append(target.name)
            continue
        target.write_text(content, encoding="utf-8")
        print(target.name)
    if stale:
        print(f"out of date: {', '.join(stale)}; run python -m infra.demo.samples.build_graphs", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
