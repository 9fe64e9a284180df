"""``ecosense up --roles``: what is accepted, and the one-line refusals (issue 15, item 1)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ecosense.cli import main
from ecosense.errors import EcosenseError
from ecosense.runner import ROLES, UpOptions, parse_roles


def test_roles_are_any_non_empty_combination_in_a_fixed_order() -> None:
    assert UpOptions().roles == ROLES == ("gateway", "jobs", "dashboard")
    assert parse_roles("gateway,jobs,dashboard") == ROLES
    assert parse_roles("dashboard, jobs") == ("jobs", "dashboard")
    assert parse_roles("jobs,jobs") == ("jobs",)
    # --no-dashboard takes the dashboard out of what runs
    assert UpOptions(dashboard=False).running == ("gateway", "jobs")
    assert UpOptions(roles=("jobs",), dashboard=False).running == ("jobs",)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("gateway,sheduler", "--roles: unknown role 'sheduler' (roles: gateway, jobs, dashboard)"),
        ("", "--roles: name at least one role"),
        (" , ", "--roles: name at least one role"),
    ],
)
def test_unknown_or_no_role_is_refused(text: str, reason: str) -> None:
    with pytest.raises(EcosenseError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        parse_roles(text)


def test_nothing_to_run_and_a_demo_without_gateway_are_refused() -> None:
    with pytest.raises(EcosenseError, match="--no-dashboard leaves --roles dashboard nothing"):
        UpOptions(roles=("dashboard",), dashboard=False)
    with pytest.raises(EcosenseError, match="--demo needs the gateway role"):
        UpOptions(roles=("jobs", "dashboard"), demo=True)
    assert UpOptions(roles=("gateway",), demo=True).running == ("gateway",)


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["--roles", "gateway,bogus"], "ecosense: error: --roles: unknown role 'bogus'"),
        (["--roles", "jobs", "--demo"], "ecosense: error: --demo needs the gateway role"),
    ],
)
def test_the_command_refuses_in_one_line_before_starting_anything(
    args: list[str],
    reason: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    data_dir = tmp_path / "data"
    monkeypatch.setenv("ECOSENSE_DATA_DIR", str(data_dir))
    monkeypatch.delenv("ECOSENSE_DATABASE_URL", raising=False)
    assert main(["up", *args]) == 1
    err = capsys.readouterr().err
    assert err.startswith(reason) and err.count("\n") == 1, err
    assert not data_dir.exists()  # nothing started


def test_the_dashboard_learns_the_gateways_address_unless_one_is_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The open-data page links downloads to the gateway: ``ecosense up`` passes the address
    of the gateway it runs as ``ECOSENSE_API_URL``; an address already set (a public one behind
    a proxy) is kept; a dashboard without a gateway gets none."""
    import subprocess

    from ecosense import runner
    from ecosense.config import load_settings

    seen: list[dict[str, str]] = []

    def popen(cmd: list[str], env: dict[str, str], **_: object) -> None:
        seen.append(env)

    monkeypatch.setattr(subprocess, "Popen", popen)
    monkeypatch.delenv("ECOSENSE_API_URL", raising=False)
    settings = load_settings({"ECOSENSE_DATA_DIR": str(tmp_path)})
    runner.start_dashboard(settings, "postgresql:///x", "127.0.0.1", 8501, "http://127.0.0.1:8080")
    runner.start_dashboard(settings, "postgresql:///x", "127.0.0.1", 8501)
    monkeypatch.setenv("ECOSENSE_API_URL", "https://data.example.gov.cn")
    runner.start_dashboard(settings, "postgresql:///x", "127.0.0.1", 8501, "http://127.0.0.1:8080")
    # a setting (environment, its file or the TOML file) wins over the gateway's address too
    monkeypatch.delenv("ECOSENSE_API_URL")
    proxied = load_settings({"ECOSENSE_DATA_DIR": str(tmp_path), "ECOSENSE_API_URL": "/"})
    runner.start_dashboard(proxied, "postgresql:///x", "127.0.0.1", 8501, "http://127.0.0.1:8080")
    assert [env.get("ECOSENSE_API_URL") for env in seen] == [
        "http://127.0.0.1:8080",
        None,
        "https://data.example.gov.cn",
        "/",
    ]


def test_the_api_url_behind_a_proxy_is_the_dashboards_own_origin() -> None:
    """``ECOSENSE_API_URL=/`` (docker/compose.yaml): root-relative links, sent to the gateways
    by the proxy; unset or blank: no links; an address loses its trailing slash."""
    from dashboards.settings import api_url

    assert api_url("/") == "" and api_url(" / ") == ""
    assert api_url(None) is None and api_url("  ") is None
    assert api_url("https://data.example.gov.cn/") == "https://data.example.gov.cn"
