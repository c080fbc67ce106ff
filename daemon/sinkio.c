/* sinkio — a sink's inbox, spill and spool cursor; see sinkio.h. */
#include "sinkio.h"

#include "ingest.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int vem_sinkio_open(vem_sinkio_t *io, const vem_sinkio_args_t *a, char *err, size_t errlen)
{
    int zero = 0;
    io->log = a->log;
    io->fns = a->fns;
    io->consumer = a->consumer;
    io->cursor = vem_spool_cursor_open(a->spool_dir, a->name, err, errlen);
    if (!io->cursor)
        return -1;
    /* Records below the spool's first are gone from it and will never come: start after them. */
    io->committed = vem_spool_cursor_get(io->cursor);
    if (a->spool_first > 0 && io->committed < a->spool_first - 1)
        io->committed = a->spool_first - 1;
    io->done = vem_ackwin_new(io->committed);
    char path[4200];
    snprintf(path, sizeof path, "%s/spill.%s", a->spool_dir, a->name);
    io->spill = vem_spill_open(path, a->spill_max_bytes, err, errlen);
    if (!io->spill)
        return -1;
    io->pull = zmq_socket(a->zctx, ZMQ_PULL);
    zmq_setsockopt(io->pull, ZMQ_RCVHWM, &a->queue_hwm, sizeof a->queue_hwm);
    zmq_setsockopt(io->pull, ZMQ_LINGER, &zero, sizeof zero);
    if (zmq_bind(io->pull, a->endpoint) != 0) {
        snprintf(err, errlen, "cannot bind %s: %s", a->endpoint, zmq_strerror(zmq_errno()));
        return -1;
    }
    io->acks = zmq_socket(a->zctx, ZMQ_PUSH);
    zmq_setsockopt(io->acks, ZMQ_LINGER, &zero, sizeof zero);
    zmq_connect(io->acks, VEM_ACK_ENDPOINT);
    return 0;
}

void vem_sinkio_close(vem_sinkio_t *io)
{
    if (io->pull)
        zmq_close(io->pull);
    if (io->acks)
        zmq_close(io->acks);
    if (io->holding)
        zmq_msg_close(&io->held);
    free(io->spill_buf);
    vem_spill_destroy(&io->spill);
    vem_ackwin_destroy(&io->done);
    vem_spool_cursor_destroy(&io->cursor);
    io->pull = io->acks = NULL;
    io->holding = false;
    io->spill_buf = NULL;
    io->spill_cap = 0;
}

/* The sink may take a new message rather than spill it: nothing spilled before it, and room. */
static bool s_accepting(const vem_sinkio_t *io)
{
    return vem_spill_count(io->spill) == 0 && io->fns.room(io->fns.arg);
}

/* Takes one message, or spills it; false when the spill is full too (the caller keeps it). */
static bool s_place(vem_sinkio_t *io, zmq_msg_t *msg)
{
    if (s_accepting(io)) {
        io->fns.take(io->fns.arg, zmq_msg_data(msg), zmq_msg_size(msg));
        return true;
    }
    if (vem_spill_push(io->spill, zmq_msg_data(msg), zmq_msg_size(msg)) != 0) {
        if (errno != ENOSPC)
            vem_log(VEM_LOG_ERR, io->log, "spill: %s; the workers wait", strerror(errno));
        return false;
    }
    vem_counter_add(io->spills, 1);
    return true;
}

void vem_sinkio_read(vem_sinkio_t *io, unsigned budget)
{
    if (io->holding) {
        if (!s_place(io, &io->held))
            return;
        zmq_msg_close(&io->held);
        io->holding = false;
    }
    for (unsigned n = 0; n < budget; n++) {
        zmq_msg_t msg;
        zmq_msg_init(&msg);
        if (zmq_msg_recv(&msg, io->pull, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&msg);
            return;
        }
        if (!s_place(io, &msg)) {
            zmq_msg_init(&io->held); /* move closes its destination first */
            zmq_msg_move(&io->held, &msg);
            zmq_msg_close(&msg);
            io->holding = true;
            return;
        }
        zmq_msg_close(&msg);
    }
}

void vem_sinkio_unspill(vem_sinkio_t *io)
{
    while (vem_spill_count(io->spill) && io->fns.room(io->fns.arg)) {
        size_t len = vem_spill_peek(io->spill);
        if (len > io->spill_cap) {
            io->spill_buf = realloc(io->spill_buf, len);
            if (!io->spill_buf)
                abort();
            io->spill_cap = len;
        }
        if (len == 0 || vem_spill_pop(io->spill, io->spill_buf) != 0) {
            vem_log(VEM_LOG_ERR, io->log, "reading the spill: %s", strerror(errno));
            return;
        }
        io->fns.take(io->fns.arg, io->spill_buf, len);
    }
}

/* Tells ingest the cursor's position; a lost message is made good by the next. */
static void s_ack(vem_sinkio_t *io)
{
    if (io->acked == io->committed)
        return;
    vem_ack_t ack = {.consumer = io->consumer, .mark = io->committed};
    if (zmq_send(io->acks, &ack, sizeof ack, ZMQ_DONTWAIT) == (int)sizeof ack)
        io->acked = io->committed;
}

int vem_sinkio_move_cursor(vem_sinkio_t *io)
{
    uint64_t mark = vem_ackwin_mark(io->done);
    int moved = 0;
    if (mark > io->committed) {
        if (vem_spool_cursor_commit(io->cursor, mark) != 0) {
            vem_counter_add(io->cursor_errors, 1);
            vem_log(VEM_LOG_ERR, io->log, "cannot move the spool cursor to %llu: %s",
                    (unsigned long long)mark, strerror(errno));
            return -1;
        }
        io->committed = mark;
        moved = 1;
    }
    s_ack(io);
    return moved;
}

bool vem_sinkio_behind(const vem_sinkio_t *io)
{
    return io->committed > io->acked || vem_ackwin_mark(io->done) > io->committed;
}
