"""The policy: roles, grades, principals, actions and :func:`authorize`, the one decision.

Rule (CONTRACT.md, "Grades"): anonymous callers read ``public`` only, ``viewer`` up to
``internal``, ``analyst``/``reviewer``/``operator`` up to ``sensitive``, ``admin``
everything; a device reads and writes its own station only. Each role includes the one
before it (``viewer < analyst < reviewer < operator < admin``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Final, Literal


class Role(IntEnum):
    """A user's role; each includes every role before it."""

    VIEWER = 1  #: reads internal data
    ANALYST = 2  #: reads sensitive data, exports, runs carbon jobs
    REVIEWER = 3  #: manual review of readings
    OPERATOR = 4  #: devices, HJ 212 commands, alert acknowledgement
    ADMIN = 5  #: users, grades, audit, restricted data

    @classmethod
    def parse(cls, name: str) -> Role:
        """The role named ``name`` (``"viewer"`` … ``"admin"``); ``ValueError`` otherwise."""
        try:
            return cls[name.strip().upper()]
        except KeyError:
            raise ValueError(
                f"unknown role {name!r}: use {', '.join(r.label for r in cls)}"
            ) from None

    @property
    def label(self) -> str:
        """The role's name as written in the CLI and the database (``"viewer"``)."""
        return self.name.lower()


class Grade(IntEnum):
    """A dataset's grade (数据分级), lowest first."""

    PUBLIC = 0  #: 公开
    INTERNAL = 1  #: 内部
    SENSITIVE = 2  #: 敏感
    RESTRICTED = 3  #: 重要

    @classmethod
    def parse(cls, name: str) -> Grade:
        """The grade named ``name`` (``"public"`` … ``"restricted"``); ``ValueError``
        otherwise."""
        try:
            return cls[name.strip().upper()]
        except KeyError:
            raise ValueError(
                f"unknown grade {name!r}: use {', '.join(g.label for g in cls)}"
            ) from None

    @property
    def label(self) -> str:
        """The grade's name as written in the CLI and the database (``"public"``)."""
        return self.name.lower()


class Action(StrEnum):
    """What a principal wants to do to a dataset."""

    READ = "read"  #: see the data (API, dashboard page)
    EXPORT = "export"  #: download it in bulk; non-public data needs an analyst
    WRITE = "write"  #: push readings (a device to its own station; an operator anywhere)
    REVIEW = "review"  #: invalidate or restore readings (reviewer)
    OPERATE = "operate"  #: devices, HJ 212 commands, alert acknowledgement (operator)
    ADMINISTER = "administer"  #: users, grades, audit (admin)


PrincipalKind = Literal["anonymous", "user", "device", "admin"]


@dataclass(frozen=True, slots=True)
class Principal:
    """Who asks: nobody known (``anonymous``; with a ``name``, an open-data consumer's API
    key, still anonymous to the policy), a ``user`` with a ``role``, a ``device`` bound to
    ``station``, or the break-glass ``admin`` token."""

    kind: PrincipalKind
    name: str = ""
    role: Role | None = None
    station: str | None = None

    @property
    def actor(self) -> str:
        """How the audit names this principal: the user's name, ``device:<id>``, ``admin``,
        ``anonymous``, or ``key:<name>`` for an anonymous caller with an API key."""
        if self.kind == "user":
            return self.name
        if self.kind == "device":
            return f"device:{self.name}"
        if self.kind == "anonymous" and self.name:
            return f"key:{self.name}"
        return self.kind

    @property
    def effective_role(self) -> Role | None:
        """The role the policy applies: a user's, ``ADMIN`` for the break-glass token,
        ``None`` for anonymous callers and devices."""
        if self.kind == "admin":
            return Role.ADMIN
        return self.role if self.kind == "user" else None


ANONYMOUS: Final = Principal("anonymous")
BREAK_GLASS: Final = Principal("admin", "admin")


def user(name: str, role: Role) -> Principal:
    """A signed-in user."""
    return Principal("user", name, role)


def device(device_id: str, station: str) -> Principal:
    """A device, bound to its station."""
    return Principal("device", device_id, station=station)


def consumer(key_name: str) -> Principal:
    """An open-data consumer, known by its API key's name: anonymous to the policy (grade
    ``public`` only), named ``key:<name>`` in the audit."""
    return Principal("anonymous", key_name)


@dataclass(frozen=True, slots=True)
class Dataset:
    """What is asked for: a named dataset with its grade; ``station`` when it is one
    station's readings or series (a device may touch its own)."""

    name: str
    grade: Grade
    station: str | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer: ``allowed``, the HTTP ``status`` to give (200, 401 when signing in could
    help, 403 otherwise) and a ``reason`` fit to show the caller."""

    allowed: bool
    status: int
    reason: str

    def __bool__(self) -> bool:
        return self.allowed


#: the highest grade each role reads
_CEILING: Final = {
    Role.VIEWER: Grade.INTERNAL,
    Role.ANALYST: Grade.SENSITIVE,
    Role.REVIEWER: Grade.SENSITIVE,
    Role.OPERATOR: Grade.SENSITIVE,
    Role.ADMIN: Grade.RESTRICTED,
}
#: the least role each action needs (besides the grade); READ needs none
_LEAST_ROLE: Final = {
    Action.EXPORT: Role.ANALYST,
    Action.WRITE: Role.OPERATOR,
    Action.REVIEW: Role.REVIEWER,
    Action.OPERATE: Role.OPERATOR,
    Action.ADMINISTER: Role.ADMIN,
}


def ceiling(principal: Principal) -> Grade | None:
    """The highest grade ``principal`` may read in general (``None``: a device, which reads
    its own station only)."""
    if principal.kind == "device":
        return None
    role = principal.effective_role
    return Grade.PUBLIC if role is None else _CEILING[role]


def _deny(principal: Principal, reason: str) -> Decision:
    return Decision(False, 401 if principal.kind == "anonymous" else 403, reason)


def authorize(principal: Principal, action: Action, dataset: Dataset) -> Decision:
    """May ``principal`` do ``action`` to ``dataset``? The one decision of EcoSense.

    - a device reads and writes its own station's readings, and reads what anyone may read
      that is not another station's (``public`` datasets such as the station list);
    - everyone else reads up to their grade (anonymous ``public``, ``viewer`` ``internal``,
      ``analyst``/``reviewer``/``operator`` ``sensitive``, ``admin`` ``restricted``);
    - ``export`` of ``public`` data is open (it is published anyway), of anything else needs
      an ``analyst``; ``write`` needs an ``operator``, ``review`` a ``reviewer``,
      ``operate`` an ``operator``, ``administer`` an ``admin`` — always within the grade.
    """
    if principal.kind == "device":
        if action in (Action.READ, Action.WRITE) and dataset.station == principal.station:
            return Decision(True, 200, "a device's own station")
        if action is Action.READ and dataset.grade == Grade.PUBLIC and dataset.station is None:
            return Decision(True, 200, "public")
        if dataset.station is None:
            return Decision(False, 403, f"a device token may not {action} {dataset.name}")
        return Decision(
            False,
            403,
            f"device {principal.name} may only {action} station {principal.station}, "
            f"not {dataset.station}",
        )
    top = ceiling(principal)
    assert top is not None
    if dataset.grade > top:
        who = "anonymous callers" if principal.kind == "anonymous" else principal.actor
        return _deny(principal, f"{dataset.name} is {dataset.grade.label}; {who} may not see it")
    least = _LEAST_ROLE.get(action)
    if action is Action.EXPORT and dataset.grade == Grade.PUBLIC:
        least = None
    role = principal.effective_role
    if least is not None and (role is None or role < least):
        return _deny(principal, f"to {action} {dataset.name} needs the role {least.label}")
    return Decision(True, 200, "allowed")
