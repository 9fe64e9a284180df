"""The public open-data portal page (issue 16, item 6): the catalogue of ``GET
/api/v1/datasets`` for people — each dataset the visitor may read with its licence, grade,
coverage, last update and a download link per format — beside today's city AQI ranking and the
latest surface-water classes. No sign-in needed: an anonymous visitor sees the public datasets
and stations, a signed-in user what the role may read (:func:`api.datasets.readable`, one
:func:`access.authorize`).

Downloads never pass through the dashboard: each link points at the gateway's
``/api/v1/datasets/{id}/download`` (``ECOSENSE_API_URL``, :mod:`dashboards.settings`), which
streams a file of any size. A browser following a link calls the gateway anonymously, so the
links are offered for public datasets; a dataset above ``public`` shows the ``curl`` command
with a token instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import pandas as pd
import streamlit as st

from access import Grade
from api.datasets import catalogue_extents, data_license, describe, readable
from dashboards import quality
from dashboards.i18n import lang, tr
from dashboards.session import GRADE_NAMES_ZH, Viewer
from dashboards.settings import DashboardSettings
from dashboards.views import latest_per_subject, water_class_table
from store.postgres import PostgresStore

#: a download format by the name people know it by
FORMAT_NAMES: Final = {
    "csv": "CSV",
    "parquet": "Parquet",
    "xlsx": "Excel (xlsx)",
    "netcdf": "NetCDF",
    "geojson": "GeoJSON",
}


def catalogue(store: PostgresStore, who: Viewer, base: str | None, tz: Any) -> list[dict[str, Any]]:
    """The catalogue items (:func:`api.datasets.describe`, as ``GET /api/v1/datasets`` gives
    them) of the datasets ``who`` may read, their links under ``base`` (the gateway)."""
    extents = catalogue_extents(store)
    return [describe(e, extents, base or "", tz) for e in readable(who.principal)]


def grade_label(grade: str) -> str:
    """A grade (``public``) in the current language (``公开``)."""
    parsed = Grade.parse(grade)
    return tr(parsed.label, GRADE_NAMES_ZH[parsed])


def when(value: str | None, tz: Any) -> str:
    """An ISO 8601 time of the catalogue as ``2026-12-01 08:00 CST`` in the zone ``tz``;
    ``—`` for none."""
    if not value:
        return "—"
    return datetime.fromisoformat(value).astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")


def coverage(temporal: Mapping[str, str | None], tz: Any) -> str:
    """The temporal coverage ``{"start", "end"}`` as ``first – last`` in the zone ``tz``."""
    if not temporal.get("start"):
        return "—"
    return f"{when(temporal['start'], tz)} – {when(temporal.get('end'), tz)}"


def bbox_label(spatial: Sequence[float] | None) -> str:
    """A WGS 84 bounding box ``[min lon, min lat, max lon, max lat]`` in words:
    ``lon 115.70–117.40, lat 39.40–41.10`` / ``经度 115.70–117.40，纬度 39.40–41.10``."""
    if not spatial:
        return "—"
    x0, y0, x1, y1 = spatial
    return tr(
        f"lon {x0:.2f}–{x1:.2f}, lat {y0:.2f}–{y1:.2f}",
        f"经度 {x0:.2f}–{x1:.2f}，纬度 {y0:.2f}–{y1:.2f}",
    )


def downloads(item: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(format's name, download URL) of each format of a catalogue item."""
    return [
        (FORMAT_NAMES.get(link["title"], link["title"]), link["href"])
        for link in item["links"]
        if link["rel"] == "download"
    ]


def catalogue_table(items: Sequence[Mapping[str, Any]], tz: Any) -> pd.DataFrame:
    """One row per dataset: id, title (the current language's), grade, licence, temporal
    coverage and last update in the zone ``tz``, bounding box, formats."""
    language = lang()
    return pd.DataFrame(
        {
            tr("dataset", "数据集"): [i["title"][language] for i in items],
            "id": [i["id"] for i in items],
            tr("grade", "分级"): [grade_label(i["grade"]) for i in items],
            tr("licence", "许可"): [i["license"] for i in items],
            tr("coverage", "时间范围"): [coverage(i["temporal"], tz) for i in items],
            tr("last update", "最近更新"): [when(i["updated"], tz) for i in items],
            tr("area (WGS 84)", "空间范围 (WGS 84)"): [bbox_label(i["spatial"]) for i in items],
            tr("formats", "格式"): [
                ", ".join(FORMAT_NAMES.get(f, f) for f in i["formats"]) for i in items
            ],
        },
        columns=[
            tr("dataset", "数据集"),
            "id",
            tr("grade", "分级"),
            tr("licence", "许可"),
            tr("coverage", "时间范围"),
            tr("last update", "最近更新"),
            tr("area (WGS 84)", "空间范围 (WGS 84)"),
            tr("formats", "格式"),
        ],
    )


def _spdx(licence: str) -> str:
    return f"[{licence}](https://spdx.org/licenses/{licence}.html)"


def open_data_page(store: PostgresStore, settings: DashboardSettings, who: Viewer) -> None:
    """The portal: API links, today's city AQI ranking, the latest water classes, then the
    catalogue with a download link per format (public datasets; a token for the others)."""
    tz = settings.timezone
    base = settings.api_url
    now = datetime.now(UTC)
    st.title(tr("Open data", "数据开放"))
    st.markdown(
        tr(
            "Monitoring and assessment data published by the bureau, free to reuse under "
            f"{_spdx(data_license())} (name the source). No sign-in needed.",
            f"生态环境监测与评价数据向社会开放，可按 {_spdx(data_license())} 许可自由使用"
            "（请注明来源）。无需登录。",
        )
    )
    if base is None:
        st.info(
            tr(
                "Download links need the gateway's address: set `ECOSENSE_API_URL` "
                "(`ecosense up` sets it when it runs the gateway).",
                "下载链接需要网关地址：请设置 `ECOSENSE_API_URL`"
                "（`ecosense up` 运行网关时会自动设置）。",
            )
        )
    else:
        st.markdown(
            tr(
                f"For programs: [catalogue (JSON)]({base}/api/v1/datasets) · "
                f"[DCAT-AP catalogue (JSON-LD)]({base}/api/v1/datasets.jsonld) · "
                f"[API documentation]({base}/docs)",
                f"供程序使用：[数据目录 (JSON)]({base}/api/v1/datasets) ｜ "
                f"[DCAT-AP 目录 (JSON-LD)]({base}/api/v1/datasets.jsonld) ｜ "
                f"[接口文档]({base}/docs)",
            )
        )

    st.subheader(tr("Today's air quality: city ranking", "今日空气质量：城市排名"))
    quality.city_ranking(quality.latest_hourly_aqi(store, who, now), now, tz)

    st.subheader(tr("Latest surface-water classes", "最新地表水水质类别"))
    _, rows = quality.water_classes(store, who, "water-daily", now - timedelta(days=7), now)
    if rows.empty:
        st.info(tr("No water classes in the last 7 days.", "最近 7 天暂无水质类别。"))
    else:
        latest = latest_per_subject(rows)
        who.shown_stations(latest["subject"])
        names = {s.id: s.name for s in store.list_stations() if s.id in who.stations}
        st.dataframe(water_class_table(latest, names, tz), hide_index=True, width="stretch")

    st.subheader(tr("Datasets", "数据集"))
    items = catalogue(store, who, base, tz)
    st.caption(
        tr(
            f"{len(items)} datasets. Times in the bureau's time zone ({tz.key}). The download "
            "links fetch what anyone may download (public stations' rows); with an API token "
            "the same links give the rows your role may export.",
            f"共 {len(items)} 个数据集。时间为本局时区（{tz.key}）。下载链接提供公开内容"
            "（公开站点的数据）；使用接口令牌可下载您的角色可导出的全部数据。",
        )
    )
    st.dataframe(catalogue_table(items, tz), hide_index=True, width="stretch")
    language = lang()
    for item in items:
        with st.container(border=True):
            st.markdown(f"**{item['title'][language]}** (`{item['id']}`)")
            st.write(item["description"][language])
            if base is None:
                continue
            links = downloads(item)
            if item["grade"] != Grade.PUBLIC.label:
                st.caption(
                    tr(
                        f"{grade_label(item['grade']).capitalize()} data: download with a token"
                        " (`POST /api/v1/auth/token`).",
                        f"{grade_label(item['grade'])}数据：需使用令牌下载"
                        "（`POST /api/v1/auth/token`）。",
                    )
                )
                # two short lines, wrapped: a block that scrolls sideways would need keyboard
                # access (axe-core scrollable-region-focusable)
                st.code(
                    f"curl -OJ -H 'Authorization: Bearer $TOKEN' \\\n  '{links[0][1]}'",
                    language="sh",
                    wrap_lines=True,
                )
                continue
            for col, (name, href) in zip(st.columns(len(links)), links, strict=True):
                col.link_button(
                    name,
                    href,
                    icon=":material/download:",
                    help=tr(
                        f"{item['title']['en']} as {name}",
                        f"{item['title']['zh']}（{name}）",
                    ),
                    width="stretch",
                )
