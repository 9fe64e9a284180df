-- Every move of a job's mark (issue 15, many instances): which run planned from which mark
-- and where it left it, and which instance ran it (the session's application_name, which the
-- scheduler of `ecosense up` sets to "ecosense jobs <host>:<pid>"). A period is run twice only
-- if two moves of one job start from the same mark; the per-job lock (store/jobs.py) and the
-- jobs leader (store/leader.py) keep that from happening, and this table shows it.
CREATE TABLE job_mark_moves (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job         text NOT NULL,
    from_mark   timestamptz,
    to_mark     timestamptz NOT NULL,
    moved_by    text NOT NULL DEFAULT '',
    moved_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX job_mark_moves_job_idx ON job_mark_moves (job, id);

CREATE FUNCTION job_mark_moved() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO job_mark_moves (job, from_mark, to_mark, moved_by)
    VALUES (
        NEW.job,
        CASE WHEN TG_OP = 'UPDATE' THEN OLD.mark END,
        NEW.mark,
        coalesce(current_setting('application_name', true), '')
    );
    RETURN NEW;
END;
$$;

CREATE TRIGGER job_marks_moves AFTER INSERT OR UPDATE OF mark ON job_marks
    FOR EACH ROW EXECUTE FUNCTION job_mark_moved();
