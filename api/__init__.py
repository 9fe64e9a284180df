"""HTTP read API: health, stations, observations, aggregates and alerts (FastAPI routers over
store/). The device-facing write routes are in :mod:`ingest.http`."""
