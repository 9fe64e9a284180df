"""Mirror accepted readings to an InfluxDB-compatible store (InfluxDB 2, VictoriaMetrics, …).

Enabled by ``ECOSENSE_INFLUX_URL`` (with ``_TOKEN``, ``_ORG``, ``_BUCKET``). Each observation
becomes a point of measurement ``observations`` with tags ``station``, ``parameter``, ``unit``,
``flag``, and ``interval``/``statistic``/``basis`` when set, a float field ``value``, at its
time (nanoseconds). Writes go through influxdb-client's batching write API: batches of up to
5,000 points, flushed every second, retried with exponential back-off (5 retries). The mirror
is a copy: PostgreSQL remains the record, and a mirror that cannot keep up or is down never
blocks or fails ingest (failures are logged and counted).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

from influxdb_client import InfluxDBClient, WriteOptions
from influxdb_client.client.write_api import WriteApi

from sensors.observations import Observation
from sensors.parameters import stream_unit

logger = logging.getLogger(__name__)

MEASUREMENT = "observations"


def _escape_tag(text: str) -> str:
    return text.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")


def to_line(o: Observation) -> str:
    """The line-protocol record of one observation (nanosecond time)."""
    tags = {
        "station": o.station,
        "parameter": o.parameter,
        "flag": o.flag,
        "unit": stream_unit(o.parameter, o.statistic),
        "basis": o.basis,
    }
    if o.interval:
        tags["interval"] = o.interval
    if o.statistic:
        tags["statistic"] = o.statistic
    tag_text = ",".join(f"{k}={_escape_tag(v)}" for k, v in sorted(tags.items()) if v)
    ns = int(o.time.timestamp()) * 1_000_000_000 + o.time.microsecond * 1000
    return f"{MEASUREMENT},{tag_text} value={float(o.value)!r} {ns}"


class InfluxMirror:
    """Forward batches of observations to an InfluxDB-compatible write API, in the background."""

    def __init__(self, url: str, token: str | None, org: str | None, bucket: str | None) -> None:
        self.bucket = bucket or "ecosense"
        self.org = org or "ecosense"
        self.errors = 0
        self.written = 0
        self._lock = threading.Lock()
        self.client = InfluxDBClient(url=url, token=token or "", org=self.org, timeout=10_000)
        self.write_api: WriteApi = self.client.write_api(
            write_options=WriteOptions(
                batch_size=5_000,
                flush_interval=1_000,
                max_retries=5,
                retry_interval=1_000,
                exponential_base=2,
            ),
            success_callback=self._ok,
            error_callback=self._failed,
            retry_callback=self._retry,
        )

    def write(self, observations: Sequence[Observation]) -> None:
        """Queue a batch for the mirror; never raises for the mirror's sake."""
        if not observations:
            return
        try:
            self.write_api.write(
                bucket=self.bucket, org=self.org, record=[to_line(o) for o in observations]
            )
        except Exception:  # the mirror must never break ingest
            with self._lock:
                self.errors += 1
            logger.exception("influx mirror: could not queue %d points", len(observations))

    def close(self) -> None:
        """Flush what is queued and close."""
        self.write_api.close()
        self.client.close()

    def _ok(self, _conf: Any, data: Any) -> None:
        lines = data.count(b"\n") + 1 if isinstance(data, bytes) else 1
        with self._lock:
            self.written += lines

    def _failed(self, _conf: Any, _data: Any, exc: Exception) -> None:
        with self._lock:
            self.errors += 1
        logger.warning("influx mirror: batch dropped after retries: %s", exc)

    def _retry(self, _conf: Any, _data: Any, exc: Exception) -> None:
        logger.info("influx mirror: retrying: %s", exc)
