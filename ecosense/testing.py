"""Helpers for tests and benchmarks that run the whole platform as a user would.

``running(data_dir, ...)`` starts ``python -m ecosense up`` on free ports as a child process,
waits for its ``ready`` line, yields where everything listens, and stops it with SIGTERM.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

_READY = re.compile(r"ready http=(\S+) hj212=(\S+):(\d+)(?: dashboard=(\S+))?\n")


@dataclass
class Platform:
    """A running ``ecosense up``: its process and addresses."""

    process: subprocess.Popen[str]
    data_dir: Path
    http: str
    hj212: tuple[str, int]
    dashboard: str | None

    @property
    def admin_token(self) -> str:
        """The operator token of this data directory."""
        return (self.data_dir / "admin_token").read_text("utf-8").strip()


def environment(data_dir: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment for an ``ecosense`` child on the embedded database of
    ``data_dir`` (``ECOSENSE_DATABASE_URL`` removed), plus ``extra``."""
    env = {**os.environ, "ECOSENSE_DATA_DIR": str(data_dir), **(extra or {})}
    if "ECOSENSE_DATABASE_URL" not in (extra or {}):
        env.pop("ECOSENSE_DATABASE_URL", None)
    return env


@contextmanager
def running(
    data_dir: Path, *args: str, env: Mapping[str, str] | None = None, dashboard: bool = False
) -> Iterator[Platform]:
    """``ecosense up --http-port 0 --hj212-port 0 [--no-dashboard] ARGS`` until the block ends.

    Raises
    ------
    RuntimeError
        when the platform does not print its ready line (its stderr is in the message).
    """
    cmd = [sys.executable, "-m", "ecosense", "up", "--http-port", "0", "--hj212-port", "0"]
    cmd += ["--dashboard-port", "0"] if dashboard else ["--no-dashboard"]
    proc = subprocess.Popen(
        [*cmd, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment(data_dir, env),
    )
    assert proc.stdout is not None and proc.stderr is not None
    try:
        line = proc.stdout.readline()
        m = _READY.fullmatch(line)
        if m is None:
            proc.kill()
            raise RuntimeError(f"ecosense up did not start: {line!r} {proc.stderr.read()}")
        yield Platform(proc, data_dir, m.group(1), (m.group(2), int(m.group(3))), m.group(4))
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        proc.stdout.close()
        proc.stderr.close()
