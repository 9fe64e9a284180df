"""Write every example file of README's walkthrough, deterministically (same bytes each run).

    python examples/make_examples.py          # rewrites the files beside this script

The files are committed, so users need not run this; it documents how they were made and
lets a test check that they are what it makes. The values are invented but realistic: a
winter day of Beijing air (a morning pollution build-up), a West Lake water day, soil lab
results, three plants with a year of monthly fuel and power records, and a small NDVI raster
over Beijing's two example basins.
"""

from __future__ import annotations

import io
import json
import math
import os
import sys
import zipfile
from pathlib import Path

# openpyxl writes its XML through lxml when lxml is installed (OWSLib, a test dependency,
# brings it) and through the standard library otherwise, with other bytes: one writer always
os.environ["OPENPYXL_LXML"] = "False"

HERE = Path(__file__).resolve().parent

STATIONS = """id,name,kind,lon,lat,city
BJ-DC,东城东四 Dongcheng Dongsi,air,116.417,39.929,北京
BJ-HD,海淀万柳 Haidian Wanliu,air,116.287,39.987,北京
HZ-XH,西湖 West Lake,water,120.141,30.251,杭州
"""

FACILITIES = """id,name,region,sector,lon,lat
BJ-GAS-1,北京东南热电 Beijing SE gas CHP,110105,1.A.1.a,116.53,39.86
BJ-CEM-1,房山水泥 Fangshan cement,110111,2.A.1,115.98,39.70
ZJ-STL-1,杭州钢铁 Hangzhou steel,330105,1.A.2,120.17,30.35
"""

TARGETS = """region,peak_year,neutral_year
CN-BJ,2025,2050
CN-ZJ,2030,2060
"""

JOB = """# A planner's carbon inventory (README "Walkthrough · 上手示例").
# The format: carbon/jobfile.py. Paths are relative to this file.
[job]
name = "Example inventory 2025"
start = "2025-01-01"
end = "2026-01-01"
facilities = "facilities.csv"
activity = ["fuel.csv"]
gwp = "AR5"
level = "province"

[outputs]
dir = "inventory-2025"
formats = ["csv", "xlsx", "html"]
"""


def readings_csv() -> str:
    """BJ-DC, 2026-11-27 (bureau time), wide layout: a build-up from 06:00, cleared at 18:00."""
    lines = ["time,pm25,pm10,no2,so2,co,o3"]
    for h in range(24):
        episode = math.exp(-(((h - 13) / 4.0) ** 2))
        pm25 = 28 + 120 * episode + 6 * math.sin(h / 3)
        pm10 = pm25 * 1.45 + 10
        no2 = 32 + 25 * math.exp(-(((h - 8) / 2.5) ** 2)) + 20 * math.exp(-(((h - 19) / 2.5) ** 2))
        so2 = 6 + 3 * episode
        co = 0.6 + 0.9 * episode
        o3 = max(4.0, 55 * math.sin(math.pi * (h - 7) / 12)) if 7 <= h <= 19 else 6.0
        lines.append(
            f"2026-11-27 {h:02d}:00,{pm25:.0f},{pm10:.0f},{no2:.0f},{so2:.0f},{co:.1f},{o3:.0f}"
        )
    return "\n".join(lines) + "\n"


def soil_csv() -> str:
    """Lab results of four soil sampling points (mg/kg), one campaign."""
    rows = [
        ("SOIL-01", "通州农田 Tongzhou farmland", 116.66, 39.90, 0.21, 24.0, 9.1, 0.08),
        ("SOIL-02", "大兴菜地 Daxing vegetable plot", 116.34, 39.73, 0.35, 31.5, 11.2, 0.12),
        ("SOIL-03", "房山厂边 Fangshan by the works", 115.99, 39.71, 0.62, 58.0, 14.8, 0.21),
        ("SOIL-04", "顺义果园 Shunyi orchard", 116.65, 40.13, 0.18, 22.3, 8.4, 0.06),
    ]
    lines = ["id,name,kind,lon,lat,time,cd,pb,as,hg"]
    for sid, name, lon, lat, cd, pb, as_, hg in rows:
        lines.append(f"{sid},{name},soil,{lon},{lat},2026-10-15,{cd},{pb},{as_},{hg}")
    return "\n".join(lines) + "\n"


def fuel_csv() -> str:
    """A year (2025) of monthly activity records of the three plants (China's guideline; coal
    with the plant's measured NCV, GJ/t, and oxidation rate, which the library has no default
    for)."""
    lines = ["facility,start,end,activity,quantity,unit,source,method,ncv,oxidation"]
    for m in range(1, 13):
        start = f"2025-{m:02d}-01"
        end = f"2025-{m + 1:02d}-01" if m < 12 else "2026-01-01"
        heating = 1.6 if m in (1, 2, 3, 11, 12) else 0.8
        lines.append(
            f"BJ-GAS-1,{start},{end},natural_gas,{round(21_000_000 * heating)},Nm3,gas meter,,,"
        )
        lines.append(f"BJ-GAS-1,{start},{end},electricity,{round(900 * heating)},MWh,grid bill,,,")
        lines.append(
            f"BJ-CEM-1,{start},{end},bituminous_coal,{9_500 + 40 * m},t,weighbridge,"
            "china,20.908,0.98"
        )
        lines.append(f"BJ-CEM-1,{start},{end},cement_clinker,{82_000 + 300 * m},t,production,,,")
        lines.append(
            f"ZJ-STL-1,{start},{end},natural_gas,{6_400_000 + 50_000 * (m % 4)},Nm3,gas meter,,,"
        )
        lines.append(
            f"ZJ-STL-1,{start},{end},crude_steel,{50_000 + 1_000 * (m % 4)},t,production,,,"
        )
        lines.append(
            f"ZJ-STL-1,{start},{end},electricity,{48_000 + 500 * (m % 3)},MWh,grid bill,,,"
        )
    return "\n".join(lines) + "\n"


def water_xlsx() -> bytes:
    """HZ-XH, 2026-11-27, long layout every 4 h (an Excel file as a lab or logger exports it)."""
    import pandas as pd

    rows = []
    for h in range(0, 24, 4):
        t = f"2026-11-27 {h:02d}:00"
        rows += [
            ("HZ-XH", "ph", t, round(7.6 + 0.1 * math.sin(h / 4), 2), "pH"),
            ("HZ-XH", "do", t, round(8.4 + 0.8 * math.sin((h - 6) / 4), 2), "mg/L"),
            ("HZ-XH", "codmn", t, round(3.1 + 0.2 * math.cos(h / 5), 2), "mg/L"),
            ("HZ-XH", "nh3n", t, round(0.32 + 0.04 * math.cos(h / 6), 3), "mg/L"),
            ("HZ-XH", "tp", t, round(0.045 + 0.005 * math.sin(h / 7), 3), "mg/L"),
        ]
    frame = pd.DataFrame(rows, columns=["station", "parameter", "time", "value", "unit"])
    buffer = io.BytesIO()
    frame.to_excel(buffer, index=False, sheet_name="readings")
    return _stable_zip(buffer.getvalue())


def _stable_zip(data: bytes) -> bytes:
    """An .xlsx (a zip) with fixed member times, so that the bytes do not change per run."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            body = src.read(info.filename)
            if info.filename == "docProps/core.xml":  # creation time written by openpyxl
                import re

                body = re.sub(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", b"2026-11-27T00:00:00Z", body)
            fixed = zipfile.ZipInfo(info.filename, date_time=(2026, 11, 27, 0, 0, 0))
            fixed.compress_type = zipfile.ZIP_DEFLATED
            dst.writestr(fixed, body)
    return out.getvalue()


#: two example basins over Beijing (WGS 84), a rough outline of each river's upper reaches
BASINS = {
    "type": "FeatureCollection",
    "name": "basins",
    "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:OGC:1.3:CRS84"}},
    "features": [
        {
            "type": "Feature",
            "properties": {"basin_id": "CHAOBAI", "name": "潮白河 Chaobai"},
            "geometry": {
                "type": "Polygon",
                "coordinates": [
                    [[116.45, 40.05], [116.85, 40.05], [116.85, 40.45], [116.45, 40.45],
                     [116.45, 40.05]]
                ],
            },
        },
        {
            "type": "Feature",
            "properties": {"basin_id": "YONGDING", "name": "永定河 Yongding"},
            "geometry": {
                "type": "Polygon",
                "coordinates": [
                    [[115.85, 39.75], [116.30, 39.75], [116.30, 40.05], [115.85, 40.05],
                     [115.85, 39.75]]
                ],
            },
        },
    ],
}  # fmt: skip


def ndvi_tif() -> bytes:
    """A 60 x 40 NDVI raster (float32, WGS 84, 0.02° cells) over Beijing, July 2026: greener
    to the north-west hills, lower in the city."""
    import numpy as np
    import rasterio
    from rasterio.io import MemoryFile
    from rasterio.transform import from_origin

    width, height, west, north, cell = 60, 40, 115.7, 40.6, 0.02
    cols, rows = np.meshgrid(np.arange(width), np.arange(height))
    lon, lat = west + (cols + 0.5) * cell, north - (rows + 0.5) * cell
    city = np.exp(-(((lon - 116.40) / 0.15) ** 2 + ((lat - 39.92) / 0.12) ** 2))
    ndvi = 0.35 + 0.35 * (lat - 39.8) / 0.8 - 0.25 * city + 0.05 * np.sin(cols / 3.0)
    data = np.clip(ndvi, -0.1, 0.9).astype("float32")
    profile = {
        "driver": "GTiff",
        "width": width,
        "height": height,
        "count": 1,
        "dtype": "float32",
        "crs": "EPSG:4326",
        "transform": from_origin(west, north, cell, cell),
        "nodata": -9999.0,
    }
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), MemoryFile() as mem:
        with mem.open(**profile) as dst:
            dst.write(data, 1)
            dst.update_tags(source="EcoSense example, synthetic")
        return bytes(mem.read())


STAC_ITEM = {
    "type": "Feature",
    "stac_version": "1.0.0",
    "id": "ndvi-2026-08",
    "bbox": [115.7, 39.8, 116.9, 40.6],
    "geometry": {
        "type": "Polygon",
        "coordinates": [
            [[115.7, 39.8], [116.9, 39.8], [116.9, 40.6], [115.7, 40.6], [115.7, 39.8]]
        ],
    },
    "properties": {"datetime": "2026-08-01T00:00:00Z"},
    "links": [],
    "assets": {
        "ndvi": {
            "href": "ndvi-2026-07.tif",
            "type": "image/tiff; application=geotiff",
            "title": "NDVI (the July scene stands in for August in this example)",
            "roles": ["data"],
        }
    },
}  # fmt: skip


def files() -> dict[str, bytes]:
    """Every example file: name → bytes."""
    text = {
        "stations.csv": STATIONS,
        "readings.csv": readings_csv(),
        "soil-samples.csv": soil_csv(),
        "facilities.csv": FACILITIES,
        "fuel.csv": fuel_csv(),
        "targets.csv": TARGETS,
        "job.toml": JOB,
        "basins.geojson": json.dumps(BASINS, ensure_ascii=False, indent=1) + "\n",
        "stac-item.json": json.dumps(STAC_ITEM, indent=1) + "\n",
    }
    out = {name: body.encode("utf-8") for name, body in text.items()}
    out["readings-water.xlsx"] = water_xlsx()
    out["ndvi-2026-07.tif"] = ndvi_tif()
    return out


def main(argv: list[str]) -> int:
    """Write the files (``--check``: only say which differ, exit 1 if any)."""
    check = "--check" in argv
    stale = []
    for name, body in files().items():
        path = HERE / name
        if path.exists() and path.read_bytes() == body:
            continue
        stale.append(name)
        if not check:
            path.write_bytes(body)
    for name in stale:
        print(("differs: " if check else "wrote ") + name)
    return 1 if check and stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
