"""Jobs over the store: aggregation with validity, standards, carbon accounting, spatial overlay.

- :mod:`pipelines.aggregate` — the pure computations: means with GB 3095-2026 Table 4 validity;
- :mod:`pipelines.jobs` — the jobs (``hourly``, ``daily``, ``alerts``, ``carbon-inventory``):
  incremental marks, planning, what ``ecosense jobs`` runs;
- :mod:`pipelines.work` — the units of work handed to Dask (a station's hours, AQI, days, a
  city's means, CEMS emissions);
- :mod:`pipelines.runner` — the Dask runner (a local cluster or a scheduler by address);
- :mod:`pipelines.scheduler` — the scheduler inside ``ecosense up``;
- :mod:`pipelines.alerts` — the alerts job (rules in :mod:`sensors.alerts`, their state in
  :mod:`store.alerts`) and the webhook notifier;
- :mod:`pipelines.carbon` — carbon accounting over the store and the CEMS check;
- :mod:`pipelines.zonal` — zonal statistics of many rasters on the runner.

They read streams and activity data from :mod:`store`, hand them to the pure cores
(:mod:`sensors`, :mod:`carbon`, :mod:`gis`) and write the results back.
"""
