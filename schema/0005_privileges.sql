-- 0005_privileges — least privilege, checked (issue #14), and what a review of 0001/0002 found.
--
--   * Nobody but the owner creates objects in public; SECURITY DEFINER functions pin their
--     search_path to pg_catalog, public, pg_temp and name every object with its schema, so a
--     caller's objects (a temporary table or function of the same name) cannot stand in.
--   * vemd's role (vem_ingest) only adds: no UPDATE, DELETE or TRUNCATE on any table. A verdict
--     that grows under its id (a notice becoming a violation, a longer chain) is merged by
--     vem_merge_violations, which can only move last_at later, raise the severity and replace
--     the measurement and evidence.
--   * Operators (vem_admin) read but never write the bookkeeping of migrations and partitions.
--   * Roadside readings: an agency saw every reading of a plate that any of its vehicles
--     carries, but plates are not unique (the colour tells a yellow truck plate from a blue car
--     plate, stations misread): another region's readings leaked. A reading is now visible by
--     the registry's VIN and its region, and, without a VIN, by plate and colour only where
--     they map to exactly one registered vehicle.
--   * A violation known only by plate took the region of an arbitrary vehicle with that plate
--     (LIMIT 1). It now needs a single vehicle with that plate and colour; an ambiguous match
--     leaves vin and region empty, so only administrators see it. Violations gain plate_color
--     for that (NULL when the rule did not say: then the plate alone must be unambiguous).

REVOKE CREATE ON SCHEMA public FROM PUBLIC;

-- ---- bookkeeping: read-only for every role but the owner --------------------------------------
REVOKE ALL ON schema_migrations, partitioned_tables FROM PUBLIC, vem_admin, vem_ingest, vem_agency;
GRANT SELECT ON schema_migrations, partitioned_tables TO vem_admin;
GRANT SELECT ON partitioned_tables TO vem_ingest;

-- ---- vem_ingest only adds ----------------------------------------------------------------------
REVOKE UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA public FROM vem_ingest;
REVOKE UPDATE (last_at, measured, evidence, severity) ON violations FROM vem_ingest;

ALTER TABLE violations ADD COLUMN plate_color text;

-- Merges verdicts (rows shaped like violations, as a JSON array) into violations: a new id is
-- inserted, a known one keeps its first_at and its highest severity, takes the latest last_at
-- and the measurement and evidence of the latest emission. Returns the rows inserted or merged.
CREATE FUNCTION vem_merge_violations(rows jsonb) RETURNS bigint
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
           measured = excluded.measured, evidence = excluded.evidence,
           severity = GREATEST(v.severity, excluded.severity);
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;
REVOKE EXECUTE ON FUNCTION vem_merge_violations(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION vem_merge_violations(jsonb) TO vem_ingest, vem_admin;

-- ---- plate and colour -> the one registered vehicle ---------------------------------------------

-- The region of the one vehicle registered with plate and colour (colour NULL: with the plate,
-- whatever its colour); NULL when none or more than one match. Runs as its owner: the answer
-- must count the vehicles of every region, not only those the caller may see.
CREATE FUNCTION vem_plate_region(p_plate text, p_color text) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    SELECT CASE WHEN pg_catalog.count(*) = 1 THEN pg_catalog.min(v.region_code) END
      FROM public.vehicles v
     WHERE v.plate = p_plate AND (p_color IS NULL OR v.plate_color = p_color)
$$;
REVOKE EXECUTE ON FUNCTION vem_plate_region(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION vem_plate_region(text, text) TO vem_agency, vem_admin, vem_ingest;

DROP POLICY own_regions ON rsd_readings;
CREATE POLICY own_regions ON rsd_readings FOR SELECT TO vem_agency
    USING (CASE WHEN vin IS NOT NULL
                THEN vin IN (SELECT v.vin FROM public.vehicles v) -- limited to own regions
                ELSE plate_color IS NOT NULL
                     AND public.vem_plate_region(plate, plate_color)
                         IN (SELECT public.vem_my_regions())
           END);

-- A violation takes the vehicle's plate and region from the registry when it does not say;
-- by plate only from a single vehicle with that plate (and colour, when known).
CREATE OR REPLACE FUNCTION violations_fill() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    matches bigint;
    one_vin text;
    one_region text;
BEGIN
    IF NEW.vin IS NOT NULL AND (NEW.region_code IS NULL OR NEW.plate IS NULL) THEN
        SELECT coalesce(NEW.plate, v.plate), coalesce(NEW.region_code, v.region_code),
               coalesce(NEW.plate_color, v.plate_color)
          INTO NEW.plate, NEW.region_code, NEW.plate_color
          FROM public.vehicles v WHERE v.vin = NEW.vin;
    ELSIF NEW.vin IS NULL AND NEW.region_code IS NULL THEN
        SELECT pg_catalog.count(*), pg_catalog.min(v.vin), pg_catalog.min(v.region_code)
          INTO matches, one_vin, one_region
          FROM public.vehicles v
         WHERE v.plate = NEW.plate
           AND (NEW.plate_color IS NULL OR v.plate_color = NEW.plate_color);
        IF matches = 1 THEN
            NEW.vin := one_vin;
            NEW.region_code := one_region;
        END IF;
    END IF;
    RETURN NEW;
END $$;

-- ---- the other functions: pinned search_path, qualified names -----------------------------------

CREATE OR REPLACE FUNCTION vem_my_regions() RETURNS SETOF text
LANGUAGE sql STABLE SET search_path = pg_catalog, public, pg_temp AS $$
    SELECT a.region_code FROM public.agency_regions a WHERE a.role_name = current_user
$$;

CREATE OR REPLACE FUNCTION vem_ensure_partitions(first date, last date) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    t text;
    d date;
    part text;
    n integer := 0;
BEGIN
    IF last - first > 3660 THEN
        RAISE EXCEPTION 'vem_ensure_partitions: % days asked for', last - first + 1;
    END IF;
    FOR t IN SELECT p.table_name FROM public.partitioned_tables p LOOP
        d := first;
        WHILE d <= last LOOP
            part := t || '_p' || pg_catalog.to_char(d, 'YYYYMMDD');
            IF pg_catalog.to_regclass(pg_catalog.format('public.%I', part)) IS NULL THEN
                EXECUTE pg_catalog.format(
                    'CREATE TABLE public.%I PARTITION OF public.%I FOR VALUES FROM (%L) TO (%L)',
                    part, t, (d::timestamp AT TIME ZONE 'Asia/Shanghai'),
                    ((d + 1)::timestamp AT TIME ZONE 'Asia/Shanghai'));
                n := n + 1;
            END IF;
            d := d + 1;
        END LOOP;
    END LOOP;
    RETURN n;
END $$;

CREATE OR REPLACE FUNCTION vem_drop_partitions(before date) RETURNS SETOF text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    r record;
BEGIN
    FOR r IN
        SELECT c.relname
          FROM pg_catalog.pg_inherits i
          JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
          JOIN pg_catalog.pg_class p ON p.oid = i.inhparent
          JOIN pg_catalog.pg_namespace s ON s.oid = p.relnamespace AND s.nspname = 'public'
          JOIN public.partitioned_tables t ON t.table_name = p.relname
         WHERE c.relname ~ '_p[0-9]{8}$'
           AND pg_catalog.to_date(pg_catalog.right(c.relname, 8), 'YYYYMMDD') < before
         ORDER BY c.relname
    LOOP
        EXECUTE pg_catalog.format('DROP TABLE public.%I', r.relname);
        RETURN NEXT r.relname;
    END LOOP;
END $$;
