"""The store against real servers: the embedded PostgreSQL and PostgreSQL 15 + TimescaleDB."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from sensors.observations import Observation, Source
from sensors.stations import Station
from store import migrations
from store.errors import Conflict, NotFound
from store.postgres import PostgresStore

SOURCE = Source("http", "test-device")

pytestmark = pytest.mark.integration
T0 = datetime(2026, 11, 28, tzinfo=UTC)


def seed(store: PostgresStore) -> None:
    store.upsert_stations(
        [Station("S1", "One", "air", 116.4, 39.9), Station("S2", "Two", "water", 120.1, 30.2)]
    )


def obs(i: int, value: float | None = None, **kw: object) -> Observation:
    return Observation(
        "S1", "pm25", T0 + timedelta(minutes=i), float(i if value is None else value), **kw
    )  # type: ignore[arg-type]


def test_migrations_are_versioned_and_idempotent(store: PostgresStore, database_url: str) -> None:
    store.migrate()
    store.migrate()
    with psycopg.connect(database_url) as conn:
        assert migrations.current_version(conn) == max(m.version for m in migrations.available())
        assert migrations.apply(conn) == []


def test_timescaledb_hypertable_when_the_extension_is_there(
    store: PostgresStore, database_url: str, server_admin_url: str
) -> None:
    with psycopg.connect(database_url) as conn:
        available = conn.execute(
            "SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'"
        ).fetchone()
        assert store.timescale == bool(available)
        if available:
            row = conn.execute(
                "SELECT hypertable_name FROM timescaledb_information.hypertables"
            ).fetchone()
            assert row == ("observations",)


def test_write_then_read_back(store: PostgresStore) -> None:
    seed(store)
    assert store.write_observations([obs(i) for i in range(10)], source=SOURCE) == 10
    frame = store.read_frame(
        station="S1",
        parameter="pm25",
        start=T0 + timedelta(minutes=2),
        end=T0 + timedelta(minutes=5),
    )
    assert list(frame["value"]) == [2.0, 3.0, 4.0]
    assert str(frame["time"].dt.tz) == "UTC"
    assert set(frame["unit"]) == {"ug/m3"}
    table = store.read_arrow(station="S1")
    assert table.num_rows == 10


def test_resent_readings_do_not_duplicate_and_corrections_replace(store: PostgresStore) -> None:
    seed(store)
    store.write_observations([obs(i) for i in range(5)], source=SOURCE)
    store.write_observations([obs(i) for i in range(5)], source=SOURCE)  # the same again
    store.write_observations(
        [obs(3, 99.0, flag="M"), obs(7)], source=SOURCE
    )  # a correction and a new one
    frame = store.read_frame(station="S1")
    assert len(frame) == 6
    assert store.count_observations() == 6
    row = frame[frame["time"] == T0 + timedelta(minutes=3)].iloc[0]
    assert (row["value"], row["flag"]) == (99.0, "M")


def test_duplicates_inside_one_batch_keep_the_last(store: PostgresStore) -> None:
    seed(store)
    assert store.write_observations([obs(1, 1.0), obs(1, 2.0)], source=SOURCE) == 1
    assert list(store.read_frame(station="S1")["value"]) == [2.0]


def test_streams_keep_series_apart(store: PostgresStore) -> None:
    seed(store)
    store.write_observations(
        [
            obs(0),
            obs(0, 5.0, interval="PT1H", statistic="avg"),
            obs(0, 6.0, interval="PT1H", statistic="avg", basis="converted"),
        ],
        source=SOURCE,
    )
    assert len(store.read_frame(station="S1")) == 3
    hourly = store.read_frame(station="S1", interval="PT1H", statistic="avg", basis="measured")
    assert list(hourly["value"]) == [5.0]


def test_pagination_walks_every_row_once(store: PostgresStore) -> None:
    seed(store)
    store.write_observations([obs(i) for i in range(25)], source=SOURCE)
    seen: list[datetime] = []
    after = None
    while True:
        page = store.read_observations(station="S1", limit=10, after=after)
        if not page:
            break
        seen += [r.time for r in page]
        after = (page[-1].stream_id, page[-1].time)
    assert seen == [T0 + timedelta(minutes=i) for i in range(25)]


def test_latest_per_stream(store: PostgresStore) -> None:
    seed(store)
    store.write_observations(
        [obs(i) for i in range(3)] + [Observation("S2", "ph", T0, 7.2)], source=SOURCE
    )
    latest = store.latest()
    assert dict(zip(latest["station"], latest["value"], strict=True)) == {"S1": 2.0, "S2": 7.2}
    assert len(store.latest("S2")) == 1


def test_writing_for_an_unknown_station_is_not_found(store: PostgresStore) -> None:
    with pytest.raises(NotFound):
        store.write_observations([Observation("NOPE", "pm25", T0, 1.0)], source=SOURCE)


def test_stations_import_is_idempotent(store: PostgresStore) -> None:
    seed(store)
    seed(store)
    store.upsert_stations([Station("S1", "One renamed", "air", 116.4, 39.9, {"x": 1})])
    names = {s.id: s.name for s in store.list_stations()}
    assert names == {"S1": "One renamed", "S2": "Two"}
    assert store.get_station("S1").attributes == {"x": 1}  # type: ignore[union-attr]
    assert store.existing_station_ids(["S1", "S9"]) == {"S1"}


def test_device_tokens_are_hashed_and_renewable(store: PostgresStore, database_url: str) -> None:
    seed(store)
    token = store.add_device("d1", "S1", mn="010000A8900016F000169DC0", password="123456")
    device = store.device_for_token(token)
    assert device is not None and device.station == "S1"
    assert store.device_for_token("es_wrong") is None
    with psycopg.connect(database_url) as conn:
        stored = conn.execute("SELECT token_hash FROM devices").fetchone()
    assert stored is not None and token not in stored[0]
    assert store.device_for_mn("010000A8900016F000169DC0", "123456") == device
    assert store.device_for_mn("010000A8900016F000169DC0", "bad") is None
    renewed = store.add_device("d1", "S1")
    assert renewed != token and store.device_for_token(renewed) is not None
    with pytest.raises(Conflict):
        store.add_device("d1", "S2")
    with pytest.raises(NotFound):
        store.add_device("d2", "S9")


def test_ping_and_server_info(store: PostgresStore) -> None:
    assert store.ping()
    assert store.server_info()["server_version"]


def test_a_code_the_dictionary_does_not_know_is_never_a_parameter_nor_a_stream(
    store: PostgresStore,
) -> None:
    """Issue 12: unknown codes are held per device in the quarantine, "not added to the shared
    dictionary" — the store refuses them (this test asserted the old behaviour, a raw code kept
    as a parameter and a stream of unit "")."""
    seed(store)
    with store.connection() as conn:
        before = conn.execute("SELECT count(*) FROM parameters").fetchone()
    with pytest.raises(NotFound, match="a99999"):
        store.write_observations([Observation("S1", "a99999", T0, 1.5)], source=SOURCE)
    with store.connection() as conn:
        assert conn.execute("SELECT count(*) FROM parameters").fetchone() == before
        assert conn.execute("SELECT count(*) FROM streams").fetchone() == (0,)


def test_amount_streams_are_kept(store: PostgresStore) -> None:
    seed(store)
    store.write_observations(
        [
            Observation("S1", "ww_flow", T0, 63.0, interval="PT1H", statistic="cou"),
            Observation("S1", "cod", T0, 2.0, interval="PT1H", statistic="cou"),
            Observation("S1", "cod", T0, 40.1, interval="PT1H", statistic="avg"),
        ],
        source=SOURCE,
    )
    frame = store.read_frame(station="S1")
    units = {
        (r.parameter, r.statistic if isinstance(r.statistic, str) else None): r.unit
        for r in frame.itertuples()
    }
    assert units == {
        ("ww_flow", "cou"): "m3",
        ("cod", "cou"): "kg",
        ("cod", "avg"): "mg/L",
    }


def test_columns_are_written_as_rows_are(store: PostgresStore) -> None:
    """Columnar batches (issue 17: Arrow through pgpq into the binary COPY) store what the
    row path stores: provenance per batch (none for an old spool file's), a re-send changes
    nothing, a correction keeps the previous value as a version, a (stream, time) twice in
    one call keeps the last (the row path), several batches in one transaction."""
    from sensors.observations import ObservationColumns

    seed(store)
    first = ObservationColumns.of([obs(i) for i in range(5)])
    other = ObservationColumns.of([Observation("S2", "water_cd", T0, 0.002, "N", "PT1H", "avg")])
    assert store.write_batches([(SOURCE, first), (None, other)]) == 6
    assert store.write_batches([(SOURCE, first)]) == 5  # re-sent: nothing changes
    corrected = ObservationColumns.of([obs(3, 99.0, flag="M"), obs(7)])
    assert store.write_batches([(Source("mqtt"), corrected)]) == 2
    twice = ObservationColumns.of([obs(9, 1.0), obs(9, 2.0)])
    assert store.write_batches([(SOURCE, twice)]) == 1
    frame = store.read_frame(station="S1")
    assert list(frame["value"]) == [0.0, 1.0, 2.0, 99.0, 4.0, 7.0, 2.0]
    assert list(frame["flag"]) == ["N", "N", "N", "M", "N", "N", "N"]
    with store.connection() as conn:
        versions = conn.execute("SELECT value, flag FROM observation_versions").fetchall()
        protocols = conn.execute(
            "SELECT s.station_id, src.protocol FROM observations o JOIN streams s"
            " ON s.id = o.stream_id LEFT JOIN sources src ON src.id = o.source_id"
            " ORDER BY s.station_id, o.time"
        ).fetchall()
    assert sorted(versions) == [(1.0, "N"), (3.0, "N")]  # the correction's and the repeat's
    assert protocols[0] == ("S1", "http") and ("S1", "mqtt") in protocols
    assert protocols[-1] == ("S2", None)  # no provenance
    cd = store.read_frame(station="S2")
    assert (cd["value"].tolist(), cd["interval"].tolist()) == ([0.002], ["PT1H"])
