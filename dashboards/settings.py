"""The few settings the dashboard reads; ``ecosense up`` passes them in its environment."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class DashboardSettings:
    """Database URL (unset: the embedded server of ``data_dir``), timezone, optional tiles."""

    database_url: str | None
    data_dir: Path
    timezone: ZoneInfo
    tile_url: str | None


def from_environment() -> DashboardSettings:
    """Read ``ECOSENSE_DATABASE_URL``, ``_DATA_DIR``, ``_TIMEZONE`` and ``_TILE_URL``."""
    env = os.environ
    return DashboardSettings(
        database_url=env.get("ECOSENSE_DATABASE_URL") or None,
        data_dir=Path(env.get("ECOSENSE_DATA_DIR") or ".ecosense").absolute(),
        timezone=ZoneInfo(env.get("ECOSENSE_TIMEZONE") or "Asia/Shanghai"),
        tile_url=env.get("ECOSENSE_TILE_URL") or None,
    )
