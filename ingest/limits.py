"""Connection caps shared by the listeners (HJ 212 and HTTP): per client address and in total.

A listener asks :meth:`Admission.admit` when a connection is accepted and calls
:meth:`Admission.release` when it closes. A refused connection is closed at once; refusals
are logged as one summary line per interval (never a line per refusal), so a flood of
connections cannot flood the log either.

Behind a reverse proxy every connection comes from the proxy's address: addresses in the
trusted-proxy list (``ECOSENSE_TRUSTED_PROXIES``) are not capped per address, only by the
total; their clients' addresses are taken from ``X-Forwarded-For`` (HTTP) by uvicorn's proxy
header handling, which trusts that header from those addresses only.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections import Counter
from collections.abc import Iterable

logger = logging.getLogger(__name__)

#: Seconds between two summary lines of refused connections.
SUMMARY_INTERVAL = 10.0

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(text: str | Iterable[str]) -> tuple[Network, ...]:
    """Addresses or networks (``10.0.0.5``, ``10.0.0.0/8``, ``::1``), comma-separated or as an
    iterable; ``ValueError`` naming the first one that is neither."""
    items = text.split(",") if isinstance(text, str) else list(text)
    networks: list[Network] = []
    for item in (i.strip() for i in items):
        if item:
            networks.append(ipaddress.ip_network(item, strict=False))
    return tuple(networks)


def host_of(peer: object) -> str:
    """The address part of a socket peer name (``("1.2.3.4", 5)`` → ``"1.2.3.4"``)."""
    if isinstance(peer, tuple) and peer:
        return str(peer[0])
    return str(peer)


class Admission:
    """Open connections of one listener, per client address and in total.

    Parameters
    ----------
    name: the listener, for the log (``"hj212"``, ``"http"``).
    per_address: most open connections from one address (trusted proxies excepted).
    total: most open connections in all.
    trusted: networks of trusted reverse proxies (capped by ``total`` only).

    Not thread-safe: each listener uses its own, on its own event loop.
    """

    def __init__(
        self, name: str, per_address: int, total: int, trusted: Iterable[Network] = ()
    ) -> None:
        self.name = name
        self.per_address = per_address
        self.total = total
        self.trusted = tuple(trusted)
        self.open: Counter[str] = Counter()
        self.count = 0
        #: refusals since the start (for tests and health)
        self.refused = 0
        #: connections closed for not sending their headers in time (HTTP)
        self.timed_out = 0
        self._refused_since: Counter[str] = Counter()
        self._last_summary = float("-inf")  # the first refusal is logged at once

    def is_trusted(self, host: str) -> bool:
        """Whether ``host`` is a trusted proxy."""
        if not self.trusted:
            return False
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self.trusted)

    def admit(self, host: str) -> bool:
        """Count a new connection from ``host``; ``False`` (and counted as refused) when it
        would exceed a cap: the caller closes it."""
        if self.count >= self.total or (
            self.open[host] >= self.per_address and not self.is_trusted(host)
        ):
            self.refused += 1
            self._refused_since[host] += 1
            self.summarise()
            return False
        self.open[host] += 1
        self.count += 1
        return True

    def release(self, host: str) -> None:
        """An admitted connection from ``host`` closed."""
        self.count -= 1
        self.open[host] -= 1
        if self.open[host] <= 0:
            del self.open[host]

    def summarise(self, force: bool = False) -> None:
        """Log the refusals of the last interval in one line (at most one per interval)."""
        now = time.monotonic()
        if not self._refused_since or (not force and now - self._last_summary < SUMMARY_INTERVAL):
            return
        refused, self._refused_since = self._refused_since, Counter()
        top = ", ".join(f"{host} ×{n}" for host, n in refused.most_common(3))
        logger.warning(
            "%s: refused %d connection(s) over the caps (%d per address, %d in all): %s%s",
            self.name,
            sum(refused.values()),
            self.per_address,
            self.total,
            top,
            ", …" if len(refused) > 3 else "",
        )
        self._last_summary = now
