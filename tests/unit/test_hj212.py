"""HJ 212-2017 codec: Appendix A's CRC, framing, parsing, and the platform's replies."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest import hj212
from ingest.hj212_readings import RawReading, readings, rehome, status_readings

APPENDIX_A = (
    b"##0101QN=20160801085857223;ST=32;CN=1062;PW=100000;"
    b"MN=010000A8900016F000169DC0;Flag=5;CP=&&RtdInterval=30&&1C80\r\n"
)
NOW = datetime(2026, 11, 28, tzinfo=UTC)


def test_appendix_a_example_crc_is_1c80() -> None:
    segment = APPENDIX_A[6:-6]
    assert hj212.crc(segment) == 0x1C80
    assert hj212.crc(segment) != 0x4B37  # what CRC-16/MODBUS would give: not the standard's


def test_appendix_a_example_parses() -> None:
    p = hj212.parse(APPENDIX_A)
    assert (p.qn, p.st, p.cn, p.pw, p.mn, p.flag) == (
        "20160801085857223",
        "32",
        "1062",
        "100000",
        "010000A8900016F000169DC0",
        5,
    )
    assert p.version == 1 and p.wants_reply
    assert p.cp_groups() == [{"RtdInterval": "30"}]


def test_lower_case_crc_is_accepted() -> None:
    assert hj212.parse(APPENDIX_A.replace(b"1C80", b"1c80")).cn == "1062"


@pytest.mark.parametrize(
    ("packet", "reason"),
    [
        (APPENDIX_A.replace(b"1C80", b"1C81"), "CRC"),
        (APPENDIX_A.replace(b"##0101", b"##0100"), "length"),
        (APPENDIX_A.replace(b"##0101", b"##01a1"), "4 decimal digits"),
        (APPENDIX_A[:-2], "CR LF"),
        (b"$" + APPENDIX_A[1:], "##"),
        (APPENDIX_A.replace(b"1C80", b"ZZZZ"), "hex"),
        (hj212.frame(b"QN=1;ST=32;CN=2011;PW=1;MN=1;Flag=5;CP=&&x"), "not closed"),
        (hj212.frame(b"QN=1;ST=32;PW=1;MN=1;Flag=5;CP=&&&&"), "no CN"),
        (b"##1025" + b"x" * 1025 + b"0000\r\n", "exceeds 1024"),
    ],
)
def test_bad_packets_raise_protocol_error(packet: bytes, reason: str) -> None:
    with pytest.raises(hj212.ProtocolError, match=reason) as info:
        hj212.parse(packet)
    assert isinstance(info.value, ValueError)


def test_data_reply_9014_echoes_qn_pw_mn() -> None:
    upload = hj212.parse(
        hj212.encode(
            cn="2011",
            mn="MN1",
            pw="123456",
            st="22",
            qn="20260101000000001",
            flag=5,
            cp="DataTime=20260101000000;a34004-Rtd=35,a34004-Flag=N",
        )
    )
    answer = hj212.parse(hj212.reply(upload, "9014"))
    assert (answer.qn, answer.st, answer.cn, answer.pw, answer.mn, answer.flag, answer.cp) == (
        "20260101000000001",
        "91",
        "9014",
        "123456",
        "MN1",
        4,
        "",
    )


def test_frame_refuses_an_oversized_segment() -> None:
    with pytest.raises(hj212.ProtocolError):
        hj212.frame("x" * 1025)


def test_decoder_joins_split_reads_and_splits_joined_packets() -> None:
    dec = hj212.FrameDecoder()
    two = APPENDIX_A + APPENDIX_A
    got: list[bytes | hj212.ProtocolError] = []
    for i in range(0, len(two), 7):
        got += dec.feed(two[i : i + 7])
    assert got == [APPENDIX_A, APPENDIX_A] and dec.pending() == 0


def test_decoder_reports_garbage_and_resynchronises() -> None:
    got = hj212.FrameDecoder().feed(b"hello" + APPENDIX_A + b"##99x" + APPENDIX_A)
    assert [g for g in got if isinstance(g, bytes)] == [APPENDIX_A, APPENDIX_A]
    assert isinstance(got[0], hj212.ProtocolError) and isinstance(got[2], hj212.ProtocolError)


def test_realtime_upload_readings_with_sample_time_flags_and_converted() -> None:
    p = hj212.parse(
        hj212.encode(
            cn="2011",
            mn="M",
            pw="P",
            st="31",
            qn="1",
            flag=5,
            cp="DataTime=20261128080000;a21026-Rtd=35.1,a21026-ZsRtd=40.2,a21026-Flag=M;"
            "a34013-SampleTime=20261128075900,a34013-Rtd=5,a34013-Flag=N;a99999-Rtd=1",
        )
    )
    got = readings(p, "S1", now=NOW)
    by = {(o.parameter, o.basis): o for o in got.observations}
    assert by[("flue_so2", "measured")].value == 35.1
    assert by[("flue_so2", "converted")].value == 40.2
    assert by[("flue_so2", "measured")].flag == "M"
    assert by[("flue_so2", "measured")].time == NOW
    assert by[("flue_dust", "measured")].time == NOW - timedelta(minutes=1)
    # a code the dictionary does not know is no observation: its reading is returned apart,
    # to be held in the device's quarantine (issue 12)
    assert ("a99999", "measured") not in by and got.unknown_codes == ["a99999"]
    assert got.raw == [RawReading("a99999", NOW, 1.0, "N", None, None, "measured")]


def test_hourly_upload_keeps_each_statistic_as_its_own_stream() -> None:
    p = hj212.parse(
        hj212.encode(
            cn="2061",
            mn="M",
            pw="P",
            st="32",
            qn="1",
            flag=4,
            cp="DataTime=20261128070000;w00000-Cou=63.0,w00000-Min=16.4,w00000-Avg=17.5,"
            "w00000-Max=20.1,w00000-Flag=N;w01018-Avg=40.1,w01018-Flag=D",
        )
    )
    got = readings(p, "S1", now=NOW)
    assert {(o.parameter, o.interval, o.statistic) for o in got.observations} == {
        ("ww_flow", "PT1H", s) for s in ("cou", "min", "avg", "max")
    } | {("cod", "PT1H", "avg")}
    assert {o.flag for o in got.observations if o.parameter == "cod"} == {"D"}


def test_noise_minute_upload_of_table_c26() -> None:
    """HJ 212-2017 Table C.26: a noise unit (ST=23) sends L5 … LMn as ``-Data`` per minute;
    they are the GB 3096 levels in dB(A) (before, ST=23 was taken for air and every code was
    unknown)."""
    p = hj212.parse(
        hj212.encode(
            cn="2051",
            mn="010000A8900016F000169DC0",
            pw="123456",
            st="23",
            qn="20160801085000001",
            flag=5,
            cp="DataTime=20261128084000;L5-Data=53.0;L10-Data=53.0;L50-Data=49.0;"
            "L90-Data=45.0;L95-Data=43.0;Leq-Data=50.0;LMx-Data=54.0;LMn-Data=42.0",
        )
    )
    got = readings(p, "N1", now=NOW)
    assert got.problems == [] and got.unknown_codes == []
    assert {(o.parameter, o.value, o.interval, o.statistic) for o in got.observations} == {
        ("l5", 53.0, "PT1M", "avg"),
        ("l10", 53.0, "PT1M", "avg"),
        ("l50", 49.0, "PT1M", "avg"),
        ("l90", 45.0, "PT1M", "avg"),
        ("l95", 43.0, "PT1M", "avg"),
        ("laeq", 50.0, "PT1M", "avg"),
        ("lmax", 54.0, "PT1M", "avg"),
        ("lmin", 42.0, "PT1M", "avg"),
    }


def test_2005_packet_without_qn_and_flag_maps_old_codes() -> None:
    p = hj212.parse(
        hj212.encode(
            cn="2011",
            mn="OLD",
            pw="P",
            st="32",
            qn=None,
            flag=None,
            cp="DataTime=20261128080000;011-Rtd=12.5,011-Flag=N",
        )
    )
    assert p.version == 0 and not p.wants_reply
    [obs] = readings(p, "S1", now=NOW).observations
    assert obs.parameter == "cod" and obs.value == 12.5


def test_bad_item_is_reported_and_the_others_kept() -> None:
    p = hj212.parse(
        hj212.encode(
            cn="2011",
            mn="M",
            pw="P",
            st="22",
            qn="1",
            flag=4,
            cp="DataTime=20261128080000;a34004-Rtd=abc;a34002-Rtd=60;a21026-Rtd=1,a21026-Flag=Q;"
            "a21005-Rtd=NaN",
        )
    )
    got = readings(p, "S1", now=NOW)
    assert [o.parameter for o in got.observations] == ["pm10"]
    assert len(got.problems) == 3


@given(st.binary(max_size=2000))
def test_arbitrary_bytes_never_raise_anything_but_protocol_error(data: bytes) -> None:
    for item in hj212.FrameDecoder().feed(data):
        if isinstance(item, bytes):
            with contextlib.suppress(hj212.ProtocolError):
                hj212.parse(item)
    with contextlib.suppress(hj212.ProtocolError):
        hj212.parse(data)


_text = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789.-", min_size=1, max_size=12)


@given(
    cn=st.sampled_from(["2011", "2051", "2061", "2031", "1062", "9014"]),
    mn=_text,
    pw=_text,
    qn=st.none() | st.from_regex(r"[0-9]{17}", fullmatch=True),
    flag=st.none() | st.integers(0, 255),
    groups=st.lists(st.dictionaries(_text, _text, min_size=1, max_size=4), max_size=6),
)
def test_encode_parse_round_trip(
    cn: str, mn: str, pw: str, qn: str | None, flag: int | None, groups: list[dict[str, str]]
) -> None:
    packet = hj212.encode(cn=cn, mn=mn, pw=pw, st="32", qn=qn, flag=flag, cp=groups)
    if len(packet) > 1024 + 12:
        return
    p = hj212.parse(packet)
    assert (p.cn, p.mn, p.pw, p.qn, p.flag) == (cn, mn, pw, qn, flag)
    assert p.cp_groups() == [g for g in groups if g]
    assert hj212.FrameDecoder().feed(packet[:5]) == []


@given(st.binary(max_size=300), st.integers(1, 50))
def test_any_chunking_of_a_stream_gives_the_same_frames(noise: bytes, chunk: int) -> None:
    stream = noise + APPENDIX_A + noise + APPENDIX_A
    whole = [f for f in hj212.FrameDecoder().feed(stream) if isinstance(f, bytes)]
    dec = hj212.FrameDecoder()
    parts: list[bytes] = []
    for i in range(0, len(stream), chunk):
        parts += [f for f in dec.feed(stream[i : i + chunk]) if isinstance(f, bytes)]
    assert parts == whole
    assert whole.count(APPENDIX_A) >= 2


@given(st.binary(max_size=1100))
def test_table_crc_equals_the_standards_bitwise_algorithm(data: bytes) -> None:
    assert hj212.crc(data) == hj212.crc_bitwise(data)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("20240101080000", datetime(2024, 1, 1, 0, 0, tzinfo=UTC)),
        ("20240229235959", datetime(2024, 2, 29, 15, 59, 59, tzinfo=UTC)),
        ("20240101080000250", datetime(2024, 1, 1, 0, 0, 0, 250_000, tzinfo=UTC)),
    ],
)
def test_data_time_is_china_standard_time(text: str, expected: datetime) -> None:
    """HJ 212-2017 §6.3.3 Table 3: DataTime is YYYYMMDDhhmmss (QN adds zzz), local time."""
    assert hj212.parse_time(text) == expected


@pytest.mark.parametrize(
    "text",
    ["20230229000000", "20241301000000", "20240101240000", "2024010108000", "٢٠٢٤0101080000"],
)
def test_impossible_or_malformed_times_are_protocol_errors(text: str) -> None:
    with pytest.raises(hj212.ProtocolError):
        hj212.parse_time(text)


def test_equipment_status_is_raw_not_an_observation() -> None:
    """SBxxx-RS is in no parameter table: held per device like any unknown code (issue 12)."""
    p = hj212.parse(
        hj212.encode(
            cn="2021",
            mn="M",
            pw="P",
            st="32",
            qn="1",
            flag=5,
            cp="DataTime=20261128080000;SB1-RS=1",
        )
    )
    got = status_readings(p, "S1")
    assert got.observations == [] and got.unknown_codes == ["SB1-RS"]
    assert got.raw == [RawReading("SB1-RS", NOW, 1.0, "N", None, None, "measured")]


def test_rehome_converts_from_the_mapped_unit_and_refuses_like_any_reading() -> None:
    held = [
        RawReading("x01", NOW, 0.035, "N"),
        RawReading("x01", NOW + timedelta(days=2), 0.040, "N"),  # beyond the future window
    ]
    found, problems = rehome("S1", held, "pm25", "mg/m3", now=NOW, max_future=timedelta(hours=1))
    assert [(o.parameter, o.time, o.value) for o in found] == [("pm25", NOW, pytest.approx(35.0))]
    assert len(problems) == 1 and "ahead" in problems[0]


# ------------------------------------------------------------- validation (issue 12)
def test_backdated_and_impossible_values_are_problems_not_errors() -> None:
    """Issue 12: devices may not backdate (year 1, 1900, beyond ECOSENSE_MAX_PAST_DAYS), nor
    send physically impossible values; the rest of the packet is kept."""
    now = datetime(2026, 11, 28, tzinfo=UTC)
    for data_time, reason in (
        ("00010101000000", "before 2000-01-01"),
        ("19000101000000", "before 2000-01-01"),
        ("20261001000000", "more than 30 days in the past"),
    ):
        packet = hj212.parse(
            hj212.encode(
                cn="2011", mn="M", pw="P", st="32", cp=f"DataTime={data_time};w01018-Rtd=1"
            )
        )
        found = readings(packet, "W1", now=now, max_past=timedelta(days=30))
        assert found.observations == [] and reason in found.problems[0]
    packet = hj212.parse(
        hj212.encode(
            cn="2061",
            mn="M",
            pw="P",
            st="32",
            cp="DataTime=20261127000000;w01018-Avg=-1;w20115-Avg=4,w20115-Cou=2;w21003-Avg=1e308",
        )
    )
    found = readings(packet, "W1", now=now, max_past=timedelta(days=30))
    assert [(o.parameter, o.statistic, o.value) for o in found.observations] == [
        ("water_cd", "avg", pytest.approx(0.004)),  # Table B.1: µg/L → mg/L
        ("water_cd", "cou", pytest.approx(0.002)),  # and its amount g → kg
    ]
    assert len(found.problems) == 2
    assert all("physically impossible" in p for p in found.problems)
