/* check_kevents — records to Kafka events: one event per sample (the simulator's frame says how
 * many it holds) and per OBD block, one per terminal frame and per verdict; keys are VINs (the
 * plate without one); ids are deterministic and made of the data; topics switched off get
 * nothing; quarantined and settled records make no event. */
#include "frame_json.h"
#include "kevents.h"
#include "sim_fleet.h"
#include "sim_frames.h"

#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    json_t *events; /* [{topic, type, key, id, value}] */
} s_got_t;

static void s_collect(void *arg, vem_kevent_t *ev)
{
    s_got_t *got = arg;
    json_error_t err;
    json_t *value = json_loadb(ev->value, ev->value_len, 0, &err);
    ck_assert_msg(value != NULL, "event %s is not JSON: %s", ev->id, err.text);
    json_array_append_new(got->events,
                          json_pack("{s:i, s:s, s:s, s:s, s:o}", "topic", ev->topic, "type",
                                    ev->type, "key", ev->key, "id", ev->id, "value", value));
}

static json_t *s_events(const vem_record_t *rec, unsigned wanted)
{
    static vem_hj1239_frame_t frame;
    s_got_t got = {json_array()};
    size_t n = vem_kevents_of(rec, &frame, wanted, s_collect, &got);
    ck_assert_uint_eq(n, json_array_size(got.events));
    return got.events;
}

static const char *s_get(json_t *o, const char *path)
{
    return json_string_value(json_object_get(o, path));
}

#define S_ALL 0xFu

static size_t s_realtime(uint8_t *out, size_t cap, bool with_obd, int nsamples)
{
    static vem_hj1239_frame_t scratch;
    vem_sim_truck_t truck;
    vem_sim_truck_init(&truck, 7, 3, 118.8, 32.06, 0);
    vem_sim_sample_t samples[10];
    for (int i = 0; i < nsamples; i++)
        samples[i] = *vem_sim_truck_step(&truck);
    size_t len = vem_sim_data(&scratch, &truck, samples, nsamples, 1767225600, 5, false, true,
                              with_obd, out, cap);
    ck_assert_uint_gt(len, 0);
    return len;
}

/* The FRAME record of an accepted frame: spool seq, receipt time, the frame's bytes. */
static vem_record_t s_frame_record(uint64_t seq, int64_t received_us, const uint8_t *buf,
                                   size_t len)
{
    return (vem_record_t){.seq = seq,
                          .nseqs = 1,
                          .kind = VEM_RECORD_FRAME,
                          .received_us = received_us,
                          .data = buf,
                          .data_len = (uint32_t)len};
}

START_TEST(samples_and_obd)
{
    uint8_t buf[4096];
    size_t len = s_realtime(buf, sizeof buf, true, 10);
    vem_record_t rec = s_frame_record(9, 1, buf, len);
    json_t *ev = s_events(&rec, S_ALL);
    /* 10 samples (each with the frame's supplementary block joined to one of them) + 1 OBD */
    ck_assert_uint_eq(json_array_size(ev), 11);
    size_t samples = 0, obd = 0, joined = 0;
    size_t i;
    json_t *e;
    json_array_foreach(ev, i, e)
    {
        json_t *v = json_object_get(e, "value");
        ck_assert_int_eq(json_integer_value(json_object_get(e, "topic")), VEM_KTOPIC_SAMPLES);
        ck_assert_str_eq(s_get(e, "key"), "LVEMSIM0000000003");
        ck_assert_str_eq(s_get(v, "vin"), "LVEMSIM0000000003");
        ck_assert_str_eq(s_get(v, "event_type"), s_get(e, "type"));
        ck_assert_str_eq(s_get(v, "event_id"), s_get(e, "id"));
        ck_assert_int_eq(json_integer_value(json_object_get(v, "schema_version")), 3);
        ck_assert_str_eq(s_get(v, "received_at"), "1970-01-01T08:00:00.000001+08:00");
        char id[128];
        snprintf(id, sizeof id, "%s/LVEMSIM0000000003/%lld/%lld", s_get(e, "type"),
                 (long long)1767225600 + (strcmp(s_get(e, "type"), "obd") == 0
                                              ? 9 /* the OBD block has the frame's time */
                                              : 0),
                 (long long)json_integer_value(json_object_get(v, "block_idx")));
        if (strcmp(s_get(e, "type"), "sample") == 0) {
            samples++;
            joined += json_array_size(json_object_get(v, "blocks")) - 1;
            json_t *first = json_array_get(json_object_get(v, "blocks"), 0);
            ck_assert_str_eq(s_get(first, "type"), "stream");
        } else {
            ck_assert_str_eq(s_get(e, "type"), "obd");
            obd++;
        }
    }
    ck_assert_uint_eq(samples, 10);
    ck_assert_uint_eq(obd, 1);
    ck_assert_uint_eq(joined, 1);
    /* the same input gives the same events, byte for byte */
    json_t *again = s_events(&rec, S_ALL);
    ck_assert(json_equal(ev, again));
    /* samples switched off: nothing */
    json_t *none = s_events(&rec, S_ALL & ~(1u << VEM_KTOPIC_SAMPLES));
    ck_assert_uint_eq(json_array_size(none), 0);
    json_decref(ev);
    json_decref(again);
    json_decref(none);
}
END_TEST

/* The sample writer's blocks are frame_json's (the route of `vemctl decode`), value for value,
 * over many frames of several trucks: negative and positive, whole and fractional values. */
START_TEST(samples_equal_frame_json)
{
    static vem_hj1239_frame_t scratch, decoded;
    for (unsigned t = 0; t < 4; t++) {
        vem_sim_truck_t truck;
        vem_sim_truck_init(&truck, 99, t, t % 2 ? -73.9 : 118.8, t / 2 ? -33.4 : 32.06, 0);
        for (int k = 0; k < 30; k++) {
            vem_sim_sample_t samples[10];
            for (int i = 0; i < 10; i++)
                samples[i] = *vem_sim_truck_step(&truck);
            uint8_t buf[4096];
            size_t len =
                vem_sim_data(&scratch, &truck, samples, 10, 1767225600 + k * 10, (uint16_t)(k + 1),
                             k % 3 == 0, k % 2 == 0, k % 5 == 0, buf, sizeof buf);
            ck_assert_uint_gt(len, 0);
            ck_assert_int_eq(vem_hj1239_decode(buf, len, 0, &decoded, NULL), VEM_HJ1239_OK);
            vem_record_t rec = s_frame_record(1, 123456789, buf, len);
            json_t *ev = s_events(&rec, S_ALL);
            size_t i;
            json_t *e;
            json_array_foreach(ev, i, e)
            {
                json_t *v = json_object_get(e, "value");
                json_t *blocks = json_object_get(v, "blocks");
                size_t idx = (size_t)json_integer_value(json_object_get(v, "block_idx"));
                json_t *want = vem_frame_json_block(&decoded, idx);
                ck_assert_msg(json_equal(json_array_get(blocks, 0), want), "%s: %s vs %s",
                              s_get(e, "id"), json_dumps(json_array_get(blocks, 0), 0),
                              json_dumps(want, 0));
                json_decref(want);
                for (size_t j = 1; j < json_array_size(blocks); j++) {
                    bool found = false;
                    for (size_t b = 0; b < decoded.nblocks && !found; b++) {
                        json_t *other = vem_frame_json_block(&decoded, b);
                        found = json_equal(json_array_get(blocks, j), other);
                        json_decref(other);
                    }
                    ck_assert_msg(found, "%s: joined block %zu is no block of the frame",
                                  s_get(e, "id"), j);
                }
            }
            json_decref(ev);
        }
    }
}
END_TEST

START_TEST(ids_name_the_sample)
{
    uint8_t buf[4096];
    size_t len = s_realtime(buf, sizeof buf, false, 3);
    vem_record_t rec = s_frame_record(1, 5, buf, len);
    json_t *ev = s_events(&rec, S_ALL);
    ck_assert_uint_eq(json_array_size(ev), 3);
    ck_assert_str_eq(s_get(json_array_get(ev, 0), "id"), "sample/LVEMSIM0000000003/1767225600/0");
    ck_assert_str_eq(s_get(json_array_get(ev, 2), "id"), "sample/LVEMSIM0000000003/1767225602/2");
    json_decref(ev);
}
END_TEST

START_TEST(terminal_frames)
{
    static vem_hj1239_frame_t scratch;
    uint8_t buf[512];
    size_t len = vem_sim_login(&scratch, "LVEMSIM0000000042", 1767225600, 3, buf, sizeof buf);
    vem_record_t rec = s_frame_record(2, 7, buf, len);
    json_t *ev = s_events(&rec, S_ALL);
    ck_assert_uint_eq(json_array_size(ev), 1);
    json_t *e = json_array_get(ev, 0);
    ck_assert_int_eq(json_integer_value(json_object_get(e, "topic")), VEM_KTOPIC_TERMINAL);
    ck_assert_str_eq(s_get(e, "id"), "terminal/LVEMSIM0000000042/1767225600/login");
    json_t *v = json_object_get(e, "value");
    ck_assert_str_eq(s_get(v, "cmd"), "login");
    ck_assert_str_eq(s_get(v, "time"), "2026-01-01T08:00:00+08:00");
    ck_assert_int_eq(json_integer_value(json_object_get(v, "seq")), 3);
    json_decref(ev);
}
END_TEST

START_TEST(violations_by_emission)
{
    const char *json = "{\"violation_id\":\"abc\",\"rule\":\"rsd.no_exceed\",\"clause\":\"x\","
                       "\"vin\":null,\"plate\":\"苏A12345\",\"first_at\":\"a\",\"last_at\":\"b\","
                       "\"severity\":\"violation\",\"evidence\":{},\"first_us\":10,"
                       "\"last_us\":20,\"emission\":2}";
    vem_record_t rec = {.seq = 3,
                        .nseqs = 1,
                        .kind = VEM_RECORD_VIOLATION,
                        .received_us = 1767225600250000, /* 2026-01-01 08:00:00.25 +08:00 */
                        .data = (const uint8_t *)json,
                        .data_len = (uint32_t)strlen(json)};
    json_t *ev = s_events(&rec, S_ALL);
    ck_assert_uint_eq(json_array_size(ev), 1);
    json_t *e = json_array_get(ev, 0), *v = json_object_get(e, "value");
    ck_assert_int_eq(json_integer_value(json_object_get(e, "topic")), VEM_KTOPIC_VIOLATIONS);
    ck_assert_str_eq(s_get(e, "key"), "苏A12345"); /* no VIN: the plate */
    /* the input that made the emission is in the id: a later input's emission with the same
     * last_at and severity (a run cut back to what it was) is not a copy of the first */
    ck_assert_str_eq(s_get(e, "id"), "violation/abc/3/2/20/violation");
    ck_assert_int_eq(json_integer_value(json_object_get(v, "emission")), 2);
    ck_assert_str_eq(s_get(v, "received_at"), "2026-01-01T08:00:00.250000+08:00");
    ck_assert_int_eq(json_integer_value(json_object_get(v, "spool_seq")), 3);
    ck_assert_ptr_null(json_object_get(v, "first_us"));
    ck_assert_ptr_null(json_object_get(v, "last_us"));
    ck_assert_str_eq(s_get(v, "rule"), "rsd.no_exceed");
    json_decref(ev);
}
END_TEST

/* A roadside reading as a station sends it (the README's example) with what vemd added: one
 * vem.rsd event keyed by the registry's VIN, valid against schema/kafka/rsd.json by
 * python3-jsonschema (tests/kafka_validate.py), not by our own code. */
START_TEST(reading_becomes_an_rsd_event)
{
    const char *json =
        "{\"version\": 1, \"station_id\": \"BJ-RSD-01\", \"reading_id\": \"r-000123\", "
        "\"lane\": 2, \"time\": \"2026-11-30T08:00:00+08:00\", \"plate\": \"京A12345\", "
        "\"plate_color\": \"yellow\", \"vin\": null, \"fuel\": \"diesel\", \"speed_kmh\": "
        "92.5, \"accel_ms2\": 0.3, \"vsp_kw_t\": 6.1, \"opacity_pct\": 12, \"no_ppm\": 850, "
        "\"wind_ms\": 1.2, \"slope_pct\": 0.5, \"valid\": true}";
    const char *added = "{\"vin\":\"LVEMSIM0000000001\",\"time_us\":1795996800000000,"
                        "\"counted\":false,\"invalid_reason\":\"speed_kmh 92.5 outside 20 .. 80\"}";
    vem_record_t rec = {.seq = 9,
                        .nseqs = 1,
                        .kind = VEM_RECORD_READING,
                        .source = 3,
                        .received_us = 1795996801500000, /* 2026-11-30T08:00:01.5+08:00 */
                        .detail = added,
                        .detail_len = (uint16_t)strlen(added),
                        .data = (const uint8_t *)json,
                        .data_len = (uint32_t)strlen(json)};
    json_t *ev = s_events(&rec, S_ALL);
    ck_assert_uint_eq(json_array_size(ev), 1);
    json_t *e = json_array_get(ev, 0), *v = json_object_get(e, "value");
    ck_assert_int_eq(json_integer_value(json_object_get(e, "topic")), VEM_KTOPIC_RSD);
    ck_assert_str_eq(s_get(e, "type"), "rsd");
    ck_assert_str_eq(s_get(e, "key"), "LVEMSIM0000000001");
    ck_assert_str_eq(s_get(e, "id"), "rsd/BJ-RSD-01/r-000123");
    ck_assert_str_eq(s_get(v, "plate"), "京A12345");
    ck_assert_str_eq(s_get(v, "vin"), "LVEMSIM0000000001");
    ck_assert_str_eq(s_get(v, "time"), "2026-11-30T08:00:00+08:00");
    ck_assert_str_eq(s_get(v, "received_at"), "2026-11-30T08:00:01.500000+08:00");
    ck_assert(json_is_false(json_object_get(v, "counted")));
    ck_assert_str_eq(s_get(v, "invalid_reason"), "speed_kmh 92.5 outside 20 .. 80");
    ck_assert_double_eq_tol(json_real_value(json_object_get(v, "no_ppm")), 850, 1e-9);
    /* no roadside topic wanted: nothing */
    json_t *none = s_events(&rec, S_ALL & ~(1u << VEM_KTOPIC_RSD));
    ck_assert_uint_eq(json_array_size(none), 0);
    json_decref(none);
    /* the independent validator */
    char path[] = "/tmp/kevents_rsd_XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    char *line = json_dumps(v, JSON_COMPACT);
    FILE *f = fdopen(fd, "w");
    fprintf(f, "%s\n", line);
    fclose(f);
    free(line);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "python3 tests/kafka_validate.py schema/kafka '%s' >/dev/null", path);
    int rc = system(cmd);
    unlink(path);
    ck_assert_msg(rc == 0, "schema/kafka/rsd.json refuses the event");
    json_decref(ev);
}
END_TEST

/* The FRAME record's status is the worker's signature result: every sample and OBD event of
 * the frame says it under "signature_check", with the names of README "Signatures and terminal
 * keys"; a record not checked (status 0) gives events without the key, and otherwise the
 * same bytes but for it. Each event still validates against schema/kafka (python3-jsonschema,
 * not our code). */
START_TEST(signature_of_the_frame)
{
    uint8_t buf[4096];
    size_t len = s_realtime(buf, sizeof buf, true, 4);
    vem_record_t rec = s_frame_record(9, 1, buf, len);
    json_t *plain = s_events(&rec, S_ALL);
    ck_assert_uint_eq(json_array_size(plain), 5); /* 4 samples, 1 OBD */
    size_t i;
    json_t *e;
    json_array_foreach(plain, i, e)
        ck_assert_ptr_null(json_object_get(json_object_get(e, "value"), "signature_check"));
    static const struct {
        uint8_t status;
        const char *name;
    } cases[] = {{1, "verified"}, {2, "bad_signature"}, {3, "unsigned"}, {4, "no_key"}};
    char path[] = "/tmp/kevents_sig_XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    FILE *out = fdopen(fd, "w");
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        rec.status = cases[c].status;
        json_t *ev = s_events(&rec, S_ALL);
        ck_assert_uint_eq(json_array_size(ev), 5);
        json_array_foreach(ev, i, e)
        {
            json_t *v = json_object_get(e, "value");
            ck_assert_str_eq(s_get(v, "signature_check"), cases[c].name);
            char *line = json_dumps(v, JSON_COMPACT);
            fprintf(out, "%s\n", line);
            free(line);
            json_object_del(v, "signature_check");
            ck_assert(json_equal(v, json_object_get(json_array_get(plain, i), "value")));
        }
        json_decref(ev);
    }
    fclose(out);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "python3 tests/kafka_validate.py schema/kafka '%s' >/dev/null", path);
    int rc = system(cmd);
    unlink(path);
    ck_assert_msg(rc == 0, "schema/kafka/sample.json or obd.json refuses a signed event");
    json_decref(plain);
}
END_TEST

START_TEST(quarantine_and_settled_make_nothing)
{
    const uint8_t junk[] = {1, 2, 3};
    vem_record_t q = {
        .seq = 4, .nseqs = 1, .kind = VEM_RECORD_QUARANTINE, .data = junk, .data_len = 3};
    vem_record_t s = {.seq = 5, .nseqs = 2, .kind = VEM_RECORD_SETTLED};
    json_t *a = s_events(&q, S_ALL), *b = s_events(&s, S_ALL);
    ck_assert_uint_eq(json_array_size(a) + json_array_size(b), 0);
    json_decref(a);
    json_decref(b);
}
END_TEST

Suite *vem_suite_kevents(void);
Suite *vem_suite_kevents(void)
{
    Suite *s = suite_create("kevents");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, samples_and_obd);
    tcase_add_test(tc, samples_equal_frame_json);
    tcase_add_test(tc, ids_name_the_sample);
    tcase_add_test(tc, terminal_frames);
    tcase_add_test(tc, violations_by_emission);
    tcase_add_test(tc, reading_becomes_an_rsd_event);
    tcase_add_test(tc, signature_of_the_frame);
    tcase_add_test(tc, quarantine_and_settled_make_nothing);
    suite_add_tcase(s, tc);
    return s;
}
