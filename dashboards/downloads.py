"""Report downloads on the AQI and water pages: the same reports as ``ecosense report``
(:mod:`reports`), holding the stations the viewer may download (``export``, as
:func:`access.authorize` decides: anonymous visitors public stations only). A download of a
report above ``public`` is audited like an export."""

from __future__ import annotations

from datetime import date
from typing import Any

import streamlit as st

from access import Grade
from dashboards.i18n import tr
from dashboards.session import Viewer
from reports import data, render
from reports.tables import Kind, Report
from store import audit as audit_log

_LABELS = {"xlsx": "Excel (xlsx)", "csv": "CSV", "pdf": "PDF"}


def _audit(who: Viewer, report: Report, fmt: str) -> None:
    if report.grade > Grade.PUBLIC:
        audit_log.record(
            who.store,
            who.principal.actor,
            "export",
            data.audit_object(report),
            "ok",
            who.address,
            {
                "via": "dashboard",
                "page": who.page,
                "format": fmt,
                "stations": len(report.stations),
                "grade": report.grade.label,
            },
        )


def report_download(store: Any, tz: str, who: Viewer, kind: Kind, day: date) -> None:
    """A format choice and a download button for the ``kind`` report of ``day``."""
    what = (
        tr("Download the daily air-quality report", "下载空气质量日报")
        if kind == "daily"
        else tr("Download the monthly surface-water report", "下载地表水水质月报")
    )
    left, right = st.columns([1, 2])
    with left:
        fmt = st.radio(
            what,
            list(_LABELS),
            format_func=_LABELS.__getitem__,
            horizontal=True,
            key=f"report_fmt_{kind}",
        )
    report = data.build(store, kind, day, tz, who.principal)
    if fmt == "pdf" and not st.session_state.get(f"report_pdf_{kind}"):
        with right:  # a PDF takes a few seconds: made on request, not at every page render
            st.button(
                tr("Prepare the PDF", "生成 PDF"),
                key=f"report_pdf_{kind}",
            )
        return
    with right:
        st.download_button(
            f"⬇ {report.period} ({fmt})",
            data=render.render(report, fmt),
            file_name=f"ecosense-{kind}-{report.period}.{fmt}",
            mime=render.MEDIA_TYPES[fmt],
            key=f"report_dl_{kind}",
            on_click=_audit,
            args=(who, report, fmt),
        )
        st.caption(
            tr(
                f"{len(report.stations)} stations · {len(report.notes) - 1} statements on gaps",
                f"{len(report.stations)} 个站点 · {len(report.notes) - 1} 条缺测说明",
            )
        )
