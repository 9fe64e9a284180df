"""The break-glass admin token, between its seed (``ECOSENSE_ADMIN_TOKEN`` or the data
directory's ``admin_token`` file) and the one in force (kept in the database, so that
``ecosense admin rotate-token`` reaches every running process without a restart).

CONTRACT
--------
- :func:`admin_token_in_force` (``ecosense up``): the seed becomes the token in force on first
  start, and again whenever it is a new token (setting a new ``ECOSENSE_ADMIN_TOKEN`` and
  restarting still rotates it); a seed that was rotated away is refused with a warning naming
  where it comes from, and the token in force stays.
- :func:`rotate` (``ecosense admin rotate-token``): a new random token in force at once in
  every process listening on ``ecosense_credentials``; the old one is refused from then on,
  for good. When the token lives in the data directory its file is replaced (mode 0600);
  when it comes from ``ECOSENSE_ADMIN_TOKEN`` the caller must update that variable.
"""

from __future__ import annotations

import logging
import os
import tempfile

from ecosense.config import Settings, admin_token
from store import devices
from store.postgres import PostgresStore, hash_secret

logger = logging.getLogger(__name__)


def admin_token_source(settings: Settings) -> str:
    """Where the seed of the admin token lives, for messages."""
    if settings.admin_token:
        return "ECOSENSE_ADMIN_TOKEN"
    return str(settings.data_dir / "admin_token")


def admin_token_in_force(
    settings: Settings, store: PostgresStore, checker: PostgresStore | None = None
) -> devices.AdminToken:
    """Seed the admin token from the settings (see the module's contract) through ``store``
    (the owner's) and return the cached check of the token in force, which reads through
    ``checker`` (the gateway's connections; default ``store``)."""
    with store.connection() as conn:
        seed = devices.seed_admin_token(conn, hash_secret(admin_token(settings)))
    source = admin_token_source(settings)
    if seed.outcome == "retired":
        logger.warning(
            "the admin token of %s was rotated away (ecosense admin rotate-token) and is"
            " refused: the token in force is the one rotate-token printed; put it in %s",
            source,
            source,
        )
    elif seed.outcome == "adopted":
        logger.warning("the admin token of %s replaces the one in force", source)
    return devices.AdminToken(checker or store, seed.current)


def rotate(settings: Settings, store: PostgresStore) -> tuple[str, bool]:
    """Rotate the admin token; return the new token and whether it was written to the data
    directory's file (``False``: it comes from ``ECOSENSE_ADMIN_TOKEN``, to be updated)."""
    with store.connection() as conn:
        token = devices.rotate_admin_token(conn, hash_secret(admin_token(settings)))
    if settings.admin_token:
        return token, False
    path = settings.data_dir / "admin_token"
    fd, tmp = tempfile.mkstemp(dir=settings.data_dir, prefix=".admin_token.")
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, (token + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    return token, True
