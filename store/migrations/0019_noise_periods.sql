-- Noise (GB 3096-2008, issue 18): a day's Ld (day-time LAeq), Ln (night-time LAeq) and Ldn
-- (day-night level, night +10 dB) are aggregates of the hourly LAeq, energy averages over the
-- station's day and night hours (pipelines/work.py), labelled by the bureau's day.
ALTER TABLE aggregates DROP CONSTRAINT aggregates_period_check;
ALTER TABLE aggregates ADD CONSTRAINT aggregates_period_check CHECK (
    period IN ('PT1H', 'PT8H', 'P1D', 'P1D-MAX8H', 'P1D-LD', 'P1D-LN', 'P1D-LDN', 'P1M', 'P1Y')
);
