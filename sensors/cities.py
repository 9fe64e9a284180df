"""City names in Chinese and English, and one stored spelling per known city (pure).

A station's ``city`` attribute is what groups it into a city's AQI and the reports' city rows,
so ``北京``, ``北京市`` and ``Beijing`` must be one city, not three. The cities below — the
four municipalities, every provincial capital, the sub-provincial cities and a few more that
bureaus and the demo use — are stored under their English name (Hanyu Pinyin as the cities'
official English names write it, with the customary exceptions Hohhot, Lhasa, Urumqi and
Xi'an); any other city is stored as it was written. Pages and reports show a known city in
the reader's language (:func:`label`).
"""

from __future__ import annotations

from typing import Final, Literal

#: (Chinese, English) names of the known cities
CITIES: Final = (
    ("北京", "Beijing"), ("天津", "Tianjin"), ("上海", "Shanghai"), ("重庆", "Chongqing"),
    ("石家庄", "Shijiazhuang"), ("太原", "Taiyuan"), ("呼和浩特", "Hohhot"),
    ("沈阳", "Shenyang"), ("长春", "Changchun"), ("哈尔滨", "Harbin"), ("南京", "Nanjing"),
    ("杭州", "Hangzhou"), ("合肥", "Hefei"), ("福州", "Fuzhou"), ("南昌", "Nanchang"),
    ("济南", "Jinan"), ("郑州", "Zhengzhou"), ("武汉", "Wuhan"), ("长沙", "Changsha"),
    ("广州", "Guangzhou"), ("南宁", "Nanning"), ("海口", "Haikou"), ("成都", "Chengdu"),
    ("贵阳", "Guiyang"), ("昆明", "Kunming"), ("拉萨", "Lhasa"), ("西安", "Xi'an"),
    ("兰州", "Lanzhou"), ("西宁", "Xining"), ("银川", "Yinchuan"), ("乌鲁木齐", "Urumqi"),
    ("深圳", "Shenzhen"), ("大连", "Dalian"), ("青岛", "Qingdao"), ("宁波", "Ningbo"),
    ("厦门", "Xiamen"), ("苏州", "Suzhou"), ("无锡", "Wuxi"), ("唐山", "Tangshan"),
    ("保定", "Baoding"), ("邯郸", "Handan"), ("株洲", "Zhuzhou"), ("三亚", "Sanya"),
)  # fmt: skip


def _key(name: str) -> str:
    """A spelling folded for lookup: case, spaces, apostrophes, hyphens and a trailing ``市``
    ignored (``Xi'an``, ``xian``, ``XI AN``; ``北京市``)."""
    folded = "".join(c for c in name.strip().casefold() if c not in " '’-")
    return folded.removesuffix("市") if len(folded) > 2 else folded


_BY_KEY: Final = {key: (zh, en) for zh, en in CITIES for key in (_key(zh), _key(en))}


def canonical(city: str) -> str:
    """The stored spelling of ``city``: a known city's English name (``北京市`` → ``Beijing``),
    any other name stripped of surrounding spaces."""
    known = _BY_KEY.get(_key(city))
    return known[1] if known else city.strip()


def label(city: str, language: Literal["zh", "en"]) -> str:
    """``city`` in ``language``: a known city's Chinese or English name, any other as it is."""
    known = _BY_KEY.get(_key(city))
    if known is None:
        return city
    return known[0] if language == "zh" else known[1]


def bilingual(city: str) -> str:
    """``北京 Beijing`` for a known city (the reports print both languages), any other as it
    is."""
    known = _BY_KEY.get(_key(city))
    return f"{known[0]} {known[1]}" if known else city
