"""How ``ecosense up`` starts the Streamlit dashboard: its flags, its environment and, for
single sign-on, Streamlit's ``[auth]`` secrets.

Secrets never go on a command line (``ps`` shows those to every user): with
``ECOSENSE_OIDC_ISSUER`` set, :func:`write_secrets` writes ``dashboard-secrets.toml`` in the
data directory (mode 0600, rewritten at each start) and Streamlit is pointed at it with
``--secrets.files``; the client secret and cookie secret are taken out of the child's
environment. The cookie secret (which signs Streamlit's login cookie) is
``ECOSENSE_OIDC_COOKIE_SECRET``, else one generated once and kept in
``dashboard_cookie_secret`` (mode 0600) so sign-ins survive a restart.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from ecosense.config import Settings

SECRETS_FILE = "dashboard-secrets.toml"
COOKIE_SECRET_FILE = "dashboard_cookie_secret"
#: Streamlit's light theme with a text colour dark enough that its faded shades keep WCAG 2 AA
#: contrast (4.5:1, axe-core's ``color-contrast``): captions and sidebar notes are drawn in
#: 60 % of the text colour over the page (white) or the sidebar (about #f0f2f6); Streamlit's
#: default text colour gave 3.8:1 there.
TEXT_COLOUR = "#111111"
#: The accent (selected segment, focus ring, primary buttons): Streamlit's default #ff4b4b drawn
#: as text over its own light tint (the language switch's selected "中文") gave less than 4.5:1;
#: this blue keeps AA contrast over white and over its tint.
PRIMARY_COLOUR = "#1a5fb4"
THEME_FLAGS = (
    "--theme.base",
    "light",
    "--theme.textColor",
    TEXT_COLOUR,
    "--theme.primaryColor",
    PRIMARY_COLOUR,
)


def _private_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by its owner only (mode 0600 from the start)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # an older file of wider mode
        os.write(fd, text.encode("utf-8"))
    finally:
        os.close(fd)


def cookie_secret(settings: Settings) -> str:
    """``ECOSENSE_OIDC_COOKIE_SECRET``, else the one kept in the data directory (made once)."""
    if settings.oidc_cookie_secret:
        return settings.oidc_cookie_secret
    path = settings.data_dir / COOKIE_SECRET_FILE
    if path.exists():
        return path.read_text("utf-8").strip()
    secret = secrets.token_urlsafe(32)
    _private_write(path, secret + "\n")
    return secret


def _toml(value: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's)."""
    return json.dumps(value, ensure_ascii=False)


def write_secrets(settings: Settings, dashboard_url: str) -> Path | None:
    """Write Streamlit's ``[auth]`` secrets for single sign-on (``None``: not configured).
    The redirect URI is ``ECOSENSE_OIDC_REDIRECT_URI``, else ``<dashboard_url>/oauth2callback``;
    the identity provider must list the same one for the client."""
    if not settings.oidc:
        return None
    assert settings.oidc_client_id and settings.oidc_client_secret  # checked by load_settings
    metadata = settings.oidc_metadata_url
    assert metadata is not None
    redirect = settings.oidc_redirect_uri or dashboard_url.rstrip("/") + "/oauth2callback"
    lines = [
        "# written by `ecosense up` at each start from the ECOSENSE_OIDC_* settings",
        "[auth]",
        f"redirect_uri = {_toml(redirect)}",
        f"cookie_secret = {_toml(cookie_secret(settings))}",
        f"client_id = {_toml(settings.oidc_client_id)}",
        f"client_secret = {_toml(settings.oidc_client_secret)}",
        f"server_metadata_url = {_toml(metadata)}",
    ]
    path = settings.data_dir / SECRETS_FILE
    _private_write(path, "\n".join(lines) + "\n")
    return path


def streamlit_options(settings: Settings, dashboard_url: str) -> tuple[list[str], dict[str, str]]:
    """The extra ``streamlit run`` flags (no tracebacks in the browser; the accessible theme,
    :data:`THEME_FLAGS`; the secrets file) and environment (what the dashboard needs to map SSO
    claims) of the dashboard."""
    flags = ["--client.showErrorDetails", "none", *THEME_FLAGS]
    env = {
        "ECOSENSE_TOKEN_TTL_SECONDS": str(settings.token_ttl_seconds),
        "ECOSENSE_DASHBOARD_SSO": "0",
    }
    path = write_secrets(settings, dashboard_url)
    if path is not None:
        flags += ["--secrets.files", str(path)]
        env.update(
            {
                "ECOSENSE_DASHBOARD_SSO": "1",
                "ECOSENSE_OIDC_ROLE_CLAIM": settings.oidc_role_claim,
                "ECOSENSE_OIDC_ROLES": settings.oidc_roles,
            }
        )
    return flags, env


#: settings the dashboard child must not hold in its environment
SECRET_ENV = ("ECOSENSE_OIDC_CLIENT_SECRET", "ECOSENSE_OIDC_COOKIE_SECRET")
