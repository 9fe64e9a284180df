"""Hypothesis strategies for EcoSense data, public so that users' tests can reuse them.

Needs ``hypothesis`` (a test dependency): import this module only from tests.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import strategies as st

from sensors.flags import FLAGS
from sensors.observations import Observation
from sensors.parameters import PARAMETERS

#: Any JSON value (what a misbehaving device may send).
json_values: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)

_codes = [p.code for p in PARAMETERS] + [c for p in PARAMETERS for c in p.hj212]


def reading_items(stations: tuple[str, ...] = ("S1", "S2")) -> st.SearchStrategy[dict[str, Any]]:
    """JSON items of ``POST /api/v1/observations``: often valid, sometimes subtly not."""
    return st.fixed_dictionaries(
        {},
        optional={
            "station": st.sampled_from(stations) | json_values,
            "parameter": st.sampled_from([*_codes, "xx"]) | json_values,
            "time": st.sampled_from(
                ["2026-11-28T07:00:00+08:00", "2026-11-28T07:00:00", "2026-11-27T23:00:00Z"]
            )
            | json_values,
            "value": st.floats() | st.integers() | json_values,
            "unit": st.sampled_from(["ug/m3", "mg/m3", "ppb", "mg/L", "%"]) | json_values,
            "flag": st.sampled_from([*FLAGS, "?"]) | json_values,
        },
    )


def observations(station: str = "S1") -> st.SearchStrategy[Observation]:
    """Valid canonical observations of ``station``, within each parameter's plausible range."""

    @st.composite
    def build(draw: st.DrawFn) -> Observation:
        p = draw(st.sampled_from(PARAMETERS))
        value = draw(st.floats(min_value=p.valid_min, max_value=p.valid_max))
        past = st.integers(0, 6 * 365 * 86400)  # 2020–2025: never ahead of the clock
        t = datetime(2020, 1, 1, tzinfo=UTC) + timedelta(seconds=draw(past))
        return Observation(station, p.code, t, value, draw(st.sampled_from(list(FLAGS))))

    return build()
