-- 0004: roadside readings carry their validity, and can be found by vehicle.
--
-- A reading counts toward a verdict only when the station marked it valid and its driving
-- condition lies inside vemd's HJ 845 window (rules.rsd_*), with a known fuel; vemd stores
-- every reading it accepts all the same, with the station's flag, its own verdict and, when
-- the reading does not count, why. A station's reading is stored once: its key is
-- (station_id, reading_id, time) (the partition key must be part of a unique key; a re-sent
-- reading carries the same time).
ALTER TABLE rsd_readings
    ADD COLUMN valid          boolean,   -- the station's own verdict (FIELDS.md `valid`)
    ADD COLUMN counted        boolean,   -- counts toward rsd.* and fusion verdicts
    ADD COLUMN invalid_reason text;      -- why it does not count (NULL when counted)

CREATE INDEX rsd_readings_vin ON rsd_readings (vin, time);
CREATE INDEX rsd_readings_plate ON rsd_readings (plate, time);
