"""The noise page's pure helpers: the map's states in colour and in words, the exceedances."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pandas as pd

from dashboards import i18n
from dashboards.environment import exceedance_table, noise_map_table, state_of

TZ = ZoneInfo("Asia/Shanghai")
DAY = datetime(2026, 11, 26, 16, tzinfo=UTC)  # 2026-11-27 CST


def _stations() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": ["N1", "N2", "N3"],
            "name": ["Estate", "Road", "Park"],
            "lon": [116.0, 116.1, 116.2],
            "lat": [39.0, 39.1, 39.2],
            "zone": ["1", "4a", ""],
        }
    )


def _judged() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "subject": ["N1", "N2"],
            "start": [DAY, DAY],
            "label": ["night,night_max", ""],
            "details": [
                {
                    "zone": "1",
                    "night": {"level": 47.3, "limit": 45, "exceedance_db": 2.3},
                    "night_max": {"level": 62.0, "limit": 60.0, "exceedance_db": 2.0},
                },
                {"zone": "4a", "day": {"level": 66.0, "limit": 70, "exceedance_db": -4.0}},
            ],
        }
    )


def test_states_colours_and_words() -> None:
    assert state_of(None) == "none"
    assert state_of({"label": ""}) == "compliant"
    assert state_of({"label": "night"}) == "exceeding"
    with i18n.use("en"):
        shown, table = noise_map_table(_stations(), _judged(), TZ)
    assert shown["state_label"].tolist() == ["exceeding", "compliant", "not assessed"]
    assert shown["colour"].tolist()[0][:3] == [198, 40, 40]
    assert table["day"].tolist() == ["2026-11-27", "2026-11-27", "—"]
    assert table["exceeded"].tolist()[0] == "night LAeq (Ln), night maximum (Lmax)"
    assert table["exceeded"].tolist()[1:] == ["—", "—"]
    assert table["zone"].tolist() == ["1", "4a", "—"]


def test_exceedances_one_line_per_check_failed() -> None:
    with i18n.use("zh"):
        lines = exceedance_table(_judged(), {"N1": "Estate"}, TZ)
    assert len(lines) == 2
    assert lines["评价项"].tolist() == ["夜间等效声级 Ln", "夜间最大声级 Lmax"]
    assert lines["超标 dB"].tolist() == [2.3, 2.0]
    assert set(lines["站点"]) == {"Estate (N1)"}


def test_site_points_take_the_worst_risk_over_depths() -> None:
    from dashboards.environment import site_points

    samples = pd.DataFrame(
        {
            "subject": ["BH01-0.5m", "BH01-3m", "BH02-0.5m"],
            "label": ["above_screening", "above_intervention", "below_screening"],
            "details": [
                {"point": "BH01", "depth_m": 0.5, "exceedances": {"pb": "screening"}},
                {"point": "BH01", "depth_m": 3.0, "exceedances": {"cd": "intervention"}},
                {"point": "BH02", "depth_m": 0.5, "exceedances": {}},
            ],
        }
    )
    stations = pd.DataFrame(
        {"id": ["BH01-0.5m", "BH01-3m", "BH02-0.5m"], "lon": [1.0, 1.0, 2.0], "lat": [3.0] * 3}
    )
    with i18n.use("en"):
        points = site_points(samples, stations)
    assert points["id"].tolist() == ["BH01", "BH02"]
    assert points["risk"].tolist() == ["above_intervention", "below_screening"]
    assert points["depths"].tolist() == ["0.5, 3", "0.5"]
    assert points["exceeded"].tolist() == ["Cadmium, Lead", "—"]  # by name, not code
    assert points["state_label"].tolist()[0] == "above an intervention value"
    assert site_points(samples.iloc[:0], stations).empty
