"""The errors of :mod:`carbon`: each names the record or factor and the reason."""

from __future__ import annotations


class CarbonError(ValueError):
    """Bad input to an accounting method (unknown fuel, unit or region; a negative quantity)."""


class MissingFactor(CarbonError):
    """No factor for what was asked, after the documented fallbacks."""
