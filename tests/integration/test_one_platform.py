"""One platform, one place (issue 14, item 4): commands find the platform's data dir from any
folder and say so on stderr; ``ecosense up`` runs once per data dir and stops on Ctrl-C at
any moment of its start."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of a user with home ``home`` and no EcoSense setting but ``extra``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ECOSENSE_", "XDG_")) or k.startswith("ECOSENSE_TEST_")
    }
    env.update(HOME=str(home), PYTHONPATH=str(REPO), **extra)
    return env


def ecosense(
    cwd: Path, env: dict[str, str], *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ecosense", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start_up(cwd: Path, env: dict[str, str], jobs_interval: str = "0") -> subprocess.Popen[str]:
    """The installed ``ecosense up`` command without dashboard (and by default without
    scheduler), any free ports, in its own session (as a terminal's foreground job: a Ctrl-C
    reaches its whole process group)."""
    return subprocess.Popen(
        [
            str(Path(sys.executable).parent / "ecosense"),  # the installed command, as users run it
            "up",
            "--no-dashboard",
            "--http-port",
            "0",
            "--hj212-port",
            "0",
        ],
        cwd=cwd,
        env={**env, "ECOSENSE_JOBS_INTERVAL_SECONDS": jobs_interval},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def wait_ready(proc: subprocess.Popen[str], timeout: float = 120) -> str:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith("ready "):
            return line.strip()
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise AssertionError(f"no ready line: {proc.communicate()[1]}")


def test_a_command_in_a_new_folder_does_not_make_a_database_there(tmp_path: Path) -> None:
    """Issue 14: "`ecosense stations import` in a new directory 'imported 2 stations' into a
    fresh `./.ecosense` there"."""
    folder, home = tmp_path / "new-folder", tmp_path / "home"
    folder.mkdir()
    home.mkdir()
    r = ecosense(folder, clean_env(home), "stations", "import", str(EXAMPLES / "stations.csv"))
    assert r.returncode == 1, r.stdout
    assert "imported" not in r.stdout
    assert not (folder / ".ecosense").exists()
    data_dir = home / ".local" / "share" / "ecosense"
    assert f"no EcoSense data dir at {data_dir} (default)" in r.stderr
    assert "`ecosense up` creates it" in r.stderr and "ECOSENSE_DATA_DIR" in r.stderr
    # a folder holding a data dir of the former default (./.ecosense) is pointed out
    (folder / ".ecosense" / "pg").mkdir(parents=True)
    (folder / ".ecosense" / "pg" / "PG_VERSION").write_text("16\n")
    r = ecosense(folder, clean_env(home), "stations", "list")
    assert r.returncode == 1
    assert f"set ECOSENSE_DATA_DIR={folder / '.ecosense'} to use it" in r.stderr


def test_up_once_per_data_dir_and_commands_find_it_from_anywhere(tmp_path: Path) -> None:
    """Issue 14: "a second `ecosense up` on the same data dir starts silently, with a second
    scheduler"; the CLI "silently uses another database when run from another folder";
    "Dask's INFO chatter off by default" (the scheduler's local cluster runs here)."""
    home, first, second, third = (tmp_path / n for n in ("home", "a", "b", "c"))
    for d in (home, first, second, third):
        d.mkdir()
    env = clean_env(home)
    data_dir = home / ".local" / "share" / "ecosense"
    proc = start_up(first, env, jobs_interval="2")
    try:
        ready = wait_ready(proc)
        http = ready.split()[1]
        again = ecosense(second, env, "up", "--no-dashboard", "--http-port", "0", timeout=60)
        assert again.returncode == 1
        assert f"a platform is already running on data dir {data_dir}" in again.stderr
        assert f"pid {proc.pid}" in again.stderr and http in again.stderr

        r = ecosense(second, env, "stations", "import", str(EXAMPLES / "stations.csv"))
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip().splitlines()[-1].startswith("imported ")
        status = [x for x in r.stderr.splitlines() if x.startswith("ecosense: data dir ")]
        assert status == [
            f"ecosense: data dir {data_dir} (default); platform running on it: pid {proc.pid},"
            + status[0].split(f"pid {proc.pid},", 1)[1]
        ]
        assert http in status[0]
        # started when, in the bureau's time (a trial finding: it was UTC)
        assert re.search(r"started \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+08:00", status[0]), status
        assert re.search(r"started \S+\+08:00", again.stderr), again.stderr
        assert not (second / ".ecosense").exists()

        listed = ecosense(third, env, "stations", "list", "--format", "csv")
        assert listed.returncode == 0, listed.stderr
        assert listed.stdout.splitlines()[0] == "id,name,kind,lon,lat,simulated"
        assert any(line.startswith("BJ-DC,") for line in listed.stdout.splitlines())
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
    assert proc.returncode == 0, err
    assert err.strip().splitlines() == [
        f"ecosense: data dir {data_dir} (default): starting the platform"
    ], err  # nothing of Dask's (INFO), the scheduler's cluster included
    stopped = ecosense(third, env, "stations", "list")
    assert stopped.returncode == 0, stopped.stderr
    assert f"ecosense: data dir {data_dir} (default); no platform running on it" in stopped.stderr


@pytest.mark.parametrize("delay", [0.1, 0.3, 1.2, 2.5, 5.0])
def test_ctrl_c_at_any_moment_of_start_up(
    tmp_path_factory: pytest.TempPathFactory, delay: float
) -> None:
    """Issue 14: "Ctrl-C in the first second of `ecosense up` is ignored" (and, in the trial, a
    traceback from the installed script's imports at 0.1 s). A Ctrl-C (SIGINT to
    the process group, as a terminal sends it) at several moments of the start stops
    everything within 15 s: the process exits 0 or 130 (or ends by the signal), the embedded
    database is stopped and the data dir's lock is free."""
    from ecosense.instance import running

    base = tmp_path_factory.getbasetemp() / "ctrl-c"
    home = base / "home"
    home.mkdir(parents=True, exist_ok=True)
    data_dir = base / "data"
    env = clean_env(home, ECOSENSE_DATA_DIR=str(data_dir))
    proc = start_up(base, env)
    time.sleep(delay)
    sent = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError(f"still running 15 s after Ctrl-C at {delay} s") from None
    took = time.monotonic() - sent
    # 130 is ``ecosense``'s own exit code for an interruption. -SIGINT is CPython ending the
    # process with the signal itself, as it does after a KeyboardInterrupt it counts as
    # unhandled (seen once in CI, "ecosense: interrupted" printed, the Ctrl-C arriving while
    # the command was still loading). A shell's $? is 130 either way.
    assert proc.returncode in (0, 130, -signal.SIGINT), err
    assert "Traceback" not in err, err
    assert took < 15
    assert running(data_dir) is None
    assert not (data_dir / "pg" / "postmaster.pid").exists(), "the database was left running"
