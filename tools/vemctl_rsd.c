/* vemctl rsd send — sends roadside readings to vemd as a station would, and waits for answers.
 *
 *   vemctl rsd send FILE [--endpoint E] [--inflight N] [--timeout-ms T] [--retries R]
 *                        [--rate R] [--json] [--quiet] [--drop-ack READING_ID]
 *
 * FILE holds readings as JSON lines, or CSV with a header of the same keys (an empty cell is
 * not reported; "-" reads stdin). One ZMQ_DEALER socket keeps at most N readings unanswered;
 * a reading with no answer within T ms is sent again (R times at most), a "busy" answer is sent
 * again after a pause, "ack" and "rejected" are final. Answers are matched to readings by
 * (station_id, reading_id); a line vemd cannot read an id from is matched in order (one
 * connection keeps order). On a terminal a progress bar goes to stderr. The summary says how
 * many were acknowledged, how many of those were duplicates, how many were rejected and why,
 * per station, with the rate and the time from the (last) send to the answer; --json prints it
 * as one object. --drop-ack ignores the first answer to that reading, as if it were lost on the
 * way (tests use it to make a station send again). Exit 0 when every reading got a final
 * answer, 1 when some did not, 2 on a usage error. */
#include "vemctl.h"

#include "clock.h"
#include "curve.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define S_BUSY_PAUSE_MS 100

typedef struct {
    char *text; /* the message */
    size_t len;
    char key[100]; /* station_id NUL reading_id ("" when the line has none) */
    size_t keylen;
    char station[32];
    int64_t sent_ms, first_ms;
    int64_t sent_us; /* the last send, for the latency figure */
    unsigned tries;
    bool used, busy;
} s_entry_t;

typedef struct {
    const char *endpoint;
    unsigned inflight, retries;
    int timeout_ms;
    double rate;
    bool json, quiet, tty;
    const char *drop_ack;
    bool dropped;
    void *dealer;
    /* in flight */
    s_entry_t *e;
    size_t *table, table_cap; /* index + 1 into e[], 0 free, SIZE_MAX tombstone */
    size_t nflight, ntomb;
    size_t shared; /* entries in flight whose key another entry holds (a line sent twice) */
    /* input */
    FILE *in;
    bool csv, eof;
    char **header;
    size_t ncols;
    char *line;
    size_t line_cap;
    /* results */
    uint64_t sent, resent, acked, dups, rejected, busy, failed, lines;
    json_t *by_station, *by_class, *rejections;
    double *lat;
    size_t nlat, lat_cap;
    int64_t start_ms;
} s_send_t;

static int64_t s_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- in-flight table ------------------------------------------------------------------------ */

static uint64_t s_hash(const char *p, size_t n)
{
    uint64_t h = 14695981039346656037ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)p[i]) * 1099511628211ULL;
    return h;
}

static size_t *s_probe(s_send_t *s, const char *key, size_t n, bool insert)
{
    size_t i = (size_t)s_hash(key, n) & (s->table_cap - 1), *tomb = NULL;
    for (;;) {
        size_t v = s->table[i];
        if (v == 0)
            return insert && tomb ? tomb : &s->table[i];
        if (v == SIZE_MAX) {
            if (!tomb)
                tomb = &s->table[i];
        } else if (s->e[v - 1].keylen == n && memcmp(s->e[v - 1].key, key, n) == 0) {
            return &s->table[i];
        }
        i = (i + 1) & (s->table_cap - 1);
    }
}

static void s_rebuild(s_send_t *s)
{
    memset(s->table, 0, s->table_cap * sizeof *s->table);
    s->ntomb = 0;
    for (size_t k = 0; k < s->inflight; k++)
        if (s->e[k].used && s->e[k].keylen)
            *s_probe(s, s->e[k].key, s->e[k].keylen, true) = k + 1;
}

static void s_forget(s_send_t *s, size_t k)
{
    s_entry_t *e = &s->e[k];
    if (e->keylen) {
        size_t *slot = s_probe(s, e->key, e->keylen, false);
        if (*slot == k + 1) {
            *slot = SIZE_MAX;
            for (size_t j = 0; s->shared && j < s->inflight; j++)
                if (j != k && s->e[j].used && s->e[j].keylen == e->keylen &&
                    memcmp(s->e[j].key, e->key, e->keylen) == 0) {
                    *slot = j + 1; /* the other copy now takes the answers */
                    s->shared--;
                    break;
                }
            if (*slot == SIZE_MAX && ++s->ntomb > s->table_cap / 4)
                s_rebuild(s);
        }
    }
    free(e->text);
    memset(e, 0, sizeof *e);
    s->nflight--;
}

/* ---- input ---------------------------------------------------------------------------------- */

static bool s_getline(s_send_t *s)
{
    for (;;) {
        ssize_t n = getline(&s->line, &s->line_cap, s->in);
        if (n < 0)
            return false;
        while (n > 0 && (s->line[n - 1] == '\n' || s->line[n - 1] == '\r'))
            s->line[--n] = '\0';
        if (n > 0)
            return true;
    }
}

/* Splits a CSV line in place (quotes with "" escapes); returns the number of fields. */
static size_t s_csv_split(char *p, char **fields, size_t max)
{
    size_t n = 0;
    while (n < max) {
        char *out = p;
        fields[n++] = p;
        if (*p == '"') {
            char *r = p + 1;
            for (;;) {
                if (*r == '\0')
                    break;
                if (*r == '"' && r[1] == '"') {
                    *out++ = '"';
                    r += 2;
                } else if (*r == '"') {
                    r++;
                    break;
                } else {
                    *out++ = *r++;
                }
            }
            p = r;
        } else {
            while (*p && *p != ',')
                *out++ = *p++;
        }
        bool more = *p == ',';
        if (*p)
            p++;
        *out = '\0';
        if (!more)
            break;
    }
    return n;
}

/* A CSV row as a reading: strings for the text keys, true/false for valid, numbers else. */
static char *s_csv_json(s_send_t *s, char *row)
{
    static const char *const text[] = {"station_id", "reading_id",  "time",
                                       "plate",      "plate_color", "vin",
                                       "fuel",       "image_ref",   NULL};
    char *fields[64];
    size_t n = s_csv_split(row, fields, 64);
    json_t *o = json_object();
    for (size_t i = 0; i < n && i < s->ncols; i++) {
        if (!*fields[i])
            continue;
        bool is_text = false;
        for (const char *const *t = text; *t; t++)
            is_text |= strcmp(*t, s->header[i]) == 0;
        json_t *v;
        char *end;
        double x = strtod(fields[i], &end);
        if (is_text)
            v = json_string(fields[i]);
        else if (strcmp(fields[i], "true") == 0 || strcmp(fields[i], "false") == 0)
            v = json_boolean(fields[i][0] == 't');
        else if (*end == '\0' && end != fields[i] && x == floor(x) && fabs(x) < 1e15)
            v = json_integer((json_int_t)x);
        else if (*end == '\0' && end != fields[i])
            v = json_real(x);
        else
            v = json_string(fields[i]); /* vemd will say it is the wrong type */
        json_object_set_new(o, s->header[i], v ? v : json_null());
    }
    char *t = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
    json_decref(o);
    return t;
}

/* The next reading's message text (malloc'd), NULL at the end. */
static char *s_next(s_send_t *s)
{
    if (!s_getline(s))
        return NULL;
    s->lines++;
    if (s->csv)
        return s_csv_json(s, s->line);
    return strdup(s->line);
}

/* The (station_id, reading_id) key of a message; 0 when it has none. */
static size_t s_key_of(const char *text, size_t len, char *key, size_t cap, char *station)
{
    json_t *o = json_loadb(text, len, 0, NULL);
    const char *st = json_string_value(json_object_get(o, "station_id"));
    const char *id = json_string_value(json_object_get(o, "reading_id"));
    size_t n = 0;
    station[0] = '\0';
    if (st && id && strlen(st) + strlen(id) + 1 < cap && strlen(st) < 32) {
        n = (size_t)snprintf(key, cap, "%s", st) + 1;
        n += (size_t)snprintf(key + n, cap - n, "%s", id);
        snprintf(station, 32, "%s", st);
    }
    json_decref(o);
    return n;
}

/* ---- sending and answers -------------------------------------------------------------------- */

static void s_transmit(s_send_t *s, s_entry_t *e)
{
    /* waits at most --timeout-ms (ZMQ_SNDTIMEO) for a connection, e.g. one whose CURVE
     * handshake is refused: the reading then counts as sent and unanswered, and is retried */
    if (zmq_send(s->dealer, e->text, e->len, 0) < 0)
        fprintf(stderr, "vemctl rsd send: not sent: %s\n",
                zmq_errno() == EAGAIN ? "no connection to the endpoint"
                                      : zmq_strerror(zmq_errno()));
    e->sent_ms = vem_mono_ms();
    e->sent_us = s_mono_us();
    e->tries++;
    e->busy = false;
}

static bool s_fill(s_send_t *s)
{
    while (!s->eof && s->nflight < s->inflight) {
        if (s->rate > 0) {
            double due = (double)s->sent / s->rate * 1000.0;
            if ((double)(vem_mono_ms() - s->start_ms) < due)
                return true;
        }
        char *text = s_next(s);
        if (!text) {
            s->eof = true;
            break;
        }
        size_t k = 0;
        while (s->e[k].used)
            k++;
        s_entry_t *e = &s->e[k];
        e->used = true;
        e->text = text;
        e->len = strlen(text);
        e->keylen = s_key_of(text, e->len, e->key, sizeof e->key, e->station);
        if (e->keylen) {
            size_t *slot = s_probe(s, e->key, e->keylen, true);
            if (*slot == SIZE_MAX)
                s->ntomb--;
            if (*slot && *slot != SIZE_MAX)
                s->shared++; /* the same reading twice in the file: one answer at a time */
            else
                *slot = k + 1;
        }
        s->nflight++;
        e->first_ms = vem_mono_ms();
        s_transmit(s, e);
        s->sent++;
    }
    return false;
}

static json_t *s_station_counts(s_send_t *s, const char *station)
{
    const char *name = *station ? station : "?";
    json_t *c = json_object_get(s->by_station, name);
    if (!c) {
        c = json_pack("{s:i, s:i, s:i}", "acked", 0, "duplicates", 0, "rejected", 0);
        json_object_set_new(s->by_station, name, c);
    }
    return c;
}

static void s_bump(json_t *o, const char *key)
{
    json_object_set_new(o, key, json_integer(json_integer_value(json_object_get(o, key)) + 1));
}

/* The entry an answer is for: by its ids, else the oldest one without ids. */
static ssize_t s_match(s_send_t *s, const json_t *a)
{
    const char *st = json_string_value(json_object_get(a, "station_id"));
    const char *id = json_string_value(json_object_get(a, "reading_id"));
    if (st && id) {
        char key[100];
        if (strlen(st) + strlen(id) + 1 < sizeof key) {
            size_t n = (size_t)snprintf(key, sizeof key, "%s", st) + 1;
            n += (size_t)snprintf(key + n, sizeof key - n, "%s", id);
            size_t v = *s_probe(s, key, n, false);
            if (v && v != SIZE_MAX)
                return (ssize_t)v - 1;
        }
        return -1; /* a late answer to a reading answered already */
    }
    /* the oldest line without ids, else (vemd could not read ids vemctl could) the oldest */
    ssize_t best = -1;
    for (int pass = 0; pass < 2 && best < 0; pass++)
        for (size_t k = 0; k < s->inflight; k++)
            if (s->e[k].used && (pass || !s->e[k].keylen) &&
                (best < 0 || s->e[k].first_ms < s->e[best].first_ms))
                best = (ssize_t)k;
    return best;
}

static void s_on_answer(s_send_t *s, const char *text, size_t len)
{
    json_t *a = json_loadb(text, len, 0, NULL);
    const char *status = json_string_value(json_object_get(a, "status"));
    ssize_t k = a && status ? s_match(s, a) : -1;
    if (k < 0) {
        json_decref(a);
        return; /* a late answer to a reading answered already */
    }
    s_entry_t *e = &s->e[k];
    const char *id = json_string_value(json_object_get(a, "reading_id"));
    if (s->drop_ack && !s->dropped && id && strcmp(id, s->drop_ack) == 0) {
        s->dropped = true; /* as if it were lost: the timeout sends the reading again */
        json_decref(a);
        return;
    }
    if (strcmp(status, "busy") == 0) {
        s->busy++;
        e->busy = true;
        e->sent_ms = vem_mono_ms() - s->timeout_ms + S_BUSY_PAUSE_MS;
        json_decref(a);
        return;
    }
    json_t *c = s_station_counts(s, e->station);
    if (strcmp(status, "ack") == 0) {
        bool dup = json_is_true(json_object_get(a, "duplicate"));
        s->acked++;
        s_bump(c, "acked");
        if (dup) {
            s->dups++;
            s_bump(c, "duplicates");
        }
        if (s->nlat == s->lat_cap) {
            s->lat_cap = s->lat_cap ? s->lat_cap * 2 : 4096;
            s->lat = realloc(s->lat, s->lat_cap * sizeof *s->lat);
            if (!s->lat)
                abort();
        }
        s->lat[s->nlat++] = (double)(s_mono_us() - e->sent_us) / 1000.0;
    } else {
        const char *cls = json_string_value(json_object_get(a, "error"));
        s->rejected++;
        s_bump(c, "rejected");
        s_bump(s->by_class, cls ? cls : "?");
        if (json_array_size(s->rejections) < 100)
            json_array_append_new(s->rejections,
                                  json_pack("{s:O, s:O, s:O, s:O, s:O}", "station_id",
                                            json_object_get(a, "station_id"), "reading_id",
                                            json_object_get(a, "reading_id"), "error",
                                            json_object_get(a, "error"), "key",
                                            json_object_get(a, "key"), "detail",
                                            json_object_get(a, "detail")));
    }
    s_forget(s, (size_t)k);
    json_decref(a);
}

static void s_timeouts(s_send_t *s)
{
    int64_t now = vem_mono_ms();
    for (size_t k = 0; k < s->inflight; k++) {
        s_entry_t *e = &s->e[k];
        if (!e->used || now - e->sent_ms < s->timeout_ms)
            continue;
        if (e->tries > s->retries) {
            s->failed++;
            s_forget(s, k);
            continue;
        }
        if (!e->busy)
            s->resent++;
        s_transmit(s, e);
    }
}

static int s_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double s_pct(const double *v, size_t n, double p)
{
    if (n == 0)
        return 0;
    size_t i = (size_t)ceil(p / 100.0 * (double)n);
    return v[i ? i - 1 : 0];
}

static void s_progress(s_send_t *s, bool last)
{
    double secs = (double)(vem_mono_ms() - s->start_ms) / 1000.0;
    uint64_t done = s->acked + s->rejected + s->failed;
    int width = 30,
        fill = s->eof && s->sent ? (int)(width * done / s->sent) : (int)(done / 1000 % width);
    fprintf(stderr, "\r[%-*.*s] %llu answered, %llu acked, %llu rejected, %.0f/s%s", width, fill,
            "##############################", (unsigned long long)done,
            (unsigned long long)s->acked, (unsigned long long)s->rejected,
            secs > 0 ? (double)done / secs : 0.0, last ? "\n" : "   ");
    fflush(stderr);
}

static void s_usage(FILE *out)
{
    fprintf(out, "usage: vemctl rsd send FILE [--endpoint E] [--inflight N] [--timeout-ms T] "
                 "[--retries R] [--rate R] [--json] [--quiet] [--drop-ack READING_ID]\n"
                 "                     [--client-key FILE.key --server-key FILE.pub]\n"
                 "  FILE: JSON lines or CSV (header of FIELDS.md keys); - for stdin\n"
                 "  --endpoint   vemd's stations.endpoint (default tcp://127.0.0.1:7613)\n"
                 "  --inflight   readings unanswered at once (default 500)\n"
                 "  --timeout-ms send a reading again after this long without an answer (2000)\n"
                 "  --retries    times a reading is sent again before it counts as failed (20)\n"
                 "  --rate       readings per second at most (default: as fast as answered)\n"
                 "  --client-key this station's CURVE key pair (vemctl keys gen), for a CURVE "
                 "endpoint\n"
                 "  --server-key the endpoint's public key (its .pub or .key file)\n");
}

static int s_send_main(int argc, char **argv)
{
    s_send_t s = {.endpoint = "tcp://127.0.0.1:7613",
                  .inflight = 500,
                  .retries = 20,
                  .timeout_ms = 2000,
                  .tty = isatty(2)};
    const char *path = NULL, *client_key = NULL, *server_key = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool val = i + 1 < argc;
        if (strcmp(a, "--endpoint") == 0 && val)
            s.endpoint = argv[++i];
        else if (strcmp(a, "--client-key") == 0 && val)
            client_key = argv[++i];
        else if (strcmp(a, "--server-key") == 0 && val)
            server_key = argv[++i];
        else if (strcmp(a, "--inflight") == 0 && val)
            s.inflight = (unsigned)strtoul(argv[++i], NULL, 10);
        else if (strcmp(a, "--timeout-ms") == 0 && val)
            s.timeout_ms = atoi(argv[++i]);
        else if (strcmp(a, "--retries") == 0 && val)
            s.retries = (unsigned)strtoul(argv[++i], NULL, 10);
        else if (strcmp(a, "--rate") == 0 && val)
            s.rate = strtod(argv[++i], NULL);
        else if (strcmp(a, "--drop-ack") == 0 && val)
            s.drop_ack = argv[++i];
        else if (strcmp(a, "--json") == 0)
            s.json = true;
        else if (strcmp(a, "--quiet") == 0)
            s.quiet = true;
        else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            s_usage(stdout);
            return 0;
        } else if (!path && (a[0] != '-' || strcmp(a, "-") == 0))
            path = a;
        else {
            s_usage(stderr);
            return 2;
        }
    }
    if (!path || s.inflight == 0 || s.timeout_ms <= 0 || !client_key != !server_key) {
        s_usage(stderr);
        return 2;
    }
    s.in = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    if (!s.in) {
        fprintf(stderr, "vemctl rsd send: %s: %s\n", path, strerror(errno));
        return 1;
    }
    /* CSV when the first line is not a JSON object: it is the header */
    int c = fgetc(s.in);
    if (c != EOF)
        ungetc(c, s.in);
    if (c != EOF && c != '{' && s_getline(&s)) {
        s.csv = true;
        char *fields[64];
        s.ncols = s_csv_split(s.line, fields, 64);
        s.header = calloc(s.ncols, sizeof *s.header);
        for (size_t i = 0; i < s.ncols; i++)
            s.header[i] = strdup(fields[i]);
    }
    s.e = calloc(s.inflight, sizeof *s.e);
    s.table_cap = 16;
    while (s.table_cap < (size_t)s.inflight * 4)
        s.table_cap *= 2;
    s.table = calloc(s.table_cap, sizeof *s.table);
    s.by_station = json_object();
    s.by_class = json_object();
    s.rejections = json_array();
    void *ctx = zmq_ctx_new();
    s.dealer = zmq_socket(ctx, ZMQ_DEALER);
    int zero = 0, hwm = (int)s.inflight * 2;
    zmq_setsockopt(s.dealer, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(s.dealer, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(s.dealer, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(s.dealer, ZMQ_SNDTIMEO, &s.timeout_ms, sizeof s.timeout_ms);
    char err[600];
    if (client_key && vem_curve_client(s.dealer, client_key, server_key, err, sizeof err) != 0) {
        fprintf(stderr, "vemctl rsd send: %s\n", err);
        return 1;
    }
    if (zmq_connect(s.dealer, s.endpoint) != 0) {
        fprintf(stderr, "vemctl rsd send: cannot connect %s: %s\n", s.endpoint,
                zmq_strerror(zmq_errno()));
        return 1;
    }
    s.start_ms = vem_mono_ms();
    int64_t next_check = s.start_ms + 50, next_bar = s.start_ms + 200;
    char buf[65536];
    for (;;) {
        bool paced = s_fill(&s);
        if (s.eof && s.nflight == 0)
            break;
        zmq_pollitem_t item = {s.dealer, 0, ZMQ_POLLIN, 0};
        zmq_poll(&item, 1, paced ? 1 : 50);
        int n;
        while ((n = zmq_recv(s.dealer, buf, sizeof buf, ZMQ_DONTWAIT)) >= 0)
            s_on_answer(&s, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf);
        int64_t now = vem_mono_ms();
        if (now >= next_check) {
            s_timeouts(&s);
            next_check = now + 50;
        }
        if (s.tty && !s.quiet && now >= next_bar) {
            s_progress(&s, false);
            next_bar = now + 200;
        }
    }
    double secs = (double)(vem_mono_ms() - s.start_ms) / 1000.0;
    if (s.tty && !s.quiet)
        s_progress(&s, true);
    qsort(s.lat, s.nlat, sizeof *s.lat, s_cmp);
    double rate = secs > 0 ? (double)s.acked / secs : 0;
    double p50 = s_pct(s.lat, s.nlat, 50), p99 = s_pct(s.lat, s.nlat, 99);
    if (s.json) {
        json_t *o = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:f, s:f, s:f, s:O, s:O, "
                              "s:O}",
                              "readings", (json_int_t)s.lines, "acked", (json_int_t)s.acked,
                              "duplicates", (json_int_t)s.dups, "rejected", (json_int_t)s.rejected,
                              "failed", (json_int_t)s.failed, "resent", (json_int_t)s.resent,
                              "busy", (json_int_t)s.busy, "seconds", secs, "readings_per_s", rate,
                              "p50_ms", p50, "p99_ms", p99, "by_station", s.by_station, "by_class",
                              s.by_class, "rejections", s.rejections);
        char *t = json_dumps(o, JSON_COMPACT);
        printf("%s\n", t);
        free(t);
        json_decref(o);
    } else {
        printf("%llu readings: %llu acknowledged (%llu duplicates), %llu rejected, %llu without "
               "an answer; %llu sent again, %llu busy answers\n",
               (unsigned long long)s.lines, (unsigned long long)s.acked, (unsigned long long)s.dups,
               (unsigned long long)s.rejected, (unsigned long long)s.failed,
               (unsigned long long)s.resent, (unsigned long long)s.busy);
        printf("%.1f s, %.0f readings/s acknowledged, send to acknowledgement p50 %.1f ms, p99 "
               "%.1f ms\n",
               secs, rate, p50, p99);
        const char *k;
        json_t *v;
        json_object_foreach(s.by_station, k, v)
        {
            printf("  station %s: %lld acknowledged (%lld duplicates), %lld rejected\n", k,
                   (long long)json_integer_value(json_object_get(v, "acked")),
                   (long long)json_integer_value(json_object_get(v, "duplicates")),
                   (long long)json_integer_value(json_object_get(v, "rejected")));
        }
        size_t i;
        json_array_foreach(s.rejections, i, v)
        {
            const char *id = json_string_value(json_object_get(v, "reading_id"));
            printf("  rejected %s: %s: %s\n", id ? id : "(no id)",
                   json_string_value(json_object_get(v, "error")),
                   json_string_value(json_object_get(v, "detail")));
        }
    }
    zmq_close(s.dealer);
    zmq_ctx_term(ctx);
    if (s.in != stdin)
        fclose(s.in);
    for (size_t k = 0; k < s.inflight; k++)
        free(s.e[k].text);
    free(s.e);
    free(s.table);
    free(s.lat);
    free(s.line);
    for (size_t i = 0; i < s.ncols; i++)
        free(s.header[i]);
    free(s.header);
    json_decref(s.by_station);
    json_decref(s.by_class);
    json_decref(s.rejections);
    return s.failed ? 1 : 0;
}

int vemctl_rsd_main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "send") == 0)
        return s_send_main(argc - 1, argv + 1);
    fprintf(stderr, "usage: vemctl rsd send FILE [...]   (vemctl rsd send --help)\n");
    return 2;
}
