"""EcoSense shell: configuration, the ``ecosense`` command, and the wiring of all parts."""

__version__ = "0.1.0"
