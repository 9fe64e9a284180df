"""Manual review (数据审核) and the jobs' robustness, against real PostgreSQL servers (issue 12,
bullets 4 and 5): reviews through the API and the CLI, jobs leaving invalidated readings out
and recomputing what a review touches, one bad stream not stalling a job, and two runs of one
job never racing."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from ecosense import cli
from ecosense.app import create_app
from pipelines.jobs import JobContext, JobReport, get
from pipelines.runner import Runner
from sensors.observations import Observation, Source
from sensors.stations import Station
from store import db, derived, reviews
from store import jobs as job_store
from store.context import ServiceContext
from store.postgres import PostgresStore, hash_secret

SOURCE = Source("http", "test-device")

pytestmark = pytest.mark.integration

ADMIN = "operator-secret"
TZ = ZoneInfo("Asia/Shanghai")
#: 08:00 China Standard Time, 28 November 2026.
T0 = datetime(2026, 11, 28, 0, tzinfo=UTC)
#: The second hour: minute readings, the first ten of them about 60 µg/m³, the others about
#: 40 (a little noise, so that QC's flatline check lets them be).
HOUR = T0 + timedelta(hours=1)
#: The ten readings a review invalidates: [HOUR, HOUR + 10 min).
SPAN = (HOUR, HOUR + timedelta(minutes=10))


def _value(t: datetime) -> float:
    return (60.0 if SPAN[0] <= t < SPAN[1] else 40.0) + 0.1 * (t.minute % 5)


def _mean(first_minute: int) -> float:
    """The mean of the second hour's readings from ``first_minute`` on."""
    values = [_value(HOUR + timedelta(minutes=m)) for m in range(first_minute, 60)]
    return sum(values) / len(values)


FULL_MEAN = _mean(0)


@pytest.fixture(scope="module")
def runner() -> Iterator[Runner]:
    with Runner(local="threads", workers=2) as r:
        yield r


@pytest.fixture
def seeded(store: PostgresStore) -> PostgresStore:
    store.upsert_stations(
        [
            Station("A1", "Air one", "air", 116.40, 39.90),
            Station("A2", "Air two", "air", 116.30, 39.95),
        ]
    )
    readings = []
    for m in range(3 * 60):
        t = T0 + timedelta(minutes=m)
        readings.append(Observation("A1", "pm25", t, _value(t)))
    store.write_observations(readings, source=SOURCE)
    return store


@pytest.fixture
def client(seeded: PostgresStore) -> Iterator[TestClient]:
    ctx = ServiceContext(seeded, hash_secret(ADMIN), TZ)
    with TestClient(create_app(ctx)) as c:
        yield c


def _headers(token: str = ADMIN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _context(url: str, runner: Runner, **kw: object) -> JobContext:
    return JobContext(url, runner, "Asia/Shanghai", **kw)  # type: ignore[arg-type]


def _hour_mean(url: str, station: str, start: datetime) -> tuple[float, float, bool]:
    with db.connect(url) as conn:
        found = derived.read_aggregates(
            conn,
            scope="station",
            period="PT1H",
            start=start,
            end=start + timedelta(hours=1),
            subjects=[station],
            parameters=["pm25"],
        )
    assert len(found) == 1, found
    row = found.iloc[0]
    return float(row["value"]), float(row["count"]), bool(row["valid"])


def _hourly(url: str, runner: Runner) -> JobReport:
    report = get("hourly").run(_context(url, runner), None, None)
    assert report.errors == [], report.errors
    return report


def test_review_by_api_and_cli_takes_readings_out_of_the_jobs_and_restore_brings_them_back(
    seeded: PostgresStore,
    client: TestClient,
    runner: Runner,
    database_url: str,
    cli_env: object,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Issue 12, bullet 4: "Invalidated readings stay stored and readable with "review":
    {"action", "reason", "by", "at"} in their items; jobs exclude them from means, validity
    counts, AQI, classes and alerts, and recompute the periods a review touches on their next
    run (restore brings them back)"."""
    _hourly(database_url, runner)
    assert _hour_mean(database_url, "A1", HOUR) == pytest.approx((FULL_MEAN, 60.0, True))

    body = {
        "station": "A1",
        "parameter": "a34004",  # an HJ 212 code names the parameter too
        "start": "2026-11-28T09:00:00",  # no offset: the bureau's time (01:00 UTC)
        "end": "2026-11-28T09:10:00+08:00",
        "action": "invalidate",
        "reason": "analyser calibration drift",
    }
    r = client.post("/api/v1/reviews", json=body, headers=_headers())
    assert r.status_code == 201, r.text
    first = r.json()
    assert first["affected"] == 10 and isinstance(first["id"], int) and "warning" not in first

    # readings stay stored and readable, the invalidated ones carry the review
    r = client.get(
        "/api/v1/observations",
        params={"station": "A1", "start": "2026-11-28T08:55:00+08:00", "end": "2026-11-28T09:15"},
        headers=_headers(),
    )
    items = r.json()["items"]
    assert len(items) == 20
    reviewed = [i for i in items if "review" in i]
    assert [i["time"] for i in reviewed] == [f"2026-11-28T09:{m:02d}:00+08:00" for m in range(10)]
    assert all(i["value"] >= 60.0 for i in reviewed)
    review = reviewed[0]["review"]
    assert review["action"] == "invalidate" and review["reason"] == "analyser calibration drift"
    assert review["by"] == "admin" and review["at"]  # the authenticated caller.endswith("+08:00")

    # the next incremental run recomputes the hour without them
    _hourly(database_url, runner)
    assert _hour_mean(database_url, "A1", HOUR) == pytest.approx((_mean(10), 50.0, True))
    assert _hour_mean(database_url, "A1", T0) == pytest.approx((40.2, 60.0, True))

    # restore by the CLI: the latest review decides, the hour comes back
    assert (
        cli.main(
            [
                "review",
                "restore",
                "--station",
                "A1",
                "--parameter",
                "pm25",
                "--start",
                "2026-11-28T09:00:00+08:00",
                "--end",
                "2026-11-28T09:05:00+08:00",
                "--reason",
                "drift checked: the first five minutes were fine",
                "--by",
                "reviewer wang",
            ]
        )
        == 0
    )
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert "5 readings affected" in last and last.startswith("review ")
    _hourly(database_url, runner)
    restored = [_value(HOUR + timedelta(minutes=m)) for m in (*range(5), *range(10, 60))]
    assert _hour_mean(database_url, "A1", HOUR) == pytest.approx((sum(restored) / 55, 55.0, True))
    r = client.get(
        "/api/v1/observations",
        params={"station": "A1", "start": "2026-11-28T09:00", "end": "2026-11-28T09:10"},
        headers=_headers(),
    )
    assert ["review" in i for i in r.json()["items"]] == [False] * 5 + [True] * 5

    # the listing, newest first, paged
    r = client.get("/api/v1/reviews", params={"station": "A1", "limit": 1}, headers=_headers())
    assert r.status_code == 200
    page = r.json()
    assert [i["action"] for i in page["items"]] == ["restore"]
    assert page["items"][0]["by"] == "reviewer wang"
    assert page["items"][0]["start"] == "2026-11-28T09:00:00+08:00"
    r = client.get(
        "/api/v1/reviews",
        params={"station": "A1", "limit": 1, "cursor": page["next_cursor"]},
        headers=_headers(),
    )
    page = r.json()
    assert [(i["id"], i["action"]) for i in page["items"]] == [(first["id"], "invalidate")]
    assert page["next_cursor"] is None
    r = client.get("/api/v1/reviews", params={"station": "A2"}, headers=_headers())
    assert r.json() == {"items": [], "next_cursor": None}


def test_review_routes_need_the_operator_and_refuse_bad_input(
    seeded: PostgresStore, client: TestClient
) -> None:
    token = seeded.add_device("d1", "A1")
    good = {
        "station": "A1",
        "parameter": "pm25",
        "start": "2026-11-28T09:00:00+08:00",
        "end": "2026-11-28T10:00:00+08:00",
        "action": "invalidate",
        "reason": "test",
    }
    assert client.post("/api/v1/reviews", json=good).status_code == 401
    assert client.post("/api/v1/reviews", json=good, headers=_headers(token)).status_code == 403
    assert client.get("/api/v1/reviews", headers=_headers(token)).status_code == 403
    for change, status in (
        ({"action": "delete"}, 400),
        ({"reason": "  "}, 400),
        ({"end": "2026-11-28T08:00:00+08:00"}, 400),
        ({"start": "yesterday"}, 400),
        ({"parameter": "nonsense"}, 400),
        ({"station": "nowhere"}, 404),
        ({"station": "A\x001"}, 400),
        ({"reason": 5}, 400),
        # past what a datetime holds in UTC: clamped to its edge, an open-ended review
        ({"end": "9999-12-31T23:59:59-14:00"}, 201),
    ):
        r = client.post("/api/v1/reviews", json=good | change, headers=_headers())
        assert r.status_code == status, (change, r.text)
    r = client.post("/api/v1/reviews", content=b"[", headers=_headers())
    assert r.status_code == 400
    r = client.get("/api/v1/reviews", params={"cursor": "abc"}, headers=_headers())
    assert r.status_code == 400
    # a review of a range without readings is recorded, covering none
    r = client.post(
        "/api/v1/reviews",
        json=good | {"start": "2001-01-01T00:00:00Z", "end": "2001-01-02T00:00:00Z"},
        headers=_headers(),
    )
    assert r.status_code == 201 and r.json()["affected"] == 0
    assert "covers no stored reading of A1 pm25" in r.json()["warning"]  # said, not silent
    assert "[2001-01-01T08:00:00+08:00, 2001-01-02T08:00:00+08:00)" in r.json()["warning"]


def test_a_reading_stamped_year_1_does_not_stall_the_hourly_job(
    seeded: PostgresStore, runner: Runner, database_url: str
) -> None:
    """Issue 12: "One reading stamped -62135596800 (line protocol, year 1) makes every later
    hourly run fail on "Out of bounds nanosecond timestamp" … the job's mark then never
    advances, so hours of 300 µg/m³ PM2.5 are never aggregated"; bullet 5: "A job never lets
    one stream's data fail a whole task or hold its mark: the stream is reported (job warning
    with its reason) and the rest proceeds"."""
    _hourly(database_url, runner)
    with db.connect(database_url) as conn:
        before = derived.get_mark(conn, "hourly")
    year_one = datetime(1, 1, 1, tzinfo=UTC)
    assert int((year_one - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds()) == -62135596800
    seeded.write_observations([Observation("A1", "pm25", year_one, 35.0)], source=SOURCE)
    smog = T0 + timedelta(hours=5)
    seeded.write_observations(
        [Observation("A2", "pm25", smog + timedelta(minutes=m), 300.0 + m % 2) for m in range(60)]
        + [
            Observation(
                "A1", "pm25", smog + timedelta(minutes=m), _value(smog + timedelta(minutes=m))
            )
            for m in range(60)
        ],
        source=SOURCE,
    )
    for _ in range(2):  # and every later run too
        report = get("hourly").run(_context(database_url, runner), None, None)
        assert report.errors == []
        with db.connect(database_url) as conn:
            mark = derived.get_mark(conn, "hourly")
        assert before is not None and mark is not None and mark > before
        before = mark
    assert _hour_mean(database_url, "A2", smog) == pytest.approx((300.5, 60.0, True))
    assert _hour_mean(database_url, "A1", smog) == pytest.approx((40.2, 60.0, True))
    # the first run reported the reading it left out; a range run over all time does too
    report = get("hourly").run(
        _context(database_url, runner), datetime(1, 1, 1, tzinfo=UTC), T0 + timedelta(days=1)
    )
    assert report.errors == []
    assert any("A1 pm25" in w and "1 readings timed outside" in w for w in report.warnings)


def test_a_run_by_hand_waits_for_the_run_under_way(
    seeded: PostgresStore, runner: Runner, database_url: str
) -> None:
    """Issue 12, bullet 4: "`ecosense jobs run NAME` started by hand while the platform runs
    works (it waits for, never races, the scheduler's run of the same job)"."""
    waited = [threading.Event(), threading.Event()]
    reports: list[JobReport | BaseException] = [RuntimeError("not run")] * 2

    def run(i: int) -> None:
        try:
            reports[i] = get("hourly").run(
                _context(database_url, runner, on_wait=waited[i].set), None, None
            )
        except BaseException as exc:  # reported below
            reports[i] = exc

    # the scheduler's run of the job holds its lock ...
    with db.connect(database_url) as held, job_store.exclusive(held, "hourly"):
        threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for w in waited:
            assert w.wait(30)
        time.sleep(0.5)
        assert all(t.is_alive() for t in threads)  # both wait, neither computes
        with db.connect(database_url) as conn:
            assert derived.get_mark(conn, "hourly") is None
            # another job is not held up
            with job_store.exclusive(conn, "daily", on_wait=lambda: pytest.fail("daily waited")):
                pass
    for t in threads:
        t.join(120)
    done = [r for r in reports if isinstance(r, JobReport)]
    assert len(done) == 2, reports
    assert all(r.errors == [] for r in done)
    # one after the other: the first wrote the hours, the second (same readings, within the
    # mark's overlap) found every row unchanged
    assert sorted(r.rows > 0 for r in done) == [False, True]
    assert _hour_mean(database_url, "A1", HOUR) == pytest.approx((FULL_MEAN, 60.0, True))


def test_a_soil_sample_whose_ph_is_invalidated_loses_its_class_until_restored(
    store: PostgresStore, runner: Runner, database_url: str
) -> None:
    """Issue 12, bullet 4: jobs exclude invalidated readings from "classes" (GB 15618 risk
    class of a soil sample here) and "restore brings them back"."""
    store.upsert_stations([Station("P1", "Meuse 1", "soil", 5.758, 50.99)])
    sampled = datetime(2026, 10, 1, 2, tzinfo=UTC)
    store.write_observations(
        [
            Observation("P1", "ph", sampled, 6.8),
            Observation("P1", "cd", sampled, 11.7),
            Observation("P1", "pb", sampled, 299.0),
        ],
        source=SOURCE,
    )

    def classes() -> list[str]:
        with db.connect(database_url) as conn:
            found = derived.read_assessments(
                conn, kind="soil", start=sampled, end=sampled + timedelta(seconds=1)
            )
        return found["label"].tolist()

    # no overlap: a run sees only what the review touched (the pH), yet classifies the sample
    ctx = _context(database_url, runner, overlap=timedelta(0))
    assert get("hourly").run(ctx, None, None).errors == []
    assert len(classes()) == 1
    with db.connect(database_url) as conn:
        for action in ("invalidate", "restore"):
            _review, affected = reviews.add(
                conn,
                station="P1",
                parameter="ph",
                start=sampled,
                end=sampled + timedelta(minutes=1),
                action=action,
                reason="pH meter not calibrated" if action == "invalidate" else "re-checked",
                by="reviewer",
            )
            assert affected == 1
            report = get("hourly").run(ctx, None, None)
            assert report.errors == [] and report.tasks == 1
            assert len(classes()) == (0 if action == "invalidate" else 1)


def test_ecosense_jobs_run_waits_for_the_schedulers_run(
    seeded: PostgresStore, database_url: str, tmp_path: Path
) -> None:
    """Issue 12, bullet 4: "`ecosense jobs run NAME` started by hand while the platform runs
    works (it waits for, never races, the scheduler's run of the same job)" — the command in
    its own process, the scheduler's run holding the job's lock."""
    env = {
        **os.environ,
        "ECOSENSE_DATABASE_URL": database_url,
        "ECOSENSE_DATA_DIR": str(tmp_path / "data"),
    }
    lines: list[str] = []
    waiting = threading.Event()
    with db.connect(database_url) as held, job_store.exclusive(held, "hourly"):
        proc = subprocess.Popen(
            [sys.executable, "-m", "ecosense", "jobs", "run", "hourly"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

        def read_stderr() -> None:
            assert proc.stderr is not None
            for line in proc.stderr:
                lines.append(line)
                if "waiting for the run of hourly under way" in line:
                    waiting.set()

        reader = threading.Thread(target=read_stderr, daemon=True)
        reader.start()
        try:
            assert waiting.wait(120), "".join(lines)
            time.sleep(1.0)
            assert proc.poll() is None  # still waiting: it does not race the run under way
        except BaseException:
            proc.kill()
            raise
    stdout, _ = proc.communicate(timeout=300)
    reader.join(10)
    assert proc.returncode == 0, "".join(lines)
    assert re.match(
        r"hourly: \d+ tasks, \d+ periods recomputed, \d+ rows written, 0 errors", stdout
    )
    assert _hour_mean(database_url, "A1", HOUR) == pytest.approx((FULL_MEAN, 60.0, True))


def test_ecosense_review_refuses_with_a_one_line_reason(
    seeded: PostgresStore, cli_env: object, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--parameter", "pm25", "--start", "2026-11-28T09:00", "--end", "2026-11-28T10:00"]
    for station, extra, reason in (
        ("nowhere", ["--reason", "x"], "unknown station 'nowhere'"),
        ("A1", ["--reason", " "], "a review needs a reason"),
        ("A1", ["--reason", "x", "--start", "soon"], "--start 'soon' is not an ISO 8601 time"),
    ):
        assert cli.main(["review", "invalidate", "--station", station, *args, *extra]) == 1
        err = [
            line
            for line in capsys.readouterr().err.strip().splitlines()
            if not line.startswith("ecosense: data dir ")  # the data dir in use (issue 14)
        ]
        assert len(err) == 1 and reason in err[0], err
    assert cli.main(["review", "invalidate", "--station", "A1", *args, "--reason", "ok"]) == 0
    assert capsys.readouterr().out.strip().endswith(": 60 readings affected")
    # a range without readings: recorded, with a warning on stderr (a trial finding)
    old = ["--start", "2001-01-01T00:00", "--end", "2001-01-01T01:00"]
    assert cli.main(["review", "invalidate", "--station", "A1", *args, *old, "--reason", "x"]) == 0
    out = capsys.readouterr()
    assert out.out.strip().endswith(": 0 readings affected")
    assert "warning: review" in out.err and "covers no stored reading of A1 pm25" in out.err
    # the range as the reviewer gave it, in the bureau's time (a trial finding: it was UTC)
    assert "[2001-01-01T00:00:00+08:00, 2001-01-01T01:00:00+08:00)" in out.err
    assert "[2001-01-01T00:00:00+08:00, 2001-01-01T01:00:00+08:00): 0 readings" in out.out
