-- EcoSense schema, version 9: HJ 212 codes the parameter dictionary does not know, held per
-- device under their raw code (never a parameter, never a stream), and the operator's mappings
-- of a device's raw code to a parameter.

-- The raw codes held for a device (at most ECOSENSE_QUARANTINE_CODES per device).
CREATE TABLE quarantine_codes (
    device_id   text NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    code        text NOT NULL,
    first_seen  timestamptz NOT NULL DEFAULT now(),   -- first received
    last_seen   timestamptz NOT NULL DEFAULT now(),   -- last received
    PRIMARY KEY (device_id, code)
);

-- The readings of held codes, as parsed from their packets (a re-sent reading replaces).
CREATE TABLE quarantine_readings (
    device_id   text NOT NULL,
    code        text NOT NULL,
    station_id  text NOT NULL REFERENCES stations (id) ON DELETE CASCADE,
    time        timestamptz NOT NULL,
    value       double precision NOT NULL,             -- as sent, in the sender's unit
    flag        text NOT NULL,
    interval    text CHECK (interval IN ('PT1M', 'PT1H', 'P1D')),
    statistic   text CHECK (statistic IN ('avg', 'min', 'max', 'cou')),
    basis       text NOT NULL CHECK (basis IN ('measured', 'converted')),
    received_at timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (device_id, code) REFERENCES quarantine_codes (device_id, code) ON DELETE CASCADE,
    UNIQUE NULLS NOT DISTINCT (device_id, code, time, interval, statistic, basis)
);

-- Readings of new codes refused because the device's quarantine was full: counted, not kept.
CREATE TABLE quarantine_dropped (
    device_id     text PRIMARY KEY REFERENCES devices (id) ON DELETE CASCADE,
    readings      bigint NOT NULL DEFAULT 0,
    first_dropped timestamptz NOT NULL DEFAULT now(),
    last_dropped  timestamptz NOT NULL DEFAULT now(),
    last_codes    text[] NOT NULL DEFAULT '{}'          -- a sample of the last refused codes
);

-- An operator's mapping: this device's raw code is that parameter (sent in `unit`, or in the
-- parameter's canonical unit when NULL). Later packets go straight to the parameter.
CREATE TABLE raw_code_maps (
    device_id   text NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    code        text NOT NULL,
    parameter   text NOT NULL REFERENCES parameters (code),
    unit        text,
    mapped_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (device_id, code)
);
