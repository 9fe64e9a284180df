"""Configuration: environment variables (``ECOSENSE_*``), optionally a TOML file setting the same.

Precedence: environment, then the TOML file named by ``ECOSENSE_CONFIG`` (or ``ecosense.toml``
in the working directory, else the user's ``$XDG_CONFIG_HOME/ecosense/ecosense.toml``), then
defaults. TOML keys are the variable names without the ``ECOSENSE_`` prefix, in lower case
(``data_dir = "/var/lib/ecosense"``).

Every setting ``ECOSENSE_X`` may come from a file instead: ``ECOSENSE_X_FILE`` names it, and
its content (trailing newline stripped) is the value — e.g. ``ECOSENSE_DATABASE_URL_FILE=
/run/secrets/database_url`` with compose or Kubernetes secrets (:func:`from_environment`).
Both set is an error naming both.

The data directory defaults to the user's ``$XDG_DATA_HOME/ecosense`` (``~/.local/share/
ecosense``): the same from every folder, so that a command run anywhere finds the platform
``ecosense up`` runs (:func:`default_data_dir`).
"""

from __future__ import annotations

import os
import secrets
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from api.ratelimit import DEFAULT_AUTH_RATE, DEFAULT_PUBLIC_RATE, parse_rate
from ecosense.errors import ConfigError
from ingest.limits import parse_networks

#: the rate settings and their defaults
_RATES = {"public_rate": DEFAULT_PUBLIC_RATE, "auth_rate": DEFAULT_AUTH_RATE}


@dataclass(frozen=True)
class Settings:
    """EcoSense's settings (see the README's configuration table)."""

    data_dir: Path
    database_url: str | None
    dask_scheduler: str | None
    timezone: str
    mqtt_url: str | None
    influx_url: str | None
    influx_token: str | None
    influx_org: str | None
    influx_bucket: str | None
    admin_token: str | None
    max_future_seconds: float
    tile_url: str | None
    jobs_interval_seconds: float = 300.0
    alert_webhook: str | None = None
    quarantine_codes: int = 50
    max_past_days: float = 30.0
    #: how long a user's bearer token lives, seconds (``ECOSENSE_TOKEN_TTL_SECONDS``)
    token_ttl_seconds: float = 28800.0
    #: listeners under abuse (README "Listeners under abuse")
    max_connections_per_address: int = 64
    max_connections: int = 4096
    auth_timeout_seconds: float = 30.0
    header_timeout_seconds: float = 10.0
    body_timeout_seconds: float = 30.0
    trusted_proxies: tuple[str, ...] = ()
    #: request rate limits per client address (README "Rate limits"), ``limits`` notation
    public_rate: str = DEFAULT_PUBLIC_RATE
    auth_rate: str = DEFAULT_AUTH_RATE
    rate_exempt: tuple[str, ...] = ()
    #: per-component database URLs (README "Least privilege in the database"); each
    #: defaults to ``database_url`` (the owner's, which runs the migrations)
    gateway_database_url: str | None = None
    jobs_database_url: str | None = None
    reader_database_url: str | None = None
    #: HTTPS for the HTTP API: a PEM certificate (chain) and its private key
    tls_cert: Path | None = None
    tls_key: Path | None = None
    #: the dashboard's optional single sign-on (README "Dashboard sign-in and single sign-on")
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: str | None = None
    oidc_redirect_uri: str | None = None
    oidc_cookie_secret: str | None = None
    oidc_role_claim: str = "groups"
    oidc_roles: str = ""
    #: the gateway's address as browsers reach it, for the dashboard's open-data links
    #: (``/``: the dashboard's own origin, behind a proxy sending ``/api/`` to the gateways)
    api_url: str | None = None

    @property
    def oidc(self) -> bool:
        """Whether single sign-on is configured (``ECOSENSE_OIDC_ISSUER``)."""
        return self.oidc_issuer is not None

    @property
    def oidc_metadata_url(self) -> str | None:
        """The identity provider's discovery document: ``ECOSENSE_OIDC_ISSUER`` itself when it
        names one, else ``<issuer>/.well-known/openid-configuration``."""
        if self.oidc_issuer is None:
            return None
        if self.oidc_issuer.endswith("/.well-known/openid-configuration"):
            return self.oidc_issuer
        return self.oidc_issuer.rstrip("/") + "/.well-known/openid-configuration"

    @property
    def tz(self) -> ZoneInfo:
        """The bureau's timezone."""
        return ZoneInfo(self.timezone)

    @property
    def max_future(self) -> timedelta:
        """How far ahead of the server clock a reading's time may be."""
        return timedelta(seconds=self.max_future_seconds)

    @property
    def max_past(self) -> timedelta:
        """How far behind the server clock a device may write (operators and imports: any)."""
        return timedelta(days=self.max_past_days)


_KEYS = (
    "data_dir",
    "database_url",
    "dask_scheduler",
    "timezone",
    "mqtt_url",
    "influx_url",
    "influx_token",
    "influx_org",
    "influx_bucket",
    "admin_token",
    "max_future_seconds",
    "tile_url",
    "jobs_interval_seconds",
    "alert_webhook",
    "quarantine_codes",
    "max_past_days",
    "token_ttl_seconds",
    "max_connections_per_address",
    "max_connections",
    "auth_timeout_seconds",
    "header_timeout_seconds",
    "body_timeout_seconds",
    "trusted_proxies",
    "public_rate",
    "auth_rate",
    "rate_exempt",
    "gateway_database_url",
    "jobs_database_url",
    "reader_database_url",
    "tls_cert",
    "tls_key",
    "oidc_issuer",
    "oidc_client_id",
    "oidc_client_secret",
    "oidc_redirect_uri",
    "oidc_cookie_secret",
    "oidc_role_claim",
    "oidc_roles",
    "api_url",
)


def default_data_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The data directory when none is configured: ``$XDG_DATA_HOME/ecosense``, else
    ``~/.local/share/ecosense`` (``./.ecosense`` only when there is no home directory)."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_DATA_HOME") or ""
    if base and Path(base).is_absolute():
        return Path(base) / "ecosense"
    home = env.get("HOME") or ""
    if not home:
        try:
            home = str(Path.home())
        except (RuntimeError, KeyError):
            return Path(".ecosense").absolute()
    return Path(home) / ".local" / "share" / "ecosense"


def config_file(environ: Mapping[str, str] | None = None) -> Path | None:
    """The TOML file in force: ``ECOSENSE_CONFIG``, else ``./ecosense.toml``, else
    ``$XDG_CONFIG_HOME/ecosense/ecosense.toml`` (``~/.config/…``); None when none exists."""
    env = os.environ if environ is None else environ
    named = env.get("ECOSENSE_CONFIG")
    if named:
        return Path(named)
    here = Path("ecosense.toml")
    if here.exists():
        return here
    base = env.get("XDG_CONFIG_HOME") or ""
    if not (base and Path(base).is_absolute()):
        home = env.get("HOME") or ""
        if not home:
            return None
        base = str(Path(home) / ".config")
    user = Path(base) / "ecosense" / "ecosense.toml"
    return user if user.exists() else None


def from_environment(env: Mapping[str, str], name: str) -> str | None:
    """The value of the environment variable ``name`` (``ECOSENSE_X``), else the content of the
    file named by ``name + "_FILE"`` with its trailing newline stripped; ``None`` when neither
    is set (an empty variable counts as unset).

    Raises
    ------
    ConfigError
        when both are set, or the file cannot be read or is empty.
    """
    value = env.get(name) or None
    path = env.get(name + "_FILE") or None
    if path is None:
        return value
    if value is not None:
        raise ConfigError(f"{name} and {name}_FILE are both set: set one of them")
    try:
        content = Path(path).read_text("utf-8").rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(f"{name}_FILE: cannot read {path}: {reason}") from exc
    if not content:
        raise ConfigError(f"{name}_FILE: {path} is empty")
    return content


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from the environment (default: ``os.environ``) and the optional TOML file."""
    env = os.environ if environ is None else environ
    file_values: dict[str, Any] = {}
    config_path = env.get("ECOSENSE_CONFIG")
    path = config_file(env) or Path("ecosense.toml")
    if config_path and not path.exists():
        raise ConfigError(f"ECOSENSE_CONFIG names {path}, which does not exist")
    if path.exists():
        try:
            file_values = tomllib.loads(path.read_text("utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{path}: {exc}") from exc
        unknown = set(file_values) - set(_KEYS)
        if unknown:
            raise ConfigError(f"{path}: unknown settings {', '.join(sorted(unknown))}")

    def get(key: str) -> str | None:
        value = from_environment(env, "ECOSENSE_" + key.upper())
        if value is not None:
            return value
        fv = file_values.get(key)
        return None if fv is None else str(fv)

    timezone = get("timezone") or "Asia/Shanghai"
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"unknown timezone {timezone!r}") from exc
    try:
        max_future = float(get("max_future_seconds") or 3600)
    except ValueError as exc:
        raise ConfigError("ECOSENSE_MAX_FUTURE_SECONDS must be a number of seconds") from exc
    try:
        jobs_interval = float(get("jobs_interval_seconds") or 300)
    except ValueError as exc:
        raise ConfigError("ECOSENSE_JOBS_INTERVAL_SECONDS must be a number of seconds") from exc
    try:
        max_past_days = float(get("max_past_days") or 30)
    except ValueError as exc:
        raise ConfigError("ECOSENSE_MAX_PAST_DAYS must be a number of days") from exc
    if not 0 < max_past_days < 36_500:
        raise ConfigError("ECOSENSE_MAX_PAST_DAYS must be more than 0 and under 36500 days")
    if jobs_interval < 0:
        raise ConfigError("ECOSENSE_JOBS_INTERVAL_SECONDS must be ≥ 0 (0: no scheduler)")
    try:
        quarantine_codes = int(get("quarantine_codes") or 50)
    except ValueError as exc:
        raise ConfigError("ECOSENSE_QUARANTINE_CODES must be a whole number of codes") from exc
    if quarantine_codes < 0:
        raise ConfigError("ECOSENSE_QUARANTINE_CODES must be ≥ 0 (0: hold none)")
    try:
        token_ttl = float(get("token_ttl_seconds") or 28800)
    except ValueError as exc:
        raise ConfigError("ECOSENSE_TOKEN_TTL_SECONDS must be a number of seconds") from exc
    if not 0 < token_ttl < 10**8:
        raise ConfigError("ECOSENSE_TOKEN_TTL_SECONDS must be > 0")
    per_address, total = (
        _whole(get, "max_connections_per_address", 64, 1),
        _whole(get, "max_connections", 4096, 1),
    )
    auth_timeout, header_timeout, body_timeout = (
        _seconds(get, "auth_timeout_seconds", 30.0),
        _seconds(get, "header_timeout_seconds", 10.0),
        _seconds(get, "body_timeout_seconds", 30.0),
    )
    proxies = get("trusted_proxies") or ""
    try:
        parse_networks(proxies)
    except ValueError as exc:
        raise ConfigError(f"ECOSENSE_TRUSTED_PROXIES: {exc}") from exc
    rates = {key: get(key) or default for key, default in _RATES.items()}
    for key, rate in rates.items():
        try:
            parse_rate(rate)
        except ValueError as exc:
            raise ConfigError(f"ECOSENSE_{key.upper()}: {exc}") from exc
    exempt = get("rate_exempt") or ""
    try:
        parse_networks(exempt)
    except ValueError as exc:
        raise ConfigError(f"ECOSENSE_RATE_EXEMPT: {exc}") from exc
    tls_cert, tls_key = get("tls_cert"), get("tls_key")
    if bool(tls_cert) != bool(tls_key):
        raise ConfigError("ECOSENSE_TLS_CERT and ECOSENSE_TLS_KEY go together: set both or none")
    oidc = _oidc(get)
    return Settings(
        data_dir=Path(get("data_dir") or default_data_dir(env)).expanduser().absolute(),
        database_url=get("database_url"),
        dask_scheduler=get("dask_scheduler"),
        timezone=timezone,
        mqtt_url=get("mqtt_url"),
        influx_url=get("influx_url"),
        influx_token=get("influx_token"),
        influx_org=get("influx_org"),
        influx_bucket=get("influx_bucket"),
        admin_token=get("admin_token"),
        max_future_seconds=max_future,
        tile_url=get("tile_url"),
        jobs_interval_seconds=jobs_interval,
        alert_webhook=get("alert_webhook"),
        quarantine_codes=quarantine_codes,
        max_past_days=max_past_days,
        token_ttl_seconds=token_ttl,
        max_connections_per_address=per_address,
        max_connections=total,
        auth_timeout_seconds=auth_timeout,
        header_timeout_seconds=header_timeout,
        body_timeout_seconds=body_timeout,
        trusted_proxies=tuple(p.strip() for p in proxies.split(",") if p.strip()),
        public_rate=rates["public_rate"],
        auth_rate=rates["auth_rate"],
        rate_exempt=tuple(p.strip() for p in exempt.split(",") if p.strip()),
        gateway_database_url=get("gateway_database_url"),
        jobs_database_url=get("jobs_database_url"),
        reader_database_url=get("reader_database_url"),
        tls_cert=Path(tls_cert).absolute() if tls_cert else None,
        tls_key=Path(tls_key).absolute() if tls_key else None,
        api_url=get("api_url"),
        **oidc,
    )


def _oidc(get: Callable[[str], str | None]) -> dict[str, Any]:
    """The ``ECOSENSE_OIDC_*`` settings, checked: an issuer needs a client id and secret; a
    redirect URI ends with ``/oauth2callback`` (Streamlit's callback); roles map to known
    roles."""
    from access.sso import parse_role_map

    found: dict[str, Any] = {
        key: get(key)
        for key in (
            "oidc_issuer",
            "oidc_client_id",
            "oidc_client_secret",
            "oidc_redirect_uri",
            "oidc_cookie_secret",
        )
    }
    found["oidc_role_claim"] = get("oidc_role_claim") or "groups"
    found["oidc_roles"] = get("oidc_roles") or ""
    if found["oidc_issuer"] is None:
        if found["oidc_client_id"] or found["oidc_roles"]:
            raise ConfigError("ECOSENSE_OIDC_ISSUER is needed for single sign-on")
        return found
    if not found["oidc_issuer"].startswith(("https://", "http://")):
        raise ConfigError("ECOSENSE_OIDC_ISSUER must be an http(s) URL")
    for key in ("oidc_client_id", "oidc_client_secret"):
        if not found[key]:
            raise ConfigError(f"ECOSENSE_{key.upper()} is needed with ECOSENSE_OIDC_ISSUER")
    redirect = found["oidc_redirect_uri"]
    if redirect is not None and not redirect.endswith("/oauth2callback"):
        raise ConfigError(
            "ECOSENSE_OIDC_REDIRECT_URI must end with /oauth2callback (the dashboard's address)"
        )
    try:
        parse_role_map(found["oidc_roles"])
    except ValueError as exc:
        raise ConfigError(f"ECOSENSE_OIDC_ROLES: {exc}") from exc
    return found


def _whole(get: Callable[[str], str | None], key: str, default: int, least: int) -> int:
    """A whole-number setting of at least ``least``."""
    try:
        value = int(get(key) or default)
    except ValueError as exc:
        raise ConfigError(f"ECOSENSE_{key.upper()} must be a whole number") from exc
    if value < least:
        raise ConfigError(f"ECOSENSE_{key.upper()} must be ≥ {least}")
    return value


def _seconds(get: Callable[[str], str | None], key: str, default: float) -> float:
    """A positive number of seconds."""
    try:
        value = float(get(key) or default)
    except ValueError as exc:
        raise ConfigError(f"ECOSENSE_{key.upper()} must be a number of seconds") from exc
    if not 0 < value < 1e6:
        raise ConfigError(f"ECOSENSE_{key.upper()} must be more than 0 seconds")
    return value


def admin_token(settings: Settings) -> str:
    """The operator token: ``ECOSENSE_ADMIN_TOKEN``, else the one kept in the data directory
    (``admin_token``, mode 0600), generated on first use."""
    if settings.admin_token:
        return settings.admin_token
    path = settings.data_dir / "admin_token"
    if path.exists():
        return path.read_text("utf-8").strip()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    token = "es_admin_" + secrets.token_urlsafe(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it meanwhile
        return path.read_text("utf-8").strip()
    try:
        os.write(fd, (token + "\n").encode())
    finally:
        os.close(fd)
    return token


def data_dir_origin(environ: Mapping[str, str] | None = None) -> str:
    """Where the data directory's setting comes from: ``ECOSENSE_DATA_DIR``, the TOML file
    (its path), or ``default``."""
    env = os.environ if environ is None else environ
    if env.get("ECOSENSE_DATA_DIR"):
        return "ECOSENSE_DATA_DIR"
    if env.get("ECOSENSE_DATA_DIR_FILE"):
        return "ECOSENSE_DATA_DIR_FILE"
    path = config_file(env)
    if path is not None and path.exists():
        try:
            if "data_dir" in tomllib.loads(path.read_text("utf-8")):
                return str(path.absolute())
        except (OSError, tomllib.TOMLDecodeError):
            pass
    return "default"
