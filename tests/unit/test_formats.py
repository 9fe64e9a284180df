"""The download formats' pure parts (api/formats.py) and the producer thread of a download
(api/datasets.py): CSV chunks become typed batches, each format reads back, a client that
goes away closes the producer (and so returns its database connection)."""

from __future__ import annotations

import asyncio
import io
import threading
from collections.abc import Iterator

import pyarrow.parquet as pq
import pytest

from api import formats
from api.datasets import in_one_thread
from store.export import READING_COLUMNS

CSV = (
    b"station,parameter,time,value,unit,flag,interval,statistic,basis\n"
    b"A1,pm25,2026-11-28T00:00:00+08:00,12.5,ug/m3,N,,,measured\n"
    b'A1,pm25,2026-11-28T01:00:00.250000+08:00,,ug/m3,"",PT1H,avg,measured\n'
)


def _chunks(size: int) -> Iterator[bytes]:
    for i in range(0, len(CSV), size):
        yield CSV[i : i + size]


@pytest.mark.parametrize("size", [1, 7, 1 << 20])
def test_csv_chunks_become_typed_batches(size: int) -> None:
    batches = list(formats.batches(_chunks(size), READING_COLUMNS, "Asia/Shanghai"))
    rows = [r for b in batches for r in b.to_pylist()]
    assert len(rows) == 2
    assert rows[0]["time"].isoformat() == "2026-11-28T00:00:00+08:00"
    assert rows[1]["time"].isoformat() == "2026-11-28T01:00:00.250000+08:00"
    assert rows[0]["value"] == 12.5 and rows[1]["value"] is None  # empty: null
    assert rows[0]["interval"] is None and rows[1]["flag"] == ""  # "" stays an empty text


def test_parquet_and_csv_bodies() -> None:
    assert b"".join(formats.csv_body(_chunks(5))) == formats.BOM + CSV
    schema = formats.arrow_schema(READING_COLUMNS, "Asia/Shanghai", {"dataset": "x"})
    body = b"".join(
        formats.parquet_body(formats.batches(_chunks(9), READING_COLUMNS, "Asia/Shanghai"), schema)
    )
    table = pq.read_table(io.BytesIO(body))
    assert table.num_rows == 2 and table.schema.metadata[b"dataset"] == b"x"
    empty = b"".join(formats.parquet_body(iter(()), schema))
    assert pq.read_table(io.BytesIO(empty)).num_rows == 0


@pytest.mark.parametrize("size", [1, 7, 1 << 20])
def test_csv_headings_carry_units_whatever_the_chunks(size: int) -> None:
    """Units in the CSV's one header row (as the xlsx sheet's), the rows untouched."""
    from store.export import STATION_COLUMNS

    body = b"".join(formats.csv_body(_chunks(size), READING_COLUMNS))
    first, rest = body[len(formats.BOM) :].split(b"\n", 1)
    assert first.decode().split(",") == [c.name for c in READING_COLUMNS]  # no unit here
    assert rest == CSV.split(b"\n", 1)[1]
    stations = b"id,name,kind,lon,lat,city,simulated\nA1,One,air,116.4,39.9,Beijing,f\n"
    names = ["id", "name", "kind", "lon", "lat", "city", "simulated"]
    assert [c.name for c in STATION_COLUMNS] == names
    out = b"".join(formats.csv_body(iter([stations[:5], stations[5:]]), STATION_COLUMNS))
    assert out.split(b"\n")[0] == formats.BOM + (
        b"id,name,kind,lon (degrees_east),lat (degrees_north),city,simulated"
    )
    assert out.split(b"\n")[1] == b"A1,One,air,116.4,39.9,Beijing,f"
    other = b"a,b\n1,2\n"  # not the columns described: as it came
    assert b"".join(formats.csv_body(iter([other]), STATION_COLUMNS)) == formats.BOM + other


def test_headers_carry_units_and_flags_their_meanings() -> None:
    schema = formats.arrow_schema([c for c in READING_COLUMNS if c.name == "time"], "UTC")
    assert formats.header(schema.field(0)) == "time"
    meanings = formats._meanings({"N": 0, "": 1, "a b": 2})
    assert meanings["flag_meanings"] == "N empty a_b"
    assert list(meanings["flag_values"]) == [0, 1, 2]


def test_a_download_left_early_closes_its_producer() -> None:
    closed = threading.Event()

    def body() -> Iterator[bytes]:
        try:
            for _ in range(10_000):
                yield b"x" * 1024
        finally:
            closed.set()

    async def leave() -> None:
        stream = in_one_thread(body())
        assert await stream.__anext__() == b"x" * 1024
        await stream.aclose()  # type: ignore[attr-defined]

    asyncio.run(leave())
    assert closed.wait(10)


def test_a_producer_s_error_ends_the_download() -> None:
    def body() -> Iterator[bytes]:
        yield b"a"
        raise RuntimeError("the store went away")

    async def read() -> list[bytes]:
        return [chunk async for chunk in in_one_thread(body())]

    with pytest.raises(RuntimeError, match="went away"):
        asyncio.run(read())
