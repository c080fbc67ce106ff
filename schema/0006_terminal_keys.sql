-- 0006: the terminal key registry (HJ 1239 activation, 0x07) and the frames stored unverified.
--
-- vemd decides an activation in memory when it answers it (0x08), and stores the accepted one
-- as a terminal_events row like every frame (refused ones are quarantined as chip_activated,
-- vin_error or bad_signature). The trigger below turns that row into the registry row, so the
-- registry is as durable as the events and needs no second write path: a replayed activation
-- is the same row again. A chip belongs to one VIN and a VIN has one chip; vemd loads this
-- table at start and on SIGHUP. To let a VIN take a new terminal, an operator deletes its row
-- (then SIGHUP).
CREATE TABLE terminal_keys (
    vin                 text PRIMARY KEY CHECK (vin ~ '^[!-~]{17}$'),
    chip_id             bytea NOT NULL UNIQUE CHECK (octet_length(chip_id) = 16),
    pubkey              bytea NOT NULL CHECK (octet_length(pubkey) = 64),  -- SM2 X||Y
    first_activated_at  timestamptz NOT NULL,
    last_activated_at   timestamptz NOT NULL,
    CHECK (first_activated_at <= last_activated_at)
);

-- Files an accepted activation (a terminal_events row with cmd 'activation'). A row that
-- contradicts the registry (its chip held by another VIN, or its VIN holding another chip:
-- only possible when an operator changed the table while vemd held the old state) is left
-- out with a warning rather than failing the sink's whole batch.
CREATE FUNCTION vem_file_activation() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM public.terminal_keys k
                WHERE (k.chip_id = NEW.chip_id AND k.vin <> NEW.vin)
                   OR (k.vin = NEW.vin AND k.chip_id <> NEW.chip_id)) THEN
        RAISE WARNING 'activation of % left out of terminal_keys: chip or VIN taken', NEW.vin;
        RETURN NULL;
    END IF;
    INSERT INTO public.terminal_keys AS k
        (vin, chip_id, pubkey, first_activated_at, last_activated_at)
    VALUES (NEW.vin, NEW.chip_id, NEW.pubkey, NEW.event_time, NEW.event_time)
    ON CONFLICT (vin) DO UPDATE
        SET pubkey = EXCLUDED.pubkey,
            first_activated_at = least(k.first_activated_at, EXCLUDED.first_activated_at),
            last_activated_at = greatest(k.last_activated_at, EXCLUDED.last_activated_at);
    RETURN NULL;
END $$;
REVOKE ALL ON FUNCTION vem_file_activation() FROM PUBLIC;

CREATE TRIGGER terminal_events_activation AFTER INSERT ON terminal_events
    FOR EACH ROW WHEN (NEW.cmd = 'activation' AND NEW.chip_id IS NOT NULL
                       AND NEW.pubkey IS NOT NULL)
    EXECUTE FUNCTION vem_file_activation();

GRANT SELECT, INSERT ON terminal_keys TO vem_ingest;
GRANT SELECT ON terminal_keys TO vem_agency;

ALTER TABLE terminal_keys ENABLE ROW LEVEL SECURITY;
CREATE POLICY all_rows ON terminal_keys TO vem_ingest, vem_admin USING (true) WITH CHECK (true);
CREATE POLICY own_regions ON terminal_keys FOR SELECT TO vem_agency
    USING (vin IN (SELECT v.vin FROM vehicles v));

-- Real-time and re-sent frames stored under security.signatures = flag although their
-- signature did not verify (verified = false): the worker keeps, beside the stored frame, a
-- quarantine row of class 'unverified' whose detail says why (unsigned, no_key,
-- bad_signature ...). Kept on the quarantine side so the sample tables need no column.
CREATE VIEW unverified_frames WITH (security_invoker = true) AS
    SELECT q.vin, q.received_at, q.spool_seq, q.source, false AS verified,
           split_part(q.detail, ':', 1) AS reason, q.detail, q.raw
      FROM quarantine q
     WHERE q.error_class = 'unverified';
GRANT SELECT ON unverified_frames TO vem_admin;
