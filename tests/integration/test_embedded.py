"""The embedded PostgreSQL: survives restarts, stops with its last user, and outlives a SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path

import psutil
import pytest

from sensors.observations import Observation, Source
from sensors.stations import Station
from store import open_store

SOURCE = Source("http", "test-device")

pytestmark = pytest.mark.integration


def postmaster_running(data_dir: Path) -> bool:
    pid_file = data_dir / "pg" / "postmaster.pid"
    if not pid_file.exists():
        return False
    return psutil.pid_exists(int(pid_file.read_text().split()[0]))


def test_data_survives_a_restart_and_the_server_stops_when_released(tmp_path: Path) -> None:
    with open_store(database_url=None, data_dir=tmp_path) as opened:
        opened.store.upsert_stations([Station("S1", "One", "air", 116.4, 39.9)])
        opened.store.write_observations(
            [Observation("S1", "pm25", datetime(2026, 1, 1, tzinfo=UTC), 5.0)], source=SOURCE
        )
        assert postmaster_running(tmp_path)
    assert not postmaster_running(tmp_path)
    with open_store(database_url=None, data_dir=tmp_path) as opened:
        assert opened.store.count_observations() == 1
    assert not postmaster_running(tmp_path)


def test_a_killed_owner_leaves_the_server_running_for_the_next_start(tmp_path: Path) -> None:
    script = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from store import open_store
        opened = open_store(database_url=None, data_dir=Path({str(tmp_path)!r}))
        print("up", flush=True)
        time.sleep(600)
    """)
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "up"
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        if child.stdout is not None:
            child.stdout.close()
    time.sleep(0.5)
    assert postmaster_running(tmp_path), "the detached server should outlive its owner"
    with open_store(database_url=None, data_dir=tmp_path) as opened:
        assert opened.store.ping()
    assert not postmaster_running(tmp_path), "the dead owner must not keep the server alive"
