"""Automatic quality control of one stream's readings (pure, vectorised).

QC never changes or deletes a reading: it returns flags beside the raw values, a bit each.

- ``RANGE``: outside the parameter's plausible range (the dictionary's ``valid_min`` …
  ``valid_max``, canonical unit);
- ``SPIKE``: the QARTOD spike test (US IOOS, *Manual for real-time quality control*): a reading
  that departs from the mean of its two neighbours by more than half their own difference
  plus a threshold — ``spike_sigmas`` robust standard deviations of the series' first
  differences, and at least ``spike_min_delta``;
- ``FLATLINE``: part of a run of at least ``flatline_count`` consecutive identical values (a
  stuck sensor); every reading of the run is flagged;
- ``RATE``: changed faster than ``max_rate`` units per hour since the previous reading;
- ``DEVICE``: the device's own HJ 212 flag is not ``N`` (F, M, S, D, C, T, B: see
  :mod:`sensors.flags`).

A reading is valid for aggregation when its QC mask is 0.

Sound levels (the noise domain's parameters) get no spike test: a passing lorry or a night
train is a real, short peak, and the GB 3096-2008 night-time maximum rule is about exactly
those peaks; QARTOD's test would drop them (:data:`NO_SPIKE_DOMAINS`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from sensors.errors import UnknownParameterError
from sensors.parameters import lookup

RANGE: Final = 1
SPIKE: Final = 2
FLATLINE: Final = 4
RATE: Final = 8
DEVICE: Final = 16
NAMES: Final = {
    RANGE: "range",
    SPIKE: "spike",
    FLATLINE: "flatline",
    RATE: "rate",
    DEVICE: "device",
}


@dataclass(frozen=True)
class QcConfig:
    """Thresholds of the checks (units: the parameter's canonical unit; ``max_rate`` per
    hour). ``None`` turns a check off."""

    spike: bool = True
    spike_sigmas: float = 6.0
    spike_min_delta: float | None = 0.0
    flatline_count: int | None = 6
    max_rate: float | None = None
    check_range: bool = True


#: domains whose readings are not spike-tested (their short peaks are the measurement)
NO_SPIKE_DOMAINS: Final = frozenset({"noise"})


def check(
    times: pd.DatetimeIndex | pd.Series,
    values: npt.ArrayLike,
    parameter: str,
    flags: npt.ArrayLike | None = None,
    config: QcConfig = QcConfig(),
) -> npt.NDArray[np.int64]:
    """The QC mask of each reading of one stream, in time order (bits: ``RANGE`` …).

    Raises
    ------
    ValueError
        when the lengths differ or the times are not increasing.
    """
    v = np.asarray(values, dtype=np.float64)
    t = pd.DatetimeIndex(times)
    if len(t) != len(v):
        raise ValueError(f"{len(t)} times for {len(v)} values")
    if len(t) > 1 and not t.is_monotonic_increasing:
        raise ValueError("times must be in increasing order")
    mask = np.zeros(len(v), dtype=np.int64)
    if config.check_range:
        p = lookup(parameter)
        mask |= np.where((v < p.valid_min) | (v > p.valid_max), RANGE, 0)
    if config.spike and len(v) >= 3 and _domain(parameter) not in NO_SPIKE_DOMAINS:
        mask |= np.where(_spikes(v, config), SPIKE, 0)
    if config.flatline_count:
        mask |= np.where(_flatline(v, config.flatline_count), FLATLINE, 0)
    if config.max_rate is not None and len(v) > 1:
        hours = np.diff(t.as_unit("ns").asi8) / 3.6e12
        with np.errstate(divide="ignore", invalid="ignore"):
            rate = np.abs(np.diff(v)) / hours
        mask[1:] |= np.where(rate > config.max_rate, RATE, 0)
    if flags is not None:
        f = np.asarray(flags, dtype=object)
        mask |= np.where(f != "N", DEVICE, 0)
    return mask


def _domain(parameter: str) -> str | None:
    try:
        return lookup(parameter).domain
    except UnknownParameterError:
        return None


def _spikes(v: npt.NDArray[np.float64], config: QcConfig) -> npt.NDArray[np.bool_]:
    """QARTOD spike test: ``|v[i] − (v[i−1] + v[i+1])/2| − |v[i+1] − v[i−1]|/2`` above a
    threshold of ``spike_sigmas`` robust standard deviations of the series' first differences
    (1.4826 × their median absolute deviation), at least ``spike_min_delta``."""
    out = np.zeros(len(v), dtype=bool)
    if len(v) < 3:
        return out
    test = np.abs(v[1:-1] - (v[2:] + v[:-2]) / 2) - np.abs(v[2:] - v[:-2]) / 2
    diffs = np.diff(v)
    diffs = diffs[np.isfinite(diffs)]
    scale = 1.4826 * float(np.median(np.abs(diffs - np.median(diffs)))) if len(diffs) else 0.0
    if scale == 0.0 and len(diffs):
        # over half the steps equal (a regular or quantised series): the MAD says nothing, so
        # the 5–95 % range of the steps sets the scale (3.29 σ for a normal distribution) —
        # robust to the spikes themselves, unlike the standard deviation
        q05, q95 = np.quantile(diffs, [0.05, 0.95])
        scale = float(q95 - q05) / 3.29
    finite = np.abs(v[np.isfinite(v)])
    noise = 1e-9 * float(finite.max()) if len(finite) else 0.0  # rounding, not a spike
    threshold = max(config.spike_sigmas * scale, config.spike_min_delta or 0.0, noise)
    out[1:-1] = test > threshold
    return out


def _flatline(v: npt.NDArray[np.float64], count: int) -> npt.NDArray[np.bool_]:
    if len(v) == 0:
        return np.zeros(0, dtype=bool)
    change = np.concatenate([[True], v[1:] != v[:-1]])
    run_id = np.cumsum(change)
    run_length = np.bincount(run_id)[run_id]
    return np.asarray(run_length >= count, dtype=bool)


def describe(mask: int) -> list[str]:
    """The names of the checks a mask records (``["spike", "device"]``)."""
    return [name for bit, name in NAMES.items() if mask & bit]
