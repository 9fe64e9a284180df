"""Password hashing with Argon2id.

Users' passwords: argon2-cffi's defaults, RFC 9106's second recommended parameter set (64 MiB,
3 passes, 4 lanes; about 0.1-0.3 s on one core). HJ 212 field units' passwords: OWASP's first
Argon2id recommendation (19 MiB, 2 passes, 1 lane; about 20-40 ms): the gateway verifies one
per connection of each unit (a thousand units reconnect at once after a restart), still some
10⁴ times slower per guess than the SHA-256 it replaces.
"""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_HASHER = PasswordHasher()
_DEVICE_HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)


def hash_password(password: str) -> str:
    """An Argon2id hash (PHC string, salt included) of ``password``."""
    return _HASHER.hash(password)


def verify_password(stored: str, password: str) -> bool:
    """Whether ``password`` matches the ``stored`` hash (``False`` for a malformed hash)."""
    try:
        return _HASHER.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    """Whether ``stored`` was made with weaker parameters than today's."""
    return _HASHER.check_needs_rehash(stored)


def hash_device_password(password: str) -> str:
    """An Argon2id hash (PHC string, salt included) of an HJ 212 field unit's ``password``."""
    return _DEVICE_HASHER.hash(password)


def verify_device_password(stored: str, password: str) -> bool:
    """Whether an HJ 212 ``password`` matches its ``stored`` hash (its own parameters are
    read from the PHC string; ``False`` for a malformed hash)."""
    try:
        return _DEVICE_HASHER.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def device_needs_rehash(stored: str) -> bool:
    """Whether an HJ 212 password's ``stored`` hash was made with other parameters than
    today's (or is not an Argon2 hash at all)."""
    try:
        return _DEVICE_HASHER.check_needs_rehash(stored)
    except (InvalidHashError, ValueError):
        return True


def generate_password() -> str:
    """A random password of 20 URL-safe characters (120 bits)."""
    return secrets.token_urlsafe(15)


def generate_token() -> str:
    """A random bearer token (256 bits)."""
    return secrets.token_urlsafe(32)
