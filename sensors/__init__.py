"""EcoSense domain core: parameters, units, flags, stations, observations, QC and the national
standards (:mod:`sensors.standards`). Pure: no I/O, no servers."""

from sensors.errors import SensorsError, UnitError, UnknownParameterError

__all__ = ["SensorsError", "UnitError", "UnknownParameterError"]
