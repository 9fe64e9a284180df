"""Request rate limits of the HTTP API per client address and per API key (README "Rate
limits").

Three limits, the first two in the notation of the ``limits`` library (``"120/minute"``):

- ``public``: requests of anonymous callers (no credentials, or credentials that are wrong),
  every route; authenticated users, devices and the admin token are not counted, so ingest
  is never slowed;
- ``auth``: ``POST /api/v1/auth/token`` from one address, whoever calls; in front of the
  failure throttling per user and per address in :mod:`api.auth`, which stays;
- ``key``: requests sent with an open-data consumer's API key (``X-API-Key``), counted per key
  (whatever the address) at the key's own rate in requests a minute (``ecosense keys add NAME
  --rate N``, :meth:`RateLimits.hit_key`), instead of the ``public`` limit per address.

Beyond a limit the answer is ``429`` with ``Retry-After`` (whole seconds until the address's
window ends) and ``{"detail": …}``. The client address is the one uvicorn gives the request:
the TCP peer, or behind a proxy listed in ``ECOSENSE_TRUSTED_PROXIES`` the ``X-Forwarded-For``
client. Addresses in ``exempt`` (networks) are not limited; none is by default, loopback
included. IPv6 clients are counted per ``/64`` (one subscriber's prefix), so a host cannot
dodge the limit by cycling addresses within its own prefix.

Counters are fixed windows (``limits.FixedWindowRateLimiter``) in memory: a window starts at
an address's first request and lasts the limit's period, so within one window the count is
exact; across a window's end an address can make up to twice the rate in a short burst.
Memory is bounded: a counter is dropped when its window ends, and at most ``max_addresses``
counters are held in all (about 0.3 KB each: ~16 MB at the default 50,000); when a flood of
distinct addresses fills that, further new addresses share one overflow counter with the
same limit, while the addresses already tracked keep their own (keys count towards the same
bound, and share the overflow counter alike). Counters are per process: several gateway
instances behind a load balancer each allow the full rate, per address and per key.
"""

from __future__ import annotations

import ipaddress
import math
import threading
import time
from collections.abc import Iterable
from typing import Final, Literal

from limits import RateLimitItem, RateLimitItemPerMinute, parse
from limits.storage import MemoryStorage
from limits.strategies import FixedWindowRateLimiter

from ingest.limits import Network, parse_networks

#: defaults of ``ECOSENSE_PUBLIC_RATE`` and ``ECOSENSE_AUTH_RATE``
DEFAULT_PUBLIC_RATE: Final = "120/minute"
DEFAULT_AUTH_RATE: Final = "10/minute"
#: most counters held (addresses × limits) before new addresses share the overflow counter
MAX_ADDRESSES: Final = 50_000
_OVERFLOW: Final = "(overflow)"

Scope = Literal["public", "auth", "key"]


def parse_rate(text: str) -> RateLimitItem:
    """One rate in the ``limits`` notation (``"120/minute"``, ``"10 per minute"``), or a
    whole number of requests a minute (``"120"``, as the contract states the default);
    ``ValueError`` for anything else, for more than one rate, or for none allowed."""
    items = text.split(";")
    if len(items) != 1 or not text.strip():
        raise ValueError(f"{text!r} is not one rate such as 120/minute")
    if text.strip().isascii() and text.strip().isdigit():
        text = f"{int(text)}/minute"
    try:
        item = parse(text)
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a rate such as 120/minute") from exc
    if item.amount < 1:
        raise ValueError(f"{text!r}: a rate allows at least 1 request")
    return item


def client_key(address: str | None) -> str:
    """What one client is counted as: its IPv4 address, its IPv6 ``/64``, or the text
    uvicorn gave (``"unknown"`` without one)."""
    if not address:
        return "unknown"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:100]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((int(ip) >> 64 << 64, 64)))
    return str(ip)


class RateLimits:
    """The HTTP API's request rate limits (see the module's docstring).

    Parameters
    ----------
    public: rate of anonymous requests per address (``limits`` notation).
    auth: rate of sign-in requests per address.
    exempt: addresses or networks not limited (``"10.0.0.0/8"``), none by default.
    max_addresses: most counters held, every limit together (the memory bound).
    """

    def __init__(
        self,
        public: str = DEFAULT_PUBLIC_RATE,
        auth: str = DEFAULT_AUTH_RATE,
        exempt: str | Iterable[str] = (),
        max_addresses: int = MAX_ADDRESSES,
    ) -> None:
        self.rates: dict[Scope, RateLimitItem] = {
            "public": parse_rate(public),
            "auth": parse_rate(auth),
        }
        self.exempt: tuple[Network, ...] = parse_networks(exempt)
        self.max_addresses = max_addresses
        self._storage = MemoryStorage()
        self._limiter = FixedWindowRateLimiter(self._storage)
        self._lock = threading.Lock()
        #: requests refused so far, per scope (for tests and the log)
        self.refused: dict[Scope, int] = {"public": 0, "auth": 0, "key": 0}
        self._key_rates: dict[int, RateLimitItem] = {}

    def is_exempt(self, address: str | None) -> bool:
        """Whether ``address`` is in one of the exempt networks."""
        if not self.exempt or not address:
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.exempt)

    def hit(self, scope: Scope, address: str | None) -> int | None:
        """Count one request of ``address`` against ``scope``'s limit: ``None`` when it is
        within the limit (or exempt), else the seconds until the address may ask again."""
        if self.is_exempt(address):
            return None
        return self._hit(scope, self.rates[scope], client_key(address))

    def hit_key(self, name: str, per_minute: int) -> int | None:
        """Count one request sent with the API key ``name`` against its own rate of
        ``per_minute`` requests a minute (whatever the address; exemptions do not apply):
        ``None`` within it, else the seconds until the key may be used again."""
        item = self._key_rates.get(per_minute)
        if item is None:
            if len(self._key_rates) > 1000:
                self._key_rates.clear()
            item = self._key_rates[per_minute] = RateLimitItemPerMinute(max(1, per_minute))
        return self._hit("key", item, name)

    def _hit(self, scope: Scope, item: RateLimitItem, key: str) -> int | None:
        with self._lock:
            if (
                len(self._storage.storage) >= self.max_addresses
                and item.key_for(scope, key) not in self._storage.storage
            ):
                key = _OVERFLOW
            if self._limiter.hit(item, scope, key):
                return None
            self.refused[scope] += 1
            reset = self._limiter.get_window_stats(item, scope, key).reset_time
        return max(1, math.ceil(reset - time.time()))

    def tracked(self) -> int:
        """How many counters are held (every scope)."""
        return len(self._storage.storage)
