"""GIS and remote sensing: vector layers, rasters, zonal statistics, interpolation and
land-cover change (pure functions over files and in-memory data; the store and Dask jobs use
them)."""
