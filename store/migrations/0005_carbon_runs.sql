-- EcoSense schema, version 5: planners' job-file runs (`ecosense carbon run JOB.toml --store`),
-- kept with their roll-up, what was excluded and the factor versions used.
CREATE TABLE carbon_runs (
    id              bigserial PRIMARY KEY,
    name            text NOT NULL,
    job_file        text NOT NULL,
    period_start    timestamptz NOT NULL,
    period_end      timestamptz NOT NULL,
    gwp             text NOT NULL,
    level           text NOT NULL,
    records         integer NOT NULL,
    total_co2e_t    double precision NOT NULL,
    inventory       jsonb NOT NULL,
    excluded        jsonb NOT NULL,
    factor_versions jsonb NOT NULL,
    run_at          timestamptz NOT NULL DEFAULT now()
);
