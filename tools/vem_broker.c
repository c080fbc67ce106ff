/* vem-broker — a Kafka-protocol broker process for tests and the demo.
 *
 *   vem-broker [--brokers N] [--topic NAME:PARTITIONS]... [--leader NAME=BROKER]...
 *              [--fault-broker BROKER] [--bootstrap-file PATH] [--pid-file PATH]
 *
 * No Kafka broker is packaged for Debian 12, so this runs librdkafka's own mock cluster
 * (rdkafka_mock.h) in a process of its own: clients reach it over TCP on loopback exactly as
 * they would a real cluster. It prints the bootstrap address on stdout and, with
 * --bootstrap-file, writes it to PATH atomically (a temp file renamed into place), so a script
 * can wait for the file. Topics given with --topic exist from the start; the mock makes others
 * on first use, their partitions' leaders spread over the brokers.
 *
 * Faults, for outage tests, keep what the brokers hold: SIGUSR1 takes every broker down
 * (connections dropped and refused), SIGUSR2 brings them back. SIGTERM or SIGINT destroy the
 * cluster and exit 0. Handlers only set flags; the main loop acts on them.
 *
 * One topic can fail while the others go on: --leader NAME=BROKER makes broker BROKER (1..N)
 * the leader of every partition of NAME, which must be given with --topic, and --fault-broker
 * BROKER makes SIGUSR1 and SIGUSR2 take down and bring back that broker alone. The mock moves
 * no leadership when a broker goes down, so NAME's events wait while topics led by the other
 * brokers are delivered. */
#include <errno.h>
#include <getopt.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t s_stop, s_down, s_up;

static void s_on_signal(int sig)
{
    if (sig == SIGUSR1)
        s_down = 1;
    else if (sig == SIGUSR2)
        s_up = 1;
    else
        s_stop = 1;
}

static int s_usage(FILE *out, int rc)
{
    fprintf(out, "usage: vem-broker [--brokers N] [--topic NAME:PARTITIONS]... "
                 "[--leader NAME=BROKER]...\n"
                 "                  [--fault-broker BROKER] [--bootstrap-file PATH] "
                 "[--pid-file PATH]\n"
                 "SIGUSR1: all brokers (or the --fault-broker) down; SIGUSR2: up again; "
                 "SIGTERM/SIGINT: exit.\n");
    return rc;
}

/* A broker id of the cluster (1..brokers), or -1. */
static int s_broker_id(const char *text, int brokers)
{
    char *end;
    long id = strtol(text, &end, 10);
    return *text && !*end && id >= 1 && id <= brokers ? (int)id : -1;
}

/* Pins every partition of the topics named in leaders ("NAME=BROKER") to its broker; the topic
 * must be one of topics (made already, with its partition count after the colon). 0 or -1. */
static int s_pin_leaders(rd_kafka_mock_cluster_t *mc, char **leaders, int nleaders, char **topics,
                         const int *partitions, int ntopics, int brokers)
{
    for (int i = 0; i < nleaders; i++) {
        char *eq = strrchr(leaders[i], '=');
        *eq = '\0';
        int id = s_broker_id(eq + 1, brokers);
        int t = 0;
        while (t < ntopics && strcmp(topics[t], leaders[i]) != 0)
            t++;
        if (id < 0 || t == ntopics) {
            fprintf(stderr, "vem-broker: --leader %s=%s: %s\n", leaders[i], eq + 1,
                    id < 0 ? "no such broker" : "the topic is not given with --topic");
            return -1;
        }
        for (int p = 0; p < partitions[t]; p++) {
            rd_kafka_resp_err_t err = rd_kafka_mock_partition_set_leader(mc, topics[t], p, id);
            if (err) {
                fprintf(stderr, "vem-broker: leader of %s [%d]: %s\n", topics[t], p,
                        rd_kafka_err2str(err));
                return -1;
            }
        }
    }
    return 0;
}

static int s_write_atomic(const char *path, const char *text)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return -1;
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -1;
    int ok = fprintf(f, "%s\n", text) > 0;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option options[] = {{"brokers", required_argument, NULL, 'b'},
                                            {"topic", required_argument, NULL, 't'},
                                            {"leader", required_argument, NULL, 'l'},
                                            {"fault-broker", required_argument, NULL, 'F'},
                                            {"bootstrap-file", required_argument, NULL, 'f'},
                                            {"pid-file", required_argument, NULL, 'p'},
                                            {"help", no_argument, NULL, 'h'},
                                            {NULL, 0, NULL, 0}};
    int brokers = 3;
    const char *bootstrap_file = NULL, *pid_file = NULL;
    const char *fault_text = NULL;
    char *topics[64], *leaders[64];
    int partitions[64];
    int ntopics = 0, nleaders = 0, opt;
    while ((opt = getopt_long(argc, argv, "b:t:l:F:f:p:h", options, NULL)) != -1) {
        switch (opt) {
        case 'b':
            brokers = atoi(optarg);
            if (brokers < 1 || brokers > 16) {
                fprintf(stderr, "vem-broker: --brokers must be 1..16\n");
                return 2;
            }
            break;
        case 't':
            if (ntopics == 64 || !strchr(optarg, ':')) {
                fprintf(stderr, "vem-broker: --topic takes NAME:PARTITIONS (at most 64)\n");
                return 2;
            }
            topics[ntopics++] = optarg;
            break;
        case 'l':
            if (nleaders == 64 || !strchr(optarg, '=')) {
                fprintf(stderr, "vem-broker: --leader takes NAME=BROKER (at most 64)\n");
                return 2;
            }
            leaders[nleaders++] = optarg;
            break;
        case 'F':
            fault_text = optarg;
            break;
        case 'f':
            bootstrap_file = optarg;
            break;
        case 'p':
            pid_file = optarg;
            break;
        case 'h':
            return s_usage(stdout, 0);
        default:
            return s_usage(stderr, 2);
        }
    }
    if (optind != argc)
        return s_usage(stderr, 2);
    /* the broker the signals act on: -1, every one */
    int fault = fault_text ? s_broker_id(fault_text, brokers) : -1;
    if (fault_text && fault < 0) {
        fprintf(stderr, "vem-broker: --fault-broker must be 1..%d\n", brokers);
        return 2;
    }

    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof errstr);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!rk) {
        fprintf(stderr, "vem-broker: %s\n", errstr);
        return 1;
    }
    rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, brokers);
    if (!mc) {
        fprintf(stderr, "vem-broker: cannot create the mock cluster\n");
        rd_kafka_destroy(rk);
        return 1;
    }
    int rc = 0;
    for (int i = 0; i < ntopics; i++) {
        char *colon = strrchr(topics[i], ':');
        *colon = '\0';
        partitions[i] = atoi(colon + 1);
        int replicas = brokers < 3 ? brokers : 3;
        rd_kafka_resp_err_t err =
            partitions[i] > 0 ? rd_kafka_mock_topic_create(mc, topics[i], partitions[i], replicas)
                              : RD_KAFKA_RESP_ERR__INVALID_ARG;
        if (err) {
            fprintf(stderr, "vem-broker: topic %s: %s\n", topics[i], rd_kafka_err2str(err));
            rc = 2;
            goto done;
        }
    }
    if (s_pin_leaders(mc, leaders, nleaders, topics, partitions, ntopics, brokers) != 0) {
        rc = 2;
        goto done;
    }
    const char *bootstraps = rd_kafka_mock_cluster_bootstraps(mc);
    /* Signals stay blocked except inside sigsuspend, so none slips in between the flag checks
     * and the wait. */
    sigset_t mask, waitmask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGUSR1);
    sigaddset(&mask, SIGUSR2);
    sigprocmask(SIG_BLOCK, &mask, &waitmask);
    struct sigaction sa = {.sa_handler = s_on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGUSR2, &sa, NULL);
    if (pid_file) {
        char pid[32];
        snprintf(pid, sizeof pid, "%ld", (long)getpid());
        if (s_write_atomic(pid_file, pid) != 0) {
            fprintf(stderr, "vem-broker: %s: %s\n", pid_file, strerror(errno));
            rc = 1;
            goto done;
        }
    }
    printf("%s\n", bootstraps);
    fflush(stdout);
    if (bootstrap_file && s_write_atomic(bootstrap_file, bootstraps) != 0) {
        fprintf(stderr, "vem-broker: %s: %s\n", bootstrap_file, strerror(errno));
        rc = 1;
        goto done;
    }
    fprintf(stderr, "vem-broker: %d brokers at %s, %d topics\n", brokers, bootstraps, ntopics);
    while (!s_stop) {
        sigsuspend(&waitmask);
        if (s_down) {
            s_down = 0;
            rd_kafka_mock_broker_set_down(mc, fault);
            if (fault < 0)
                fprintf(stderr, "vem-broker: all brokers down\n");
            else
                fprintf(stderr, "vem-broker: broker %d down\n", fault);
        }
        if (s_up) {
            s_up = 0;
            rd_kafka_mock_broker_set_up(mc, fault);
            if (fault < 0)
                fprintf(stderr, "vem-broker: all brokers up\n");
            else
                fprintf(stderr, "vem-broker: broker %d up\n", fault);
        }
    }
done:
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(rk);
    if (pid_file)
        unlink(pid_file);
    return rc;
}
