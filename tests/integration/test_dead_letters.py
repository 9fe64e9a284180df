"""Dead letters: a spooled batch the store refuses for good never stalls ingest (issue 12).

Issue 12: "A spooled batch the store refuses for any reason other than 'unavailable' (e.g. its
station was deleted; a malformed file) is retried forever, and because new writes go to the
spool while it is non-empty, ingest to the database stops for everyone." Now such a batch goes
to ``DATA_DIR/spool/dead`` with its reason beside it, and the replay continues.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ingest.spool import DurableWriter, Spool
from sensors.observations import Observation, Source
from sensors.stations import Station
from store.postgres import PostgresStore

SOURCE = Source("http", "d1")

pytestmark = pytest.mark.integration
T0 = datetime(2026, 11, 28, tzinfo=UTC)


def reading(station: str, minute: int, value: float = 1.0) -> Observation:
    return Observation(station, "pm25", T0 + timedelta(minutes=minute), value)


def delete_station(store: PostgresStore, station: str) -> None:
    with store.connection() as conn:
        conn.execute("DELETE FROM stations WHERE id = %s", (station,))


@pytest.fixture
def two_stations(store: PostgresStore) -> PostgresStore:
    store.upsert_stations(
        [Station("S1", "One", "air", 116.4, 39.9), Station("S2", "Two", "air", 121.5, 31.2)]
    )
    return store


def test_a_batch_of_a_deleted_station_is_dead_lettered_and_the_replay_continues(
    two_stations: PostgresStore, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 12: "its station was deleted" — the batch goes to the dead letters with the
    reason, is logged, and the later batches are replayed."""
    store = two_stations
    spool = Spool(tmp_path / "spool")
    spool.append([(SOURCE, [reading("S1", 0)])])
    doomed = spool.append([(SOURCE, [reading("S2", 0), reading("S2", 1)])])
    spool.append([(SOURCE, [reading("S1", 1)])])
    delete_station(store, "S2")
    writer = DurableWriter(store, spool)
    with caplog.at_level(logging.WARNING, logger="ingest.spool"):
        assert writer.drain() == 2
    assert spool.pending() == 0 and spool.files() == []
    dead = spool.dead / doomed.name
    assert dead.exists()
    reason = (spool.dead / f"{doomed.stem}.reason.txt").read_text()
    assert "unknown station S2" in reason
    assert any("refused" in r.getMessage() for r in caplog.records)
    assert store.count_observations() == 2
    # the dead letter is kept as written: it can be put back once its station exists again
    assert [b for _, b in Spool(spool.dead).batches()] == [
        [(SOURCE, [reading("S2", 0), reading("S2", 1)])]
    ]


def test_corrupt_spool_files_are_dead_lettered(two_stations: PostgresStore, tmp_path: Path) -> None:
    """Issue 12: "a malformed file" — not JSON, or JSON that is not a batch of readings."""
    store = two_stations
    spool = Spool(tmp_path / "spool")
    spool.append([(SOURCE, [reading("S1", 0)])])
    bad = {
        "00000000000000000002.json": b"\x00\xff{[not json",
        "00000000000000000003.json": b'{"a": 1}',
        "00000000000000000004.json": b'[["S1", "pm25", "yesterday", 1.0, "N", null, null, "m"]]',
        "00000000000000000005.json": b"[[1, 2]]",
    }
    for name, data in bad.items():
        (spool.directory / name).write_bytes(data)
    spool = Spool(spool.directory)  # a restart finds them
    spool.append([(SOURCE, [reading("S1", 1)])])
    assert spool.pending() == 6
    assert DurableWriter(store, spool).drain() == 2
    assert spool.pending() == 0
    assert sorted(p.name for p in spool.dead.glob("*.json")) == sorted(bad)
    for name in bad:
        note = spool.dead / name.replace(".json", ".reason.txt")
        assert note.read_text().strip(), "every dead letter has its reason"
    assert store.count_observations() == 2
    # numbering goes on after the dead letters: a new batch never takes a dead letter's name
    spool.dead_letter(spool.append([(SOURCE, [reading("S1", 2)])]), "test")
    assert Spool(spool.directory).append([(SOURCE, [reading("S1", 3)])]).name not in {
        p.name for p in spool.dead.glob("*.json")
    }


def test_new_writes_reach_the_database_after_a_refused_batch(
    two_stations: PostgresStore, tmp_path: Path
) -> None:
    """Issue 12: "ingest to the database stops for everyone" — no longer: once the refused
    batch is dead-lettered the spool is empty and new writes go straight to the store."""
    store = two_stations
    spool = Spool(tmp_path / "spool")
    spool.append([(SOURCE, [reading("S2", 0)])])
    delete_station(store, "S2")
    writer = DurableWriter(store, spool, retry_seconds=0.2)
    writer.start()
    try:
        writer.write([reading("S1", 0)], SOURCE)  # spooled behind the refused batch
        deadline = time.monotonic() + 20
        while (spool.pending() or store.count_observations() < 1) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert spool.pending() == 0 and store.count_observations() == 1
        assert writer.write([reading("S1", 1)], SOURCE) == 1
        assert store.count_observations() == 2, "written to the database, not the spool"
        assert spool.files() == []
    finally:
        writer.stop()


def test_a_dead_letter_put_back_is_replayed(two_stations: PostgresStore, tmp_path: Path) -> None:
    """The README's recipe: fix the cause, move the ``.json`` back into the spool folder."""
    store = two_stations
    spool = Spool(tmp_path / "spool")
    doomed = spool.append([(SOURCE, [reading("S2", 0)])])
    delete_station(store, "S2")
    writer = DurableWriter(store, spool, retry_seconds=0.2)
    writer.start()
    try:
        deadline = time.monotonic() + 20
        while not (spool.dead / doomed.name).exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        store.upsert_stations([Station("S2", "Two", "air", 121.5, 31.2)])
        (spool.dead / doomed.name).rename(doomed)
        while store.count_observations() < 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert store.count_observations() == 1 and spool.files() == []
    finally:
        writer.stop()


def test_only_the_readings_of_a_deleted_station_are_dead_lettered(
    two_stations: PostgresStore, tmp_path: Path
) -> None:
    """A batch naming two stations (the operator token may), one of them deleted: the other's
    readings are stored. The deleted station had written before, so the store still knew its
    stream: without the check its readings would have been stored under a stream that no
    longer exists."""
    store = two_stations
    store.write_observations([reading("S2", 0)], source=SOURCE)  # the store now knows S2's stream
    spool = Spool(tmp_path / "spool")
    mixed = spool.append([(SOURCE, [reading("S1", 0), reading("S2", 1), reading("S1", 1)])])
    delete_station(store, "S2")
    assert DurableWriter(store, spool).drain() == 1
    assert store.count_observations() == 1 + 2  # S2's first reading is stored (orphaned)
    assert store.read_frame(station="S1")["value"].tolist() == [1.0, 1.0]
    dead = list(Spool(spool.dead).batches())
    assert [b for _, b in dead] == [[(SOURCE, [reading("S2", 1)])]]
    assert dead[0][0].name == mixed.name
    note = (spool.dead / f"{mixed.stem}.reason.txt").read_text()
    assert "unknown station S2" in note and "2 other readings stored" in note
