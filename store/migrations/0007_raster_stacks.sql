-- EcoSense schema, version 7: a catalogue item may be one step of a time stack (NetCDF/Zarr).
ALTER TABLE gis_rasters ADD COLUMN stacked boolean NOT NULL DEFAULT false;
