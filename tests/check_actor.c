/* check_actor — synchronized start, start failure reported to the parent, messages both ways
 * over the pipe, termination on destroy. */
#include "actor.h"

#include <check.h>
#include <string.h>
#include <zmq.h>

/* Echoes every message back upper-cased until $TERM; counts what it saw. */
static void s_echo(void *pipe, void *args)
{
    int *seen = args;
    vem_actor_ready(pipe, NULL);
    char buf[64];
    for (;;) {
        int len = zmq_recv(pipe, buf, sizeof buf, 0);
        if (len < 0 || vem_actor_is_term(buf, (size_t)len))
            break;
        for (int i = 0; i < len; i++)
            buf[i] = (char)(buf[i] >= 'a' && buf[i] <= 'z' ? buf[i] - 32 : buf[i]);
        zmq_send(pipe, buf, (size_t)len, 0);
        (*seen)++;
    }
    *seen += 1000; /* proves the thread ran to the end before destroy returned */
}

static void s_fails(void *pipe, void *args)
{
    (void)args;
    vem_actor_ready(pipe, "cannot bind tcp://127.0.0.1:1: Permission denied");
}

START_TEST(echo_and_terminate)
{
    void *ctx = zmq_ctx_new();
    int seen = 0;
    char err[256];
    vem_actor_t *actor = vem_actor_new(ctx, "echo", s_echo, &seen, err, sizeof err);
    ck_assert_msg(actor != NULL, "%s", err);
    char buf[64];
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(zmq_send(vem_actor_pipe(actor), "login", 5, 0), 5);
        ck_assert_int_eq(zmq_recv(vem_actor_pipe(actor), buf, sizeof buf, 0), 5);
        ck_assert_int_eq(memcmp(buf, "LOGIN", 5), 0);
    }
    vem_actor_destroy(&actor);
    ck_assert_ptr_null(actor);
    ck_assert_int_eq(seen, 1003);
    vem_actor_destroy(&actor);
    zmq_ctx_term(ctx);
}
END_TEST

START_TEST(start_failure_is_reported)
{
    void *ctx = zmq_ctx_new();
    char err[256] = "";
    ck_assert_ptr_null(vem_actor_new(ctx, "ingest", s_fails, NULL, err, sizeof err));
    ck_assert_str_eq(err, "ingest: cannot bind tcp://127.0.0.1:1: Permission denied");
    zmq_ctx_term(ctx); /* returns only if no socket was left open */
}
END_TEST

Suite *vem_suite_actor(void);
Suite *vem_suite_actor(void)
{
    Suite *s = suite_create("actor");
    TCase *tc = tcase_create("actor");
    tcase_add_test(tc, echo_and_terminate);
    tcase_add_test(tc, start_failure_is_reported);
    suite_add_tcase(s, tc);
    return s;
}
