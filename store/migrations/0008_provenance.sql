-- Provenance of every reading, and the versions a correction supersedes (raw data are never
-- overwritten). Works on plain PostgreSQL and when observations is a TimescaleDB hypertable.

-- Who sent a batch: one row per (protocol, device, importing user, file), referenced by id so
-- that a reading carries its provenance in one int4 column (cheap in binary COPY).
CREATE TABLE sources (
    id          integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    protocol    text NOT NULL CHECK (protocol IN ('http', 'lineprotocol', 'hj212', 'mqtt', 'file')),
    device      text,                          -- registered device id (NULL: file import, MQTT)
    user_name   text,                          -- who imported a file
    file        text,                          -- the imported file's name
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE NULLS NOT DISTINCT (protocol, device, user_name, file)
);

-- NULL for readings stored before provenance was recorded. No foreign key (as stream_id):
-- a per-row check would slow COPY; source ids are made by the store itself.
ALTER TABLE observations ADD COLUMN source_id integer;

-- A reading's earlier values: written when a re-sent reading with another value or flag
-- replaces it. received_at is when the superseded value was stored, superseded_at when the
-- new one replaced it.
CREATE TABLE observation_versions (
    stream_id     integer NOT NULL,
    time          timestamptz NOT NULL,
    value         double precision NOT NULL,
    flag          text NOT NULL,
    source_id     integer,
    received_at   timestamptz NOT NULL,
    superseded_at timestamptz NOT NULL
);
CREATE INDEX observation_versions_reading_idx
    ON observation_versions (stream_id, time, superseded_at);

-- The database itself keeps the version, whatever path updates a reading: a row trigger fires
-- only on an UPDATE that changes value or flag (the merge path), never on the COPY fast path.
CREATE FUNCTION observations_keep_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO observation_versions
        (stream_id, time, value, flag, source_id, received_at, superseded_at)
    VALUES
        (OLD.stream_id, OLD.time, OLD.value, OLD.flag, OLD.source_id, OLD.ingest_time, now());
    -- the new value's receive time moves forward, so incremental jobs recompute its period
    NEW.ingest_time := greatest(NEW.ingest_time, now());
    RETURN NEW;
END
$$;

CREATE TRIGGER observations_keep_version
    BEFORE UPDATE ON observations
    FOR EACH ROW
    WHEN ((OLD.value, OLD.flag) IS DISTINCT FROM (NEW.value, NEW.flag))
    EXECUTE FUNCTION observations_keep_version();
