/* check_pgload — a load's result comes back through the pipe; a result nobody can take is
 * freed, not leaked (ASan's leak check watches); a database that cannot be reached is a
 * NULL connection with libpq's reason, so the loaders log it and their owners carry on.
 * The asks of rule states for their plate's roadside history: one per state (the later bound),
 * bounded, numbered by the load that answers them, taken sorted by plate; and which loaded
 * readings an ask takes. */
#include "pgload.h"
#include "rsdhist.h"

#include <check.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static atomic_int s_dropped;

/* The load: a result made from its arg (the conninfo is not used). */
static void *s_double(const char *conninfo, void *arg)
{
    (void)conninfo;
    int *result = malloc(sizeof *result);
    ck_assert_ptr_nonnull(result);
    *result = 2 * *(int *)arg;
    return result;
}

static void s_drop(void *result)
{
    free(result);
    atomic_fetch_add(&s_dropped, 1);
}

static int *s_arg(int v)
{
    int *arg = malloc(sizeof *arg);
    ck_assert_ptr_nonnull(arg);
    *arg = v;
    return arg;
}

START_TEST(result_through_the_pipe)
{
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    ck_assert_int_eq(vem_pgload_start("", s_double, s_arg(21), s_drop, fds[1]), 0);
    struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
    ck_assert_int_eq(poll(&pfd, 1, 10000), 1);
    int *result = NULL;
    ck_assert_int_eq(read(fds[0], &result, sizeof result), (ssize_t)sizeof result);
    ck_assert_ptr_nonnull(result);
    ck_assert_int_eq(*result, 42);
    free(result);
    close(fds[0]);
    close(fds[1]);
}
END_TEST

START_TEST(unread_result_is_dropped)
{
    atomic_store(&s_dropped, 0);
    /* a descriptor that takes nothing: the write fails, the result is the drop's */
    ck_assert_int_eq(vem_pgload_start("", s_double, s_arg(1), s_drop, -1), 0);
    for (int i = 0; i < 1000 && atomic_load(&s_dropped) == 0; i++)
        usleep(10000);
    ck_assert_int_eq(atomic_load(&s_dropped), 1);
}
END_TEST

START_TEST(unreachable_database)
{
    char err[512] = "";
    /* port 1 on loopback: nothing listens there, the kernel refuses at once */
    PGconn *conn = vem_pgload_connect("host=127.0.0.1 port=1 dbname=vem", "check", err, sizeof err);
    ck_assert_ptr_null(conn);
    ck_assert_msg(strstr(err, "Connection refused") != NULL, "%s", err);
    ck_assert_msg(strchr(err, '\n') == NULL, "one line: %s", err);
}
END_TEST

static vem_rsdhist_ask_t s_ask(unsigned worker, const char *vin, const char *plate,
                               const char *color, bool or_blank, int64_t before_us)
{
    vem_rsdhist_ask_t a = {.worker = worker, .or_blank = or_blank, .before_us = before_us};
    snprintf(a.vin, sizeof a.vin, "%s", vin);
    snprintf(a.plate, sizeof a.plate, "%s", plate);
    snprintf(a.color, sizeof a.color, "%s", color);
    return a;
}

START_TEST(history_wants)
{
    vem_rsdhist_wants_t *w = vem_rsdhist_wants_new(2);
    size_t n = 99;
    uint64_t gen = 99, g1, g2;
    ck_assert_ptr_null(vem_rsdhist_wants_take(w, &n, &gen));
    ck_assert_uint_eq(n, 0);
    ck_assert_uint_eq(gen, 0);
    vem_rsdhist_ask_t b = s_ask(1, "", "津B00001", "blue", false, 100);
    vem_rsdhist_ask_t a = s_ask(0, "LVIN0000000000001", "津A12345", "yellow", true, 200);
    ck_assert(vem_rsdhist_want(w, &b, &g1));
    ck_assert(vem_rsdhist_want(w, &a, &g2));
    ck_assert_uint_eq(g1, 1); /* both go with the first load */
    ck_assert_uint_eq(g2, 1);
    b.before_us = 150; /* the same state again: one ask, the later bound */
    ck_assert(vem_rsdhist_want(w, &b, &g1));
    vem_rsdhist_ask_t c = s_ask(1, "", "津C00001", "blue", false, 100);
    ck_assert(!vem_rsdhist_want(w, &c, &g1)); /* full */
    vem_rsdhist_ask_t *asks = vem_rsdhist_wants_take(w, &n, &gen);
    ck_assert_uint_eq(n, 2);
    ck_assert_uint_eq(gen, 1);
    /* by plate: 津A (E6 B4 A5 41) before 津B */
    ck_assert_str_eq(asks[0].plate, "津A12345");
    ck_assert_str_eq(asks[0].vin, "LVIN0000000000001");
    ck_assert_str_eq(asks[1].plate, "津B00001");
    ck_assert_int_eq(asks[1].before_us, 150);
    free(asks);
    ck_assert_ptr_null(vem_rsdhist_wants_take(w, &n, &gen));
    ck_assert_uint_eq(gen, 1);
    ck_assert(vem_rsdhist_want(w, &c, &g1)); /* room again, for the second load */
    ck_assert_uint_eq(g1, 2);
    asks = vem_rsdhist_wants_take(w, &n, &gen);
    ck_assert_uint_eq(n, 1);
    ck_assert_uint_eq(gen, 2);
    free(asks);
    vem_rsdhist_wants_free(w);
}
END_TEST

/* Which loaded readings an ask takes: its plate, its colour (or none, for a registered plate's
 * VIN), received before its bound. */
START_TEST(history_ask_takes)
{
    vem_rsdhist_t *h = vem_rsdhist_new(5, false);
    h->received = calloc(5, sizeof *h->received);
    ck_assert_ptr_nonnull(h->received);
    static const struct {
        const char *plate, *color;
        int64_t received;
    } rows[] = {{"津A12345", "yellow", 100},
                {"津A12345", "", 100},
                {"津A12345", "blue", 100},
                {"津A12345", "yellow", 200},
                {"津A12346", "yellow", 100}};
    for (size_t k = 0; k < 5; k++) {
        snprintf(h->r[k].plate, sizeof h->r[k].plate, "%s", rows[k].plate);
        snprintf(h->r[k].plate_color, sizeof h->r[k].plate_color, "%s", rows[k].color);
        h->received[k] = rows[k].received;
    }
    h->n = 5;
    vem_rsdhist_ask_t by_vin = s_ask(0, "LVIN0000000000001", "津A12345", "yellow", true, 200);
    vem_rsdhist_ask_t by_plate = s_ask(0, "", "津A12345", "yellow", false, 201);
    static const bool vin_takes[] = {true, true, false, false, false};
    static const bool plate_takes[] = {true, false, false, true, false};
    for (size_t k = 0; k < 5; k++) {
        ck_assert_msg(vem_rsdhist_takes(&by_vin, h, k) == vin_takes[k], "by VIN, row %zu", k);
        ck_assert_msg(vem_rsdhist_takes(&by_plate, h, k) == plate_takes[k], "by plate, row %zu", k);
    }
    vem_rsdhist_free(h);
}
END_TEST

Suite *vem_suite_pgload(void);
Suite *vem_suite_pgload(void)
{
    Suite *s = suite_create("pgload");
    TCase *tc = tcase_create("pgload");
    tcase_add_test(tc, result_through_the_pipe);
    tcase_add_test(tc, unread_result_is_dropped);
    tcase_add_test(tc, unreachable_database);
    tcase_add_test(tc, history_wants);
    tcase_add_test(tc, history_ask_takes);
    suite_add_tcase(s, tc);
    return s;
}
