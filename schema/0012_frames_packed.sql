-- 0012_frames_packed — obd_frames' samples packed tighter; the same columns and values.
--
-- A diesel frame of ten samples made a 548-byte row: 14 rows a page, 63.8 MB a million
-- samples with the index, 5x less than a row per sample where 6x was the goal. What every
-- record repeated, and what this layout leaves out (daemon/pgrows.c has the byte map):
--
--   * each sample's 8-byte head (time offset, block idx, block type, serial): in almost every
--     frame the samples are one second (or no second) apart, in consecutive blocks of one
--     type, under the frame's serial, so a 16-byte frame head says it once, and a column
--     `meta` keeps the 8-byte heads only for a frame that is not so;
--   * lon, lat and odometer, 4 bytes each: a truck moves a few hundred of their units a
--     second, so each is a 16-bit difference from the frame's first value, held in the head;
--     a frame where one does not fit (or a signed zero) keeps them whole in a column `pos`.
--
-- The row is then 424 bytes: 19 a page. Values are decoded by the same expressions as 0008's,
-- each from its new place, so the view gives the same float8 (tests/it_frames.c compares it
-- with 0007's decoding, row text for row text). Existing rows are packed here, in one UPDATE:
-- 0007 is recent, and its tables hold days, not years. vem_migrate_samples packs what it moves.

ALTER TABLE public.obd_frames ADD COLUMN meta bytea, ADD COLUMN pos bytea;
ALTER TABLE public.obd_frames DROP CONSTRAINT obd_frames_rec_len_check,
                              DROP CONSTRAINT obd_frames_check;

-- Big-endian signed integers of n bytes at b[o] (all ones is -1 here, not "no value").
CREATE FUNCTION public.vem_bes32(b bytea, o integer) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT pg_catalog.get_byte(b, o)::bigint * 16777216 + pg_catalog.get_byte(b, o + 1) * 65536
           + pg_catalog.get_byte(b, o + 2) * 256 + pg_catalog.get_byte(b, o + 3)
           - CASE WHEN pg_catalog.get_byte(b, o) >= 128 THEN 4294967296 ELSE 0 END
$$;

-- The low n bytes of v, big-endian.
CREATE FUNCTION public.vem_low(n integer, v bigint) RETURNS bytea
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT pg_catalog.substr(pg_catalog.int8send(v), 9 - n)
$$;

-- The packed form of n full records of len bytes (0007's layout) of a frame with serial seq.
CREATE FUNCTION public.vem_pack_frame(full_recs bytea, len integer, n integer, seq integer,
                                      OUT samples bytea, OUT rec_len smallint, OUT meta bytea,
                                      OUT pos bytea)
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    dt0 bigint := public.vem_bes32(full_recs, 0);
    step bigint := CASE WHEN n > 1 THEN public.vem_bes32(full_recs, len) - dt0 ELSE 0 END;
    idx0 integer := get_byte(full_recs, 4);
    typ integer := get_byte(full_recs, 5);
    regular boolean;
    fits boolean := true;
    base bigint[] := ARRAY[NULL, NULL, NULL]::bigint[];
    vals bigint[];
    raw bigint;
    o integer;
BEGIN
    regular := dt0 >= -32768 AND idx0 < 128 AND step IN (0, 1) AND dt0 + step * (n - 1) <= 32767;
    meta := '';
    pos := '';
    FOR k IN 0 .. n - 1 LOOP
        o := k * len;
        meta := meta || substr(full_recs, o + 1, 8);
        pos := pos || substr(full_recs, o + 35, 12);
        regular := regular AND public.vem_bes32(full_recs, o) = dt0 + k * step
                   AND get_byte(full_recs, o + 4) = idx0 + k AND get_byte(full_recs, o + 5) = typ
                   AND get_byte(full_recs, o + 6) * 256 + get_byte(full_recs, o + 7) = seq;
        FOR w IN 1 .. 3 LOOP
            raw := public.vem_bes32(full_recs, o + 30 + 4 * w) & 4294967295;
            CONTINUE WHEN raw = 4294967295;
            IF w < 3 AND raw = 2147483648 THEN
                fits := false; -- a signed zero: only the whole form keeps it
                CONTINUE;
            END IF;
            IF w < 3 AND raw > 2147483648 THEN
                raw := 2147483648 - raw;
            END IF;
            base[w] := coalesce(base[w], raw);
            fits := fits AND abs(raw - base[w]) <= 32767;
        END LOOP;
    END LOOP;
    IF NOT regular THEN
        dt0 := 0; step := 0; idx0 := 0; typ := 0;
    END IF;
    IF NOT fits THEN
        base := ARRAY[0, 0, 0];
    END IF;
    samples := public.vem_low(4, coalesce(base[1], 0)) || public.vem_low(4, coalesce(base[2], 0))
               || public.vem_low(4, coalesce(base[3], 0)) || public.vem_low(2, dt0)
               || public.vem_low(1, idx0 | (step << 7)) || public.vem_low(1, typ);
    FOR k IN 0 .. n - 1 LOOP
        o := k * len;
        samples := samples || substr(full_recs, o + 9, 26);
        FOR w IN 1 .. 3 LOOP
            raw := public.vem_bes32(full_recs, o + 30 + 4 * w) & 4294967295;
            IF NOT fits OR raw = 4294967295 THEN
                samples := samples || '\xffff'::bytea;
                CONTINUE;
            END IF;
            IF w < 3 AND raw > 2147483648 THEN
                raw := 2147483648 - raw;
            END IF;
            samples := samples || public.vem_low(2, raw - base[w] + 32767);
        END LOOP;
        samples := samples || substr(full_recs, o + 47, len - 46);
    END LOOP;
    rec_len := len - 14;
    IF regular THEN
        meta := NULL;
    END IF;
    IF fits THEN
        pos := NULL;
    END IF;
END $$;

UPDATE public.obd_frames f
   SET (samples, rec_len, meta, pos) = (SELECT p.samples, p.rec_len, p.meta, p.pos
                                          FROM public.vem_pack_frame(f.samples, f.rec_len,
                                                                     f.nsamples, f.frame_seq) p);

ALTER TABLE public.obd_frames
    ADD CONSTRAINT obd_frames_rec_len_check CHECK (rec_len IN (32, 49, 54, 62)),
    ADD CONSTRAINT obd_frames_samples_check
        CHECK (octet_length(samples) = 16 + rec_len::integer * nsamples),
    ADD CONSTRAINT obd_frames_meta_check
        CHECK (meta IS NULL OR octet_length(meta) = 8 * nsamples::integer),
    ADD CONSTRAINT obd_frames_pos_check
        CHECK (pos IS NULL OR octet_length(pos) = 12 * nsamples::integer);

-- The same columns as 0008's view, each value by the same expression from its new place.
CREATE OR REPLACE VIEW public.obd_frame_samples WITH (security_invoker = true) AS
SELECT f.vin,
       s.sample_time,
       s.block_idx,
       f.received_at,
       s.frame_seq,
       f.resent,
       CASE s.block_type
           WHEN 2 THEN 'stream' WHEN 3 THEN 'twc' WHEN 5 THEN 'twc_nox'
           WHEN 4 THEN 'hybrid' WHEN 128 THEN 'supplementary' END AS block_type,
       (public.vem_be16(f.samples, s.o, 0)::bigint * 390625)::float8 / 1e8::float8 AS speed_kmh,
       (public.vem_be8(f.samples, s.o, 2) * 5)::float8 / 10::float8 AS baro_kpa,
       public.vem_be8(f.samples, s.o, 3) - 125 AS torque_pct,
       public.vem_be8(f.samples, s.o, 4) - 125 AS friction_pct,
       (public.vem_be16(f.samples, s.o, 5) * 125)::float8 / 1000::float8 AS engine_rpm,
       (public.vem_be16(f.samples, s.o, 7) * 5)::float8 / 100::float8 AS fuel_rate_lph,
       (public.vem_be16(f.samples, s.o, 9) * 5 - 20000)::float8 / 100::float8 AS nox_up_ppm,
       (public.vem_be16(f.samples, s.o, 11) * 5 - 20000)::float8 / 100::float8 AS nox_down_ppm,
       (public.vem_be8(f.samples, s.o, 13) * 4)::float8 / 10::float8 AS reagent_pct,
       (public.vem_be16(f.samples, s.o, 14) * 5)::float8 / 100::float8 AS intake_air_kgph,
       (public.vem_be16(f.samples, s.o, 16) * 3125 - 27300000)::float8 / 1e5::float8
           AS scr_in_c,
       (public.vem_be16(f.samples, s.o, 18) * 3125 - 27300000)::float8 / 1e5::float8
           AS scr_out_c,
       public.vem_be16(f.samples, s.o, 20)::float8 / 10::float8 AS dpf_dp_kpa,
       public.vem_be8(f.samples, s.o, 22) - 40 AS coolant_c,
       (public.vem_be8(f.samples, s.o, 23) * 4)::float8 / 10::float8 AS fuel_level_pct,
       (public.vem_be16(f.samples, s.o, 24) & 1) = 0 AS pos_valid,
       CASE WHEN f.pos IS NULL
            THEN (h.lon0 + (public.vem_be16(f.samples, s.o, 26) - 32767))::float8 / 1e6::float8
            ELSE public.vem_bepos(f.pos, s.k * 12, 0) END AS lon,
       CASE WHEN f.pos IS NULL
            THEN (h.lat0 + (public.vem_be16(f.samples, s.o, 28) - 32767))::float8 / 1e6::float8
            ELSE public.vem_bepos(f.pos, s.k * 12, 4) END AS lat,
       CASE WHEN f.pos IS NULL
            THEN (h.odo0 + (public.vem_be16(f.samples, s.o, 30) - 32767))::float8 / 10::float8
            ELSE public.vem_be32(f.pos, s.k * 12, 8)::float8 / 10::float8 END AS odometer_km,
       -- two-way catalyst blocks (records of 54 bytes and more)
       CASE WHEN f.rec_len >= 54
            THEN (public.vem_be16(f.samples, s.o, 49) * 305)::float8 / 1e7::float8 END AS o2_up,
       CASE WHEN f.rec_len >= 54
            THEN public.vem_be8(f.samples, s.o, 51)::float8 / 100::float8 END AS o2_down_v,
       CASE WHEN f.rec_len >= 54
            THEN (public.vem_be16(f.samples, s.o, 52) * 3125 - 27300000)::float8 / 1e5::float8
       END AS catalyst_c,
       -- hybrid block (records of 62 bytes)
       CASE WHEN f.rec_len >= 62 THEN public.vem_be16(f.samples, s.o, 54) END AS motor_rpm,
       CASE WHEN f.rec_len >= 62 THEN public.vem_be8(f.samples, s.o, 56) END AS motor_load_pct,
       CASE WHEN f.rec_len >= 62
            THEN public.vem_be16(f.samples, s.o, 57)::float8 / 10::float8 END AS battery_v,
       CASE WHEN f.rec_len >= 62
            THEN (public.vem_be16(f.samples, s.o, 59) - 10000)::float8 / 10::float8 END
           AS battery_a,
       CASE WHEN f.rec_len >= 62 THEN public.vem_be8(f.samples, s.o, 61) END AS soc_pct,
       -- supplementary block (records of 49 bytes and more)
       CASE WHEN f.rec_len >= 49 THEN public.vem_be8(f.samples, s.o, 32) END AS torque_mode,
       CASE WHEN f.rec_len >= 49
            THEN (public.vem_be8(f.samples, s.o, 33) * 4)::float8 / 10::float8 END AS pedal_pct,
       CASE WHEN f.rec_len >= 49
            THEN (public.vem_be32(f.samples, s.o, 34) * 5)::float8 / 10::float8 END
           AS fuel_total_l,
       CASE WHEN f.rec_len >= 49 THEN public.vem_be8(f.samples, s.o, 38) - 40 END AS urea_tank_c,
       CASE WHEN f.rec_len >= 49 THEN public.vem_be32(f.samples, s.o, 39) END AS urea_dose,
       CASE WHEN f.rec_len >= 49 THEN public.vem_be32(f.samples, s.o, 43) END AS urea_total,
       CASE WHEN f.rec_len >= 49
            THEN (public.vem_be16(f.samples, s.o, 47) * 3125 - 27300000)::float8 / 1e5::float8
       END AS dpf_exhaust_c,
       pg_catalog.string_to_array(f.invalid[s.k + 1], ',') AS invalid,
       pg_catalog.string_to_array(f.abnormal[s.k + 1], ',') AS abnormal,
       f.frame_time, f.wide
  FROM public.obd_frames f
 -- the frame's head, read once a frame
 CROSS JOIN LATERAL (SELECT public.vem_bes32(f.samples, 0) AS lon0,
                            public.vem_bes32(f.samples, 4) AS lat0,
                            public.vem_bes32(f.samples, 8) & 4294967295 AS odo0,
                            pg_catalog.get_byte(f.samples, 12) * 256
                                + pg_catalog.get_byte(f.samples, 13)
                                - CASE WHEN pg_catalog.get_byte(f.samples, 12) >= 128
                                       THEN 65536 ELSE 0 END AS dt0,
                            pg_catalog.get_byte(f.samples, 14) & 127 AS idx0,
                            pg_catalog.get_byte(f.samples, 14) >> 7 AS step,
                            pg_catalog.get_byte(f.samples, 15) AS block_type
                     OFFSET 0) h
 -- each sample's index k, its record's offset o and what the head or meta says of it, the
 -- time computed once: kept apart by OFFSET 0, so a bound on sample_time is checked against
 -- the value before any field is decoded (see 0008)
 CROSS JOIN LATERAL (SELECT g.k, 16 + g.k * f.rec_len AS o,
                            f.frame_time
                            + CASE WHEN f.meta IS NULL THEN h.dt0 + g.k * h.step
                                   ELSE public.vem_bes32(f.meta, g.k * 8) END
                              * interval '1 second' AS sample_time,
                            (CASE WHEN f.meta IS NULL THEN h.idx0 + g.k
                                  ELSE pg_catalog.get_byte(f.meta, g.k * 8 + 4) END)::smallint
                                AS block_idx,
                            CASE WHEN f.meta IS NULL THEN f.frame_seq
                                 ELSE pg_catalog.get_byte(f.meta, g.k * 8 + 6) * 256
                                      + pg_catalog.get_byte(f.meta, g.k * 8 + 7) END AS frame_seq,
                            CASE WHEN f.meta IS NULL THEN h.block_type
                                 ELSE pg_catalog.get_byte(f.meta, g.k * 8 + 5) END AS block_type
                       FROM pg_catalog.generate_series(0, f.nsamples - 1) AS g(k)
                     OFFSET 0) s;

-- Moving old rows into frames (0007), now packing what it moves: the same procedure, with the
-- records it builds handed to vem_pack_frame.
CREATE OR REPLACE PROCEDURE public.vem_migrate_samples(max_days integer,
                                                       INOUT moved integer DEFAULT 0)
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
        ), a AS (
            SELECT (x.s).vin AS vin, x.frame_time, (x.s).received_at AS received_at,
                   (x.s).frame_seq AS frame_seq, bool_or((x.s).resent) AS resent,
                   count(*)::integer AS nsamples,
                   x.frame_time - min((x.s).sample_time) > interval '3600 s' AS wide,
                   string_agg(public.vem_row_record(x.s, x.frame_time), ''::bytea
                              ORDER BY (x.s).sample_time, (x.s).block_idx) AS full_recs,
                   CASE WHEN bool_or((x.s).invalid IS NOT NULL)
                        THEN array_agg(array_to_string((x.s).invalid, ',')
                                       ORDER BY (x.s).sample_time, (x.s).block_idx) END
                       AS invalid,
                   CASE WHEN bool_or((x.s).abnormal IS NOT NULL)
                        THEN array_agg(array_to_string((x.s).abnormal, ',')
                                       ORDER BY (x.s).sample_time, (x.s).block_idx) END
                       AS abnormal
              FROM x
             GROUP BY (x.s).vin, x.frame_time, (x.s).received_at, (x.s).frame_seq
        ), ins AS (
            INSERT INTO public.obd_frames (vin, frame_time, received_at, frame_seq, resent,
                                           nsamples, rec_len, wide, samples, invalid, abnormal,
                                           meta, pos)
            SELECT a.vin, a.frame_time, a.received_at, a.frame_seq, a.resent, a.nsamples,
                   p.rec_len, a.wide, p.samples, a.invalid, a.abnormal, p.meta, p.pos
              FROM a
             CROSS JOIN LATERAL public.vem_pack_frame(a.full_recs, 76, a.nsamples,
                                                      a.frame_seq) p
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
