"""Demo data: simulated stations at real Chinese city coordinates (WGS 84, degrees) and demo
carbon facilities with their activity records and targets."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from carbon.activity import ActivityRecord, Facility
from carbon.targets import Target
from sensors.stations import Station

#: (id suffix, city zh, city en, kind, lon, lat) — city-centre coordinates.
_CITIES: Final = (
    ("BEIJING", "北京", "Beijing", "air", 116.4074, 39.9042),
    ("SHANGHAI", "上海", "Shanghai", "air", 121.4737, 31.2304),
    ("GUANGZHOU", "广州", "Guangzhou", "air", 113.2644, 23.1291),
    ("SHENZHEN", "深圳", "Shenzhen", "water", 114.0579, 22.5431),
    ("CHENGDU", "成都", "Chengdu", "air", 104.0665, 30.5723),
    ("WUHAN", "武汉", "Wuhan", "water", 114.3054, 30.5931),
    ("XIAN", "西安", "Xi'an", "air", 108.9402, 34.3416),
    ("HANGZHOU", "杭州", "Hangzhou", "water", 120.1551, 30.2741),
    ("NANJING", "南京", "Nanjing", "cems", 118.7969, 32.0603),
    ("CHONGQING", "重庆", "Chongqing", "air", 106.5516, 29.5630),
    ("TIANJIN", "天津", "Tianjin", "cems", 117.2010, 39.0842),
    ("SHENYANG", "沈阳", "Shenyang", "air", 123.4315, 41.8057),
    ("HARBIN", "哈尔滨", "Harbin", "air", 126.5349, 45.8038),
    ("LANZHOU", "兰州", "Lanzhou", "air", 103.8343, 36.0611),
    ("URUMQI", "乌鲁木齐", "Urumqi", "air", 87.6168, 43.8256),
    ("LHASA", "拉萨", "Lhasa", "radiation", 91.1409, 29.6456),
    ("KUNMING", "昆明", "Kunming", "water", 102.8329, 24.8801),
    ("ZHENGZHOU", "郑州", "Zhengzhou", "air", 113.6254, 34.7466),
    ("JINAN", "济南", "Jinan", "cems", 117.1205, 36.6510),
    ("HOHHOT", "呼和浩特", "Hohhot", "radiation", 111.7492, 40.8424),
    ("TAIYUAN", "太原", "Taiyuan", "cems", 112.5489, 37.8706),
    ("HAIKOU", "海口", "Haikou", "water", 110.1999, 20.0440),
)

_KIND_ZH: Final = {
    "air": "空气站",
    "water": "水质站",
    "cems": "烟气在线监测",
    "radiation": "辐射站",
}


#: CEMS city → (facility id, name, region, IPCC sector, monthly activities (activity, quantity,
#: unit, method)): plants whose stacks the demo CEMS stations are.
_PLANTS: Final = {
    "NANJING": (
        "DEMO-NJ-GAS", "南京燃气电厂 Nanjing gas power", "320100", "1.A.1.a",
        (("natural_gas", 3_000_000.0, "Nm3", "china"), ("electricity", 800.0, "MWh", "china")),
    ),
    "TIANJIN": (
        "DEMO-TJ-COAL", "天津燃煤电厂 Tianjin coal power", "CN-TJ", "1.A.1.a",
        (("bituminous_coal", 20_000.0, "t", "ipcc"), ("electricity", 1_500.0, "MWh", "china")),
    ),
    "JINAN": (
        "DEMO-JN-STEEL", "济南钢厂 Jinan steel", "370100", "2.C.1",
        (("crude_steel", 40_000.0, "t", "china"), ("electricity", 30_000.0, "MWh", "china")),
    ),
    "TAIYUAN": (
        "DEMO-TY-CEMENT", "太原水泥厂 Taiyuan cement", "140100", "2.A.1",
        (("cement_clinker", 90_000.0, "t", "china"), ("electricity", 6_000.0, "MWh", "china")),
    ),
}  # fmt: skip


def demo_carbon(
    now: datetime, years: int = 4, tz: str = "Asia/Shanghai"
) -> tuple[list[Facility], list[ActivityRecord], list[Target]]:
    """Demo plants (the demo CEMS stacks' facilities), monthly activity records from January
    ``years`` years ago to the last complete month (a gentle, seasonal growth), and targets for
    their provinces and the nation."""
    zone = ZoneInfo(tz)
    facilities = [
        Facility(fid, name, region, sector) for fid, name, region, sector, _ in _PLANTS.values()
    ]
    local = now.astimezone(zone)
    month = datetime(local.year - years, 1, 1, tzinfo=zone)
    records: list[ActivityRecord] = []
    while (month.year, month.month) < (local.year, local.month):
        after = (month + timedelta(days=32)).replace(day=1)
        trend = 1 + 0.03 * (month.year - local.year + years) - 0.01 * (month.year >= local.year)
        season = 1.1 if month.month in (1, 2, 7, 8, 12) else 1.0
        for fid, _name, _region, _sector, activities in _PLANTS.values():
            for activity, quantity, unit, method in activities:
                records.append(
                    ActivityRecord(
                        f"{fid}/{activity}/{month.isoformat()}", fid, month, after, activity,
                        round(quantity * trend * season, 1), unit, "demo", method,
                    )
                )  # fmt: skip
        month = after
    targets = [Target("CN"), Target("CN-TJ"), Target("CN-JS"), Target("CN-SD"), Target("CN-SX")]
    return facilities, records, targets


def demo_stations(count: int | None = None, prefix: str = "SIM") -> list[Station]:
    """``count`` simulated stations (default: all 22 cities), cycling through the cities."""
    n = len(_CITIES) if count is None else count
    out: list[Station] = []
    for i in range(n):
        key, zh, en, kind, lon, lat = _CITIES[i % len(_CITIES)]
        round_ = i // len(_CITIES)
        sid = f"{prefix}-{key}" + (f"-{round_ + 1}" if round_ else "")
        # Later rounds sit a little apart so that markers do not hide one another.
        dlon, dlat = 0.05 * round_, 0.03 * round_
        out.append(
            Station(
                sid,
                f"{zh}{_KIND_ZH[kind]}（模拟） {en} {kind} (simulated)",
                kind,
                round(lon + dlon, 4),
                round(lat + dlat, 4),
                {"city": en, "city_zh": zh}
                | ({"facility": _PLANTS[key][0]} if kind == "cems" and not round_ else {}),
                simulated=True,
            )
        )
    return out
