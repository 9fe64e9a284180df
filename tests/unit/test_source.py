"""The provenance value type and the spool's file format (pure: no database)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from ingest.spool import _decode, _encode
from sensors.observations import PROTOCOLS, Observation, Source

T0 = datetime(2026, 11, 28, tzinfo=UTC)


def test_a_source_names_a_known_protocol_and_is_a_hashable_value() -> None:
    assert PROTOCOLS == ("http", "lineprotocol", "hj212", "mqtt", "file")
    assert Source("hj212", "logger-1") == Source("hj212", "logger-1")
    assert (
        len({Source("file", None, "alice", "a.csv"), Source("file", None, "alice", "a.csv")}) == 1
    )
    with pytest.raises(ValueError, match="protocol 'ftp'"):
        Source("ftp")


def test_spool_files_keep_each_batch_source_and_the_first_format_still_reads() -> None:
    a = [Observation("S1", "pm25", T0, 1.0, "M", "PT1H", "avg", "converted")]
    b = [Observation("S2", "so2", T0, 2.0)]
    batches = [(Source("http", "d1"), a), (Source("file", None, "bob", "x.xlsx"), b), (None, a)]
    assert _decode(_encode(batches)) == batches
    legacy = json.dumps([["S1", "pm25", T0.isoformat(), 1.0, "M", "PT1H", "avg", "converted"]])
    assert _decode(legacy.encode()) == [(None, a)]
    with pytest.raises(ValueError):
        _decode(b'{"v": 99}')
