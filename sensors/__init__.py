"""EcoSense domain core: parameters, units, flags, stations. Pure: no I/O, no servers."""

from sensors.errors import SensorsError, UnitError, UnknownParameterError

__all__ = ["SensorsError", "UnitError", "UnknownParameterError"]
