"""``ecosense keys add NAME [--rate N] | list | revoke NAME``: open-data consumers' API keys.

- ``keys add NAME [--rate N]``: a new key for the consumer ``NAME``, printed once on the last
  line (only its SHA-256 is stored); ``N`` requests a minute, per gateway process, default
  600. A consumer sends it as the header ``X-API-Key`` and reads what anonymous callers read
  (grade ``public``), at its own rate instead of the public rate of its address. A name is
  never reused, even after a revocation. Audited ``key.add``.
- ``keys list [--format table|csv|json]``: every key — name, rate (requests a minute),
  state (``active`` / ``revoked``), requests served, requests refused (429), last used,
  created — never the key. Usage is written by the gateways every 10 s and at shutdown.
  Audited ``key.list``.
- ``keys revoke NAME``: refused (401) from its next request on, in every running gateway;
  its usage stays listed. Audited ``key.revoke``.
"""

from __future__ import annotations

import argparse
from typing import Any

from ecosense.config import Settings
from ecosense.errors import EcosenseError


def _rate(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("a whole number of requests a minute") from None
    if not 1 <= value <= 1_000_000_000:
        raise argparse.ArgumentTypeError("1 to 1000000000 requests a minute")
    return value


def add_parsers(sub: Any) -> None:
    """Add the ``keys`` command to the CLI's subparsers."""
    from ecosense import lists_cli
    from store.keys import DEFAULT_RATE

    keys = sub.add_parser("keys", help="API keys of open-data consumers (X-API-Key)")
    k_sub = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    add = k_sub.add_parser("add", help="a new API key for a consumer; prints the key last")
    add.add_argument("name", help="the consumer's name (letters, digits, . _ @ -)")
    add.add_argument(
        "--rate",
        type=_rate,
        default=DEFAULT_RATE,
        metavar="N",
        help=f"requests a minute with this key, per gateway process (default {DEFAULT_RATE})",
    )
    listing = k_sub.add_parser(
        "list", help="every key: name, rate, state, usage, created (never the key)"
    )
    listing.add_argument(
        "--format", choices=lists_cli.FORMATS, default="table", help="table (default), csv or json"
    )
    revoke = k_sub.add_parser("revoke", help="revoke a key: refused from its next request on")
    revoke.add_argument("name")


def run(settings: Settings, args: argparse.Namespace) -> int:
    """Run a ``keys`` command."""
    from ecosense import lists_cli
    from ecosense.cli import _audit, _open
    from store import keys

    command = args.keys_command
    with _open(settings) as opened:
        store = opened.store
        if command == "add":
            with store.connection() as conn:
                record, key = keys.add_key(conn, args.name, args.rate)
            _audit(store, "key.add", f"key:{record.name}", details={"rate": args.rate})
            print(
                f"API key {record.name} added: {record.rate_per_minute} requests a minute;"
                " send it as the header X-API-Key (it is not shown again); the key:"
            )
            print(key)
            return 0
        if command == "list":
            with store.connection() as conn:
                records = keys.list_keys(conn)
            _audit(store, "key.list", "api-keys", details={"keys": len(records)})
            rows = [
                {
                    "name": k.name,
                    "rate_per_minute": k.rate_per_minute,
                    "state": k.state,
                    "requests": k.requests,
                    "refused": k.refused,
                    "last_used": k.last_used_at,
                    "created": k.created_at,
                    "revoked": k.revoked_at,
                }
                for k in records
            ]
            lists_cli.emit(
                rows,
                [
                    "name",
                    "rate_per_minute",
                    "state",
                    "requests",
                    "refused",
                    "last_used",
                    "created",
                    "revoked",
                ],
                args.format,
                settings,
            )
            return 0
        if command == "revoke":
            with store.connection() as conn:
                record = keys.revoke_key(conn, args.name)
            _audit(store, "key.revoke", f"key:{record.name}")
            print(f"API key {record.name} revoked: refused from its next request on")
            return 0
    raise EcosenseError(f"unknown keys action {command}")
