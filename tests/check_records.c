/* check_records — the worker -> sink message: what goes in comes out, field by field, in
 * order; the header's seq range covers every settled run; torn messages are refused. */
#include "records.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

static vem_records_t s_three(void)
{
    vem_records_t r = {0};
    const uint8_t frame[] = {'#', '#', 0x02, 1, 2, 3};
    vem_record_t a = {.seq = 10,
                      .kind = VEM_RECORD_FRAME,
                      .source = 1,
                      .status = VEM_RECORD_SIG_NO_KEY,
                      .received_us = 500,
                      .offset = -1,
                      .data = frame,
                      .data_len = sizeof frame};
    vem_record_t b = {.seq = 12,
                      .nseqs = 4,
                      .kind = VEM_RECORD_QUARANTINE,
                      .source = 2,
                      .status = VEM_RECORD_CLASS_SPOOL_DAMAGED,
                      .received_us = 300,
                      .offset = 7,
                      .has_vin = true,
                      .detail = "lost on disk",
                      .detail_len = 12,
                      .data = frame,
                      .data_len = 3};
    memcpy(b.vin, "LVEMSIM0000000042", 17);
    vem_record_t c = {.seq = 11, .kind = VEM_RECORD_SETTLED, .received_us = 900, .offset = -1};
    vem_records_add(&r, &a);
    vem_records_add(&r, &b);
    vem_records_add(&r, &c);
    return r;
}

START_TEST(round_trip)
{
    vem_records_t r = s_three();
    size_t len;
    const uint8_t *p = vem_records_message(&r, &len);
    vem_records_hdr_t hdr;
    ck_assert(vem_records_parse(p, len, &hdr));
    ck_assert_uint_eq(hdr.count, 3);
    ck_assert_int_eq(hdr.oldest_us, 300);
    ck_assert_uint_eq(hdr.first_seq, 10);
    ck_assert_uint_eq(hdr.last_seq, 15); /* 12 + 4 - 1 */

    size_t off = 0;
    vem_record_t rec;
    ck_assert(vem_records_next(p, len, &off, &rec));
    ck_assert_uint_eq(rec.seq, 10);
    ck_assert_uint_eq(rec.nseqs, 1); /* 0 on add means one input */
    ck_assert_uint_eq(rec.kind, VEM_RECORD_FRAME);
    ck_assert_uint_eq(rec.status, VEM_RECORD_SIG_NO_KEY); /* the signature result travels */
    ck_assert_uint_eq(rec.data_len, 6);
    ck_assert_uint_eq(rec.data[2], 0x02);
    ck_assert(!rec.has_vin);
    ck_assert_uint_eq(rec.detail_len, 0);

    ck_assert(vem_records_next(p, len, &off, &rec));
    ck_assert_uint_eq(rec.seq, 12);
    ck_assert_uint_eq(rec.nseqs, 4);
    ck_assert_uint_eq(rec.status, VEM_RECORD_CLASS_SPOOL_DAMAGED);
    ck_assert_int_eq(rec.offset, 7);
    ck_assert(rec.has_vin);
    ck_assert_str_eq(rec.vin, "LVEMSIM0000000042");
    ck_assert_int_eq(memcmp(rec.detail, "lost on disk", 12), 0);
    ck_assert_uint_eq(rec.data_len, 3);
    ck_assert_uint_eq(rec.source, 2);

    ck_assert(vem_records_next(p, len, &off, &rec));
    ck_assert_uint_eq(rec.kind, VEM_RECORD_SETTLED);
    ck_assert_uint_eq(rec.data_len, 0);
    ck_assert(!vem_records_next(p, len, &off, &rec));
    vem_records_free(&r);
}
END_TEST

START_TEST(torn_messages_refused)
{
    vem_records_t r = s_three();
    size_t len;
    const uint8_t *p = vem_records_message(&r, &len);
    vem_records_hdr_t hdr;
    for (size_t cut = 0; cut < len; cut++)
        ck_assert_msg(!vem_records_parse(p, cut, &hdr), "accepted %zu of %zu bytes", cut, len);
    uint8_t *bad = malloc(len + 1);
    memcpy(bad, p, len);
    bad[len] = 0;
    ck_assert(!vem_records_parse(bad, len + 1, &hdr)); /* a byte too many */
    bad[0] ^= 1;
    ck_assert(!vem_records_parse(bad, len, &hdr)); /* not our magic */
    free(bad);
    vem_records_free(&r);
}
END_TEST

START_TEST(reset_starts_a_new_message)
{
    vem_records_t r = s_three();
    vem_records_reset(&r);
    vem_record_t only = {.seq = 99, .kind = VEM_RECORD_SETTLED, .received_us = 1};
    vem_records_add(&r, &only);
    size_t len;
    const uint8_t *p = vem_records_message(&r, &len);
    vem_records_hdr_t hdr;
    ck_assert(vem_records_parse(p, len, &hdr));
    ck_assert_uint_eq(hdr.count, 1);
    ck_assert_uint_eq(hdr.first_seq, 99);
    ck_assert_uint_eq(hdr.last_seq, 99);
    vem_records_free(&r);
}
END_TEST

START_TEST(class_names)
{
    ck_assert_str_eq(vem_records_class_name(2), "bad_checksum"); /* the decoder's */
    ck_assert_str_eq(vem_records_class_name(VEM_RECORD_CLASS_SPOOL_DAMAGED), "spool_damaged");
    ck_assert_str_eq(vem_records_class_name(VEM_RECORD_CLASS_TOO_LARGE), "too_large");
    ck_assert_str_eq(vem_records_class_name(VEM_RECORD_CLASS_BAD_VIN), "bad_vin");
    /* the activation refusals of README "Signatures and terminal keys" */
    ck_assert_str_eq(vem_records_class_name(VEM_RECORD_CLASS_CHIP_ACTIVATED), "chip_activated");
    ck_assert_str_eq(vem_records_class_name(VEM_RECORD_CLASS_KEY_REUSED), "key_reused");
    ck_assert_str_eq(vem_records_class_name(0), "malformed_body"); /* never "ok" */
}
END_TEST

/* The names of README "Signatures and terminal keys" (and of vem_signature_checks_total);
 * nothing for a frame not checked. */
START_TEST(signature_names)
{
    ck_assert_ptr_null(vem_records_sig_name(VEM_RECORD_SIG_NONE));
    ck_assert_str_eq(vem_records_sig_name(VEM_RECORD_SIG_VERIFIED), "verified");
    ck_assert_str_eq(vem_records_sig_name(VEM_RECORD_SIG_BAD_SIGNATURE), "bad_signature");
    ck_assert_str_eq(vem_records_sig_name(VEM_RECORD_SIG_UNSIGNED), "unsigned");
    ck_assert_str_eq(vem_records_sig_name(VEM_RECORD_SIG_NO_KEY), "no_key");
    ck_assert_ptr_null(vem_records_sig_name(VEM_RECORD_SIGS));
    ck_assert_ptr_null(vem_records_sig_name(255));
}
END_TEST

Suite *vem_suite_records(void);
Suite *vem_suite_records(void)
{
    Suite *s = suite_create("records");
    TCase *tc = tcase_create("records");
    tcase_add_test(tc, round_trip);
    tcase_add_test(tc, torn_messages_refused);
    tcase_add_test(tc, reset_starts_a_new_message);
    tcase_add_test(tc, class_names);
    tcase_add_test(tc, signature_names);
    suite_add_tcase(s, tc);
    return s;
}
