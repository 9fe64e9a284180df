"""Planners' job files: ``ecosense carbon run JOB.toml [--store]`` (accounted on the Dask
runner; ``--store`` keeps the run in the store's ``carbon_runs``).

```toml
[job]
name = "Beijing 2023"
start = "2023-01-01"          # the period, [start, end), bureau time unless an offset is given
end = "2024-01-01"
facilities = "facilities.csv"  # paths relative to the job file
activity = ["fuel.csv", "power.xlsx"]
gwp = "AR5"                   # SAR, TAR, AR4, AR5 (default), AR6
level = "province"            # roll-up: county, city, province, nation

[sinks]                        # optional: land-use sinks (carbon.sinks, stock difference)
land_change = "changes.csv"   # region, from_class, to_class, start_year, end_year, area[, unit]
stocks = "stocks.csv"         # class, carbon_t_per_ha, source

[outputs]
dir = "out"                   # relative to the job file
formats = ["csv", "xlsx", "html"]
```

Sink rows (sector 3.B, negative tonnes for removals) count for the years of their period that
fall inside the job's years. Records that reach outside the period count for the part inside
it (pro rata by duration).
Outputs: ``rows.csv`` (one row per record, year and gas, with factor ids), ``inventory.csv``
(the roll-up), ``excluded.csv`` (every record or facility left out, with the reason), the
same as sheets of ``inventory.xlsx``, and ``report.html``: self-contained (inline SVG charts,
no script or network) with the totals, the roll-up and what was excluded.
"""

from __future__ import annotations

import html
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo

import pandas as pd

from carbon import factors
from carbon.activity import ActivityRecord, Facility, Rejected, read_activity, read_facilities
from carbon.errors import CarbonError
from carbon.inventory import LEVELS, account, rollup, rollup_exclusions
from carbon.sinks import annual_rows, read_changes, read_stocks, stock_difference

FORMATS: Final = ("csv", "xlsx", "html")


@dataclass(frozen=True)
class JobResult:
    """What a job produced: emission rows, the roll-up, what was excluded, files written."""

    name: str
    rows: pd.DataFrame
    inventory: pd.DataFrame
    excluded: list[Rejected]
    files: list[Path]
    start: datetime | None = None
    end: datetime | None = None
    gwp: str = factors.DEFAULT_GWP
    level: str = "province"

    @property
    def total_co2e_t(self) -> float:
        return float(self.rows["co2e_t"].sum()) if not self.rows.empty else 0.0


def _clip(
    records: list[ActivityRecord], start: datetime, end: datetime
) -> tuple[list[ActivityRecord], int]:
    """The part of each record inside [start, end), quantity pro rata; records wholly outside
    are dropped (returned count)."""
    out = []
    outside = 0
    for r in records:
        s, e = max(r.start, start), min(r.end, end)
        if e <= s:
            outside += 1
            continue
        share = (e - s).total_seconds() / (r.end - r.start).total_seconds()
        out.append(replace(r, start=s, end=e, quantity=r.quantity * share))
    return out, outside


def _time(value: Any, tz: ZoneInfo, name: str) -> datetime:
    text = value.isoformat() if hasattr(value, "isoformat") else str(value)
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        raise CarbonError(f"job: {name} {value!r} is not an ISO 8601 date or time") from None
    return t if t.tzinfo is not None else t.replace(tzinfo=tz)


#: ``mapper(fn, plans, *args) -> [fn(*args, plan) for plan in plans]``, results in order
Mapper = Callable[..., list[Any]]


def _chunks(records: list[ActivityRecord], n: int) -> list[list[ActivityRecord]]:
    """Records in up to ``n`` chunks, each facility's records in one chunk."""
    by_facility: dict[str, list[ActivityRecord]] = {}
    for r in records:
        by_facility.setdefault(r.facility, []).append(r)
    chunks: list[list[ActivityRecord]] = [[] for _ in range(max(1, min(n, len(by_facility))))]
    for i, rs in enumerate(by_facility.values()):
        chunks[i % len(chunks)].extend(rs)
    return [c for c in chunks if c]


def _account_chunk(
    facilities: list[Facility], gwp: str, tz: str, records: list[ActivityRecord]
) -> tuple[pd.DataFrame, list[Rejected]]:
    return account(records, facilities, gwp, tz)


def run_job(
    path: Path,
    tz: str = "Asia/Shanghai",
    mapper: Mapper | None = None,
    chunks_hint: int = 8,
) -> JobResult:
    """Run the job file at ``path`` and write its outputs. With ``mapper`` (a Dask runner's
    :meth:`~pipelines.runner.Runner.map`, progress included), the records are accounted in
    ``chunks_hint`` chunks in parallel; the result is the same.

    Raises
    ------
    CarbonError
        for an unreadable or incomplete job file, or an input file that cannot be read.
    """
    try:
        spec = tomllib.loads(path.read_text("utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise CarbonError(f"{path}: {exc}") from exc
    job = spec.get("job", {})
    missing = [k for k in ("start", "end", "facilities", "activity") if k not in job]
    if missing:
        raise CarbonError(f"{path}: [job] lacks {', '.join(missing)}")
    zone = ZoneInfo(tz)
    start, end = _time(job["start"], zone, "start"), _time(job["end"], zone, "end")
    if end <= start:
        raise CarbonError(f"{path}: end is not after start")
    gwp = str(job.get("gwp", factors.DEFAULT_GWP))
    if gwp not in factors.GWP_SETS:
        raise CarbonError(f"{path}: gwp must be one of {', '.join(factors.GWP_SETS)}")
    level = str(job.get("level", "province"))
    if level not in LEVELS:
        raise CarbonError(f"{path}: level must be one of {', '.join(LEVELS)}")
    base = path.parent
    facilities, excluded = read_facilities(base / job["facilities"])
    activity_files = job["activity"] if isinstance(job["activity"], list) else [job["activity"]]
    records: list[ActivityRecord] = []
    for name in activity_files:
        found, bad = read_activity(base / name, facilities, tz)
        records += found
        excluded += bad
    records, outside = _clip(records, start, end)
    if mapper is None:
        rows, refused = account(records, facilities, gwp, tz)
    else:  # facilities in chunks, accounted in parallel (a Dask runner's map)
        chunks = _chunks(records, chunks_hint)
        parts = mapper(_account_chunk, chunks, facilities, gwp, tz)
        rows = pd.concat([p[0] for p in parts], ignore_index=True) if parts else pd.DataFrame()
        refused = [r for p in parts for r in p[1]]
    excluded += refused
    sinks = spec.get("sinks")
    if sinks is not None:
        if "land_change" not in sinks or "stocks" not in sinks:
            raise CarbonError(f"{path}: [sinks] needs land_change and stocks")
        changes, bad = read_changes(base / sinks["land_change"])
        excluded += bad
        if not changes.empty:
            sink_rows, refused = stock_difference(changes, read_stocks(base / sinks["stocks"]))
            excluded += refused
            years = range(
                start.astimezone(zone).year,
                (end - timedelta(microseconds=1)).astimezone(zone).year + 1,
            )
            land = annual_rows(sink_rows)
            if not land.empty:
                land = land[land["year"].isin(years)]
                rows = pd.concat([rows, land], ignore_index=True) if not rows.empty else land
    inventory = rollup(rows, level) if not rows.empty else pd.DataFrame()
    excluded += rollup_exclusions(rows, level)  # in the total, but in no region of the roll-up
    outputs = spec.get("outputs", {})
    formats = outputs.get("formats", list(FORMATS))
    unknown = set(formats) - set(FORMATS)
    if unknown:
        raise CarbonError(f"{path}: unknown output formats {', '.join(sorted(unknown))}")
    out_dir = base / outputs.get("dir", "out")
    out_dir.mkdir(parents=True, exist_ok=True)
    name = str(job.get("name", path.stem))
    result = JobResult(name, rows, inventory, excluded, [], start, end, gwp, level)
    excluded_frame = pd.DataFrame(
        [{"where": r.where, "reason": r.reason} for r in excluded], columns=["where", "reason"]
    )
    if "csv" in formats:
        for stem, frame in (("rows", rows), ("inventory", inventory), ("excluded", excluded_frame)):
            frame.to_csv(out_dir / f"{stem}.csv", index=False)
            result.files.append(out_dir / f"{stem}.csv")
    if "xlsx" in formats:
        target = out_dir / "inventory.xlsx"
        with pd.ExcelWriter(target) as writer:
            inventory.to_excel(writer, sheet_name="inventory", index=False)
            rows.to_excel(writer, sheet_name="rows", index=False)
            excluded_frame.to_excel(writer, sheet_name="excluded", index=False)
        result.files.append(target)
    if "html" in formats:
        target = out_dir / "report.html"
        target.write_text(report_html(result, start, end, gwp, level, outside), "utf-8")
        result.files.append(target)
    return result


def _bars(totals: pd.Series, title: str) -> str:
    """A horizontal bar chart as inline SVG (no script, no network)."""
    if totals.empty:
        return ""
    top = float(totals.abs().max()) or 1.0
    height = 24 * len(totals) + 30
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="640" height="{height}" role="img"'
        f' aria-label="{html.escape(title)}">'
        f'<text x="0" y="14" font-size="13">{html.escape(title)}</text>'
    ]
    for i, (label, value) in enumerate(totals.items()):
        y = 24 + 24 * i
        width = 400 * abs(float(value)) / top
        colour = "#2e7d32" if value >= 0 else "#1565c0"  # removals (sinks) in blue
        parts.append(
            f'<text x="0" y="{y + 14}" font-size="12">{html.escape(str(label))}</text>'
            f'<rect x="150" y="{y}" width="{width:.1f}" height="18" fill="{colour}"/>'
            f'<text x="{155 + width:.1f}" y="{y + 14}" font-size="12">{float(value):,.1f} t</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def report_html(
    result: JobResult, start: datetime, end: datetime, gwp: str, level: str, outside: int
) -> str:
    """The job's self-contained HTML report."""
    rows = result.rows
    by_sector = rows.groupby("sector")["co2e_t"].sum() if not rows.empty else pd.Series(dtype=float)
    by_gas = rows.groupby("gas")["co2e_t"].sum() if not rows.empty else pd.Series(dtype=float)
    by_scope = rows.groupby("scope")["co2e_t"].sum() if not rows.empty else pd.Series(dtype=float)
    n_records = rows["record"].nunique() if not rows.empty else 0
    excluded = "".join(
        f"<tr><td>{html.escape(r.where)}</td><td>{html.escape(r.reason)}</td></tr>"
        for r in result.excluded
    )
    table = (
        result.inventory.to_html(index=False, float_format=lambda v: f"{v:,.3f}")
        if not result.inventory.empty
        else ""
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(result.name)}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:60em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:2px 6px;text-align:right}}</style></head><body>
<h1>{html.escape(result.name)}</h1>
<p>Period {start.isoformat()} – {end.isoformat()} · GWP-100 {gwp} · roll-up by {level}</p>
<p><strong>Total: {result.total_co2e_t:,.1f} t CO₂e</strong> from {n_records} records;
{len(result.excluded)} excluded (listed below); {outside} outside the period.</p>
{_bars(by_sector, "t CO₂e by sector (IPCC 2006 category)")}
{_bars(by_gas, "t CO₂e by gas")}
{_bars(by_scope.rename(index=lambda s: f"scope {s}"), "t CO₂e by scope")}
<h2>Inventory</h2>{table}
<h2>Excluded</h2><table><tr><th>where</th><th>reason</th></tr>{excluded}</table>
<p>Every row of rows.csv names its activity record and the ids of the factors used
(carbon/data/*.csv, each with its source, year and version).</p>
</body></html>
"""
