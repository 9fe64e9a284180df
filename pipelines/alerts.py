"""The alerts job's steps and the webhook notifier.

The job (``ecosense jobs run alerts``) evaluates the rules of :mod:`sensors.alerts` (pure) over
what :func:`store.alerts.load_state` reads, and :func:`store.alerts.sync` opens, updates and
closes alerts, queuing each transition in the outbox (``alert_notifications``) in the same
transaction. :func:`deliver` then POSTs the due events to the webhook
(``ECOSENSE_ALERT_WEBHOOK``): it leases them in a short transaction, posts with **no
transaction open** (a slow or hanging webhook holds no lock and no connection state), and
records each outcome in its own short transaction. A refused event is retried with exponential
back-off; after :data:`MAX_ATTEMPTS` attempts it is abandoned, logged (warning: event id and
last error) and listed by ``GET /api/v1/alerts/webhooks?state=abandoned``.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import Any, Final

import httpx

from sensors.alerts import AlertRules, Condition, State, evaluate
from store import alerts as store_alerts
from store.alerts import AlertNotFound, acknowledge, list_alerts, load_state, sync
from store.db import Connection

__all__ = [
    "MAX_ATTEMPTS",
    "AlertNotFound",
    "AlertRules",
    "Condition",
    "State",
    "acknowledge",
    "deliver",
    "evaluate",
    "list_alerts",
    "load_state",
    "sync",
]

logger = logging.getLogger(__name__)

#: attempts after which a webhook event is abandoned
MAX_ATTEMPTS: Final = 20
#: events leased per round
BATCH: Final = 50
#: the longest wait between two attempts (seconds)
MAX_BACKOFF: Final = 3600.0


def deliver(
    conn: Connection,
    url: str | None,
    *,
    backoff: float = 5.0,
    timeout: float = 5.0,
    client: httpx.Client | None = None,
    max_attempts: int = MAX_ATTEMPTS,
) -> dict[str, int]:
    """POST every due notification to ``url`` (JSON: ``{"event", "alert"}``); a 2xx answer
    marks it delivered, anything else (or no answer within ``timeout`` seconds) schedules a
    retry after ``backoff × 2^attempts`` seconds (at most an hour); the ``max_attempts``-th
    failure abandons it (logged with its id and the last error). Without a URL nothing is sent
    (notifications stay queued for the dashboard). Returns counts ``delivered``, ``failed``
    (of which ``abandoned``).

    No HTTP request is made inside a database transaction: ``conn`` (autocommit) is only used
    for the short lease and outcome transactions of :mod:`store.alerts`.
    """
    counts = {"delivered": 0, "failed": 0, "abandoned": 0}
    if not url:
        return counts
    own = client is None
    http = client or httpx.Client(timeout=timeout)
    # a leased event is not due again before its outcome is recorded (the lease outlasts
    # a batch's requests); a crashed notifier's lease simply runs out
    lease = timedelta(seconds=60.0 + 2 * BATCH * timeout)
    try:
        while True:
            due = store_alerts.claim_due(conn, lease=lease, limit=BATCH)
            if not due:
                return counts
            for event in due:
                error = _post(http, url, event.payload)
                if error is None:
                    store_alerts.record_delivered(conn, event.id)
                    counts["delivered"] += 1
                    continue
                delay = min(backoff * 2**event.attempts, MAX_BACKOFF)
                abandoned = store_alerts.record_failed(
                    conn, event.id, error, timedelta(seconds=delay), max_attempts
                )
                counts["failed"] += 1
                if abandoned:
                    counts["abandoned"] += 1
                    logger.warning(
                        "webhook event %d (%s) abandoned after %d attempts; last error: %s",
                        event.id,
                        event.event,
                        event.attempts + 1,
                        error,
                    )
                else:
                    logger.warning("webhook %s: %s (retry in %.0f s)", url, error, delay)
            if counts["failed"]:
                return counts
    finally:
        if own:
            http.close()


def _post(http: httpx.Client, url: str, payload: Any) -> str | None:
    body = payload if isinstance(payload, dict) else json.loads(payload)
    try:
        answer = http.post(url, json=body)
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}"
    if 200 <= answer.status_code < 300:
        return None
    return f"HTTP {answer.status_code}"
