/* config — the key table, the libconfig loader and the byte budget; see config.h.
 *
 * Loading: defaults first (parsed from the table's default texts, so the documented default
 * and the real one cannot differ), then every setting of the file is visited: groups must be
 * sections of the table, scalars must be keys of the table with the right type and in bounds.
 * Because the file is walked rather than the table, a misspelt key is found, with its line. */
#include "config.h"

#include "log.h"
#include "pipeline.h"
#include "records.h"
#include "worker.h"

#include <errno.h>
#include <inttypes.h>
#include <libconfig.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#define S_OFF(field) offsetof(vem_config_t, field)
#define S_INT64_MAX  INT64_MAX

static const vem_conf_key_t s_keys[] = {
    {"terminals.endpoint", VEM_CONF_STRING, S_OFF(terminals.endpoint), "tcp://127.0.0.1:7611", 0, 0,
     NULL, false, "ZMQ_STREAM endpoint OBD terminals connect to with raw TCP"},
    {"terminals.max_connections", VEM_CONF_INT, S_OFF(terminals.max_connections), "10000", 1,
     1000000, NULL, false, "terminal connections held at once; more are closed on arrival"},
    {"terminals.max_frame_bytes", VEM_CONF_INT, S_OFF(terminals.max_frame_bytes), "4096", 25, 65560,
     NULL, false, "largest frame accepted: the reassembly buffer of each connection"},
    {"terminals.idle_timeout_s", VEM_CONF_INT, S_OFF(terminals.idle_timeout_s), "300", 1, 86400,
     NULL, false,
     "close a terminal connection silent for this long while intake reads (time paused for "
     "spool room does not count)"},
    {"terminals.reply_mode", VEM_CONF_ENUM, S_OFF(terminals.reply_mode), "none", 0, 0,
     "none|hj1239", true,
     "none: reply to login and time sync only (GB 17691); hj1239: also to every data frame"},
    {"terminals.signatures", VEM_CONF_ENUM, S_OFF(terminals.signatures), "off", 0, 0,
     "off|flag|enforce", true,
     "SM2 signatures of real-time and re-sent frames: off; flag: store and mark unverified ones; "
     "enforce: quarantine unsigned, mis-signed and keyless ones"},
    {"terminals.bind_vin", VEM_CONF_BOOL, S_OFF(terminals.bind_vin), "true", 0, 0, NULL, false,
     "one connection, one vehicle: a frame of another VIN than the connection's first is "
     "quarantined (vin_switch) and the connection closed"},
    {"terminals.activations_per_s", VEM_CONF_INT, S_OFF(terminals.activations_per_s), "50", 1,
     100000, NULL, false,
     "activations (0x07) judged per second, at most (each costs ingest an SM2 check); more are "
     "quarantined unanswered (too_many_activations): the terminal sends them again"},
    {"terminals.activations_per_address_s", VEM_CONF_INT,
     S_OFF(terminals.activations_per_address_s), "10", 1, 100000, NULL, false,
     "activations judged per second from one IP address, at most (within activations_per_s): "
     "one host looping activations cannot keep the others' unjudged"},
    {"terminals.backlog", VEM_CONF_INT, S_OFF(terminals.backlog), "4096", 16, 65535, NULL, false,
     "TCP accept backlog (ZMQ_BACKLOG; libzmq's default of 100 loses connection bursts)"},
    {"terminals.rcvhwm", VEM_CONF_INT, S_OFF(terminals.rcvhwm), "32", 1, 100000, NULL, false,
     "messages queued per socket before TCP pushes back on terminals"},
    {"terminals.keepalive_idle_s", VEM_CONF_INT, S_OFF(terminals.keepalive_idle_s), "120", 10, 7200,
     NULL, false, "TCP keepalive idle time, to find dead terminals"},
    {"terminals.send_timeout_s", VEM_CONF_INT, S_OFF(terminals.send_timeout_s), "60", 1, 3600, NULL,
     false,
     "TCP_USER_TIMEOUT (ZMQ_TCP_MAXRT): a connection whose replies stay unacknowledged this long "
     "(a peer that never reads) is dropped by the kernel"},
    {"terminals.reject_bytes", VEM_CONF_INT, S_OFF(terminals.reject_bytes), "65536", 0, 1073741824,
     NULL, false,
     "rejected bytes one connection may leave in the quarantine; past it the connection is "
     "closed (reason rejects)"},
    {"terminals.reject_records", VEM_CONF_INT, S_OFF(terminals.reject_records), "64", 1, 1000000,
     NULL, false,
     "quarantine records (runs of rejected bytes) one connection may make; past it the "
     "connection is closed (reason rejects)"},
    {"terminals.reject_share_pct", VEM_CONF_INT, S_OFF(terminals.reject_share_pct), "50", 1, 100,
     NULL, false,
     "close a connection whose rejected bytes pass this % of its bytes received (judged once it "
     "has had max_frame_bytes rejected)"},
    {"terminals.max_per_address", VEM_CONF_INT, S_OFF(terminals.max_per_address), "2000", 1,
     1000000, NULL, false,
     "terminal connections held at once from one IP address; more are closed on arrival"},
    {"terminals.new_per_address_s", VEM_CONF_INT, S_OFF(terminals.new_per_address_s), "1000", 1,
     1000000, NULL, false,
     "new terminal connections one IP address may open per second; more are closed on arrival"},
    {"gateways.endpoint", VEM_CONF_STRING, S_OFF(gateways.endpoint), "tcp://127.0.0.1:7612", 0, 0,
     NULL, false, "ZMQ_PULL endpoint for whole frames from gateways; empty for none"},
    {"gateways.curve_server_key", VEM_CONF_STRING, S_OFF(gateways.curve_server_key), "", 0, 0, NULL,
     false, "CURVE key pair file of the endpoint (vemctl keys gen); empty: plain (loopback only)"},
    {"gateways.curve_clients_dir", VEM_CONF_STRING, S_OFF(gateways.curve_clients_dir), "", 0, 0,
     NULL, false,
     "directory of the admitted gateways' NAME.pub keys; SIGHUP re-reads it, a removed key is "
     "cut off"},
    {"gateways.max_message_bytes", VEM_CONF_INT, S_OFF(gateways.max_message_bytes), "65560", 25,
     67108864, NULL, false,
     "ZMQ_MAXMSGSIZE of the gateway socket: libzmq drops a gateway sending a bigger message "
     "(counted, quarantined); one over max_frame_bytes is quarantined by size"},
    {"stations.endpoint", VEM_CONF_STRING, S_OFF(stations.endpoint), "tcp://127.0.0.1:7613", 0, 0,
     NULL, false,
     "ZMQ_ROUTER endpoint roadside stations connect to with ZMQ_DEALER; empty for none"},
    {"stations.max_message_bytes", VEM_CONF_INT, S_OFF(stations.max_message_bytes), "4096", 256,
     65536, NULL, false, "largest reading accepted; a bigger one is refused (too_large)"},
    {"stations.max_inflight", VEM_CONF_INT, S_OFF(stations.max_inflight), "1000", 1, 100000, NULL,
     false, "readings of one station received but not yet answered; more are answered busy"},
    {"stations.max_stations", VEM_CONF_INT, S_OFF(stations.max_stations), "1000", 1, 100000, NULL,
     false, "stations known at once; readings of further stations are answered busy"},
    {"stations.future_tolerance_s", VEM_CONF_INT, S_OFF(stations.future_tolerance_s), "300", 0,
     86400, NULL, false, "a reading time later than its receipt by more than this is refused"},
    {"stations.max_plates", VEM_CONF_INT, S_OFF(stations.max_plates), "1000000", 16, 100000000,
     NULL, false,
     "vehicles known only by plate whose roadside rule state is kept; readings of more "
     "are stored but not judged"},
    {"stations.dedup_readings", VEM_CONF_INT, S_OFF(stations.dedup_readings), "65536", 16, 10000000,
     NULL, false,
     "recent (station_id, reading_id) remembered to answer re-sent readings as duplicates"},
    {"stations.max_json_depth", VEM_CONF_INT, S_OFF(stations.max_json_depth), "2", 1, 64, NULL,
     false, "deepest nesting of objects and arrays in a reading; deeper is refused (bad_json)"},
    {"stations.curve_server_key", VEM_CONF_STRING, S_OFF(stations.curve_server_key), "", 0, 0, NULL,
     false, "CURVE key pair file of the endpoint (vemctl keys gen); empty: plain (loopback only)"},
    {"stations.curve_clients_dir", VEM_CONF_STRING, S_OFF(stations.curve_clients_dir), "", 0, 0,
     NULL, false,
     "directory of the admitted stations' NAME.pub keys; SIGHUP re-reads it, a removed key is "
     "cut off"},
    {"control.endpoint", VEM_CONF_STRING, S_OFF(control.endpoint), "ipc:///run/vemd/control.sock",
     0, 0, NULL, false, "local socket of `vemctl status`"},
    {"control.max_message_bytes", VEM_CONF_INT, S_OFF(control.max_message_bytes), "4096", 64,
     1048576, NULL, false,
     "largest request on the control socket; a longer one is refused (counted); one over "
     "four times this makes libzmq drop the connection"},
    {"metrics.enable", VEM_CONF_BOOL, S_OFF(metrics.enable), "true", 0, 0, NULL, false,
     "serve Prometheus /metrics and /healthz over HTTP"},
    {"metrics.address", VEM_CONF_STRING, S_OFF(metrics.address), "127.0.0.1", 0, 0, NULL, false,
     "IP address of the metrics endpoint"},
    {"metrics.port", VEM_CONF_INT, S_OFF(metrics.port), "9611", 0, 65535, NULL, false,
     "TCP port of the metrics endpoint (0: any free port)"},
    {"pipeline.workers", VEM_CONF_INT, S_OFF(pipeline.workers), "0", 0, 256, NULL, false,
     "worker threads; 0 means one per core"},
    {"pipeline.queue_hwm", VEM_CONF_INT, S_OFF(pipeline.queue_hwm), "10000", 10, 10000000, NULL,
     false, "inputs queued per worker before ingest waits (backpressure)"},
    {"pipeline.drain_timeout_s", VEM_CONF_INT, S_OFF(pipeline.drain_timeout_s), "30", 1, 3600, NULL,
     false, "longest a SIGTERM drain may take before vemd exits anyway"},
    {"pipeline.dedup_window", VEM_CONF_INT, S_OFF(pipeline.dedup_window), "256", 1, 65536, NULL,
     false, "recent frames remembered per vehicle to drop repeats and re-sent copies"},
    {"pipeline.sample_past_days", VEM_CONF_INT, S_OFF(pipeline.sample_past_days), "30", 1, 36600,
     NULL, false,
     "frames whose time or any sample time is older than receipt minus this many days are "
     "quarantined as bad_time (no partition is made for them)"},
    {"pipeline.sample_future_s", VEM_CONF_INT, S_OFF(pipeline.sample_future_s), "86400", 0,
     31622400, NULL, false,
     "... and so are those with a time later than receipt plus this many seconds"},
    {"pipeline.max_sessions", VEM_CONF_INT, S_OFF(pipeline.max_sessions), "100000", 64, 10000000,
     NULL, false,
     "vehicle sessions one worker keeps; past it a new VIN takes the place of the least recently "
     "seen session without rule state"},
    {"pipeline.session_idle_s", VEM_CONF_INT, S_OFF(pipeline.session_idle_s), "86400", 60, 31622400,
     NULL, false,
     "sessions without rule state (e.g. logins only) are forgotten after this many seconds "
     "without a frame; rule state with nothing left to judge is let go after as long (at least "
     "rules.fusion_horizon_s)"},
    {"pg.enable", VEM_CONF_BOOL, S_OFF(pg.enable), "true", 0, 0, NULL, false,
     "write samples, events and quarantined input to PostgreSQL"},
    {"pg.conninfo", VEM_CONF_STRING, S_OFF(pg.conninfo), "dbname=vem", 0, 0, NULL, false,
     "libpq connection string of the vem database (role with vem_ingest)"},
    {"pg.batch_rows", VEM_CONF_INT, S_OFF(pg.batch_rows), "20000", 1, 10000000, NULL, false,
     "rows that make the sink write a batch"},
    {"pg.batch_ms", VEM_CONF_INT, S_OFF(pg.batch_ms), "200", 1, 60000, NULL, false,
     "longest a row waits in the sink before its batch is written"},
    {"pg.queue_hwm", VEM_CONF_INT, S_OFF(pg.queue_hwm), "8", 1, 1000000, NULL, false,
     "worker messages (256 inputs each) queued for the sink; it spills what it cannot write"},
    {"pg.connections", VEM_CONF_INT, S_OFF(pg.connections), "1", 1, 64, NULL, false,
     "connections writing at once, each its own COPY of the rows of the vehicles whose VIN hash "
     "falls to it; the cursor moves over what all of them committed"},
    {"pg.partitions_ahead_days", VEM_CONF_INT, S_OFF(pg.partitions_ahead_days), "3", 0, 366, NULL,
     false, "daily partitions created ahead of today"},
    {"pg.retry_max_s", VEM_CONF_INT, S_OFF(pg.retry_max_s), "10", 1, 3600, NULL, false,
     "longest wait between attempts while PostgreSQL is unreachable"},
    {"pg.retention_days", VEM_CONF_INT, S_OFF(pg.retention_days), "400", 1, 36600, NULL, false,
     "days of partitions `vemctl db prune --config` keeps"},
    {"kafka.enable", VEM_CONF_BOOL, S_OFF(kafka.enable), "false", 0, 0, NULL, false,
     "publish readings, terminal events and violations to Kafka (delivery reports settle)"},
    {"kafka.brokers", VEM_CONF_STRING, S_OFF(kafka.brokers), "localhost:9092", 0, 0, NULL, false,
     "bootstrap.servers: host:port of the cluster's brokers, comma-separated"},
    {"kafka.topic_violations", VEM_CONF_STRING, S_OFF(kafka.topic_violations), "vem.violations", 0,
     0, NULL, false, "topic of every violation and notice with its evidence; empty: off"},
    {"kafka.topic_samples", VEM_CONF_STRING, S_OFF(kafka.topic_samples), "vem.samples", 0, 0, NULL,
     false, "topic of decoded 1 Hz samples and OBD snapshots; empty: off"},
    {"kafka.topic_terminal", VEM_CONF_STRING, S_OFF(kafka.topic_terminal), "vem.terminal", 0, 0,
     NULL, false, "topic of logins, logouts, removal alarms and activations; empty: off"},
    {"kafka.topic_rsd", VEM_CONF_STRING, S_OFF(kafka.topic_rsd), "vem.rsd", 0, 0, NULL, false,
     "topic of roadside readings (once their intake lands); empty: off"},
    {"kafka.compression", VEM_CONF_ENUM, S_OFF(kafka.compression), "lz4", 0, 0,
     "none|gzip|snappy|lz4|zstd", false, "compression.codec of the message batches"},
    {"kafka.linger_ms", VEM_CONF_INT, S_OFF(kafka.linger_ms), "20", 0, 900000, NULL, false,
     "linger.ms: longest a message waits for its batch to fill"},
    {"kafka.batch_bytes", VEM_CONF_INT, S_OFF(kafka.batch_bytes), "1000000", 1, 2147483647, NULL,
     false, "batch.size: bytes of one message batch (per partition)"},
    {"kafka.batch_messages", VEM_CONF_INT, S_OFF(kafka.batch_messages), "10000", 1, 1000000, NULL,
     false, "batch.num.messages: messages of one message batch"},
    {"kafka.queue_messages", VEM_CONF_INT, S_OFF(kafka.queue_messages), "500000", 1, 10000000, NULL,
     false, "queue.buffering.max.messages: events in flight; past it the sink spills"},
    {"kafka.queue_kbytes", VEM_CONF_INT, S_OFF(kafka.queue_kbytes), "262144", 1, 2147483647, NULL,
     false, "queue.buffering.max.kbytes: KiB of events in flight; past it the sink spills"},
    {"kafka.message_timeout_ms", VEM_CONF_INT, S_OFF(kafka.message_timeout_ms), "300000", 0,
     2147483647, NULL, false,
     "message.timeout.ms: an event undelivered this long fails and is produced again (0: never)"},
    {"kafka.queue_hwm", VEM_CONF_INT, S_OFF(kafka.queue_hwm), "8", 1, 1000000, NULL, false,
     "worker messages (256 inputs each) queued for the sink; it spills what it cannot produce"},
    {"kafka.retry_max_s", VEM_CONF_INT, S_OFF(kafka.retry_max_s), "30", 1, 3600, NULL, false,
     "longest wait before an event that failed for good is produced again"},
    {"kafka.properties", VEM_CONF_LIST, S_OFF(kafka.properties), "", 0, 0, NULL, false,
     "librdkafka properties passed verbatim, [\"name=value\", ...] (security.protocol, sasl.*, "
     "ssl.*); they override the keys above, but not idempotence, acks or delivery reports"},
    {"spool.dir", VEM_CONF_STRING, S_OFF(spool.dir), "/var/lib/vemd/spool", 0, 0, NULL, false,
     "directory of the input spool (kept across restarts)"},
    {"spool.max_bytes", VEM_CONF_INT, S_OFF(spool.max_bytes), "8589934592", 1048576, S_INT64_MAX,
     NULL, false, "spool size at which intake pauses (nothing is dropped)"},
    {"spool.segment_bytes", VEM_CONF_INT, S_OFF(spool.segment_bytes), "67108864", 65536, 4294967296,
     NULL, false, "size of one spool segment file"},
    {"spool.fsync", VEM_CONF_BOOL, S_OFF(spool.fsync), "true", 0, 0, NULL, false,
     "fdatasync each batch before replying to terminals (off only for benchmarks)"},
    {"rules.enable", VEM_CONF_BOOL, S_OFF(rules.enable), "true", 0, 0, NULL, false,
     "judge every vehicle against the China VI rules (protocol/rules.md defaults)"},
    {"rules.checkpoint_interval_s", VEM_CONF_INT, S_OFF(rules.checkpoint_interval_s), "300", 5,
     86400, NULL, false,
     "seconds between checkpoints of the rule state (SPOOL_DIR/rules.N.ckpt): at most this much "
     "spool is judged again after a crash"},
    {"rules.completeness_delay_h", VEM_CONF_INT, S_OFF(rules.completeness_delay_h), "24", 0, 720,
     NULL, false,
     "hours after a Beijing day ends before its completeness is judged (re-sent data comes late)"},
    {"rules.rsd_history_readings", VEM_CONF_INT, S_OFF(rules.rsd_history_readings), "1000000", 0,
     100000000, NULL, false,
     "roadside readings at most loaded from PostgreSQL at start to seed the rsd.* chains of "
     "vehicles without checkpoint state (about 500 bytes each while loading: the query's copy and "
     "the workers'); 0: none"},
    {"rules.disabled", VEM_CONF_STRING, S_OFF(rules.disabled), "", 0, 0, NULL, true,
     "rules switched off, by name, e.g. obd.offline, rsd.hc_exceed; empty: all on"},
    {"rules.rsd_speed_kmh_min", VEM_CONF_REAL, S_OFF(rules.t.rsd_speed_kmh.lo), "20", 0, 0, NULL,
     true, "roadside reading valid (HJ 845) at speed from this, km/h"},
    {"rules.rsd_speed_kmh_max", VEM_CONF_REAL, S_OFF(rules.t.rsd_speed_kmh.hi), "80", 0, 0, NULL,
     true, "... up to this km/h, inclusive"},
    {"rules.rsd_accel_ms2_min", VEM_CONF_REAL, S_OFF(rules.t.rsd_accel_ms2.lo), "-0.5", 0, 0, NULL,
     true, "roadside reading valid (HJ 845) at acceleration from this, m/s2"},
    {"rules.rsd_accel_ms2_max", VEM_CONF_REAL, S_OFF(rules.t.rsd_accel_ms2.hi), "1.0", 0, 0, NULL,
     true, "... up to this m/s2, inclusive"},
    {"rules.rsd_vsp_kw_t_min", VEM_CONF_REAL, S_OFF(rules.t.rsd_vsp_kw_t.lo), "0", 0, 0, NULL, true,
     "roadside reading valid (HJ 845) at vehicle specific power from this, kW/t"},
    {"rules.rsd_vsp_kw_t_max", VEM_CONF_REAL, S_OFF(rules.t.rsd_vsp_kw_t.hi), "20", 0, 0, NULL,
     true, "... up to this kW/t, inclusive"},
    {"rules.rsd_wind_ms_min", VEM_CONF_REAL, S_OFF(rules.t.rsd_wind_ms.lo), "0", 0, 0, NULL, true,
     "roadside reading valid (HJ 845) at wind speed from this, m/s"},
    {"rules.rsd_wind_ms_max", VEM_CONF_REAL, S_OFF(rules.t.rsd_wind_ms.hi), "5", 0, 0, NULL, true,
     "... up to this m/s, inclusive"},
    {"rules.rsd_slope_pct_min", VEM_CONF_REAL, S_OFF(rules.t.rsd_slope_pct.lo), "-3", 0, 0, NULL,
     true, "roadside reading valid (HJ 845) at road slope from this, %"},
    {"rules.rsd_slope_pct_max", VEM_CONF_REAL, S_OFF(rules.t.rsd_slope_pct.hi), "5", 0, 0, NULL,
     true, "... up to this %, inclusive"},
    {"rules.rsd_limit_column", VEM_CONF_ENUM, S_OFF(rules.rsd_limit_column), "a", 0, 0, "a|b", true,
     "column of the GB 3847 roadside diesel limits (b: key regions, once adopted)"},
    {"rules.rsd_limit_b_from", VEM_CONF_STRING, S_OFF(rules.rsd_limit_b_from), "", 0, 0, NULL, true,
     "with column b: the date (YYYY-MM-DD, Beijing) the region adopted it; readings taken "
     "before it are judged by column a, so stored history and replays keep their verdicts "
     "(\"\": column b for every reading)"},
    {"rules.rsd_no_ppm_a", VEM_CONF_REAL, S_OFF(rules.t.rsd_no_ppm[0]), "1500", 0, 0, NULL, true,
     "roadside diesel NO limit, ppm, column a (exceeded strictly above)"},
    {"rules.rsd_no_ppm_b", VEM_CONF_REAL, S_OFF(rules.t.rsd_no_ppm[1]), "1000", 0, 0, NULL, true,
     "roadside diesel NO limit, ppm, column b"},
    {"rules.rsd_opacity_pct_a", VEM_CONF_REAL, S_OFF(rules.t.rsd_opacity_pct[0]), "30", 0, 0, NULL,
     true, "roadside opacity limit, %, column a (exceeded strictly above)"},
    {"rules.rsd_opacity_pct_b", VEM_CONF_REAL, S_OFF(rules.t.rsd_opacity_pct[1]), "30", 0, 0, NULL,
     true, "roadside opacity limit, %, column b"},
    {"rules.rsd_ringelmann_a", VEM_CONF_REAL, S_OFF(rules.t.rsd_ringelmann[0]), "1", 0, 0, NULL,
     true, "Ringelmann grade limit, column a (exceeded strictly above)"},
    {"rules.rsd_ringelmann_b", VEM_CONF_REAL, S_OFF(rules.t.rsd_ringelmann[1]), "1", 0, 0, NULL,
     true, "Ringelmann grade limit, column b"},
    {"rules.gas_co_pct", VEM_CONF_REAL, S_OFF(rules.t.gas_co_pct), "unset", 0, 0, NULL, true,
     "gasoline roadside CO limit, % (GB 18285); unset: rule off"},
    {"rules.gas_hc_ppm", VEM_CONF_REAL, S_OFF(rules.t.gas_hc_ppm), "unset", 0, 0, NULL, true,
     "gasoline roadside HC limit, ppm; unset: rule off"},
    {"rules.gas_no_ppm", VEM_CONF_REAL, S_OFF(rules.t.gas_no_ppm), "unset", 0, 0, NULL, true,
     "gasoline roadside NO limit, ppm; unset: rule off"},
    {"rules.rsd_chain_n", VEM_CONF_UINT, S_OFF(rules.t.rsd_chain_n), "2", 0, 0, NULL, true,
     "rsd.*: consecutive valid exceedances of one pollutant that make a violation"},
    {"rules.rsd_cycle_months", VEM_CONF_UINT, S_OFF(rules.t.rsd_cycle_months), "6", 0, 0, NULL,
     true, "rsd.*: ... within this many natural months"},
    {"rules.mil_days", VEM_CONF_UINT, S_OFF(rules.t.mil_days), "7", 0, 0, NULL, true,
     "days the MIL stays on before obd.mil_on's notice becomes a violation"},
    {"rules.reagent_min_pct", VEM_CONF_REAL, S_OFF(rules.t.reagent_min_pct), "2", 0, 0, NULL, true,
     "reagent level at or below this % counts as empty"},
    {"rules.reagent_minutes", VEM_CONF_UINT, S_OFF(rules.t.reagent_minutes), "30", 0, 0, NULL, true,
     "minutes of empty reagent while running before obd.reagent_empty"},
    {"rules.nox_ppm_max", VEM_CONF_REAL, S_OFF(rules.t.nox_ppm_max), "500", 0, 0, NULL, true,
     "obd.nox_high: downstream NOx above this, ppm (warm engine)"},
    {"rules.nox_minutes", VEM_CONF_UINT, S_OFF(rules.t.nox_minutes), "10", 0, 0, NULL, true,
     "obd.nox_high: ... for this many minutes"},
    {"rules.scr_eff_min", VEM_CONF_REAL, S_OFF(rules.t.scr_eff_min), "0.5", 0, 0, NULL, true,
     "obd.scr_ineffective: conversion efficiency below this"},
    {"rules.scr_minutes", VEM_CONF_UINT, S_OFF(rules.t.scr_minutes), "30", 0, 0, NULL, true,
     "obd.scr_ineffective: ... over a window of this many minutes of qualifying operation, "
     "sliding by whole minutes"},
    {"rules.scr_in_min_c", VEM_CONF_REAL, S_OFF(rules.t.scr_in_min_c), "250", 0, 0, NULL, true,
     "obd.scr_ineffective: counted only with SCR inlet at or above this, deg C"},
    {"rules.scr_up_min_ppm", VEM_CONF_REAL, S_OFF(rules.t.scr_up_min_ppm), "100", 0, 0, NULL, true,
     "obd.scr_ineffective: ... and upstream NOx at or above this, ppm"},
    {"rules.frozen_minutes", VEM_CONF_UINT, S_OFF(rules.t.frozen_minutes), "10", 0, 0, NULL, true,
     "obd.tamper: NOx sensor frozen for this many minutes while rpm moves"},
    {"rules.frozen_rpm_span", VEM_CONF_REAL, S_OFF(rules.t.frozen_rpm_span), "50", 0, 0, NULL, true,
     "obd.tamper (frozen sensor): ... while rpm moves by more than this"},
    {"rules.down_above_up_minutes", VEM_CONF_UINT, S_OFF(rules.t.down_above_up_minutes), "10", 0, 0,
     NULL, true, "obd.tamper: downstream NOx above upstream for this many minutes"},
    {"rules.invalid_minutes", VEM_CONF_UINT, S_OFF(rules.t.invalid_minutes), "30", 0, 0, NULL, true,
     "obd.tamper: NOx sensors invalid while running for this many minutes"},
    {"rules.offline_hours", VEM_CONF_UINT, S_OFF(rules.t.offline_hours), "72", 0, 0, NULL, true,
     "obd.offline: nothing received for this many hours"},
    {"rules.completeness_min", VEM_CONF_REAL, S_OFF(rules.t.completeness_min), "0.95", 0, 0, NULL,
     true, "obd.offline: daily completeness below this"},
    {"rules.warm_coolant_c", VEM_CONF_REAL, S_OFF(rules.t.warm_coolant_c), "70", 0, 0, NULL, true,
     "engine warm at or above this coolant temperature, deg C"},
    {"rules.warm_after_start_min", VEM_CONF_UINT, S_OFF(rules.t.warm_after_start_min), "20", 0, 0,
     NULL, true, "engine warm also this many minutes after the trip started"},
    {"rules.trip_gap_min", VEM_CONF_UINT, S_OFF(rules.t.trip_gap_min), "10", 0, 0, NULL, true,
     "a gap in the data longer than this many minutes ends a trip; nothing received for twice "
     "as long ends it too"},
    {"rules.backlog_wait_min", VEM_CONF_UINT, S_OFF(rules.t.backlog_wait_min), "10", 0, 0, NULL,
     true,
     "live data after a hole in a trip waits this many minutes of data for the hole's re-sent "
     "(0x03) samples before it is judged; 0: judged at once, a late re-send on its own track"},
    {"rules.backlog_hole_s", VEM_CONF_UINT, S_OFF(rules.t.backlog_hole_s), "5", 0, 0, NULL, true,
     "a gap in a live trip that misses at least this many seconds is a hole: the live data after "
     "it is held up to backlog_wait_min for its re-sent samples; a shorter gap (a terminal that "
     "skipped samples) is judged across at once, but for one in front of held samples that its "
     "frame's run of seconds reaches (a hole re-sent newest first), and its seconds, if they "
     "come after all, on the back-fill track; 1: every gap is a hole"},
    {"rules.fuel_density_kg_l", VEM_CONF_REAL, S_OFF(rules.t.fuel_density_kg_l), "0.835", 0, 0,
     NULL, true, "diesel density for the exhaust mass flow, kg/L"},
    {"rules.nox_u", VEM_CONF_REAL, S_OFF(rules.t.nox_u), "0.001586", 0, 0, NULL, true,
     "u of NOx in exhaust (GB 17691 PEMS)"},
    {"rules.window_min_power_pct", VEM_CONF_REAL, S_OFF(rules.t.window_min_power_pct), "20", 0, 0,
     NULL, true, "a NOx window is valid at this % of rated power or more"},
    {"rules.nox_window_mg_kwh", VEM_CONF_REAL, S_OFF(rules.t.nox_window_mg_kwh), "690", 0, 0, NULL,
     true, "obd.nox_window: 90th percentile limit, mg/kWh"},
    {"rules.nox_percentile", VEM_CONF_UINT, S_OFF(rules.t.nox_percentile), "90", 0, 0, NULL, true,
     "percentile of the valid windows judged against the limit"},
    {"rules.fusion_low_ppm", VEM_CONF_REAL, S_OFF(rules.t.fusion_low_ppm), "500", 0, 0, NULL, true,
     "fusion.obd_mismatch: OBD downstream NOx below this is low, ppm"},
    {"rules.fusion_match_s", VEM_CONF_UINT, S_OFF(rules.t.fusion_match_s), "2", 0, 0, NULL, true,
     "fusion.obd_mismatch: OBD samples within this many seconds of the reading"},
    {"rules.fusion_horizon_s", VEM_CONF_UINT, S_OFF(rules.t.fusion_horizon_s), "600", 0, 0, NULL,
     true, "seconds of OBD NOx kept per vehicle for late roadside readings"},
    {"log.level", VEM_CONF_ENUM, S_OFF(log.level), "info", 0, 0, "err|warning|notice|info|debug",
     true, "least urgent priority written to the journal"},
    {"log.burst", VEM_CONF_INT, S_OFF(log.burst), "10", 1, 10000, NULL, true,
     "lines per second one message may write before repeats are counted instead"},
};

#define S_NKEYS (sizeof s_keys / sizeof s_keys[0])

const vem_conf_key_t *vem_config_keys(size_t *n)
{
    *n = S_NKEYS;
    return s_keys;
}

__attribute__((format(printf, 3, 4))) static void s_err(char *err, size_t errlen, const char *fmt,
                                                        ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static void *s_field(vem_config_t *cfg, const vem_conf_key_t *k)
{
    return (char *)cfg + k->offset;
}

static const void *s_cfield(const vem_config_t *cfg, const vem_conf_key_t *k)
{
    return (const char *)cfg + k->offset;
}

/* True when value is one of k->allowed ("a|b|c"). */
static bool s_allowed(const vem_conf_key_t *k, const char *value)
{
    size_t len = strlen(value);
    for (const char *p = k->allowed; p && *p;) {
        const char *end = strchr(p, '|');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n == len && strncmp(p, value, n) == 0)
            return true;
        p = end ? end + 1 : p + n;
    }
    return false;
}

static char *s_strdup(const char *s)
{
    char *copy = strdup(s);
    if (!copy)
        abort();
    return copy;
}

static int s_rules_keys(vem_config_t *cfg, const char *path, char *err, size_t errlen);

/* Stores a textual value (from the table's defaults) into cfg. */
static void s_set_text(vem_config_t *cfg, const vem_conf_key_t *k, const char *text)
{
    void *f = s_field(cfg, k);
    switch (k->type) {
    case VEM_CONF_BOOL:
        *(bool *)f = strcmp(text, "true") == 0;
        break;
    case VEM_CONF_INT:
        *(int64_t *)f = strtoll(text, NULL, 10);
        break;
    case VEM_CONF_REAL:
        *(double *)f = strcmp(text, "unset") == 0 ? NAN : strtod(text, NULL);
        break;
    case VEM_CONF_UINT:
        *(unsigned *)f = (unsigned)strtoul(text, NULL, 10);
        break;
    case VEM_CONF_STRING:
    case VEM_CONF_LIST:
        free(*(char **)f);
        *(char **)f = s_strdup(text);
        break;
    case VEM_CONF_ENUM:
        if (strcmp(k->key, "log.level") == 0) {
            *(int *)f = vem_log_parse_level(text);
        } else {
            free(*(char **)f);
            *(char **)f = s_strdup(text);
        }
        break;
    }
}

vem_config_t *vem_config_defaults(void)
{
    vem_config_t *cfg = calloc(1, sizeof *cfg);
    if (!cfg)
        abort();
    for (size_t i = 0; i < S_NKEYS; i++)
        s_set_text(cfg, &s_keys[i], s_keys[i].dflt);
    char err[256];
    if (s_rules_keys(cfg, "defaults", err, sizeof err) != 0) {
        vem_log(VEM_LOG_ERR, "config", "%s", err); /* a bug in the table: tests catch it */
        abort();
    }
    return cfg;
}

void vem_config_destroy(vem_config_t **cfg_p)
{
    if (!cfg_p || !*cfg_p)
        return;
    for (size_t i = 0; i < S_NKEYS; i++) {
        const vem_conf_key_t *k = &s_keys[i];
        bool owns = k->type == VEM_CONF_STRING || k->type == VEM_CONF_LIST ||
                    (k->type == VEM_CONF_ENUM && strcmp(k->key, "log.level") != 0);
        if (owns)
            free(*(char **)s_field(*cfg_p, k));
    }
    free(*cfg_p);
    *cfg_p = NULL;
}

static const vem_conf_key_t *s_find(const char *key)
{
    for (size_t i = 0; i < S_NKEYS; i++)
        if (strcmp(s_keys[i].key, key) == 0)
            return &s_keys[i];
    return NULL;
}

static bool s_is_section(const char *name)
{
    size_t len = strlen(name);
    for (size_t i = 0; i < S_NKEYS; i++)
        if (strncmp(s_keys[i].key, name, len) == 0 && s_keys[i].key[len] == '.')
            return true;
    return false;
}

/* Applies an array (or list) of "name=value" strings: kept '\n'-joined. */
static int s_apply_list(vem_config_t *cfg, const vem_conf_key_t *k, const config_setting_t *s,
                        const char *where, char *err, size_t errlen)
{
    int type = config_setting_type(s);
    if (type != CONFIG_TYPE_ARRAY && type != CONFIG_TYPE_LIST) {
        s_err(err, errlen, "%s: '%s' must be an array of \"name=value\" strings", where, k->key);
        return -1;
    }
    char *joined = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&joined, &len);
    if (!out)
        abort();
    for (int i = 0; i < config_setting_length(s); i++) {
        const config_setting_t *item = config_setting_get_elem(s, (unsigned)i);
        const char *v = config_setting_get_string(item);
        const char *eq = v ? strchr(v, '=') : NULL;
        if (!v || !eq || eq == v || strchr(v, '\n')) {
            fclose(out);
            free(joined);
            s_err(err, errlen, "%s: '%s' item %d must be a \"name=value\" string", where, k->key,
                  i + 1);
            return -1;
        }
        fprintf(out, "%s%s", i ? "\n" : "", v);
    }
    fclose(out);
    s_set_text(cfg, k, joined);
    free(joined);
    return 0;
}

/* Applies one scalar setting of the file to cfg. */
static int s_apply(vem_config_t *cfg, const vem_conf_key_t *k, const config_setting_t *s,
                   const char *where, char *err, size_t errlen)
{
    int type = config_setting_type(s);
    void *f = s_field(cfg, k);
    switch (k->type) {
    case VEM_CONF_BOOL:
        if (type != CONFIG_TYPE_BOOL) {
            s_err(err, errlen, "%s: '%s' must be true or false", where, k->key);
            return -1;
        }
        *(bool *)f = config_setting_get_bool(s);
        return 0;
    case VEM_CONF_INT: {
        if (type != CONFIG_TYPE_INT && type != CONFIG_TYPE_INT64) {
            s_err(err, errlen, "%s: '%s' must be an integer", where, k->key);
            return -1;
        }
        long long v = config_setting_get_int64(s);
        if (v < k->min || v > k->max) {
            s_err(err, errlen, "%s: '%s' = %lld is out of range %" PRId64 "..%" PRId64, where,
                  k->key, v, k->min, k->max);
            return -1;
        }
        *(int64_t *)f = v;
        return 0;
    }
    case VEM_CONF_REAL:
        /* bounds: vem_rules_config_validate, once every key is in (s_check_keys) */
        if (type != CONFIG_TYPE_FLOAT && type != CONFIG_TYPE_INT && type != CONFIG_TYPE_INT64) {
            s_err(err, errlen, "%s: '%s' must be a number", where, k->key);
            return -1;
        }
        *(double *)f = type == CONFIG_TYPE_FLOAT ? config_setting_get_float(s)
                                                 : (double)config_setting_get_int64(s);
        return 0;
    case VEM_CONF_UINT: {
        if (type != CONFIG_TYPE_INT && type != CONFIG_TYPE_INT64) {
            s_err(err, errlen, "%s: '%s' must be an integer", where, k->key);
            return -1;
        }
        long long v = config_setting_get_int64(s);
        if (v < 0 || v > UINT32_MAX) {
            s_err(err, errlen, "%s: '%s' = %lld is out of range 0..%u", where, k->key, v,
                  UINT32_MAX);
            return -1;
        }
        *(unsigned *)f = (unsigned)v;
        return 0;
    }
    case VEM_CONF_STRING:
    case VEM_CONF_ENUM: {
        if (type != CONFIG_TYPE_STRING) {
            s_err(err, errlen, "%s: '%s' must be a string", where, k->key);
            return -1;
        }
        const char *v = config_setting_get_string(s);
        if (k->type == VEM_CONF_ENUM && !s_allowed(k, v)) {
            s_err(err, errlen, "%s: '%s' = \"%s\" is not one of %s", where, k->key, v, k->allowed);
            return -1;
        }
        s_set_text(cfg, k, v);
        return 0;
    }
    case VEM_CONF_LIST:
        return s_apply_list(cfg, k, s, where, err, errlen);
    }
    return -1;
}

/* Opens the file for libconfig. libconfig's own open reports every failure as CONFIG_ERR_FILE_IO
 * with whatever errno is left over (a directory came out as "No such file or directory"), so
 * the open and the check that it is not a directory happen here, with the real errno. */
static FILE *s_open(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "re");
    if (!f) {
        s_err(err, errlen, "%s: cannot read: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0) {
        s_err(err, errlen, "%s: cannot read: %s", path, strerror(errno));
        fclose(f);
        return NULL;
    }
    if (S_ISDIR(st.st_mode)) {
        s_err(err, errlen, "%s: is a directory", path);
        fclose(f);
        return NULL;
    }
    return f;
}

/* Fills the members of cfg->rules.t that come from strings (the limit column, the rules
 * switched off) and checks every threshold with the rules engine's own bounds. */
static int s_rules_keys(vem_config_t *cfg, const char *path, char *err, size_t errlen)
{
    vem_rules_config_t *t = &cfg->rules.t;
    t->rsd_column =
        strcmp(cfg->rules.rsd_limit_column, "b") == 0 ? VEM_RSD_LIMIT_B : VEM_RSD_LIMIT_A;
    t->rsd_b_from_us = INT64_MIN;
    if (*cfg->rules.rsd_limit_b_from &&
        !vem_rules_date_us(cfg->rules.rsd_limit_b_from, &t->rsd_b_from_us)) {
        s_err(err, errlen, "%s: rules.rsd_limit_b_from: '%s' is not a date (YYYY-MM-DD)", path,
              cfg->rules.rsd_limit_b_from);
        return -1;
    }
    for (unsigned r = 0; r < VEM_RULE_COUNT; r++)
        t->enabled[r] = true;
    const char *p = cfg->rules.disabled;
    while (*p) {
        size_t skip = strspn(p, ", \t");
        p += skip;
        size_t n = strcspn(p, ", \t");
        if (n == 0)
            break;
        char name[64];
        vem_rule_t rule;
        snprintf(name, sizeof name, "%.*s", (int)(n < sizeof name ? n : sizeof name - 1), p);
        if (n >= sizeof name || !vem_rules_lookup(name, &rule)) {
            s_err(err, errlen,
                  "%s: rules.disabled: no rule called '%.*s' (rules.md names, e.g. "
                  "obd.nox_window)",
                  path, (int)n, p);
            return -1;
        }
        t->enabled[rule] = false;
        p += n;
    }
    char why[256];
    if (vem_rules_config_validate(t, why, sizeof why) != 0) {
        s_err(err, errlen, "%s: rules.%s", path, why);
        return -1;
    }
    return 0;
}

/* Rules that involve more than one key, checked once every key is loaded: the one place for
 * them, so --check-config and SIGHUP refuse the same files. */
static int s_check_keys(vem_config_t *cfg, const char *path, char *err, size_t errlen)
{
    if (s_rules_keys(cfg, path, err, errlen) != 0)
        return -1;
    const char *ends[][3] = {
        {"gateways", cfg->gateways.curve_server_key, cfg->gateways.curve_clients_dir},
        {"stations", cfg->stations.curve_server_key, cfg->stations.curve_clients_dir}};
    for (size_t i = 0; i < 2; i++)
        if (!*ends[i][1] != !*ends[i][2]) {
            s_err(err, errlen, "%s: %s.curve_server_key and %s.curve_clients_dir go together", path,
                  ends[i][0], ends[i][0]);
            return -1;
        }
    /* The spool trims whole segments and never the one being written: at or below one segment
     * intake stops for good once it fills, and below two it stops each time a segment fills
     * until the previous one is trimmed. */
    int64_t max = cfg->spool.max_bytes, seg = cfg->spool.segment_bytes;
    if (max / 2 < seg) {
        s_err(err, errlen,
              "%s: spool.max_bytes %" PRId64 " must be at least 2 x spool.segment_bytes %" PRId64
              " (%" PRId64 "): the active segment is never trimmed, so intake would stall",
              path, max, seg, 2 * seg);
        return -1;
    }
    return 0;
}

/* Applies the settings libconfig read (from path, or a text named path) over the defaults. */
static vem_config_t *s_from(config_t *lc, const char *path, char *err, size_t errlen)
{
    vem_config_t *cfg = vem_config_defaults();
    size_t nset = 0;
    config_setting_t *root = config_root_setting(lc);
    for (int i = 0; i < config_setting_length(root); i++) {
        config_setting_t *section = config_setting_get_elem(root, (unsigned)i);
        const char *sname = config_setting_name(section);
        char where[600];
        snprintf(where, sizeof where, "%s:%d", path, config_setting_source_line(section));
        if (!sname || config_setting_type(section) != CONFIG_TYPE_GROUP || !s_is_section(sname)) {
            s_err(err, errlen, "%s: unknown section '%s'", where, sname ? sname : "?");
            goto fail;
        }
        for (int j = 0; j < config_setting_length(section); j++) {
            config_setting_t *s = config_setting_get_elem(section, (unsigned)j);
            char key[256];
            snprintf(key, sizeof key, "%s.%s", sname, config_setting_name(s));
            snprintf(where, sizeof where, "%s:%d", path, config_setting_source_line(s));
            const vem_conf_key_t *k = s_find(key);
            if (!k) {
                s_err(err, errlen, "%s: unknown key '%s'", where, key);
                goto fail;
            }
            if (s_apply(cfg, k, s, where, err, errlen) != 0)
                goto fail;
            nset++;
        }
    }
    /* An emptied file (truncated by an editor or a failed deploy) would otherwise load as all
     * defaults, and a SIGHUP would reset every reloadable key without a word. */
    if (nset == 0) {
        s_err(err, errlen, "%s: sets no key (empty configuration)", path);
        goto fail;
    }
    if (s_check_keys(cfg, path, err, errlen) != 0)
        goto fail;
    return cfg;
fail:
    vem_config_destroy(&cfg);
    return NULL;
}

vem_config_t *vem_config_load(const char *path, char *err, size_t errlen)
{
    config_t lc;
    config_init(&lc);
    vem_config_t *cfg = NULL;
    FILE *f = s_open(path, err, errlen);
    if (!f)
        goto done;
    if (!config_read(&lc, f)) {
        s_err(err, errlen, "%s:%d: %s", config_error_file(&lc) ? config_error_file(&lc) : path,
              config_error_line(&lc), config_error_text(&lc));
        goto done;
    }
    cfg = s_from(&lc, path, err, errlen);
done:
    if (f)
        fclose(f);
    config_destroy(&lc);
    return cfg;
}

vem_config_t *vem_config_parse(const char *text, const char *name, char *err, size_t errlen)
{
    config_t lc;
    config_init(&lc);
    vem_config_t *cfg = NULL;
    if (!config_read_string(&lc, text))
        s_err(err, errlen, "%s:%d: %s", name, config_error_line(&lc), config_error_text(&lc));
    else
        cfg = s_from(&lc, name, err, errlen);
    config_destroy(&lc);
    return cfg;
}

/* Writes the value of k in cfg as it would appear in the file. */
static void s_print_value(const vem_config_t *cfg, const vem_conf_key_t *k, FILE *out)
{
    const void *f = s_cfield(cfg, k);
    switch (k->type) {
    case VEM_CONF_BOOL:
        fputs(*(const bool *)f ? "true" : "false", out);
        break;
    case VEM_CONF_INT: {
        int64_t v = *(const int64_t *)f;
        fprintf(out, "%" PRId64 "%s", v, v > INT32_MAX || v < INT32_MIN ? "L" : "");
        break;
    }
    case VEM_CONF_REAL: {
        /* %.17g reads back to the same double; a float needs a point or an exponent */
        char num[64];
        snprintf(num, sizeof num, "%.17g", *(const double *)f);
        if (!strpbrk(num, ".eEn"))
            strcat(num, ".0");
        fputs(num, out);
        break;
    }
    case VEM_CONF_UINT:
        fprintf(out, "%u", *(const unsigned *)f);
        break;
    case VEM_CONF_LIST: {
        const char *s = *(char *const *)f;
        fputc('[', out);
        for (bool first = true; *s; first = false) {
            fputs(first ? " \"" : ", \"", out);
            for (; *s && *s != '\n'; s++) {
                if (*s == '"' || *s == '\\')
                    fputc('\\', out);
                fputc(*s, out);
            }
            fputc('"', out);
            if (*s == '\n')
                s++;
        }
        fputs((*(char *const *)f)[0] ? " ]" : "]", out);
        break;
    }
    case VEM_CONF_STRING:
    case VEM_CONF_ENUM: {
        const char *s;
        if (strcmp(k->key, "log.level") == 0) {
            static const char *names[] = {"", "", "", "err", "warning", "notice", "info", "debug"};
            int level = *(const int *)f;
            s = level >= 3 && level <= 7 ? names[level] : "info";
        } else {
            s = *(char *const *)f;
        }
        fputc('"', out);
        for (; *s; s++) {
            if (*s == '"' || *s == '\\')
                fputc('\\', out);
            fputc(*s, out);
        }
        fputc('"', out);
        break;
    }
    }
}

int vem_config_print(const vem_config_t *cfg, FILE *out)
{
    fprintf(out, "# vemd configuration (libconfig syntax). Every key, with its default,\n"
                 "# bounds and whether SIGHUP reloads it.\n");
    const char *section = NULL;
    size_t slen = 0;
    for (size_t i = 0; i < S_NKEYS; i++) {
        const vem_conf_key_t *k = &s_keys[i];
        const char *dot = strchr(k->key, '.');
        size_t len = (size_t)(dot - k->key);
        if (!section || len != slen || strncmp(section, k->key, len) != 0) {
            if (section)
                fputs("};\n", out);
            fprintf(out, "\n%.*s: {\n", (int)len, k->key);
            section = k->key;
            slen = len;
        }
        fprintf(out, "    # %s\n    # default ", k->help);
        if (k->type == VEM_CONF_STRING || k->type == VEM_CONF_ENUM)
            fprintf(out, "\"%s\"", k->dflt);
        else if (k->type == VEM_CONF_LIST)
            fputs(*k->dflt ? k->dflt : "[]", out);
        else
            fputs(k->dflt, out);
        if (k->type == VEM_CONF_INT)
            fprintf(out, ", range %" PRId64 "..%" PRId64, k->min, k->max);
        char bounds[96];
        if (strncmp(k->key, "rules.", 6) == 0 &&
            vem_rules_config_bounds(k->key + 6, bounds, sizeof bounds))
            fprintf(out, ", %s", bounds);
        if (k->type == VEM_CONF_ENUM)
            fprintf(out, ", one of %s", k->allowed);
        fprintf(out, "%s\n", k->reloadable ? ", reloadable (SIGHUP)" : ", needs a restart");
        /* an unset threshold has no value libconfig can write: left out, it stays unset */
        bool unset = k->type == VEM_CONF_REAL && isnan(*(const double *)s_cfield(cfg, k));
        fprintf(out, "    %s%s = ", unset ? "# " : "", dot + 1);
        if (unset)
            fputs("unset", out);
        else
            s_print_value(cfg, k, out);
        fputs(";\n", out);
    }
    if (section)
        fputs("};\n", out);
    return ferror(out) ? -1 : 0;
}

static bool s_equal(const vem_config_t *a, const vem_config_t *b, const vem_conf_key_t *k)
{
    const void *x = s_cfield(a, k), *y = s_cfield(b, k);
    switch (k->type) {
    case VEM_CONF_BOOL:
        return *(const bool *)x == *(const bool *)y;
    case VEM_CONF_INT:
        return *(const int64_t *)x == *(const int64_t *)y;
    case VEM_CONF_REAL: {
        double u = *(const double *)x, v = *(const double *)y;
        return u == v || (isnan(u) && isnan(v));
    }
    case VEM_CONF_UINT:
        return *(const unsigned *)x == *(const unsigned *)y;
    case VEM_CONF_STRING:
    case VEM_CONF_LIST:
    case VEM_CONF_ENUM:
        if (strcmp(k->key, "log.level") == 0)
            return *(const int *)x == *(const int *)y;
        return strcmp(*(char *const *)x, *(char *const *)y) == 0;
    }
    return false;
}

int vem_config_reload(vem_config_t *live, const vem_config_t *fresh, char *err, size_t errlen)
{
    size_t used = 0;
    err[0] = '\0';
    for (size_t i = 0; i < S_NKEYS; i++) {
        const vem_conf_key_t *k = &s_keys[i];
        if (s_equal(live, fresh, k))
            continue;
        if (!k->reloadable) {
            int n = snprintf(err + used, errlen - used, "%s%s",
                             used ? ", "
                                  : "changed keys that "
                                    "need a restart: ",
                             k->key);
            if (n > 0 && used + (size_t)n < errlen)
                used += (size_t)n;
            continue;
        }
        if (k->type == VEM_CONF_STRING || k->type == VEM_CONF_LIST ||
            (k->type == VEM_CONF_ENUM && strcmp(k->key, "log.level") != 0)) {
            char **dst = s_field(live, k);
            free(*dst);
            *dst = s_strdup(*(char *const *)s_cfield(fresh, k));
        } else if (k->type == VEM_CONF_INT) {
            *(int64_t *)s_field(live, k) = *(const int64_t *)s_cfield(fresh, k);
        } else if (k->type == VEM_CONF_BOOL) {
            *(bool *)s_field(live, k) = *(const bool *)s_cfield(fresh, k);
        } else if (k->type == VEM_CONF_REAL) {
            *(double *)s_field(live, k) = *(const double *)s_cfield(fresh, k);
        } else if (k->type == VEM_CONF_UINT) {
            *(unsigned *)s_field(live, k) = *(const unsigned *)s_cfield(fresh, k);
        } else {
            *(int *)s_field(live, k) = *(const int *)s_cfield(fresh, k);
        }
    }
    /* every member of the rules' thresholds is reloadable, and fresh's derived members
     * (enabled[], rsd_column) were worked out from its strings when it loaded */
    live->rules.t = fresh->rules.t;
    return 0;
}

/* ---- byte budget ------------------------------------------------------------------------------
 *
 * What every queue and buffer may hold once full. Where the code bounds bytes, the figure is
 * that bound. Where it bounds only a count of messages whose size depends on what terminals
 * send (the sink queues), the figure assumes typical real-time frames and says so.
 *
 *   reassembly      one buffer of terminals.max_frame_bytes per connection (reasm.h).
 *   socket queues   ZMQ_RCVHWM counts messages per connection. A ZMQ_STREAM message is one read
 *                   into libzmq's in_batch_size buffer (8192 B by default), and a message over
 *                   33 B keeps its whole buffer alive until we take it (zero copy): 1 MiB
 *                   written at once arrived here as 131 reads, none over 8192 B (libzmq 4.3.4).
 *                   Hence rcvhwm x (8 KiB + libzmq's refcount, content and msg_t) a connection.
 *   libzmq          ~21 KiB of its own per idle connection (NOTES.md: 24.3 KB of RSS per idle
 *                   terminal, ~21 KB of it the ZMQ_STREAM pipe).
 *   worker queues   ingest PUSH -> worker PULL over inproc, where libzmq adds the sender's
 *                   SNDHWM to the receiver's RCVHWM; both are pipeline.queue_hwm, so 2 x
 *                   queue_hwm inputs per worker, plus ingest's staged batch (512 inputs,
 *                   ingest.c). An input is a vem_input_hdr_t, a quarantine detail of at most
 *                   VEM_INPUT_DETAIL_MAX bytes and its bytes: a frame of at most
 *                   max_frame_bytes, or quarantined garbage of at most one read (8 KiB).
 *   sink queues     every worker has its own pipe to the sink: 2 x pg.queue_hwm messages each.
 *                   A message holds the records of up to 256 inputs (worker.c, records.h): a
 *                   record header, a quarantine detail of at most VEM_INPUT_DETAIL_MAX bytes
 *                   and the input's bytes, so it is bounded like an input. The sink never
 *                   stops reading while its spill has room, so a few messages are enough.
 *   sink batch      pg.batch_rows rows of 440 B (the sample rows of the shared vectors are
 *                   353 B for a stream block, 401 B with a supplementary block joined, 435 B
 *                   with invalid and abnormal names; a typical, not a bound: a frame of 64
 *                   blocks all markers makes ~31 KB of rows), the seqs it settles (up to 65536,
 *                   sink_pg.c) and the one message by which it may overshoot.
 *   kafka queues    the worker pipes as the sink queues' (kafka.queue_hwm), and the events
 *                   librdkafka holds: their values, at most kafka.queue_kbytes, and for each
 *                   of at most kafka.queue_messages its message, headers, the sink's record,
 *                   key and id and the rest of a 4 KiB page: 1 KiB. Measured: with the samples
 *                   topic's leader down, vemd's RSS grew 1,740 B per event held (307,388 KiB
 *                   over 180,890 events, 200 trucks at 1 Hz, 10 samples a frame) for values of
 *                   ~720 B (the samples topic's first 1000 messages: 728,911 B), and stopped
 *                   at kafka.queue_messages (then the sink spilled).
 *
 * Descriptors: one per terminal connection, plus a reserve: 64 for the process (stdio,
 * signalfd, listeners, libzmq's I/O and reaper threads, PostgreSQL, HTTP, spool files) and 8
 * per worker (the eventfd behind each of its ZeroMQ sockets: PULL, REP, two PUSH, the actor
 * pair, ingest's PUSH to it and the control REQ to it). At the limit libzmq's accept loop
 * spins (NOTES.md), so the limit must be known to hold them all. */

#define S_ZMQ_READ           8192u          /* libzmq's in_batch_size: the largest STREAM read */
#define S_ZMQ_READ_HELD      (8192u + 128u) /* what one queued read keeps allocated */
#define S_ZMQ_PER_CONNECTION (21u * 1024u)  /* NOTES.md */
#define S_INGEST_BATCH       512u           /* inputs ingest stages per spool flush */
#define S_ROW_BYTES          440u           /* a typical sample row, as COPY binary */
#define S_RECORD_HEADER      64u            /* a record's fixed part (records.c), rounded up */
#define S_SINK_MAX_SEQS      65536u         /* seqs the sink's batch settles at most */
#define S_KAFKA_PER_EVENT    1024u          /* what an event held costs besides its value */
#define S_FD_RESERVE         64u
#define S_FD_PER_WORKER      8u

/* Bytes of a worker -> sink message settling VEM_WORKER_BATCH inputs of at most data bytes:
 * each a record header, its quarantine detail and its bytes (records.h). */
static uint64_t s_sink_message(uint64_t data)
{
    return sizeof(vem_records_hdr_t) +
           (uint64_t)VEM_WORKER_BATCH * (S_RECORD_HEADER + VEM_INPUT_DETAIL_MAX + data);
}

/* The parts of vem_budget_t, as printed and as named in a refusal. */
static const struct {
    const char *name;
    const char *grows_with;
    size_t offset;
} s_parts[] = {
    {"reassembly buffers", "terminals.max_connections x terminals.max_frame_bytes",
     offsetof(vem_budget_t, reassembly)},
    {"terminal socket queues", "terminals.max_connections x terminals.rcvhwm x 8 KiB reads",
     offsetof(vem_budget_t, socket_queues)},
    {"libzmq per connection", "terminals.max_connections x 21 KiB",
     offsetof(vem_budget_t, zmq_connections)},
    {"worker queues", "workers x 2 x pipeline.queue_hwm inputs of max_frame_bytes or 8 KiB",
     offsetof(vem_budget_t, worker_queues)},
    {"sink queues", "workers x 2 x pg.queue_hwm messages of 256 inputs' records",
     offsetof(vem_budget_t, sink_queues)},
    {"sink batch", "pg.batch_rows x 440 B rows", offsetof(vem_budget_t, sink_batch)},
    {"kafka queues",
     "workers x 2 x kafka.queue_hwm messages + kafka.queue_kbytes + kafka.queue_messages x 1 KiB",
     offsetof(vem_budget_t, kafka_queue)},
};

#define S_NPARTS (sizeof s_parts / sizeof s_parts[0])

static uint64_t s_part(const vem_budget_t *b, size_t i)
{
    uint64_t v;
    memcpy(&v, (const char *)b + s_parts[i].offset, sizeof v);
    return v;
}

/* v in binary units with one decimal ("2.5 GiB"), into out. */
static const char *s_human(uint64_t v, char *out, size_t cap)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    double x = (double)v;
    size_t u = 0;
    while (x >= 1024 && u + 1 < sizeof units / sizeof units[0]) {
        x /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(out, cap, "%" PRIu64 " B", v);
    else
        snprintf(out, cap, "%.1f %s", x, units[u]);
    return out;
}

int vem_config_budget(const vem_config_t *cfg, vem_budget_t *out, char *err, size_t errlen)
{
    *out = (vem_budget_t){0};
    err[0] = '\0';
    long cores = sysconf(_SC_NPROCESSORS_ONLN); /* as main.c does for pipeline.workers = 0 */
    out->workers =
        cfg->pipeline.workers ? (unsigned)cfg->pipeline.workers : (unsigned)(cores > 0 ? cores : 1);
    /* The key bounds keep every product far below 2^63. */
    uint64_t conns = (uint64_t)cfg->terminals.max_connections, workers = out->workers;
    uint64_t frame = (uint64_t)cfg->terminals.max_frame_bytes;
    out->reassembly = conns * frame;
    out->socket_queues = conns * (uint64_t)cfg->terminals.rcvhwm * S_ZMQ_READ_HELD;
    out->zmq_connections = conns * S_ZMQ_PER_CONNECTION;
    uint64_t data = frame > S_ZMQ_READ ? frame : S_ZMQ_READ;
    uint64_t input = sizeof(vem_input_hdr_t) + VEM_INPUT_DETAIL_MAX + data;
    out->worker_queues = (workers * 2 * (uint64_t)cfg->pipeline.queue_hwm + S_INGEST_BATCH) * input;
    if (cfg->pg.enable) {
        uint64_t msg = s_sink_message(data);
        out->sink_queues = workers * 2 * (uint64_t)cfg->pg.queue_hwm * msg;
        out->sink_batch =
            (uint64_t)cfg->pg.batch_rows * S_ROW_BYTES + S_SINK_MAX_SEQS * sizeof(uint64_t) + msg;
    }
    if (cfg->kafka.enable) /* the worker pipes, and the events librdkafka holds */
        out->kafka_queue = workers * 2 * (uint64_t)cfg->kafka.queue_hwm * s_sink_message(data) +
                           (uint64_t)cfg->kafka.queue_kbytes * 1024 +
                           (uint64_t)cfg->kafka.queue_messages * S_KAFKA_PER_EVENT;
    for (size_t i = 0; i < S_NPARTS; i++)
        out->total += s_part(out, i);

    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    out->memory = pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page : 0;
    struct rlimit rl;
    out->nofile = getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY
                      ? UINT64_MAX
                      : (uint64_t)rl.rlim_cur;
    out->descriptors = conns + S_FD_RESERVE + S_FD_PER_WORKER * workers;

    /* Half, so the page cache (the spool is written through it), PostgreSQL on the same host
     * and the allocator's own overhead keep room. */
    if (out->memory && out->total > out->memory / 2) {
        size_t big = 0;
        for (size_t i = 1; i < S_NPARTS; i++)
            if (s_part(out, i) > s_part(out, big))
                big = i;
        char total[32], memory[32], part[32];
        s_err(err, errlen,
              "memory budget %s is more than half of the machine's %s; biggest part: %s %s (%s)",
              s_human(out->total, total, sizeof total), s_human(out->memory, memory, sizeof memory),
              s_parts[big].name, s_human(s_part(out, big), part, sizeof part),
              s_parts[big].grows_with);
        return -1;
    }
    if (out->descriptors > out->nofile) {
        s_err(err, errlen,
              "terminals.max_connections %" PRIu64 " + %" PRIu64 " reserved descriptors = %" PRIu64
              " do not fit under the open-file limit %" PRIu64
              " (soft RLIMIT_NOFILE; raise LimitNOFILE or lower terminals.max_connections)",
              conns, out->descriptors - conns, out->descriptors, out->nofile);
        return -1;
    }
    return 0;
}

int vem_config_print_budget(const vem_budget_t *b, FILE *out)
{
    char v[32], m[32];
    fprintf(out, "memory budget (bytes the queues and buffers hold when full, %u workers):\n",
            b->workers);
    for (size_t i = 0; i < S_NPARTS; i++)
        fprintf(out, "  %-24s %10s  %s\n", s_parts[i].name, s_human(s_part(b, i), v, sizeof v),
                s_parts[i].grows_with);
    if (b->memory)
        fprintf(out, "  %-24s %10s  of %s of memory (at most half allowed)\n", "total",
                s_human(b->total, v, sizeof v), s_human(b->memory, m, sizeof m));
    else
        fprintf(out, "  %-24s %10s  (memory of the machine unknown)\n", "total",
                s_human(b->total, v, sizeof v));
    if (b->nofile == UINT64_MAX)
        fprintf(out, "descriptors: %" PRIu64 " (no open-file limit)\n", b->descriptors);
    else
        fprintf(out,
                "descriptors: %" PRIu64 " of %" PRIu64 " (terminals.max_connections + %" PRIu64
                " reserved)\n",
                b->descriptors, b->nofile, S_FD_RESERVE + S_FD_PER_WORKER * (uint64_t)b->workers);
    return ferror(out) ? -1 : 0;
}
