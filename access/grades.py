"""Default grades (数据分级) per dataset and per station kind, with their reasons.

A station's readings and every series derived from them (aggregates, assessments, QC flags)
carry the station's grade: the default of its kind, unless an administrator set another
(``ecosense classify station ID --class GRADE``). README "Security · 安全" has the table.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from access.policy import Dataset, Grade

#: station kind → (default grade, reason)
STATION_KIND_GRADES: Final[Mapping[str, tuple[Grade, str]]] = {
    "air": (Grade.PUBLIC, "ambient air quality is published in real time by law"),
    "water": (Grade.PUBLIC, "surface-water automatic stations are published in real time"),
    "radiation": (Grade.PUBLIC, "ambient gamma dose rate is published in real time"),
    "noise": (Grade.PUBLIC, "functional-zone noise monitoring is published"),
    "met": (Grade.PUBLIC, "meteorological context for the public readings"),
    "wastewater": (
        Grade.SENSITIVE,
        "pollution-source automatic monitoring of one enterprise: discharge flow reveals its "
        "production; the enterprise discloses its own validated results",
    ),
    "cems": (
        Grade.SENSITIVE,
        "pollution-source automatic monitoring of one plant: flue flow and concentrations "
        "reveal its load; the plant discloses its own validated results",
    ),
    "soil": (
        Grade.SENSITIVE,
        "point-level soil contamination bears on land use and value; published in aggregate",
    ),
}

#: dataset → (grade, reason), for the datasets that are not one station's readings
DATASET_GRADES: Final[Mapping[str, tuple[Grade, str]]] = {
    "health": (Grade.PUBLIC, "whether the service answers"),
    "stations": (Grade.PUBLIC, "station metadata: where monitoring happens is public"),
    "city-aggregates": (Grade.PUBLIC, "city air quality is published"),
    "layers": (
        Grade.PUBLIC,
        "administrative, basin and planning boundaries of the one map: territorial-space data"
        " published as a base",
    ),
    "zonal-statistics": (
        Grade.PUBLIC,
        "regional statistics of published rasters (vegetation, water, elevation) over those"
        " boundaries",
    ),
    "region-emissions": (
        Grade.INTERNAL,
        "regional inventories before the bureau publishes them: a region with few facilities"
        " reveals each one's emissions",
    ),
    "alerts": (Grade.INTERNAL, "working notices for the bureau's staff, not yet verified"),
    "webhook-events": (
        Grade.SENSITIVE,
        "delivery records carry the alerts and the receivers' endpoints",
    ),
    "facility-activity": (
        Grade.SENSITIVE,
        "an enterprise's production, fuel and energy data: commercial secrets",
    ),
    "facility-emissions": (
        Grade.SENSITIVE,
        "an enterprise's carbon and pollutant emissions before verification",
    ),
    "reviews": (Grade.SENSITIVE, "manual review decisions on readings, before publication"),
    "field-units": (
        Grade.SENSITIVE,
        "commanding a field unit (clock, intervals) changes what a station reports",
    ),
    "device-credentials": (Grade.RESTRICTED, "device API tokens and HJ 212 passwords"),
    "users": (Grade.RESTRICTED, "accounts, roles and credentials"),
    "grades": (Grade.RESTRICTED, "the classification itself decides who sees what"),
    "audit": (Grade.RESTRICTED, "who read and changed what; tamper evidence"),
}

#: grade of an unknown station kind (fail closed)
UNKNOWN_KIND_GRADE: Final = Grade.RESTRICTED


def station_grade(kind: str, override: Grade | None = None) -> Grade:
    """A station's grade: its ``override`` when set, else the default of its ``kind``."""
    if override is not None:
        return override
    default = STATION_KIND_GRADES.get(kind)
    return UNKNOWN_KIND_GRADE if default is None else default[0]


def dataset(name: str) -> Dataset:
    """The dataset ``name`` of :data:`DATASET_GRADES` with its grade (``KeyError`` for an
    unknown name)."""
    return Dataset(name, DATASET_GRADES[name][0])


def station_dataset(station: str, kind: str, override: Grade | None = None) -> Dataset:
    """One station's readings and derived series, graded by :func:`station_grade`."""
    return Dataset(f"station {station}", station_grade(kind, override), station)
