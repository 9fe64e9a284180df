"""Configuration from the environment and a TOML file; the operator token."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from ecosense.config import admin_token, load_settings
from ecosense.errors import ConfigError


def test_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    s = load_settings({"HOME": str(tmp_path / "home")})
    # issue 14: the default does not depend on the current folder (a per-user data dir)
    assert s.data_dir == tmp_path / "home" / ".local" / "share" / "ecosense"
    xdg = load_settings({"HOME": "/nowhere", "XDG_DATA_HOME": str(tmp_path / "xdg")})
    assert xdg.data_dir == tmp_path / "xdg" / "ecosense"
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


def test_the_data_dir_and_where_its_setting_comes_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same data dir from every folder: environment, then ``./ecosense.toml``, then the
    user's ``~/.config/ecosense/ecosense.toml``, then the per-user default (issue 14)."""
    from ecosense.config import data_dir_origin

    home, folder = tmp_path / "home", tmp_path / "somewhere"
    folder.mkdir()
    monkeypatch.chdir(folder)
    env = {"HOME": str(home)}
    assert data_dir_origin(env) == "default"
    user_toml = home / ".config" / "ecosense" / "ecosense.toml"
    user_toml.parent.mkdir(parents=True)
    user_toml.write_text(f'data_dir = "{tmp_path / "platform"}"\n')
    assert load_settings(env).data_dir == tmp_path / "platform"
    assert data_dir_origin(env) == str(user_toml)
    (folder / "ecosense.toml").write_text('timezone = "UTC"\n')  # the folder's file wins whole
    assert load_settings(env).data_dir == home / ".local" / "share" / "ecosense"
    env["ECOSENSE_DATA_DIR"] = str(tmp_path / "env")
    assert load_settings(env).data_dir == tmp_path / "env"
    assert data_dir_origin(env) == "ECOSENSE_DATA_DIR"


def test_every_setting_may_come_from_a_file(tmp_path: Path) -> None:
    """Issue 15: ``ECOSENSE_X_FILE`` (compose and Kubernetes secrets) for every ``ECOSENSE_X``;
    the file's trailing newline is not part of the value."""
    url, token, tz = tmp_path / "url", tmp_path / "token", tmp_path / "tz"
    url.write_text("postgresql://es:s3cret@db/ecosense\n")
    token.write_text("es_admin_from_a_secret\r\n")
    tz.write_text("UTC")
    s = load_settings(
        {
            "ECOSENSE_DATA_DIR": str(tmp_path / "d"),
            "ECOSENSE_DATABASE_URL_FILE": str(url),
            "ECOSENSE_ADMIN_TOKEN_FILE": str(token),
            "ECOSENSE_TIMEZONE_FILE": str(tz),
        }
    )
    assert s.database_url == "postgresql://es:s3cret@db/ecosense"
    assert s.admin_token == "es_admin_from_a_secret" and admin_token(s) == s.admin_token
    assert s.timezone == "UTC"
    # a file wins over the TOML file, as the variable does
    cfg = tmp_path / "e.toml"
    cfg.write_text('database_url = "postgresql://toml/db"\n')
    s = load_settings({"ECOSENSE_CONFIG": str(cfg), "ECOSENSE_DATABASE_URL_FILE": str(url)})
    assert s.database_url == "postgresql://es:s3cret@db/ecosense"
    # and is checked as the variable is
    with pytest.raises(ConfigError, match="unknown timezone"):
        tz.write_text("Mars/Olympus\n")
        load_settings({"ECOSENSE_TIMEZONE_FILE": str(tz)})


@pytest.mark.parametrize(
    ("env", "reason"),
    [
        (
            {"ECOSENSE_ADMIN_TOKEN": "a", "ECOSENSE_ADMIN_TOKEN_FILE": "{dir}/token"},
            "ECOSENSE_ADMIN_TOKEN and ECOSENSE_ADMIN_TOKEN_FILE are both set",
        ),
        (
            {"ECOSENSE_DATABASE_URL_FILE": "{dir}/missing"},
            "ECOSENSE_DATABASE_URL_FILE: cannot read .*/missing: No such file",
        ),
        ({"ECOSENSE_ADMIN_TOKEN_FILE": "{dir}/empty"}, "ECOSENSE_ADMIN_TOKEN_FILE: .* is empty"),
    ],
)
def test_a_bad_setting_file_is_a_config_error(
    tmp_path: Path, env: dict[str, str], reason: str
) -> None:
    (tmp_path / "token").write_text("b\n")
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ConfigError, match=reason):
        load_settings({k: v.format(dir=tmp_path) for k, v in env.items()})
