/* check_pgload — a load's result comes back through the pipe; a result nobody can take is
 * freed, not leaked (ASan's leak check watches); a database that cannot be reached is a
 * NULL connection with libpq's reason, so the loaders log it and their owners carry on. */
#include "pgload.h"

#include <check.h>
#include <poll.h>
#include <stdatomic.h>
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

Suite *vem_suite_pgload(void);
Suite *vem_suite_pgload(void)
{
    Suite *s = suite_create("pgload");
    TCase *tc = tcase_create("pgload");
    tcase_add_test(tc, result_through_the_pipe);
    tcase_add_test(tc, unread_result_is_dropped);
    tcase_add_test(tc, unreachable_database);
    suite_add_tcase(s, tc);
    return s;
}
