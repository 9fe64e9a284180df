"""The pure rules of manual review and of the jobs' per-stream isolation."""

from __future__ import annotations

import ast
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import psycopg
import pytest

from pipelines.work import Touched
from store.reviews import Review, decisive, invalidated

T0 = datetime(2026, 11, 28, tzinfo=UTC)


def _review(i: int, start: int, end: int, action: str) -> Review:
    return Review(
        i,
        "S1",
        "pm25",
        T0 + timedelta(minutes=start),
        T0 + timedelta(minutes=end),
        action,  # type: ignore[arg-type]
        "reason",
        "operator",
        T0,
    )


def test_the_latest_review_covering_a_reading_decides() -> None:
    reviews = [_review(1, 0, 10, "invalidate"), _review(2, 0, 5, "restore")]
    times = pd.Series(pd.date_range(T0, periods=12, freq="min"))
    assert invalidated(times, reviews).tolist() == [False] * 5 + [True] * 5 + [False] * 2
    assert decisive(reviews, T0) == reviews[1]
    assert decisive(reviews, T0 + timedelta(minutes=7)) == reviews[0]
    assert decisive(reviews, T0 + timedelta(minutes=10)) is None  # the end is exclusive
    # an invalidation after the restore wins again
    again = [*reviews, _review(3, 3, 4, "invalidate")]
    assert invalidated(times, again)[:5].tolist() == [False, False, False, True, False]


def test_a_review_reaching_beyond_pandas_time_span_still_applies() -> None:
    everything = Review(
        1,
        "S1",
        "pm25",
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(9999, 12, 31, tzinfo=UTC),
        "invalidate",
        "all of it",
        "operator",
        T0,
    )
    times = pd.Series(pd.date_range(T0, periods=3, freq="h"))
    assert invalidated(times, [everything]).tolist() == [True, True, True]
    assert invalidated(times.iloc[0:0], [everything]).tolist() == []


def test_one_streams_bad_data_is_a_warning_but_a_lost_database_fails_the_task() -> None:
    touched = Touched()
    touched.isolate("S1 pm25", ValueError("Out of bounds nanosecond timestamp"))
    assert touched.errors == []
    assert touched.warnings == ["S1 pm25 left out: ValueError: Out of bounds nanosecond timestamp"]
    with pytest.raises(psycopg.OperationalError):
        touched.isolate("S1 pm10", psycopg.OperationalError("server closed the connection"))


def test_the_job_modules_reach_the_database_only_through_store() -> None:
    """Issue 12, bullet 1 ("One door"): pipelines/jobs.py and pipelines/work.py hold no SQL and
    do not import psycopg."""
    root = Path(__file__).resolve().parents[2] / "pipelines"
    for name in ("jobs.py", "work.py"):
        tree = ast.parse((root / name).read_text("utf-8"))
        imported = {
            alias.name.split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
        } | {
            (node.module or "").split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom)
        }
        assert "psycopg" not in imported, name
        strings = [
            n.value
            for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str)
        ]
        assert not [
            s
            for s in strings
            if s.lstrip().upper().startswith(("SELECT ", "INSERT ", "UPDATE ", "DELETE "))
        ], name
