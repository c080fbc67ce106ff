-- 0014_completeness_by_trips — the daily_completeness view divides by engine-running seconds.
--
-- rules.md's daily completeness is the samples received over the seconds the engine ran. The
-- view (0002, restated by 0007) divided by the time from a day's first sample to its last, so
-- a truck that drove in the morning and again in the afternoon owed every second of its
-- midday stop, and it counted GB 17691 samples, which all carry their frame's time, once per
-- frame. vemd's own count (daemon/completeness.c, which judges obd.offline) was corrected the
-- same way; this is the same definition at rules.trip_gap_min's default of 10 minutes:
--  - a sample is counted at its rule time: its block time, or in a GB 17691 frame (the rows of
--    one time received together) that time minus the samples after it in the frame;
--  - terminals send nothing with the ignition off, so the running seconds are those of the
--    day's trips: runs of samples split where two follow each other by more than 10 minutes,
--    each lasting from its first sample to its last; a longer gap splits only where the
--    odometer shows the truck stood (known on both sides, not advanced): one that drove while
--    its terminal was silent, or whose odometer is not known, owes the gap (a terminal sending
--    one sample every 11 minutes, odometer marked invalid or not, is not complete);
--  - "a GB 17691 frame" is the rows of one time received together: the rows keep no dialect,
--    so an HJ 1239 frame with two sample blocks of one instant counts one second more.
-- Columns, names and types are those of before; first_at and last_at are rule times (for HJ
-- 1239 frames, the stored times).

CREATE OR REPLACE VIEW public.daily_completeness WITH (security_invoker = true) AS
SELECT t.vin, r.plate, r.region_code, t.day,
       sum(t.n)::bigint AS received_samples,
       sum(t.span)::bigint AS expected_samples,
       round(100.0 * sum(t.n) / sum(t.span), 2) AS completeness_pct,
       sum(t.resent)::bigint AS resent_samples,
       min(t.first_at) AS first_at, max(t.last_at) AS last_at
  FROM (SELECT k.vin, k.day, k.trip, count(*) AS n,
               (extract(epoch FROM max(k.at) - min(k.at)))::bigint + 1 AS span,
               count(*) FILTER (WHERE k.resent) AS resent,
               min(k.at) AS first_at, max(k.at) AS last_at
          FROM (SELECT g.vin, g.day, g.at, g.resent,
                       sum(coalesce(g.brk, false)::int)
                           OVER (PARTITION BY g.vin, g.day ORDER BY g.at) AS trip
                  FROM (SELECT d.vin, d.day, d.at, d.resent,
                               d.at - lag(d.at) OVER w > interval '10 minutes'
                               AND coalesce(d.odo <= lag(d.odo) OVER w, false) AS brk
                          FROM (SELECT DISTINCT ON (x.vin, x.day, x.at)
                                       x.vin, x.day, x.at, x.odo, x.resent
                                  FROM (SELECT s.vin, s.odometer_km AS odo, s.resent,
                                               (s.sample_time AT TIME ZONE 'Asia/Shanghai')::date
                                                   AS day,
                                               s.sample_time - (count(*) OVER f
                                                                - row_number() OVER b)
                                                               * interval '1 s' AS at
                                          FROM public.obd_samples s
                                         WHERE s.block_type IN ('stream', 'twc', 'twc_nox')
                                        WINDOW f AS (PARTITION BY s.vin, s.sample_time,
                                                     s.received_at),
                                               b AS (f ORDER BY s.block_idx)) x
                                 ORDER BY x.vin, x.day, x.at, x.odo) d
                        WINDOW w AS (PARTITION BY d.vin, d.day ORDER BY d.at)) g) k
         GROUP BY k.vin, k.day, k.trip) t
  LEFT JOIN public.vehicles r ON r.vin = t.vin
 GROUP BY t.vin, r.plate, r.region_code, t.day;
