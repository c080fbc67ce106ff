/* check_control — the control socket answers status with the registry's series, ping, and a
 * classified error for anything else. */
#include "control.h"
#include "testutil.h"

#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

static json_t *s_ask(void *ctx, const char *endpoint, const char *request)
{
    void *req = zmq_socket(ctx, ZMQ_REQ);
    int zero = 0, timeout = 5000;
    zmq_setsockopt(req, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(req, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    ck_assert_int_eq(zmq_connect(req, endpoint), 0);
    ck_assert_int_eq(zmq_send(req, request, strlen(request), 0), (int)strlen(request));
    char buf[8192];
    int len = zmq_recv(req, buf, sizeof buf, 0);
    ck_assert_int_gt(len, 0);
    zmq_close(req);
    json_error_t err;
    json_t *answer = json_loadb(buf, (size_t)len, 0, &err);
    ck_assert_msg(answer != NULL, "reply is not JSON: %s", err.text);
    return answer;
}

START_TEST(answers_status_ping_and_errors)
{
    char dir[200];
    vem_test_mkdtemp("check_control", dir, sizeof dir);
    char endpoint[256];
    snprintf(endpoint, sizeof endpoint, "ipc://%s/control.sock", dir);
    void *ctx = zmq_ctx_new();
    vem_metrics_t *m = vem_metrics_new();
    const char *rt[] = {"cmd", "realtime", NULL};
    vem_counter_add(vem_metrics_counter(m, "vem_frames_total", "F.", rt), 42);
    vem_control_args_t args = {
        .zctx = ctx, .endpoint = endpoint, .metrics = m, .version = "test", .started_us = 0};
    char err[256];
    vem_actor_t *control = vem_actor_new(ctx, "control", vem_control_actor, &args, err, sizeof err);
    ck_assert_msg(control != NULL, "%s", err);

    json_t *status = s_ask(ctx, endpoint, "status");
    ck_assert_str_eq(json_string_value(json_object_get(status, "daemon")), "vemd");
    ck_assert_int_eq(json_integer_value(json_object_get(status, "pid")), getpid());
    json_t *frames =
        json_object_get(json_object_get(status, "metrics"), "vem_frames_total{cmd=\"realtime\"}");
    ck_assert_ptr_nonnull(frames);
    ck_assert_double_eq(json_number_value(frames), 42);
    json_decref(status);

    json_t *pong = s_ask(ctx, endpoint, "ping");
    ck_assert(json_is_true(json_object_get(pong, "pong")));
    json_decref(pong);
    json_t *bad = s_ask(ctx, endpoint, "reboot");
    ck_assert_str_eq(json_string_value(json_object_get(bad, "error")), "unknown request");
    json_decref(bad);

    vem_actor_destroy(&control);
    vem_metrics_destroy(&m);
    zmq_ctx_term(ctx);
    vem_test_rmtree(dir);
}
END_TEST

/* control.max_message_bytes: a request one byte over is refused with an error, counted; one at
 * the limit is answered. */
START_TEST(oversized_request_refused_and_counted)
{
    char dir[200];
    vem_test_mkdtemp("check_control", dir, sizeof dir);
    char endpoint[256];
    snprintf(endpoint, sizeof endpoint, "ipc://%s/control.sock", dir);
    void *ctx = zmq_ctx_new();
    vem_metrics_t *m = vem_metrics_new();
    vem_control_args_t args = {
        .zctx = ctx, .endpoint = endpoint, .max_message = 64, .metrics = m, .version = "test"};
    char err[256];
    vem_actor_t *control = vem_actor_new(ctx, "control", vem_control_actor, &args, err, sizeof err);
    ck_assert_msg(control != NULL, "%s", err);
    char big[66];
    memset(big, 'x', 65);
    big[65] = '\0';
    json_t *answer = s_ask(ctx, endpoint, big);
    ck_assert_str_eq(json_string_value(json_object_get(answer, "error")),
                     "request over control.max_message_bytes");
    json_decref(answer);
    big[64] = '\0'; /* at the limit: an unknown request, but a request */
    answer = s_ask(ctx, endpoint, big);
    ck_assert_str_eq(json_string_value(json_object_get(answer, "error")), "unknown request");
    json_decref(answer);
    json_t *status = s_ask(ctx, endpoint, "status");
    json_t *refused =
        json_object_get(json_object_get(status, "metrics"), "vem_control_refused_total");
    ck_assert_ptr_nonnull(refused);
    ck_assert_double_eq(json_number_value(refused), 1);
    json_decref(status);
    vem_actor_destroy(&control);
    vem_metrics_destroy(&m);
    zmq_ctx_term(ctx);
    vem_test_rmtree(dir);
}
END_TEST

START_TEST(bind_failure_is_a_start_error)
{
    void *ctx = zmq_ctx_new();
    vem_metrics_t *m = vem_metrics_new();
    vem_control_args_t args = {
        .zctx = ctx, .endpoint = "ipc:///nonexistent-dir/x.sock", .metrics = m, .version = "test"};
    char err[256] = "";
    ck_assert_ptr_null(vem_actor_new(ctx, "control", vem_control_actor, &args, err, sizeof err));
    ck_assert_ptr_nonnull(
        strstr(err, "cannot bind control endpoint ipc:///nonexistent-dir/x.sock"));
    vem_metrics_destroy(&m);
    zmq_ctx_term(ctx);
}
END_TEST

Suite *vem_suite_control(void);
Suite *vem_suite_control(void)
{
    Suite *s = suite_create("control");
    TCase *tc = tcase_create("control");
    tcase_add_test(tc, answers_status_ping_and_errors);
    tcase_add_test(tc, oversized_request_refused_and_counted);
    tcase_add_test(tc, bind_failure_is_a_start_error);
    suite_add_tcase(s, tc);
    return s;
}
