"""``ecosense users …`` and ``ecosense classify station ID --class GRADE``.

``users add NAME --role ROLE [--password-stdin]`` reads one line from standard input (without
its newline) as the password, or prints a generated one on the last line; ``users list``;
``users role NAME ROLE``; ``users disable NAME`` (its tokens stop working at once);
``users enable NAME``; ``users password NAME [--password-stdin]`` (its tokens stop working).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from access import Grade, Role
from ecosense.config import Settings
from ecosense.errors import EcosenseError

ROLES = [r.label for r in Role]
GRADES = [g.label for g in Grade]


def add_parsers(sub: Any) -> None:
    """Add the ``users`` and ``classify`` commands to the CLI's subparsers."""
    users = sub.add_parser("users", help="user accounts and their roles")
    u_sub = users.add_subparsers(dest="users_command", required=True, metavar="ACTION")
    add = u_sub.add_parser("add", help="create a user; prints a generated password last")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from one line of standard input",
    )
    u_sub.add_parser("list", help="every user: name, role, state")
    role = u_sub.add_parser("role", help="change a user's role")
    role.add_argument("name")
    role.add_argument("role", choices=ROLES)
    disable = u_sub.add_parser("disable", help="disable a user and revoke its tokens")
    disable.add_argument("name")
    enable = u_sub.add_parser("enable", help="let a disabled user sign in again")
    enable.add_argument("name")
    password = u_sub.add_parser(
        "password",
        help="set a new password (revokes the user's tokens); prints a generated one last",
    )
    password.add_argument("name")
    password.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from one line of standard input",
    )

    classify = sub.add_parser("classify", help="set a dataset's grade (数据分级)")
    c_sub = classify.add_subparsers(dest="classify_command", required=True, metavar="WHAT")
    station = c_sub.add_parser("station", help="the grade of one station's readings and series")
    station.add_argument("station_id")
    station.add_argument(
        "--class",
        dest="grade",
        required=True,
        choices=[*GRADES, "default"],
        help="the grade; 'default' returns to the default of the station's kind",
    )


def _read_password() -> str:
    line = sys.stdin.readline()
    password = line[:-1] if line.endswith("\n") else line
    if password.endswith("\r"):
        password = password[:-1]
    if not password:
        raise EcosenseError("--password-stdin: no password on standard input")
    return password


def run(settings: Settings, args: argparse.Namespace) -> int:
    """Run a ``users`` or ``classify`` command."""
    from access.grades import station_grade
    from access.passwords import generate_password, hash_password
    from ecosense.cli import _audit, _open
    from store import users

    if args.command == "classify":
        grade = None if args.grade == "default" else Grade.parse(args.grade)
        with _open(settings) as opened:
            with opened.store.connection() as conn:
                got = users.set_station_grade(conn, args.station_id, grade)
            effective = station_grade(got.kind, got.override)
            _audit(
                opened.store,
                "classify",
                f"station:{got.station}",
                details={"grade": effective.label, "default": got.override is None},
            )
        note = " (the default of its kind)" if got.override is None else ""
        print(f"station {got.station} ({got.kind}): {effective.label}{note}")
        return 0
    command = args.users_command
    if command == "add":
        generated = not args.password_stdin
        password = generate_password() if generated else _read_password()
        digest = hash_password(password)
        with _open(settings) as opened:
            with opened.store.connection() as conn:
                user = users.add_user(conn, args.name, Role.parse(args.role), digest)
            _audit(opened.store, "user.add", f"user:{user.name}", details={"role": user.role.label})
        print(f"user {user.name} added with the role {user.role.label}")
        if generated:
            print("its password:")
            print(password)
        return 0
    if command == "password":
        generated = not args.password_stdin
        password = generate_password() if generated else _read_password()
        digest = hash_password(password)
        with _open(settings) as opened:
            with opened.store.connection() as conn:
                user = users.reset_password(conn, args.name, digest)
            _audit(opened.store, "user.password", f"user:{user.name}")
        state = " (disabled: `ecosense users enable` lets it sign in)" if user.disabled else ""
        print(f"user {user.name} has a new password; its tokens no longer work{state}")
        if generated:
            print("its password:")
            print(password)
        return 0
    with _open(settings) as opened:
        with opened.store.connection() as conn:
            if command == "list":
                for u in users.list_users(conn):
                    state = "disabled" if u.disabled else "active"
                    print(f"{u.name}\t{u.role.label}\t{state}")
                return 0
            if command == "role":
                user = users.set_role(conn, args.name, Role.parse(args.role))
            elif command == "enable":
                user = users.enable(conn, args.name)
            else:
                user = users.disable(conn, args.name)
        if command == "role":
            _audit(
                opened.store, "user.role", f"user:{user.name}", details={"role": user.role.label}
            )
            state = " (disabled: `ecosense users enable` lets it sign in)" if user.disabled else ""
            print(f"user {user.name} now has the role {user.role.label}{state}")
            return 0
        if command == "enable":
            _audit(opened.store, "user.enable", f"user:{user.name}")
            print(f"user {user.name} enabled; it may sign in again")
            return 0
        _audit(opened.store, "user.disable", f"user:{user.name}")
        print(f"user {user.name} disabled; its tokens no longer work")
        return 0
