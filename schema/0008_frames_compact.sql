-- 0008_frames_compact — cheaper decoding of obd_frames' samples; same columns, types and values.
--
-- One vehicle's hour with every column took ~27 ms (bench-query, p50), above the 20 ms goal.
-- EXPLAIN ANALYZE of it (1 M samples, no output) split the executor's ~10 ms as: ~2.1 ms in
-- the time filter alone, ~50 ns per 16-bit field and ~130 ns per position per sample; the
-- rest is the client's (PostgreSQL's text output of 150,000 values and libpq). What the
-- executor did more than needed, and what this migration removes:
--
--   * the sample's offset was i * rec_len, recomputed at every get_byte (one multiplication
--     per byte read): generate_series now steps by rec_len and yields the offset itself;
--   * the helpers vem_fu16(b, o + 8) inlined to get_byte(b, (o + 8) + 1): one addition more
--     per byte after the first; vem_be16(b, o, 8) folds the constants to get_byte(b, o + 9);
--   * sample_time (4 bytes, a 64-bit sum, a float8 times an interval, a timestamp addition)
--     was computed three times per sample, twice in the WHERE of vem_samples and once in its
--     output; a lateral subquery kept apart by OFFSET 0 computes it once, and the filter
--     compares the value it returns.
--
-- The records stay as 0007 wrote them (daemon/pgrows.c), so nothing is converted: the view is
-- replaced in place (same name, same columns) and every function reading it follows.
--
-- Storage: PostgreSQL compresses a value only when the row passes TOAST_TUPLE_THRESHOLD
-- (~2 kB) whatever the table's toast_tuple_target (PostgreSQL 15: heap_prepare_insert tests
-- the fixed threshold); a frame row is ~550 bytes, so lz4 with toast_tuple_target = 128 left
-- rows of 464-byte bytea values uncompressed (checked on this server), and no storage setting
-- is made here.

-- n-byte big-endian unsigned at b[o + k], NULL for all ones (no measurement). Plain SQL,
-- inlined: with k a constant, o + k and o + (k + 1) fold to one addition each.
CREATE FUNCTION public.vem_be8(b bytea, o integer, k integer) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT nullif(pg_catalog.get_byte(b, o + k), 255)
$$;
CREATE FUNCTION public.vem_be16(b bytea, o integer, k integer) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT nullif(pg_catalog.get_byte(b, o + k) * 256 + pg_catalog.get_byte(b, o + (k + 1)),
                  65535)
$$;
CREATE FUNCTION public.vem_be32(b bytea, o integer, k integer) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT nullif(pg_catalog.get_byte(b, o + k)::bigint * 16777216
                  + pg_catalog.get_byte(b, o + (k + 1)) * 65536
                  + pg_catalog.get_byte(b, o + (k + 2)) * 256
                  + pg_catalog.get_byte(b, o + (k + 3)), 4294967295)
$$;
-- A position (lon, lat) at b[o + k]: 1e-6 degree, bit 31 the southern/western hemisphere.
CREATE FUNCTION public.vem_bepos(b bytea, o integer, k integer) RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN pg_catalog.get_byte(b, o + k) >= 128
                THEN -((public.vem_be32(b, o, k) - 2147483648)::float8 / 1e6::float8)
                ELSE public.vem_be32(b, o, k)::float8 / 1e6::float8 END
$$;

-- The same columns as 0007's view, each value by the same expression (the same float8): only
-- the way to the bytes changed.
CREATE OR REPLACE VIEW public.obd_frame_samples WITH (security_invoker = true) AS
SELECT f.vin,
       s.sample_time,
       pg_catalog.get_byte(f.samples, s.o + 4)::smallint AS block_idx,
       f.received_at,
       pg_catalog.get_byte(f.samples, s.o + 6) * 256
           + pg_catalog.get_byte(f.samples, s.o + 7) AS frame_seq,
       f.resent,
       CASE pg_catalog.get_byte(f.samples, s.o + 5)
           WHEN 2 THEN 'stream' WHEN 3 THEN 'twc' WHEN 5 THEN 'twc_nox'
           WHEN 4 THEN 'hybrid' WHEN 128 THEN 'supplementary' END AS block_type,
       (public.vem_be16(f.samples, s.o, 8)::bigint * 390625)::float8 / 1e8::float8 AS speed_kmh,
       (public.vem_be8(f.samples, s.o, 10) * 5)::float8 / 10::float8 AS baro_kpa,
       public.vem_be8(f.samples, s.o, 11) - 125 AS torque_pct,
       public.vem_be8(f.samples, s.o, 12) - 125 AS friction_pct,
       (public.vem_be16(f.samples, s.o, 13) * 125)::float8 / 1000::float8 AS engine_rpm,
       (public.vem_be16(f.samples, s.o, 15) * 5)::float8 / 100::float8 AS fuel_rate_lph,
       (public.vem_be16(f.samples, s.o, 17) * 5 - 20000)::float8 / 100::float8 AS nox_up_ppm,
       (public.vem_be16(f.samples, s.o, 19) * 5 - 20000)::float8 / 100::float8 AS nox_down_ppm,
       (public.vem_be8(f.samples, s.o, 21) * 4)::float8 / 10::float8 AS reagent_pct,
       (public.vem_be16(f.samples, s.o, 22) * 5)::float8 / 100::float8 AS intake_air_kgph,
       (public.vem_be16(f.samples, s.o, 24) * 3125 - 27300000)::float8 / 1e5::float8
           AS scr_in_c,
       (public.vem_be16(f.samples, s.o, 26) * 3125 - 27300000)::float8 / 1e5::float8
           AS scr_out_c,
       public.vem_be16(f.samples, s.o, 28)::float8 / 10::float8 AS dpf_dp_kpa,
       public.vem_be8(f.samples, s.o, 30) - 40 AS coolant_c,
       (public.vem_be8(f.samples, s.o, 31) * 4)::float8 / 10::float8 AS fuel_level_pct,
       (public.vem_be16(f.samples, s.o, 32) & 1) = 0 AS pos_valid,
       public.vem_bepos(f.samples, s.o, 34) AS lon,
       public.vem_bepos(f.samples, s.o, 38) AS lat,
       public.vem_be32(f.samples, s.o, 42)::float8 / 10::float8 AS odometer_km,
       -- two-way catalyst blocks (records of 68 bytes and more)
       CASE WHEN f.rec_len >= 68
            THEN (public.vem_be16(f.samples, s.o, 63) * 305)::float8 / 1e7::float8 END AS o2_up,
       CASE WHEN f.rec_len >= 68
            THEN public.vem_be8(f.samples, s.o, 65)::float8 / 100::float8 END AS o2_down_v,
       CASE WHEN f.rec_len >= 68
            THEN (public.vem_be16(f.samples, s.o, 66) * 3125 - 27300000)::float8 / 1e5::float8
       END AS catalyst_c,
       -- hybrid block (records of 76 bytes)
       CASE WHEN f.rec_len >= 76 THEN public.vem_be16(f.samples, s.o, 68) END AS motor_rpm,
       CASE WHEN f.rec_len >= 76 THEN public.vem_be8(f.samples, s.o, 70) END AS motor_load_pct,
       CASE WHEN f.rec_len >= 76
            THEN public.vem_be16(f.samples, s.o, 71)::float8 / 10::float8 END AS battery_v,
       CASE WHEN f.rec_len >= 76
            THEN (public.vem_be16(f.samples, s.o, 73) - 10000)::float8 / 10::float8 END
           AS battery_a,
       CASE WHEN f.rec_len >= 76 THEN public.vem_be8(f.samples, s.o, 75) END AS soc_pct,
       -- supplementary block (records of 63 bytes and more)
       CASE WHEN f.rec_len >= 63 THEN public.vem_be8(f.samples, s.o, 46) END AS torque_mode,
       CASE WHEN f.rec_len >= 63
            THEN (public.vem_be8(f.samples, s.o, 47) * 4)::float8 / 10::float8 END AS pedal_pct,
       CASE WHEN f.rec_len >= 63
            THEN (public.vem_be32(f.samples, s.o, 48) * 5)::float8 / 10::float8 END
           AS fuel_total_l,
       CASE WHEN f.rec_len >= 63 THEN public.vem_be8(f.samples, s.o, 52) - 40 END AS urea_tank_c,
       CASE WHEN f.rec_len >= 63 THEN public.vem_be32(f.samples, s.o, 53) END AS urea_dose,
       CASE WHEN f.rec_len >= 63 THEN public.vem_be32(f.samples, s.o, 57) END AS urea_total,
       CASE WHEN f.rec_len >= 63
            THEN (public.vem_be16(f.samples, s.o, 61) * 3125 - 27300000)::float8 / 1e5::float8
       END AS dpf_exhaust_c,
       pg_catalog.string_to_array(f.invalid[s.o / f.rec_len + 1], ',') AS invalid,
       pg_catalog.string_to_array(f.abnormal[s.o / f.rec_len + 1], ',') AS abnormal,
       f.frame_time, f.wide
  FROM public.obd_frames f
 -- each record's byte offset o and its sample's time, computed once: a signed 32-bit offset
 -- from the frame's time in seconds. Kept apart by OFFSET 0, so a bound on sample_time is
 -- checked against the value, and the planner counts the bound's selectivity on the series
 -- (without it, it took 1,000 samples a frame, costed past jit_above_cost and compiled)
 CROSS JOIN LATERAL (SELECT g.o,
                            f.frame_time
                            + (pg_catalog.get_byte(f.samples, g.o)::bigint * 16777216
                               + pg_catalog.get_byte(f.samples, g.o + 1) * 65536
                               + pg_catalog.get_byte(f.samples, g.o + 2) * 256
                               + pg_catalog.get_byte(f.samples, g.o + 3)
                               - CASE WHEN pg_catalog.get_byte(f.samples, g.o) >= 128
                                      THEN 4294967296 ELSE 0 END) * interval '1 second'
                            AS sample_time
                       FROM pg_catalog.generate_series(0, (f.nsamples - 1) * f.rec_len::integer,
                                                       f.rec_len::integer) AS g(o)
                     OFFSET 0) s;
