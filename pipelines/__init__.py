"""Jobs over the store: aggregation with validity, standards, carbon accounting, spatial overlay.

The computations are pure functions over pandas frames (:mod:`pipelines.aggregate`); the jobs
that read and write the store and run on Dask build on them.
"""
