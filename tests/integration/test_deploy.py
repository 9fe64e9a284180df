"""The production image's Dockerfile (the compose file: tests/integration/test_compose.py)."""

from __future__ import annotations

from pathlib import Path


def test_dockerfile_installs_every_package(repo_root: Path) -> None:
    dockerfile = (repo_root / "docker" / "Dockerfile").read_text()
    for pkg in ("ecosense", "sensors", "ingest", "api", "store", "dashboards"):
        assert f"COPY {pkg} {pkg}" in dockerfile
