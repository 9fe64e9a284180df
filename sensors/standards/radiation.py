"""Ambient gamma dose rate against a station's reference background range.

Source: ``docs/standards/radiation.md``. Automatic stations report the air absorbed dose rate
in nGy/h (HJ 61-2021; HJ 1009). Bureaus publish a reference background range per station
(e.g. 69.3–266.9 nGy/h); a reading outside it is an investigation trigger. There are no
numeric national alert levels to apply; the station's range is the rule.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

#: The national background survey's open-field range, 1983–1990 (nGy/h): a fallback only.
NATIONAL_OPEN_FIELD: Final = (2.4, 340.8)


def background_status(
    dose_rates: npt.ArrayLike, background: tuple[float, float]
) -> npt.NDArray[np.object_]:
    """``"below"``, ``"within"`` or ``"above"`` the station's background range ``(low, high)``
    (nGy/h, both ends inside) for each dose rate; ``None`` where a value is missing.

    Raises
    ------
    ValueError
        when the range is not ``low ≤ high`` with finite, non-negative ends.
    """
    low, high = background
    if not (np.isfinite(low) and np.isfinite(high) and 0 <= low <= high):
        raise ValueError(f"background range {background!r} is not 0 ≤ low ≤ high (nGy/h)")
    v = np.asarray(dose_rates, dtype=np.float64)
    out = np.where(v < low, "below", np.where(v > high, "above", "within")).astype(object)
    out[np.isnan(v)] = None
    return out
