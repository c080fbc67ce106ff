-- 0016: a verdict is what the latest input judged made it, even when that is less.
--
-- Until now a merged verdict kept its highest severity and the emission with the latest last_at
-- (0005, 0010): a verdict could only grow. But a roadside reading that reaches vemd late can
-- take evidence away: a compliant reading that falls between two exceedances cuts their run
-- (rules.md: "consecutive means no valid compliant reading of that pollutant in between"), and
-- the run's verdict is then a notice on the readings below the cut, not the violation the whole
-- run made. Kept as the highest, the table went on convicting a truck that the data, once
-- complete, clears.
--
-- An emission now carries the input whose judgement made it: its receipt time (received_at)
-- and spool sequence number (spool_seq), and its place among the verdicts the worker emitted
-- since that input began (emission: the input's own first, then those of the turns of the clock
-- and of stored history it made after it, before the next input, which travel as that input's
-- records; after a restart, those before the first input carry the checkpoint's last input and
-- the start time as their place, so they go after all it emitted and after an earlier run's).
-- vemd judges a vehicle's inputs in that order, so the latest emission is the verdict as it now
-- stands: it wins, whether it raises or lowers the severity and whatever its last_at. An older
-- emission merged later (another sink lane, a replay from the spool) changes nothing. The
-- receipt time comes first so that a spool made anew (its numbers start at 1 again) does not
-- make new inputs look old; one not known (null) is older than any known.
--
-- Rows stored before this migration have no input (spool_seq null): against those, an emission
-- is merged the old way (latest last_at, severity never lower), and one with the later last_at
-- gives the row its input.
ALTER TABLE violations ADD COLUMN received_at timestamptz, -- the input that made this version
                       ADD COLUMN spool_seq bigint,
                       ADD COLUMN emission bigint;        -- its place after that input began

-- True when the emission e replaces the stored version s (e's input the later, or the same
-- with e the later emission, then the later last_at), false when it does not; NULL when either
-- has no input (a row from before 0016): then the merge of 0010 applies.
CREATE FUNCTION vem_violation_newer(s public.violations, e public.violations) RETURNS boolean
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, public, pg_temp AS $$
    SELECT CASE WHEN s.spool_seq IS NULL OR e.spool_seq IS NULL THEN NULL
                ELSE (coalesce(e.received_at, '-infinity'), e.spool_seq, coalesce(e.emission, 0),
                      e.last_at) >=
                     (coalesce(s.received_at, '-infinity'), s.spool_seq, coalesce(s.emission, 0),
                      s.last_at) END
$$;
REVOKE EXECUTE ON FUNCTION vem_violation_newer(public.violations, public.violations) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION vem_violation_newer(public.violations, public.violations)
    TO vem_ingest, vem_admin;

-- What the stored version s becomes with the emission e merged in: e's measurement, evidence and
-- input when it is the newer (by vem_violation_newer; with a row from before 0016, when its
-- last_at is not earlier), e's last_at and severity when it is the newer, and for a row from
-- before 0016 the later last_at and the higher severity.
CREATE FUNCTION vem_violation_merged(s public.violations, e public.violations)
RETURNS public.violations
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    newer boolean := public.vem_violation_newer(s, e);
BEGIN
    IF coalesce(newer, e.last_at >= s.last_at) THEN
        s.measured := e.measured;
        s.evidence := e.evidence;
        s.received_at := e.received_at;
        s.spool_seq := e.spool_seq;
        s.emission := e.emission;
    END IF;
    IF newer THEN
        s.last_at := e.last_at;
        s.severity := e.severity;
    ELSIF newer IS NULL THEN
        s.last_at := GREATEST(s.last_at, e.last_at);
        s.severity := GREATEST(s.severity, e.severity);
    END IF;
    RETURN s;
END $$;
REVOKE EXECUTE ON FUNCTION vem_violation_merged(public.violations, public.violations) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION vem_violation_merged(public.violations, public.violations)
    TO vem_ingest, vem_admin;

CREATE OR REPLACE FUNCTION vem_merge_violations(rows jsonb) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    n bigint;
BEGIN
    INSERT INTO public.violations AS v (violation_id, rule, clause, vin, plate, plate_color,
                                        first_at, last_at, measured, "limit", unit, evidence,
                                        severity, received_at, spool_seq, emission)
    SELECT DISTINCT ON (r.violation_id) r.violation_id, r.rule, r.clause, r.vin, r.plate,
           r.plate_color, r.first_at, r.last_at, r.measured, r."limit", r.unit, r.evidence,
           r.severity, r.received_at, r.spool_seq, r.emission
      FROM pg_catalog.jsonb_populate_recordset(NULL::public.violations, rows) r
     ORDER BY r.violation_id, r.received_at DESC NULLS LAST, r.spool_seq DESC NULLS LAST,
              r.emission DESC NULLS LAST, r.last_at DESC, r.severity DESC
    ON CONFLICT (violation_id) DO UPDATE
       SET (last_at, measured, evidence, severity, received_at, spool_seq, emission) =
           (SELECT m.last_at, m.measured, m.evidence, m.severity, m.received_at, m.spool_seq,
                   m.emission
              FROM public.vem_violation_merged(v, excluded) m);
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;
REVOKE EXECUTE ON FUNCTION vem_merge_violations(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION vem_merge_violations(jsonb) TO vem_ingest, vem_admin;
