"""HJ 212-2017 TCP server: field units connect, upload, and get their replies.

Per connection, a :class:`~ingest.hj212.FrameDecoder` finds packets across TCP reads. What the
server does with each packet (HJ 212-2017 §6 and Table 2; ``docs/standards/hj212.md``):

- framing, length or CRC error: processing ends — nothing stored, nothing answered; counted
  and logged; the connection stays open (the standard's "执行结束").
- unknown MN, or wrong PW: nothing stored, nothing answered (the standard defines no platform
  reply; ``QnRtn`` is the field unit's); counted, logged in the connection's summary line,
  connection kept, and the connection's next packets wait ``failure_delay`` seconds.
- authentication (README "Credentials"): each (MN, PW) pair is verified once per connection
  and the answer kept for the connection's life; the password is checked against its salted
  Argon2id hash in a worker thread, at most ``max_verifications`` at a time (the event loop
  never runs a hash; a packet of a connection already authenticated costs a dict look-up).
- wrong passwords are throttled (:class:`LoginThrottle`): after ``per_mn`` failures for one MN,
  or ``per_address`` from one address (a trusted proxy without PROXY line excepted), within
  ``window`` seconds, further new logins of that MN or from that address are refused without
  running the hash, answered as any refused login (nothing), and their connection is closed.
- credentials changed while connected (:meth:`Hj212Server.credentials_changed`, fed by
  :class:`store.notify.CredentialListener`): the connections of a revoked or rotated device
  or one whose password changed are closed at once; the unit reconnects and logs in again.
  Should the announcement be missed, the credential versions of all connected devices are
  re-checked every ``recheck_interval`` seconds.
- data upload (2011, 2051, 2061, 2031): readings are written to the store; only once they are
  committed does a packet whose Flag has A=1 get its 9014 data reply echoing its QN. If the
  store is unavailable the packet is not answered, so the field unit re-sends it.
- codes the parameter dictionary does not know (and equipment status ``SBxxx-RS/RT``) are held
  in the device's quarantine under their raw code (:mod:`store.quarantine`), up to
  ``quarantine_codes`` codes per device; readings of further new codes are counted and dropped
  with one log line per packet. A code the operator has mapped (``ecosense parameters map``) is
  written as its parameter. The packet is answered all the same; what cannot be held (the
  store is down) is logged and dropped, never a reason to leave the packet unanswered.
- status uploads (2021, 2041, 2081, 3020): answered with 9014 when asked, logged.
- notices (1013): answered with 9013 when asked.
- field-unit answers 9011/9012: logged, and handed to the platform command waiting for them.
- platform commands (:meth:`Hj212Server.command`, the operator's
  ``POST /api/v1/hj212/{mn}/commands``): sent on the unit's link when this server holds it;
  with several gateway instances on one database (``instances``, :mod:`store.instances`) a
  unit held by another instance gets the command through that instance, and its 9011/9012
  answers come back the same way. Each login of a unit records this instance as its holder;
  each disconnect removes the record.
- split uploads (Flag D=1, ``PNUM``/``PNO``; HJ 212-2017 Appendix C, Tables C.49/C.50): each
  piece is stored and answered on its own, as the standard's example does (a piece is only
  answered once durable, so an answered piece is never lost); a piece whose data area does not
  repeat ``DataTime`` takes its upload's first piece's. Missing or out-of-order pieces are
  counted (``split``) and logged; what arrived is kept.
- a connection idle for ``idle_timeout`` seconds is closed.
- each group commit is audited: one entry per device and address (packets, readings accepted,
  rejected and held), written off the event loop; never one per reading.

Under abuse (README "Listeners under abuse"):

- connections beyond ``max_per_address`` from one address, or ``max_connections`` in all,
  are closed as soon as accepted (trusted proxies are capped by the total only); refusals are
  logged as one summary line per 10 s. A trusted proxy may open its connections with a PROXY
  protocol v1 line naming the client, whose address is then capped and logged.
- a connection that has not sent a packet with a known MN and PW within ``auth_timeout``
  seconds is closed (garbage alone does not close a connection: a unit behind a noisy
  line recovers on its next good packet). A connection whose MN and PW wait for their
  verification is not: the wait is the server's (1,000 units reconnecting at once after a
  restart queue for ``max_verifications`` hashes at a time, tens of seconds; closing them
  would make them reconnect and queue again, for ever).
- framing and packet errors are counted per connection and logged as one summary line per
  connection and ``SUMMARY_INTERVAL`` ("N framing errors, M bytes discarded"), never a line
  per error; the decoder skips garbage in linear time, so garbage on one connection does not
  stall the others' round trips.

Replies keep the order of their packets on each connection. A unit with ``max_unanswered``
uploads waiting for the store is not read from until they are committed (flow control).
Each connection is an :class:`asyncio.Protocol` (no task per connection or per packet: the
server handles thousands of units on one uvloop thread).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import threading
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import cast

import uvloop

from ingest import hj212
from ingest.hj212_readings import STATUS_UPLOADS, RawReading, readings, rehome, status_readings
from ingest.limits import Admission, Network, host_of
from sensors.observations import ObservationColumns, Source
from store import audit as audit_log
from store import instances as routes
from store import notify, quarantine
from store.errors import StoreError
from store.postgres import Device, PasswordCheck, PostgresStore, SourcedBatch

logger = logging.getLogger(__name__)

#: Seconds a command routed to the instance holding the unit waits for that instance to take
#: it; beyond, the instance counts as gone (its heartbeat not yet expired) and the unit as
#: connected nowhere.
ACCEPT_SECONDS = 3.0
#: Seconds a routed command waits beyond its own time-out for the holder's answer.
ROUTE_MARGIN_SECONDS = 2.0

READ_SIZE = 65536
#: Seconds between two summary lines of one connection's framing and packet errors.
SUMMARY_INTERVAL = 10.0


@dataclass
class ServerStats:
    """Counters of the server's life (for logs, tests and health)."""

    connections: int = 0
    packets: int = 0
    readings_stored: int = 0
    replies: int = 0
    split_uploads: int = 0
    readings_quarantined: int = 0
    readings_dropped: int = 0
    #: readings refused by validation (too old, ahead of the clock, physically impossible …)
    readings_refused: int = 0
    errors: Counter[str] = field(default_factory=Counter)


@dataclass
class _Split:
    """A split upload (Flag D=1, PNUM/PNO) being received on one connection."""

    pnum: int
    next_pno: int
    data_time: str | None


#: One entry of a group commit: the connection, its readings, the reply due once they are
#: durable, and whether it is an upload (1) or a reply queued behind one (0).
#: (connection, its readings with their provenance or ``None``, reply due, uploads answered)
_Entry = tuple["_Connection", SourcedBatch | None, bytes | None, int]


class _Connection(asyncio.Protocol):
    """One field unit's TCP connection: frames packets, handles them in order.

    Packets are handled synchronously as they arrive; uploads join the server's next group
    commit and are answered once it is durable. A reply that would overtake an unanswered
    upload of the same connection waits for it, so replies keep the order of the packets.
    """

    def __init__(self, server: Hj212Server) -> None:
        self.server = server
        self.decoder = hj212.FrameDecoder(summarise=True)
        self.host = ""
        self.admitted = False
        self.authenticated = False
        self.opened_at = 0.0
        # framing/packet errors not yet logged: (errors, bytes discarded), and when last logged
        self.noise_logged = (0, 0)
        self.packet_errors = 0
        self.last_summary = 0.0
        self.devices: dict[tuple[str, str], Device | None] = {}
        self.transport: asyncio.Transport | None = None
        self.peer: object = None
        self.last_active = 0.0
        self.unanswered = 0  # uploads in the group commit
        self.backlog: list[bytes | hj212.ProtocolError] | None = None  # waiting for a look-up
        self.splits: dict[tuple[str, str, int], _Split] = {}
        self.paused = False
        self.proxy_header: bytearray | None = None  # from a trusted proxy: PROXY line awaited
        self.auth_failures = 0  # refused logins not yet logged, and the last MN refused
        self.last_refused = ""

    # asyncio callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.peer = transport.get_extra_info("peername")
        self.host = host_of(self.peer)
        if not self.server.admission.admit(self.host):
            self.server.stats.errors["refused"] += 1
            self.transport.abort()  # no FIN handshake, no buffer: the descriptor is freed at once
            return
        self.admitted = True
        if self.server.admission.is_trusted(self.host):
            self.proxy_header = bytearray()
        self.opened_at = self.last_active = self.last_summary = self.server.loop.time()
        self.server.stats.connections += 1
        self.server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.admitted:
            return
        self.admitted = False
        self.server.admission.release(self.host)
        self.server.connections.discard(self)
        self._summarise(force=True)
        if exc is not None:
            logger.info("hj212 %s: connection lost: %s", self.peer, exc)
        for mn, link in list(self.server.links.items()):
            if link.connection is self:
                del self.server.links[mn]
                if self.server.instances is not None:
                    self.server.instances.release(mn)

    def data_received(self, data: bytes) -> None:
        self.last_active = self.server.loop.time()
        if self.proxy_header is not None:
            rest = self._proxy_line(data)
            if rest is None:
                return
            data = rest
        try:
            errors = self.decoder.errors
            frames = self.decoder.feed(data)
            if self.decoder.errors != errors:
                self.server.stats.errors["framing"] += self.decoder.errors - errors
                self._summarise()
            if self.backlog is not None:
                self.backlog += frames
            else:
                self._handle(frames)
        except Exception:  # never let one connection take the server down
            self._internal_error()

    # handling
    def _internal_error(self) -> None:
        """A bug met while handling this connection: logged, counted, this connection closed."""
        logger.exception("hj212 %s: unexpected error, closing the connection", self.peer)
        self.server.stats.errors["internal"] += 1
        self.close()

    def _proxy_line(self, data: bytes) -> bytes | None:
        """From a trusted proxy, a first line ``PROXY TCP4|TCP6 client proxy cport pport``
        (the PROXY protocol, v1) names the real client: its address replaces the proxy's, for
        the per-address cap and the log. Returns the bytes after the line (``None``: more
        awaited, or the connection closed); a connection not starting with ``PROXY `` is
        read as it is."""
        assert self.proxy_header is not None
        buf = self.proxy_header
        buf += data
        if b"PROXY "[: len(buf)] != bytes(buf[:6]):
            self.proxy_header = None  # not a PROXY line: frames as usual
            return bytes(buf)
        end = buf.find(b"\r\n")
        if end < 0:
            if len(buf) > 107:  # the protocol's longest line
                self.server.error("proxy", self.peer, "PROXY line too long, closing")
                self.close()
            return None
        self.proxy_header = None
        parts = bytes(buf[:end]).decode("ascii", "replace").split(" ")
        if parts[1:2] != ["UNKNOWN"]:
            try:
                client = str(ipaddress.ip_address(parts[2]))
                port = int(parts[4])
            except (IndexError, ValueError):
                self.server.error("proxy", self.peer, "bad PROXY line, closing")
                self.close()
                return None
            admission = self.server.admission
            admission.release(self.host)
            self.peer, self.host = (client, port), client
            if not admission.admit(client):
                self.admitted = False
                self.server.connections.discard(self)
                self.server.stats.errors["refused"] += 1
                self.close()
                return None
        return bytes(buf[end + 2 :])

    def _summarise(self, force: bool = False) -> None:
        """Log this connection's framing and packet errors since the last summary, at most
        one line per ``SUMMARY_INTERVAL`` (``force``: now, when the connection closes)."""
        now = self.server.loop.time()
        if not force and now - self.last_summary < SUMMARY_INTERVAL:
            return
        errors, discarded = self.decoder.errors, self.decoder.discarded
        new_errors = errors - self.noise_logged[0]
        if self.auth_failures:
            logger.warning(
                "hj212 %s: %d packets refused (unknown MN or wrong PW, e.g. MN %r) in %.0f s",
                self.peer,
                self.auth_failures,
                self.last_refused[:40],
                now - self.last_summary,
            )
            self.auth_failures = 0
        if new_errors or self.packet_errors:
            logger.warning(
                "hj212 %s: %d framing errors, %d bytes discarded, %d bad packets in %.0f s",
                self.peer,
                new_errors,
                discarded - self.noise_logged[1],
                self.packet_errors,
                now - self.last_summary,
            )
        self.noise_logged = (errors, discarded)
        self.packet_errors = 0
        self.last_summary = now

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def send(self, reply: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(reply)
            self.server.stats.replies += 1

    def _handle(self, frames: list[bytes | hj212.ProtocolError]) -> None:
        for i, frame in enumerate(frames):
            if self.transport is None or self.transport.is_closing():
                return  # closed (throttled, credentials changed): the rest is not read
            if isinstance(frame, hj212.ProtocolError):  # not with a summarising decoder
                self.server.stats.errors["framing"] += 1
                continue
            if not self._packet(frame):  # waits for a device look-up: the rest after it
                self.backlog = [frame, *frames[i + 1 :]]
                return

    def _packet(self, frame: bytes) -> bool:
        """Handle one frame; ``False`` when it must wait for a device look-up."""
        server = self.server
        try:
            packet = hj212.parse(frame)
        except hj212.ProtocolError:  # summarised per connection and interval
            server.stats.errors["packet"] += 1
            self.packet_errors += 1
            self._summarise()
            return True
        key = (packet.mn or "", packet.pw or "")
        if key not in self.devices:
            blocked = server.throttle.blocked(key[0], self.host, server.loop.time())
            if blocked is None:
                server.loop.create_task(self._look_up(key))
                return False
            server.stats.packets += 1
            server.stats.errors["throttled"] += 1
            self._refused(key[0])
            logger.warning(
                "hj212 %s: too many failed logins (%s): closing the connection",
                self.peer,
                blocked,
            )
            self._summarise(force=True)
            self.close()
            return True
        server.stats.packets += 1
        device = self.devices[key]
        if device is None:
            self._refused(key[0])
            return True
        self.authenticated = True
        mn, st, pw = packet.mn or "", packet.st or "91", packet.pw or ""
        link = server.links.get(mn)
        if link is None or (link.connection, link.st, link.pw) != (self, st, pw):
            server.links[mn] = _Link(self, st, pw)  # where platform commands to mn go
            if server.instances is not None and (link is None or link.connection is not self):
                server.instances.hold(mn)  # and through which instance, for the others
        cn = packet.cn or ""
        if cn in hj212.UPLOAD_INTERVALS or cn in STATUS_UPLOADS:
            self._upload(packet, device)
        elif cn in hj212.STATUS_COMMANDS:
            logger.info("hj212 %s: %s status CN=%s %s", self.peer, device.id, cn, packet.cp[:200])
            self._answer(packet, "9014")
        elif cn in hj212.NOTICE_COMMANDS:
            self._answer(packet, "9013")
        elif cn in ("9011", "9012"):
            logger.info("hj212 %s: %s answered CN=%s %s", self.peer, device.id, cn, packet.cp)
            waiting = server.commands.get((packet.mn or "", packet.qn or ""))
            if waiting is not None:
                waiting.put_nowait(packet)
        else:
            server.error("unsupported", self.peer, f"CN={cn} from {device.id}")
        return True

    def _refused(self, mn: str) -> None:
        """A packet refused for its MN and PW: counted, logged in the summary line."""
        self.server.stats.errors["auth"] += 1
        self.auth_failures += 1
        self.last_refused = mn
        self._summarise()

    async def _look_up(self, key: tuple[str, str]) -> None:
        """Verify an (MN, PW) pair met for the first time on this connection (in a worker
        thread, at most ``max_verifications`` at once), then handle the packets that waited
        for it. Reading from the connection pauses meanwhile."""
        server = self.server
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.pause_reading()
        try:
            try:
                found = await asyncio.to_thread(server.store.look_up_mn, *key)
                if isinstance(found, PasswordCheck):  # slow: a bounded number at once
                    async with server.verifying:
                        found = await asyncio.to_thread(found.run)
                device = found
            except StoreError as exc:  # the unit re-sends what is not answered
                server.error("store", self.peer, exc)
                backlog, self.backlog = self.backlog or [], None
                dropped = [f for f in backlog if isinstance(f, bytes)]
                logger.warning("hj212 %s: %d packet(s) not answered", self.peer, len(dropped))
                return
            if device is None:
                server.throttle.failed(key[0], self.host, server.loop.time())
                if server.failure_delay > 0:
                    await asyncio.sleep(server.failure_delay)
            elif len(self.devices) > 64:  # garbage pairs must not grow without bound
                self.devices = {k: d for k, d in self.devices.items() if d is not None}
            self.devices[key] = device
            backlog, self.backlog = self.backlog or [], None
            self._handle(backlog)
        except Exception:
            self._internal_error()
        finally:
            if not self.paused and self.transport is not None and not self.transport.is_closing():
                self.transport.resume_reading()

    def _answer(self, packet: hj212.Packet, cn: str) -> None:
        if not packet.wants_reply:
            return
        if self.unanswered:  # behind an upload still being committed: keep the order
            self.server.submit((self, None, hj212.reply(packet, cn), 0))
        else:
            self.send(hj212.reply(packet, cn))

    def _upload(self, packet: hj212.Packet, device: Device) -> None:
        server = self.server
        try:
            if packet.cn in STATUS_UPLOADS:
                found = status_readings(packet, device.station)
            else:
                found = readings(
                    packet,
                    device.station,
                    now=datetime.now(UTC),
                    max_future=server.max_future,
                    max_past=server.max_past,
                    data_time=self._split_data_time(packet, device),
                )
        except hj212.ProtocolError as exc:
            server.error("upload", self.peer, exc)
            return
        if found.problems:  # one log line per packet, however many values it refuses
            server.stats.readings_refused += len(found.problems)
            server.error(
                "reading",
                self.peer,
                f"{device.id}: {len(found.problems)} value(s) refused: "
                + "; ".join(found.problems[:5])
                + (" …" if len(found.problems) > 5 else ""),
            )
        server.count_upload(
            device, self.peer, len(found.observations), len(found.problems), len(found.raw)
        )
        if found.raw:  # held (or mapped) in the same group commit, before the reply
            server.held.append((self.peer, device, found.raw))
        self.unanswered += 1
        reply = hj212.reply(packet, "9014") if packet.wants_reply else None
        batch = (Source("hj212", device.id), found.observations) if found.observations else None
        server.submit((self, batch, reply, 1))
        if self.unanswered >= server.max_unanswered and not self.paused:
            assert self.transport is not None
            self.transport.pause_reading()  # a unit that outpaces the store waits
            self.paused = True

    def _split_data_time(self, packet: hj212.Packet, device: Device) -> str | None:
        """For a piece of a split upload (Flag D=1 with PNUM/PNO): the DataTime of the
        upload's first piece, for a later piece whose data area does not repeat it."""
        pnum, pno = packet.pnum, packet.pno
        if pnum is None or pno is None or pnum < 2:
            return None
        key = (packet.cn or "", packet.st or "", pnum)
        split = self.splits.get(key)
        if pno == 1 or split is None:
            if split is not None:
                self.server.error("split", self.peer, f"{device.id}: split upload incomplete")
            data_time = next((g["DataTime"] for g in packet.cp_groups() if "DataTime" in g), None)
            split = self.splits[key] = _Split(pnum, 1, data_time)
            if pno != 1:
                self.server.error("split", self.peer, f"{device.id}: piece {pno} without 1")
        elif pno != split.next_pno:
            self.server.error(
                "split", self.peer, f"{device.id}: piece {pno} after {split.next_pno - 1}"
            )
        split.next_pno = pno + 1
        if pno >= pnum:
            del self.splits[key]
            self.server.stats.split_uploads += 1
        return split.data_time

    def committed(self, reply: bytes | None, uploads: int) -> None:
        """A group commit holding this connection's readings is durable (or failed)."""
        self.unanswered -= uploads
        if reply:
            self.send(reply)
        if self.paused and self.unanswered < self.server.max_unanswered:
            assert self.transport is not None
            self.paused = False
            self.transport.resume_reading()


class LoginThrottle:
    """Failed HJ 212 logins counted per MN and per address over a sliding window.

    ``per_mn`` failures of one MN, or ``per_address`` from one address, within ``window``
    seconds block further logins of that MN or from that address until the oldest of those
    failures is ``window`` seconds old (even with the right password: a guesser must not
    learn it then). Addresses in ``exempt(host)`` (trusted proxies) are counted by MN only.
    Pure bookkeeping, on the event loop's thread; times in seconds of a monotonic clock.
    """

    def __init__(
        self,
        per_mn: int = 5,
        per_address: int = 20,
        window: float = 60.0,
        exempt: Callable[[str], bool] = lambda host: False,
    ) -> None:
        self.per_mn = per_mn
        self.per_address = per_address
        self.window = window
        self.exempt = exempt
        self._failures: dict[str, deque[float]] = {}

    def _full(self, key: str, limit: int, now: float) -> bool:
        times = self._failures.get(key)
        return times is not None and len(times) >= limit and times[0] > now - self.window

    def blocked(self, mn: str, host: str, now: float) -> str | None:
        """Why a login of ``mn`` from ``host`` is refused now (``None``: it may be tried)."""
        if self._full("mn:" + mn, self.per_mn, now):
            return f"MN {mn[:40]!r}: {self.per_mn} in {self.window:.0f} s"
        if not self.exempt(host) and self._full("address:" + host, self.per_address, now):
            return f"address {host}: {self.per_address} in {self.window:.0f} s"
        return None

    def failed(self, mn: str, host: str, now: float) -> None:
        """Count a failed login of ``mn`` from ``host``."""
        if len(self._failures) > 100_000:
            self.prune(now)
        for key, limit in (("mn:" + mn, self.per_mn), ("address:" + host, self.per_address)):
            times = self._failures.get(key)
            if times is None:
                times = self._failures[key] = deque(maxlen=limit)
            times.append(now)

    def prune(self, now: float) -> None:
        """Forget failures older than the window."""
        old = now - self.window
        self._failures = {k: t for k, t in self._failures.items() if t and t[-1] > old}


@dataclass
class _Link:
    """The live connection of an authenticated field unit, for platform commands."""

    connection: _Connection
    st: str
    pw: str


class Hj212Server:
    """The asyncio TCP server.

    Parameters
    ----------
    store: where devices are looked up (blocking calls run in threads).
    write: how batches, each with its provenance, are made durable (default: the store; the
        shell passes the spooling writer, so that uploads are acknowledged while the store is
        down).
    idle_timeout: seconds without a byte after which a connection is closed.
    max_future: how far ahead of the clock a reading may be stamped.
    max_past: how far behind the clock a reading may be stamped (``ECOSENSE_MAX_PAST_DAYS``);
        older readings are refused, counted and logged, and the packet is still answered.
    max_unanswered: uploads of one connection waiting for the store, beyond which the server
        stops reading from it until they are committed.
    quarantine_codes: distinct codes not in the dictionary held per device; readings of
        further new codes are counted and dropped.
    auth_timeout: seconds a connection has to send a packet with a known MN and PW before
        it is closed (the time its credentials wait for verification not counted).
    max_per_address: most open connections from one address (trusted proxies excepted).
    max_connections: most open connections in all.
    trusted_proxies: networks of trusted proxies, capped by ``max_connections`` only.
    audit: whether each group commit is audited (one entry per device and address, with its
        packets and readings accepted/rejected/held).
    auditor: the background audit writer the entries are handed to (default: appended in a
        worker thread after each group commit).
    max_verifications: password hashes verified at once, in worker threads (each Argon2id
        verification takes tens of ms and 19 MiB).
    throttle: failed logins allowed per MN and per address (default: 5 per MN and 20 per
        address in 60 s).
    failure_delay: seconds a connection waits after a refused login before its next packet.
    recheck_interval: seconds between two checks of the credential versions of the connected
        devices (the fallback should an announcement of a change be missed).
    instances: this gateway instance among those on the database (:mod:`store.instances`):
        records which units this server holds, and routes commands for units held by another
        instance (started and stopped with the server; feed :meth:`routed` the notifications
        of :data:`store.instances.CHANNEL`). ``None``: commands reach local units only.
    """

    def __init__(
        self,
        store: PostgresStore,
        *,
        idle_timeout: float = 600.0,
        max_future: timedelta = timedelta(hours=1),
        max_past: timedelta | None = timedelta(days=30),
        write: Callable[[Sequence[SourcedBatch]], int] | None = None,
        max_unanswered: int = 64,
        quarantine_codes: int = 50,
        auth_timeout: float = 30.0,
        max_per_address: int = 64,
        max_connections: int = 4096,
        trusted_proxies: Sequence[Network] = (),
        audit: bool = True,
        auditor: audit_log.AuditWriter | None = None,
        max_verifications: int = 2,
        throttle: LoginThrottle | None = None,
        failure_delay: float = 0.5,
        recheck_interval: float = 5.0,
        instances: routes.Instances | None = None,
    ) -> None:
        self.store = store
        self.instances = instances
        #: commands routed to another instance, waiting for its answer: woken by notifications
        self._routed: dict[str, asyncio.Event] = {}
        self._serving: set[asyncio.Task[None]] = set()  #: commands routed here, being sent
        self.max_verifications = max_verifications
        self.failure_delay = failure_delay
        self.recheck_interval = recheck_interval
        self.audit = audit
        self.auditor = auditor
        #: uploads since the last group commit, per (device, station, address):
        #: [packets, readings accepted, readings rejected, readings held]
        self._uploads: dict[tuple[str, str, str | None], list[int]] = {}
        self.write = write or store.write_batches
        self.idle_timeout = idle_timeout
        self.max_future = max_future
        self.max_past = max_past
        self.max_unanswered = max_unanswered
        self.quarantine_codes = quarantine_codes
        self.auth_timeout = auth_timeout
        self.admission = Admission("hj212", max_per_address, max_connections, trusted_proxies)
        self.throttle = throttle or LoginThrottle()
        self.throttle.exempt = self.admission.is_trusted
        self.held: list[tuple[object, Device, list[RawReading]]] = []
        self.stats = ServerStats()
        self.connections: set[_Connection] = set()
        self.links: dict[str, _Link] = {}
        self.commands: dict[tuple[str, str], asyncio.Queue[hj212.Packet]] = {}
        self._server: asyncio.Server | None = None
        self._pending: list[_Entry] = []
        self._flusher: asyncio.Task[None] | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._rechecker: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._verifying: asyncio.Semaphore | None = None

    @property
    def verifying(self) -> asyncio.Semaphore:
        """Bounds the password verifications running at once."""
        assert self._verifying is not None, "the server is not started"
        return self._verifying

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        assert self._loop is not None, "the server is not started"
        return self._loop

    async def start(self, host: str, port: int) -> tuple[str, int]:
        """Listen on ``host:port`` (0: a free port); return the bound address."""
        self._loop = asyncio.get_running_loop()
        self._verifying = asyncio.Semaphore(self.max_verifications)
        self._server = await self._loop.create_server(
            lambda: _Connection(self), host, port, backlog=4096
        )
        self._sweeper = self._loop.create_task(self._sweep_idle())
        self._rechecker = self._loop.create_task(self._recheck_periodically())
        if self.instances is not None:
            await asyncio.to_thread(self.instances.start)
        sock = self._server.sockets[0].getsockname()
        return str(sock[0]), int(sock[1])

    async def stop(self) -> None:
        """Stop listening and close every connection."""
        for task in (self._sweeper, self._rechecker):
            if task is not None:
                task.cancel()
        if self._server is not None:
            self._server.close()
        for connection in list(self.connections):
            connection.close()
        with contextlib.suppress(TimeoutError):  # connection_lost runs on the next iterations
            async with asyncio.timeout(2):
                while self.connections:
                    await asyncio.sleep(0.01)
        if self._server is not None:
            await self._server.wait_closed()
        if self.instances is not None:
            await asyncio.to_thread(self.instances.stop)

    async def _sweep_idle(self) -> None:
        """Close connections silent for ``idle_timeout`` seconds, and those that did not
        authenticate within ``auth_timeout`` (one timer for all; one log line per sweep)."""
        period = max(0.1, min(self.idle_timeout / 4, self.auth_timeout / 4, 5.0))
        while True:
            await asyncio.sleep(period)
            now = self.loop.time()
            self.admission.summarise()
            self.throttle.prune(now)
            idle = [c for c in self.connections if c.last_active < now - self.idle_timeout]
            silent = [
                c
                for c in self.connections
                if not c.authenticated
                and c.backlog is None  # not waiting for its credentials to be verified
                and c.opened_at < now - self.auth_timeout
                and c.last_active >= now - self.idle_timeout
            ]
            for kind, closing, timeout in (
                ("idle_timeout", idle, self.idle_timeout),
                ("auth_timeout", silent, self.auth_timeout),
            ):
                if not closing:
                    continue
                self.stats.errors[kind] += len(closing)
                logger.info(
                    "hj212: closing %d connection(s) (%s, %.0f s), e.g. %s",
                    len(closing),
                    kind.replace("_", " "),
                    timeout,
                    closing[0].peer,
                )
                for connection in closing:
                    connection.close()

    # credentials changed
    def credentials_changed(self, payload: str) -> None:
        """A credential change was announced (:mod:`store.notify`; from any thread): close
        the connections authenticated as that device (``device:<id>``), or re-check every
        connected device's credential version now (``*``: announcements may have been
        missed)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(self._on_change, payload)

    def _on_change(self, payload: str) -> None:
        device_id = notify.changed_device(payload)
        if payload == notify.EVERYTHING:
            self.loop.create_task(self._recheck())
        if device_id is None:
            return
        closing = []
        for connection in self.connections:
            held = connection.devices
            if any(d is not None and d.id == device_id for d in held.values()):
                closing.append(connection)
            elif None in held.values():  # a pair refused before may be valid now
                connection.devices = {k: d for k, d in held.items() if d is not None}
        self._close_changed(closing, f"the credentials of device {device_id} changed")

    def _close_changed(self, closing: list[_Connection], why: str) -> None:
        if not closing:
            return
        self.stats.errors["credentials_changed"] += len(closing)
        logger.warning(
            "hj212: closing %d connection(s): %s (e.g. %s)", len(closing), why, closing[0].peer
        )
        for connection in closing:
            connection.close()

    async def _recheck_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.recheck_interval)
            try:
                await self._recheck()
            except Exception:  # never let the fallback die
                logger.exception("hj212: credential re-check failed")

    async def _recheck(self) -> None:
        """Close the connections whose device was revoked or changed its credentials since
        it authenticated (one indexed query for all connected devices; skipped while the
        database is unreachable: a device it knew keeps uploading)."""
        held = {
            c: {d.id: d.version for d in c.devices.values() if d is not None}
            for c in self.connections
            if c.authenticated
        }
        ids = {i for versions in held.values() for i in versions}
        if not ids:
            return
        try:
            current = await asyncio.to_thread(self.store.device_versions, ids)
        except StoreError:
            return
        stale = [
            c
            for c, versions in held.items()
            if any(current.get(i) != v for i, v in versions.items())
        ]
        self._close_changed(stale, "their device was revoked or its credentials changed")

    def error(self, kind: str, peer: object, exc: object) -> None:
        """Count and log a problem of kind ``kind``."""
        self.stats.errors[kind] += 1
        logger.warning("hj212 %s: %s: %s", peer, kind, exc)

    def submit(self, entry: _Entry) -> None:
        """Add readings (and the reply due once they are durable) to the next group commit."""
        self._pending.append(entry)
        if self._flusher is None or self._flusher.done():
            self._flusher = self.loop.create_task(self._flush())

    def count_upload(
        self, device: Device, peer: object, accepted: int, rejected: int, held: int
    ) -> None:
        """Count an upload packet for the audit entry of the next group commit."""
        host = str(peer[0]) if isinstance(peer, tuple) and peer else None
        counts = self._uploads.setdefault((device.id, device.station, host), [0, 0, 0, 0])
        counts[0] += 1
        counts[1] += accepted
        counts[2] += rejected
        counts[3] += held

    async def _flush(self) -> None:
        """Group commit: whatever all connections submitted meanwhile, in one write."""
        while self._pending:
            group, self._pending = self._pending, []
            held, self.held = self.held, []
            uploads, self._uploads = self._uploads, {}
            if held:
                await asyncio.to_thread(self._hold, held)
            try:
                stored = await asyncio.to_thread(
                    self._write_columns, [batch for _, batch, _, _ in group if batch is not None]
                )
            except Exception:
                failed = await self._one_by_one(group)
                await self._audit(uploads, failed)
                continue
            self.stats.readings_stored += stored
            for connection, _, reply, n in group:
                connection.committed(reply, n)
            await self._audit(uploads, 0)

    def _write_columns(self, batches: list[SourcedBatch]) -> int:
        """Write a group commit's uploads as columns (issue 17: the store copies columns as
        one Arrow record batch, without Python code per reading), in a worker thread."""
        return self.write([(src, ObservationColumns.of(obs)) for src, obs in batches])

    async def _audit(
        self, uploads: dict[tuple[str, str, str | None], list[int]], failed: int
    ) -> None:
        """One audit entry per device and address of a group commit (in a worker thread; a
        failure is logged by :func:`store.audit.record_many`, never raised). ``failed``: the
        uploads of the commit the store refused (outcome ``partial``, or ``failed`` when that
        is all of them)."""
        if not self.audit or not uploads:
            return
        total = sum(c[0] for c in uploads.values())
        outcome = "ok" if not failed else "failed" if failed >= total else "partial"
        events = [
            audit_log.Event(
                f"device:{device}",
                "write",
                f"station:{station}",
                outcome,
                host,
                {
                    "protocol": "hj212",
                    "device": device,
                    "packets": c[0],
                    "accepted": c[1],
                    "rejected": c[2],
                    "held": c[3],
                    **({"uploads_not_stored": failed} if failed else {}),
                },
            )
            for (device, station, host), c in uploads.items()
        ]
        if self.auditor is not None:
            self.auditor.submit_events(events)
        else:
            await asyncio.to_thread(audit_log.record_many, self.store, events)

    def _hold(self, held: list[tuple[object, Device, list[RawReading]]]) -> None:
        """Hold each packet's readings of codes not in the dictionary in its device's
        quarantine, and write those of codes the operator mapped (in a worker thread; never
        raises: what cannot be held is logged and dropped, the packet is answered anyway)."""
        for peer, device, raw in held:
            try:
                with self.store.connection() as conn:
                    result = quarantine.hold(
                        conn, device.id, device.station, raw, cap=self.quarantine_codes
                    )
            except Exception as exc:
                self.stats.readings_dropped += len(raw)
                self.error(
                    "quarantine",
                    peer,
                    f"{device.id}: {len(raw)} readings of codes not in the dictionary"
                    f" not kept: {exc}",
                )
                continue
            for mapping, sent in result.mapped:
                observations, problems = rehome(
                    device.station,
                    (RawReading(*r) for r in sent),
                    mapping.parameter,
                    mapping.unit,
                    now=datetime.now(UTC),
                    max_future=self.max_future,
                    max_past=self.max_past,
                )
                for problem in problems:
                    self.error("reading", peer, f"{device.id}: {problem}")
                try:
                    self.stats.readings_stored += self.write(
                        [(Source("hj212", device.id), observations)]
                    )
                except Exception as exc:
                    self.stats.readings_dropped += len(observations)
                    self.error(
                        "store",
                        peer,
                        f"{device.id}: {len(observations)} readings of {mapping.code}"
                        f" (mapped to {mapping.parameter}) not stored: {exc}",
                    )
            self.stats.readings_quarantined += result.held
            if result.new_codes:
                new = result.new_codes
                logger.warning(
                    "hj212 %s: %s: %d codes not in the dictionary, quarantined: %s%s",
                    peer,
                    device.id,
                    len(new),
                    ", ".join(new[:10]),
                    ", …" if len(new) > 10 else "",
                )
            if result.dropped:
                self.stats.readings_dropped += result.dropped
                codes = result.dropped_codes
                self.error(
                    "quarantine_full",
                    peer,
                    f"{device.id}: holds {self.quarantine_codes} codes already:"
                    f" {result.dropped} readings of {len(codes)} new codes dropped"
                    f" ({', '.join(codes[:5])}{', …' if len(codes) > 5 else ''})",
                )

    async def _one_by_one(self, group: list[_Entry]) -> int:
        """After a failed group write, write each upload alone: one bad packet must not keep
        the others unanswered. An upload that still fails is not answered (its unit re-sends).
        Returns how many uploads failed."""
        failed = 0
        for connection, batch, reply, uploads in group:
            if batch is None:
                connection.committed(reply, uploads)
                continue
            try:
                self.stats.readings_stored += await asyncio.to_thread(self.write, [batch])
            except Exception as exc:
                self.error("store", connection.peer, f"not answered, unit will re-send: {exc}")
                connection.committed(None, uploads)
                failed += uploads
                continue
            connection.committed(reply, uploads)
        return failed

    async def command(
        self, mn: str, cn: str, cp: str = "", timeout: float = 15.0
    ) -> dict[str, str | None]:
        """Send a platform command (1011/1012 time, 1061–1064 intervals, 1072 password …) to
        the field unit ``mn`` and wait for its 9011 request answer (``QnRtn``) and, when it
        accepted, its 9012 execution result (``ExeRtn``): on this server's link when it holds
        the unit, else through the gateway instance that holds it (``instances``; the answer
        then waits up to ``timeout`` + :data:`ROUTE_MARGIN_SECONDS` s). With ``instances``, the
        database says which instance the unit logged in to last, and that one sends it: a unit
        that reconnected elsewhere may have left its old connection here half-open.

        Raises
        ------
        LookupError
            when no field unit with that MN is connected (to any instance; an instance that
            does not take the command within :data:`ACCEPT_SECONDS` counts as gone).
        TimeoutError
            when it does not answer in ``timeout`` seconds.
        ValueError
            when the command cannot be sent (not an HJ 212 data segment: too long, not ASCII).
        CommandFailed
            when the instance holding the unit failed to send it.
        store.errors.StoreUnavailable
            when the unit is not held here and the database cannot be asked who holds it.
        """
        if not all(" " <= ch <= "~" for ch in mn + cn + cp):  # no NUL, no CR LF framing
            raise ValueError("MN, CN and CP must be printable ASCII (a data segment's text)")
        hj212.encode(cn=cn, st="91", mn=mn, pw="", qn=hj212.qn_now(), flag=5, cp=cp)  # checked
        here = self._link(mn) is not None
        if self.instances is None:
            return await self._command_here(mn, cn, cp, timeout)
        try:  # the unit's last login wins: a link here may be a connection it left half-open
            holder = await asyncio.to_thread(self.instances.holder, mn)
        except StoreError:
            if here:
                return await self._command_here(mn, cn, cp, timeout)
            raise
        if holder is None or holder == self.instances.id:
            return await self._command_here(mn, cn, cp, timeout)
        return await self._command_there(holder, mn, cn, cp, timeout)

    def _link(self, mn: str) -> tuple[_Link, asyncio.Transport] | None:
        """The open link of a unit this server holds, with its transport."""
        link = self.links.get(mn)
        transport = link.connection.transport if link is not None else None
        if link is None or transport is None or transport.is_closing():
            return None
        return link, transport

    async def _command_here(
        self, mn: str, cn: str, cp: str, timeout: float
    ) -> dict[str, str | None]:
        """:meth:`command` on this server's own link of ``mn``."""
        held = self._link(mn)
        if held is None:
            raise LookupError(f"no field unit with MN {mn} is connected")
        link, transport = held
        qn = hj212.qn_now()
        packet = hj212.encode(cn=cn, st=link.st, mn=mn, pw=link.pw, qn=qn, flag=5, cp=cp)
        answers: asyncio.Queue[hj212.Packet] = asyncio.Queue()
        self.commands[(mn, qn)] = answers
        try:
            transport.write(packet)
            result: dict[str, str | None] = {"qn": qn, "QnRtn": None, "ExeRtn": None}
            async with asyncio.timeout(timeout):
                while True:
                    answer = await answers.get()
                    merged = {k: v for g in answer.cp_groups() for k, v in g.items()}
                    if answer.cn == "9011":
                        result["QnRtn"] = merged.get("QnRtn")
                        if result["QnRtn"] != "1":
                            return result  # refused: no execution follows
                    elif answer.cn == "9012":
                        result["ExeRtn"] = merged.get("ExeRtn")
                        return result
        finally:
            self.commands.pop((mn, qn), None)

    async def _command_there(
        self, holder: str, mn: str, cn: str, cp: str, timeout: float
    ) -> dict[str, str | None]:
        """:meth:`command` through ``holder``, the instance holding ``mn``: the command is a
        row the holder takes and answers (:mod:`store.instances`); each step's notification
        wakes this side, which also reads the row every second should one be lost."""
        instances = self.instances
        assert instances is not None
        command = routes.new_command_id()
        woken = self._routed[command] = asyncio.Event()
        loop = self.loop
        started = loop.time()
        taken_by, deadline = started + ACCEPT_SECONDS, started + timeout + ROUTE_MARGIN_SECONDS
        accepted = False
        try:
            await asyncio.to_thread(instances.send_command, command, holder, mn, cn, cp, timeout)
            while True:
                limit = deadline if accepted else min(taken_by, deadline)
                left = limit - loop.time()
                if left <= 0:
                    if accepted or not await asyncio.to_thread(instances.withdraw, command):
                        accepted = True  # taken just now: its answer is awaited
                        if loop.time() < deadline:
                            continue
                        raise TimeoutError(f"field unit {mn} did not answer in time")
                    raise LookupError(
                        f"no field unit with MN {mn} is connected (the gateway instance"
                        f" {holder} that held it does not answer)"
                    )
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(min(1.0, left)):
                        await woken.wait()
                woken.clear()
                state = await asyncio.to_thread(instances.command_state, command)
                if state is None:
                    raise LookupError(f"no field unit with MN {mn} is connected")
                if state.state == "accepted":
                    accepted = True
                elif state.state in routes.TERMINAL:
                    return _routed_result(state, mn)
        finally:
            self._routed.pop(command, None)
            try:
                await asyncio.to_thread(instances.forget, command)
            except StoreError as exc:  # the row is purged later
                logger.warning("hj212: routed command %s not deleted: %s", command, exc)

    def routed(self, payload: str) -> None:
        """A notification on :data:`store.instances.CHANNEL` (from the listener's thread): a
        command routed to this instance, or news of one it routed to another."""
        wakeup = routes.Wakeup.parse(payload)
        loop = self._loop
        instances = self.instances
        if wakeup is None or instances is None or wakeup.to != instances.id:
            return
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(self._on_routed, wakeup)

    def _on_routed(self, wakeup: routes.Wakeup) -> None:
        if wakeup.kind == "answer":
            woken = self._routed.get(wakeup.id)
            if woken is not None:
                woken.set()
        else:
            task = self.loop.create_task(self._serve_routed(wakeup.id))
            self._serving.add(task)  # a task only weakly referenced may vanish mid-way
            task.add_done_callback(self._serving.discard)

    async def _serve_routed(self, command_id: str) -> None:
        """Take a command another instance routed here, send it on the unit's link, and
        record the unit's answer (or why there is none) for that instance."""
        instances = self.instances
        assert instances is not None
        try:
            command = await asyncio.to_thread(instances.claim, command_id)
        except StoreError as exc:
            logger.warning("hj212: routed command %s not taken: %s", command_id, exc)
            return
        if command is None:
            return  # withdrawn by its sender, or not for us
        logger.info(
            "hj212: command CN=%s for MN %s routed from gateway instance %s",
            command.cn,
            command.mn,
            command.sender,
        )
        state: routes.State = "failed"
        result: dict[str, str | None] | None = None
        message: str | None = None
        try:
            result = await self._command_here(command.mn, command.cn, command.cp, command.timeout)
            state = "answered"
        except LookupError as exc:
            state, message = "not_connected", str(exc)
        except TimeoutError:
            state, message = "timeout", f"field unit {command.mn} did not answer in time"
        except ValueError as exc:
            state, message = "invalid", str(exc)
        except Exception as exc:
            logger.exception("hj212: routed command %s failed", command_id)
            message = type(exc).__name__
        try:
            await asyncio.to_thread(instances.answer, command, state, result, message)
        except StoreError as exc:  # the sender times out
            logger.warning("hj212: answer to routed command %s lost: %s", command_id, exc)


class CommandFailed(Exception):
    """The gateway instance holding a field unit could not send it a command."""


def _routed_result(state: routes.CommandState, mn: str) -> dict[str, str | None]:
    """A routed command's final state as :meth:`Hj212Server.command` ends: the unit's
    answers, or the exception the holder met."""
    if state.state == "answered" and state.result is not None:
        return {k: state.result.get(k) for k in ("qn", "QnRtn", "ExeRtn")}
    message = state.message or f"field unit {mn}: {state.state}"
    if state.state == "not_connected":
        raise LookupError(message)
    if state.state == "timeout":
        raise TimeoutError(message)
    if state.state == "invalid":
        raise ValueError(message)
    raise CommandFailed(message)


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
        return future.result(timeout + ROUTE_MARGIN_SECONDS + ACCEPT_SECONDS + 5)

    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()
