/* vemctl — operator and enforcement CLI: dispatches to one subcommand per file. */
#include "vemctl.h"
#include "vemctl_fmt.h"

#include <stdio.h>
#include <string.h>

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *help;
} s_command_t;

static const s_command_t s_commands[] = {
    {"decode", vemctl_decode_main, "decode remote-OBD frames (hex lines or --raw) to JSON"},
    {"kafka", vemctl_kafka_main, "produce to or consume from a Kafka topic"},
    {"tail", vemctl_tail_main,
     "print a Kafka topic's events: pretty on a terminal, lines in a pipe"},
    {"status", vemctl_status_main, "counters, connections and queue depths of a running vemd"},
    {"spool", vemctl_spool_main, "segments, seqs and consumer backlogs of the input spool"},
    {"db", vemctl_db_main, "apply schema migrations, create or prune daily partitions"},
    {"vehicles", vemctl_vehicles_main, "import the vehicle registry from CSV, or list it"},
    {"violations", vemctl_violations_main, "violations by VIN, plate, region, time or rule"},
    {"vehicle", vemctl_vehicle_main, "one vehicle: registry, latest state, violations, samples"},
    {"explain", vemctl_explain_main, "why a violation was raised, step by step"},
    {"rsd", vemctl_rsd_main, "send roadside readings (JSON lines or CSV) as a station would"},
    {"keys", vemctl_keys_main, "generate CURVE key pairs for the gateway and station endpoints"},
    {NULL, NULL, NULL}};

static void s_usage(FILE *out)
{
    fprintf(out, "usage: vemctl COMMAND [ARGS...]\n\ncommands:\n");
    for (const s_command_t *c = s_commands; c->name; c++)
        fprintf(out, "  %-10s %s\n", c->name, c->help);
    fprintf(out, "\n'vemctl COMMAND --help' describes a command.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        s_usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        s_usage(stdout);
        return 0;
    }
    vemctl_fmt_init(); /* tables pad by display width */
    for (const s_command_t *c = s_commands; c->name; c++)
        if (strcmp(argv[1], c->name) == 0)
            return c->run(argc - 1, argv + 1);
    fprintf(stderr, "vemctl: unknown command '%s'\n", argv[1]);
    s_usage(stderr);
    return 2;
}
