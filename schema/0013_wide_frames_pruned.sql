-- 0013_wide_frames_pruned — dropping old partitions also forgets their wide frames.
--
-- obd_wide_frames (0007) notes the frames whose samples lie far from their frame time, so the
-- bounded reads find them. It is not partitioned, so vem_drop_partitions left its rows behind
-- when it dropped their frames' days: entries for frames no longer there, growing forever.
-- Now the rows of the frames it drops go with them: those before the first Beijing day kept,
-- which is where the obd_frames partitions it drops end.

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
    DELETE FROM public.obd_wide_frames
     WHERE frame_time < before::timestamp AT TIME ZONE 'Asia/Shanghai';
END $$;
