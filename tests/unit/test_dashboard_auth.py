"""The dashboard's single sign-on settings, its role mapping and the secrets ``ecosense up``
writes for Streamlit (issue 13, "Dashboard login": ``ECOSENSE_OIDC_*``, "mapping a claim to
a role"; secrets never on a command line)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from access import Role
from access.sso import parse_role_map, role_from_claims, sso_name
from ecosense.config import load_settings
from ecosense.dashboard import SECRETS_FILE, THEME_FLAGS, streamlit_options, write_secrets
from ecosense.errors import ConfigError

ROLES = "eco-staff=viewer, eco-analysts=analyst,eco-admins=admin"


def test_role_map_and_claims() -> None:
    roles = parse_role_map(ROLES)
    assert roles == {
        "eco-staff": Role.VIEWER,
        "eco-analysts": Role.ANALYST,
        "eco-admins": Role.ADMIN,
    }
    assert (
        role_from_claims({"groups": ["x", "eco-staff", "eco-admins"]}, "groups", roles)
        is Role.ADMIN
    )
    assert role_from_claims({"groups": "eco-analysts"}, "groups", roles) is Role.ANALYST
    assert role_from_claims({"groups": ["eco-nobody"]}, "groups", roles) is None
    assert role_from_claims({"roles": ["eco-admins"]}, "groups", roles) is None  # other claim
    assert role_from_claims({"groups": 5}, "groups", roles) is None
    assert parse_role_map("") == {}
    for bad in ("eco-analysts", "=analyst", "g=wizard"):
        with pytest.raises(ValueError):
            parse_role_map(bad)


def test_sso_names_cannot_be_local_user_names() -> None:
    assert sso_name({"preferred_username": "li", "email": "li@x", "sub": "1"}) == "sso:li"
    assert sso_name({"email": "li@x", "sub": "1"}) == "sso:li@x"
    assert sso_name({"sub": "abc"}) == "sso:abc"
    assert sso_name({}) is None


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"ECOSENSE_DATA_DIR": str(tmp_path), **extra}


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        ({"ECOSENSE_OIDC_CLIENT_ID": "c"}, "ECOSENSE_OIDC_ISSUER"),
        ({"ECOSENSE_OIDC_ISSUER": "http://idp", "ECOSENSE_OIDC_CLIENT_ID": "c"}, "CLIENT_SECRET"),
        ({"ECOSENSE_OIDC_ISSUER": "idp.example"}, "http"),
        (
            {
                "ECOSENSE_OIDC_ISSUER": "http://idp",
                "ECOSENSE_OIDC_CLIENT_ID": "c",
                "ECOSENSE_OIDC_CLIENT_SECRET": "s",
                "ECOSENSE_OIDC_REDIRECT_URI": "http://eco/callback",
            },
            "oauth2callback",
        ),
        (
            {
                "ECOSENSE_OIDC_ISSUER": "http://idp",
                "ECOSENSE_OIDC_CLIENT_ID": "c",
                "ECOSENSE_OIDC_CLIENT_SECRET": "s",
                "ECOSENSE_OIDC_ROLES": "g=wizard",
            },
            "ECOSENSE_OIDC_ROLES",
        ),
    ],
)
def test_bad_oidc_settings_are_config_errors(
    tmp_path: Path, extra: dict[str, str], reason: str
) -> None:
    with pytest.raises(ConfigError, match=reason):
        load_settings(_env(tmp_path, **extra))


def test_no_sso_by_default(tmp_path: Path) -> None:
    settings = load_settings(_env(tmp_path))
    assert not settings.oidc
    assert write_secrets(settings, "http://127.0.0.1:8501") is None
    flags, env = streamlit_options(settings, "http://127.0.0.1:8501")
    # never a traceback in the browser; the accessible theme
    assert flags == ["--client.showErrorDetails", "none", *THEME_FLAGS]
    assert env["ECOSENSE_DASHBOARD_SSO"] == "0"
    assert not (tmp_path / SECRETS_FILE).exists()


def test_secrets_written_private_and_not_on_the_command_line(tmp_path: Path) -> None:
    secret = 'se"cr\\et-456'
    settings = load_settings(
        _env(
            tmp_path,
            ECOSENSE_OIDC_ISSUER="https://idp.example/realms/eco",
            ECOSENSE_OIDC_CLIENT_ID="ecosense",
            ECOSENSE_OIDC_CLIENT_SECRET=secret,
            ECOSENSE_OIDC_ROLES=ROLES,
        )
    )
    flags, env = streamlit_options(settings, "http://10.1.2.3:8501")
    path = tmp_path / SECRETS_FILE
    assert flags == [
        "--client.showErrorDetails",
        "none",
        *THEME_FLAGS,
        "--secrets.files",
        str(path),
    ]
    assert not any(secret in f for f in flags) and secret not in "".join(env.values())
    assert env["ECOSENSE_DASHBOARD_SSO"] == "1" and env["ECOSENSE_OIDC_ROLES"] == ROLES
    assert path.stat().st_mode & 0o777 == 0o600
    auth = tomllib.loads(path.read_text())["auth"]
    assert auth["client_secret"] == secret and auth["client_id"] == "ecosense"
    assert auth["redirect_uri"] == "http://10.1.2.3:8501/oauth2callback"
    assert auth["server_metadata_url"] == (
        "https://idp.example/realms/eco/.well-known/openid-configuration"
    )
    cookie = auth["cookie_secret"]
    assert len(cookie) >= 32
    kept = tmp_path / "dashboard_cookie_secret"
    assert kept.stat().st_mode & 0o777 == 0o600
    path.chmod(0o644)  # rewritten at each start, private again, the cookie secret kept
    write_secrets(settings, "http://10.1.2.3:8501")
    assert path.stat().st_mode & 0o777 == 0o600
    assert tomllib.loads(path.read_text())["auth"]["cookie_secret"] == cookie


def test_the_sign_in_address_is_the_browsers() -> None:
    """Found trying issue 13 as a new user: Streamlit gives no address for loopback
    connections, so every dashboard sign-in was throttled under one key ``address:unknown``
    — twenty wrong passwords from anyone locked everyone out."""
    from dashboards.session import client_address

    assert client_address(None, None, "") == "127.0.0.1"
    assert client_address("203.0.113.9", None, "") == "203.0.113.9"
    # X-Forwarded-For is believed from trusted proxies only; the last hop is the client
    assert client_address(None, "198.51.100.7", "") == "127.0.0.1"
    assert client_address(None, "1.1.1.1, 198.51.100.7", "127.0.0.1") == "198.51.100.7"
    assert client_address("10.0.0.5", "198.51.100.7", "10.0.0.0/8") == "198.51.100.7"
    assert client_address("203.0.113.9", "198.51.100.7", "10.0.0.0/8") == "203.0.113.9"
