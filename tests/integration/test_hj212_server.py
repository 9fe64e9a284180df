"""The HJ 212-2017 TCP server against a real store, spoken to over real TCP sockets."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from ingest import hj212
from ingest.hj212_server import Hj212Server, ThreadedHj212Server
from sensors.stations import Station
from store import quarantine
from store.postgres import PostgresStore

pytestmark = pytest.mark.integration
MN, PW = "010000A8900016F000169DC0", "123456"


@pytest.fixture
def server(store: PostgresStore) -> Iterator[tuple[ThreadedHj212Server, tuple[str, int]]]:
    store.upsert_stations([Station("W1", "Outfall 1", "wastewater", 120.1, 30.2)])
    store.add_device("logger-1", "W1", mn=MN, password=PW)
    # many loggers on one loopback address: no per-address cap here (test_abuse tests it)
    threaded = ThreadedHj212Server(Hj212Server(store, idle_timeout=3.0, max_per_address=10_000))
    address = threaded.start("127.0.0.1", 0)
    yield threaded, address
    threaded.stop()


def connect(address: tuple[str, int]) -> socket.socket:
    s = socket.create_connection(address, timeout=5)
    s.settimeout(5)
    _decoders.pop(id(s), None)  # a new socket may reuse a closed one's id
    return s


def upload(
    qn: str, cp: str, *, cn: str = "2011", flag: int = 5, pw: str = PW, mn: str = MN, st: str = "32"
) -> bytes:
    return hj212.encode(cn=cn, mn=mn, pw=pw, st=st, qn=qn, flag=flag, cp=cp)


def now_cst(minutes_ago: int = 0) -> str:
    return (
        (datetime.now(UTC) - timedelta(minutes=minutes_ago))
        .astimezone(hj212.CST)
        .strftime("%Y%m%d%H%M%S")
    )


_decoders: dict[int, tuple[hj212.FrameDecoder, list[bytes]]] = {}


def receive(s: socket.socket) -> hj212.Packet:
    """The next packet from the platform (several may arrive in one TCP read)."""
    decoder, frames = _decoders.setdefault(id(s), (hj212.FrameDecoder(), []))
    while not frames:
        chunk = s.recv(4096)
        assert chunk, "connection closed"
        for frame in decoder.feed(chunk):
            assert isinstance(frame, bytes), frame
            frames.append(frame)
    return hj212.parse(frames.pop(0))


def test_upload_is_stored_then_answered_with_9014(server, store: PostgresStore) -> None:  # type: ignore[no-untyped-def]
    _, address = server
    with connect(address) as s:
        s.sendall(
            upload(
                "20261128080000001",
                f"DataTime={now_cst()};w01018-Rtd=166.9,w01018-Flag=N;w21003-Rtd=3.1,w21003-Flag=D",
            )
        )
        answer = receive(s)
    assert (answer.cn, answer.qn, answer.st, answer.flag) == ("9014", "20261128080000001", "91", 4)
    frame = store.read_frame(station="W1")
    assert dict(zip(frame["parameter"], frame["value"], strict=True)) == {"cod": 166.9, "nh3n": 3.1}
    assert dict(zip(frame["parameter"], frame["flag"], strict=True)) == {"cod": "N", "nh3n": "D"}


def test_packets_split_and_joined_across_reads(server, store: PostgresStore) -> None:  # type: ignore[no-untyped-def]
    _, address = server
    packets = b"".join(
        upload(f"2026112808000000{i}", f"DataTime={now_cst(i)};w01018-Rtd={i}") for i in range(3)
    )
    with connect(address) as s:
        for i in range(0, len(packets), 13):
            s.sendall(packets[i : i + 13])
        answers = [receive(s) for _ in range(3)]
    assert [a.qn for a in answers] == [f"2026112808000000{i}" for i in range(3)]
    assert store.count_observations() == 3


def test_bad_crc_garbage_and_bad_credentials_get_no_answer_and_store_nothing(  # type: ignore[no-untyped-def]
    server, store: PostgresStore
) -> None:
    threaded, address = server
    good = upload("20261128080000009", f"DataTime={now_cst()};w01018-Rtd=1")
    bad_crc = good[:-6] + b"0000\r\n"
    with connect(address) as s:
        s.sendall(b"\x00\xffgarbage##12" + bad_crc)
        s.sendall(upload("1", f"DataTime={now_cst()};w01018-Rtd=2", pw="wrong"))
        s.sendall(upload("2", f"DataTime={now_cst()};w01018-Rtd=3", mn="UNKNOWN"))
        s.sendall(good)  # the connection is kept: the next good packet works
        answer = receive(s)
    assert answer.qn == "20261128080000009"
    assert store.count_observations() == 1
    errors = threaded.server.stats.errors
    assert errors["auth"] == 2 and errors["packet"] + errors["framing"] >= 2


def test_no_reply_unless_asked_and_notices_get_9013(server, store: PostgresStore) -> None:  # type: ignore[no-untyped-def]
    _, address = server
    with connect(address) as s:
        s.sendall(upload("1", f"DataTime={now_cst()};w01018-Rtd=1", flag=4))  # A=0: no reply
        s.sendall(upload("2", "PolId=w01018", cn="1013", flag=5))  # time-calibration notice
        answer = receive(s)
    assert (answer.cn, answer.qn) == ("9013", "2")
    assert store.count_observations() == 1


def test_split_upload_pieces_are_each_stored_and_answered(server, store: PostgresStore) -> None:  # type: ignore[no-untyped-def]
    """HJ 212-2017 Appendix C, Table C.50: an hourly upload in PNUM=2 pieces, Flag=7 (D=1,
    A=1); each piece is answered with a 9014 echoing its own QN. A later piece that does not
    repeat DataTime takes the first piece's."""
    threaded, address = server
    hour = (datetime.now(UTC) - timedelta(hours=3)).astimezone(hj212.CST).strftime("%Y%m%d%H0000")
    pieces = [
        hj212.encode(
            cn="2061",
            mn=MN,
            pw=PW,
            st="32",
            qn="20160801085857534",
            flag=7,
            pnum=2,
            pno=1,
            cp=f"DataTime={hour};w00000-Cou=63.0,w00000-Avg=17.5,w00000-Flag=N",
        ),
        hj212.encode(
            cn="2061",
            mn=MN,
            pw=PW,
            st="32",
            qn="20160801085857535",
            flag=7,
            pnum=2,
            pno=2,
            cp="w01018-Avg=40.1,w01018-Flag=N",
        ),
    ]
    with connect(address) as s:
        for piece in pieces:
            s.sendall(piece)
            answer = receive(s)
            assert answer.cn == "9014"
            assert answer.qn == hj212.parse(piece).qn
    frame = store.read_frame(station="W1", interval="PT1H")
    assert len(frame) == 3
    assert {t.astimezone(hj212.CST).strftime("%Y%m%d%H%M%S") for t in frame["time"]} == {hour}
    assert threaded.server.stats.split_uploads == 1
    assert threaded.server.stats.errors["split"] == 0
    with connect(address) as s:  # piece 2 of 3 without its first: kept, counted, answered
        s.sendall(
            hj212.encode(
                cn="2061",
                mn=MN,
                pw=PW,
                st="32",
                qn="1",
                flag=7,
                pnum=3,
                pno=2,
                cp=f"DataTime={hour};w21011-Avg=0.25",  # (was w01003, not in the dictionary)
            )
        )
        assert receive(s).qn == "1"
    assert threaded.server.stats.errors["split"] == 1
    assert len(store.read_frame(station="W1", interval="PT1H")) == 4


def test_a_unit_outpacing_the_store_is_throttled_and_loses_nothing(
    server, store: PostgresStore
) -> None:  # type: ignore[no-untyped-def]
    """More unanswered uploads than max_unanswered (64): the server stops reading from the
    connection until they are committed; every upload is stored and answered, in order."""
    _, address = server
    base = datetime.now(UTC) - timedelta(hours=5)
    packets = b"".join(
        upload(
            f"{i:017d}",
            f"DataTime={(base + timedelta(seconds=i)).astimezone(hj212.CST):%Y%m%d%H%M%S};"
            f"w01018-Rtd={i}",
        )
        for i in range(300)
    )
    with connect(address) as s:
        s.sendall(packets)
        answers = [receive(s).qn for _ in range(300)]
    assert answers == [f"{i:017d}" for i in range(300)]
    assert store.count_observations() == 300


def test_hourly_data_and_resends_are_stored_once(server, store: PostgresStore) -> None:  # type: ignore[no-untyped-def]
    _, address = server
    hour = (datetime.now(UTC) - timedelta(hours=2)).astimezone(hj212.CST).strftime("%Y%m%d%H0000")
    packet = upload(
        "3",
        f"DataTime={hour};w00000-Cou=63.0,w00000-Avg=17.5,w00000-Flag=N;"
        f"w01018-Avg=40.1,w01018-ZsAvg=44.0",
        cn="2061",
    )
    with connect(address) as s:
        for _ in range(3):  # the logger re-sends
            s.sendall(packet)
            assert receive(s).cn == "9014"
    frame = store.read_frame(station="W1", interval="PT1H")
    assert len(frame) == 4
    assert set(zip(frame["parameter"], frame["statistic"], frame["basis"], strict=True)) == {
        ("ww_flow", "cou", "measured"),
        ("ww_flow", "avg", "measured"),
        ("cod", "avg", "measured"),
        ("cod", "avg", "converted"),
    }


def test_idle_connections_are_closed(server) -> None:  # type: ignore[no-untyped-def]
    _, address = server
    with connect(address) as s:
        s.settimeout(10)
        assert s.recv(10) == b""  # closed by the server after 3 s of silence


def test_many_concurrent_devices(server, store: PostgresStore) -> None:  # type: ignore[no-untyped-def]
    _, address = server
    answers: list[str] = []
    lock = threading.Lock()
    base = datetime.now(UTC).astimezone(hj212.CST)
    sample = [(base - timedelta(minutes=m)).strftime("%Y%m%d%H%M%S") for m in range(50)]

    def device(i: int) -> None:
        with connect(address) as s:
            s.sendall(
                upload(
                    f"{i:017d}",
                    f"DataTime={now_cst()};w01018-SampleTime={sample[i % 50]},w01018-Rtd={i}",
                )
            )
            qn = receive(s).qn
            with lock:
                answers.append(qn or "")

    threads = [threading.Thread(target=device, args=(i,)) for i in range(200)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(answers) == [f"{i:017d}" for i in range(200)]
    assert store.count_observations() == 50  # 50 distinct sample times, re-sent values replace


def test_equipment_status_and_running_time_are_kept(server, store: PostgresStore) -> None:  # type: ignore[no-untyped-def]
    _, address = server
    day = (datetime.now(UTC) - timedelta(days=1)).astimezone(hj212.CST).strftime("%Y%m%d000000")
    with connect(address) as s:
        s.sendall(upload("5", f"DataTime={now_cst()};SB1-RS=1;SB2-RS=0", cn="2021"))
        assert receive(s).cn == "9014"
        s.sendall(upload("6", f"DataTime={day};SB1-RT=23.5", cn="2041"))
        assert receive(s).cn == "9014"
    # equipment status is in no parameter table: held in the device's quarantine under its raw
    # code, not a stream (issue 12; this test asserted the old behaviour, streams "SB1-RS" …)
    assert store.read_frame(station="W1").empty
    with store.connection() as conn:
        held = {
            c: [(h.interval, h.value) for h in quarantine.held_readings(conn, "logger-1", c)]
            for c in ("SB1-RS", "SB2-RS", "SB1-RT")
        }
    assert held == {"SB1-RS": [(None, 1.0)], "SB2-RS": [(None, 0.0)], "SB1-RT": [("P1D", 23.5)]}


def test_platform_commands_get_the_field_units_answers(server, store: PostgresStore) -> None:  # type: ignore[no-untyped-def]
    from zoneinfo import ZoneInfo

    from fastapi.testclient import TestClient

    from ecosense.app import create_app
    from store.context import ServiceContext
    from store.postgres import hash_secret

    threaded, address = server
    app = create_app(ServiceContext(store, hash_secret("op"), ZoneInfo("Asia/Shanghai")))
    app.state.hj212_command = threaded.command
    seen: list[hj212.Packet] = []

    def field_unit(sock: socket.socket, refuse: bool) -> None:
        command = receive(sock)
        seen.append(command)
        qn = command.qn or ""
        sock.sendall(
            hj212.encode(
                cn="9011",
                st="91",
                mn=MN,
                pw=PW,
                qn=qn,
                flag=4,
                cp="QnRtn=2" if refuse else "QnRtn=1",
            )
        )
        if not refuse:
            sock.sendall(
                hj212.encode(cn="9012", st="91", mn=MN, pw=PW, qn=qn, flag=4, cp="ExeRtn=1")
            )

    with connect(address) as s, TestClient(app) as client:
        s.sendall(upload("7", f"DataTime={now_cst()};w01018-Rtd=1", flag=4))  # logs in
        time.sleep(0.3)
        unit = threading.Thread(target=field_unit, args=(s, False))
        unit.start()
        r = client.post(
            f"/api/v1/hj212/{MN}/commands",
            headers={"Authorization": "Bearer op"},
            json={"cn": "1062", "cp": "RtdInterval=30"},
        )
        unit.join()
        assert r.status_code == 200, r.text
        assert r.json()["QnRtn"] == "1" and r.json()["ExeRtn"] == "1"
        assert (seen[0].cn, seen[0].cp, seen[0].st, seen[0].pw, seen[0].flag) == (
            "1062",
            "RtdInterval=30",
            "32",
            PW,
            5,
        )
        unit = threading.Thread(target=field_unit, args=(s, True))
        unit.start()
        r = client.post(
            f"/api/v1/hj212/{MN}/commands",
            headers={"Authorization": "Bearer op"},
            json={"cn": "1012", "cp": "SystemTime=20261128080000"},
        )
        unit.join()
        assert r.json() == {"qn": seen[1].qn, "QnRtn": "2", "ExeRtn": None}
        assert (
            client.post(
                "/api/v1/hj212/NOBODY/commands",
                headers={"Authorization": "Bearer op"},
                json={"cn": "1062", "cp": ""},
            ).status_code
            == 404
        )
        assert (
            client.post(
                f"/api/v1/hj212/{MN}/commands",
                headers={"Authorization": "Bearer op"},
                json={"cn": "2011"},
            ).status_code
            == 400
        )
        # a CR LF (a second packet smuggled in CP), a NUL or too long a CP: 400, nothing sent
        for cp in (
            "RtdInterval=30\r\n##0010QN=1",
            "RtdInterval=\x00",
            "RtdInterval=" + "9" * 1100,
        ):
            r = client.post(
                f"/api/v1/hj212/{MN}/commands",
                headers={"Authorization": "Bearer op"},
                json={"cn": "1062", "cp": cp},
            )
            assert r.status_code == 400, r.text
        s.settimeout(0.5)
        with pytest.raises(TimeoutError):
            s.recv(4096)
        s.settimeout(5)
        token = store.add_device("d9", "W1")
        assert (
            client.post(
                f"/api/v1/hj212/{MN}/commands",
                headers={"Authorization": f"Bearer {token}"},
                json={"cn": "1062"},
            ).status_code
            == 403
        )
    # issue 13: "HJ 212 commands" are audited, with the field unit's answers
    from store import audit

    with store.connection() as conn:
        commands = list(reversed(audit.read(conn, action="hj212.command")))
    assert [(e.actor, e.object, e.outcome) for e in commands] == [
        ("admin", f"mn:{MN}", "ok"),
        ("admin", f"mn:{MN}", "refused"),
        ("admin", "mn:NOBODY", "failed"),
        *[("admin", f"mn:{MN}", "failed")] * 3,
    ]
    assert commands[0].details is not None and commands[0].details["ExeRtn"] == "1"
    with pytest.raises(TimeoutError), connect(address) as s2:
        s2.sendall(upload("8", f"DataTime={now_cst()};w01018-Rtd=1", flag=4))
        time.sleep(0.3)
        threaded.command(MN, "1061", "", timeout=1)


def test_garbage_oversized_and_half_packets_harm_no_other_device(  # type: ignore[no-untyped-def]
    server, store: PostgresStore
) -> None:
    threaded, address = server
    noisy = connect(address)
    try:
        noisy.sendall(b"##9999" + b"\x00" * 70_000)  # a length over 1024, then junk
        noisy.sendall(b"##0101QN=2026")  # half a packet, never finished
        with connect(address) as good:
            good.sendall(upload("11", f"DataTime={now_cst()};w01018-Rtd=5"))
            assert receive(good).qn == "11"
        noisy.sendall(b"\r\n" + upload("12", f"DataTime={now_cst(1)};w01018-Rtd=6"))
        assert receive(noisy).qn == "12"  # the noisy connection itself recovers too
    finally:
        noisy.close()
    assert store.count_observations() == 2
    assert threaded.server.stats.errors["framing"] >= 2
    assert threaded.server.stats.errors["internal"] == 0
