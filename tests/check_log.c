/* check_log — priority prefixes for journald, component tags, the threshold, and rate limiting
 * of repeats with an injected clock (exact counts of lines written and suppressed). */
#include "log.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int64_t s_now;
static int64_t s_clock(void)
{
    return s_now;
}

static char *s_buf;
static size_t s_len;
static FILE *s_out;

static void s_setup(void)
{
    s_out = open_memstream(&s_buf, &s_len);
    vem_log_set_stream(s_out);
    vem_log_set_clock(s_clock);
    vem_log_set_level(VEM_LOG_INFO);
    vem_log_set_burst(10);
    s_now = 1000;
}

static void s_teardown(void)
{
    vem_log_set_stream(NULL);
    vem_log_set_clock(NULL);
    fclose(s_out);
    free(s_buf);
}

static int s_count(const char *needle)
{
    fflush(s_out);
    int n = 0;
    for (const char *p = s_buf; (p = strstr(p, needle)); p++)
        n++;
    return n;
}

START_TEST(prefix_tag_and_threshold)
{
    vem_log(VEM_LOG_ERR, "ingest", "cannot bind %s", "tcp://127.0.0.1:7611");
    vem_log(VEM_LOG_WARNING, "sink_pg", "reconnecting in %d s", 2);
    vem_log(VEM_LOG_DEBUG, "worker", "not shown at info");
    fflush(s_out);
    ck_assert_str_eq(s_buf, "<3>ingest: cannot bind tcp://127.0.0.1:7611\n"
                            "<4>sink_pg: reconnecting in 2 s\n");
    vem_log_set_level(VEM_LOG_DEBUG);
    vem_log(VEM_LOG_DEBUG, "worker", "now shown");
    ck_assert_int_eq(s_count("<7>worker: now shown\n"), 1);
    ck_assert_int_eq(vem_log_level(), VEM_LOG_DEBUG);
}
END_TEST

START_TEST(repeats_are_rate_limited_and_counted)
{
    for (int i = 0; i < 25; i++)
        vem_log(VEM_LOG_WARNING, "ingest", "bad frame from %d", i);
    ck_assert_int_eq(s_count("bad frame from"), 10); /* burst of 10 per second */
    /* Another call site is not held back by the first one's repeats. */
    vem_log(VEM_LOG_WARNING, "ingest", "other message");
    ck_assert_int_eq(s_count("other message"), 1);
    s_now++; /* next second: the first line tells how many were suppressed */
    vem_log(VEM_LOG_WARNING, "ingest", "bad frame from %d", 99);
    ck_assert_int_eq(s_count("<4>ingest: bad frame from 99 (15 similar messages suppressed)\n"), 1);
    vem_log(VEM_LOG_WARNING, "ingest", "bad frame from %d", 100);
    ck_assert_int_eq(s_count("bad frame from 100\n"), 1);
}
END_TEST

/* What main applies at start and on SIGHUP: the level and the burst together. */
START_TEST(configure_applies_level_and_burst)
{
    vem_log_configure(VEM_LOG_WARNING, 3);
    ck_assert_int_eq(vem_log_level(), VEM_LOG_WARNING);
    for (int i = 0; i < 8; i++)
        vem_log(VEM_LOG_WARNING, "main", "repeat %d", i);
    vem_log(VEM_LOG_INFO, "main", "below the threshold");
    ck_assert_int_eq(s_count("repeat"), 3);
    ck_assert_int_eq(s_count("below the threshold"), 0);
    vem_log_configure(VEM_LOG_INFO, 5); /* a reload raises the burst */
    s_now++;
    for (int i = 10; i < 18; i++)
        vem_log(VEM_LOG_WARNING, "main", "repeat %d", i);
    ck_assert_int_eq(s_count("repeat"), 3 + 5); /* 0..2, then 10..14 */
    ck_assert_int_eq(s_count("<4>main: repeat 10 (5 similar messages suppressed)\n"), 1);
}
END_TEST

START_TEST(level_names)
{
    ck_assert_int_eq(vem_log_parse_level("err"), VEM_LOG_ERR);
    ck_assert_int_eq(vem_log_parse_level("warning"), VEM_LOG_WARNING);
    ck_assert_int_eq(vem_log_parse_level("info"), VEM_LOG_INFO);
    ck_assert_int_eq(vem_log_parse_level("debug"), VEM_LOG_DEBUG);
    ck_assert_int_eq(vem_log_parse_level("verbose"), -1);
}
END_TEST

Suite *vem_suite_log(void);
Suite *vem_suite_log(void)
{
    Suite *s = suite_create("log");
    TCase *tc = tcase_create("log");
    tcase_add_checked_fixture(tc, s_setup, s_teardown);
    tcase_add_test(tc, prefix_tag_and_threshold);
    tcase_add_test(tc, repeats_are_rate_limited_and_counted);
    tcase_add_test(tc, configure_applies_level_and_burst);
    tcase_add_test(tc, level_names);
    suite_add_tcase(s, tc);
    return s;
}
