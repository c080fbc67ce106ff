/* kevents — records to Kafka events; see kevents.h.
 *
 * Events are built in key order (envelope first, so a person reading `vemctl tail` sees what
 * it is at once). Terminal, OBD and violation events are jansson objects dumped compact with
 * frame_json's precision flags, so numbers print as `vemctl decode` prints them.
 *
 * Sample events are nine in ten of all events, and through jansson they cost 14 us each, five
 * times a bare producer's whole cost per message (bench-kafka): the sink could not keep up
 * with its own producer. So they are written straight into a buffer, without a tree: every
 * key is a static ASCII name, the one string from the wire (the VIN) is cut to characters that
 * need no escaping, and numbers are printed from their rounded integer of resolution steps,
 * exactly as jansson prints the rounded double (shortest form, ".0" on whole reals).
 * check_kevents parses what is written here and compares it with frame_json's objects. */
#include "kevents.h"

#include "frame_json.h"
#include "pgrows.h"
#include "rsd.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_DUMP_FLAGS (VEM_FRAME_JSON_DUMP_FLAGS | JSON_COMPACT)

static const char *const s_kinds[VEM_KTOPICS] = {"violations", "samples", "terminal", "rsd"};

const char *vem_kevents_topic_kind(vem_ktopic_t t)
{
    return t < VEM_KTOPICS ? s_kinds[t] : "?";
}

/* VIN bytes as text: trailing NULs and spaces cut, anything unprintable as '?' (as frame_json
 * does, so the key and the "vin" value agree), and so are '"' and '\\' (no VIN has them), so
 * the text needs no escaping in JSON. */
static void s_vin(const uint8_t *p, size_t n, char *out, size_t cap)
{
    while (n > 0 && (p[n - 1] == 0 || p[n - 1] == ' '))
        n--;
    if (n >= cap)
        n = cap - 1;
    for (size_t i = 0; i < n; i++)
        out[i] = p[i] >= 0x20 && p[i] < 0x7F && p[i] != '"' && p[i] != '\\' ? (char)p[i] : '?';
    out[n] = '\0';
}

/* ---- the sample writer ---------------------------------------------------------------------- */

typedef struct {
    char *p;
    size_t len, cap;
    bool heap; /* p was malloc'd here (else it is the caller's, and moves to the heap to grow) */
} s_buf_t;

/* A sample event is some 750 bytes: they are written on the stack. A buffer malloc'd and
 * grown per record cost more than its bytes: a request of 1 KiB or more makes glibc
 * consolidate its fastbins, which librdkafka's small allocations for every message fill. */
#define S_STACK_BUF 4096

typedef struct {
    vem_kevents_fn fn;
    void *arg;
    size_t made;
    s_buf_t buf; /* the sample writer's, kept for the record's events */
    char stack[S_STACK_BUF];
} s_out_t;

static void s_reserve(s_buf_t *b, size_t n)
{
    if (b->len + n <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 1024;
    while (b->len + n > cap)
        cap *= 2;
    char *p = b->heap ? realloc(b->p, cap) : malloc(cap);
    if (!p)
        abort();
    if (!b->heap && b->len)
        memcpy(p, b->p, b->len);
    b->p = p;
    b->cap = cap;
    b->heap = true;
}

static void s_put(s_buf_t *b, const char *s, size_t n)
{
    s_reserve(b, n);
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

#define S_LIT(b, lit) s_put((b), (lit), sizeof(lit) - 1)

static void s_puts(s_buf_t *b, const char *s)
{
    s_put(b, s, strlen(s));
}

static void s_int(s_buf_t *b, long long v)
{
    char tmp[24];
    size_t n = 0;
    unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        tmp[n++] = '-';
    s_reserve(b, n);
    while (n)
        b->p[b->len++] = tmp[--n];
}

/* Unchecked writers for the hot path: the caller reserved the room (s_reserve) and gets the
 * end back. Checking and updating the buffer per piece was a quarter of the writer's time. */
static char *s_w(char *w, const char *s, size_t n)
{
    memcpy(w, s, n);
    return w + n;
}

#define S_WLIT(w, lit) ((w) = s_w((w), (lit), sizeof(lit) - 1))

/* At most 20 bytes; written in place, back to front (a copy of the digits was a call). */
static char *s_wuint(char *w, unsigned long long u)
{
    size_t n = 1;
    for (unsigned long long v = u; v >= 10; v /= 10)
        n++;
    char *p = w + n;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    return w + n;
}

/* At most 21 bytes. */
static char *s_wint(char *w, long long v)
{
    if (v < 0) {
        *w++ = '-';
        return s_wuint(w, 0ull - (unsigned long long)v);
    }
    return s_wuint(w, (unsigned long long)v);
}

/* steps / 10^decimals, as jansson prints that rounded double: trailing zeros of the fraction
 * cut, but at least one digit after the point. At most 22 + decimals bytes. */
static char *s_wfixed(char *w, long long steps, unsigned decimals)
{
    unsigned long long u = steps < 0 ? 0ull - (unsigned long long)steps : (unsigned long long)steps;
    if (steps < 0)
        *w++ = '-';
    unsigned long long p10 = 1;
    for (unsigned i = 0; i < decimals; i++)
        p10 *= 10;
    w = s_wuint(w, u / p10);
    *w++ = '.';
    unsigned long long frac = u % p10;
    unsigned digits = decimals;
    while (digits > 1 && frac % 10 == 0) {
        frac /= 10;
        digits--;
    }
    if (!digits) {
        *w++ = '0';
        return w;
    }
    for (unsigned i = digits; i > 0; i--) {
        w[i - 1] = (char)('0' + frac % 10);
        frac /= 10;
    }
    return w + digits;
}

/* llround (half away from zero) for |x| < 2^53, which every value here is, inline: the libm
 * call was 3% of the sink's thread. x - t is exact for such x, so ties are seen as ties. */
static long long s_round(double x)
{
    long long t = (long long)x; /* toward zero */
    double frac = x - (double)t;
    if (frac >= 0.5)
        t++;
    else if (frac <= -0.5)
        t--;
    return t;
}

/* What a record's sample events repeat: the text of the last time formatted (a sample's
 * blocks repeat it), and the lengths of the field keys (strlen of some 20 keys per event was
 * 4% of the sink's thread). */
typedef struct {
    int64_t epoch;
    bool set;
    char text[VEM_HJ1239_TIME_LEN];
    size_t len;
    uint8_t key_len[VEM_HJ1239_F_COUNT]; /* 0: not measured yet */
} s_cache_t;

/* Length of field fid's key. */
static size_t s_key_len(s_cache_t *c, vem_hj1239_field_t fid, const char *key)
{
    if (c->key_len[fid])
        return c->key_len[fid];
    size_t n = strlen(key);
    if (n <= UINT8_MAX)
        c->key_len[fid] = (uint8_t)n;
    return n;
}

static const s_cache_t *s_time(s_cache_t *t, int64_t epoch)
{
    if (!t->set || t->epoch != epoch) {
        vem_hj1239_time_format(epoch, t->text);
        t->len = strlen(t->text);
        t->epoch = epoch;
        t->set = true;
    }
    return t;
}

static int s_cmp_names(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void s_names(s_buf_t *b, const char **names, size_t n)
{
    if (n > 1)
        qsort(names, n, sizeof names[0], s_cmp_names);
    S_LIT(b, "[");
    for (size_t i = 0; i < n; i++) {
        if (i)
            S_LIT(b, ",");
        S_LIT(b, "\"");
        s_puts(b, names[i]);
        S_LIT(b, "\"");
    }
    S_LIT(b, "]");
}

/* vem_hj1239_value for a field of the block's own list (raw * scale + offset up to max_raw, as
 * hj1239.h defines it), without its search of the list: a tenth of the block's time. */
static bool s_value(const vem_hj1239_block_t *blk, const vem_hj1239_field_info_t *fi,
                    vem_hj1239_field_t fid, double *out)
{
    if (fid == VEM_HJ1239_F_LON || fid == VEM_HJ1239_F_LAT)
        return vem_hj1239_value(blk, fid, out);
    uint32_t raw = blk->raw[fid];
    if (raw > fi->max_raw)
        return false;
    *out = raw * fi->scale + fi->offset;
    return true;
}

/* Block i of f as frame_json writes it (vem_frame_json_block), for the sample block types. */
static void s_block(s_buf_t *b, const vem_hj1239_frame_t *f, size_t i, s_cache_t *tc)
{
    const vem_hj1239_block_t *blk = &f->blocks[i];
    const char *name = vem_hj1239_block_name(blk->type);
    if (!name)
        name = "vendor";
    size_t name_len = strlen(name);
    s_reserve(b, name_len + 96 + VEM_HJ1239_TIME_LEN);
    char *w = b->p + b->len;
    S_WLIT(w, "{\"type\":\"");
    w = s_w(w, name, name_len);
    S_WLIT(w, "\",\"type_code\":");
    w = s_wuint(w, blk->type);
    if (f->layout & VEM_HJ1239_LAYOUT_SERIAL_PER_BLOCK) {
        S_WLIT(w, ",\"seq\":");
        w = s_wuint(w, blk->seq);
    }
    if (f->layout & VEM_HJ1239_LAYOUT_BLOCK_TIME) {
        const s_cache_t *t = s_time(tc, blk->time);
        S_WLIT(w, ",\"time\":\"");
        w = s_w(w, t->text, t->len);
        *w++ = '"';
    }
    b->len = (size_t)(w - b->p);
    size_t n;
    const uint8_t *list = vem_hj1239_block_fields(blk->type, &n);
    const char *invalid[VEM_HJ1239_F_COUNT], *abnormal[VEM_HJ1239_F_COUNT];
    size_t ninvalid = 0, nabnormal = 0;
    for (size_t k = 0; k < n; k++) {
        vem_hj1239_field_t fid = list[k];
        const vem_hj1239_field_info_t *fi = vem_hj1239_field_info(fid);
        uint32_t raw = blk->raw[fid];
        bool none = blk->novalue >> fid & 1;
        if (none) {
            if (vem_hj1239_marker_invalid(fid, raw))
                invalid[ninvalid++] = fi->name;
            else
                abnormal[nabnormal++] = fi->name;
        }
        const char *key = fid == VEM_HJ1239_F_POS_STATUS ? "pos_valid" : fi->name;
        size_t key_len = s_key_len(tc, fid, key);
        s_reserve(b, key_len + 4 + 24 + fi->decimals); /* ,"key": and a number */
        w = b->p + b->len;
        S_WLIT(w, ",\"");
        w = s_w(w, key, key_len);
        S_WLIT(w, "\":");
        double d;
        if (fid == VEM_HJ1239_F_POS_STATUS) {
            if (vem_hj1239_pos_valid((uint8_t)raw))
                S_WLIT(w, "true");
            else
                S_WLIT(w, "false");
        } else if (!s_value(blk, fi, fid, &d)) {
            S_WLIT(w, "null");
        } else if (fi->integer) {
            w = s_wint(w, s_round(d));
        } else {
            double p10 = 1;
            for (unsigned j = 0; j < fi->decimals; j++)
                p10 *= 10;
            w = s_wfixed(w, s_round(d * p10), fi->decimals);
        }
        b->len = (size_t)(w - b->p);
    }
    S_LIT(b, ",\"invalid\":");
    s_names(b, invalid, ninvalid);
    S_LIT(b, ",\"abnormal\":");
    s_names(b, abnormal, nabnormal);
    S_LIT(b, "}");
}

/* A sample event: the envelope, the sample's keys, the frame's signature result (sig, NULL
 * when not checked: the key is left out), its block and the blocks joined to it. */
static void s_sample_json(s_buf_t *b, const vem_hj1239_frame_t *f, size_t i, const size_t *of,
                          const char *vin, const char *id, const char *received, const char *cmd,
                          const char *sig, s_cache_t *tc)
{
    const vem_hj1239_block_t *blk = &f->blocks[i];
    const s_cache_t *t = s_time(tc, blk->time);
    size_t id_len = strlen(id), vin_len = strlen(vin), received_len = strlen(received);
    size_t cmd_len = strlen(cmd), sig_len = sig ? strlen(sig) : 0;
    b->len = 0;
    s_reserve(b, 220 + 3 * 21 + id_len + vin_len + t->len + received_len + cmd_len + sig_len);
    char *w = b->p;
    S_WLIT(w, "{\"event_type\":\"sample\",\"schema_version\":");
    w = s_wint(w, VEM_KEVENTS_SCHEMA_VERSION);
    S_WLIT(w, ",\"event_id\":\"");
    w = s_w(w, id, id_len);
    S_WLIT(w, "\",\"vin\":\"");
    w = s_w(w, vin, vin_len);
    S_WLIT(w, "\",\"time\":\"");
    w = s_w(w, t->text, t->len);
    S_WLIT(w, "\",\"received_at\":\"");
    w = s_w(w, received, received_len);
    S_WLIT(w, "\",\"cmd\":\"");
    w = s_w(w, cmd, cmd_len);
    S_WLIT(w, "\",\"seq\":");
    w = s_wuint(w, (f->layout & VEM_HJ1239_LAYOUT_SERIAL_PER_BLOCK) ? blk->seq : f->seq);
    S_WLIT(w, ",\"block_idx\":");
    w = s_wuint(w, i);
    if (sig) { /* a static name: no escaping */
        S_WLIT(w, ",\"signature_check\":\"");
        w = s_w(w, sig, sig_len);
        *w++ = '"';
    }
    S_WLIT(w, ",\"blocks\":[");
    b->len = (size_t)(w - b->p);
    s_block(b, f, i, tc);
    for (size_t j = 0; j < f->nblocks; j++)
        if (j != i && of[j] == i) {
            S_LIT(b, ",");
            s_block(b, f, j, tc);
        }
    S_LIT(b, "]}");
}

/* ISO 8601 Beijing time with microseconds: "2024-03-05T08:09:10.123456+08:00". */
static void s_iso_us_text(int64_t us, char out[48])
{
    int64_t sec = us >= 0 ? us / 1000000 : -((-us + 999999) / 1000000);
    char base[VEM_HJ1239_TIME_LEN];
    vem_hj1239_time_format(sec, base);
    char *plus = strrchr(base, '+');
    if (!plus) {
        snprintf(out, 48, "%s", base);
        return;
    }
    snprintf(out, 48, "%.*s.%06" PRId64 "%s", (int)(plus - base), base, us - sec * 1000000, plus);
}

static json_t *s_iso_us(int64_t us)
{
    char out[48];
    s_iso_us_text(us, out);
    return json_string(out);
}

static json_t *s_iso(int64_t epoch)
{
    char buf[VEM_HJ1239_TIME_LEN];
    vem_hj1239_time_format(epoch, buf);
    return json_string(buf);
}

static json_t *s_envelope(const char *type, const char *id)
{
    json_t *o = json_object();
    json_object_set_new(o, "event_type", json_string(type));
    json_object_set_new(o, "schema_version", json_integer(VEM_KEVENTS_SCHEMA_VERSION));
    json_object_set_new(o, "event_id", json_string(id));
    return o;
}

/* Dumps o into ev and hands ev on; drops o. */
static void s_emit(s_out_t *out, vem_kevent_t *ev, json_t *o)
{
    char *text = json_dumps(o, S_DUMP_FLAGS);
    json_decref(o);
    if (!text)
        abort(); /* out of memory */
    ev->value = text;
    ev->value_len = strlen(text);
    out->made++;
    out->fn(out->arg, ev);
    free(text);
}

/* "TYPE/VIN/EPOCH/IDX" into ev->id: built by hand, as snprintf costs a tenth of an event. */
static void s_sample_id(vem_kevent_t *ev, const char *vin, int64_t epoch, size_t idx)
{
    s_buf_t b = {.p = ev->id, .cap = sizeof ev->id}; /* never grows: at most 3+1+17+1+20+1+20 */
    s_puts(&b, ev->type);
    S_LIT(&b, "/");
    s_puts(&b, vin);
    S_LIT(&b, "/");
    s_int(&b, epoch);
    S_LIT(&b, "/");
    s_int(&b, (long long)idx);
    b.p[b.len] = '\0';
}

/* One event per sample and per OBD block of a real-time or re-sent frame; sig is the frame's
 * signature result (vem_records_sig_name), NULL when it was not checked. */
static void s_samples(s_out_t *out, const vem_hj1239_frame_t *f, int64_t received_us,
                      const char *sig)
{
    char vin[18], received[48];
    s_vin(f->vin, sizeof f->vin, vin, sizeof vin);
    s_iso_us_text(received_us, received);
    const char *cmd = vem_hj1239_cmd_name(f->cmd);
    s_cache_t tc = {0};
    size_t of[VEM_HJ1239_MAX_BLOCKS];
    for (size_t j = 0; j < f->nblocks; j++)
        of[j] = f->blocks[j].type == VEM_HJ1239_BLOCK_OBD ? j : vem_pgrows_sample_of(f, j);
    for (size_t i = 0; i < f->nblocks; i++) {
        if (of[i] != i)
            continue; /* vendor, or joined to a sample */
        const vem_hj1239_block_t *b = &f->blocks[i];
        bool obd = b->type == VEM_HJ1239_BLOCK_OBD;
        vem_kevent_t ev = {.topic = VEM_KTOPIC_SAMPLES, .type = obd ? "obd" : "sample"};
        memcpy(ev.key, vin, sizeof vin); /* 18 < sizeof ev.key */
        s_sample_id(&ev, vin, b->time, i);
        if (!obd) {
            s_sample_json(&out->buf, f, i, of, vin, ev.id, received, cmd, sig, &tc);
            s_put(&out->buf, "", 1); /* NUL: the value is a C string too */
            ev.value = out->buf.p;
            ev.value_len = out->buf.len - 1;
            out->made++;
            out->fn(out->arg, &ev);
            continue;
        }
        json_t *o = s_envelope(ev.type, ev.id);
        json_object_set_new(o, "vin", json_string(vin));
        json_object_set_new(o, "time", s_iso(b->time));
        json_object_set_new(o, "received_at", json_string(received));
        json_object_set_new(o, "cmd", json_string(cmd));
        json_object_set_new(
            o, "seq",
            json_integer((f->layout & VEM_HJ1239_LAYOUT_SERIAL_PER_BLOCK) ? b->seq : f->seq));
        json_object_set_new(o, "block_idx", json_integer((json_int_t)i));
        if (sig)
            json_object_set_new(o, "signature_check", json_string(sig));
        json_t *blocks = json_array();
        json_array_append_new(blocks, vem_frame_json_block(f, i));
        json_object_set_new(o, "blocks", blocks);
        s_emit(out, &ev, o);
    }
}

/* One event for a login, logout, removal alarm or activation: the decoded frame's keys. */
static void s_terminal(s_out_t *out, const vem_hj1239_frame_t *f, int64_t received_us)
{
    char vin[18];
    s_vin(f->vin, sizeof f->vin, vin, sizeof vin);
    const char *cmd = vem_hj1239_cmd_name(f->cmd);
    vem_kevent_t ev = {.topic = VEM_KTOPIC_TERMINAL, .type = "terminal"};
    snprintf(ev.key, sizeof ev.key, "%s", vin);
    snprintf(ev.id, sizeof ev.id, "terminal/%s/%" PRId64 "/%s", vin, f->time, cmd);
    json_t *o = s_envelope(ev.type, ev.id);
    json_t *frame = vem_frame_json_new(f);
    json_object_update(o, frame); /* envelope keys first, then the frame's in its order */
    json_decref(frame);
    json_object_set_new(o, "received_at", s_iso_us(received_us));
    s_emit(out, &ev, o);
}

/* One event per emission of a verdict; the worker's JSON has the FIELDS.md keys plus
 * first_us/last_us, which give the id and are dropped (first_at/last_at say the same), and
 * emission. The input whose judgement made it (received_at, spool_seq) and its place after
 * that input (emission) order the emissions of one id: the latest is the verdict as it now
 * stands, even when it says less than an earlier one (schema/0016_merge_by_input.sql); they
 * are in the event id, so that such an emission is not taken for a copy of an earlier one
 * with the same last_at and severity. */
static void s_violation(s_out_t *out, const vem_record_t *rec)
{
    json_error_t jerr;
    json_t *v = json_loadb((const char *)rec->data, rec->data_len, 0, &jerr);
    const char *id = json_string_value(json_object_get(v, "violation_id"));
    const char *severity = json_string_value(json_object_get(v, "severity"));
    const char *vin = json_string_value(json_object_get(v, "vin"));
    const char *plate = json_string_value(json_object_get(v, "plate"));
    const char *key = vin && *vin ? vin : plate;
    if (!id || !severity || !key || !*key) {
        json_decref(v);
        return; /* cannot happen between our threads; sink_pg logs the same record */
    }
    long long last_us = (long long)json_integer_value(json_object_get(v, "last_us"));
    vem_kevent_t ev = {.topic = VEM_KTOPIC_VIOLATIONS, .type = "violation"};
    snprintf(ev.key, sizeof ev.key, "%s", key);
    long long emission = (long long)json_integer_value(json_object_get(v, "emission"));
    snprintf(ev.id, sizeof ev.id, "violation/%s/%llu/%lld/%lld/%s", id,
             (unsigned long long)rec->seq, emission, last_us, severity);
    json_object_del(v, "first_us");
    json_object_del(v, "last_us");
    json_object_set_new(v, "received_at",
                        rec->received_us ? s_iso_us(rec->received_us) : json_null());
    json_object_set_new(v, "spool_seq", json_integer((json_int_t)rec->seq));
    json_t *o = s_envelope(ev.type, ev.id);
    json_object_update(o, v);
    json_decref(v);
    s_emit(out, &ev, o);
}

/* A roadside reading: its normalized keys (parsers/rsd), the VIN and the verdict vemd added
 * (the record's detail), and its receipt time. Key: the VIN when known, else the plate. */
static void s_reading(s_out_t *out, const vem_record_t *rec)
{
    vem_rsd_t r;
    vem_rsd_error_t err;
    /* accepted by ingest at receipt already: no tolerance to apply again */
    if (vem_rsd_parse(rec->data, rec->data_len, rec->received_us, INT32_MAX, &r, &err) !=
        VEM_RSD_OK)
        return; /* cannot happen between our threads; sink_pg keeps the bytes */
    json_error_t jerr;
    json_t *added = json_loadb(rec->detail ? rec->detail : "{}", rec->detail_len, 0, &jerr);
    json_t *reading = vem_rsd_json(&r);
    json_object_del(reading, "version");
    const char *vin = json_string_value(json_object_get(added, "vin"));
    if (vin && *vin)
        json_object_set_new(reading, "vin", json_string(vin));
    json_t *counted = json_object_get(added, "counted");
    json_object_set_new(reading, "counted", json_boolean(json_is_true(counted)));
    json_t *why = json_object_get(added, "invalid_reason");
    json_object_set(reading, "invalid_reason", json_is_string(why) ? why : json_null());
    json_object_set_new(reading, "received_at", s_iso_us(rec->received_us));
    vem_kevent_t ev = {.topic = VEM_KTOPIC_RSD, .type = "rsd"};
    snprintf(ev.key, sizeof ev.key, "%s", vin && *vin ? vin : r.plate);
    snprintf(ev.id, sizeof ev.id, "rsd/%s/%s", r.station_id, r.reading_id);
    json_t *o = s_envelope(ev.type, ev.id);
    json_object_update(o, reading);
    json_decref(reading);
    json_decref(added);
    s_emit(out, &ev, o);
}

size_t vem_kevents_of(const vem_record_t *rec, vem_hj1239_frame_t *frame, unsigned wanted,
                      vem_kevents_fn fn, void *arg)
{
    s_out_t out = {.fn = fn, .arg = arg};
    out.buf = (s_buf_t){.p = out.stack, .cap = sizeof out.stack};
    if (rec->kind == VEM_RECORD_READING) {
        if (wanted & 1u << VEM_KTOPIC_RSD)
            s_reading(&out, rec);
        return out.made;
    }
    if (rec->kind == VEM_RECORD_VIOLATION) {
        if (wanted & 1u << VEM_KTOPIC_VIOLATIONS)
            s_violation(&out, rec);
        return out.made;
    }
    if (rec->kind != VEM_RECORD_FRAME ||
        !(wanted & (1u << VEM_KTOPIC_SAMPLES | 1u << VEM_KTOPIC_TERMINAL)))
        return 0;
    vem_hj1239_error_t err;
    if (vem_hj1239_decode(rec->data, rec->data_len, VEM_HJ1239_TRUSTED_BCC, frame, &err) !=
        VEM_HJ1239_OK)
        return 0; /* the worker accepted it, so this cannot happen; sink_pg keeps the bytes */
    switch (frame->cmd) {
    case VEM_HJ1239_CMD_REALTIME:
    case VEM_HJ1239_CMD_RESEND:
        if (wanted & 1u << VEM_KTOPIC_SAMPLES)
            s_samples(&out, frame, rec->received_us, vem_records_sig_name(rec->status));
        if (out.buf.heap)
            free(out.buf.p);
        break;
    case VEM_HJ1239_CMD_LOGIN:
    case VEM_HJ1239_CMD_LOGOUT:
    case VEM_HJ1239_CMD_REMOVAL_ALARM:
    case VEM_HJ1239_CMD_ACTIVATION:
        if (frame->has_time && (wanted & 1u << VEM_KTOPIC_TERMINAL))
            s_terminal(&out, frame, rec->received_us);
        break;
    default:
        break;
    }
    return out.made;
}
