"""The policy of issue 13, "Who may see and do what": one decision, :func:`access.authorize`.

CONTRACT.md: "anonymous callers read ``public`` only, ``viewer`` up to internal,
``analyst``/``reviewer``/``operator`` up to sensitive, ``admin`` everything — the same rule for
every route, page and download"; issue 13: roles "each including the one before"; devices
read and write their own station.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

import access
from access import (
    ANONYMOUS,
    BREAK_GLASS,
    DATASET_GRADES,
    STATION_KIND_GRADES,
    Action,
    Dataset,
    Grade,
    Role,
    authorize,
)
from access.passwords import generate_password, hash_password, needs_rehash, verify_password
from ecosense.config import load_settings
from ecosense.errors import ConfigError

PUBLIC, INTERNAL, SENSITIVE, RESTRICTED = Grade
VIEWER, ANALYST, REVIEWER, OPERATOR, ADMIN = Role

#: the highest grade each caller reads (CONTRACT.md)
CEILING = {
    None: PUBLIC,  # anonymous
    VIEWER: INTERNAL,
    ANALYST: SENSITIVE,
    REVIEWER: SENSITIVE,
    OPERATOR: SENSITIVE,
    ADMIN: RESTRICTED,
}
#: the least role each action needs (issue 13, "What to build" 1); None: anyone in grade
LEAST = {
    Action.READ: None,
    Action.EXPORT: ANALYST,
    Action.WRITE: OPERATOR,
    Action.REVIEW: REVIEWER,
    Action.OPERATE: OPERATOR,
    Action.ADMINISTER: ADMIN,
}


def expected(role: Role | None, action: Action, grade: Grade) -> bool:
    """The table, written out independently of the implementation."""
    if grade > CEILING[role]:
        return False
    least = LEAST[action]
    if action is Action.EXPORT and grade is PUBLIC:
        least = None  # open data: exporting public data is reading it
    return least is None or (role is not None and role >= least)


CALLERS = [(None, ANONYMOUS)] + [(r, access.user(f"u-{r.label}", r)) for r in Role]


@pytest.mark.parametrize(
    ("role", "principal", "action", "grade"),
    [(r, p, a, g) for (r, p), a, g in itertools.product(CALLERS, Action, Grade)],
    ids=lambda v: v.label if isinstance(v, Role | Grade) else str(v),
)
def test_role_grade_action_table(
    role: Role | None, principal: access.Principal, action: Action, grade: Grade
) -> None:
    decision = authorize(principal, action, Dataset("d", grade))
    assert decision.allowed is expected(role, action, grade)
    if decision.allowed:
        assert decision.status == 200
    else:
        # 401 when signing in could help (anonymous), 403 for someone already known
        assert decision.status == (401 if role is None else 403)
        assert decision.reason


def test_each_role_includes_the_one_before() -> None:
    for action, grade in itertools.product(Action, Grade):
        allowed = [
            authorize(access.user("u", r), action, Dataset("d", grade)).allowed for r in Role
        ]
        assert allowed == sorted(allowed), (action, grade)  # once allowed, allowed above


def test_the_break_glass_token_is_an_admin() -> None:
    for action, grade in itertools.product(Action, Grade):
        assert authorize(BREAK_GLASS, action, Dataset("d", grade, "S1"))
    assert BREAK_GLASS.actor == "admin" and access.ceiling(BREAK_GLASS) is RESTRICTED


@pytest.mark.parametrize("grade", list(Grade))
def test_a_device_reads_and_writes_its_own_station_only(grade: Grade) -> None:
    dev = access.device("d1", "S1")
    assert dev.actor == "device:d1"
    for action in Action:
        own = authorize(dev, action, Dataset("station S1", grade, "S1"))
        assert own.allowed is (action in (Action.READ, Action.WRITE))
        other = authorize(dev, action, Dataset("station S2", grade, "S2"))
        assert not other and other.status == 403 and "S2" in other.reason
        shared = authorize(dev, action, Dataset("stations", grade))
        assert shared.allowed is (action is Action.READ and grade is PUBLIC)


def test_default_grades_per_station_kind() -> None:
    """Issue 13: "ambient air, surface-water and radiation stations public, as their real-time
    publication is required"; a CEMS plant's readings are no longer public."""
    assert set(STATION_KIND_GRADES) == {
        "air", "water", "wastewater", "soil", "radiation", "cems", "noise", "met",
    }  # fmt: skip
    for kind in ("air", "water", "radiation", "noise", "met"):
        assert access.station_grade(kind) is PUBLIC
    for kind in ("cems", "wastewater", "soil"):
        assert access.station_grade(kind) is SENSITIVE
    assert all(reason for _, reason in STATION_KIND_GRADES.values())
    assert access.station_grade("cems", PUBLIC) is PUBLIC  # an override wins
    assert access.station_grade("unheard-of") is RESTRICTED  # fail closed


def test_default_grades_per_dataset() -> None:
    """Issue 13: facility carbon data sensitive; credentials and the audit restricted;
    alerts internal."""
    grade = {name: g for name, (g, _) in DATASET_GRADES.items()}
    assert grade["alerts"] is INTERNAL
    assert grade["facility-activity"] is SENSITIVE and grade["facility-emissions"] is SENSITIVE
    assert grade["device-credentials"] is RESTRICTED and grade["audit"] is RESTRICTED
    assert grade["users"] is RESTRICTED and grade["stations"] is PUBLIC
    assert grade["layers"] is PUBLIC and grade["zonal-statistics"] is PUBLIC  # the one map
    assert all(reason for _, reason in DATASET_GRADES.values())
    with pytest.raises(KeyError):
        access.dataset("nonexistent")


def test_names_parse_both_ways() -> None:
    for role in Role:
        assert Role.parse(role.label) is role and Role.parse(role.label.upper()) is role
    for grade in Grade:
        assert Grade.parse(f" {grade.label} ") is grade
    with pytest.raises(ValueError, match="unknown role"):
        Role.parse("root")
    with pytest.raises(ValueError, match="unknown grade"):
        Grade.parse("secret")


def test_passwords_are_argon2id_salted() -> None:
    one, two = hash_password("123456"), hash_password("123456")
    assert one.startswith("$argon2id$") and one != two  # salted
    assert verify_password(one, "123456") and verify_password(two, "123456")
    assert not verify_password(one, "1234567") and not verify_password("garbage", "123456")
    assert not needs_rehash(one)
    assert len(generate_password()) >= 20 and generate_password() != generate_password()


def test_token_lifetime_setting(tmp_path: Path) -> None:
    """``ECOSENSE_TOKEN_TTL_SECONDS``: how long a user's bearer token lives (default 8 h)."""
    base = {"ECOSENSE_DATA_DIR": str(tmp_path)}
    assert load_settings(base).token_ttl_seconds == 8 * 3600
    assert load_settings(base | {"ECOSENSE_TOKEN_TTL_SECONDS": "60"}).token_ttl_seconds == 60
    for bad in ("soon", "0", "-5"):
        with pytest.raises(ConfigError, match="TOKEN_TTL"):
            load_settings(base | {"ECOSENSE_TOKEN_TTL_SECONDS": bad})
