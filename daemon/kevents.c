/* kevents — records to Kafka events; see kevents.h.
 *
 * Each event is a jansson object built in key order (envelope first, so a person reading
 * `vemctl tail` sees what it is at once) and dumped compact with the precision flags of
 * frame_json, so numbers print as `vemctl decode` prints them. */
#include "kevents.h"

#include "frame_json.h"
#include "pgrows.h"

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

typedef struct {
    vem_kevents_fn fn;
    void *arg;
    size_t made;
} s_out_t;

/* VIN bytes as text: trailing NULs and spaces cut, anything unprintable as '?' (as frame_json
 * does, so the key and the "vin" value agree). */
static void s_vin(const uint8_t *p, size_t n, char *out, size_t cap)
{
    while (n > 0 && (p[n - 1] == 0 || p[n - 1] == ' '))
        n--;
    if (n >= cap)
        n = cap - 1;
    for (size_t i = 0; i < n; i++)
        out[i] = p[i] >= 0x20 && p[i] < 0x7F ? (char)p[i] : '?';
    out[n] = '\0';
}

/* ISO 8601 Beijing time with microseconds: "2024-03-05T08:09:10.123456+08:00". */
static json_t *s_iso_us(int64_t us)
{
    int64_t sec = us >= 0 ? us / 1000000 : -((-us + 999999) / 1000000);
    char base[VEM_HJ1239_TIME_LEN], out[48];
    vem_hj1239_time_format(sec, base);
    char *plus = strrchr(base, '+');
    if (!plus)
        return json_string(base);
    snprintf(out, sizeof out, "%.*s.%06" PRId64 "%s", (int)(plus - base), base, us - sec * 1000000,
             plus);
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
    ev->value = json_dumps(o, S_DUMP_FLAGS);
    json_decref(o);
    if (!ev->value)
        abort(); /* out of memory */
    ev->value_len = strlen(ev->value);
    out->made++;
    out->fn(out->arg, ev);
}

/* One event per sample and per OBD block of a real-time or re-sent frame. */
static void s_samples(s_out_t *out, const vem_hj1239_frame_t *f, int64_t received_us)
{
    char vin[18];
    s_vin(f->vin, sizeof f->vin, vin, sizeof vin);
    const char *cmd = vem_hj1239_cmd_name(f->cmd);
    size_t of[VEM_HJ1239_MAX_BLOCKS];
    for (size_t j = 0; j < f->nblocks; j++)
        of[j] = f->blocks[j].type == VEM_HJ1239_BLOCK_OBD ? j : vem_pgrows_sample_of(f, j);
    for (size_t i = 0; i < f->nblocks; i++) {
        if (of[i] != i)
            continue; /* vendor, or joined to a sample */
        const vem_hj1239_block_t *b = &f->blocks[i];
        bool obd = b->type == VEM_HJ1239_BLOCK_OBD;
        vem_kevent_t ev = {.topic = VEM_KTOPIC_SAMPLES, .type = obd ? "obd" : "sample"};
        snprintf(ev.key, sizeof ev.key, "%s", vin);
        snprintf(ev.id, sizeof ev.id, "%s/%s/%" PRId64 "/%zu", ev.type, vin, b->time, i);
        json_t *o = s_envelope(ev.type, ev.id);
        json_object_set_new(o, "vin", json_string(vin));
        json_object_set_new(o, "time", s_iso(b->time));
        json_object_set_new(o, "received_at", s_iso_us(received_us));
        json_object_set_new(o, "cmd", json_string(cmd));
        json_object_set_new(
            o, "seq",
            json_integer((f->layout & VEM_HJ1239_LAYOUT_SERIAL_PER_BLOCK) ? b->seq : f->seq));
        json_object_set_new(o, "block_idx", json_integer((json_int_t)i));
        json_t *blocks = json_array();
        json_array_append_new(blocks, vem_frame_json_block(f, i));
        for (size_t j = 0; j < f->nblocks; j++)
            if (j != i && of[j] == i)
                json_array_append_new(blocks, vem_frame_json_block(f, j));
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
 * first_us/last_us, which give the id and are dropped (first_at/last_at say the same). */
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
    snprintf(ev.id, sizeof ev.id, "violation/%s/%lld/%s", id, last_us, severity);
    json_object_del(v, "first_us");
    json_object_del(v, "last_us");
    json_t *o = s_envelope(ev.type, ev.id);
    json_object_update(o, v);
    json_decref(v);
    s_emit(out, &ev, o);
}

size_t vem_kevents_of(const vem_record_t *rec, vem_hj1239_frame_t *frame, unsigned wanted,
                      vem_kevents_fn fn, void *arg)
{
    s_out_t out = {.fn = fn, .arg = arg};
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
            s_samples(&out, frame, rec->received_us);
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
