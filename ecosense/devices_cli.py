"""``ecosense devices list | revoke ID | rotate ID`` and ``ecosense admin rotate-token``.

- ``devices list``: one line per device, tab-separated: id, station, credential (``token``, or
  ``token+hj212 MN=<mn>``), simulated, state (``active`` / ``revoked``), created, rotated and
  revoked times (UTC, ``-`` when never). Never a secret. Audited as ``device.list``.
- ``devices revoke ID``: its API token and HJ 212 password stop working at once in every
  running gateway, and its HJ 212 connections are closed. Audited ``device.revoke``.
- ``devices rotate ID [--password-stdin]``: a new API token, printed on the last line (the old
  one stops working at once); with ``--password-stdin`` also a new HJ 212 password, read from
  one line of standard input. A revoked device becomes active again (an HJ 212 one only with
  a new password). Audited ``device.rotate``.
- ``admin rotate-token``: a new break-glass admin token, printed on the last line, in force at
  once in every running process; written to the data directory's file when that is where it
  lives. Audited ``token.rotate``.

Device credentials are graded ``restricted``: these commands are for the server's operators
(whoever runs them is the audit's actor ``cli:<login>``).
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from typing import Any

from ecosense.config import Settings


def add_device_parsers(dev_sub: Any) -> None:
    """Add ``list``, ``revoke`` and ``rotate`` to the ``devices`` subcommands."""
    dev_sub.add_parser("list", help="every device: credential kind, state, times (no secret)")
    revoke = dev_sub.add_parser(
        "revoke", help="revoke a device's API token and HJ 212 password, at once"
    )
    revoke.add_argument("device_id")
    rotate = dev_sub.add_parser(
        "rotate", help="a new API token for a device (printed last); the old one stops at once"
    )
    rotate.add_argument("device_id")
    rotate.add_argument(
        "--password-stdin",
        action="store_true",
        help="also a new HJ 212 password, read from one line of standard input",
    )


def add_admin_parser(sub: Any) -> None:
    """Add ``admin rotate-token``."""
    admin = sub.add_parser("admin", help="the break-glass admin token")
    a_sub = admin.add_subparsers(dest="admin_command", required=True, metavar="ACTION")
    a_sub.add_parser(
        "rotate-token",
        help="a new admin token (printed last), in force at once without a restart",
    )


def _shown(t: datetime | None, settings: Settings) -> str:
    """A time in the bureau's time zone, ISO 8601 with its offset; ``-`` for none."""
    return "-" if t is None else t.astimezone(settings.tz).isoformat(timespec="seconds")


def run(settings: Settings, args: argparse.Namespace) -> int:
    """Run ``devices list|revoke|rotate`` or ``admin rotate-token``."""
    from ecosense import credentials
    from ecosense.cli import _audit, _open
    from ecosense.users_cli import _read_password

    if args.command == "admin":
        with _open(settings) as opened:
            token, in_file = credentials.rotate(settings, opened.store)
            _audit(opened.store, "token.rotate", "admin-token", details={"file": in_file})
        where = credentials.admin_token_source(settings)
        if in_file:
            print(f"admin token rotated; the old one is refused from now on; saved in {where}")
        else:
            print(
                "admin token rotated; the old one is refused from now on. Put the new one in"
                " ECOSENSE_ADMIN_TOKEN before the next start (the old one is refused there too)",
                file=sys.stderr,
            )
            print("admin token rotated; the new token:")
        print(token)
        return 0
    command = args.devices_command
    with _open(settings) as opened:
        store = opened.store
        if command == "list":
            records = store.list_devices()
            _audit(store, "device.list", "device-credentials", details={"devices": len(records)})
            print("id\tstation\tcredential\tsimulated\tstate\tcreated\trotated\trevoked")
            for d in records:
                kind = d.credential if d.mn is None else f"{d.credential} MN={d.mn}"
                print(
                    f"{d.id}\t{d.station}\t{kind}\t{'yes' if d.simulated else 'no'}\t{d.state}"
                    f"\t{_shown(d.created_at, settings)}\t{_shown(d.rotated_at, settings)}"
                    f"\t{_shown(d.revoked_at, settings)}"
                )
            return 0
        if command == "revoke":
            record = store.revoke_device(args.device_id)
            _audit(
                store,
                "device.revoke",
                f"station:{record.station}",
                details={"device": record.id, "hj212": record.mn is not None},
            )
            what = "API token and HJ 212 password are" if record.mn else "API token is"
            print(f"device {record.id} revoked: its {what} refused")
            return 0
        password = _read_password() if args.password_stdin else None
        record, token = store.rotate_device(args.device_id, password)
        _audit(
            store,
            "device.rotate",
            f"station:{record.station}",
            details={"device": record.id, "hj212_password": password is not None},
        )
    what = "API token and HJ 212 password" if password is not None else "API token"
    print(f"device {record.id}: new {what}; the old ones are refused from now on; its API token:")
    print(token)
    return 0
