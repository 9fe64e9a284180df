"""Exceptions of the domain core: a flat hierarchy that also inherits built-ins."""


class SensorsError(Exception):
    """Base of every error raised by :mod:`sensors`."""


class UnknownParameterError(SensorsError, KeyError):
    """A parameter code that is neither canonical nor an HJ 212 code."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else "unknown parameter"


class UnitError(SensorsError, ValueError):
    """A unit that cannot be parsed, or that is not compatible with the parameter's unit."""


class ValidationError(SensorsError, ValueError):
    """A reading that fails validation (non-finite value, bad time, unknown station …)."""
