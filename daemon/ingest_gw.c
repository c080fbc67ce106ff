/* ingest_gw — gateways and roadside stations; run by the ingest thread (ingest.c).
 *
 * Gateways push whole frames to a ZMQ_PULL socket (optionally CURVE), one frame per message,
 * each checked as the reassembler would check it. libzmq drops a gateway whose message is over
 * gateways.max_message_bytes (ZMQ_MAXMSGSIZE) before it is read; a monitor on the socket turns
 * each such disconnection into a counted quarantine row. Roadside stations (stations.h) are
 * read here too; their readings are staged like frames and answered after the same flush. */
#include "clock.h"
#include "curve.h"
#include "hj1239.h"
#include "ingest_int.h"
#include "log.h"
#include "records.h"
#include "stations.h"

#include <stdio.h>
#include <string.h>
#include <zmq.h>

#define S_GATEWAY_BUDGET  64 /* gateway messages read per turn: terminals and acks go on */
#define S_GATEWAY_MONITOR "inproc://vem-ingest-gateway-monitor"
#define S_GATEWAY_ROWS_S  10 /* quarantine rows for gateway disconnections per second */

/* ---- gateways ----------------------------------------------------------------------------- */

/* Reads up to S_GATEWAY_BUDGET gateway messages (whole frames). Messages over max_frame are
 * quarantined by size and origin; libzmq drops a gateway that sends one over
 * gateways.max_message_bytes before it is read (see vem_ingest_on_gateway_event). */
void vem_ingest_on_pull(vem_ingest_t *in)
{
    zmq_msg_t part;
    zmq_msg_init(&part);
    for (unsigned n = 0; n < S_GATEWAY_BUDGET; n++) {
        if (in->nstaged == VEM_INGEST_BATCH)
            vem_ingest_commit(in);
        if (!vem_ingest_can_stage(in) || zmq_msg_recv(&part, in->pull, ZMQ_DONTWAIT) < 0)
            break;
        const uint8_t *data = zmq_msg_data(&part);
        size_t len = zmq_msg_size(&part);
        vem_counter_add(in->bytes_gateways, len);
        if (in->args->gateways_curve &&
            !vem_curve_admits_msg(in->args->gateways_curve, &part, NULL, 0))
            continue; /* its key was removed since the handshake: counted and logged there */
        if (len > in->args->max_frame) {
            char note[96];
            snprintf(note, sizeof note, "gateway message of %zu bytes over the limit of %zu", len,
                     in->args->max_frame);
            vem_counter_add(in->oversize, 1);
            vem_ingest_stage(in, VEM_SOURCE_GATEWAY, NULL, NULL, VEM_SPOOL_KIND_QUARANTINE, NULL, 0,
                             VEM_RECORD_CLASS_TOO_LARGE, 0, note);
            continue;
        }
        /* A gateway sends whole frames: check them as the reassembler would. */
        vem_hj1239_error_t err = {0};
        bool whole = vem_hj1239_envelope_ok(data, len);
        if (!whole) {
            vem_hj1239_decode(data, len, 0, in->scratch, &err);
            if (err.status == VEM_HJ1239_OK || err.status >= VEM_HJ1239_STATUS_COUNT)
                err.status = VEM_HJ1239_MALFORMED_BODY;
            vem_counter_add(in->drops[err.status], 1);
        }
        vem_ingest_stage(in, VEM_SOURCE_GATEWAY, NULL, NULL,
                         whole ? VEM_SPOOL_KIND_OBD_FRAME : VEM_SPOOL_KIND_QUARANTINE, data, len,
                         whole ? VEM_HJ1239_OK : err.status, err.offset, whole ? NULL : err.detail);
    }
    zmq_msg_close(&part);
}

/* An event of the gateway socket's monitor. libzmq drops a gateway connection whose message
 * is over ZMQ_MAXMSGSIZE without a word to the application; all it reports is the
 * disconnection, the same as for a gateway that went away. Each one is counted and leaves a
 * quarantine row (source gateway, class too_large), so a refused message is never silent; a
 * gateway that reconnects in a loop gets S_GATEWAY_ROWS_S rows a second, the rest counted. */
void vem_ingest_on_gateway_event(vem_ingest_t *in)
{
    zmq_msg_t part;
    zmq_msg_init(&part);
    if (zmq_msg_recv(&part, in->gwmon, ZMQ_DONTWAIT) < 0)
        goto done;
    uint16_t event = 0;
    if (zmq_msg_size(&part) >= 6)
        memcpy(&event, zmq_msg_data(&part), sizeof event);
    char endpoint[128] = "";
    while (zmq_msg_more(&part) && zmq_msg_recv(&part, in->gwmon, ZMQ_DONTWAIT) >= 0) {
        size_t n =
            zmq_msg_size(&part) < sizeof endpoint - 1 ? zmq_msg_size(&part) : sizeof endpoint - 1;
        memcpy(endpoint, zmq_msg_data(&part), n);
        endpoint[n] = '\0';
    }
    if (event != ZMQ_EVENT_DISCONNECTED)
        goto done;
    vem_counter_add(in->gateway_drops, 1);
    int64_t second = vem_mono_ms() / 1000;
    if (second != in->gw_second) {
        in->gw_second = second;
        in->gw_rows = 0;
    }
    if (++in->gw_rows > S_GATEWAY_ROWS_S)
        goto done;
    char note[120];
    snprintf(note, sizeof note,
             "gateway connection dropped: a message over %lld bytes, or the gateway left",
             (long long)in->args->gateway_max_message);
    vem_log(VEM_LOG_WARNING, "ingest", "%s (%s)", note, endpoint);
    vem_ingest_stage(in, VEM_SOURCE_GATEWAY, NULL, NULL, VEM_SPOOL_KIND_QUARANTINE, NULL, 0,
                     VEM_RECORD_CLASS_TOO_LARGE, 0, note);
done:
    zmq_msg_close(&part);
}

/* ---- roadside stations ------------------------------------------------------------------- */

void vem_ingest_on_stations(vem_ingest_t *in)
{
    for (unsigned n = 0; n < VEM_INGEST_BATCH; n++) {
        if (in->nstaged == VEM_INGEST_BATCH)
            vem_ingest_commit(in);
        vem_station_input_t inp;
        if (!vem_ingest_can_stage(in) ||
            !vem_stations_read(in->stations, vem_spool_durable_seq(in->args->spool), &inp))
            break;
        if (inp.kind == 0)
            continue; /* answered, or waiting for the first copy's flush */
        uint64_t seq = vem_ingest_stage(in, VEM_SOURCE_ROADSIDE, NULL, inp.origin, inp.kind,
                                        inp.data, inp.len, inp.error, 0, inp.detail);
        vem_stations_staged(in->stations, seq);
    }
}

int vem_ingest_bind_gateways(vem_ingest_t *in, char *err, size_t errlen)
{
    vem_ingest_args_t *a = in->args;
    void *ctx = a->zctx;
    int zero = 0;
    if (a->gateways_endpoint && *a->gateways_endpoint) {
        in->pull = zmq_socket(ctx, ZMQ_PULL);
        zmq_setsockopt(in->pull, ZMQ_LINGER, &zero, sizeof zero);
        zmq_setsockopt(in->pull, ZMQ_RCVHWM, &a->rcvhwm, sizeof a->rcvhwm);
        if (a->gateways_curve && vem_curve_serve(a->gateways_curve, in->pull, err, errlen) != 0)
            return -1;
        zmq_setsockopt(in->pull, ZMQ_MAXMSGSIZE, &a->gateway_max_message,
                       sizeof a->gateway_max_message);
        if (zmq_socket_monitor(in->pull, S_GATEWAY_MONITOR, ZMQ_EVENT_DISCONNECTED) == 0) {
            in->gwmon = zmq_socket(ctx, ZMQ_PAIR);
            zmq_setsockopt(in->gwmon, ZMQ_LINGER, &zero, sizeof zero);
            zmq_connect(in->gwmon, S_GATEWAY_MONITOR);
        }
        if (zmq_bind(in->pull, a->gateways_endpoint) != 0) {
            snprintf(err, errlen, "cannot bind gateways endpoint %s: %s", a->gateways_endpoint,
                     zmq_strerror(zmq_errno()));
            return -1;
        }
    }
    if (a->stations.endpoint && *a->stations.endpoint) {
        a->stations.metrics = a->metrics;
        in->stations = vem_stations_new(ctx, &a->stations, err, errlen);
        if (!in->stations)
            return -1;
        if (a->registry) /* routing by the registry from the first reading on */
            vem_stations_set_registry(in->stations, a->registry);
        a->registry = NULL;
    }
    return 0;
}
