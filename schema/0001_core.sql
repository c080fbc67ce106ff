-- 0001_core — tables of everything vemd learns, partitioned by Beijing day.
--
-- Column names are FIELDS.md's keys. A value the source marked invalid or abnormal (or out of
-- range) is NULL, and the field's name is listed in the row's `invalid` / `abnormal` array.
-- Natural unique keys make replays and re-sends harmless: the sink inserts with ON CONFLICT
-- DO NOTHING, so the same input twice is one row.
--
-- Applied by `vemctl db migrate`, which runs each numbered file once in its own transaction
-- and records it in schema_migrations.

-- The vehicle registry: what enforcement knows about each truck.
CREATE TABLE vehicles (
    vin             text PRIMARY KEY CHECK (vin ~ '^[A-Z0-9]{17}$'),
    plate           text,
    plate_color     text CHECK (plate_color IN ('blue', 'yellow', 'green', 'yellow_green',
                                                'white', 'black')),
    fuel            text NOT NULL DEFAULT 'diesel'
                    CHECK (fuel IN ('diesel', 'gasoline', 'gas', 'unknown')),
    ref_torque_nm   double precision CHECK (ref_torque_nm > 0),   -- engine reference torque
    rated_power_kw  double precision CHECK (rated_power_kw > 0),
    whtc_work_kwh   double precision CHECK (whtc_work_kwh > 0),   -- WHTC reference work
    region_code     text NOT NULL CHECK (region_code ~ '^[0-9]{6}$'), -- GB/T 2260 division
    chip_id         bytea CHECK (octet_length(chip_id) = 16),     -- terminal security chip
    sm2_pubkey      bytea CHECK (octet_length(sm2_pubkey) = 64),  -- X||Y
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX vehicles_plate ON vehicles (plate);
CREATE INDEX vehicles_region ON vehicles (region_code);

-- One row per 1 Hz sample (a stream, twc or twc_nox block) of a real-time or re-sent frame, with the fields of the hybrid and supplementary blocks of the same instant
-- (such a block without a sample gets a row of its own). block_idx is the position in the frame.
CREATE TABLE obd_samples (
    vin             text NOT NULL,
    sample_time     timestamptz NOT NULL,
    block_idx       smallint NOT NULL,
    received_at     timestamptz NOT NULL,
    frame_seq       integer NOT NULL,
    resent          boolean NOT NULL,
    block_type      text NOT NULL,
    speed_kmh       double precision,
    baro_kpa        double precision,
    torque_pct      integer,
    friction_pct    integer,
    engine_rpm      double precision,
    fuel_rate_lph   double precision,
    nox_up_ppm      double precision,
    nox_down_ppm    double precision,
    reagent_pct     double precision,
    intake_air_kgph double precision,
    scr_in_c        double precision,
    scr_out_c       double precision,
    dpf_dp_kpa      double precision,
    coolant_c       integer,
    fuel_level_pct  double precision,
    pos_valid       boolean,
    lon             double precision,
    lat             double precision,
    odometer_km     double precision,
    o2_up           double precision,
    o2_down_v       double precision,
    catalyst_c      double precision,
    motor_rpm       integer,
    motor_load_pct  integer,
    battery_v       double precision,
    battery_a       double precision,
    soc_pct         integer,
    torque_mode     integer,
    pedal_pct       double precision,
    fuel_total_l    double precision,
    urea_tank_c     integer,
    urea_dose       bigint,
    urea_total      bigint,
    dpf_exhaust_c   double precision,
    invalid         text[],
    abnormal        text[],
    UNIQUE (vin, sample_time, block_idx)
) PARTITION BY RANGE (sample_time);

-- One row per OBD block.
CREATE TABLE obd_info (
    vin             text NOT NULL,
    info_time       timestamptz NOT NULL,
    block_idx       smallint NOT NULL,
    received_at     timestamptz NOT NULL,
    frame_seq       integer NOT NULL,
    resent          boolean NOT NULL,
    obd_protocol    text,
    mil             boolean,
    diag_supported  integer,
    diag_ready      integer,
    obd_vin         text,
    scin            text,
    cvn             text,
    iupr            text,
    dtc_count       integer,
    dtcs            text[],
    invalid         text[],
    abnormal        text[],
    UNIQUE (vin, info_time, block_idx)
) PARTITION BY RANGE (info_time);

-- Login, logout, removal alarm and activation messages of the terminals.
CREATE TABLE terminal_events (
    vin             text NOT NULL,
    event_time      timestamptz NOT NULL,
    cmd             text NOT NULL CHECK (cmd IN ('login', 'logout', 'removal_alarm',
                                                 'activation')),
    seq             integer NOT NULL,       -- frame serial (0 for activation)
    received_at     timestamptz NOT NULL,
    iccid           text,                   -- login
    pos_valid       boolean,                -- removal alarm
    lon             double precision,
    lat             double precision,
    chip_id         bytea,                  -- activation
    pubkey          bytea,
    act_vin         text,
    UNIQUE (vin, event_time, cmd, seq)
) PARTITION BY RANGE (event_time);

-- Roadside remote-sensing readings (HJ 845-2017); one per passing vehicle.
CREATE TABLE rsd_readings (
    station_id      text NOT NULL,
    reading_id      text NOT NULL,
    time            timestamptz NOT NULL,
    received_at     timestamptz NOT NULL,
    lane            integer,
    plate           text,
    plate_color     text,
    vin             text,
    fuel            text,
    speed_kmh       double precision,
    accel_ms2       double precision,
    vsp_kw_t        double precision,
    opacity_pct     double precision,
    k_m1            double precision,
    ringelmann      integer,
    no_ppm          double precision,
    co_pct          double precision,
    hc_ppm          double precision,
    co2_pct         double precision,
    wind_ms         double precision,
    temp_c          double precision,
    humidity_pct    double precision,
    pressure_kpa    double precision,
    slope_pct       double precision,
    image_ref       text,
    UNIQUE (station_id, reading_id, time)
) PARTITION BY RANGE (time);

-- Input rejected before or while decoding, with the bytes exactly as received.
CREATE TABLE quarantine (
    received_at     timestamptz NOT NULL,
    spool_seq       bigint NOT NULL,        -- the input's spool sequence number
    source          text NOT NULL CHECK (source IN ('terminal', 'gateway', 'roadside')),
    error_class     text NOT NULL,          -- FIELDS.md error class
    detail          text,
    error_offset    integer,
    vin             text,                   -- when the envelope got that far
    raw             bytea NOT NULL,
    UNIQUE (received_at, spool_seq)
) PARTITION BY RANGE (received_at);

-- Violations: verdicts of the rules, with the evidence they rest on. Not partitioned: they are
-- few, and enforcement keeps them for years.
CREATE TABLE violations (
    violation_id    text PRIMARY KEY,       -- stable: the same input gives the same id
    rule            text NOT NULL,
    clause          text NOT NULL,
    vin             text,
    plate           text,
    region_code     text,                   -- from the registry when the violation is stored
    first_at        timestamptz NOT NULL,
    last_at         timestamptz NOT NULL,
    measured        double precision,
    "limit"         double precision,
    unit            text,
    evidence        jsonb NOT NULL,
    severity        text NOT NULL CHECK (severity IN ('notice', 'violation')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    closed_at       timestamptz,            -- set when an agency has dealt with it
    CHECK (vin IS NOT NULL OR plate IS NOT NULL),
    CHECK (first_at <= last_at)
);
CREATE INDEX violations_vin ON violations (vin, first_at);
CREATE INDEX violations_plate ON violations (plate, first_at);
CREATE INDEX violations_region ON violations (region_code, first_at);
CREATE INDEX violations_open ON violations (first_at) WHERE closed_at IS NULL;

-- A violation takes the vehicle's plate and region from the registry when it does not say.
CREATE FUNCTION violations_fill() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.vin IS NOT NULL AND (NEW.region_code IS NULL OR NEW.plate IS NULL) THEN
        SELECT coalesce(NEW.plate, v.plate), coalesce(NEW.region_code, v.region_code)
          INTO NEW.plate, NEW.region_code
          FROM vehicles v WHERE v.vin = NEW.vin;
    ELSIF NEW.vin IS NULL AND NEW.region_code IS NULL THEN
        SELECT v.region_code, v.vin INTO NEW.region_code, NEW.vin
          FROM vehicles v WHERE v.plate = NEW.plate LIMIT 1;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER violations_fill BEFORE INSERT ON violations
    FOR EACH ROW EXECUTE FUNCTION violations_fill();

-- ---- daily partitions ------------------------------------------------------------------------

-- The partitioned tables and their time columns.
CREATE TABLE partitioned_tables (
    table_name      text PRIMARY KEY
);
INSERT INTO partitioned_tables VALUES
    ('obd_samples'), ('obd_info'), ('terminal_events'), ('rsd_readings'), ('quarantine');

-- Creates the partitions of every partitioned table for the Beijing days first..last
-- (inclusive) that do not exist yet; returns how many it created. Partition names are
-- TABLE_pYYYYMMDD.
CREATE FUNCTION vem_ensure_partitions(first date, last date) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    t text;
    d date;
    n integer := 0;
BEGIN
    IF last - first > 3660 THEN
        RAISE EXCEPTION 'vem_ensure_partitions: % days asked for', last - first + 1;
    END IF;
    FOR t IN SELECT table_name FROM partitioned_tables LOOP
        d := first;
        WHILE d <= last LOOP
            IF to_regclass(format('%I', t || '_p' || to_char(d, 'YYYYMMDD'))) IS NULL THEN
                EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                               t || '_p' || to_char(d, 'YYYYMMDD'), t,
                               (d::timestamp AT TIME ZONE 'Asia/Shanghai'),
                               ((d + 1)::timestamp AT TIME ZONE 'Asia/Shanghai'));
                n := n + 1;
            END IF;
            d := d + 1;
        END LOOP;
    END LOOP;
    RETURN n;
END $$;

-- Drops the partitions of days before `before` (a Beijing date); returns the names dropped.
CREATE FUNCTION vem_drop_partitions(before date) RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    FOR r IN
        SELECT c.relname
          FROM pg_inherits i
          JOIN pg_class c ON c.oid = i.inhrelid
          JOIN pg_class p ON p.oid = i.inhparent
          JOIN partitioned_tables t ON t.table_name = p.relname
         WHERE c.relname ~ '_p[0-9]{8}$'
           AND to_date(right(c.relname, 8), 'YYYYMMDD') < before
         ORDER BY c.relname
    LOOP
        EXECUTE format('DROP TABLE %I', r.relname);
        RETURN NEXT r.relname;
    END LOOP;
END $$;
