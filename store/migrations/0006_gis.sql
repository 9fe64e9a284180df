-- EcoSense schema, version 6: the one map's layers and rasters, and zonal statistics.
CREATE TABLE gis_layers (
    name        text PRIMARY KEY,
    source      text NOT NULL,
    crs         text NOT NULL,           -- WKT of the layer's CRS (geometries are kept in it)
    key         text NOT NULL,           -- the attribute that names a feature ('' = its row)
    repaired    jsonb NOT NULL DEFAULT '[]'::jsonb,
    computed_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE gis_features (
    layer      text NOT NULL REFERENCES gis_layers (name) ON DELETE CASCADE,
    feature    text NOT NULL,
    attributes jsonb NOT NULL DEFAULT '{}'::jsonb,
    geometry   bytea NOT NULL,           -- WKB, in the layer's CRS
    PRIMARY KEY (layer, feature)
);
CREATE TABLE gis_rasters (
    id          text PRIMARY KEY,
    path        text NOT NULL,
    variable    text,
    band        integer,
    time        timestamptz,
    crs         text NOT NULL,
    res_x       double precision NOT NULL,
    res_y       double precision NOT NULL,
    width       integer NOT NULL,
    height      integer NOT NULL,
    computed_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE zonal_stats (
    raster      text NOT NULL REFERENCES gis_rasters (id) ON DELETE CASCADE,
    layer       text NOT NULL REFERENCES gis_layers (name) ON DELETE CASCADE,
    feature     text NOT NULL,
    stat        text NOT NULL,
    time        timestamptz,
    value       double precision,
    computed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (raster, layer, feature, stat)
);
CREATE INDEX zonal_stats_layer_idx ON zonal_stats (layer, feature, stat, time);
