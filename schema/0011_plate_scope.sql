-- 0011: an agency sees a VIN-less roadside reading without learning any plate's region.
--
-- 0005's policy asked vem_plate_region (SECURITY DEFINER, executable by vem_agency) for the
-- region of the one vehicle with the reading's plate and colour; any agency could call it and
-- learn the region of every registered plate. Now the definer function only counts the
-- vehicles with that plate and colour (the policy needs the count over every region), and
-- whether that one vehicle is the agency's is asked of vehicles under the agency's own
-- row-level security.
CREATE FUNCTION vem_plate_count(p_plate text, p_color text) RETURNS bigint
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    SELECT pg_catalog.count(*) FROM public.vehicles v
     WHERE v.plate = p_plate AND v.plate_color = p_color
$$;
REVOKE EXECUTE ON FUNCTION vem_plate_count(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION vem_plate_count(text, text) TO vem_agency, vem_admin;
REVOKE EXECUTE ON FUNCTION vem_plate_region(text, text) FROM vem_agency;

DROP POLICY own_regions ON rsd_readings;
CREATE POLICY own_regions ON rsd_readings FOR SELECT TO vem_agency
    USING (CASE WHEN vin IS NOT NULL
                THEN vin IN (SELECT v.vin FROM public.vehicles v) -- limited to own regions
                ELSE plate_color IS NOT NULL
                     AND public.vem_plate_count(plate, plate_color) = 1
                     AND EXISTS (SELECT 1 FROM public.vehicles v -- limited to own regions
                                  WHERE v.plate = rsd_readings.plate
                                    AND v.plate_color = rsd_readings.plate_color)
           END);
