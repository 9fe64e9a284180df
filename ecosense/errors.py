"""Exceptions of the shell."""


class EcosenseError(Exception):
    """Base of the shell's errors; the CLI prints its message on one line and exits 1."""


class ConfigError(EcosenseError, ValueError):
    """A setting that cannot be used."""
