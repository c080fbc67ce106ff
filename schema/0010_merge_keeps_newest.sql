-- 0010: a merged verdict keeps the measurement and evidence of its latest emission.
--
-- 0005's vem_merge_violations took measured and evidence from whichever emission was merged
-- last. Two sink lanes (pg.connections) can commit emissions of one verdict in either order,
-- and a replay re-sends old ones: an older emission committed last overwrote the newer
-- measurement. Now they move only with last_at.
CREATE OR REPLACE FUNCTION vem_merge_violations(rows jsonb) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    n bigint;
BEGIN
    INSERT INTO public.violations AS v (violation_id, rule, clause, vin, plate, plate_color,
                                        first_at, last_at, measured, "limit", unit, evidence,
                                        severity)
    SELECT DISTINCT ON (r.violation_id) r.violation_id, r.rule, r.clause, r.vin, r.plate,
           r.plate_color, r.first_at, r.last_at, r.measured, r."limit", r.unit, r.evidence,
           r.severity
      FROM pg_catalog.jsonb_populate_recordset(NULL::public.violations, rows) r
     ORDER BY r.violation_id, r.last_at DESC, r.severity DESC
    ON CONFLICT (violation_id) DO UPDATE
       SET last_at = GREATEST(v.last_at, excluded.last_at),
           measured = CASE WHEN excluded.last_at >= v.last_at THEN excluded.measured
                           ELSE v.measured END,
           evidence = CASE WHEN excluded.last_at >= v.last_at THEN excluded.evidence
                           ELSE v.evidence END,
           severity = GREATEST(v.severity, excluded.severity);
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;
REVOKE EXECUTE ON FUNCTION vem_merge_violations(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION vem_merge_violations(jsonb) TO vem_ingest, vem_admin;
