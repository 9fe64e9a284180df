"""A :class:`reports.tables.Report` as a file: xlsx (openpyxl), CSV (UTF-8 with a byte-order
mark, so that Excel reads the Chinese) or PDF (fpdf2, Chinese set in Noto Sans CJK SC from the
``noto-cjk-sans-otc`` package: installed with EcoSense, nothing fetched at run time).

Each function returns the file's bytes; :func:`render` picks one by format name.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Final, Literal

from reports.tables import Cell, Report

Format = Literal["xlsx", "pdf", "csv"]
FORMATS: Final = ("xlsx", "pdf", "csv")
MEDIA_TYPES: Final = {
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pdf": "application/pdf",
    "csv": "text/csv; charset=utf-8",
}
#: Noto Sans CJK SC in the collection (0 JP, 1 KR, 2 SC, 3 TC, 4 HK)
_SC: Final = 2
NOTES: Final = "说明 Notes"


def font_path() -> Path:
    """The CJK font the PDF uses: Noto Sans CJK (OpenType collection, OFL-1.1)."""
    import noto_cjk_sans_otc

    return Path(str(noto_cjk_sans_otc.FONT_PATH))


def _text(cell: Cell) -> str:
    return "" if cell is None else str(cell)


def to_csv(report: Report) -> bytes:
    """CSV, UTF-8 with BOM: the title and period, each table (its title, headings, rows) and
    the notes, separated by blank lines."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow([report.title])
    w.writerow([report.period])
    for table in report.tables:
        w.writerow([])
        w.writerow([table.title])
        w.writerow(table.headers)
        w.writerows([[_text(c) for c in row] for row in table.rows])
    w.writerow([])
    w.writerow([NOTES])
    w.writerows([[n] for n in report.notes])
    return out.getvalue().encode("utf-8-sig")


def to_xlsx(report: Report) -> bytes:
    """A workbook: a sheet per table (title in A1, period in A2, headings in row 4, rows
    below), the notes under the first table and on their own sheet."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook()
    bold = Font(bold=True)
    for i, table in enumerate(report.tables):
        ws = wb.active if i == 0 else wb.create_sheet()
        assert ws is not None
        ws.title = f"{report.kind}-{i + 1}"
        ws.append([report.title])
        ws.append([report.period, table.title])
        ws.append([])
        ws.append(list(table.headers))
        for cell in ws[4]:
            cell.font = bold
        for row in table.rows:
            ws.append([c for c in row])
            for cell, number_format in zip(ws[ws.max_row], table.formats or (), strict=False):
                if number_format is not None and isinstance(cell.value, int | float):
                    cell.number_format = number_format
        ws["A1"].font = Font(bold=True, size=14)
        if i == 0:
            ws.append([])
            ws.append([NOTES])
            for note in report.notes:
                ws.append([note])
        for column, heading in zip(ws.iter_cols(min_row=4, max_row=4), table.headers, strict=False):
            ws.column_dimensions[column[0].column_letter].width = max(10, min(40, len(heading) + 2))
    notes = wb.create_sheet(NOTES.split()[0])
    notes.append([NOTES])
    for note in report.notes:
        notes.append([note])
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


def to_pdf(report: Report) -> bytes:
    """A4 landscape PDF: title, period, each table, the notes; all text in Noto Sans CJK SC."""
    from fpdf import FPDF
    from fpdf.fonts import FontFace

    pdf = FPDF(orientation="L", unit="mm", format="A4")
    pdf.set_auto_page_break(auto=True, margin=12)
    pdf.set_margins(10, 10, 10)
    pdf.add_font("noto", fname=str(font_path()), collection_font_number=_SC)
    pdf.set_title(f"{report.title} {report.period}")
    pdf.set_creator("EcoSense")
    pdf.add_page()
    pdf.set_font("noto", size=15)
    pdf.cell(text=report.title, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("noto", size=10)
    pdf.cell(text=report.period, new_x="LMARGIN", new_y="NEXT")
    for table in report.tables:
        pdf.ln(3)
        pdf.set_font("noto", size=11)
        pdf.cell(text=table.title, new_x="LMARGIN", new_y="NEXT")
        columns = len(table.headers)
        pdf.set_font("noto", size=7 if columns <= 10 else 5.5)
        widths = table.widths or (1.5, *([1.0] * (columns - 1)))
        with pdf.table(
            col_widths=widths,
            headings_style=FontFace(emphasis=None, fill_color=(230, 230, 230)),
            line_height=pdf.font_size * 1.6,
            text_align="LEFT",
        ) as grid:
            heading = grid.row()
            for h in table.headers:
                heading.cell(h)
            for row in table.rows:
                cells = grid.row()
                for c in row:
                    cells.cell(_text(c))
    pdf.ln(3)
    pdf.set_font("noto", size=11)
    pdf.cell(text=NOTES, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("noto", size=8)
    for note in report.notes:
        pdf.multi_cell(w=0, text=f"• {note}", new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def render(report: Report, fmt: str) -> bytes:
    """The report as ``fmt`` (``xlsx``, ``pdf`` or ``csv``); ``ValueError`` for another."""
    if fmt == "xlsx":
        return to_xlsx(report)
    if fmt == "pdf":
        return to_pdf(report)
    if fmt == "csv":
        return to_csv(report)
    raise ValueError(f"unknown report format {fmt!r}: use {', '.join(FORMATS)}")
