"""National standards as pure, vectorised functions (no I/O).

- :mod:`sensors.standards.aqi` — air quality index, HJ 633-2026 (default) and HJ 633-2012;
- :mod:`sensors.standards.gb3095` — ambient air limits, GB 3095-2026, exceedances;
- :mod:`sensors.standards.water` — surface water classes, GB 3838-2002 (Tables 1 and 2);
- :mod:`sensors.standards.soil` — agricultural soil risk classes, GB 15618-2018, and
  development-land screening and intervention values, GB 36600-2018;
- :mod:`sensors.standards.noise` — environmental noise limits by zone, GB 3096-2008;
- :mod:`sensors.standards.radiation` — ambient gamma dose rate against a station's background.

Each module names its standard's clauses and tables; ``docs/standards/`` documents them, with
the numbers, worked values and where the official texts are published.
"""
