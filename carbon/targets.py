"""Carbon-peak and carbon-neutrality targets: a region's trajectory so far, a projection and the
gap.

- **Trajectory**: net annual emissions (t CO₂e; inventory minus sinks) by year.
- **Projection**: the least-squares linear trend of the last ``window`` years (default 5),
  continued to the neutrality year. A trend is a planning aid, not a forecast; the method is
  stated on every result.
- **Peak**: the year of the highest value over history and projection; on track when it is no
  later than the target year (China: before 2030).
- **Neutrality**: the required path falls linearly from the latest year's value to zero in the
  neutrality year (China: 2060); the gap each year is projection − required path, and the gap in
  the neutrality year is the projected net emissions then.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from carbon.errors import CarbonError

PROJECTION_METHOD = "least-squares linear trend of the last {window} years"


@dataclass(frozen=True)
class Target:
    """A region's targets: peak no later than ``peak_year``, net zero in ``neutral_year``."""

    region: str
    peak_year: int = 2030
    neutral_year: int = 2060


@dataclass(frozen=True)
class Tracking:
    """Where a region stands against its :class:`Target` (tonnes CO₂e per year)."""

    target: Target
    history: pd.Series
    projection: pd.Series
    required: pd.Series
    gap: pd.Series
    slope_t_per_year: float
    projected_peak_year: int
    peak_on_track: bool
    neutrality_gap_t: float
    method: str


def read_targets(path: Path) -> list[Target]:
    """Targets from a CSV/Excel file with ``region, peak_year, neutral_year``.

    Raises
    ------
    CarbonError
        for a missing column, an unknown region, a year that is not a year, a neutrality year
        not after the peak year, or a region given twice.
    """
    from carbon.activity import read_table, require_columns
    from carbon.regions import chain

    frame = read_table(path)
    require_columns(frame, ("region", "peak_year", "neutral_year"), str(path))
    out: dict[str, Target] = {}
    for i, row in enumerate(frame.to_dict("records"), start=2):
        where = f"{path.name} line {i}"
        region = str(row["region"]).strip()
        try:
            chain(region)
            peak, neutral = int(row["peak_year"]), int(row["neutral_year"])
        except (CarbonError, ValueError) as exc:
            raise CarbonError(f"{where}: {exc}") from None
        if neutral <= peak:
            raise CarbonError(f"{where}: neutral_year {neutral} is not after peak_year {peak}")
        if region in out:
            raise CarbonError(f"{where}: region {region} is given twice")
        out[region] = Target(region, peak, neutral)
    return list(out.values())


def track(annual: Mapping[int, float] | pd.Series, target: Target, window: int = 5) -> Tracking:
    """Track net annual emissions (year → t CO₂e) against ``target``.

    Raises
    ------
    CarbonError
        with fewer than 2 years, a gap in the years, a non-finite value, or a latest year at or
        after the neutrality year.
    """
    history = pd.Series(annual, dtype="float64").sort_index()
    history.index = history.index.astype(int)
    if len(history) < 2:
        raise CarbonError(f"{target.region}: at least 2 years of emissions are needed")
    years = history.index.to_numpy()
    if not (np.diff(years) == 1).all():
        raise CarbonError(f"{target.region}: the years must follow each other (got {list(years)})")
    if not np.isfinite(history.to_numpy()).all():
        raise CarbonError(f"{target.region}: emissions must be numbers")
    latest = int(years[-1])
    if latest >= target.neutral_year:
        raise CarbonError(f"{target.region}: the history reaches the neutrality year")
    recent = history.iloc[-window:]
    slope, _ = np.polyfit(recent.index.to_numpy(dtype=float), recent.to_numpy(), 1)
    ahead = np.arange(latest + 1, target.neutral_year + 1)
    projection = pd.Series(
        history.iloc[-1] + slope * (ahead - latest), index=ahead, dtype="float64"
    )
    required = pd.Series(
        history.iloc[-1] * (target.neutral_year - ahead) / (target.neutral_year - latest),
        index=ahead,
        dtype="float64",
    )
    whole = pd.concat([history, projection])
    peak_year = int(whole.to_numpy().argmax()) + int(whole.index[0])
    return Tracking(
        target,
        history,
        projection,
        required,
        projection - required,
        float(slope),
        peak_year,
        peak_year <= target.peak_year,
        float(projection.iloc[-1]),
        PROJECTION_METHOD.format(window=min(window, len(history))),
    )


def comparable_years(by_part: pd.DataFrame) -> tuple[pd.Series, dict[int, list[str]]]:
    """A region's annual totals (t CO₂e) over the years its data cover **the whole region**.

    ``by_part`` is year × part (the region's sub-regions one level down — provinces of ``CN``,
    cities of a province — or facilities at the region's own level), NaN where a part has no
    emissions that year. A year counts only when every part with data in any year reported in
    it: one imported Beijing year is Beijing's year, not the nation's. Returns the totals of
    those years and, for each year left out, the parts it lacks.
    """
    if by_part.empty:
        return pd.Series(dtype="float64"), {}
    present = by_part.notna()
    complete = present.all(axis=1)
    totals = by_part[complete].sum(axis=1).astype("float64")
    totals.index = totals.index.astype(int)
    left_out = {
        int(str(year)): [str(p) for p in by_part.columns[~row.to_numpy()]]
        for year, row in present[~complete].iterrows()
    }
    return totals.sort_index(), left_out


def track_region(by_part: pd.DataFrame, target: Target, window: int = 5) -> Tracking:
    """:func:`track` over the latest run of consecutive years whose data cover the whole
    region (:func:`comparable_years`).

    Raises
    ------
    CarbonError
        (its message begins with the region, once) when fewer than 2 such consecutive years
        remain — naming the years left out and the parts they lack — or as :func:`track`.
    """
    totals, left_out = comparable_years(by_part)
    years = list(totals.index)
    run = years[-1:]
    for year in reversed(years[:-1]):  # the latest run of consecutive complete years
        if year != run[0] - 1:
            break
        run.insert(0, year)
    if len(run) < 2:
        missing = "; ".join(
            f"{year} lacks {', '.join(parts)}" for year, parts in sorted(left_out.items())
        )
        have = ", ".join(map(str, years)) or "none"
        raise CarbonError(
            f"{target.region}: too little data covering the whole region (at least 2 consecutive"
            f" years in which every part with emissions reported are needed; such years: {have})"
            + (f": {missing}" if missing else "")
        )
    return track(totals.loc[run], target, window)
