-- Natural ecology (issue 18): what a registered raster measures (NDVI, NDWI, or land-cover
-- classes), so that the ecology job knows which rasters to reduce per region (NDVI also to
-- fractional vegetation cover) and which to compare as land cover; each region's trend of
-- each quantity (Mann-Kendall, Sen's slope per year); and the land-cover change areas between
-- consecutive land-cover rasters per region.
ALTER TABLE gis_rasters ADD COLUMN quantity text
    CHECK (quantity IN ('ndvi', 'ndwi', 'landcover'));
CREATE TABLE ecology_trends (
    layer          text NOT NULL REFERENCES gis_layers (name) ON DELETE CASCADE,
    feature        text NOT NULL,
    quantity       text NOT NULL CHECK (quantity IN ('ndvi', 'fvc', 'ndwi')),
    n              integer NOT NULL,
    first_time     timestamptz,
    last_time      timestamptz,
    slope_per_year double precision,
    intercept      double precision,
    tau            double precision,
    z              double precision,
    p              double precision,
    trend          text NOT NULL,
    significant    boolean NOT NULL,
    computed_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (layer, feature, quantity)
);
CREATE TABLE landcover_changes (
    layer       text NOT NULL REFERENCES gis_layers (name) ON DELETE CASCADE,
    feature     text NOT NULL,
    from_raster text NOT NULL REFERENCES gis_rasters (id) ON DELETE CASCADE,
    to_raster   text NOT NULL REFERENCES gis_rasters (id) ON DELETE CASCADE,
    from_class  text NOT NULL,
    to_class    text NOT NULL,
    start_year  integer NOT NULL,
    end_year    integer NOT NULL,
    area_ha     double precision NOT NULL,
    computed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (layer, feature, from_raster, to_raster, from_class, to_class)
);
