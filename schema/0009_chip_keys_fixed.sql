-- 0009: a chip's public key is fixed once filed.
--
-- 0006 let a repeated activation of the same chip for the same VIN replace the key it had
-- filed. The key pair lives in the chip, so another key under a known chip id is someone who
-- read the id from an earlier activation (or a chip replaced, which an operator files by
-- deleting the row). vemd refuses such an activation (0x08 info 0x01); this keeps the table
-- to the same rule for rows that reach it otherwise (a replay of older activations).
CREATE OR REPLACE FUNCTION vem_file_activation() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM public.terminal_keys k
                WHERE (k.chip_id = NEW.chip_id AND k.vin <> NEW.vin)
                   OR (k.vin = NEW.vin AND k.chip_id <> NEW.chip_id)
                   OR (k.vin = NEW.vin AND k.pubkey <> NEW.pubkey)) THEN
        RAISE WARNING 'activation of % left out of terminal_keys: chip, VIN or key taken', NEW.vin;
        RETURN NULL;
    END IF;
    INSERT INTO public.terminal_keys AS k
        (vin, chip_id, pubkey, first_activated_at, last_activated_at)
    VALUES (NEW.vin, NEW.chip_id, NEW.pubkey, NEW.event_time, NEW.event_time)
    ON CONFLICT (vin) DO UPDATE
        SET first_activated_at = least(k.first_activated_at, EXCLUDED.first_activated_at),
            last_activated_at = greatest(k.last_activated_at, EXCLUDED.last_activated_at);
    RETURN NULL;
END $$;
REVOKE ALL ON FUNCTION vem_file_activation() FROM PUBLIC;
