"""HTTP read API: health, stations, observations (FastAPI routers over store/)."""
