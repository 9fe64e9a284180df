-- EcoSense schema, version 10: manual review (数据审核) of raw readings.
-- An operator invalidates or restores the readings of one station and parameter (every stream
-- of it) timed in [start, "end"), with a reason. Readings are never changed or deleted: the
-- latest review (highest id) covering a reading decides whether jobs use it. A review is
-- itself never changed or deleted, so the table is the audit trail of every decision.
CREATE TABLE reviews (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    station     text NOT NULL REFERENCES stations (id) ON DELETE CASCADE,
    parameter   text NOT NULL REFERENCES parameters (code),
    start       timestamptz NOT NULL,
    "end"       timestamptz NOT NULL,
    action      text NOT NULL CHECK (action IN ('invalidate', 'restore')),
    reason      text NOT NULL CHECK (length(btrim(reason)) > 0),
    "by"        text NOT NULL,
    at          timestamptz NOT NULL DEFAULT now(),
    CHECK (start < "end")
);
-- the reviews covering a stream's readings; and (the incremental jobs) reviews made since a mark
CREATE INDEX reviews_subject_idx ON reviews (station, parameter, start);
CREATE INDEX reviews_at_idx ON reviews (at);
