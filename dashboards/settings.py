"""The few settings the dashboard reads; ``ecosense up`` passes them in its environment."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from access.policy import Role
from access.sso import parse_role_map


@dataclass(frozen=True)
class DashboardSettings:
    """Database URL (unset: the embedded server of ``data_dir``), timezone, optional tiles;
    how long a sign-in lasts; whether single sign-on is configured (Streamlit's ``[auth]``
    secrets, written by ``ecosense up``), the claim holding the role and its mapping;
    ``api_url`` the gateway's address as a browser reaches it (the open-data page's download
    links; ``""``: the dashboard's own origin; ``None``: not known, no links)."""

    database_url: str | None
    data_dir: Path
    timezone: ZoneInfo
    tile_url: str | None
    token_ttl: timedelta = timedelta(hours=8)
    sso: bool = False
    role_claim: str = "groups"
    roles: dict[str, Role] = field(default_factory=dict)
    api_url: str | None = None


def api_url(text: str | None) -> str | None:
    """``ECOSENSE_API_URL`` as the dashboard uses it: an address without its trailing ``/``;
    ``/`` alone for the dashboard's own origin (a reverse proxy sending ``/api/`` to the
    gateways, as docker/compose.yaml's does): ``""``, so links are root-relative; unset or
    empty: ``None``."""
    value = (text or "").strip()
    if value == "/":
        return ""
    return value.rstrip("/") or None


def from_environment() -> DashboardSettings:
    """Read ``ECOSENSE_DATABASE_URL``, ``_DATA_DIR``, ``_TIMEZONE``, ``_TILE_URL``,
    ``_TOKEN_TTL_SECONDS``, ``_DASHBOARD_SSO`` (set by ``ecosense up`` when it wrote the
    ``[auth]`` secrets), ``_OIDC_ROLE_CLAIM``, ``_OIDC_ROLES`` and ``_API_URL`` (set by
    ``ecosense up`` to its gateway's address unless given)."""
    env = os.environ
    return DashboardSettings(
        database_url=env.get("ECOSENSE_DATABASE_URL") or None,
        data_dir=Path(env.get("ECOSENSE_DATA_DIR") or ".ecosense").absolute(),
        timezone=ZoneInfo(env.get("ECOSENSE_TIMEZONE") or "Asia/Shanghai"),
        tile_url=env.get("ECOSENSE_TILE_URL") or None,
        token_ttl=timedelta(seconds=float(env.get("ECOSENSE_TOKEN_TTL_SECONDS") or 28800)),
        sso=env.get("ECOSENSE_DASHBOARD_SSO") == "1",
        role_claim=env.get("ECOSENSE_OIDC_ROLE_CLAIM") or "groups",
        roles=parse_role_map(env.get("ECOSENSE_OIDC_ROLES") or ""),
        api_url=api_url(env.get("ECOSENSE_API_URL")),
    )
