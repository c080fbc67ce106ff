-- 0003: rows a sink's server refused are quarantined by the sink itself.
--
-- The PostgreSQL sink isolates a row the server refuses (a value it rejects) and keeps it as a
-- quarantine row instead of retrying the batch forever. Such a row did not come from a
-- terminal, a gateway or a station as such, so its source is 'sink'.
ALTER TABLE quarantine DROP CONSTRAINT quarantine_source_check;
ALTER TABLE quarantine ADD CONSTRAINT quarantine_source_check
    CHECK (source IN ('terminal', 'gateway', 'roadside', 'sink'));
