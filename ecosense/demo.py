"""Demo data: simulated stations at real Chinese city coordinates (WGS 84, degrees), soil
sampling points, demo carbon facilities with their activity records and targets, and 48 hours
of history for all of them (:func:`demo_history`), so that ``ecosense up --demo`` is alive at
once."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import pandas as pd

from carbon.activity import ActivityRecord, Facility
from carbon.inventory import account
from carbon.targets import Target
from ecosense.simulator import PROFILE, _seed, station_parameters, stream_level
from sensors.observations import Observation, Source
from sensors.parameters import lookup
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
    ("GUANGZHOU-NOISE", "广州", "Guangzhou", "noise", 113.3245, 23.1064),
    ("SHANGHAI-NOISE", "上海", "Shanghai", "noise", 121.4450, 31.2200),
    ("HANGZHOU-NOISE", "杭州", "Hangzhou", "noise", 120.1300, 30.2600),
    ("TIANJIN-GHG", "天津", "Tianjin", "air", 117.1750, 39.1000),
    ("NANJING-GHG", "南京", "Nanjing", "air", 118.7800, 32.0400),
)
#: Greenhouse-gas stations (ambient CO₂, CH₄, N₂O) and the regions (ISO 3166-2) whose
#: accounted emissions and targets the Climate page puts beside their concentrations.
_GHG: Final = {"TIANJIN-GHG": "CN-TJ", "NANJING-GHG": "CN-JS"}
#: Noise stations' GB 3096-2008 functional zones: mixed housing and commerce, an arterial road
#: side, a housing estate (whose nights are louder than its zone allows).
_NOISE_ZONES: Final = {"GUANGZHOU-NOISE": "2", "SHANGHAI-NOISE": "4a", "HANGZHOU-NOISE": "1"}

_KIND_ZH: Final = {
    "air": "空气站",
    "water": "水质站",
    "cems": "烟气在线监测",
    "radiation": "辐射站",
    "soil": "土壤采样点",
    "noise": "声环境监测站",
}
#: a station kind's name, where the station's measurements say more than its kind
_GHG_ZH: Final = "温室气体监测站"


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
        for fid, _name, _region, _sector, activities in _PLANTS.values():
            for activity, quantity, unit, method in activities:
                records.append(
                    ActivityRecord(
                        f"{fid}/{activity}/{month.isoformat()}", fid, month, after, activity,
                        _monthly(quantity, month, local.year, years), unit, "demo", method,
                    )
                )  # fmt: skip
        month = after
    # the month so far (to the start of the current hour), as a plant's meters give it: the
    # demo CEMS hours of this month have a calculation to be compared with
    hour = local.replace(minute=0, second=0, microsecond=0)
    if hour > month:
        after = (month + timedelta(days=32)).replace(day=1)
        share = (hour - month) / (after - month)
        for fid, _name, _region, _sector, activities in _PLANTS.values():
            for activity, quantity, unit, method in activities:
                records.append(
                    ActivityRecord(
                        f"{fid}/{activity}/{month.isoformat()}", fid, month, hour, activity,
                        round(_monthly(quantity, month, local.year, years) * share, 1), unit,
                        "demo", method,
                    )
                )  # fmt: skip
    targets = [Target("CN"), Target("CN-TJ"), Target("CN-JS"), Target("CN-SD"), Target("CN-SX")]
    return facilities, records, targets


def _monthly(quantity: float, month: datetime, this_year: int, years: int) -> float:
    """A plant's activity in ``month``: a gentle growth, more in winter and summer."""
    trend = 1 + 0.03 * (month.year - this_year + years) - 0.01 * (month.year >= this_year)
    season = 1.1 if month.month in (1, 2, 7, 8, 12) else 1.0
    return round(quantity * trend * season, 1)


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
                f"{zh}{_GHG_ZH if key in _GHG else _KIND_ZH[kind]}（模拟） {en}"
                f" {'greenhouse gases' if key in _GHG else kind} (simulated)",
                kind,
                round(lon + dlon, 4),
                round(lat + dlat, 4),
                {"city": en, "city_zh": zh}
                | ({"facility": _PLANTS[key][0]} if kind == "cems" and not round_ else {})
                | ({"noise_zone": _NOISE_ZONES[key]} if kind == "noise" else {})
                | ({"measures": "co2,ch4,n2o", "region": _GHG[key]} if key in _GHG else {}),
                simulated=True,
            )
        )
    return out


#: Soil sampling points (id suffix, city zh, city en, lon, lat, land use, sample: metals mg/kg
#: and pH) — one clean paddy, one orchard above a screening value (cadmium), one near a
#: smelter above an intervention value (GB 15618-2018).
_SOIL: Final = (
    ("CHANGSHA", "长沙", "Changsha", 112.9388, 28.2282, "paddy",
     {"cd": 0.21, "hg": 0.18, "as": 12.0, "pb": 35.0, "cr": 80.0, "cu": 28.0, "ni": 30.0,
      "zn": 95.0, "ph": 6.2}),
    ("SHIJIAZHUANG", "石家庄", "Shijiazhuang", 114.5149, 38.0428, "orchard",
     {"cd": 0.9, "hg": 0.4, "as": 18.0, "pb": 60.0, "cr": 110.0, "cu": 60.0, "ni": 45.0,
      "zn": 180.0, "ph": 7.8}),
    ("ZHUZHOU", "株洲", "Zhuzhou", 113.1340, 27.8274, "other",
     {"cd": 3.2, "hg": 0.9, "as": 45.0, "pb": 420.0, "cr": 150.0, "cu": 90.0, "ni": 50.0,
      "zn": 600.0, "ph": 5.8}),
)  # fmt: skip


#: A development-land site investigation (GB 36600-2018): a former chemical plant in Zhuzhou
#: planned for housing (class 1 land). Boreholes (id suffix, lon, lat) and their samples by
#: depth (m → metals, mg/kg): one clean, one above the lead screening value near the surface,
#: one above the cadmium intervention value at depth.
_SITE_NAME: Final = "株洲化工厂旧址 Zhuzhou former chemical plant"
_SITE: Final = (
    ("BH01", 113.1702, 27.8661, {0.5: {"as": 12.0, "cd": 1.2, "pb": 85.0, "cu": 40.0, "hg": 0.3,
                                       "ni": 35.0, "soil_cr6": 0.5},
                                 2.0: {"as": 10.0, "cd": 0.8, "pb": 60.0, "cu": 35.0, "hg": 0.2,
                                       "ni": 30.0, "soil_cr6": 0.4}}),
    ("BH02", 113.1712, 27.8664, {0.5: {"as": 18.0, "cd": 6.5, "pb": 520.0, "cu": 210.0,
                                       "hg": 1.1, "ni": 48.0, "soil_cr6": 1.2},
                                 2.0: {"as": 15.0, "cd": 3.0, "pb": 260.0, "cu": 120.0,
                                       "hg": 0.6, "ni": 40.0, "soil_cr6": 0.8}}),
    ("BH03", 113.1707, 27.8656, {0.5: {"as": 16.0, "cd": 18.0, "pb": 350.0, "cu": 180.0,
                                       "hg": 0.9, "ni": 45.0, "soil_cr6": 1.0},
                                 3.0: {"as": 14.0, "cd": 52.0, "pb": 300.0, "cu": 150.0,
                                       "hg": 0.7, "ni": 42.0, "soil_cr6": 0.9}}),
)  # fmt: skip


def demo_soil_points(prefix: str = "SIM") -> list[Station]:
    """Soil sampling points (kind ``soil``): sampled now and then, never online — farmland
    points (GB 15618-2018) and the boreholes of a development-land site (GB 36600-2018), one
    station per borehole and depth."""
    farmland = [
        Station(
            f"{prefix}-SOIL-{key}",
            f"{zh}{_KIND_ZH['soil']}（模拟） {en} soil sampling point (simulated)",
            "soil",
            lon,
            lat,
            {"city": en, "city_zh": zh, "land_use": land_use},
            simulated=True,
        )
        for key, zh, en, lon, lat, land_use, _ in _SOIL
    ]
    site = [
        Station(
            f"{prefix}-SITE-{key}-{depth:g}m",
            f"{key} {depth:g} m（模拟） {key} at {depth:g} m (simulated)",
            "soil",
            lon,
            lat,
            {
                "city": "Zhuzhou",
                "city_zh": "株洲",
                "site": _SITE_NAME,
                "land_class": 1,
                "point": f"{prefix}-SITE-{key}",
                "depth_m": depth,
            },
            simulated=True,
        )
        for key, lon, lat, depths in _SITE
        for depth in depths
    ]
    return farmland + site


#: Hours of history the demo starts with.
HISTORY_HOURS: Final = 48
#: The last hours of history at one reading a minute (as the live devices send); before
#: them one every :data:`HISTORY_STEP_MINUTES` minutes — each counts for that many minutes
#: of the hour, so the hours are complete while the backfill stays small. The minute readings
#: cover more than the hourly job's QC context (6 h before the hours it recomputes), so that
#: later runs, which see minute and live readings around them, never judge a coarse hour; the
#: coarse readings outnumber them, so that the first run (whose sampling interval is the
#: median spacing) counts 5 minutes for each.
MINUTE_HOURS: Final = 7
HISTORY_STEP_MINUTES: Final = 5
#: The pollution episode: cities, the hour of its peak yesterday (bureau time; whole in
#: yesterday, so that yesterday's daily AQI and daily means — what the daily alerts look at —
#: show it whenever the demo starts) and its length (hours).
EPISODE_STATIONS: Final = ("SIM-BEIJING", "SIM-SHENYANG", "SIM-ZHENGZHOU", "SIM-XIAN")
EPISODE_PEAK_HOUR: Final = 14
EPISODE_HOURS: Final = 16
#: Added at the episode's peak (µg/m³; CO mg/m³): hourly PM2.5 above 250 (严重污染), the
#: day's mean above 115 (daily AQI 中度污染 or worse).
EPISODE_PEAK: Final = {"pm25": 280.0, "pm10": 330.0, "no2": 45.0, "co": 1.4, "so2": 10.0}
#: Gaps: station → (hours ago the gap starts, its length in hours): nothing was received.
GAPS: Final = {
    "SIM-SHANGHAI": (30, 4),
    "SIM-WUHAN": (40, 6),
    "SIM-NANJING": (12, 3),
    "SIM-LHASA": (20, 2),
}
#: The faulty device: its PM2.5 sensor stuck at one value (QC flatline) for some recent hours.
FAULTY: Final = ("SIM-CHENGDU", "pm25")
FAULTY_FROM_HOURS_AGO: Final = 7
FAULTY_HOURS: Final = 4
#: The plant whose stack measures more than its activity data say: the deliberate finding
#: of "CEMS against calculation" (+18 %); the others agree within a few percent, as real
#: measurement and calculation do (:data:`CEMS_BIAS`).
FINDING_FACILITY: Final = "DEMO-TY-CEMENT"
CEMS_BIAS: Final = {
    "DEMO-NJ-GAS": -0.02,
    "DEMO-TJ-COAL": 0.03,
    "DEMO-JN-STEEL": -0.01,
    FINDING_FACILITY: 0.18,
}
#: Flue-gas CO₂ of the demo stacks (mg/m³, dry, standard state, about 7.6 % by volume).
STACK_CO2_MG_M3: Final = 150_000.0


def plant_co2_t_per_hour(now: datetime, tz: str = "Asia/Shanghai") -> dict[str, float]:
    """Scope-1 CO₂ of each demo plant in the month of ``now`` per hour (t/h), from its demo
    activity data accounted as the ``carbon-inventory`` job does."""
    zone = ZoneInfo(tz)
    local = now.astimezone(zone)
    month = datetime(local.year, local.month, 1, tzinfo=zone)
    after = (month + timedelta(days=32)).replace(day=1)
    facilities = [Facility(f, n, r, s) for f, n, r, s, _ in _PLANTS.values()]
    records = [
        ActivityRecord(
            f"{fid}/{a}", fid, month, after, a, _monthly(q, month, local.year, 4), u, "demo", m
        )
        for fid, _n, _r, _s, activities in _PLANTS.values()
        for a, q, u, m in activities
    ]
    rows, _ = account(records, facilities, tz=tz)
    rows = rows[(rows["scope"] == 1) & (rows["gas"] == "CO2")]
    hours = (after - month).total_seconds() / 3600
    return {str(f): float(t) / hours for f, t in rows.groupby("facility")["tonnes"].sum().items()}


def stack_levels(
    stations: Sequence[Station], now: datetime, tz: str = "Asia/Shanghai"
) -> dict[str, dict[str, float]]:
    """CEMS station → daily-mean ``flue_co2`` (mg/m³) and ``flue_flow`` (m³/s) whose product is
    its plant's calculated CO₂ off by the plant's :data:`CEMS_BIAS`."""
    rates = plant_co2_t_per_hour(now, tz)
    out = {}
    for s in stations:
        facility = s.attributes.get("facility")
        if s.kind != "cems" or facility not in rates:
            continue
        t_h = rates[str(facility)] * (1 + CEMS_BIAS.get(str(facility), 0.0))
        # t/h = mg/m³ × m³/s × 3600 s/h × 1e-9 t/mg
        out[s.id] = {"flue_co2": STACK_CO2_MG_M3, "flue_flow": t_h / (STACK_CO2_MG_M3 * 3.6e-6)}
    return out


def _history_times(now: datetime) -> npt.NDArray[np.int64]:
    """UTC instants (ns) of the history readings before ``now`` (floored to the minute)."""
    end = pd.Timestamp(now).tz_convert("UTC").floor("min")
    dense_from = end - pd.Timedelta(hours=MINUTE_HOURS)
    coarse = pd.date_range(
        (end - pd.Timedelta(hours=HISTORY_HOURS)).floor("h"),
        dense_from - pd.Timedelta(minutes=1),
        freq=f"{HISTORY_STEP_MINUTES}min",
    )
    dense = pd.date_range(dense_from, end - pd.Timedelta(minutes=1), freq="min")
    return np.concatenate([coarse.as_unit("ns").asi8, dense.as_unit("ns").asi8])


def episode_peak(now: datetime, tz: str = "Asia/Shanghai") -> datetime:
    """The pollution episode's peak: yesterday at :data:`EPISODE_PEAK_HOUR` (bureau time)."""
    local = now.astimezone(ZoneInfo(tz))
    yesterday = (local - timedelta(days=1)).date()
    return datetime(
        yesterday.year, yesterday.month, yesterday.day, EPISODE_PEAK_HOUR, tzinfo=ZoneInfo(tz)
    )


def demo_history(
    stations: Sequence[Station],
    now: datetime,
    *,
    seed: int = 14,
    tz: str = "Asia/Shanghai",
) -> pd.DataFrame:
    """48 hours of plausible readings of ``stations`` up to ``now`` (pure: the same arguments
    give the same readings).

    Columns ``station, parameter, time`` (aware UTC), ``value`` (canonical unit), ``flag``.
    Each online stream follows its parameter's daily cycle (bureau time ``tz``) around the same
    level as the live simulator's, with noise; on top: the pollution episode at
    :data:`EPISODE_STATIONS`, the :data:`GAPS`, the stuck sensor :data:`FAULTY`, CEMS stacks
    sized to their plants' activity data (:func:`stack_levels`). Soil sampling points get one
    sample (every metal and pH at one time) a day ago.
    """
    times = _history_times(now)
    end_ns = int(pd.Timestamp(now).tz_convert("UTC").floor("min").value)
    hours_ago = (end_ns - times) / 3.6e12
    zone = ZoneInfo(tz)
    offset = zone.utcoffset(now.replace(tzinfo=None)) or timedelta(0)
    local_hour = ((times / 3.6e12) + offset.total_seconds() / 3600) % 24
    peak = episode_peak(now, tz)
    peak_ago = (end_ns - pd.Timestamp(peak).value) / 3.6e12
    episode = np.where(
        np.abs(hours_ago - peak_ago) < EPISODE_HOURS / 2,
        0.5 + 0.5 * np.cos(2 * np.pi * (hours_ago - peak_ago) / EPISODE_HOURS),
        0.0,
    )
    stacks = stack_levels(stations, now, tz)
    # readings of last month: the stacks follow last month's activity (a plant's output
    # changes from month to month)
    month_start = pd.Timestamp(now).tz_convert(zone).replace(day=1).normalize()
    last_month = times < month_start.value
    rate_now = plant_co2_t_per_hour(now, tz)
    rate_before = plant_co2_t_per_hour(month_start.to_pydatetime() - timedelta(hours=1), tz)
    frames: list[pd.DataFrame] = []
    for s in stations:
        if s.kind == "soil":
            frames.append(_soil_sample(s, end_ns))
            continue
        if s.kind == "radiation":  # a weekly aerosol filter's laboratory result
            frames.append(_aerosol_sample(s, end_ns))
        keep = np.ones(len(times), dtype=bool)
        if s.id in GAPS:
            start, length = GAPS[s.id]
            keep &= ~((hours_ago <= start) & (hours_ago > start - length))
        for parameter in station_parameters(s):
            _, amplitude, peak_hour, noise = PROFILE[parameter]
            level = stacks.get(s.id, {}).get(parameter, stream_level(s.id, parameter))
            rng = np.random.default_rng([seed, _seed(s.id + parameter) % 2**32])
            cycle = np.cos(2 * np.pi * (local_hour - peak_hour) / 24)
            values = level * (1 + amplitude * cycle) * (1 + rng.normal(0, noise, len(times)))
            facility = str(s.attributes.get("facility", ""))
            if parameter == "flue_flow" and s.id in stacks and facility in rate_now:
                ratio = rate_before[facility] / rate_now[facility]
                values = np.where(last_month, values * ratio, values)
            if s.id in EPISODE_STATIONS and parameter in EPISODE_PEAK:
                values = values + EPISODE_PEAK[parameter] * episode
            if (s.id, parameter) == FAULTY:
                stuck = (hours_ago <= FAULTY_FROM_HOURS_AGO) & (
                    hours_ago > FAULTY_FROM_HOURS_AGO - FAULTY_HOURS
                )
                values = np.where(stuck, np.float64(round(level * 0.4, 1)), values)
            p = lookup(parameter)
            values = np.clip(values, p.valid_min, p.valid_max).round(3).astype(np.float64)
            frames.append(
                pd.DataFrame(
                    {
                        "station": s.id,
                        "parameter": parameter,
                        "time": pd.to_datetime(times[keep], utc=True),
                        "value": values[keep],
                        "flag": "N",
                    }
                )
            )
    columns = ["station", "parameter", "time", "value", "flag"]
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True)[columns]


def _soil_sample(s: Station, end_ns: int) -> pd.DataFrame:
    """One laboratory sample of a soil point, taken a day before ``end_ns`` at 10:00 UTC."""
    if "depth_m" in s.attributes:  # a borehole of the development-land site, at a depth
        key = str(s.attributes["point"]).rsplit("-", 1)[-1]
        depths = next(d for k, _lon, _lat, d in _SITE if k == key)
        sample: dict[str, float] = depths[float(s.attributes["depth_m"])]
    else:
        sample = next(v for key, *_, v in _SOIL if s.id.endswith(f"SOIL-{key}"))
    when = pd.Timestamp(end_ns, tz="UTC").floor("D") - pd.Timedelta(hours=14)
    return pd.DataFrame(
        {
            "station": s.id,
            "parameter": list(sample),
            "time": when,
            "value": list(sample.values()),
            "flag": "N",
        }
    )


#: A radiation station's aerosol filter (mBq/m³): typical of China's national network
#: (⁷Be from cosmic rays, gross β mostly ²¹⁰Pb, ¹³⁷Cs near the detection limit).
_AEROSOL: Final = {
    "aerosol_gross_alpha": 0.12,
    "aerosol_gross_beta": 1.1,
    "aerosol_be7": 3.5,
    "aerosol_cs137": 0.0012,
}


def _aerosol_sample(s: Station, end_ns: int) -> pd.DataFrame:
    """The laboratory result of a radiation station's aerosol filter, taken a day before
    ``end_ns`` (00:00 UTC)."""
    when = pd.Timestamp(end_ns, tz="UTC").floor("D") - pd.Timedelta(days=1)
    factor = 0.8 + (_seed(s.id) % 400) / 1000  # 0.8–1.2, fixed per station
    return pd.DataFrame(
        {
            "station": s.id,
            "parameter": list(_AEROSOL),
            "time": when,
            "value": [round(v * factor, 5) for v in _AEROSOL.values()],
            "flag": "N",
        }
    )


#: The provenance of the demo's history: a file import by the user ``demo``.
HISTORY_SOURCE: Final = Source("file", user="demo", file="ecosense demo history (simulated)")


def history_observations(frame: pd.DataFrame) -> list[Observation]:
    """The rows of :func:`demo_history` as observations (instantaneous readings, the same
    streams the live demo devices write)."""
    times = frame["time"].dt.to_pydatetime()
    return [
        Observation(st, p, t, float(v), f)
        for st, p, t, v, f in zip(
            frame["station"], frame["parameter"], times, frame["value"], frame["flag"], strict=True
        )
    ]


# --------------------------------------------------------------------------- ecology
#: The demo's NDVI years: the six summers before ``now``'s year (1 July, bureau time).
NDVI_YEARS: Final = 6
#: The demo NDVI grid: 0.25° cells over China's extent (WGS 84).
NDVI_WEST, NDVI_NORTH, NDVI_CELL, NDVI_SHAPE = 73.0, 54.0, 0.25, (144, 252)
#: The demo land-cover grid: 100 m cells (1 ha) in UTM zone 50N, on Beijing's southern edge.
LANDCOVER_ORIGIN, LANDCOVER_CELL, LANDCOVER_SHAPE = (440_000.0, 4_410_000.0), 100.0, (60, 80)
#: land-cover classes of the demo (GB/T 21010 first-level names)
LANDCOVER_CLASSES: Final = {1: "cropland 耕地", 2: "forest 林地", 3: "built-up 建设用地"}


def demo_ndvi(year: int, first_year: int) -> npt.NDArray[np.float32]:
    """A summer NDVI field over China (pure, synthetic): greener to the south-east, sparse in
    the north-west deserts; the east greening by 0.012 a year, the north-west drying by
    0.004 a year, from ``first_year``; rows north to south on the :data:`NDVI_SHAPE` grid."""
    rows, cols = NDVI_SHAPE
    lat = NDVI_NORTH - NDVI_CELL * (np.arange(rows) + 0.5)
    lon = NDVI_WEST + NDVI_CELL * (np.arange(cols) + 0.5)
    lon2, lat2 = np.meshgrid(lon, lat)
    wet = np.clip((lon2 - 85) / 35, 0, 1) * np.clip((50 - lat2) / 25, 0, 1)  # 0 dry … 1 humid
    base = 0.08 + 0.72 * wet
    years = year - first_year
    change = np.where(lon2 > 105, 0.012, np.where(lon2 < 95, -0.004, 0.0)) * years
    ripple = 0.02 * np.sin(lon2 / 3.0) * np.cos(lat2 / 4.0)
    out: npt.NDArray[np.float32] = np.clip(base + change + ripple, -0.1, 0.92).astype(np.float32)
    return out


def demo_landcover(changed: bool) -> npt.NDArray[np.uint8]:
    """Classes on the :data:`LANDCOVER_SHAPE` grid: cropland with a belt of forest; when
    ``changed``, the city has grown over the northern cropland (built-up) and the forest belt
    has widened (afforestation)."""
    rows, cols = LANDCOVER_SHAPE
    out = np.ones((rows, cols), dtype=np.uint8)
    out[:, 60:] = 2
    if changed:
        out[:15, :45] = 3
        out[:, 52:60] = 2
    return out
