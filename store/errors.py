"""Exceptions of the store: a flat hierarchy inheriting built-ins where natural."""


class StoreError(Exception):
    """Base of every error raised by :mod:`store`."""


class StoreUnavailable(StoreError, ConnectionError):
    """The database cannot be reached (it is down, or the URL is wrong)."""


class NotFound(StoreError, LookupError):
    """A station, device or stream that does not exist."""


class Conflict(StoreError, ValueError):
    """A write that contradicts what is stored (a device id bound to another station …)."""
