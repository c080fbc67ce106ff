/* bench-kafka — events per second through the Kafka sink, against a bare librdkafka producer
 * sending the same messages with the same settings, measured in the same run.
 *
 *   bench-kafka [--trucks N] [--frames N] [--linger MS] [--rounds N] [--signature]
 *
 * Brokers: VEM_TEST_KAFKA when set, else a vem-broker of its own (beside this binary, one
 * broker, stopped at the end). Input: a simulated fleet (tools/sim_fleet) of --trucks trucks,
 * --frames HJ 1239 real-time frames each of 10 samples and a supplementary block, encoded by
 * the project's encoder and packed into worker messages of 256 inputs as the workers send
 * them (records.h); with --signature each frame's record says its signature verified, as the
 * workers' do under terminals.signatures flag or enforce, so every event carries "signature_check".
 * Two figures:
 *   sink  the messages go to the sink actor over its inproc queue; the clock stops when the
 *         sink's acknowledgement says every input is settled, which it sends only after the
 *         delivery report of the input's last event (and the cursor is on disk): decoding,
 *         JSON, produce, delivery and cursor are all inside
 *   bare  the same events (key, value, three headers), made beforehand, through a bare
 *         producer built from the sink's own configuration (vem_sink_kafka_conf), to a topic
 *         with the same partitions; the clock stops at the last delivery report
 * Each is run --rounds times (default 3), alternating, and the best run of each counts. The
 * last line is key=value figures; msgs_per_s is the sink's, ratio = sink / bare. */
#include "actor.h"
#include "bench_util.h"
#include "ingest.h"
#include "kevents.h"
#include "metrics.h"
#include "records.h"
#include "sink_kafka.h"
#include "sim_fleet.h"
#include "sim_frames.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define S_SAMPLES    10
#define S_PER_BATCH  256
#define S_PARTITIONS 6

/* CPU time of the whole process (every thread, this one's broker connections included). */
static double s_cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* CPU seconds so far of this process's threads whose name starts with prefix (schedstat: ns). */
static double s_threads_cpu(const char *prefix)
{
    double sum = 0;
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    while (d && (e = readdir(d))) {
        char path[300], name[64] = "";
        unsigned long long ns = 0;
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        bool match = fgets(name, sizeof name, f) && strncmp(name, prefix, strlen(prefix)) == 0;
        fclose(f);
        snprintf(path, sizeof path, "/proc/self/task/%s/schedstat", e->d_name);
        if (match && (f = fopen(path, "r"))) {
            if (fscanf(f, "%llu", &ns) == 1)
                sum += (double)ns / 1e9;
            fclose(f);
        }
    }
    if (d)
        closedir(d);
    return sum;
}

/* Starts a vem-broker beside argv0 with the two topics; returns its pid, fills bootstrap. */
static pid_t s_broker(const char *argv0, const char *dir, const char *t1, const char *t2,
                      char *bootstrap, size_t cap)
{
    char self[PATH_MAX], bin[PATH_MAX + 16], file[PATH_MAX], topic1[256], topic2[256];
    snprintf(self, sizeof self, "%s", argv0);
    snprintf(bin, sizeof bin, "%s/vem-broker", dirname(self));
    snprintf(file, sizeof file, "%s/bootstrap", dir);
    snprintf(topic1, sizeof topic1, "%s:%d", t1, S_PARTITIONS);
    snprintf(topic2, sizeof topic2, "%s:%d", t2, S_PARTITIONS);
    pid_t pid = fork();
    if (pid == 0) {
        execl(bin, bin, "--brokers", "1", "--topic", topic1, "--topic", topic2, "--bootstrap-file",
              file, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 100; i++) {
        FILE *f = fopen(file, "r");
        if (f) {
            bool ok = fgets(bootstrap, (int)cap, f) != NULL;
            fclose(f);
            if (ok) {
                bootstrap[strcspn(bootstrap, "\n")] = '\0';
                return pid;
            }
        }
        struct timespec ts = {0, 100000000};
        nanosleep(&ts, NULL);
    }
    vem_bench_die(bin, "did not start");
    return -1;
}

typedef struct {
    char key[64];
    char *value;
    size_t len;
    char type[16];
    char id[192];
} s_event_t;

typedef struct {
    s_event_t *ev;
    size_t n, cap;
} s_events_t;

static void s_keep(void *arg, vem_kevent_t *ev)
{
    s_events_t *all = arg;
    if (all->n == all->cap) {
        all->cap = all->cap ? all->cap * 2 : 4096;
        all->ev = realloc(all->ev, all->cap * sizeof *all->ev);
        if (!all->ev)
            abort();
    }
    s_event_t *e = &all->ev[all->n++];
    snprintf(e->key, sizeof e->key, "%s", ev->key);
    snprintf(e->type, sizeof e->type, "%s", ev->type);
    snprintf(e->id, sizeof e->id, "%s", ev->id);
    e->value = malloc(ev->value_len);
    if (!e->value)
        abort();
    memcpy(e->value, ev->value, ev->value_len);
    e->len = ev->value_len;
}

static void s_count(void *arg, vem_kevent_t *ev)
{
    (void)ev;
    (*(size_t *)arg)++;
}

static void s_on_bare_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    long *counts = opaque;
    counts[m->err ? 1 : 0]++;
}

static double s_metric;
static void s_find(void *arg, const char *series, double value)
{
    if (strcmp(series, arg) == 0)
        s_metric = value;
}

int main(int argc, char **argv)
{
    unsigned trucks = 200, frames = 100;
    int rounds = 3;
    long linger = -1;
    bool signature = false;
    int opt;
    static const struct option options[] = {
        {"trucks", required_argument, NULL, 't'}, {"frames", required_argument, NULL, 'f'},
        {"linger", required_argument, NULL, 'l'}, {"rounds", required_argument, NULL, 'r'},
        {"signature", no_argument, NULL, 's'},    {NULL, 0, NULL, 0}};
    while ((opt = getopt_long(argc, argv, "t:f:l:r:s", options, NULL)) != -1) {
        if (opt == 't')
            trucks = (unsigned)atoi(optarg);
        else if (opt == 'f')
            frames = (unsigned)atoi(optarg);
        else if (opt == 'l')
            linger = atol(optarg);
        else if (opt == 'r')
            rounds = atoi(optarg);
        else if (opt == 's')
            signature = true;
        else {
            fprintf(stderr, "usage: bench-kafka [--trucks N] [--frames N] [--linger MS] "
                            "[--rounds N] [--signature]\n");
            return 2;
        }
    }
    if (trucks < 1 || frames < 1 || rounds < 1)
        vem_bench_die("arguments", "--trucks, --frames and --rounds must be at least 1");
    char dir[] = "/tmp/bench-kafka.XXXXXX";
    if (!mkdtemp(dir))
        vem_bench_die("mkdtemp", strerror(errno));
    char sink_topic[64], bare_topic[64], bootstrap[512];
    snprintf(sink_topic, sizeof sink_topic, "bench.sink.%ld", (long)getpid());
    snprintf(bare_topic, sizeof bare_topic, "bench.bare.%ld", (long)getpid());
    pid_t broker = 0;
    const char *env = getenv("VEM_TEST_KAFKA");
    if (env && *env)
        snprintf(bootstrap, sizeof bootstrap, "%s", env);
    else
        broker = s_broker(argv[0], dir, sink_topic, bare_topic, bootstrap, sizeof bootstrap);

    /* The fleet's frames as worker messages: truck after truck per second, like the workers
     * see them. */
    vem_sim_truck_t *fleet = calloc(trucks, sizeof *fleet);
    vem_hj1239_frame_t *scratch = malloc(sizeof *scratch);
    if (!fleet || !scratch)
        abort();
    for (unsigned i = 0; i < trucks; i++)
        vem_sim_truck_init(&fleet[i], 1239, i, 118.796877, 32.060255, 0);
    int64_t t0 = 1767225600; /* 2026-01-01 */
    size_t nmsgs = 0, cap = 0;
    uint8_t **msgs = NULL;
    size_t *lens = NULL;
    vem_records_t out = {0};
    uint64_t seq = 0;
    double bytes = 0;
    for (unsigned k = 0; k < frames; k++) {
        for (unsigned i = 0; i < trucks; i++) {
            vem_sim_sample_t samples[S_SAMPLES];
            for (int s = 0; s < S_SAMPLES; s++)
                samples[s] = *vem_sim_truck_step(&fleet[i]);
            uint8_t frame[4096];
            size_t len =
                vem_sim_data(scratch, &fleet[i], samples, S_SAMPLES, t0 + (int64_t)k * S_SAMPLES,
                             (uint16_t)(k + 1), false, true, false, frame, sizeof frame);
            if (!len)
                vem_bench_die("encode", "a frame did not fit");
            vem_record_t rec = {.seq = ++seq,
                                .nseqs = 1,
                                .kind = VEM_RECORD_FRAME,
                                .source = 1,
                                .status = signature ? VEM_RECORD_SIG_VERIFIED : 0,
                                .received_us = (t0 + (int64_t)k * S_SAMPLES) * 1000000,
                                .offset = -1,
                                .data = frame,
                                .data_len = (uint32_t)len};
            vem_records_add(&out, &rec);
            if (out.count == S_PER_BATCH || (k + 1 == frames && i + 1 == trucks)) {
                if (nmsgs == cap) {
                    cap = cap ? cap * 2 : 256;
                    msgs = realloc(msgs, cap * sizeof *msgs);
                    lens = realloc(lens, cap * sizeof *lens);
                    if (!msgs || !lens)
                        abort();
                }
                size_t mlen;
                const uint8_t *m = vem_records_message(&out, &mlen);
                msgs[nmsgs] = malloc(mlen);
                if (!msgs[nmsgs])
                    abort();
                memcpy(msgs[nmsgs], m, mlen);
                lens[nmsgs++] = mlen;
                vem_records_reset(&out);
            }
        }
    }
    vem_records_free(&out);

    /* The same events, made beforehand for the bare producer. */
    s_events_t events = {0};
    double make_start = vem_bench_now();
    for (size_t i = 0; i < nmsgs; i++) {
        vem_records_hdr_t hdr;
        vem_records_parse(msgs[i], lens[i], &hdr);
        vem_record_t rec;
        size_t off = 0;
        while (vem_records_next(msgs[i], lens[i], &off, &rec))
            vem_kevents_of(&rec, scratch, 1u << VEM_KTOPIC_SAMPLES, s_keep, &events);
    }
    double make_s = vem_bench_now() - make_start;
    /* the events' making alone, as the sink does it (no copies kept) */
    size_t made = 0;
    make_start = vem_bench_now();
    for (size_t i = 0; i < nmsgs; i++) {
        vem_record_t rec;
        size_t off = 0;
        while (vem_records_next(msgs[i], lens[i], &off, &rec))
            vem_kevents_of(&rec, scratch, 1u << VEM_KTOPIC_SAMPLES, s_count, &made);
    }
    make_s = vem_bench_now() - make_start;
    for (size_t i = 0; i < events.n; i++)
        bytes += (double)events.ev[i].len;

    /* Best of --rounds alternating runs of each: on two shared cores a single run of either
     * varies by a third from one to the next. Each sink run has a fresh cursor directory. */
    void *zctx = zmq_ctx_new();
    double best_sink = 1e30, best_bare = 1e30, failed = 0;
    long linger_ms = linger >= 0 ? linger : 20;
    for (int round = 0; round < rounds; round++) {
        char round_dir[64];
        snprintf(round_dir, sizeof round_dir, "%s/r%d", dir, round);
        if (mkdir(round_dir, 0700) != 0)
            vem_bench_die(round_dir, strerror(errno));
        /* ---- the sink ---- */
        vem_sink_kafka_args_t a = {.brokers = bootstrap,
                                   .compression = "lz4",
                                   .linger_ms = linger >= 0 ? linger : 20,
                                   .batch_bytes = 1000000,
                                   .batch_messages = 10000,
                                   .queue_messages = 500000,
                                   .queue_kbytes = 262144,
                                   .message_timeout_ms = 300000,
                                   .spool_dir = round_dir,
                                   .spill_max_bytes = 1ull << 32,
                                   .queue_hwm = 8,
                                   .retry_max_s = 30};
        a.topics[VEM_KTOPIC_SAMPLES] = sink_topic;
        a.zctx = zctx;
        a.metrics = vem_metrics_new();
        void *acks = zmq_socket(zctx, ZMQ_PULL);
        if (zmq_bind(acks, VEM_ACK_ENDPOINT) != 0)
            vem_bench_die("bind", zmq_strerror(zmq_errno()));
        char err[512];
        vem_actor_t *sink =
            vem_actor_new(zctx, "sink-kafka", vem_sink_kafka_actor, &a, err, sizeof err);
        if (!sink)
            vem_bench_die("sink", err);
        /* wait until a broker is up, so both runs start connected */
        for (int i = 0; i < 200 && !atomic_load(&a.up); i++) {
            struct timespec ts = {0, 50000000};
            nanosleep(&ts, NULL);
        }
        void *push = zmq_socket(zctx, ZMQ_PUSH);
        zmq_connect(push, VEM_SINK_KAFKA_ENDPOINT);
        double start = vem_bench_now(), cpu0 = s_cpu();
        double own0 = s_threads_cpu("sink-kafka"), rdk0 = s_threads_cpu("rdk:broker");
        size_t sent = 0;
        uint64_t mark = 0;
        while (mark < seq) {
            zmq_pollitem_t items[2] = {{acks, 0, ZMQ_POLLIN, 0},
                                       {push, 0, sent < nmsgs ? ZMQ_POLLOUT : 0, 0}};
            zmq_poll(items, 2, 1000);
            if ((items[1].revents & ZMQ_POLLOUT) &&
                zmq_send(push, msgs[sent], lens[sent], ZMQ_DONTWAIT) >= 0)
                sent++;
            vem_ack_t ack;
            while (zmq_recv(acks, &ack, sizeof ack, ZMQ_DONTWAIT) == (int)sizeof ack)
                if (ack.consumer == VEM_CONSUMER_KAFKA && ack.mark > mark)
                    mark = ack.mark;
        }
        double sink_s = vem_bench_now() - start, sink_cpu = s_cpu() - cpu0;
        double sink_own = s_threads_cpu("sink-kafka") - own0;
        double sink_rdk = s_threads_cpu("rdk:broker") - rdk0;
        s_metric = 0;
        vem_metrics_each(a.metrics, s_find, "vem_kafka_delivered_total");
        if (s_metric != (double)events.n)
            vem_bench_die("check", "the sink's delivery reports do not count every event");
        s_metric = 0;
        vem_metrics_each(a.metrics, s_find, "vem_kafka_failed_total");
        failed += s_metric;
        int zero = 0;
        zmq_setsockopt(push, ZMQ_LINGER, &zero, sizeof zero);
        zmq_close(push);
        vem_actor_destroy(&sink);
        zmq_close(acks);

        /* ---- the bare producer: same settings, same events ---- */
        long counts[2] = {0, 0};
        rd_kafka_conf_t *conf = vem_sink_kafka_conf(&a, err, sizeof err);
        if (!conf)
            vem_bench_die("conf", err);
        rd_kafka_conf_set_dr_msg_cb(conf, s_on_bare_delivery);
        rd_kafka_conf_set_opaque(conf, counts);
        rd_kafka_conf_set(conf, "statistics.interval.ms", "0", err, sizeof err);
        rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
        if (!rk)
            vem_bench_die("producer", err);
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, bare_topic, NULL);
        const struct rd_kafka_metadata *md = NULL; /* connected before the clock starts */
        if (rd_kafka_metadata(rk, 0, rkt, &md, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR)
            rd_kafka_metadata_destroy(md);
        start = vem_bench_now();
        cpu0 = s_cpu();
        own0 = s_threads_cpu("bench-kafka");
        rdk0 = s_threads_cpu("rdk:broker");
        for (size_t i = 0; i < events.n; i++) {
            s_event_t *e = &events.ev[i];
            rd_kafka_resp_err_t rerr;
            while ((rerr = rd_kafka_producev(
                        rk, RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                        RD_KAFKA_V_KEY(e->key, strlen(e->key)), RD_KAFKA_V_VALUE(e->value, e->len),
                        RD_KAFKA_V_HEADER("event_type", e->type, -1),
                        RD_KAFKA_V_HEADER("schema_version", VEM_KEVENTS_SCHEMA_VERSION_TXT, -1),
                        RD_KAFKA_V_HEADER("event_id", e->id, -1), RD_KAFKA_V_END)) ==
                   RD_KAFKA_RESP_ERR__QUEUE_FULL)
                rd_kafka_poll(rk, 10);
            if (rerr)
                vem_bench_die("produce", rd_kafka_err2str(rerr));
            rd_kafka_poll(rk, 0);
        }
        while (counts[0] + counts[1] < (long)events.n)
            rd_kafka_poll(rk, 100);
        double bare_s = vem_bench_now() - start, bare_cpu = s_cpu() - cpu0;
        double bare_own = s_threads_cpu("bench-kafka") - own0;
        double bare_rdk = s_threads_cpu("rdk:broker") - rdk0;
        rd_kafka_topic_destroy(rkt);
        rd_kafka_destroy(rk);
        vem_metrics_destroy(&a.metrics);
        if (counts[1])
            vem_bench_die("check", "the bare producer's deliveries failed");
        /* CPU per event: the whole process; the thread that produces (the sink's, or main for the
         * bare producer); librdkafka's broker threads */
        double us = 1e6 / (double)events.n;
        fprintf(stderr,
                "bench-kafka: round %d: sink %.0f/s (CPU us/event %.2f: own thread %.2f, "
                "brokers %.2f), bare %.0f/s (%.2f: own %.2f, brokers %.2f)\n",
                round + 1, (double)events.n / sink_s, sink_cpu * us, sink_own * us, sink_rdk * us,
                (double)events.n / bare_s, bare_cpu * us, bare_own * us, bare_rdk * us);
        if (sink_s < best_sink)
            best_sink = sink_s;
        if (bare_s < best_bare)
            best_bare = bare_s;
    }
    double sink_s = best_sink, bare_s = best_bare, delivered = (double)events.n;
    if (broker > 0) {
        kill(broker, SIGTERM);
        waitpid(broker, NULL, 0);
    }
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "bench-kafka: could not remove %s\n", dir);
    for (size_t i = 0; i < nmsgs; i++)
        free(msgs[i]);
    for (size_t i = 0; i < events.n; i++)
        free(events.ev[i].value);
    free(events.ev);
    free(msgs);
    free(lens);
    free(fleet);
    free(scratch);
    zmq_ctx_term(zctx);

    double n = (double)events.n;
    fprintf(stderr,
            "bench-kafka: %zu events (%u trucks x %u frames x %d samples, %.0f B each on "
            "average), lz4, linger %lld ms; sink: %.0f delivered, %.0f failed\n",
            events.n, trucks, frames, S_SAMPLES, bytes / n, (long long)linger_ms, delivered,
            failed);
    printf("events=%zu sink_s=%.3f bare_s=%.3f msgs_per_s=%.0f bare_msgs_per_s=%.0f "
           "mb_per_s=%.1f make_us_per_event=%.2f ratio=%.2f\n",
           events.n, sink_s, bare_s, n / sink_s, n / bare_s, bytes / sink_s / 1e6, make_s / n * 1e6,
           (n / sink_s) / (n / bare_s));
    return 0;
}
