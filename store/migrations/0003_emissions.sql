-- EcoSense schema, version 3: emissions accounted by carbon/ (CEMS measurement, calculation).
-- source 'cems' (subject = the stack's station) or 'calculation' (subject = a facility);
-- substitution: '' for a measured hour, else the rule that filled it (carbon.cems).
CREATE TABLE emissions (
    source       text NOT NULL CHECK (source IN ('cems', 'calculation')),
    subject      text NOT NULL,
    gas          text NOT NULL,
    period       text NOT NULL CHECK (period IN ('PT1H', 'P1D', 'P1M', 'P1Y')),
    start        timestamptz NOT NULL,
    tonnes       double precision NOT NULL,
    substitution text NOT NULL DEFAULT '',
    details      jsonb NOT NULL DEFAULT '{}'::jsonb,
    computed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, subject, gas, period, start)
);
CREATE INDEX emissions_computed_idx ON emissions (computed_at);
