"""The production compose file is valid (Debian's docker-compose; no engine needed)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from tests.conftest import require_service


def compose_config(repo_root: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``docker-compose config`` of the production compose file (Debian's docker-compose)."""
    exe = shutil.which("docker-compose")
    require_service("docker-compose", exe is not None)
    assert exe is not None
    return subprocess.run(
        [exe, "-f", str(repo_root / "docker" / "compose.yaml"), "config"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def test_compose_file_is_valid(repo_root: Path) -> None:
    env = {**os.environ, "ECOSENSE_DB_PASSWORD": "x", "ECOSENSE_ADMIN_TOKEN": "y"}
    r = compose_config(repo_root, env)
    assert r.returncode == 0, r.stderr
    assert "timescale/timescaledb" in r.stdout and "ECOSENSE_DATABASE_URL" in r.stdout


def test_compose_refuses_to_run_without_secrets(repo_root: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ECOSENSE_")}
    r = compose_config(repo_root, env)
    assert r.returncode != 0 and "ECOSENSE_DB_PASSWORD" in r.stderr


def test_dockerfile_installs_every_package(repo_root: Path) -> None:
    dockerfile = (repo_root / "docker" / "Dockerfile").read_text()
    for pkg in ("ecosense", "sensors", "ingest", "api", "store", "dashboards"):
        assert f"COPY {pkg} {pkg}" in dockerfile
