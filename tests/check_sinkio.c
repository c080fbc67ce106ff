/* check_sinkio — what every sink shares: worker messages are taken in the order they came,
 * through the spill whenever the sink has no room; a full spill holds one message and leaves the
 * rest in the socket; the cursor moves to the contiguous mark, durably, and ingest is told once;
 * a move the disk refuses is counted and acknowledges nothing.
 * Over real inproc ZeroMQ sockets and a real spill file and cursor in a temporary directory. */
#include "ingest.h"
#include "sinkio.h"
#include "testutil.h"

#include <check.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#define S_ENDPOINT "inproc://check-sinkio"

typedef struct {
    bool room;
    char taken[16][8]; /* the messages' first bytes, as text */
    unsigned ntaken;
} s_sink_t;

static bool s_room(void *arg)
{
    return ((s_sink_t *)arg)->room;
}

static void s_take(void *arg, const uint8_t *p, size_t len)
{
    s_sink_t *s = arg;
    ck_assert_uint_lt(s->ntaken, 16);
    size_t n = 0; /* the text before the padding */
    while (n < len && n < 7 && p[n] != '.')
        n++;
    memcpy(s->taken[s->ntaken], p, n);
    s->taken[s->ntaken][n] = '\0';
    s->ntaken++;
}

typedef struct {
    void *zctx, *push, *acks;
    vem_metrics_t *metrics;
    char dir[256];
    s_sink_t sink;
    vem_sinkio_t io;
} s_fix_t;

static void s_open(s_fix_t *f, uint64_t spill_max, uint64_t spool_first)
{
    char err[256];
    f->zctx = zmq_ctx_new();
    f->acks = zmq_socket(f->zctx, ZMQ_PULL);
    ck_assert_int_eq(zmq_bind(f->acks, VEM_ACK_ENDPOINT), 0);
    vem_sinkio_args_t a = {.zctx = f->zctx,
                           .log = "check-sinkio",
                           .fns = {s_room, s_take, &f->sink},
                           .consumer = VEM_CONSUMER_KAFKA,
                           .name = "check",
                           .spool_dir = f->dir,
                           .spool_first = spool_first,
                           .spill_max_bytes = spill_max,
                           .endpoint = S_ENDPOINT,
                           .queue_hwm = 100};
    memset(&f->io, 0, sizeof f->io);
    ck_assert_msg(vem_sinkio_open(&f->io, &a, err, sizeof err) == 0, "%s", err);
    f->metrics = vem_metrics_new();
    f->io.spills = vem_metrics_counter(f->metrics, "spilled", "spilled", NULL);
    f->io.cursor_errors = vem_metrics_counter(f->metrics, "cursor_errors", "cursor errors", NULL);
    f->push = zmq_socket(f->zctx, ZMQ_PUSH);
    int zero = 0;
    zmq_setsockopt(f->push, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(f->acks, ZMQ_LINGER, &zero, sizeof zero);
    ck_assert_int_eq(zmq_connect(f->push, S_ENDPOINT), 0);
}

static void s_close(s_fix_t *f)
{
    vem_sinkio_close(&f->io);
    vem_metrics_destroy(&f->metrics);
    zmq_close(f->push);
    zmq_close(f->acks);
    zmq_ctx_term(f->zctx);
}

/* Sends a message of len bytes starting with text, and waits until the sink's socket has it. */
static void s_send(s_fix_t *f, const char *text, size_t len)
{
    uint8_t buf[512];
    ck_assert_uint_le(len, sizeof buf);
    memset(buf, '.', len);
    memcpy(buf, text, strlen(text));
    ck_assert_int_eq(zmq_send(f->push, buf, len, 0), (int)len);
    zmq_pollitem_t item = {f->io.pull, 0, ZMQ_POLLIN, 0};
    ck_assert_int_eq(zmq_poll(&item, 1, 5000), 1);
}

static void s_taken(const s_fix_t *f, const char *const *want, unsigned n)
{
    ck_assert_uint_eq(f->sink.ntaken, n);
    for (unsigned i = 0; i < n; i++)
        ck_assert_str_eq(f->sink.taken[i], want[i]);
}

START_TEST(order_kept_through_the_spill)
{
    s_fix_t f = {0};
    vem_test_mkdtemp("sinkio", f.dir, sizeof f.dir);
    s_open(&f, 1 << 20, 0);
    f.sink.room = true;
    s_send(&f, "m1", 10);
    vem_sinkio_read(&f.io, 16);
    s_taken(&f, (const char *[]){"m1"}, 1);

    /* no room: to the spill */
    f.sink.room = false;
    s_send(&f, "m2", 10);
    s_send(&f, "m3", 10);
    vem_sinkio_read(&f.io, 16);
    s_taken(&f, (const char *[]){"m1"}, 1);
    ck_assert_uint_eq(vem_spill_count(f.io.spill), 2);
    vem_sinkio_unspill(&f.io); /* still no room: nothing moves */
    ck_assert_uint_eq(vem_spill_count(f.io.spill), 2);

    /* room again, but m2 and m3 came first: m4 waits behind them in the spill */
    f.sink.room = true;
    s_send(&f, "m4", 10);
    vem_sinkio_read(&f.io, 16);
    s_taken(&f, (const char *[]){"m1"}, 1);
    ck_assert_uint_eq(vem_spill_count(f.io.spill), 3);
    vem_sinkio_unspill(&f.io);
    s_taken(&f, (const char *[]){"m1", "m2", "m3", "m4"}, 4);
    ck_assert_uint_eq(vem_spill_count(f.io.spill), 0);
    ck_assert_uint_eq(atomic_load(&f.io.spills->value), 3);

    /* the spill empty, a new message is taken at once */
    s_send(&f, "m5", 10);
    vem_sinkio_read(&f.io, 16);
    s_taken(&f, (const char *[]){"m1", "m2", "m3", "m4", "m5"}, 5);
    s_close(&f);
}
END_TEST

START_TEST(full_spill_holds_one_and_stops_reading)
{
    s_fix_t f = {0};
    vem_test_mkdtemp("sinkio", f.dir, sizeof f.dir);
    /* 300-byte messages take 304 bytes of spill each: two fit in 700, a third does not */
    s_open(&f, 700, 0);
    f.sink.room = false;
    s_send(&f, "a", 300);
    s_send(&f, "b", 300);
    s_send(&f, "c", 300);
    vem_sinkio_read(&f.io, 16);
    ck_assert_uint_eq(vem_spill_count(f.io.spill), 2);
    ck_assert(f.io.holding);
    /* a message sent now stays in the socket: read does nothing while the held one cannot go */
    s_send(&f, "d", 300);
    vem_sinkio_read(&f.io, 16);
    ck_assert(f.io.holding);
    ck_assert_uint_eq(vem_spill_count(f.io.spill), 2);
    ck_assert_uint_eq(f.sink.ntaken, 0);
    ck_assert_uint_eq(atomic_load(&f.io.spills->value), 2); /* the held one is not spilled */
    zmq_pollitem_t item = {f.io.pull, 0, ZMQ_POLLIN, 0};
    ck_assert_int_eq(zmq_poll(&item, 1, 0), 1); /* d is still there */

    /* room: the spill first, then the held message, then the socket */
    f.sink.room = true;
    vem_sinkio_unspill(&f.io);
    vem_sinkio_read(&f.io, 16);
    ck_assert(!f.io.holding);
    s_taken(&f, (const char *[]){"a", "b", "c", "d"}, 4);
    s_close(&f);
}
END_TEST

/* The acknowledgement ingest got, or 0 when none came within a short wait. */
static uint64_t s_ack(s_fix_t *f, uint32_t *consumer)
{
    vem_ack_t ack;
    zmq_pollitem_t item = {f->acks, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&item, 1, 200) != 1)
        return 0;
    ck_assert_int_eq(zmq_recv(f->acks, &ack, sizeof ack, 0), (int)sizeof ack);
    *consumer = ack.consumer;
    return ack.mark;
}

START_TEST(cursor_moves_to_the_contiguous_mark)
{
    s_fix_t f = {0};
    vem_test_mkdtemp("sinkio", f.dir, sizeof f.dir);
    s_open(&f, 1 << 20, 0);
    uint32_t consumer = 0;
    ck_assert_uint_eq(f.io.committed, 0);
    ck_assert(!vem_sinkio_behind(&f.io));
    ck_assert_int_eq(vem_sinkio_move_cursor(&f.io), 0); /* nothing to move, nothing to say */
    ck_assert_uint_eq(s_ack(&f, &consumer), 0);

    /* 1, 2 and 4 settled: the mark is 2, 4 waits for 3 */
    vem_ackwin_done(f.io.done, 1);
    vem_ackwin_done(f.io.done, 2);
    vem_ackwin_done(f.io.done, 4);
    ck_assert(vem_sinkio_behind(&f.io));
    ck_assert_int_eq(vem_sinkio_move_cursor(&f.io), 1);
    ck_assert_uint_eq(f.io.committed, 2);
    ck_assert_uint_eq(s_ack(&f, &consumer), 2);
    ck_assert_uint_eq(consumer, VEM_CONSUMER_KAFKA);
    ck_assert(!vem_sinkio_behind(&f.io));
    ck_assert_int_eq(vem_sinkio_move_cursor(&f.io), 0);
    ck_assert_uint_eq(s_ack(&f, &consumer), 0); /* told once */

    vem_ackwin_done(f.io.done, 3);
    ck_assert_int_eq(vem_sinkio_move_cursor(&f.io), 1);
    ck_assert_uint_eq(s_ack(&f, &consumer), 4);
    s_close(&f);

    /* durable: a new start begins at 4 */
    s_open(&f, 1 << 20, 0);
    ck_assert_uint_eq(f.io.committed, 4);
    ck_assert_uint_eq(vem_ackwin_mark(f.io.done), 4);
    s_close(&f);

    /* the spool's first record is 10 (the rest was trimmed by the other consumers): the cursor
     * cannot wait for 5 .. 9, which will never come */
    s_open(&f, 1 << 20, 10);
    ck_assert_uint_eq(f.io.committed, 9);
    ck_assert_uint_eq(vem_ackwin_mark(f.io.done), 9);
    s_close(&f);
}
END_TEST

/* A move the disk refuses (here the cursor's temporary file is a directory: EISDIR, as a full
 * or failing disk gives ENOSPC or EIO on the same path) keeps the cursor where it was, counts
 * the error and tells ingest nothing, so the spool keeps what is not durably delivered; the
 * next move, the disk well again, goes through. */
START_TEST(a_refused_move_acknowledges_nothing)
{
    s_fix_t f = {0};
    vem_test_mkdtemp("sinkio", f.dir, sizeof f.dir);
    s_open(&f, 1 << 20, 0);
    char tmp[400];
    snprintf(tmp, sizeof tmp, "%s/cursor.check.tmp", f.dir);
    ck_assert_int_eq(mkdir(tmp, 0700), 0);
    for (uint64_t seq = 1; seq <= 3; seq++)
        vem_ackwin_done(f.io.done, seq);
    uint32_t consumer = 0;
    ck_assert_int_eq(vem_sinkio_move_cursor(&f.io), -1);
    ck_assert_uint_eq(f.io.committed, 0);
    ck_assert_uint_eq(atomic_load(&f.io.cursor_errors->value), 1);
    ck_assert_uint_eq(s_ack(&f, &consumer), 0);
    ck_assert(vem_sinkio_behind(&f.io));
    ck_assert_int_eq(rmdir(tmp), 0);
    ck_assert_int_eq(vem_sinkio_move_cursor(&f.io), 1);
    ck_assert_uint_eq(s_ack(&f, &consumer), 3);
    s_close(&f);
}
END_TEST

START_TEST(open_refuses_a_taken_endpoint)
{
    s_fix_t f = {0};
    vem_test_mkdtemp("sinkio", f.dir, sizeof f.dir);
    s_open(&f, 1 << 20, 0);
    vem_sinkio_t twin = {0};
    char err[256] = "";
    vem_sinkio_args_t a = {.zctx = f.zctx,
                           .log = "check-sinkio",
                           .fns = {s_room, s_take, &f.sink},
                           .consumer = VEM_CONSUMER_PG,
                           .name = "twin",
                           .spool_dir = f.dir,
                           .spill_max_bytes = 1000,
                           .endpoint = S_ENDPOINT,
                           .queue_hwm = 100};
    ck_assert_int_eq(vem_sinkio_open(&twin, &a, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "cannot bind " S_ENDPOINT) != NULL, "%s", err);
    vem_sinkio_close(&twin);
    ck_assert_ptr_null(twin.spill);
    s_close(&f);
}
END_TEST

Suite *vem_suite_sinkio(void);
Suite *vem_suite_sinkio(void)
{
    Suite *s = suite_create("sinkio");
    TCase *tc = tcase_create("sinkio");
    tcase_add_test(tc, order_kept_through_the_spill);
    tcase_add_test(tc, full_spill_holds_one_and_stops_reading);
    tcase_add_test(tc, cursor_moves_to_the_contiguous_mark);
    tcase_add_test(tc, a_refused_move_acknowledges_nothing);
    tcase_add_test(tc, open_refuses_a_taken_endpoint);
    suite_add_tcase(s, tc);
    return s;
}
