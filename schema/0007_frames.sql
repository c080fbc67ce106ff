-- 0007_frames — one row per frame: a frame's samples packed in one bytea, read as obd_samples.
--
-- A row per 1 Hz sample, each with its own unique-index entry and heap tuple, made the COPY
-- backend the bottleneck and cost ~325 bytes per sample. Now the sink writes one obd_frames row
-- per real-time or re-sent frame: its key is the frame's natural key (vin, frame_time), which
-- an HJ 1239 re-send repeats, and its samples are fixed records of the raw wire values
-- (daemon/pgrows.c describes the layout). obd_samples becomes a view with today's columns,
-- names, types and values, so vemctl, vehicle_history, daily_completeness, row-level security
-- and agency SQL read samples as before.
--
-- A time bound on obd_samples.sample_time cannot reach the frame index (the planner cannot
-- derive frame_time from it): vem_samples(vin, from, to) adds the bound frame_time within
-- VEM_PGROWS_FRAME_SPAN_S (3600 s) of the range, and finds the rare "wide" frames (a sample
-- more than that from the frame's time) through a partial index of their own. Use it for one
-- vehicle's samples over a time range.
--
-- The old table stays as obd_samples_rows with its rows and partitions (renamed
-- obd_samples_rows_pYYYYMMDD); the view shows them beside the frames, and an INSERT into
-- obd_samples lands there (tools and back-fills that insert samples keep working).
--
-- Every name is schema-qualified, so the file composes with a search_path of
-- pg_catalog, public, pg_temp and without CREATE on public for other roles.

-- ---- the old table: renamed with its partitions -----------------------------------------------

DO $$
DECLARE
    r record;
BEGIN
    FOR r IN
        SELECT c.relname
          FROM pg_catalog.pg_inherits i
          JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = 'public.obd_samples'::regclass
    LOOP
        EXECUTE format('ALTER TABLE public.%I RENAME TO %I', r.relname,
                       'obd_samples_rows_' || substr(r.relname, length('obd_samples_') + 1));
    END LOOP;
END $$;
ALTER TABLE public.obd_samples RENAME TO obd_samples_rows;
UPDATE public.partitioned_tables SET table_name = 'obd_samples_rows'
 WHERE table_name = 'obd_samples';

-- ---- frames ------------------------------------------------------------------------------------

CREATE TABLE public.obd_frames (
    vin             text NOT NULL,
    frame_time      timestamptz NOT NULL,
    received_at     timestamptz NOT NULL,
    frame_seq       integer NOT NULL,       -- the frame's serial
    resent          boolean NOT NULL,       -- an HJ 1239 re-send (0x03)
    nsamples        smallint NOT NULL CHECK (nsamples > 0),
    rec_len         smallint NOT NULL CHECK (rec_len IN (46, 63, 68, 76)), -- bytes per sample
    wide            boolean NOT NULL,       -- a sample lies more than 3600 s from frame_time
    samples         bytea NOT NULL CHECK (octet_length(samples) = rec_len * nsamples),
    invalid         text[],                 -- per sample: its invalid fields, comma-joined
    abnormal        text[],                 -- ... its abnormal fields
    UNIQUE (vin, frame_time)
) PARTITION BY RANGE (frame_time);
INSERT INTO public.partitioned_tables VALUES ('obd_frames');

-- The wide frames, with the span of their samples: how vem_samples finds them without probing
-- every partition. Kept by a trigger that fires only for wide rows (an AFTER trigger leaves
-- COPY's multi-row inserts alone). Not partitioned: such frames are rare.
CREATE TABLE public.obd_wide_frames (
    vin             text NOT NULL,
    frame_time      timestamptz NOT NULL,
    first_time      timestamptz NOT NULL,   -- its earliest sample
    last_time       timestamptz NOT NULL,   -- its latest sample
    PRIMARY KEY (vin, frame_time)
);
CREATE INDEX obd_wide_frames_span ON public.obd_wide_frames (vin, first_time);

-- Big-endian unsigned integers of a record; NULL for all ones (no measurement). Plain SQL,
-- immutable: the planner inlines them into the view.
CREATE FUNCTION public.vem_fu8(b bytea, o integer) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT nullif(pg_catalog.get_byte(b, o), 255)
$$;
CREATE FUNCTION public.vem_fu16(b bytea, o integer) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT nullif(pg_catalog.get_byte(b, o) * 256 + pg_catalog.get_byte(b, o + 1), 65535)
$$;
CREATE FUNCTION public.vem_fu32(b bytea, o integer) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT nullif(pg_catalog.get_byte(b, o)::bigint * 16777216
                  + pg_catalog.get_byte(b, o + 1) * 65536
                  + pg_catalog.get_byte(b, o + 2) * 256 + pg_catalog.get_byte(b, o + 3),
                  4294967295)
$$;
-- A position (lon, lat): 1e-6 degree, bit 31 the southern/western hemisphere.
CREATE FUNCTION public.vem_fpos(b bytea, o integer) RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN pg_catalog.get_byte(b, o) >= 128
                THEN -((public.vem_fu32(b, o) - 2147483648)::float8 / 1e6::float8)
                ELSE public.vem_fu32(b, o)::float8 / 1e6::float8 END
$$;

-- The samples of every frame with the frame's key and wide flag. Each value is today's:
-- (raw * M + A) / 10^decimals with the field's integers M, A (pgrows.c), an integer field
-- raw + offset; NULL when the record holds no measurement.
CREATE VIEW public.obd_frame_samples WITH (security_invoker = true) AS
SELECT f.vin,
       f.frame_time + (pg_catalog.get_byte(f.samples, s.o)::bigint * 16777216
                       + pg_catalog.get_byte(f.samples, s.o + 1) * 65536
                       + pg_catalog.get_byte(f.samples, s.o + 2) * 256
                       + pg_catalog.get_byte(f.samples, s.o + 3)
                       - CASE WHEN pg_catalog.get_byte(f.samples, s.o) >= 128
                              THEN 4294967296 ELSE 0 END) * interval '1 second' AS sample_time,
       pg_catalog.get_byte(f.samples, s.o + 4)::smallint AS block_idx,
       f.received_at,
       pg_catalog.get_byte(f.samples, s.o + 6) * 256
           + pg_catalog.get_byte(f.samples, s.o + 7) AS frame_seq,
       f.resent,
       CASE pg_catalog.get_byte(f.samples, s.o + 5)
           WHEN 2 THEN 'stream' WHEN 3 THEN 'twc' WHEN 5 THEN 'twc_nox'
           WHEN 4 THEN 'hybrid' WHEN 128 THEN 'supplementary' END AS block_type,
       (public.vem_fu16(f.samples, s.o + 8)::bigint * 390625)::float8 / 1e8::float8 AS speed_kmh,
       (public.vem_fu8(f.samples, s.o + 10) * 5)::float8 / 10::float8 AS baro_kpa,
       public.vem_fu8(f.samples, s.o + 11) - 125 AS torque_pct,
       public.vem_fu8(f.samples, s.o + 12) - 125 AS friction_pct,
       (public.vem_fu16(f.samples, s.o + 13) * 125)::float8 / 1000::float8 AS engine_rpm,
       (public.vem_fu16(f.samples, s.o + 15) * 5)::float8 / 100::float8 AS fuel_rate_lph,
       (public.vem_fu16(f.samples, s.o + 17) * 5 - 20000)::float8 / 100::float8 AS nox_up_ppm,
       (public.vem_fu16(f.samples, s.o + 19) * 5 - 20000)::float8 / 100::float8 AS nox_down_ppm,
       (public.vem_fu8(f.samples, s.o + 21) * 4)::float8 / 10::float8 AS reagent_pct,
       (public.vem_fu16(f.samples, s.o + 22) * 5)::float8 / 100::float8 AS intake_air_kgph,
       (public.vem_fu16(f.samples, s.o + 24) * 3125 - 27300000)::float8 / 1e5::float8
           AS scr_in_c,
       (public.vem_fu16(f.samples, s.o + 26) * 3125 - 27300000)::float8 / 1e5::float8
           AS scr_out_c,
       public.vem_fu16(f.samples, s.o + 28)::float8 / 10::float8 AS dpf_dp_kpa,
       public.vem_fu8(f.samples, s.o + 30) - 40 AS coolant_c,
       (public.vem_fu8(f.samples, s.o + 31) * 4)::float8 / 10::float8 AS fuel_level_pct,
       (public.vem_fu16(f.samples, s.o + 32) & 1) = 0 AS pos_valid,
       public.vem_fpos(f.samples, s.o + 34) AS lon,
       public.vem_fpos(f.samples, s.o + 38) AS lat,
       public.vem_fu32(f.samples, s.o + 42)::float8 / 10::float8 AS odometer_km,
       -- two-way catalyst blocks (records of 68 bytes and more)
       CASE WHEN f.rec_len >= 68
            THEN (public.vem_fu16(f.samples, s.o + 63) * 305)::float8 / 1e7::float8 END AS o2_up,
       CASE WHEN f.rec_len >= 68
            THEN public.vem_fu8(f.samples, s.o + 65)::float8 / 100::float8 END AS o2_down_v,
       CASE WHEN f.rec_len >= 68
            THEN (public.vem_fu16(f.samples, s.o + 66) * 3125 - 27300000)::float8 / 1e5::float8
       END AS catalyst_c,
       -- hybrid block (records of 76 bytes)
       CASE WHEN f.rec_len >= 76 THEN public.vem_fu16(f.samples, s.o + 68) END AS motor_rpm,
       CASE WHEN f.rec_len >= 76 THEN public.vem_fu8(f.samples, s.o + 70) END AS motor_load_pct,
       CASE WHEN f.rec_len >= 76
            THEN public.vem_fu16(f.samples, s.o + 71)::float8 / 10::float8 END AS battery_v,
       CASE WHEN f.rec_len >= 76
            THEN (public.vem_fu16(f.samples, s.o + 73) - 10000)::float8 / 10::float8 END
           AS battery_a,
       CASE WHEN f.rec_len >= 76 THEN public.vem_fu8(f.samples, s.o + 75) END AS soc_pct,
       -- supplementary block (records of 63 bytes and more)
       CASE WHEN f.rec_len >= 63 THEN public.vem_fu8(f.samples, s.o + 46) END AS torque_mode,
       CASE WHEN f.rec_len >= 63
            THEN (public.vem_fu8(f.samples, s.o + 47) * 4)::float8 / 10::float8 END AS pedal_pct,
       CASE WHEN f.rec_len >= 63
            THEN (public.vem_fu32(f.samples, s.o + 48) * 5)::float8 / 10::float8 END
           AS fuel_total_l,
       CASE WHEN f.rec_len >= 63 THEN public.vem_fu8(f.samples, s.o + 52) - 40 END AS urea_tank_c,
       CASE WHEN f.rec_len >= 63 THEN public.vem_fu32(f.samples, s.o + 53) END AS urea_dose,
       CASE WHEN f.rec_len >= 63 THEN public.vem_fu32(f.samples, s.o + 57) END AS urea_total,
       CASE WHEN f.rec_len >= 63
            THEN (public.vem_fu16(f.samples, s.o + 61) * 3125 - 27300000)::float8 / 1e5::float8
       END AS dpf_exhaust_c,
       pg_catalog.string_to_array(f.invalid[s.i + 1], ',') AS invalid,
       pg_catalog.string_to_array(f.abnormal[s.i + 1], ',') AS abnormal,
       f.frame_time, f.wide
  FROM public.obd_frames f
 CROSS JOIN LATERAL (SELECT i, i * f.rec_len AS o
                       FROM pg_catalog.generate_series(0, f.nsamples - 1) AS g(i)) s;

-- Every sample, as the table obd_samples had them: the frames', then the old rows'.
CREATE VIEW public.obd_samples WITH (security_invoker = true) AS
SELECT vin, sample_time, block_idx, received_at, frame_seq, resent, block_type, speed_kmh,
       baro_kpa, torque_pct, friction_pct, engine_rpm, fuel_rate_lph, nox_up_ppm, nox_down_ppm,
       reagent_pct, intake_air_kgph, scr_in_c, scr_out_c, dpf_dp_kpa, coolant_c, fuel_level_pct,
       pos_valid, lon, lat, odometer_km, o2_up, o2_down_v, catalyst_c, motor_rpm, motor_load_pct,
       battery_v, battery_a, soc_pct, torque_mode, pedal_pct, fuel_total_l, urea_tank_c,
       urea_dose, urea_total, dpf_exhaust_c, invalid, abnormal
  FROM public.obd_frame_samples
UNION ALL
SELECT vin, sample_time, block_idx, received_at, frame_seq, resent, block_type, speed_kmh,
       baro_kpa, torque_pct, friction_pct, engine_rpm, fuel_rate_lph, nox_up_ppm, nox_down_ppm,
       reagent_pct, intake_air_kgph, scr_in_c, scr_out_c, dpf_dp_kpa, coolant_c, fuel_level_pct,
       pos_valid, lon, lat, odometer_km, o2_up, o2_down_v, catalyst_c, motor_rpm, motor_load_pct,
       battery_v, battery_a, soc_pct, torque_mode, pedal_pct, fuel_total_l, urea_tank_c,
       urea_dose, urea_total, dpf_exhaust_c, invalid, abnormal
  FROM public.obd_samples_rows;

-- Samples inserted through the view are kept as rows of the old table.
CREATE FUNCTION public.vem_obd_samples_insert() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    INSERT INTO public.obd_samples_rows SELECT NEW.*;
    RETURN NEW;
END $$;
CREATE TRIGGER obd_samples_insert INSTEAD OF INSERT ON public.obd_samples
    FOR EACH ROW EXECUTE FUNCTION public.vem_obd_samples_insert();

CREATE FUNCTION public.vem_obd_frames_wide() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    INSERT INTO public.obd_wide_frames
    SELECT NEW.vin, NEW.frame_time, min(s.sample_time), max(s.sample_time)
      FROM public.obd_frame_samples s
     WHERE s.vin = NEW.vin AND s.frame_time = NEW.frame_time
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;
CREATE TRIGGER obd_frames_wide AFTER INSERT ON public.obd_frames
    FOR EACH ROW WHEN (NEW.wide) EXECUTE FUNCTION public.vem_obd_frames_wide();

-- The samples of one frame. PL/pgSQL, so that it is planned on its own, for its one frame: a
-- query that calls it for the wide frames it found does not plan a scan of every partition.
CREATE FUNCTION public.vem_frame_samples(p_vin text, p_frame_time timestamptz)
RETURNS SETOF public.obd_samples
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    RETURN QUERY
    SELECT vin, sample_time, block_idx, received_at, frame_seq, resent, block_type, speed_kmh,
           baro_kpa, torque_pct, friction_pct, engine_rpm, fuel_rate_lph, nox_up_ppm,
           nox_down_ppm, reagent_pct, intake_air_kgph, scr_in_c, scr_out_c, dpf_dp_kpa,
           coolant_c, fuel_level_pct, pos_valid, lon, lat, odometer_km, o2_up, o2_down_v,
           catalyst_c, motor_rpm, motor_load_pct, battery_v, battery_a, soc_pct, torque_mode,
           pedal_pct, fuel_total_l, urea_tank_c, urea_dose, urea_total, dpf_exhaust_c, invalid,
           abnormal
      FROM public.obd_frame_samples s
     WHERE s.vin = p_vin AND s.frame_time = p_frame_time;
END $$;

-- One vehicle's samples with sample_time in [t_from, t_to): the query by VIN and time range
-- that prunes partitions and uses (vin, frame_time). Plain SQL, inlined into the caller's
-- query, running with the caller's rights (row-level security applies).
CREATE FUNCTION public.vem_samples(p_vin text, t_from timestamptz, t_to timestamptz)
RETURNS SETOF public.obd_samples
LANGUAGE sql STABLE AS $$
    SELECT vin, sample_time, block_idx, received_at, frame_seq, resent, block_type, speed_kmh,
           baro_kpa, torque_pct, friction_pct, engine_rpm, fuel_rate_lph, nox_up_ppm,
           nox_down_ppm, reagent_pct, intake_air_kgph, scr_in_c, scr_out_c, dpf_dp_kpa,
           coolant_c, fuel_level_pct, pos_valid, lon, lat, odometer_km, o2_up, o2_down_v,
           catalyst_c, motor_rpm, motor_load_pct, battery_v, battery_a, soc_pct, torque_mode,
           pedal_pct, fuel_total_l, urea_tank_c, urea_dose, urea_total, dpf_exhaust_c, invalid,
           abnormal
      FROM public.obd_frame_samples
     WHERE vin = p_vin AND sample_time >= t_from AND sample_time < t_to
       AND frame_time >= t_from - interval '3600 s' AND frame_time < t_to + interval '3600 s'
    UNION ALL
    SELECT s.vin, s.sample_time, s.block_idx, s.received_at, s.frame_seq, s.resent,
           s.block_type, s.speed_kmh, s.baro_kpa, s.torque_pct, s.friction_pct, s.engine_rpm,
           s.fuel_rate_lph, s.nox_up_ppm, s.nox_down_ppm, s.reagent_pct, s.intake_air_kgph,
           s.scr_in_c, s.scr_out_c, s.dpf_dp_kpa, s.coolant_c, s.fuel_level_pct, s.pos_valid,
           s.lon, s.lat, s.odometer_km, s.o2_up, s.o2_down_v, s.catalyst_c, s.motor_rpm,
           s.motor_load_pct, s.battery_v, s.battery_a, s.soc_pct, s.torque_mode, s.pedal_pct,
           s.fuel_total_l, s.urea_tank_c, s.urea_dose, s.urea_total, s.dpf_exhaust_c, s.invalid,
           s.abnormal
      FROM public.obd_wide_frames w
     CROSS JOIN LATERAL public.vem_frame_samples(w.vin, w.frame_time) s
     WHERE w.vin = p_vin AND w.first_time < t_to AND w.last_time >= t_from
       AND s.sample_time >= t_from AND s.sample_time < t_to
       AND NOT (w.frame_time >= t_from - interval '3600 s'
                AND w.frame_time < t_to + interval '3600 s')
    UNION ALL
    SELECT * FROM public.obd_samples_rows
     WHERE vin = p_vin AND sample_time >= t_from AND sample_time < t_to
$$;

-- Every vehicle's samples with sample_time in [t_from, t_to): the same bound as vem_samples,
-- for a day of the whole fleet (daily completeness reads the day's partitions, not all).
CREATE FUNCTION public.vem_samples_between(t_from timestamptz, t_to timestamptz)
RETURNS SETOF public.obd_samples
LANGUAGE sql STABLE AS $$
    SELECT vin, sample_time, block_idx, received_at, frame_seq, resent, block_type, speed_kmh,
           baro_kpa, torque_pct, friction_pct, engine_rpm, fuel_rate_lph, nox_up_ppm,
           nox_down_ppm, reagent_pct, intake_air_kgph, scr_in_c, scr_out_c, dpf_dp_kpa,
           coolant_c, fuel_level_pct, pos_valid, lon, lat, odometer_km, o2_up, o2_down_v,
           catalyst_c, motor_rpm, motor_load_pct, battery_v, battery_a, soc_pct, torque_mode,
           pedal_pct, fuel_total_l, urea_tank_c, urea_dose, urea_total, dpf_exhaust_c, invalid,
           abnormal
      FROM public.obd_frame_samples
     WHERE sample_time >= t_from AND sample_time < t_to
       AND frame_time >= t_from - interval '3600 s' AND frame_time < t_to + interval '3600 s'
    UNION ALL
    SELECT s.*
      FROM public.obd_wide_frames w
     CROSS JOIN LATERAL public.vem_frame_samples(w.vin, w.frame_time) s
     WHERE w.first_time < t_to AND w.last_time >= t_from
       AND s.sample_time >= t_from AND s.sample_time < t_to
       AND NOT (w.frame_time >= t_from - interval '3600 s'
                AND w.frame_time < t_to + interval '3600 s')
    UNION ALL
    SELECT * FROM public.obd_samples_rows
     WHERE sample_time >= t_from AND sample_time < t_to
$$;

-- One vehicle's latest n samples (of its latest n frames, and of the old rows), newest first:
-- what `vemctl vehicle` shows, read from the newest partitions only.
CREATE FUNCTION public.vem_recent_samples(p_vin text, n integer)
RETURNS SETOF public.obd_samples
LANGUAGE sql STABLE AS $$
    SELECT * FROM (
        SELECT vin, sample_time, block_idx, received_at, frame_seq, resent, block_type,
               speed_kmh, baro_kpa, torque_pct, friction_pct, engine_rpm, fuel_rate_lph,
               nox_up_ppm, nox_down_ppm, reagent_pct, intake_air_kgph, scr_in_c, scr_out_c,
               dpf_dp_kpa, coolant_c, fuel_level_pct, pos_valid, lon, lat, odometer_km, o2_up,
               o2_down_v, catalyst_c, motor_rpm, motor_load_pct, battery_v, battery_a, soc_pct,
               torque_mode, pedal_pct, fuel_total_l, urea_tank_c, urea_dose, urea_total,
               dpf_exhaust_c, invalid, abnormal
          FROM public.obd_frame_samples
         WHERE vin = p_vin
           AND frame_time >= (SELECT min(l.frame_time)
                                FROM (SELECT frame_time FROM public.obd_frames
                                       WHERE vin = p_vin ORDER BY frame_time DESC LIMIT n) l)
        UNION ALL
        (SELECT * FROM public.obd_samples_rows WHERE vin = p_vin
          ORDER BY sample_time DESC, block_idx DESC LIMIT n)
    ) u
    ORDER BY sample_time DESC, block_idx DESC
    LIMIT n
$$;

-- ---- rights: as obd_samples had them ------------------------------------------------------

GRANT SELECT, INSERT ON public.obd_frames TO vem_ingest;
GRANT SELECT ON public.obd_frames TO vem_agency;
GRANT SELECT, INSERT, UPDATE, DELETE ON public.obd_frames TO vem_admin;
GRANT SELECT ON public.obd_frame_samples, public.obd_samples TO vem_ingest, vem_agency, vem_admin;
GRANT INSERT ON public.obd_samples TO vem_ingest, vem_admin;
GRANT SELECT, INSERT ON public.obd_wide_frames TO vem_ingest;
GRANT SELECT ON public.obd_wide_frames TO vem_agency;
GRANT SELECT, INSERT, UPDATE, DELETE ON public.obd_wide_frames TO vem_admin;

ALTER TABLE public.obd_frames ENABLE ROW LEVEL SECURITY;
CREATE POLICY all_rows ON public.obd_frames TO vem_ingest, vem_admin USING (true) WITH CHECK (true);
CREATE POLICY own_regions ON public.obd_frames FOR SELECT TO vem_agency
    USING (vin IN (SELECT vin FROM public.vehicles));
ALTER TABLE public.obd_wide_frames ENABLE ROW LEVEL SECURITY;
CREATE POLICY all_rows ON public.obd_wide_frames TO vem_ingest, vem_admin
    USING (true) WITH CHECK (true);
CREATE POLICY own_regions ON public.obd_wide_frames FOR SELECT TO vem_agency
    USING (vin IN (SELECT vin FROM public.vehicles));

-- ---- the enforcement views, bound to the new obd_samples --------------------------------------
-- (a rename carries a view along to the renamed table; these read the view again)

CREATE OR REPLACE VIEW public.vehicle_history WITH (security_invoker = true) AS
WITH days AS (
    SELECT vin, (sample_time AT TIME ZONE 'Asia/Shanghai')::date AS day,
           count(*) AS samples,
           min(sample_time) AS first_at, max(sample_time) AS last_at,
           max(odometer_km) - min(odometer_km) AS distance_km,
           max(speed_kmh) AS max_speed_kmh,
           avg(nox_down_ppm) AS avg_nox_down_ppm,
           max(nox_down_ppm) AS max_nox_down_ppm
      FROM public.obd_samples
     GROUP BY 1, 2
), obd AS (
    SELECT vin, (info_time AT TIME ZONE 'Asia/Shanghai')::date AS day,
           bool_or(mil) AS mil_on, max(dtc_count) AS max_dtc_count
      FROM public.obd_info
     GROUP BY 1, 2
), viol AS (
    SELECT vin, (first_at AT TIME ZONE 'Asia/Shanghai')::date AS day, count(*) AS violations
      FROM public.violations
     WHERE vin IS NOT NULL
     GROUP BY 1, 2
)
SELECT d.vin, r.plate, r.region_code, d.day, d.samples, d.first_at, d.last_at, d.distance_km,
       d.max_speed_kmh, d.avg_nox_down_ppm, d.max_nox_down_ppm,
       coalesce(o.mil_on, false) AS mil_on, o.max_dtc_count,
       coalesce(x.violations, 0) AS violations
  FROM days d
  LEFT JOIN public.vehicles r ON r.vin = d.vin
  LEFT JOIN obd o ON o.vin = d.vin AND o.day = d.day
  LEFT JOIN viol x ON x.vin = d.vin AND x.day = d.day;

CREATE OR REPLACE VIEW public.daily_completeness WITH (security_invoker = true) AS
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
  FROM public.obd_samples s
  LEFT JOIN public.vehicles r ON r.vin = s.vin
 WHERE s.block_type IN ('stream', 'twc', 'twc_nox')
 GROUP BY s.vin, r.plate, r.region_code, 4;

-- ---- moving old rows into frames, a day at a time ----------------------------------------------

-- n big-endian bytes of v; all ones for NULL.
CREATE FUNCTION public.vem_raw(n integer, v bigint) RETURNS bytea
LANGUAGE sql IMMUTABLE AS $$
    SELECT pg_catalog.substr(pg_catalog.int8send(coalesce(v, -1)), 9 - n)
$$;

-- A position's hemisphere bit: below zero, -0 included (a southern 0.000000 keeps its sign).
CREATE FUNCTION public.vem_negative(v double precision) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(v < 0 OR v::text = '-0', false)
$$;

-- The record of one old row (the layout of daemon/pgrows.c, all 76 bytes): each value back to
-- its raw wire form, the inverse of the view's (raw * M + A) / 10^decimals; NULL as all ones.
CREATE FUNCTION public.vem_row_record(r public.obd_samples_rows, frame_time timestamptz)
RETURNS bytea LANGUAGE sql IMMUTABLE AS $$
    SELECT public.vem_raw(4, extract(epoch FROM r.sample_time - frame_time)::bigint)
        || public.vem_raw(1, r.block_idx)
        || public.vem_raw(1, CASE r.block_type WHEN 'stream' THEN 2 WHEN 'twc' THEN 3
                                 WHEN 'twc_nox' THEN 5 WHEN 'hybrid' THEN 4 ELSE 128 END)
        || public.vem_raw(2, r.frame_seq)
        || public.vem_raw(2, round(r.speed_kmh * 1e8::float8)::bigint / 390625)
        || public.vem_raw(1, round(r.baro_kpa * 10::float8)::bigint / 5)
        || public.vem_raw(1, r.torque_pct + 125)
        || public.vem_raw(1, r.friction_pct + 125)
        || public.vem_raw(2, round(r.engine_rpm * 1000::float8)::bigint / 125)
        || public.vem_raw(2, round(r.fuel_rate_lph * 100::float8)::bigint / 5)
        || public.vem_raw(2, (round(r.nox_up_ppm * 100::float8)::bigint + 20000) / 5)
        || public.vem_raw(2, (round(r.nox_down_ppm * 100::float8)::bigint + 20000) / 5)
        || public.vem_raw(1, round(r.reagent_pct * 10::float8)::bigint / 4)
        || public.vem_raw(2, round(r.intake_air_kgph * 100::float8)::bigint / 5)
        || public.vem_raw(2, (round(r.scr_in_c * 1e5::float8)::bigint + 27300000) / 3125)
        || public.vem_raw(2, (round(r.scr_out_c * 1e5::float8)::bigint + 27300000) / 3125)
        || public.vem_raw(2, round(r.dpf_dp_kpa * 10::float8)::bigint)
        || public.vem_raw(1, r.coolant_c + 40)
        || public.vem_raw(1, round(r.fuel_level_pct * 10::float8)::bigint / 4)
        || public.vem_raw(2, CASE WHEN r.pos_valid IS NOT NULL
                                  THEN (NOT r.pos_valid)::integer
                                       | public.vem_negative(r.lat)::integer << 1
                                       | public.vem_negative(r.lon)::integer << 2 END)
        || public.vem_raw(4, round(abs(r.lon) * 1e6::float8)::bigint
                             + CASE WHEN public.vem_negative(r.lon) THEN 2147483648 ELSE 0 END)
        || public.vem_raw(4, round(abs(r.lat) * 1e6::float8)::bigint
                             + CASE WHEN public.vem_negative(r.lat) THEN 2147483648 ELSE 0 END)
        || public.vem_raw(4, round(r.odometer_km * 10::float8)::bigint)
        || public.vem_raw(1, r.torque_mode)
        || public.vem_raw(1, round(r.pedal_pct * 10::float8)::bigint / 4)
        || public.vem_raw(4, round(r.fuel_total_l * 10::float8)::bigint / 5)
        || public.vem_raw(1, r.urea_tank_c + 40)
        || public.vem_raw(4, r.urea_dose)
        || public.vem_raw(4, r.urea_total)
        || public.vem_raw(2, (round(r.dpf_exhaust_c * 1e5::float8)::bigint + 27300000) / 3125)
        || public.vem_raw(2, round(r.o2_up * 1e7::float8)::bigint / 305)
        || public.vem_raw(1, round(r.o2_down_v * 100::float8)::bigint)
        || public.vem_raw(2, (round(r.catalyst_c * 1e5::float8)::bigint + 27300000) / 3125)
        || public.vem_raw(2, r.motor_rpm)
        || public.vem_raw(1, r.motor_load_pct)
        || public.vem_raw(2, round(r.battery_v * 10::float8)::bigint)
        || public.vem_raw(2, round(r.battery_a * 10::float8)::bigint + 10000)
        || public.vem_raw(1, r.soc_pct)
$$;

-- Moves the old rows of up to max_days Beijing days (oldest first) into obd_frames and drops
-- their partitions; moved says how many days. Each day is its own transaction (CALL it outside
-- one): stopped half way, it starts again at the first day still there. The rows of one frame
-- are those of one (vin, received_at, frame_seq); the old table kept no frame time, so a
-- frame's time is its latest sample's. A day whose frames would not all go in (two frames of a
-- vehicle ending on the same second, or a frame of that key already there) is refused with an
-- error and left as it was. Re-sent copies of moved frames arriving later are not recognised
-- (their samples would show twice): move only days older than pipeline.sample_past_days.
CREATE PROCEDURE public.vem_migrate_samples(max_days integer, INOUT moved integer DEFAULT 0)
LANGUAGE plpgsql AS $$
DECLARE
    part text;
    d date;
    rows_n bigint;
    stored bigint;
BEGIN
    moved := 0;
    FOR part IN
        SELECT c.relname
          FROM pg_catalog.pg_inherits i
          JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = 'public.obd_samples_rows'::regclass
           AND c.relname ~ '_p[0-9]{8}$'
         ORDER BY c.relname
    LOOP
        EXIT WHEN moved >= max_days;
        d := to_date(right(part, 8), 'YYYYMMDD');
        PERFORM public.vem_ensure_partitions(d, d);
        EXECUTE format('SELECT count(*) FROM public.%I', part) INTO rows_n;
        WITH x AS (
            SELECT s, max(s.sample_time) OVER w AS frame_time
              FROM public.obd_samples_rows s
             WHERE s.sample_time >= d::timestamp AT TIME ZONE 'Asia/Shanghai'
               AND s.sample_time < (d + 1)::timestamp AT TIME ZONE 'Asia/Shanghai'
            WINDOW w AS (PARTITION BY s.vin, s.received_at, s.frame_seq)
        ), ins AS (
            INSERT INTO public.obd_frames (vin, frame_time, received_at, frame_seq, resent,
                                           nsamples, rec_len, wide, samples, invalid, abnormal)
            SELECT (x.s).vin, x.frame_time, (x.s).received_at, (x.s).frame_seq,
                   bool_or((x.s).resent), count(*), 76,
                   x.frame_time - min((x.s).sample_time) > interval '3600 s',
                   string_agg(public.vem_row_record(x.s, x.frame_time), ''::bytea
                              ORDER BY (x.s).sample_time, (x.s).block_idx),
                   CASE WHEN bool_or((x.s).invalid IS NOT NULL)
                        THEN array_agg(array_to_string((x.s).invalid, ',')
                                       ORDER BY (x.s).sample_time, (x.s).block_idx) END,
                   CASE WHEN bool_or((x.s).abnormal IS NOT NULL)
                        THEN array_agg(array_to_string((x.s).abnormal, ',')
                                       ORDER BY (x.s).sample_time, (x.s).block_idx) END
              FROM x
             GROUP BY (x.s).vin, x.frame_time, (x.s).received_at, (x.s).frame_seq
            ON CONFLICT DO NOTHING
            RETURNING nsamples
        )
        SELECT coalesce(sum(nsamples), 0) INTO stored FROM ins;
        IF stored <> rows_n THEN
            RAISE EXCEPTION 'vem_migrate_samples: day %: % rows, but only % went into frames '
                            '(two frames of a vehicle ending on the same second, or frames of '
                            'the same key already stored); the day is left as it was',
                            d, rows_n, stored;
        END IF;
        EXECUTE format('DROP TABLE public.%I', part);
        moved := moved + 1;
        COMMIT;
    END LOOP;
END $$;
-- Run by the tables' owner (the role that migrates): dropping a partition takes ownership, and
-- a procedure that commits cannot be SECURITY DEFINER.
REVOKE EXECUTE ON PROCEDURE public.vem_migrate_samples(integer, integer) FROM PUBLIC;
