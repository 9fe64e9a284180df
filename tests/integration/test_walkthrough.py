"""README "Walkthrough · 上手示例" runs as written (issue 14, item 3: "No example files ship:
the README names `stations.csv`, `readings.xlsx`, `facilities.csv`, `fuel.csv`, `targets.csv`,
`basins.gpkg`, a JOB.toml…; a newcomer writes all of them")."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.test_one_platform import start_up, wait_ready

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
HEADING = "## Walkthrough · 上手示例"


def walkthrough() -> tuple[list[str], list[str]]:
    """The walkthrough's ``ecosense up`` lines and its other command lines, as written."""
    text = (REPO / "README.md").read_text("utf-8")
    section = text.split(HEADING, 1)[1].split("\n## ", 1)[0]
    ups, commands = [], []
    for block in re.findall(r"```sh\n(.*?)```", section, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if not words:
                continue
            (ups if words[:2] == ["ecosense", "up"] else commands).append(line)
    return ups, commands


def test_the_examples_are_what_make_examples_makes() -> None:
    """The committed files are the generator's (deterministic) output, and the walkthrough uses
    every one of them."""
    r = subprocess.run(
        [sys.executable, str(REPO / "examples" / "make_examples.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    _, commands = walkthrough()
    used = " ".join(commands)
    shipped = {p.name for p in (REPO / "examples").iterdir() if p.suffix != ".py"}
    assert {n for n in shipped if f"examples/{n}" not in used} <= {"ndvi-2026-07.tif"} | {
        n for n in shipped if n.startswith(".")
    }
    # the STAC item points at the GeoTIFF, which the walkthrough also registers directly
    assert "examples/ndvi-2026-07.tif" in used


def test_the_walkthrough_runs_verbatim(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each line, as written, exits 0 against an ``ecosense up`` of the test's own (a
    subprocess). Every line is one plain ``ecosense`` command (no pipe, no variable), so it is
    run as ``ecosense.cli.main(ARGS)`` in this process, saving an interpreter start per line,
    and the commands share one Dask cluster through ``ECOSENSE_DASK_SCHEDULER``."""
    from distributed import LocalCluster

    from ecosense.cli import main

    ups, commands = walkthrough()
    assert ups == ["ecosense up          # leave it running; Ctrl-C stops it"]
    assert len(commands) >= 15
    shutil.copytree(REPO / "examples", tmp_path / "examples")
    bin_dir = str(Path(sys.executable).parent)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("ECOSENSE_")},
        "ECOSENSE_DATA_DIR": str(tmp_path / "data"),
        "PYTHONPATH": str(REPO),
        "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
    }
    cluster = LocalCluster(
        n_workers=1,
        threads_per_worker=2,
        processes=False,
        protocol="tcp://",
        host="127.0.0.1",
        dashboard_address=None,
    )
    env["ECOSENSE_DASK_SCHEDULER"] = cluster.scheduler_address
    platform = start_up(tmp_path, env)  # the walkthrough's `ecosense up`, on free ports
    outputs: dict[str, str] = {}
    try:
        wait_ready(platform)
        monkeypatch.chdir(tmp_path)
        for key in [k for k in os.environ if k.startswith("ECOSENSE_")]:
            monkeypatch.delenv(key)
        for key in ("ECOSENSE_DATA_DIR", "ECOSENSE_DASK_SCHEDULER"):
            monkeypatch.setenv(key, env[key])
        for line in commands:
            argv = shlex.split(line, comments=True)
            assert argv[0] == "ecosense" and not set("|&;<>$`") & set(line), line
            code = main(argv[1:])
            out, err = capsys.readouterr()
            assert code == 0, f"{line}\n{out}\n{err}"
            if not line.startswith("ecosense carbon run"):  # a job file alone opens no store
                assert "platform running on it: pid" in err, (line, err)
            outputs[line] = out
    finally:
        os.killpg(platform.pid, signal.SIGINT)
        platform.communicate(timeout=60)
        cluster.close()

    def out(prefix: str) -> str:
        return next(v for k, v in outputs.items() if k.startswith(prefix))

    assert "imported 144 readings" in out("ecosense import examples/readings.csv")
    assert "4 sampling points" in out("ecosense import examples/soil-samples.csv")
    listed = out("ecosense stations list").splitlines()
    assert listed[0].split() == ["id", "name", "kind", "lon", "lat", "simulated"]
    assert [row.split()[0] for row in listed[1:]] == ["BJ-DC", "BJ-HD", "HZ-XH"]
    assert "kind:        soil" in out("ecosense stations show SOIL-03")
    emissions = out("ecosense carbon emissions").splitlines()
    assert emissions[0] == "subject,gas,period,start,tonnes,substitution"
    assert any(",CO2e,P1Y,2025-01-01T00:00:00+08:00," in row for row in emissions)
    assert out("ecosense carbon run").startswith("Example inventory 2025: ")
    assert (tmp_path / "examples" / "inventory-2025" / "report.html").exists()
    assert (tmp_path / "examples" / "inventory-2025" / "inventory.xlsx").exists()  # as README says
    results = out("ecosense gis results").splitlines()
    assert {row.split()[1] for row in results[1:]} == {"CHAOBAI", "YONGDING"}
    assert out("ecosense devices add").strip().splitlines()[-1].startswith("es_")
