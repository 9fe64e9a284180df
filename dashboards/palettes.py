"""Colour-blind-safe colours of the dashboard (pure: no I/O, no Streamlit).

- :data:`STATUS`: the stations' states in the Okabe–Ito palette (Okabe & Ito, "Color Universal
  Design", 2008), distinguishable with every common colour-vision deficiency; a state is never
  shown by its colour alone (the legend, the tooltip and the table beside the map name it).
- :data:`RAMPS`: the dashboard's one table of raster colour ramps (the one map's overlays,
  DEM, zonal choropleth and PM2.5 surface), as ``(position 0–1, RGB)`` stops: ``viridis``
  and ``cividis`` (perceptually uniform and readable in grey and by deuteranopes/protanopes,
  from matplotlib's colormaps), ``ndvi`` (= ``viridis``: low vegetation dark blue-purple, dense
  vegetation yellow-green) to replace the red→green NDVI ramp, and ``grey``.
- The AQI colours are not here: they stay as HJ 633-2026 Table 1 prescribes
  (:data:`sensors.standards.aqi.CATEGORIES`), always with the category's words beside them.
"""

from __future__ import annotations

from typing import Final

RGB = tuple[int, int, int]
Ramp = tuple[tuple[float, RGB], ...]

#: Okabe–Ito colours by name (RGB)
OKABE_ITO: Final[dict[str, RGB]] = {
    "black": (0, 0, 0),
    "orange": (230, 159, 0),
    "sky_blue": (86, 180, 233),
    "bluish_green": (0, 158, 115),
    "yellow": (240, 228, 66),
    "blue": (0, 114, 178),
    "vermillion": (213, 94, 0),
    "reddish_purple": (204, 121, 167),
}
#: neutral grey for "no data" (not a hue: it reads as "nothing")
GREY: Final[RGB] = (153, 153, 153)

#: station state → colour (:data:`dashboards.views.STATES`)
STATUS: Final[dict[str, RGB]] = {
    "online": OKABE_ITO["bluish_green"],
    "delayed": OKABE_ITO["orange"],
    "offline": OKABE_ITO["vermillion"],
    "no_data": GREY,
    "sampled": OKABE_ITO["blue"],
}

#: matplotlib's viridis, 9 evenly spaced stops
VIRIDIS: Final[Ramp] = (
    (0.0, (68, 1, 84)),
    (0.125, (71, 44, 122)),
    (0.25, (59, 81, 139)),
    (0.375, (44, 113, 142)),
    (0.5, (33, 144, 141)),
    (0.625, (39, 173, 129)),
    (0.75, (92, 200, 99)),
    (0.875, (170, 220, 50)),
    (1.0, (253, 231, 37)),
)
#: matplotlib's cividis, 9 evenly spaced stops
CIVIDIS: Final[Ramp] = (
    (0.0, (0, 34, 78)),
    (0.125, (18, 53, 112)),
    (0.25, (59, 73, 108)),
    (0.375, (87, 93, 109)),
    (0.5, (112, 113, 115)),
    (0.625, (138, 134, 120)),
    (0.75, (165, 156, 116)),
    (0.875, (195, 179, 105)),
    (1.0, (254, 232, 56)),
)
#: the colour-blind-safe ramps for rasters; ``ndvi`` is the one to use for the NDVI overlay
RAMPS: Final[dict[str, Ramp]] = {
    "ndvi": VIRIDIS,
    "viridis": VIRIDIS,
    "cividis": CIVIDIS,
    "grey": ((0.0, (20, 20, 20)), (1.0, (240, 240, 240))),
}


def hex_colour(rgb: RGB) -> str:
    """``#009e73`` for ``(0, 158, 115)``."""
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def relative_luminance(rgb: RGB) -> float:
    """WCAG 2.x relative luminance (0 black … 1 white) of an sRGB colour."""

    def channel(c: int) -> float:
        s = c / 255
        return s / 12.92 if s <= 0.04045 else ((s + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b
