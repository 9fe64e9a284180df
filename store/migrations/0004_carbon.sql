-- EcoSense schema, version 4: carbon accounting inputs kept in the store, so that
-- `ecosense jobs run carbon-inventory` (and the scheduler) keep emissions current.
-- computed_at: when the row was stored or last changed (the job's incremental mark reads it).
CREATE TABLE facilities (
    id          text PRIMARY KEY,
    name        text NOT NULL,
    region      text NOT NULL,
    sector      text NOT NULL,
    lon         double precision,
    lat         double precision,
    computed_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE activity_records (
    id              text PRIMARY KEY,
    facility        text NOT NULL REFERENCES facilities (id),
    start           timestamptz NOT NULL,
    "end"           timestamptz NOT NULL,
    activity        text NOT NULL,
    quantity        double precision NOT NULL CHECK (quantity >= 0),
    unit            text NOT NULL,
    source          text NOT NULL DEFAULT '',
    method          text NOT NULL DEFAULT 'china',
    ncv             double precision,
    carbon_content  double precision,
    oxidation       double precision,
    emission_factor double precision,
    computed_at     timestamptz NOT NULL DEFAULT now(),
    CHECK ("end" > start)
);
CREATE INDEX activity_records_facility_idx ON activity_records (facility, start);
CREATE INDEX activity_records_computed_idx ON activity_records (computed_at);
CREATE TABLE carbon_targets (
    region       text PRIMARY KEY,
    peak_year    integer NOT NULL,
    neutral_year integer NOT NULL CHECK (neutral_year > peak_year),
    computed_at  timestamptz NOT NULL DEFAULT now()
);
-- Plant meters (fuel flow, power) feed activity records: a station kind of their own.
ALTER TABLE stations DROP CONSTRAINT stations_kind_check;
ALTER TABLE stations ADD CONSTRAINT stations_kind_check
    CHECK (kind IN ('air', 'water', 'wastewater', 'soil', 'radiation', 'cems', 'noise', 'met',
                    'meter'));
