-- EcoSense schema, version 1: stations, devices, parameters, streams, observations.
CREATE TABLE stations (
    id          text PRIMARY KEY,
    name        text NOT NULL,
    kind        text NOT NULL
                CHECK (kind IN ('air', 'water', 'wastewater', 'soil', 'radiation', 'cems', 'noise', 'met')),
    lon         double precision NOT NULL CHECK (lon BETWEEN -180 AND 180),
    lat         double precision NOT NULL CHECK (lat BETWEEN -90 AND 90),
    attributes  jsonb NOT NULL DEFAULT '{}'::jsonb,
    simulated   boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE devices (
    id          text PRIMARY KEY,
    station_id  text NOT NULL REFERENCES stations (id) ON DELETE CASCADE,
    token_hash  text NOT NULL UNIQUE,          -- SHA-256 of the API token (tokens are 256-bit random)
    mn          text UNIQUE,                   -- HJ 212 device id (MN)
    pw_hash     text,                          -- SHA-256 of MN + ':' + HJ 212 password
    simulated   boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX devices_station_idx ON devices (station_id);

CREATE TABLE parameters (
    code        text PRIMARY KEY,
    name_zh     text NOT NULL,
    name_en     text NOT NULL,
    unit        text NOT NULL,
    domain      text NOT NULL,
    valid_min   double precision NOT NULL,
    valid_max   double precision NOT NULL,
    hj212       text[] NOT NULL DEFAULT '{}',
    hj212_2005  text[] NOT NULL DEFAULT '{}'
);

-- A stream: station x parameter x kind of series (instantaneous, or a statistic over an interval).
CREATE TABLE streams (
    id          integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    station_id  text NOT NULL REFERENCES stations (id) ON DELETE CASCADE,
    parameter   text NOT NULL REFERENCES parameters (code),
    interval    text CHECK (interval IN ('PT1M', 'PT1H', 'P1D')),
    statistic   text CHECK (statistic IN ('avg', 'min', 'max', 'cou')),
    basis       text NOT NULL DEFAULT 'measured' CHECK (basis IN ('measured', 'converted')),
    unit        text NOT NULL,
    UNIQUE NULLS NOT DISTINCT (station_id, parameter, interval, statistic, basis)
);

-- Raw readings. No foreign key to streams: stream ids are made by the store itself, and a
-- per-row foreign-key check would halve the COPY rate.
CREATE TABLE observations (
    stream_id   integer NOT NULL,
    time        timestamptz NOT NULL,
    value       double precision NOT NULL,
    flag        text NOT NULL DEFAULT 'N',
    ingest_time timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (stream_id, time)
);
