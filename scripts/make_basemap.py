"""Make the dashboard's offline base map from Natural Earth (public domain) as Debian ships it.

Source: Debian package ``qgis-common``, file ``usr/share/qgis/resources/data/world_map.gpkg``
(Natural Earth 1:10m Admin 1 v4.1.0, generalised by the QGIS project). Output:
``dashboards/data/china_provinces.geojson`` — China's provincial-level divisions with their
ISO 3166-2 codes and names, and neighbouring countries as context, simplified for the web.

Run (needs shapely; not a runtime dependency of EcoSense):
    apt-get download qgis-common && dpkg-deb -x qgis-common_*.deb qgis
    python scripts/make_basemap.py qgis/usr/share/qgis/resources/data/world_map.gpkg
"""

from __future__ import annotations

import json
import sqlite3
import struct
import sys
from pathlib import Path

from shapely import wkb
from shapely.geometry import box, mapping
from shapely.ops import unary_union

OUT = Path(__file__).resolve().parent.parent / "dashboards" / "data" / "china_provinces.geojson"

# Natural Earth name → (ISO 3166-2:CN code, Chinese name)
PROVINCES = {
    "Beijing": ("CN-BJ", "北京市"),
    "Tianjin": ("CN-TJ", "天津市"),
    "Hebei": ("CN-HE", "河北省"),
    "Shanxi": ("CN-SX", "山西省"),
    "Inner Mongol": ("CN-NM", "内蒙古自治区"),
    "Liaoning": ("CN-LN", "辽宁省"),
    "Jilin": ("CN-JL", "吉林省"),
    "Heilongjiang": ("CN-HL", "黑龙江省"),
    "Shanghai": ("CN-SH", "上海市"),
    "Jiangsu": ("CN-JS", "江苏省"),
    "Zhejiang": ("CN-ZJ", "浙江省"),
    "Anhui": ("CN-AH", "安徽省"),
    "Fujian": ("CN-FJ", "福建省"),
    "Jiangxi": ("CN-JX", "江西省"),
    "Shandong": ("CN-SD", "山东省"),
    "Henan": ("CN-HA", "河南省"),
    "Hubei": ("CN-HB", "湖北省"),
    "Hunan": ("CN-HN", "湖南省"),
    "Guangdong": ("CN-GD", "广东省"),
    "Guangxi": ("CN-GX", "广西壮族自治区"),
    "Hainan": ("CN-HI", "海南省"),
    "Chongqing": ("CN-CQ", "重庆市"),
    "Sichuan": ("CN-SC", "四川省"),
    "Guizhou": ("CN-GZ", "贵州省"),
    "Yunnan": ("CN-YN", "云南省"),
    "Xizang": ("CN-XZ", "西藏自治区"),
    "Shaanxi": ("CN-SN", "陕西省"),
    "Gansu": ("CN-GS", "甘肃省"),
    "Qinghai": ("CN-QH", "青海省"),
    "Ningxia": ("CN-NX", "宁夏回族自治区"),
    "Xinjiang": ("CN-XJ", "新疆维吾尔自治区"),
}
GROUPS = {
    "HKG": ("CN-HK", "香港特别行政区", "Hong Kong"),
    "MAC": ("CN-MO", "澳门特别行政区", "Macao"),
    "TWN": ("CN-TW", "台湾省", "Taiwan"),
}
EXTENT = box(70.0, 15.0, 140.0, 56.0)
TOLERANCE = 0.02  # degrees (~2 km): plenty for a national overview map


def geometry(blob: bytes):  # type: ignore[no-untyped-def]
    """A GeoPackage geometry blob (GP header + WKB) as a shapely geometry."""
    flags = blob[3]
    envelope = {0: 0, 1: 32, 2: 48, 3: 48, 4: 64}[(flags >> 1) & 7]
    struct.unpack("<i" if flags & 1 else ">i", blob[4:8])
    return wkb.loads(bytes(blob[8 + envelope :]))


def rounded(geom):  # type: ignore[no-untyped-def]
    doc = mapping(geom.simplify(TOLERANCE, preserve_topology=True))

    def r(c):  # type: ignore[no-untyped-def]
        return [round(c[0], 3), round(c[1], 3)] if isinstance(c[0], float) else [r(x) for x in c]

    return {"type": doc["type"], "coordinates": r(doc["coordinates"])}


def main(gpkg: str) -> None:
    con = sqlite3.connect(gpkg)
    features = []
    groups: dict[str, list] = {k: [] for k in GROUPS}  # type: ignore[type-arg]
    for name, adm0, blob in con.execute(
        "SELECT name, adm0_a3, geom FROM states_provinces"
        " WHERE adm0_a3 IN ('CHN', 'HKG', 'MAC', 'TWN')"
    ):
        geom = geometry(blob)
        if adm0 in groups:
            groups[adm0].append(geom)
        elif name in PROVINCES:
            code, zh = PROVINCES[name]
            features.append((code, zh, name, geom))
        elif name == "Paracel Islands":
            groups.setdefault("PARACEL", []).append(geom)
    for adm0, (code, zh, en) in GROUPS.items():
        features.append((code, zh, en, unary_union(groups[adm0])))
    hainan = next(i for i, f in enumerate(features) if f[0] == "CN-HI")
    code, zh, en, geom = features[hainan]
    features[hainan] = (code, zh, en, unary_union([geom, *groups.get("PARACEL", [])]))
    out = [
        {
            "type": "Feature",
            "properties": {"kind": "province", "code": c, "name_zh": z, "name_en": e},
            "geometry": rounded(g),
        }
        for c, z, e, g in sorted(features)
    ]
    for name, iso3, blob in con.execute("SELECT NAME, ISO_A3, geom FROM countries"):
        if iso3 in ("CHN", "HKG", "MAC", "TWN"):
            continue
        geom = geometry(blob)
        if geom.intersects(EXTENT):
            clipped = geom.intersection(EXTENT)
            if clipped.area > 0.05:
                out.append(
                    {
                        "type": "Feature",
                        "properties": {
                            "kind": "country",
                            "code": iso3,
                            "name_zh": "",
                            "name_en": name,
                        },
                        "geometry": rounded(clipped),
                    }
                )
    doc = {
        "type": "FeatureCollection",
        "source": "Natural Earth 1:10m Admin 0/1 v4.1.0 (public domain), as generalised in "
        "Debian qgis-common world_map.gpkg; simplified to 0.02 degrees",
        "features": out,
    }
    OUT.write_text(json.dumps(doc, ensure_ascii=False, separators=(",", ":")), "utf-8")
    print(f"wrote {OUT} ({OUT.stat().st_size // 1024} KiB, {len(out)} features)")


if __name__ == "__main__":
    main(sys.argv[1])
