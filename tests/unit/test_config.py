"""Configuration from the environment and a TOML file; the operator token."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from ecosense.config import admin_token, load_settings
from ecosense.errors import ConfigError


def test_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    s = load_settings({})
    assert s.data_dir == tmp_path / ".ecosense"
    assert s.database_url is None and s.timezone == "Asia/Shanghai"
    assert s.max_future.total_seconds() == 3600
    assert s.max_past.days == 30  # ECOSENSE_MAX_PAST_DAYS
    assert load_settings({"ECOSENSE_MAX_PAST_DAYS": "7"}).max_past.days == 7


def test_environment_wins_over_toml(tmp_path: Path) -> None:
    cfg = tmp_path / "e.toml"
    cfg.write_text('timezone = "Asia/Urumqi"\ndatabase_url = "postgresql://x/y"\n')
    s = load_settings({"ECOSENSE_CONFIG": str(cfg), "ECOSENSE_TIMEZONE": "UTC"})
    assert s.timezone == "UTC" and s.database_url == "postgresql://x/y"


@pytest.mark.parametrize(
    ("env", "reason"),
    [
        ({"ECOSENSE_TIMEZONE": "Mars/Olympus"}, "unknown timezone"),
        ({"ECOSENSE_MAX_FUTURE_SECONDS": "soon"}, "number of seconds"),
        ({"ECOSENSE_MAX_PAST_DAYS": "a month"}, "number of days"),
        ({"ECOSENSE_MAX_PAST_DAYS": "0"}, "more than 0"),
        ({"ECOSENSE_CONFIG": "/nonexistent.toml"}, "does not exist"),
    ],
)
def test_bad_settings_are_config_errors(env: dict[str, str], reason: str) -> None:
    with pytest.raises(ConfigError, match=reason):
        load_settings(env)


def test_admin_token_generated_once_and_private(tmp_path: Path) -> None:
    s = load_settings({"ECOSENSE_DATA_DIR": str(tmp_path / "d")})
    first = admin_token(s)
    assert admin_token(s) == first
    mode = (tmp_path / "d" / "admin_token").stat().st_mode
    assert stat.S_IMODE(mode) == 0o600
    assert (
        admin_token(
            load_settings({"ECOSENSE_ADMIN_TOKEN": "op", "ECOSENSE_DATA_DIR": str(tmp_path)})
        )
        == "op"
    )


def test_quarantine_codes_per_device(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ECOSENSE_QUARANTINE_CODES: distinct unknown HJ 212 codes held per device (default 50)."""
    monkeypatch.chdir(tmp_path)
    assert load_settings({}).quarantine_codes == 50
    assert load_settings({"ECOSENSE_QUARANTINE_CODES": "5"}).quarantine_codes == 5
    for bad in ("many", "-1", "2.5"):
        with pytest.raises(ConfigError, match="ECOSENSE_QUARANTINE_CODES"):
            load_settings({"ECOSENSE_QUARANTINE_CODES": bad})
