-- 0015: a public key belongs to one chip.
--
-- The SM2 key pair is fixed inside the security chip, so one public key under two chip ids is a
-- cloned chip or an extracted private key: whoever holds it could file it for any VIN whose
-- chip is not activated yet and then sign that VIN's frames. vemd refuses such an activation
-- (0x08 info 0x01, quarantined as key_reused) and, loading this table, keeps of the rows that
-- share a key the one activated first (then the lowest chip id). This keeps the table to the
-- same rule: a unique index on pubkey, for every way a row gets here (the activation trigger,
-- an operator's INSERT or UPDATE, two sink connections at once).
--
-- A database may hold such rows already (0006 only made the chip id unique), and a unique index
-- over them would fail. They are not dropped: rows that lose to an earlier one, by the same
-- order vemd's load uses (so vemd's registry is the same before and after), move to
-- terminal_keys_reused with the chip that keeps the key, for operators to look into; they are
-- the evidence of a cloned chip. A trigger refusing new duplicates alone was not enough: two
-- transactions can each pass its check and both commit, and the old duplicates would stay in
-- the table that agencies read as the registry.
LOCK TABLE terminal_keys IN SHARE ROW EXCLUSIVE MODE; -- no activation filed meanwhile

CREATE TABLE terminal_keys_reused (
    vin                 text NOT NULL,
    chip_id             bytea NOT NULL,
    pubkey              bytea NOT NULL,
    first_activated_at  timestamptz NOT NULL,
    last_activated_at   timestamptz NOT NULL,
    held_by_chip        bytea NOT NULL,  -- the chip that keeps the key in terminal_keys
    moved_at            timestamptz NOT NULL DEFAULT now()
);
REVOKE ALL ON terminal_keys_reused FROM PUBLIC, vem_ingest, vem_agency;
GRANT SELECT, DELETE ON terminal_keys_reused TO vem_admin;

WITH ranked AS (
    SELECT vin, chip_id, pubkey, first_activated_at, last_activated_at,
           first_value(chip_id) OVER w AS held_by_chip, row_number() OVER w AS n
      FROM terminal_keys
    WINDOW w AS (PARTITION BY pubkey ORDER BY first_activated_at, chip_id)
), moved AS (
    DELETE FROM terminal_keys k USING ranked r
     WHERE r.n > 1 AND k.vin = r.vin
    RETURNING r.vin, r.chip_id, r.pubkey, r.first_activated_at, r.last_activated_at,
              r.held_by_chip
)
INSERT INTO terminal_keys_reused
    (vin, chip_id, pubkey, first_activated_at, last_activated_at, held_by_chip)
SELECT * FROM moved;

CREATE UNIQUE INDEX terminal_keys_pubkey_key ON terminal_keys (pubkey);

-- Files an accepted activation, as 0009's did, also leaving out (with a warning, rather than
-- failing the sink's whole batch) one whose key another chip holds. A row that passes the check
-- but meets a unique index all the same (another transaction filed the chip, VIN or key since)
-- is left out the same way.
CREATE OR REPLACE FUNCTION vem_file_activation() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM public.terminal_keys k
                WHERE (k.chip_id = NEW.chip_id AND k.vin <> NEW.vin)
                   OR (k.vin = NEW.vin AND k.chip_id <> NEW.chip_id)
                   OR (k.vin = NEW.vin AND k.pubkey <> NEW.pubkey)
                   OR (k.pubkey = NEW.pubkey AND k.chip_id <> NEW.chip_id)) THEN
        RAISE WARNING 'activation of % left out of terminal_keys: chip, VIN or key taken', NEW.vin;
        RETURN NULL;
    END IF;
    BEGIN
        INSERT INTO public.terminal_keys AS k
            (vin, chip_id, pubkey, first_activated_at, last_activated_at)
        VALUES (NEW.vin, NEW.chip_id, NEW.pubkey, NEW.event_time, NEW.event_time)
        ON CONFLICT (vin) DO UPDATE
            SET first_activated_at = least(k.first_activated_at, EXCLUDED.first_activated_at),
                last_activated_at = greatest(k.last_activated_at, EXCLUDED.last_activated_at);
    EXCEPTION WHEN unique_violation THEN
        RAISE WARNING 'activation of % left out of terminal_keys: chip or key filed meanwhile',
            NEW.vin;
    END;
    RETURN NULL;
END $$;
REVOKE ALL ON FUNCTION vem_file_activation() FROM PUBLIC;
