/* vemctl — operator and enforcement CLI. Each subcommand lives in its own
 * tools/vemctl_NAME.c and exports one entry point with main()'s contract:
 * argv[0] is the subcommand name; returns the process exit code
 * (0 ok, 1 the work found a problem, 2 usage error). */
#ifndef VEM_VEMCTL_H
#define VEM_VEMCTL_H

/* decode: HJ 1239 / GB 17691 frames (hex lines or --raw stream) to JSON. */
int vemctl_decode_main(int argc, char **argv);

/* kafka: produce to / consume from a Kafka cluster (used with vem-broker). */
int vemctl_kafka_main(int argc, char **argv);

/* tail: a topic's events for people, from its end or its beginning, optionally one key's. */
int vemctl_tail_main(int argc, char **argv);

/* status: counters of a running vemd, from its control socket. */
int vemctl_status_main(int argc, char **argv);

/* spool: what vemd's input spool holds on disk, and each consumer's backlog. */
int vemctl_spool_main(int argc, char **argv);

/* db: migrations, partitions and retention of the vem database. */
int vemctl_db_main(int argc, char **argv);

/* vehicles: the vehicle registry (import from CSV, list). */
int vemctl_vehicles_main(int argc, char **argv);

/* violations: query violations with filters, as a table, JSON or CSV. */
int vemctl_violations_main(int argc, char **argv);

/* vehicle: one vehicle's registry entry, latest state, violations and recent samples. */
int vemctl_vehicle_main(int argc, char **argv);

/* explain: why a violation was raised, step by step, from its stored evidence. */
int vemctl_explain_main(int argc, char **argv);

/* rsd: send roadside readings to vemd as a station would (rsd send). */
int vemctl_rsd_main(int argc, char **argv);

/* vemctl keys gen NAME: a CURVE key pair for a gateway or station endpoint or client. */
int vemctl_keys_main(int argc, char **argv);

/* Connects with a libpq connection string (NULL or "": libpq's environment); prints the
 * reason and returns NULL on failure. Returns a PGconn *. */
struct pg_conn;
struct pg_conn *vemctl_db_connect(const char *conninfo);

#endif
