"""HJ 212-2017 TCP server: field units connect, upload, and get their replies.

Per connection, a :class:`~ingest.hj212.FrameDecoder` finds packets across TCP reads. What the
server does with each packet (HJ 212-2017 §6 and Table 2; see ``docs`` in the README):

- framing, length or CRC error: processing ends — nothing stored, nothing answered; counted
  and logged; the connection stays open (the standard's "执行结束").
- unknown MN, or wrong PW: nothing stored, nothing answered (the standard defines no platform
  reply; ``QnRtn`` is the field unit's); counted and logged, connection kept.
- data upload (2011, 2051, 2061, 2031): readings are written to the store; only once they are
  committed does a packet whose Flag has A=1 get its 9014 data reply echoing its QN. If the
  store is unavailable the packet is not answered, so the field unit re-sends it.
- status uploads (2021, 2041, 2081, 3020): answered with 9014 when asked, logged.
- notices (1013): answered with 9013 when asked.
- field-unit answers 9011/9012: logged.
- a connection idle for ``idle_timeout`` seconds is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import uvloop

from ingest import hj212
from ingest.hj212_readings import STATUS_UPLOADS, readings, status_readings
from sensors.observations import Observation
from store.errors import StoreError
from store.postgres import Device, PostgresStore

logger = logging.getLogger(__name__)

READ_SIZE = 65536


@dataclass
class _Link:
    """The live connection of an authenticated field unit, for platform commands."""

    writer: asyncio.StreamWriter
    st: str
    pw: str


@dataclass
class ServerStats:
    """Counters of the server's life (for logs, tests and health)."""

    connections: int = 0
    packets: int = 0
    readings_stored: int = 0
    replies: int = 0
    errors: Counter[str] = field(default_factory=Counter)


class Hj212Server:
    """The asyncio TCP server.

    Parameters
    ----------
    store: where devices are looked up (blocking calls run in threads).
    write: how a batch is made durable (default: the store; the shell passes the spooling
        writer, so that uploads are acknowledged while the store is down).
    idle_timeout: seconds without a byte after which a connection is closed.
    max_future: how far ahead of the clock a reading may be stamped.
    """

    def __init__(
        self,
        store: PostgresStore,
        *,
        idle_timeout: float = 600.0,
        max_future: timedelta = timedelta(hours=1),
        write: Callable[[Sequence[Observation]], int] | None = None,
    ) -> None:
        self.store = store
        self.write = write or store.write_observations
        self.idle_timeout = idle_timeout
        self.max_future = max_future
        self.stats = ServerStats()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._pending: list[tuple[list[Observation], asyncio.Future[int]]] = []
        self._links: dict[str, _Link] = {}
        self._commands: dict[tuple[str, str], asyncio.Queue[hj212.Packet]] = {}
        self._flusher: asyncio.Task[None] | None = None

    async def start(self, host: str, port: int) -> tuple[str, int]:
        """Listen on ``host:port`` (0: a free port); return the bound address."""
        self._server = await asyncio.start_server(
            self._handle, host, port, limit=READ_SIZE, backlog=4096
        )
        sock = self._server.sockets[0].getsockname()
        return str(sock[0]), int(sock[1])

    async def stop(self) -> None:
        """Stop listening and close every connection."""
        if self._server is not None:
            self._server.close()
        for w in list(self._writers):
            w.close()
        if self._server is not None:
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.stats.connections += 1
        self._writers.add(writer)
        peer = writer.get_extra_info("peername")
        decoder = hj212.FrameDecoder()
        devices: dict[tuple[str, str], Device | None] = {}
        try:
            while True:
                try:
                    async with asyncio.timeout(self.idle_timeout):  # cheaper than wait_for
                        data = await reader.read(READ_SIZE)
                except TimeoutError:
                    logger.info("hj212 %s: idle for %.0f s, closing", peer, self.idle_timeout)
                    self.stats.errors["idle_timeout"] += 1
                    break
                if not data:
                    break
                for item in decoder.feed(data):
                    if isinstance(item, hj212.ProtocolError):
                        self._error("framing", peer, item)
                        continue
                    answer = await self._packet(item, peer, devices, writer)
                    if answer is not None:
                        writer.write(answer)
                        await writer.drain()
                        self.stats.replies += 1
        except (ConnectionError, OSError) as exc:
            logger.info("hj212 %s: connection lost: %s", peer, exc)
        except Exception:  # never let one connection take the server down
            logger.exception("hj212 %s: unexpected error, closing the connection", peer)
            self.stats.errors["internal"] += 1
        finally:
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    def _error(self, kind: str, peer: object, exc: object) -> None:
        self.stats.errors[kind] += 1
        logger.warning("hj212 %s: %s: %s", peer, kind, exc)

    async def _packet(
        self,
        frame: bytes,
        peer: object,
        devices: dict[tuple[str, str], Device | None],
        writer: asyncio.StreamWriter,
    ) -> bytes | None:
        try:
            packet = hj212.parse(frame)
        except hj212.ProtocolError as exc:
            self._error("packet", peer, exc)
            return None
        self.stats.packets += 1
        key = (packet.mn or "", packet.pw or "")
        if key not in devices:
            try:
                devices[key] = await asyncio.to_thread(self.store.device_for_mn, *key)
            except StoreError as exc:
                self._error("store", peer, exc)
                return None
        device = devices[key]
        if device is None:
            self._error("auth", peer, f"unknown MN {packet.mn!r} or wrong PW: ignored")
            return None
        self._links[packet.mn or ""] = _Link(writer, packet.st or "91", packet.pw or "")
        cn = packet.cn or ""
        if cn in hj212.UPLOAD_INTERVALS:
            return await self._upload(packet, device, peer)
        if cn in STATUS_UPLOADS:
            return await self._upload(packet, device, peer)
        if cn in hj212.STATUS_COMMANDS:
            logger.info("hj212 %s: %s status CN=%s %s", peer, device.id, cn, packet.cp[:200])
            return hj212.reply(packet, "9014") if packet.wants_reply else None
        if cn in hj212.NOTICE_COMMANDS:
            return hj212.reply(packet, "9013") if packet.wants_reply else None
        if cn in ("9011", "9012"):
            logger.info("hj212 %s: %s answered CN=%s %s", peer, device.id, cn, packet.cp)
            waiting = self._commands.get((packet.mn or "", packet.qn or ""))
            if waiting is not None:
                waiting.put_nowait(packet)
            return None
        self._error("unsupported", peer, f"CN={cn} from {device.id}")
        return None

    async def _upload(self, packet: hj212.Packet, device: Device, peer: object) -> bytes | None:
        try:
            found = (
                status_readings(packet, device.station)
                if packet.cn in STATUS_UPLOADS
                else readings(
                    packet, device.station, now=datetime.now(UTC), max_future=self.max_future
                )
            )
        except hj212.ProtocolError as exc:
            self._error("upload", peer, exc)
            return None
        for problem in found.problems:
            self._error("reading", peer, f"{device.id}: {problem}")
        if found.unknown_codes:
            logger.warning(
                "hj212 %s: %s sent codes not in the dictionary, kept as sent: %s",
                peer,
                device.id,
                ", ".join(sorted(set(found.unknown_codes))),
            )
        try:
            stored = await self._durable(found.observations)
        except StoreError as exc:
            self._error("store", peer, f"not acknowledged, device will re-send: {exc}")
            return None
        self.stats.readings_stored += stored
        return hj212.reply(packet, "9014") if packet.wants_reply else None

    async def command(
        self, mn: str, cn: str, cp: str = "", timeout: float = 15.0
    ) -> dict[str, str | None]:
        """Send a platform command (1011/1012 time, 1061–1064 intervals, 1072 password …) to
        the connected field unit ``mn`` and wait for its 9011 request answer (``QnRtn``) and,
        when it accepted, its 9012 execution result (``ExeRtn``).

        Raises
        ------
        LookupError
            when no field unit with that MN is connected.
        TimeoutError
            when it does not answer in ``timeout`` seconds.
        """
        link = self._links.get(mn)
        if link is None or link.writer.is_closing():
            raise LookupError(f"no field unit with MN {mn} is connected")
        qn = hj212.qn_now()
        answers: asyncio.Queue[hj212.Packet] = asyncio.Queue()
        self._commands[(mn, qn)] = answers
        try:
            link.writer.write(
                hj212.encode(cn=cn, st=link.st, mn=mn, pw=link.pw, qn=qn, flag=5, cp=cp)
            )
            await link.writer.drain()
            result: dict[str, str | None] = {"qn": qn, "QnRtn": None, "ExeRtn": None}
            async with asyncio.timeout(timeout):
                while True:
                    answer = await answers.get()
                    groups = answer.cp_groups()
                    merged = {k: v for g in groups for k, v in g.items()}
                    if answer.cn == "9011":
                        result["QnRtn"] = merged.get("QnRtn")
                        if result["QnRtn"] != "1":
                            return result  # refused: no execution follows
                    elif answer.cn == "9012":
                        result["ExeRtn"] = merged.get("ExeRtn")
                        return result
        finally:
            self._commands.pop((mn, qn), None)

    async def _durable(self, observations: list[Observation]) -> int:
        """Make one packet's readings durable, committed together with whatever other
        connections submitted meanwhile (group commit): one write per round, not per packet."""
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._pending.append((observations, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        while self._pending:
            group, self._pending = self._pending, []
            try:
                await asyncio.to_thread(self.write, [o for obs, _ in group for o in obs])
            except Exception:
                await self._one_by_one(group)
                continue
            for obs, future in group:
                if not future.done():
                    future.set_result(len(obs))

    async def _one_by_one(self, group: list[tuple[list[Observation], asyncio.Future[int]]]) -> None:
        """After a failed group write, write each packet alone: one bad packet must not keep
        the others unacknowledged."""
        for obs, future in group:
            if future.done():
                continue
            try:
                future.set_result(await asyncio.to_thread(self.write, obs))
            except Exception as exc:
                future.set_exception(exc if isinstance(exc, StoreError) else StoreError(str(exc)))


class ThreadedHj212Server:
    """An :class:`Hj212Server` on its own uvloop event loop in a background thread (for ``up``)."""

    def __init__(self, server: Hj212Server) -> None:
        self.server = server
        self.loop = uvloop.new_event_loop()  # libuv: a third less CPU per packet than asyncio's
        self.address: tuple[str, int] | None = None
        self._thread: threading.Thread | None = None

    def start(self, host: str, port: int, timeout: float = 30.0) -> tuple[str, int]:
        """Start listening; return the bound (host, port)."""
        started = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            try:
                self.address = self.loop.run_until_complete(self.server.start(host, port))
            except BaseException as exc:  # reported to the caller below
                failure.append(exc)
                self.loop.close()
                started.set()
                return
            started.set()
            self.loop.run_forever()

        self._thread = threading.Thread(target=run, name="hj212", daemon=True)
        self._thread.start()
        started.wait(timeout)
        if failure:
            raise failure[0]
        assert self.address is not None
        return self.address

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server and its loop."""
        if self._thread is None:
            return
        fut = asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop)
        with contextlib.suppress(Exception):
            fut.result(timeout)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout)
        if not self._thread.is_alive():
            self.loop.close()

    def command(
        self, mn: str, cn: str, cp: str = "", timeout: float = 15.0
    ) -> dict[str, str | None]:
        """:meth:`Hj212Server.command`, from another thread (blocking)."""
        future = asyncio.run_coroutine_threadsafe(
            self.server.command(mn, cn, cp, timeout), self.loop
        )
        return future.result(timeout + 5)

    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()
