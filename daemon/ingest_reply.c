/* ingest_reply — what ingest says to terminals: replies to their frames, the verdict on an
 * activation (0x07) and its answer (0x08), and who does not read them; run by the ingest thread.
 *
 * Activations are judged here, in memory (keys.h), before they are spooled, so the answer can
 * go out right after the flush; a budget per second, overall and per source address, bounds the
 * SM2 checks a peer can make this thread do. Replies are sent after the flush without ever
 * blocking; a peer whose replies are refused for S_DEAF_MS, none taken in between, is deaf. */
#include "clock.h"
#include "hj1239.h"
#include "ingest_int.h"
#include "keys.h"
#include "log.h"
#include "peers.h"
#include "records.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define S_DEAF_MS 2000 /* replies refused this long without one taken: deaf */

/* VIN of a whole frame, in either header form. */
static const uint8_t *s_vin(const uint8_t *frame)
{
    return vem_hj1239_header_vin(frame);
}

/* Builds the reply to a terminal frame in the GB/T 32960 response form: `##`, the command,
 * response flag 0x01 (ok), the VIN, encryption none, and a data unit of the frame's time (the
 * platform's Beijing time for a time calibration). Returns false when none is due. */
bool vem_ingest_reply(const vem_ingest_t *in, const uint8_t *frame, size_t len, uint8_t out[31])
{
    uint8_t cmd = frame[2];
    bool always = cmd == VEM_HJ1239_CMD_LOGIN || cmd == VEM_HJ1239_CMD_TIME_SYNC;
    bool per_frame = atomic_load(&in->args->reply_mode) == VEM_REPLY_HJ1239 &&
                     (cmd == VEM_HJ1239_CMD_REALTIME || cmd == VEM_HJ1239_CMD_RESEND ||
                      cmd == VEM_HJ1239_CMD_LOGOUT || cmd == VEM_HJ1239_CMD_REMOVAL_ALARM);
    if (!always && !per_frame)
        return false;
    out[0] = out[1] = '#';
    out[2] = cmd;
    out[3] = 0x01;
    memcpy(out + 4, s_vin(frame), 17);
    out[21] = 0x01;
    out[22] = 0;
    out[23] = 6;
    if (cmd == VEM_HJ1239_CMD_TIME_SYNC || len < VEM_HJ1239_HEADER_LEN + 6 + 1) {
        if (!vem_hj1239_time_encode(vem_now_us() / 1000000, out + 24))
            return false;
    } else {
        memcpy(out + 24, frame + VEM_HJ1239_HEADER_LEN, 6);
    }
    out[30] = vem_hj1239_bcc(out + 2, 28);
    return true;
}

/* The 0x08 answer to an activation, in the terminal header form the 0x07 came in: `##`, 0x08,
 * the VIN, its software version, encryption none, a data unit of status and info (keys.h). */
void vem_ingest_activation_reply(const uint8_t *frame, vem_keys_verdict_t v, uint8_t out[27])
{
    out[0] = out[1] = '#';
    out[2] = VEM_HJ1239_CMD_ACTIVATION_REPLY;
    memcpy(out + 3, frame + 3, 17);
    out[20] = frame[20];
    out[21] = VEM_HJ1239_ENC_NONE;
    out[22] = 0;
    out[23] = 2;
    vem_keys_reply_codes(v, &out[24], &out[25]);
    out[26] = vem_hj1239_bcc(out + 2, 24);
}

/* Judges an activation (0x07) before it is spooled, so its answer can go out right after the
 * sync (keys.h: in memory, no database round trip), without filing it: a refused one becomes a
 * quarantine record of its class (*kind, *error, detail set); one that passes goes on as a
 * frame and is filed in the registry only once the spool took it (vem_ingest_file_activation), so
 * an append refused leaves no key behind. It reaches terminal_events, whose trigger files it in
 * terminal_keys. Returns the verdict with the decoded frame in *act (malloc'd, the caller
 * frees), or -1 when the frame does not decode (the worker quarantines it with the decoder's
 * class; no answer). */
int vem_ingest_activation(vem_ingest_t *in, const uint8_t *data, size_t len,
                          vem_hj1239_frame_t **act, uint16_t *kind, unsigned *error, char *detail,
                          size_t detail_len)
{
    vem_hj1239_frame_t *f = malloc(sizeof *f); /* rare: not worth a buffer per ingest */
    if (!f)
        abort();
    if (vem_hj1239_decode(data, len, VEM_HJ1239_TRUSTED_BCC, f, NULL) != VEM_HJ1239_OK ||
        f->cmd != VEM_HJ1239_CMD_ACTIVATION) {
        free(f);
        return -1;
    }
    int v = (int)vem_keys_judge(in->args->keys, f, data, len, detail, detail_len);
    if (v != VEM_KEYS_OK) {
        static const unsigned s_class[VEM_KEYS_VERDICTS] = {
            [VEM_KEYS_CHIP_TAKEN] = VEM_RECORD_CLASS_CHIP_ACTIVATED,
            [VEM_KEYS_VIN_ERROR] = VEM_RECORD_CLASS_VIN_ERROR,
            [VEM_KEYS_BAD_SIGNATURE] = VEM_RECORD_CLASS_BAD_SIGNATURE,
            [VEM_KEYS_KEY_REUSED] = VEM_RECORD_CLASS_KEY_REUSED};
        *kind = VEM_SPOOL_KIND_QUARANTINE;
        *error = s_class[v];
        vem_counter_add(in->activations[v], 1);
        vem_log(VEM_LOG_WARNING, "ingest", "activation of %.17s refused: %s", (const char *)f->vin,
                detail);
    }
    *act = f;
    return v;
}

/* Files an activation that passed (vem_ingest_activation) now that the spool holds it; the verdict
 * for its answer: another one only when the registry changed in between (a reload), and the stored
 * frame then meets the same refusal at the worker (key conflicts). */
int vem_ingest_file_activation(vem_ingest_t *in, const vem_hj1239_frame_t *f)
{
    char detail[VEM_HJ1239_DETAIL_LEN];
    int v = (int)vem_keys_file(in->args->keys, f, detail, sizeof detail);
    vem_counter_add(in->activations[v], 1);
    vem_log(v == VEM_KEYS_OK ? VEM_LOG_INFO : VEM_LOG_WARNING, "ingest",
            "activation of %.17s %s: %s", (const char *)f->vin,
            v == VEM_KEYS_OK ? "accepted" : "refused when filed", detail);
    return v;
}

/* NULL when one more activation (of conn; NULL: a gateway's) may be judged now, else the key
 * whose budget is spent: every one costs an SM2 check in this thread, so a peer sending nothing
 * else could otherwise take ingest's time, and the others' activations, from the rest. */
const char *vem_ingest_activation_budget(vem_ingest_t *in, const vem_ingest_conn_t *conn)
{
    /* first the address's share, so one host looping activations spends only its own */
    unsigned per_address = in->args->activations_per_address_s;
    if (conn && per_address &&
        !vem_peers_take(in->peers, conn->addr, per_address, vem_mono_ms() * 1000))
        return "terminals.activations_per_address_s";
    double rate = in->args->activations_per_s ? in->args->activations_per_s : 1;
    int64_t now = vem_mono_ms();
    if (in->act_fill_ms == 0)
        in->act_tokens = rate;
    else
        in->act_tokens += (double)(now - in->act_fill_ms) * rate / 1000.0;
    if (in->act_tokens > rate)
        in->act_tokens = rate;
    in->act_fill_ms = now;
    if (in->act_tokens < 1)
        return "terminals.activations_per_s";
    in->act_tokens -= 1;
    return NULL;
}

/* Notes that a reply to conn (NULL: gone) was refused (its pipe is full) or taken. A peer
 * whose replies are refused for S_DEAF_MS without one taken does not read: it is deaf. The
 * time is the intake clock's (vem_ingest_open_ms), as for idleness: a peer that has sent
 * everything and gone resets its socket, and its pipe takes no reply until ingest has read
 * what the peer left in it, which a paused intake does not do; counted in wall time, the
 * pauses of a filling spool made such peers deaf and their unread frames were discarded. */
static void s_refused(vem_ingest_t *in, vem_ingest_conn_t *conn, bool refused)
{
    if (!conn)
        return;
    int64_t now = vem_ingest_open_ms(in) + 1; /* never 0 */
    if (!refused) {
        if (conn->refused_ms) {
            conn->refused_ms = 0;
            in->nrefusing--;
        }
    } else if (!conn->refused_ms) {
        conn->refused_ms = now;
        in->nrefusing++;
    } else if (now - conn->refused_ms >= S_DEAF_MS) {
        conn->deaf = true;
    }
}

/* Sends the staged replies, never blocking: one a peer's full pipe refuses is dropped (counted)
 * and the peer noted (s_refused). */
void vem_ingest_send_replies(vem_ingest_t *in)
{
    for (size_t i = 0; i < in->nstaged; i++) {
        vem_ingest_staged_t *st = &in->staged[i];
        if (!st->reply)
            continue;
        if (zmq_send(in->stream, st->id, st->id_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
            vem_counter_add(in->reply_dropped, 1);
            if (zmq_errno() == EAGAIN) /* its pipe is full */
                s_refused(in, vem_ingest_find(in, vem_ingest_key(st->id, st->id_len)), true);
            continue;
        }
        if (zmq_send(in->stream, st->reply_buf, st->reply_len, ZMQ_DONTWAIT) < 0)
            vem_counter_add(in->reply_dropped, 1);
        else if (in->nrefusing > 0)
            s_refused(in, vem_ingest_find(in, vem_ingest_key(st->id, st->id_len)), false);
    }
}
