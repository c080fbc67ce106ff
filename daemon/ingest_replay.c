/* ingest_replay — the spool's read side: catch-up, replay on request, acknowledgements and
 * trimming; run by the ingest thread (ingest.c), which owns the readers.
 *
 * While behind, a catch-up reader feeds the workers from the spool up to what is durable, as
 * their queues drain, until it reaches the live edge (a restart starts here too). An operator's
 * "replay FROM TO" (vemctl spool replay) reads a range again, flagged as a replay. Consumers
 * acknowledge cumulatively; the spool is trimmed below the lowest mark of the active ones, and
 * never past what a replay on request still has to read. */
#include "clock.h"
#include "hj1239.h"
#include "ingest_int.h"
#include "log.h"
#include "records.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <zmq.h>

#define S_CATCHUP_BATCH     512   /* spool records forwarded per turn while behind */
#define S_READ_RETRY_MIN_MS 100   /* the pause after a failed read of the spool, doubling */
#define S_READ_RETRY_MAX_MS 5000  /* the longest pause between two reads that keep failing */
#define S_READ_UNHEALTHY    3     /* failed reads in a row (0.3 s at least) that are unhealthy */
#define S_READ_LOG_MS       60000 /* a read that keeps failing is logged again this often */

/* ---- catch-up: feeding the workers from the spool ---------------------------------------------
 */

void vem_ingest_meta_text(const vem_spool_rec_t *rec, char meta[VEM_INGEST_META_MAX])
{
    size_t m = rec->meta_len < VEM_INGEST_META_MAX - 1 ? rec->meta_len : VEM_INGEST_META_MAX - 1;
    memcpy(meta, rec->meta, m);
    meta[m] = '\0';
}

/* Parses the verdict that a quarantine record's meta text carries. */
static void s_parse_verdict(const vem_spool_rec_t *rec, vem_input_hdr_t *hdr, char *detail,
                            size_t cap)
{
    char meta[VEM_INGEST_META_MAX];
    vem_ingest_meta_text(rec, meta);
    unsigned error = 0;
    unsigned long long offset = 0;
    const char *mark = strstr(meta, " !");
    mark = mark ? mark + 1 : NULL;
    int used = 0;
    detail[0] = '\0';
    if (mark && sscanf(mark, "!%u@%llu:%n", &error, &offset, &used) == 2 && used > 0)
        snprintf(detail, cap, "%s", mark + used);
    else if (!(mark = strrchr(meta, '#')) || sscanf(mark, "#%u@%llu", &error, &offset) != 2)
        error = VEM_HJ1239_MALFORMED_BODY; /* spools of earlier versions: "#CLASS@OFFSET" */
    bool rsd = error > VEM_RECORD_CLASS_RSD && error <= VEM_RECORD_CLASS_RSD_END;
    if (error == 0 ||
        (error >= VEM_HJ1239_STATUS_COUNT && error != VEM_RECORD_CLASS_TOO_LARGE && !rsd))
        error = VEM_HJ1239_MALFORMED_BODY;
    hdr->error = (uint8_t)error;
    hdr->error_offset = (uint32_t)offset;
    hdr->detail_len = (uint16_t)strlen(detail);
}

/* Builds the worker message of a record read back from the spool. */
static unsigned s_from_spool(vem_ingest_t *in, int rc, const vem_spool_rec_t *rec, uint16_t flags,
                             zmq_msg_t *msg)
{
    vem_input_hdr_t hdr = {.seq = rec->seq,
                           .received_us = rec->received_us,
                           .nseqs = 1,
                           .data_len = rec->data_len,
                           .kind = rec->kind,
                           .flags = flags,
                           .source = rec->meta_len >= 7 && memcmp(rec->meta, "gateway", 7) == 0
                                         ? VEM_SOURCE_GATEWAY
                                     : rec->meta_len >= 8 && memcmp(rec->meta, "station ", 8) == 0
                                         ? VEM_SOURCE_ROADSIDE
                                         : VEM_SOURCE_TERMINAL};
    char detail[VEM_INGEST_META_MAX];
    detail[0] = '\0';
    const char *route = NULL;
    if (rc == VEM_SPOOL_READ_DAMAGED) {
        hdr.kind = VEM_SPOOL_KIND_QUARANTINE;
        hdr.nseqs = rec->lost ? rec->lost : 1;
        hdr.error = VEM_RECORD_CLASS_SPOOL_DAMAGED;
        hdr.received_us = vem_now_us();
        hdr.detail_len = (uint16_t)snprintf(
            detail, sizeof detail, "spool records %llu..%llu unreadable on disk",
            (unsigned long long)rec->seq, (unsigned long long)(rec->seq + hdr.nseqs - 1));
        vem_log(VEM_LOG_ERR, "ingest", "%s: stepped over, their bytes quarantined", detail);
    } else if (rec->kind == VEM_SPOOL_KIND_OBD_FRAME) {
        char meta[VEM_INGEST_META_MAX];
        vem_ingest_meta_text(rec, meta);
        hdr.paused_us = vem_ingest_meta_paused(meta);
    } else if (rec->kind == VEM_SPOOL_KIND_QUARANTINE) {
        s_parse_verdict(rec, &hdr, detail, sizeof detail);
    } else if (rec->kind == VEM_SPOOL_KIND_RSD_READING) {
        char meta[VEM_INGEST_META_MAX];
        vem_ingest_meta_text(rec, meta);
        if ((route = vem_ingest_route(meta)) != NULL)
            hdr.detail_len = (uint16_t)snprintf(detail, sizeof detail, "%s", route);
        route = detail;
    }
    vem_ingest_message(msg, &hdr, detail, rec->data);
    return vem_ingest_worker_of(in, hdr.kind, rec->seq, rec->data, rec->data_len, route);
}

/* Why a spool read failed, for the log: EUCLEAN is the reader's word for a segment whose name
 * is not its records' (spool.h), which the operator finds with `vemctl spool status`. */
static const char *s_read_error(int err)
{
    if (err == EUCLEAN)
        return "a segment's name is damaged (`vemctl spool status` names it; nothing is read "
               "past it until it is renamed)";
    return strerror(err);
}

/* A catch-up read failed (what says where and why, cause is its errno): counted, logged the first
 * time, then once a minute while the reads keep failing and at once when the cause changes (an
 * operator's fix that went wrong, say: an unreadable file put back under a wrong name), and
 * tried again after a pause that starts at S_READ_RETRY_MIN_MS and doubles up to
 * S_READ_RETRY_MAX_MS. A damaged name or an unreadable file stays so until the operator sets it
 * right: the workers wait, the spool holds everything, and from the S_READ_UNHEALTHY-th failure
 * in a row health says why (one transient error does not take vemd out of a load balancer). */
static void s_read_failed(vem_ingest_t *in, const char *what, int cause)
{
    int64_t now = vem_mono_ms();
    vem_counter_add(in->spool_read_errors, 1);
    bool first = in->read_failures == 0;
    bool other = first || cause != in->read_logged_errno;
    if (other || now - in->read_logged_ms >= S_READ_LOG_MS) {
        if (other)
            vem_log(VEM_LOG_ERR, "ingest", "%s; the workers wait, the read is tried again", what);
        else
            vem_log(VEM_LOG_ERR, "ingest", "%s (still, after %llu tries)", what,
                    (unsigned long long)in->read_failures + 1);
        in->read_logged_ms = now;
        in->read_logged_errno = cause;
    }
    in->reader_backoff_ms = vem_backoff_doubled(first ? 0 : in->reader_backoff_ms,
                                                S_READ_RETRY_MIN_MS, S_READ_RETRY_MAX_MS);
    in->reader_retry_ms = now + in->reader_backoff_ms;
    if (++in->read_failures >= S_READ_UNHEALTHY)
        atomic_store(&in->args->spool_readable, false);
}

/* A catch-up read succeeded: after failures, that is said once. */
static void s_read_ok(vem_ingest_t *in)
{
    if (in->read_failures == 0)
        return;
    vem_log(VEM_LOG_NOTICE, "ingest",
            "the spool is read again at input %llu after %llu failed tries",
            (unsigned long long)in->fwd_next, (unsigned long long)in->read_failures);
    in->read_failures = 0;
    atomic_store(&in->args->spool_readable, true);
}

/* While behind: forwards spool records to the workers up to what is durable, as long as their
 * queues take them; back to live once the reader reaches the live edge. True when it stopped
 * for want of room in a worker queue or reached its turn's budget. */
bool vem_ingest_catch_up(vem_ingest_t *in)
{
    uint64_t durable = vem_spool_durable_seq(in->args->spool);
    for (unsigned n = 0; n < S_CATCHUP_BATCH; n++) {
        if (in->holding) {
            vem_input_hdr_t hdr;
            memcpy(&hdr, zmq_msg_data(&in->held), sizeof hdr);
            if (!vem_ingest_forward(in, &in->held, in->held_worker, hdr.seq, hdr.nseqs))
                return true;
            in->holding = false;
            in->fwd_next = hdr.seq + hdr.nseqs;
        }
        if (in->fwd_next > durable) {
            /* Inputs staged while behind carry no worker message: live now, nothing would
             * hand them over. A failing flush keeps them from being durable (and read back
             * here): behind until it succeeds. */
            if (in->nstaged > 0)
                return false;
            vem_spool_reader_destroy(&in->reader);
            in->live = true;
            atomic_store(&in->args->behind, false);
            vem_log(VEM_LOG_INFO, "ingest", "workers caught up with the spool at input %llu",
                    (unsigned long long)durable);
            return false;
        }
        if (!in->reader) {
            char err[300];
            in->reader = vem_spool_reader_new(in->args->spool_dir, in->fwd_next, err, sizeof err);
            if (!in->reader) {
                int cause = errno;
                char what[400];
                snprintf(what, sizeof what, "catch-up reader: %s", err);
                s_read_failed(in, what, cause);
                return false;
            }
        }
        vem_spool_rec_t rec;
        int rc = vem_spool_reader_next(in->reader, durable, &rec);
        if (rc == VEM_SPOOL_READ_ERROR) {
            int cause = errno;
            char what[400];
            snprintf(what, sizeof what, "reading the spool at input %llu: %s",
                     (unsigned long long)in->fwd_next, s_read_error(cause));
            vem_spool_reader_destroy(&in->reader); /* reopened after a pause */
            s_read_failed(in, what, cause);
            return false;
        }
        s_read_ok(in);
        if (rc == VEM_SPOOL_READ_END) {
            /* durable records the reader cannot find: settle them as damaged, never wait */
            rec = (vem_spool_rec_t){.seq = in->fwd_next,
                                    .lost = (uint32_t)(durable - in->fwd_next + 1)};
            rc = VEM_SPOOL_READ_DAMAGED;
        }
        if (rec.seq + (rc == VEM_SPOOL_READ_DAMAGED && rec.lost ? rec.lost : 1) <= in->fwd_next)
            continue; /* before where we are (a reader opened mid-segment) */
        in->held_worker = s_from_spool(in, rc, &rec, 0, &in->held);
        in->holding = true;
    }
    return true;
}

/* ---- replay on request ----------------------------------------------------------------------- */

/* Forwards a turn's share of the requested range, flagged as a replay; ends it at its end. */
void vem_ingest_replay_turn(vem_ingest_t *in)
{
    uint64_t durable = vem_spool_durable_seq(in->args->spool);
    uint64_t to = in->rto < durable ? in->rto : durable;
    for (unsigned n = 0; n < S_CATCHUP_BATCH; n++) {
        if (in->rholding) {
            vem_input_hdr_t hdr;
            memcpy(&hdr, zmq_msg_data(&in->rheld), sizeof hdr);
            if (!vem_ingest_forward(in, &in->rheld, in->rworker, hdr.seq, hdr.nseqs))
                return;
            in->rholding = false;
            in->rnext = hdr.seq + hdr.nseqs;
        }
        vem_spool_rec_t rec;
        int rc = in->rnext > to ? VEM_SPOOL_READ_END : vem_spool_reader_next(in->rreader, to, &rec);
        if (rc == VEM_SPOOL_READ_END || rc == VEM_SPOOL_READ_ERROR) {
            vem_log(rc == VEM_SPOOL_READ_END ? VEM_LOG_NOTICE : VEM_LOG_ERR, "ingest",
                    "replay on request ended at input %llu%s%s", (unsigned long long)in->rnext - 1,
                    rc == VEM_SPOOL_READ_END ? "" : ": ",
                    rc == VEM_SPOOL_READ_END ? "" : s_read_error(errno));
            vem_spool_reader_destroy(&in->rreader);
            return;
        }
        if (rec.seq < in->rnext)
            continue;
        if (rc == VEM_SPOOL_READ_DAMAGED) { /* already quarantined when it was first read */
            in->rnext = rec.seq + (rec.lost ? rec.lost : 1);
            continue;
        }
        in->rworker = s_from_spool(in, rc, &rec, VEM_INPUT_REPLAY, &in->rheld);
        in->rholding = true;
    }
}

/* Answers a control request: "replay FROM TO" starts a replay of that range. */
void vem_ingest_on_ctl(vem_ingest_t *in)
{
    char request[96];
    int len = zmq_recv(in->ctl, request, sizeof request - 1, ZMQ_DONTWAIT);
    if (len < 0)
        return;
    request[(size_t)len < sizeof request ? (size_t)len : sizeof request - 1] = '\0';
    unsigned long long from, to;
    char answer[300];
    uint64_t durable = vem_spool_durable_seq(in->args->spool);
    uint64_t first = vem_spool_first_seq(in->args->spool);
    if (sscanf(request, "replay %llu %llu", &from, &to) != 2 || from == 0 || to < from) {
        snprintf(answer, sizeof answer, "{\"error\": \"expected: replay FROM TO\"}");
    } else if (in->rreader) {
        snprintf(answer, sizeof answer,
                 "{\"error\": \"a replay is under way (at input %llu of %llu)\"}",
                 (unsigned long long)in->rnext, (unsigned long long)in->rto);
    } else if (from < first || from > durable) {
        snprintf(answer, sizeof answer,
                 "{\"error\": \"input %llu is not in the spool, which holds %llu..%llu\"}", from,
                 (unsigned long long)first, (unsigned long long)durable);
    } else {
        char err[300];
        in->rreader = vem_spool_reader_new(in->args->spool_dir, from, err, sizeof err);
        if (!in->rreader) {
            snprintf(answer, sizeof answer, "{\"error\": \"cannot read the spool\"}");
            vem_log(VEM_LOG_ERR, "ingest", "replay on request: %s", err);
        } else {
            in->rnext = from;
            in->rto = to < durable ? to : durable;
            snprintf(answer, sizeof answer, "{\"replaying\": {\"from\": %llu, \"to\": %llu}}", from,
                     (unsigned long long)in->rto);
            vem_log(VEM_LOG_NOTICE, "ingest", "replay on request of inputs %llu..%llu", from,
                    (unsigned long long)in->rto);
        }
    }
    zmq_send(in->ctl, answer, strlen(answer), ZMQ_DONTWAIT);
}

/* ---- acknowledgements and trimming ---------------------------------------------------------- */

/* The lowest mark of the active consumers (but the one left out, VEM_CONSUMERS for none):
 * every record up to it is done everywhere. */
static uint64_t s_low_mark(const vem_ingest_t *in, unsigned except)
{
    uint64_t low = UINT64_MAX;
    for (unsigned c = 0; c < VEM_CONSUMERS; c++) {
        if (!(in->args->consumers & 1u << c) || c == except)
            continue;
        uint64_t mark = in->marks[c];
        if (c == VEM_CONSUMER_WORKERS || c == VEM_CONSUMER_RULES) {
            /* a worker handed nothing past its mark holds nothing back: what came since went
             * to the others */
            const uint64_t *last = c == VEM_CONSUMER_WORKERS ? in->done_last : in->ckpt_last;
            mark = in->forwarded;
            for (unsigned w = 0; w < in->args->workers; w++)
                if (last[w] < in->sent_last[w] && last[w] < mark)
                    mark = last[w];
        }
        if (mark < low)
            low = mark;
    }
    return low;
}

void vem_ingest_on_acks(vem_ingest_t *in)
{
    vem_ack_t ack;
    int n;
    while ((n = zmq_recv(in->acks, &ack, sizeof ack, ZMQ_DONTWAIT)) >= 0) {
        if (n != (int)sizeof ack || ack.consumer >= VEM_CONSUMERS)
            continue;
        if (ack.consumer == VEM_CONSUMER_WORKERS) {
            if (ack.from < in->args->workers && ack.mark > in->done_last[ack.from])
                in->done_last[ack.from] = ack.mark;
        } else if (ack.consumer == VEM_CONSUMER_RULES) {
            if (ack.from < in->args->workers && ack.mark > in->ckpt_last[ack.from])
                in->ckpt_last[ack.from] = ack.mark;
        } else if (ack.mark > in->marks[ack.consumer]) {
            in->marks[ack.consumer] = ack.mark;
        }
    }
}

void vem_ingest_trim(vem_ingest_t *in)
{
    uint64_t low = s_low_mark(in, VEM_CONSUMERS);
    uint64_t output = s_low_mark(in, VEM_CONSUMER_RULES);
    if (output != UINT64_MAX)
        atomic_store(&in->args->output_seq, output);
    if (in->args->consumers & 1u << VEM_CONSUMER_RULES) {
        uint64_t bytes = vem_spool_bytes(in->args->spool);
        bool full = !vem_spool_has_room(in->args->spool, VEM_INGEST_ROOM_INPUTS * in->headroom);
        atomic_store(&in->args->ckpt_wanted,
                     low < output &&
                         (full || (in->args->ckpt_bytes && bytes > in->args->ckpt_bytes)));
    }
    if (in->rreader && in->rnext - 1 < low)
        low = in->rnext - 1; /* a replay on request reads below the marks: keep its segments */
    if (low != UINT64_MAX && low > in->trimmed) {
        if (vem_spool_trim(in->args->spool, low) == 0)
            in->trimmed = low;
        else
            vem_log(VEM_LOG_ERR, "ingest", "spool trim: %s", strerror(errno));
    }
    uint64_t durable = vem_spool_durable_seq(in->args->spool);
    vem_gauge_set(in->backlog,
                  (int64_t)(output != UINT64_MAX && durable > output ? durable - output : 0));
    vem_gauge_set(in->unjudged,
                  (int64_t)(in->args->consumers & 1u << VEM_CONSUMER_RULES && durable > low
                                ? durable - low
                                : 0));
    vem_gauge_set(in->unforwarded,
                  (int64_t)(durable > in->forwarded ? durable - in->forwarded : 0));
    vem_gauge_set(in->spool_bytes, (int64_t)vem_spool_bytes(in->args->spool));
    atomic_store(&in->args->settled_seq, low == UINT64_MAX ? durable : low);
}
