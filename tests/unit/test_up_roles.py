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
