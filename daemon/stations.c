/* stations — roadside stations' endpoint; see stations.h.
 *
 * Answers wait in a list, each under the spool seq that must be durable first (its own
 * input's, or for a duplicate the first copy's); after every flush ingest calls
 * vem_stations_answer, which sends those now durable. The list never grows past what one turn
 * of ingest reads (ingest stops reading while a flush fails).
 *
 * Stations are kept in an open-addressing table by station_id (never removed: stations are few
 * and long-lived; max_stations bounds it). Recent reading ids are 64-bit hashes of
 * "station_id NUL reading_id" with the seq of their first copy, in two tables of `dedup`
 * entries: when the current one is full it becomes the previous one and a fresh one starts,
 * so between dedup and 2 x dedup of the latest ids are remembered. An id forgotten (or a
 * restart) lets a re-sent reading into the spool again: the sinks' keys and the rules absorb
 * it, so only the "duplicate" flag of its answer is lost. */
#include "stations.h"

#include "clock.h"
#include "log.h"
#include "pipeline.h"
#include "records.h"
#include "rsd.h"
#include "session.h"
#include "spool.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define S_ID_MAX 256 /* ROUTER routing ids are at most 255 bytes */

typedef struct {
    char id[32]; /* station_id; "" for a free slot */
    uint32_t inflight;
} s_station_t;

typedef struct {
    uint64_t seq; /* sent once this is durable */
    uint8_t peer[S_ID_MAX];
    uint8_t peer_len;
    bool delim;      /* the station used an empty delimiter part (REQ style): echo it */
    s_station_t *st; /* whose in-flight count it holds (NULL: none) */
    char *text;      /* the answer, malloc'd */
} s_answer_t;

typedef struct {
    uint64_t *keys, *seqs;
    size_t cap, n;
} s_ids_t;

struct vem_stations {
    vem_stations_opts_t opts;
    void *router;
    vem_registry_t *registry;
    s_station_t *stations;
    size_t st_cap, st_n;
    s_ids_t ids[2]; /* [0] current, [1] previous generation */
    s_answer_t *answers;
    size_t nanswers, answers_cap;
    /* the message being decided */
    zmq_msg_t msg;
    bool has_msg;
    uint8_t peer[S_ID_MAX];
    size_t peer_len;
    bool delim;
    s_station_t *current; /* the station of the input just read, when it was staged */
    char cur_station[32], cur_reading[64];
    char client_stations[256]; /* the sender's CURVE key may deliver for these (curve.h) */
    uint64_t cur_key;
    bool cur_reading_ok;
    /* metrics */
    vem_counter_t *bytes, *acked, *dups, *rejected, *busy, *dropped;
    vem_counter_t *classes[VEM_RSD_STATUS_COUNT], *too_large, *too_deep, *wrong_station;
    vem_gauge_t *nstations;
};

/* ---- tables --------------------------------------------------------------------------------- */

static uint64_t s_fnv(uint64_t h, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= (uint8_t)s[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static uint64_t s_id_key(const char *station, const char *reading)
{
    uint64_t h = s_fnv(14695981039346656037ULL, station, strlen(station) + 1);
    h = s_fnv(h, reading, strlen(reading));
    return h ? h : 1; /* 0 marks a free slot */
}

static size_t s_pow2(size_t n)
{
    size_t c = 16;
    while (c < n)
        c *= 2;
    return c;
}

static void s_ids_init(s_ids_t *t, size_t entries)
{
    t->cap = s_pow2(entries * 2);
    t->keys = calloc(t->cap, sizeof *t->keys);
    t->seqs = calloc(t->cap, sizeof *t->seqs);
    if (!t->keys || !t->seqs)
        abort();
    t->n = 0;
}

static bool s_ids_find(const s_ids_t *t, uint64_t key, uint64_t *seq)
{
    for (size_t i = key & (t->cap - 1); t->keys[i]; i = (i + 1) & (t->cap - 1))
        if (t->keys[i] == key) {
            *seq = t->seqs[i];
            return true;
        }
    return false;
}

static void s_ids_put(vem_stations_t *self, uint64_t key, uint64_t seq)
{
    s_ids_t *t = &self->ids[0];
    if (t->n >= self->opts.dedup) { /* the current generation becomes the previous one */
        s_ids_t old = self->ids[1];
        self->ids[1] = self->ids[0];
        self->ids[0] = old;
        t = &self->ids[0];
        memset(t->keys, 0, t->cap * sizeof *t->keys);
        t->n = 0;
    }
    size_t i = key & (t->cap - 1);
    while (t->keys[i] && t->keys[i] != key)
        i = (i + 1) & (t->cap - 1);
    if (!t->keys[i])
        t->n++;
    t->keys[i] = key;
    t->seqs[i] = seq;
}

/* The station's entry, created when there is room; NULL when the table is full. */
static s_station_t *s_station(vem_stations_t *self, const char *id)
{
    size_t i = (size_t)vem_plate_hash(id) & (self->st_cap - 1);
    while (self->stations[i].id[0]) {
        if (strcmp(self->stations[i].id, id) == 0)
            return &self->stations[i];
        i = (i + 1) & (self->st_cap - 1);
    }
    if (self->st_n >= self->opts.max_stations)
        return NULL;
    snprintf(self->stations[i].id, sizeof self->stations[i].id, "%s", id);
    self->st_n++;
    vem_gauge_set(self->nstations, (int64_t)self->st_n);
    return &self->stations[i];
}

/* ---- answers -------------------------------------------------------------------------------- */

static char *s_dump(json_t *o)
{
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!text)
        abort();
    return text;
}

static json_t *s_ids_json(const char *station, const char *reading)
{
    return json_pack("{s:i, s:o, s:o}", "version", VEM_RSD_VERSION, "station_id",
                     *station ? json_string(station) : json_null(), "reading_id",
                     *reading ? json_string(reading) : json_null());
}

/* Queues an answer to the current message's sender, due once seq is durable. */
static void s_queue(vem_stations_t *self, uint64_t seq, char *text, s_station_t *st)
{
    if (self->nanswers == self->answers_cap) {
        size_t cap = self->answers_cap ? self->answers_cap * 2 : 64;
        s_answer_t *a = realloc(self->answers, cap * sizeof *a);
        if (!a)
            abort();
        self->answers = a;
        self->answers_cap = cap;
    }
    s_answer_t *a = &self->answers[self->nanswers++];
    a->seq = seq;
    memcpy(a->peer, self->peer, self->peer_len);
    a->peer_len = (uint8_t)self->peer_len;
    a->delim = self->delim;
    a->st = st;
    a->text = text;
    if (st)
        st->inflight++;
}

static void s_send(vem_stations_t *self, const s_answer_t *a)
{
    bool ok = zmq_send(self->router, a->peer, a->peer_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) >= 0 &&
              (!a->delim || zmq_send(self->router, "", 0, ZMQ_SNDMORE | ZMQ_DONTWAIT) >= 0) &&
              zmq_send(self->router, a->text, strlen(a->text), ZMQ_DONTWAIT) >= 0;
    if (!ok)
        vem_counter_add(self->dropped, 1); /* gone or not reading: it sends the reading again */
}

void vem_stations_answer(vem_stations_t *self, uint64_t durable_seq)
{
    size_t kept = 0;
    for (size_t i = 0; i < self->nanswers; i++) {
        s_answer_t *a = &self->answers[i];
        if (a->seq > durable_seq) {
            self->answers[kept++] = *a;
            continue;
        }
        s_send(self, a);
        if (a->st && a->st->inflight)
            a->st->inflight--;
        free(a->text);
    }
    self->nanswers = kept;
}

/* ---- reading -------------------------------------------------------------------------------- */

/* Refuses the current message: a quarantine input with the class and detail, answered
 * "rejected" once durable. */
static void s_reject(vem_stations_t *self, vem_station_input_t *in, uint8_t error, const char *cls,
                     const char *key, const char *detail)
{
    in->kind = VEM_SPOOL_KIND_QUARANTINE;
    in->error = error;
    snprintf(in->detail, sizeof in->detail, "%s", detail);
    json_t *o = s_ids_json(self->cur_station, self->cur_reading);
    json_object_set_new(o, "status", json_string("rejected"));
    json_object_set_new(o, "error", json_string(cls));
    json_object_set_new(o, "key", *key ? json_string(key) : json_null());
    json_object_set_new(o, "detail", json_string(detail));
    json_object_set_new(o, "retry", json_false());
    s_queue(self, 0, s_dump(o), NULL); /* the seq comes with vem_stations_staged */
    vem_counter_add(self->rejected, 1);
    vem_log(VEM_LOG_NOTICE, "stations", "reading %s/%s refused: %s (%s)",
            *self->cur_station ? self->cur_station : "?",
            *self->cur_reading ? self->cur_reading : "?", cls, detail);
}

/* Answers "busy" at once: nothing is spooled, the station sends the reading again later. */
static void s_busy(vem_stations_t *self, const char *why)
{
    json_t *o = s_ids_json(self->cur_station, self->cur_reading);
    json_object_set_new(o, "status", json_string("busy"));
    json_object_set_new(o, "detail", json_string(why));
    json_object_set_new(o, "retry", json_true());
    s_answer_t a = {.peer_len = (uint8_t)self->peer_len, .delim = self->delim, .text = s_dump(o)};
    memcpy(a.peer, self->peer, self->peer_len);
    s_send(self, &a);
    free(a.text);
    vem_counter_add(self->busy, 1);
}

/* Copies an id the parser accepted (printable ASCII, no spaces) into a JSON string body:
 * only '"' and '\\' need escaping there. */
static char *s_put_id(char *p, const char *id)
{
    for (; *id; id++) {
        if (*id == '"' || *id == '\\')
            *p++ = '\\';
        *p++ = *id;
    }
    return p;
}

/* The acknowledgement, the answer to almost every reading: written directly (the ids were
 * checked by the parser), as building it with jansson cost as much as parsing the reading. */
static char *s_ack_text(const char *station, const char *reading, bool duplicate)
{
    char *text = malloc(2 * (strlen(station) + strlen(reading)) + 96);
    if (!text)
        abort();
    char *p = text + sprintf(text, "{\"version\":%d,\"station_id\":\"", VEM_RSD_VERSION);
    p = s_put_id(p, station);
    p += sprintf(p, "\",\"reading_id\":\"");
    p = s_put_id(p, reading);
    sprintf(p, "\",\"status\":\"ack\",\"duplicate\":%s}", duplicate ? "true" : "false");
    return text;
}

int vem_stations_envelope(const size_t *sizes, int n, bool *delim)
{
    *delim = n >= 2 && sizes[0] == 0;
    int first = *delim ? 1 : 0;
    return n - first == 1 ? first : -1;
}

vem_stations_verdict_t vem_stations_check(const uint8_t *data, size_t len, size_t max_message,
                                          unsigned max_depth, int64_t now_us, int64_t future_s,
                                          vem_rsd_t *r, vem_rsd_error_t *err)
{
    memset(r, 0, sizeof *r);
    memset(err, 0, sizeof *err);
    if (len > max_message)
        return VEM_STATIONS_TOO_LARGE;
    /* jansson recurses once per level before we see anything: bound it first */
    unsigned depth = vem_rsd_depth(data, len, max_depth);
    if (depth > max_depth) {
        err->status = VEM_RSD_BAD_JSON;
        snprintf(err->detail, sizeof err->detail,
                 "objects and arrays nested deeper than stations.max_json_depth %u", max_depth);
        return VEM_STATIONS_TOO_DEEP;
    }
    return vem_rsd_parse(data, len, now_us, future_s, r, err) == VEM_RSD_OK ? VEM_STATIONS_OK
                                                                            : VEM_STATIONS_INVALID;
}

#define S_PARTS_KEPT 4 /* parts of a message looked at; more only make it malformed */

/* Reads the parts of one message: routing id, an optional empty delimiter, one body. 0 when
 * nothing was waiting, -1 when it came from a CURVE key no longer listed (dropped, counted by
 * curve.c), else 1 with the reading part in self->msg (empty when there is not exactly one)
 * and *parts the number of body parts. */
static int s_recv(vem_stations_t *self, int *parts)
{
    zmq_msg_t part;
    zmq_msg_init(&part);
    if (zmq_msg_recv(&part, self->router, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&part);
        return 0;
    }
    self->peer_len = zmq_msg_size(&part) < S_ID_MAX ? zmq_msg_size(&part) : S_ID_MAX - 1;
    memcpy(self->peer, zmq_msg_data(&part), self->peer_len);
    zmq_msg_t kept[S_PARTS_KEPT];
    size_t sizes[S_PARTS_KEPT];
    int n = 0, total = 0, more = zmq_msg_more(&part);
    bool admitted = true;
    zmq_msg_close(&part);
    while (more) {
        zmq_msg_t body;
        zmq_msg_init(&body);
        if (zmq_msg_recv(&body, self->router, 0) < 0) {
            zmq_msg_close(&body);
            break;
        }
        more = zmq_msg_more(&body);
        if (total++ == 0 && self->opts.curve) /* the routing id part carries no metadata */
            admitted = vem_curve_admits_msg(self->opts.curve, &body, self->client_stations,
                                            sizeof self->client_stations);
        if (n < S_PARTS_KEPT) {
            sizes[n] = zmq_msg_size(&body);
            kept[n++] = body;
        } else {
            zmq_msg_close(&body);
        }
    }
    int body = admitted ? vem_stations_envelope(sizes, total < n ? total : n, &self->delim) : -1;
    if (total > n)
        body = -1;
    *parts = self->delim ? total - 1 : total;
    zmq_msg_init(&self->msg);
    self->has_msg = true;
    for (int i = 0; i < n; i++) {
        if (i == body)
            zmq_msg_move(&self->msg, &kept[i]);
        zmq_msg_close(&kept[i]);
    }
    return admitted ? 1 : -1;
}

bool vem_stations_read(vem_stations_t *self, uint64_t durable_seq, vem_station_input_t *in)
{
    if (self->has_msg) {
        zmq_msg_close(&self->msg);
        self->has_msg = false;
    }
    int parts;
    memset(in, 0, sizeof *in);
    int got = s_recv(self, &parts);
    if (got <= 0)
        return got < 0; /* a message from a revoked key is read and dropped, without answer */
    in->received_us = vem_now_us();
    self->cur_station[0] = self->cur_reading[0] = '\0';
    self->current = NULL;
    self->cur_reading_ok = false;
    const uint8_t *data = zmq_msg_data(&self->msg);
    size_t len = zmq_msg_size(&self->msg);
    vem_counter_add(self->bytes, len);
    in->data = data;
    in->len = len;
    snprintf(in->origin, sizeof in->origin, "station ?");
    if (parts != 1) {
        char note[96];
        snprintf(note, sizeof note, "expected one message part with the reading, got %d", parts);
        vem_counter_add(self->classes[VEM_RSD_BAD_JSON], 1);
        s_reject(self, in, VEM_RECORD_CLASS_RSD + VEM_RSD_BAD_JSON, "bad_json", "", note);
        return true;
    }
    vem_rsd_t r;
    vem_rsd_error_t err;
    vem_stations_verdict_t verdict =
        vem_stations_check(data, len, self->opts.max_message, self->opts.max_depth, in->received_us,
                           self->opts.future_s, &r, &err);
    if (verdict == VEM_STATIONS_TOO_LARGE) {
        char note[128];
        snprintf(note, sizeof note, "reading of %zu bytes over stations.max_message_bytes %zu", len,
                 self->opts.max_message);
        vem_counter_add(self->too_large, 1);
        in->data = NULL;
        in->len = 0;
        s_reject(self, in, VEM_RECORD_CLASS_TOO_LARGE, "too_large", "", note);
        return true;
    }
    if (verdict == VEM_STATIONS_TOO_DEEP) {
        vem_counter_add(self->too_deep, 1);
        s_reject(self, in, VEM_RECORD_CLASS_RSD + VEM_RSD_BAD_JSON, "bad_json", "", err.detail);
        return true;
    }
    vem_rsd_status_t st = err.status;
    snprintf(self->cur_station, sizeof self->cur_station, "%s", r.station_id);
    snprintf(self->cur_reading, sizeof self->cur_reading, "%s", r.reading_id);
    if (*r.station_id) {
        /* the meta text's separators (" !", " >", '#', ':') never appear in the id part */
        snprintf(in->origin, sizeof in->origin, "station %s", r.station_id);
        for (char *c = in->origin + 8; *c; c++)
            if (*c == '!' || *c == '>' || *c == '#' || *c == ':')
                *c = '_';
    }
    if (st != VEM_RSD_OK) {
        vem_counter_add(self->classes[st], 1);
        s_reject(self, in, (uint8_t)(VEM_RECORD_CLASS_RSD + st), vem_rsd_status_name(st), err.key,
                 err.detail);
        return true;
    }
    if (self->opts.curve && !vem_curve_station_listed(self->client_stations, r.station_id)) {
        /* a listed station delivering under another's id would take its reading ids */
        char note[160];
        snprintf(note, sizeof note, "station %s is not among the ids its CURVE key may deliver for",
                 r.station_id);
        vem_counter_add(self->wrong_station, 1);
        s_reject(self, in, VEM_RECORD_CLASS_STATION_KEY, "station_key", "station_id", note);
        return true;
    }
    s_station_t *station = s_station(self, r.station_id);
    if (!station) {
        s_busy(self, "too many stations (stations.max_stations)");
        return true;
    }
    if (station->inflight >= self->opts.max_inflight) {
        s_busy(self, "too many readings of this station unanswered (stations.max_inflight)");
        return true;
    }
    uint64_t key = s_id_key(r.station_id, r.reading_id), first;
    if (s_ids_find(&self->ids[0], key, &first) || s_ids_find(&self->ids[1], key, &first)) {
        vem_counter_add(self->dups, 1);
        s_queue(self, first, s_ack_text(r.station_id, r.reading_id, true), station);
        if (first <= durable_seq)
            vem_stations_answer(self, durable_seq);
        return true;
    }
    /* route: the registry's VIN for the plate, else the station's VIN, else the plate */
    const vem_vehicle_t *v =
        self->registry ? vem_registry_find_plate(self->registry, r.plate, r.plate_color) : NULL;
    size_t n = strlen(in->origin);
    if (v)
        snprintf(in->origin + n, sizeof in->origin - n, " >V:%s", v->vin);
    else if (*r.vin)
        snprintf(in->origin + n, sizeof in->origin - n, " >V:%s", r.vin);
    else
        snprintf(in->origin + n, sizeof in->origin - n, " >P:%s", r.plate);
    in->kind = VEM_SPOOL_KIND_RSD_READING;
    self->current = station;
    self->cur_key = key;
    self->cur_reading_ok = true;
    return true;
}

void vem_stations_staged(vem_stations_t *self, uint64_t seq)
{
    if (self->cur_reading_ok) {
        s_ids_put(self, self->cur_key, seq);
        s_queue(self, seq, s_ack_text(self->cur_station, self->cur_reading, false), self->current);
        vem_counter_add(self->acked, 1);
        self->cur_reading_ok = false;
    } else if (self->nanswers && self->answers[self->nanswers - 1].seq == 0) {
        self->answers[self->nanswers - 1].seq = seq; /* the rejection waits for its record */
    }
}

/* ---- life ----------------------------------------------------------------------------------- */

void *vem_stations_socket(vem_stations_t *self)
{
    return self->router;
}

void vem_stations_set_registry(vem_stations_t *self, vem_registry_t *registry)
{
    vem_registry_release(self->registry);
    self->registry = registry;
}

static void s_register(vem_stations_t *self, vem_metrics_t *m)
{
    const char *ep[] = {"endpoint", "stations", NULL};
    self->bytes =
        vem_metrics_counter(m, "vem_bytes_received_total", "Bytes received, by endpoint.", ep);
    const char *help = "Answers to roadside readings, by answer.";
    const char *a[] = {"answer", "ack", NULL}, *d[] = {"answer", "duplicate", NULL},
               *r[] = {"answer", "rejected", NULL}, *b[] = {"answer", "busy", NULL};
    self->acked = vem_metrics_counter(m, "vem_rsd_answers_total", help, a);
    self->dups = vem_metrics_counter(m, "vem_rsd_answers_total", help, d);
    self->rejected = vem_metrics_counter(m, "vem_rsd_answers_total", help, r);
    self->busy = vem_metrics_counter(m, "vem_rsd_answers_total", help, b);
    self->dropped = vem_metrics_counter(
        m, "vem_rsd_answers_dropped_total",
        "Answers to stations not sent: the station was gone or not reading (it sends again).",
        NULL);
    for (unsigned c = 1; c < VEM_RSD_STATUS_COUNT; c++) {
        const char *labels[] = {"class", vem_rsd_status_name((vem_rsd_status_t)c), NULL};
        self->classes[c] = vem_metrics_counter(m, "vem_rsd_rejections_total",
                                               "Roadside readings refused, by class.", labels);
    }
    const char *tl[] = {"class", "too_large", NULL};
    self->too_large = vem_metrics_counter(m, "vem_rsd_rejections_total",
                                          "Roadside readings refused, by class.", tl);
    const char *ws[] = {"class", "station_key", NULL};
    self->wrong_station = vem_metrics_counter(m, "vem_rsd_rejections_total",
                                              "Roadside readings refused, by class.", ws);
    const char *td[] = {"class", "too_deep", NULL};
    self->too_deep = vem_metrics_counter(m, "vem_rsd_rejections_total",
                                         "Roadside readings refused, by class.", td);
    self->nstations = vem_metrics_gauge(m, "vem_rsd_stations", "Stations known.", NULL);
}

vem_stations_t *vem_stations_new(void *zctx, const vem_stations_opts_t *opts, char *err,
                                 size_t errlen)
{
    vem_stations_t *self = calloc(1, sizeof *self);
    if (!self)
        abort();
    self->opts = *opts;
    self->router = zmq_socket(zctx, ZMQ_ROUTER);
    /* answers are small; one connection may carry many stations' readings */
    int zero = 0, one = 1, hwm = (int)opts->max_inflight, sndhwm = 4 * hwm;
    int64_t max = (int64_t)opts->max_message * 4 + 1024;
    zmq_setsockopt(self->router, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(self->router, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
    zmq_setsockopt(self->router, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(self->router, ZMQ_SNDHWM, &sndhwm, sizeof sndhwm);
    zmq_setsockopt(self->router, ZMQ_MAXMSGSIZE, &max, sizeof max);
    if (opts->curve && vem_curve_serve(opts->curve, self->router, err, errlen) != 0) {
        zmq_close(self->router);
        free(self);
        return NULL;
    }
    if (zmq_bind(self->router, opts->endpoint) != 0) {
        snprintf(err, errlen, "cannot bind stations endpoint %s: %s", opts->endpoint,
                 zmq_strerror(zmq_errno()));
        zmq_close(self->router);
        free(self);
        return NULL;
    }
    self->st_cap = s_pow2((size_t)opts->max_stations * 2);
    self->stations = calloc(self->st_cap, sizeof *self->stations);
    if (!self->stations)
        abort();
    s_ids_init(&self->ids[0], opts->dedup);
    s_ids_init(&self->ids[1], opts->dedup);
    s_register(self, opts->metrics);
    return self;
}

void vem_stations_destroy(vem_stations_t **self_p)
{
    vem_stations_t *self = *self_p;
    if (!self)
        return;
    if (self->has_msg)
        zmq_msg_close(&self->msg);
    for (size_t i = 0; i < self->nanswers; i++)
        free(self->answers[i].text);
    free(self->answers);
    zmq_close(self->router);
    vem_registry_release(self->registry);
    free(self->stations);
    for (int g = 0; g < 2; g++) {
        free(self->ids[g].keys);
        free(self->ids[g].seqs);
    }
    free(self);
    *self_p = NULL;
}
