"""The InfluxDB mirror against a real VictoriaMetrics server (it accepts InfluxDB writes)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from ecosense.testing import running
from sensors.observations import Observation
from store.influx import to_line
from tests.conftest import require_service

pytestmark = pytest.mark.integration
VM = os.environ.get("ECOSENSE_TEST_VICTORIA_METRICS", "/usr/bin/victoria-metrics")


def test_line_of_an_observation() -> None:
    o = Observation(
        "S 1", "flue_so2", datetime(2026, 11, 28, tzinfo=UTC), 35.0, "M", "PT1H", "avg", "converted"
    )
    assert to_line(o) == (
        "observations,basis=converted,flag=M,interval=PT1H,parameter=flue_so2,"
        r"station=S\ 1,statistic=avg,unit=mg/m3 value=35.0 1795824000000000000"
    )


@pytest.fixture
def victoria(tmp_path: Path) -> Iterator[str]:
    require_service("VictoriaMetrics", Path(VM).exists())
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [VM, f"-httpListenAddr=127.0.0.1:{port}", f"-storageDataPath={tmp_path / 'vm'}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            if httpx.get(url + "/health").status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "VictoriaMetrics did not start"
        time.sleep(0.1)
    yield url
    proc.terminate()
    proc.wait(10)


def test_accepted_readings_are_mirrored(victoria: str, tmp_path: Path) -> None:
    env = {
        "ECOSENSE_INFLUX_URL": victoria,
        "ECOSENSE_INFLUX_ORG": "bureau",
        "ECOSENSE_INFLUX_BUCKET": "readings",
    }
    with running(tmp_path, "--demo", env=env) as platform:
        headers = {"Authorization": "Bearer " + platform.admin_token}
        t = datetime(2026, 11, 28, tzinfo=UTC)
        r = httpx.post(
            platform.http + "/api/v1/observations",
            headers=headers,
            json={
                "observations": [
                    {
                        "station": "SIM-BEIJING",
                        "parameter": "pm25",
                        "time": t.isoformat(),
                        "value": 35.2,
                        "flag": "M",
                    },
                    {
                        "station": "SIM-BEIJING",
                        "parameter": "pm25",
                        "time": t.isoformat(),
                        "value": "bad",
                    },
                ]
            },
        )
        assert r.json()["accepted"] == 1
        series: list[dict[str, object]] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            httpx.get(victoria + "/internal/force_flush")
            text = httpx.post(
                victoria + "/api/v1/export",
                data={"match[]": '{__name__="observations_value",station="SIM-BEIJING",flag="M"}'},
            ).text
            series = [json.loads(line) for line in text.splitlines() if line]
            if series:
                break
            time.sleep(0.5)
        assert len(series) == 1
        assert series[0]["values"] == [35.2]
        assert series[0]["timestamps"] == [int(t.timestamp() * 1000)]
        assert series[0]["metric"]["unit"] == "ug/m3"  # type: ignore[index]
        # The demo's simulated stations (HTTP and HJ 212) are mirrored too.
        demo = httpx.post(
            victoria + "/api/v1/export", data={"match[]": '{__name__="observations_value"}'}
        ).text
        assert len(demo.splitlines()) > 1
    assert platform.process.returncode == 0
