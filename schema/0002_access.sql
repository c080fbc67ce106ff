-- 0002_access — who may read and write what: roles, agency regions, row-level security and the
-- enforcement views.
--
--   vem_ingest   vemd: writes samples, events, readings, quarantine and violations, reads the
--                registry, creates daily partitions
--   vem_agency   enforcement agencies: read the views and tables of their own regions only
--   vem_admin    operators: everything, including the registry and closing violations
--
-- These are group roles (NOLOGIN). A deployment creates login roles and grants them one of
-- these, e.g. CREATE ROLE vemd LOGIN IN ROLE vem_ingest; an agency's login role gets
-- vem_agency and rows in agency_regions naming the region codes it may see.

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'vem_ingest') THEN
        CREATE ROLE vem_ingest NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'vem_agency') THEN
        CREATE ROLE vem_agency NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'vem_admin') THEN
        CREATE ROLE vem_admin NOLOGIN;
    END IF;
END $$;

-- Which region codes (GB/T 2260) each agency login role may see.
CREATE TABLE agency_regions (
    role_name       name NOT NULL,
    region_code     text NOT NULL CHECK (region_code ~ '^[0-9]{6}$'),
    PRIMARY KEY (role_name, region_code)
);

-- Region codes the current role may see (empty for roles without rows).
CREATE FUNCTION vem_my_regions() RETURNS SETOF text
LANGUAGE sql STABLE AS $$
    SELECT region_code FROM agency_regions WHERE role_name = current_user
$$;

GRANT USAGE ON SCHEMA public TO vem_ingest, vem_agency, vem_admin;

-- vemd
GRANT SELECT ON vehicles, partitioned_tables TO vem_ingest;
GRANT SELECT, INSERT ON obd_samples, obd_info, terminal_events, rsd_readings, quarantine,
    violations TO vem_ingest;
GRANT UPDATE (last_at, measured, evidence, severity) ON violations TO vem_ingest;

-- operators
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO vem_admin;

-- agencies
GRANT SELECT ON vehicles, obd_samples, obd_info, terminal_events, rsd_readings, violations,
    agency_regions TO vem_agency;
GRANT UPDATE (closed_at) ON violations TO vem_agency;

-- Row-level security. Owners (the migrating role) are exempt; every other role sees rows only
-- through a policy. vem_ingest and vem_admin see everything; an agency sees the vehicles of
-- its regions, and through them their samples, events, readings and violations.
ALTER TABLE vehicles ENABLE ROW LEVEL SECURITY;
ALTER TABLE obd_samples ENABLE ROW LEVEL SECURITY;
ALTER TABLE obd_info ENABLE ROW LEVEL SECURITY;
ALTER TABLE terminal_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE rsd_readings ENABLE ROW LEVEL SECURITY;
ALTER TABLE violations ENABLE ROW LEVEL SECURITY;
ALTER TABLE agency_regions ENABLE ROW LEVEL SECURITY;

CREATE POLICY all_rows ON vehicles TO vem_ingest, vem_admin USING (true) WITH CHECK (true);
CREATE POLICY all_rows ON obd_samples TO vem_ingest, vem_admin USING (true) WITH CHECK (true);
CREATE POLICY all_rows ON obd_info TO vem_ingest, vem_admin USING (true) WITH CHECK (true);
CREATE POLICY all_rows ON terminal_events TO vem_ingest, vem_admin USING (true) WITH CHECK (true);
CREATE POLICY all_rows ON rsd_readings TO vem_ingest, vem_admin USING (true) WITH CHECK (true);
CREATE POLICY all_rows ON violations TO vem_ingest, vem_admin USING (true) WITH CHECK (true);
CREATE POLICY all_rows ON agency_regions TO vem_admin USING (true) WITH CHECK (true);

CREATE POLICY own_regions ON agency_regions FOR SELECT TO vem_agency
    USING (role_name = current_user);
CREATE POLICY own_regions ON vehicles FOR SELECT TO vem_agency
    USING (region_code IN (SELECT vem_my_regions()));
CREATE POLICY own_regions ON violations FOR SELECT TO vem_agency
    USING (region_code IN (SELECT vem_my_regions()));
CREATE POLICY close_own ON violations FOR UPDATE TO vem_agency
    USING (region_code IN (SELECT vem_my_regions()))
    WITH CHECK (region_code IN (SELECT vem_my_regions()));
-- The vehicles subquery is itself limited by the vehicles policy above.
CREATE POLICY own_regions ON obd_samples FOR SELECT TO vem_agency
    USING (vin IN (SELECT vin FROM vehicles));
CREATE POLICY own_regions ON obd_info FOR SELECT TO vem_agency
    USING (vin IN (SELECT vin FROM vehicles));
CREATE POLICY own_regions ON terminal_events FOR SELECT TO vem_agency
    USING (vin IN (SELECT vin FROM vehicles));
CREATE POLICY own_regions ON rsd_readings FOR SELECT TO vem_agency
    USING (vin IN (SELECT vin FROM vehicles) OR plate IN (SELECT plate FROM vehicles));

-- ---- enforcement views -----------------------------------------------------------------------
-- security_invoker: a view reads with the rights (and row-level security) of whoever queries
-- it, so an agency sees only its regions through the views too.

-- Violations nobody has closed yet, newest first, with the vehicle's registry data.
CREATE VIEW open_violations WITH (security_invoker = true) AS
SELECT v.violation_id, v.rule, v.clause, v.vin, v.plate, v.region_code, v.first_at, v.last_at,
       v.measured, v."limit", v.unit, v.severity, v.evidence, v.created_at,
       r.plate_color, r.fuel
  FROM violations v
  LEFT JOIN vehicles r ON r.vin = v.vin
 WHERE v.closed_at IS NULL;

-- Per vehicle and Beijing day: what its terminal reported (samples, distance, NOx after the
-- SCR, MIL) and how many violations began that day.
CREATE VIEW vehicle_history WITH (security_invoker = true) AS
WITH days AS (
    SELECT vin, (sample_time AT TIME ZONE 'Asia/Shanghai')::date AS day,
           count(*) AS samples,
           min(sample_time) AS first_at, max(sample_time) AS last_at,
           max(odometer_km) - min(odometer_km) AS distance_km,
           max(speed_kmh) AS max_speed_kmh,
           avg(nox_down_ppm) AS avg_nox_down_ppm,
           max(nox_down_ppm) AS max_nox_down_ppm
      FROM obd_samples
     GROUP BY 1, 2
), obd AS (
    SELECT vin, (info_time AT TIME ZONE 'Asia/Shanghai')::date AS day,
           bool_or(mil) AS mil_on, max(dtc_count) AS max_dtc_count
      FROM obd_info
     GROUP BY 1, 2
), viol AS (
    SELECT vin, (first_at AT TIME ZONE 'Asia/Shanghai')::date AS day, count(*) AS violations
      FROM violations
     WHERE vin IS NOT NULL
     GROUP BY 1, 2
)
SELECT d.vin, r.plate, r.region_code, d.day, d.samples, d.first_at, d.last_at, d.distance_km,
       d.max_speed_kmh, d.avg_nox_down_ppm, d.max_nox_down_ppm,
       coalesce(o.mil_on, false) AS mil_on, o.max_dtc_count,
       coalesce(x.violations, 0) AS violations
  FROM days d
  LEFT JOIN vehicles r ON r.vin = d.vin
  LEFT JOIN obd o ON o.vin = d.vin AND o.day = d.day
  LEFT JOIN viol x ON x.vin = d.vin AND x.day = d.day;

-- Per vehicle and Beijing day: how complete its 1 Hz record is (HJ 1239.2 asks for the data
-- completeness of each vehicle). expected_samples counts the seconds from its first to its
-- last sample of the day; received counts the distinct seconds that arrived.
CREATE VIEW daily_completeness WITH (security_invoker = true) AS
SELECT s.vin, r.plate, r.region_code,
       (s.sample_time AT TIME ZONE 'Asia/Shanghai')::date AS day,
       count(DISTINCT s.sample_time) AS received_samples,
       (extract(epoch FROM max(s.sample_time) - min(s.sample_time)))::bigint + 1
           AS expected_samples,
       round(100.0 * count(DISTINCT s.sample_time)
             / ((extract(epoch FROM max(s.sample_time) - min(s.sample_time)))::bigint + 1), 2)
           AS completeness_pct,
       count(*) FILTER (WHERE s.resent) AS resent_samples,
       min(s.sample_time) AS first_at, max(s.sample_time) AS last_at
  FROM obd_samples s
  LEFT JOIN vehicles r ON r.vin = s.vin
 WHERE s.block_type IN ('stream', 'twc', 'twc_nox')
 GROUP BY s.vin, r.plate, r.region_code, 4;

GRANT SELECT ON open_violations, vehicle_history, daily_completeness
    TO vem_agency, vem_admin, vem_ingest;
GRANT EXECUTE ON FUNCTION vem_my_regions() TO vem_agency;

-- Partitions are created by vemd (as vem_ingest) and dropped by operators; the functions run
-- with their owner's rights, since only a table's owner may add partitions to it.
ALTER FUNCTION vem_ensure_partitions(date, date) SECURITY DEFINER SET search_path = public, pg_temp;
ALTER FUNCTION vem_drop_partitions(date) SECURITY DEFINER SET search_path = public, pg_temp;
REVOKE EXECUTE ON FUNCTION vem_ensure_partitions(date, date), vem_drop_partitions(date) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION vem_ensure_partitions(date, date) TO vem_ingest, vem_admin;
GRANT EXECUTE ON FUNCTION vem_drop_partitions(date) TO vem_admin;
