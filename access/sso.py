"""Single sign-on: which EcoSense role an OpenID Connect identity gets, from one claim.

The identity provider puts a claim in the ID token (``ECOSENSE_OIDC_ROLE_CLAIM``, default
``groups``): a string or a list of strings. ``ECOSENSE_OIDC_ROLES`` maps claim values to roles
(``eco-analysts=analyst,eco-admins=admin``); an identity gets the highest role any of its
values maps to, and none (public data only) when nothing maps.
"""

from __future__ import annotations

from collections.abc import Mapping

from access.policy import Role

#: the claims tried, in order, for the name the audit gives an SSO user (``sso:<name>``)
NAME_CLAIMS = ("preferred_username", "email", "sub")


def parse_role_map(text: str) -> dict[str, Role]:
    """``"value=role,value=role"`` → ``{value: Role}`` (``ValueError`` for a pair without
    ``=``, an empty value or an unknown role)."""
    found: dict[str, Role] = {}
    for pair in text.split(","):
        if not pair.strip():
            continue
        value, sep, role = pair.rpartition("=")
        if not sep or not value.strip():
            raise ValueError(f"bad role mapping {pair.strip()!r}: use claim-value=role")
        found[value.strip()] = Role.parse(role)
    return found


def role_from_claims(
    claims: Mapping[str, object], claim: str, roles: Mapping[str, Role]
) -> Role | None:
    """The highest role that a value of ``claims[claim]`` maps to in ``roles`` (``None``:
    the claim is missing or no value maps)."""
    given = claims.get(claim)
    if isinstance(given, str):
        values: list[str] = [given]
    elif isinstance(given, list | tuple):
        values = [v for v in given if isinstance(v, str)]
    else:
        return None
    mapped = [roles[v] for v in values if v in roles]
    return max(mapped) if mapped else None


def sso_name(claims: Mapping[str, object]) -> str | None:
    """The audit's name of an SSO identity: ``sso:`` and its first non-empty claim of
    :data:`NAME_CLAIMS` (``None`` without any); the prefix keeps it apart from local users,
    whose names cannot hold ``:``."""
    for key in NAME_CLAIMS:
        value = claims.get(key)
        if isinstance(value, str) and value.strip():
            return f"sso:{value.strip()}"
    return None
