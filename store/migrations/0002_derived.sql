-- EcoSense schema, version 2: what pipelines/ derives from the raw readings, and alerts.
-- Raw observations are never changed by jobs: QC flags, aggregates and assessments sit beside them.

-- QC bit mask per reading (sensors.qc: 1 range, 2 spike, 4 flatline, 8 rate, 16 device).
CREATE TABLE qc_flags (
    stream_id   integer NOT NULL,
    time        timestamptz NOT NULL,
    mask        integer NOT NULL,
    computed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (stream_id, time)
);

-- Aggregates with GB 3095-2026 Table 4 validity; invalid periods are kept, valid = false.
-- scope 'station' (subject = station id) or 'city' (subject = the stations' city).
-- period: PT1H, PT8H (O3 running mean, start = its last hour), P1D, P1D-MAX8H (O3 daily
-- maximum 8-hour mean), P1M, P1Y. start in UTC; days and months are the bureau's.
CREATE TABLE aggregates (
    scope       text NOT NULL CHECK (scope IN ('station', 'city')),
    subject     text NOT NULL,
    parameter   text NOT NULL,
    period      text NOT NULL CHECK (period IN ('PT1H', 'PT8H', 'P1D', 'P1D-MAX8H', 'P1M', 'P1Y')),
    start       timestamptz NOT NULL,
    value       double precision,
    count       double precision NOT NULL,
    valid       boolean NOT NULL,
    unit        text NOT NULL,
    computed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, subject, parameter, period, start)
);
CREATE INDEX aggregates_computed_idx ON aggregates (computed_at);

-- Assessments by a standard: kind aqi-hourly, aqi-daily (value = AQI, level 1-6, label = the
-- primary pollutants), water-daily, water-monthly (value = class 1-6, label = parameters worse
-- than the target class), soil (value = risk class 1-3, label = its name).
CREATE TABLE assessments (
    scope       text NOT NULL CHECK (scope IN ('station', 'city')),
    subject     text NOT NULL,
    kind        text NOT NULL,
    start       timestamptz NOT NULL,
    value       integer,
    level       integer,
    label       text NOT NULL DEFAULT '',
    details     jsonb NOT NULL DEFAULT '{}'::jsonb,
    computed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, subject, kind, start)
);
CREATE INDEX assessments_computed_idx ON assessments (computed_at);

-- Where each incremental job got to: rows ingested (or derived) after the mark are new to it.
CREATE TABLE job_marks (
    job         text PRIMARY KEY,
    mark        timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Alerts: open -> acknowledged -> closed; one alert per (rule, station, parameter) until closed.
CREATE TABLE alerts (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    rule            text NOT NULL,
    station_id      text NOT NULL,
    parameter       text NOT NULL DEFAULT '',
    state           text NOT NULL DEFAULT 'open'
                    CHECK (state IN ('open', 'acknowledged', 'closed')),
    severity        text NOT NULL DEFAULT 'warning' CHECK (severity IN ('info', 'warning', 'critical')),
    message         text NOT NULL,
    value           double precision,
    details         jsonb NOT NULL DEFAULT '{}'::jsonb,
    opened_at       timestamptz NOT NULL DEFAULT now(),
    last_seen       timestamptz NOT NULL DEFAULT now(),
    acknowledged_at timestamptz,
    acknowledged_by text,
    closed_at       timestamptz
);
CREATE UNIQUE INDEX alerts_one_live_idx ON alerts (rule, station_id, parameter)
    WHERE state <> 'closed';
CREATE INDEX alerts_state_idx ON alerts (state, opened_at);

-- Webhook outbox: each alert event is delivered at least once, retried with back-off.
CREATE TABLE alert_notifications (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_id     bigint NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    event        text NOT NULL CHECK (event IN ('opened', 'acknowledged', 'closed')),
    payload      jsonb NOT NULL,
    attempts     integer NOT NULL DEFAULT 0,
    next_attempt timestamptz NOT NULL DEFAULT now(),
    delivered_at timestamptz,
    last_error   text
);
CREATE INDEX alert_notifications_due_idx ON alert_notifications (next_attempt)
    WHERE delivered_at IS NULL;

-- Incremental jobs find new raw readings by ingest time; a BRIN index costs the COPY path
-- almost nothing (ingest time grows with insertion order).
CREATE INDEX observations_ingest_brin ON observations USING brin (ingest_time);
