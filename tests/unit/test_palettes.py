"""Colour-blind-safe colours (issue 14: "the status and NDVI colours are red/green (not
colour-blind safe)"; item 7: "colour-blind-safe palettes for status and rasters (the AQI
colours stay as the standard prescribes, always with the category's words beside them)").

An independent check: the colours are simulated as a deuteranope and a protanope see them
(Viénot, Brettel & Mollon 1999, the matrices as published by Machado et al. 2009 at severity
1.0) and must stay apart; the ramps must rise in lightness from end to end, so they read in
grey and without red–green vision.
"""

from __future__ import annotations

import itertools
import math

import pytest

from dashboards.palettes import RAMPS, STATUS, hex_colour, relative_luminance
from dashboards.views import STATES, station_table

#: Machado et al. (2009), severity 1.0, linear RGB
SIMULATE = {
    "protanopia": ((0.152286, 1.052583, -0.204868), (0.114503, 0.786281, 0.099216),
                   (-0.003882, -0.048116, 1.051998)),
    "deuteranopia": ((0.367322, 0.860646, -0.227968), (0.280085, 0.672501, 0.047413),
                     (-0.011820, 0.042940, 0.968881)),
}  # fmt: skip


def _linear(c: int) -> float:
    s = c / 255
    return s / 12.92 if s <= 0.04045 else ((s + 0.055) / 1.055) ** 2.4


def _seen(rgb: tuple[int, int, int], how: str) -> tuple[float, ...]:
    lin = [_linear(c) for c in rgb]
    return tuple(
        min(1.0, max(0.0, sum(m * v for m, v in zip(row, lin, strict=True))))
        for row in SIMULATE[how]
    )


def _distance(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    return math.dist(a, b)


@pytest.mark.parametrize("how", sorted(SIMULATE))
def test_station_states_stay_apart_without_red_green_vision(how: str) -> None:
    for (s1, c1), (s2, c2) in itertools.combinations(STATUS.items(), 2):
        assert _distance(_seen(c1, how), _seen(c2, how)) > 0.08, (s1, s2, how)


def test_the_old_red_green_states_would_fail_the_same_check() -> None:
    """The check can fail: the former online green and offline red merge for a deuteranope
    far more than the new pair does."""
    old = _distance(_seen((0, 170, 80), "deuteranopia"), _seen((200, 30, 30), "deuteranopia"))
    new = _distance(
        _seen(STATUS["online"], "deuteranopia"), _seen(STATUS["offline"], "deuteranopia")
    )
    assert new > old


@pytest.mark.parametrize("name", sorted(RAMPS))
def test_raster_ramps_rise_in_lightness(name: str) -> None:
    lum = [relative_luminance(rgb) for _, rgb in RAMPS[name]]
    assert lum == sorted(lum) and lum[-1] - lum[0] > 0.5, name
    positions = [p for p, _ in RAMPS[name]]
    assert positions[0] == 0.0 and positions[-1] == 1.0 and positions == sorted(positions)


def test_the_ndvi_ramp_is_not_red_to_green() -> None:
    (_, low), *_, (_, high) = RAMPS["ndvi"]
    assert not (low[0] > 150 and low[1] < 60 and high[1] > high[0])  # not red → green


def test_the_map_uses_the_status_palette_and_names_each_state() -> None:
    import pandas as pd

    stations = pd.DataFrame({"id": ["A"], "name": "a", "kind": "air", "lon": 1.0, "lat": 1.0})
    other = pd.DataFrame({"station": ["B"], "time": [pd.Timestamp("2026-11-28", tz="UTC")]})
    table = station_table(stations, other)
    assert table.loc[0, "colour"][:3] == list(STATUS["no_data"])
    assert table.loc[0, "state_label"] == "无数据"  # the words beside the colour (中文 default)
    assert all(STATES[s][2] == STATUS[s] for s in STATES)
    assert hex_colour((0, 158, 115)) == "#009e73"
