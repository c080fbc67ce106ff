/* vem-sim — a fleet of simulated China VI trucks streaming remote-OBD frames over TCP.
 *
 *   vem-sim [--connect HOST:PORT] [--trucks N] [--duration S] [--rate R] [--samples K]
 *           [--protocol hj1239|gb17691] [--seed S] [--start-time EPOCH]
 *           [--misbehave NAME:COUNT]... [--offline PCT] [--malformed N] [--idle N]
 *           [--truth FILE] [--vin-prefix P] [--quiet]
 *           [--await-replies [--settle S] [--reply-timeout S] [--window N]
 *                            [--login-pause S]]
 *   vem-sim --registry FILE [--trucks N] [--seed S] [--vin-prefix P]
 *
 * Every truck connects, logs in, sends a real-time frame of K one-second samples every 1/R
 * seconds (an OBD block in every 60th), and at the end logs out and closes. Scenario bits
 * (mil_on, urea_empty, scr_removed, frozen_nox, removal_alarm) each go to the next COUNT
 * trucks without one, in index order. --offline makes that share of trucks (the last) drop their
 * connection for the middle third of the run, keep what they collect, and after logging in again
 * re-send it as 0x03 frames, three per tick, between their live frames. --malformed adds
 * connections mixing good frames with garbage runs, frames with a wrong BCC and a frame cut short
 * at close; --idle adds connections that never send.
 *
 * --await-replies (HJ 1239 only; vemd's terminals.reply_mode = "hj1239") makes the trucks
 * store and forward as real terminals do: every real-time frame is kept (sim_store) until the
 * platform's reply for it arrives (same command class, VIN and time); a truck collects whether
 * or not it has a link, logs in on every connection and sends data only once the login is
 * answered, and after a broken connection (refused, reset, closed, or a reply more than
 * --reply-timeout seconds late, default 5) it reconnects after 200 ms doubling to 2 s and
 * re-sends what was not acknowledged as 0x03 frames, keeping at most --window frames (default
 * 16) unanswered on the link; --login-pause S makes it wait S seconds after each login answer
 * before it sends data (default 0), so the login reaches vemd's workers on its own. --offline
 * then takes the link away for the middle third and the store does the rest. At the end of
 * --duration it stops collecting, re-sends until everything is acknowledged or --settle seconds
 * (default 30) have passed, logs out, waits for that reply and closes. The truth then says per
 * vehicle what was generated, acknowledged and left unacknowledged, and how acknowledgements
 * grew second by second.
 *
 * --registry writes the fleet's vehicle registry as `vemctl vehicles import` reads it (VIN,
 * plate, region and each truck's own engine figures: the reference torque and rated power its
 * samples are computed with, and a WHTC reference work of 0.09 h at rated power) and exits
 * without connecting: the rules can only judge the work-based window with the real figures.
 *
 * --stations N puts N roadside remote-sensing stations (RSD-1 ..) on the trucks' routes
 * (tools/sim_rsd.h): each truck passes one every 120 s of its time and is measured (NO from the
 * NOx really leaving its tailpipe, so the misbehaving trucks show), gasoline cars pass too; the
 * readings go to vemd's stations endpoint (--stations-endpoint, default tcp://127.0.0.1:7613)
 * and the truth counts them and the acknowledgements ("stations"). Not with --await-replies.
 * --stations-key and --stations-server-key make the stations CURVE clients (curve.h).
 *
 * The ground truth (JSON) counts frames only once all their bytes were written to a socket.
 * One thread, non-blocking sockets, one poll(): no thread per truck. Replies are read and
 * counted so sockets never fill; with --await-replies they are cut from the byte stream by
 * parsers/reasm, so replies split across reads or several in one read are all seen. */
#include "reasm.h"
#include "sim_fleet.h"
#include "sim_frames.h"
#include "sim_rsd.h"
#include "sim_store.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define S_LON0      118.796877 /* Nanjing */
#define S_LAT0      32.060255
#define S_MAX_FRAME 4096

typedef enum { S_OFF, S_CONNECTING, S_UP, S_CLOSING, S_DONE } s_state_t;

typedef struct {
    size_t end; /* offset in out just past the frame */
    uint8_t cmd;
    bool counted; /* a good frame (not garbage or a broken frame) */
} s_pending_t;

typedef struct {
    vem_sim_truck_t model;
    int kind; /* 0 truck, 1 malformed connection, 2 idle connection */
    int fd;
    s_state_t state;
    uint8_t *out;
    size_t out_len, out_cap, written;
    s_pending_t *pend;
    size_t npend, cap_pend;
    double next_tick;    /* monotonic seconds of the next data tick */
    double reconnect_at; /* monotonic seconds of the next connection attempt */
    uint16_t seq, login_seq;
    int64_t clock; /* sim time of the next sample */
    unsigned ticks;
    bool offline_planned, offline_done, alarm_sent, logged_out, cut_sent;
    uint8_t **backlog; /* encoded 0x03 frames waiting for the connection */
    size_t *backlog_len;
    size_t nbacklog, backlog_head, cap_backlog;
    long sent[9]; /* good frames fully written, by command */
    /* --await-replies (trucks only; NULL store otherwise) */
    vem_sim_store_t *store;
    vem_reasm_t *replies; /* cuts vemd's replies out of the byte stream */
    bool logged_in, logout_acked;
    double login_sent_at, logout_sent_at, connect_at, backoff;
    double data_from; /* monotonic seconds from which a logged-in truck sends data */
    long generated, acked;
} s_conn_t;

typedef struct {
    struct sockaddr_in addr;
    unsigned trucks, samples, malformed, idle;
    double duration, rate;
    bool hj1239, quiet;
    uint64_t seed;
    int64_t start_time;
    unsigned offline_pct;
    const char *registry; /* --registry: write the fleet's registry there and exit */
    const char *truth;
    const char *vin_prefix;       /* VINs are PREFIX + zero-padded truck index (default LVEMSIM) */
    vem_sim_stations_t *stations; /* --stations: roadside stations measuring the trucks */
    int64_t newest_t;             /* the newest simulated second (the stations' clock) */
    unsigned misbehave_count[5];
    bool await;
    double settle, reply_timeout, login_pause;
    unsigned window;
    /* results */
    long bad_checksum, truncated, garbage_runs, garbage_bytes, good_malformed;
    long replies_bytes, connect_failures, resets;
    long generated, acked, reconnects, reply_timeouts, duplicate_acks, stray_replies, reply_garbage,
        replies;
    long *timeline; /* cumulative generated and acknowledged frames at each whole second */
    size_t ntimeline, cap_timeline;
} s_sim_t;

static const char *const s_scenarios[] = {"mil_on", "urea_empty", "scr_removed", "frozen_nox",
                                          "removal_alarm"};

static double s_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void s_queue(s_conn_t *c, const uint8_t *bytes, size_t len, uint8_t cmd, bool counted)
{
    if (c->out_len + len > c->out_cap) {
        while (c->out_len + len > c->out_cap)
            c->out_cap = c->out_cap ? c->out_cap * 2 : 8192;
        c->out = realloc(c->out, c->out_cap);
        if (!c->out)
            abort();
    }
    memcpy(c->out + c->out_len, bytes, len);
    c->out_len += len;
    if (c->npend == c->cap_pend) {
        c->cap_pend = c->cap_pend ? c->cap_pend * 2 : 64;
        c->pend = realloc(c->pend, c->cap_pend * sizeof *c->pend);
        if (!c->pend)
            abort();
    }
    c->pend[c->npend++] = (s_pending_t){.end = c->out_len, .cmd = cmd, .counted = counted};
}

static void s_backlog_push(s_conn_t *c, const uint8_t *bytes, size_t len)
{
    if (c->nbacklog == c->cap_backlog) {
        c->cap_backlog = c->cap_backlog ? c->cap_backlog * 2 : 64;
        c->backlog = realloc(c->backlog, c->cap_backlog * sizeof *c->backlog);
        c->backlog_len = realloc(c->backlog_len, c->cap_backlog * sizeof *c->backlog_len);
        if (!c->backlog || !c->backlog_len)
            abort();
    }
    c->backlog[c->nbacklog] = malloc(len);
    if (!c->backlog[c->nbacklog])
        abort();
    memcpy(c->backlog[c->nbacklog], bytes, len);
    c->backlog_len[c->nbacklog++] = len;
}

/* Drops what is queued but unwritten (the connection is gone) and closes. */
static void s_disconnect(s_conn_t *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->out_len = c->written = 0;
    c->npend = 0;
}

/* The link is gone (refused, reset, closed, or a reply overdue). A store-and-forward truck
 * puts what was in flight back to waiting and tries again after its backoff (200 ms doubling to
 * 2 s, back to 200 ms once a login is answered); the others try again a second later. */
static void s_link_down(s_conn_t *c)
{
    s_disconnect(c);
    c->state = S_OFF;
    if (!c->store) {
        c->reconnect_at = s_mono() + 1;
        return;
    }
    vem_sim_store_requeue(c->store);
    c->logged_in = false;
    c->reconnect_at = s_mono() + c->backoff;
    c->backoff = c->backoff * 2 < 2 ? c->backoff * 2 : 2;
}

static void s_connect(s_sim_t *sim, s_conn_t *c)
{
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        sim->connect_failures++;
        return;
    }
    c->connect_at = s_mono();
    int rc = connect(c->fd, (struct sockaddr *)&sim->addr, sizeof sim->addr);
    if (rc == 0 || errno == EINPROGRESS) {
        c->state = S_CONNECTING;
    } else {
        sim->connect_failures++;
        if (c->store) {
            s_link_down(c);
            return;
        }
        close(c->fd); /* what was queued while offline stays queued */
        c->fd = -1;
        c->state = S_OFF;
        c->reconnect_at = s_mono() + 1;
    }
}

static void s_account(s_sim_t *sim, s_conn_t *c)
{
    size_t done = 0;
    while (done < c->npend && c->pend[done].end <= c->written) {
        if (c->pend[done].counted) {
            c->sent[c->pend[done].cmd]++;
            if (c->kind == 1)
                sim->good_malformed++;
        }
        done++;
    }
    if (done) {
        memmove(c->pend, c->pend + done, (c->npend - done) * sizeof *c->pend);
        c->npend -= done;
    }
    if (c->written == c->out_len) {
        c->written = c->out_len = 0;
        c->npend = 0;
    }
}

static void s_flush(s_sim_t *sim, s_conn_t *c)
{
    while (c->fd >= 0 && c->written < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->written, c->out_len - c->written, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                break;
            sim->resets++;
            s_link_down(c);
            return;
        }
        c->written += (size_t)n;
    }
    s_account(sim, c);
}

static bool s_has_double_hash(const uint8_t *p, size_t len)
{
    for (size_t i = 1; i + 1 < len; i++)
        if (p[i] == '#' && p[i + 1] == '#')
            return true;
    return false;
}

/* One tick of a truck or malformed connection: what it sends now. */
static void s_tick(s_sim_t *sim, s_conn_t *c, vem_hj1239_frame_t *scratch, double elapsed)
{
    uint8_t buf[S_MAX_FRAME];
    size_t len;
    if (c->ticks == 0 || (c->offline_done && c->login_seq == 1)) {
        len = vem_sim_login(scratch, c->model.vin, c->clock, ++c->login_seq, buf, sizeof buf);
        s_queue(c, buf, len, 0x01, true);
    }
    vem_sim_sample_t samples[VEM_HJ1239_MAX_BLOCKS];
    for (unsigned k = 0; k < sim->samples; k++)
        samples[k] = *vem_sim_truck_step(&c->model);
    bool offline = c->offline_planned && !c->offline_done && elapsed >= sim->duration / 3;
    len = vem_sim_data(scratch, &c->model, samples, (int)sim->samples, c->clock, ++c->seq, offline,
                       sim->hj1239, c->ticks % 60 == 0, buf, sizeof buf);
    if (sim->stations && c->kind == 0) { /* the roadside stations see the truck pass */
        size_t skip = sim->vin_prefix ? strlen(sim->vin_prefix) : 7;
        unsigned index = (unsigned)strtoul(c->model.vin + skip, NULL, 10);
        for (unsigned k = 0; k < sim->samples; k++)
            vem_sim_stations_truck(sim->stations, &c->model, index, &samples[k],
                                   c->clock + (int64_t)k);
    }
    c->clock += sim->samples;
    if (c->clock > sim->newest_t)
        sim->newest_t = c->clock;
    if (offline) {
        s_backlog_push(c, buf, len); /* kept as a re-send (0x03) for when the link is back */
    } else if (c->kind == 1 && c->ticks % 4 == 2 && !s_has_double_hash(buf, len)) {
        buf[len - 1] ^= 0x5A; /* wrong BCC */
        s_queue(c, buf, len, 0x02, false);
        sim->bad_checksum++;
    } else {
        s_queue(c, buf, len, 0x02, true);
    }
    if (c->kind == 1 && c->ticks % 4 == 1) {
        static const char garbage[] = "#noise from a bad modem\r\n";
        s_queue(c, (const uint8_t *)garbage, sizeof garbage - 1, 0, false);
        sim->garbage_runs++;
        sim->garbage_bytes += (long)(sizeof garbage - 1);
    }
    for (int i = 0; i < 3 && !offline && c->backlog_head < c->nbacklog; i++, c->backlog_head++) {
        s_queue(c, c->backlog[c->backlog_head], c->backlog_len[c->backlog_head], 0x03, true);
        free(c->backlog[c->backlog_head]);
        c->backlog[c->backlog_head] = NULL;
    }
    if ((c->model.misbehave & VEM_SIM_REMOVAL_ALARM) && !c->alarm_sent &&
        elapsed >= sim->duration / 2) {
        len = vem_sim_removal_alarm(scratch, &c->model, c->clock, c->seq, buf, sizeof buf);
        s_queue(c, buf, len, 0x06, true);
        c->alarm_sent = true;
    }
    c->ticks++;
}

static void s_finish(s_sim_t *sim, s_conn_t *c, vem_hj1239_frame_t *scratch)
{
    uint8_t buf[S_MAX_FRAME];
    /* Whatever is still in the backlog goes out before the logout. */
    for (; c->backlog_head < c->nbacklog; c->backlog_head++) {
        s_queue(c, c->backlog[c->backlog_head], c->backlog_len[c->backlog_head], 0x03, true);
        free(c->backlog[c->backlog_head]);
        c->backlog[c->backlog_head] = NULL;
    }
    size_t len = vem_sim_logout(scratch, c->model.vin, c->clock, c->login_seq, buf, sizeof buf);
    s_queue(c, buf, len, 0x04, true);
    if (c->kind == 1) { /* a frame cut short by the connection closing */
        vem_sim_sample_t sample = *vem_sim_truck_step(&c->model);
        len = vem_sim_data(scratch, &c->model, &sample, 1, c->clock, ++c->seq, false, sim->hj1239,
                           false, buf, sizeof buf);
        if (!s_has_double_hash(buf, len / 2)) {
            s_queue(c, buf, len / 2, 0, false);
            sim->truncated++;
        }
    }
    c->state = S_CLOSING;
}

/* ---- --await-replies: store and forward -------------------------------------------------- */

/* A new connection of a store-and-forward truck: it logs in first and sends data once the
 * login is answered. */
static void s_await_up(s_sim_t *sim, s_conn_t *c, vem_hj1239_frame_t *scratch)
{
    uint8_t buf[S_MAX_FRAME];
    if (c->login_seq > 0)
        sim->reconnects++;
    vem_reasm_reset(c->replies);
    size_t len = vem_sim_login(scratch, c->model.vin, c->clock, ++c->login_seq, buf, sizeof buf);
    s_queue(c, buf, len, VEM_HJ1239_CMD_LOGIN, true);
    c->login_sent_at = s_mono();
    c->logged_in = false;
}

/* One reply: a login answer opens the link for data, a data answer acknowledges its frame
 * (whether it answers the real-time frame or its re-sent copy), a logout answer ends the run. */
static void s_await_reply(s_sim_t *sim, s_conn_t *c, const vem_sim_reply_t *r)
{
    if (r->flag != 0x01 || strcmp(r->vin, c->model.vin) != 0) {
        sim->stray_replies++;
        return;
    }
    sim->replies++;
    switch (r->cmd) {
    case VEM_HJ1239_CMD_LOGIN:
        if (c->state == S_UP && !c->logged_in) {
            c->logged_in = true;
            c->backoff = 0.2;
            c->data_from = s_mono() + sim->login_pause;
        }
        break;
    case VEM_HJ1239_CMD_REALTIME:
    case VEM_HJ1239_CMD_RESEND:
        if (vem_sim_store_ack(c->store, r->time)) {
            c->acked++;
            sim->acked++;
        } else {
            sim->duplicate_acks++;
        }
        break;
    case VEM_HJ1239_CMD_LOGOUT:
        c->logout_acked = c->state == S_CLOSING;
        break;
    default: /* removal alarm, time sync: nothing is kept for them */
        break;
    }
}

/* Bytes from vemd, cut into frames whatever the read boundaries were. */
static void s_await_replies(s_sim_t *sim, s_conn_t *c, const uint8_t *bytes, size_t len)
{
    vem_reasm_feed(c->replies, bytes, len);
    vem_reasm_event_t ev;
    while (vem_reasm_next(c->replies, &ev) != VEM_REASM_NEED_MORE) {
        vem_sim_reply_t reply;
        if (ev.kind == VEM_REASM_FRAME && vem_sim_reply_parse(ev.data, ev.len, &reply))
            s_await_reply(sim, c, &reply);
        else
            sim->reply_garbage++;
    }
}

/* One tick of a store-and-forward truck: it collects a frame whether or not it has a link, keeps
 * it, and sends it at once (as real-time data) when logged in and past --login-pause. */
static void s_await_tick(s_sim_t *sim, s_conn_t *c, vem_hj1239_frame_t *scratch, double now)
{
    uint8_t buf[S_MAX_FRAME];
    vem_sim_sample_t samples[VEM_HJ1239_MAX_BLOCKS];
    for (unsigned k = 0; k < sim->samples; k++)
        samples[k] = *vem_sim_truck_step(&c->model);
    int64_t t = c->clock + (int64_t)sim->samples - 1; /* the frame's time: its last sample's */
    size_t len = vem_sim_data(scratch, &c->model, samples, (int)sim->samples, c->clock, ++c->seq,
                              false, true, c->ticks % 60 == 0, buf, sizeof buf);
    c->clock += sim->samples;
    c->ticks++;
    if (len == 0 || vem_sim_store_add(c->store, t, buf, len) != 0)
        abort(); /* the encoder's bound or a time going backwards: a bug here */
    c->generated++;
    sim->generated++;
    if (c->state == S_UP && c->logged_in && now >= c->data_from) {
        s_queue(c, buf, len, VEM_HJ1239_CMD_REALTIME, true);
        vem_sim_store_sent(c->store, t, now);
    }
}

/* Everything a store-and-forward truck does in one pass of the loop but reading replies. */
static void s_await_step(s_sim_t *sim, s_conn_t *c, vem_hj1239_frame_t *scratch, double start,
                         double now)
{
    double elapsed = now - start, period = 1.0 / sim->rate;
    bool collecting = elapsed < sim->duration;
    bool give_up = elapsed >= sim->duration + sim->settle;
    bool offline = c->offline_planned && elapsed >= sim->duration / 3 &&
                   elapsed < 2 * sim->duration / 3 && collecting;
    if (collecting && now >= c->next_tick) {
        s_await_tick(sim, c, scratch, now);
        c->next_tick += period;
    }
    bool finished = !collecting && (vem_sim_store_held(c->store) == 0 || give_up);
    if (offline && c->state != S_OFF) { /* the link goes away for the middle third */
        s_link_down(c);
        c->reconnect_at = start + 2 * sim->duration / 3;
    }
    switch (c->state) {
    case S_OFF:
        if (finished)
            c->state = S_DONE; /* no link at the end: what is held is reported */
        else if (!offline && now >= c->reconnect_at)
            s_connect(sim, c);
        break;
    case S_CONNECTING:
        if (now - c->connect_at > sim->reply_timeout) {
            sim->connect_failures++;
            s_link_down(c);
        }
        break;
    case S_UP: {
        double oldest = vem_sim_store_oldest_sent(c->store);
        if ((!c->logged_in && now - c->login_sent_at > sim->reply_timeout) ||
            (oldest >= 0 && now - oldest > sim->reply_timeout)) {
            sim->reply_timeouts++; /* a terminal gives up on a silent platform and reconnects */
            s_link_down(c);
            break;
        }
        if (!c->logged_in || now < c->data_from)
            break;
        if ((c->model.misbehave & VEM_SIM_REMOVAL_ALARM) && !c->alarm_sent &&
            elapsed >= sim->duration / 2) {
            uint8_t buf[S_MAX_FRAME];
            size_t len =
                vem_sim_removal_alarm(scratch, &c->model, c->clock, c->seq, buf, sizeof buf);
            s_queue(c, buf, len, VEM_HJ1239_CMD_REMOVAL_ALARM, true);
            c->alarm_sent = true;
        }
        int64_t t;
        size_t len;
        const uint8_t *held;
        while (vem_sim_store_in_flight(c->store) < sim->window &&
               (held = vem_sim_store_next(c->store, &t, &len))) {
            uint8_t buf[S_MAX_FRAME];
            memcpy(buf, held, len);
            vem_sim_as_resend(buf, len);
            s_queue(c, buf, len, VEM_HJ1239_CMD_RESEND, true);
            vem_sim_store_sent(c->store, t, now);
        }
        if (finished) {
            uint8_t buf[S_MAX_FRAME];
            len = vem_sim_logout(scratch, c->model.vin, c->clock, c->login_seq, buf, sizeof buf);
            s_queue(c, buf, len, VEM_HJ1239_CMD_LOGOUT, true);
            c->logout_sent_at = now;
            c->state = S_CLOSING;
        }
        break;
    }
    case S_CLOSING:
        if (c->logout_acked || now - c->logout_sent_at > sim->reply_timeout) {
            s_disconnect(c);
            c->state = S_DONE;
        }
        break;
    case S_DONE:
        break;
    }
}

/* Cumulative generated and acknowledged frames, recorded at the first pass of the loop in each
 * whole second of the run, so a test can see whether acknowledgements kept coming. */
static void s_timeline(s_sim_t *sim, double elapsed)
{
    if (!sim->await)
        return;
    while (sim->ntimeline <= (size_t)elapsed) {
        if (sim->ntimeline == sim->cap_timeline) {
            sim->cap_timeline = sim->cap_timeline ? sim->cap_timeline * 2 : 128;
            sim->timeline = realloc(sim->timeline, 2 * sim->cap_timeline * sizeof *sim->timeline);
            if (!sim->timeline)
                abort();
        }
        sim->timeline[2 * sim->ntimeline] = sim->generated;
        sim->timeline[2 * sim->ntimeline + 1] = sim->acked;
        sim->ntimeline++;
    }
}

static int s_usage(FILE *out, int rc)
{
    fprintf(out, "usage: vem-sim [--connect HOST:PORT] [--trucks N] [--duration S] [--rate R]\n"
                 "               [--samples K] [--protocol hj1239|gb17691] [--seed S]\n"
                 "               [--start-time EPOCH] [--misbehave NAME:COUNT]... [--offline PCT]\n"
                 "               [--malformed N] [--idle N] [--truth FILE] [--vin-prefix P]\n"
                 "               [--quiet] [--await-replies [--settle S] [--reply-timeout S]\n"
                 "               [--window N] [--login-pause S]] [--stations N\n"
                 "               [--stations-endpoint E]\n"
                 "               [--stations-key FILE.key --stations-server-key FILE.pub]]\n"
                 "scenarios: mil_on urea_empty scr_removed frozen_nox removal_alarm\n");
    return rc;
}

static int s_parse(s_sim_t *sim, int argc, char **argv)
{
    static const struct option options[] = {{"connect", required_argument, NULL, 'c'},
                                            {"trucks", required_argument, NULL, 'n'},
                                            {"duration", required_argument, NULL, 'd'},
                                            {"rate", required_argument, NULL, 'r'},
                                            {"samples", required_argument, NULL, 'k'},
                                            {"protocol", required_argument, NULL, 'p'},
                                            {"seed", required_argument, NULL, 's'},
                                            {"start-time", required_argument, NULL, 't'},
                                            {"misbehave", required_argument, NULL, 'm'},
                                            {"offline", required_argument, NULL, 'o'},
                                            {"malformed", required_argument, NULL, 'b'},
                                            {"idle", required_argument, NULL, 'i'},
                                            {"truth", required_argument, NULL, 'T'},
                                            {"vin-prefix", required_argument, NULL, 'V'},
                                            {"stations", required_argument, NULL, 'x'},
                                            {"stations-endpoint", required_argument, NULL, 'X'},
                                            {"stations-key", required_argument, NULL, 'K'},
                                            {"stations-server-key", required_argument, NULL, 'Z'},
                                            {"quiet", no_argument, NULL, 'q'},
                                            {"await-replies", no_argument, NULL, 'A'},
                                            {"settle", required_argument, NULL, 'S'},
                                            {"reply-timeout", required_argument, NULL, 'R'},
                                            {"window", required_argument, NULL, 'W'},
                                            {"login-pause", required_argument, NULL, 'P'},
                                            {"registry", required_argument, NULL, 'G'},
                                            {"help", no_argument, NULL, 'h'},
                                            {NULL, 0, NULL, 0}};
    const char *connect_to = "127.0.0.1:7611";
    unsigned nstations = 0;
    const char *stations_endpoint = "tcp://127.0.0.1:7613";
    const char *stations_key = NULL, *stations_server_key = NULL; /* CURVE (curve.h) */
    int opt;
    while ((opt = getopt_long(argc, argv, "c:n:d:r:k:p:s:t:m:o:b:i:T:V:x:X:K:Z:qAS:R:W:P:G:h",
                              options, NULL)) != -1) {
        switch (opt) {
        case 'c':
            connect_to = optarg;
            break;
        case 'n':
            sim->trucks = (unsigned)atoi(optarg);
            break;
        case 'd':
            sim->duration = atof(optarg);
            break;
        case 'G':
            sim->registry = optarg;
            break;
        case 'r':
            sim->rate = atof(optarg);
            break;
        case 'k':
            sim->samples = (unsigned)atoi(optarg);
            break;
        case 'p':
            if (strcmp(optarg, "hj1239") != 0 && strcmp(optarg, "gb17691") != 0)
                return s_usage(stderr, 2);
            sim->hj1239 = strcmp(optarg, "hj1239") == 0;
            break;
        case 's':
            sim->seed = strtoull(optarg, NULL, 10);
            break;
        case 'x':
            nstations = (unsigned)atoi(optarg);
            break;
        case 'X':
            stations_endpoint = optarg;
            break;
        case 'K':
            stations_key = optarg;
            break;
        case 'Z':
            stations_server_key = optarg;
            break;
        case 'V':
            if (strlen(optarg) < 1 || strlen(optarg) > 12 ||
                strspn(optarg, "ABCDEFGHJKLMNPRSTUVWXYZ0123456789") != strlen(optarg))
                return s_usage(stderr, 2);
            sim->vin_prefix = optarg;
            break;
        case 't':
            sim->start_time = strtoll(optarg, NULL, 10);
            break;
        case 'm': {
            const char *colon = strchr(optarg, ':');
            size_t i = 0;
            while (i < 5 && (!colon || strncmp(optarg, s_scenarios[i], (size_t)(colon - optarg)) ||
                             strlen(s_scenarios[i]) != (size_t)(colon - optarg)))
                i++;
            if (i == 5) {
                fprintf(stderr, "vem-sim: unknown scenario in '%s'\n", optarg);
                return 2;
            }
            sim->misbehave_count[i] += (unsigned)atoi(colon + 1);
            break;
        }
        case 'o':
            sim->offline_pct = (unsigned)atoi(optarg);
            break;
        case 'b':
            sim->malformed = (unsigned)atoi(optarg);
            break;
        case 'i':
            sim->idle = (unsigned)atoi(optarg);
            break;
        case 'T':
            sim->truth = optarg;
            break;
        case 'q':
            sim->quiet = true;
            break;
        case 'A':
            sim->await = true;
            break;
        case 'S':
            sim->settle = atof(optarg);
            break;
        case 'R':
            sim->reply_timeout = atof(optarg);
            break;
        case 'W':
            sim->window = (unsigned)atoi(optarg);
            break;
        case 'P':
            sim->login_pause = atof(optarg);
            break;
        case 'h':
            return s_usage(stdout, 0) - 1;
        default:
            return s_usage(stderr, 2);
        }
    }
    char host[64];
    int port;
    if (optind != argc || sscanf(connect_to, "%63[^:]:%d", host, &port) != 2 ||
        inet_pton(AF_INET, host, &sim->addr.sin_addr) != 1 || port <= 0 || port > 65535 ||
        sim->rate <= 0 || sim->samples < 1 || sim->samples > 60 || sim->duration <= 0 ||
        sim->settle < 0 || sim->reply_timeout <= 0 || sim->window < 1 || sim->login_pause < 0)
        return s_usage(stderr, 2);
    if (sim->await && !sim->hj1239) {
        fprintf(stderr, "vem-sim: --await-replies needs --protocol hj1239 (GB 17691 platforms do "
                        "not reply to data)\n");
        return 2;
    }
    sim->addr.sin_family = AF_INET;
    sim->addr.sin_port = htons((uint16_t)port);
    if (nstations && !(sim->stations = vem_sim_stations_new(stations_endpoint, nstations, sim->seed,
                                                            stations_key, stations_server_key)))
        return 2;
    return 0;
}

/* The store-and-forward part of the truth: totals, link trouble and the timeline. */
static json_t *s_await_truth(const s_sim_t *sim, s_conn_t *conns, size_t nconns)
{
    long held = 0;
    for (size_t i = 0; i < nconns; i++)
        if (conns[i].store)
            held += (long)vem_sim_store_held(conns[i].store);
    json_t *generated = json_array(), *acked = json_array();
    for (size_t i = 0; i < sim->ntimeline; i++) {
        json_array_append_new(generated, json_integer(sim->timeline[2 * i]));
        json_array_append_new(acked, json_integer(sim->timeline[2 * i + 1]));
    }
    return json_pack(
        "{s:I, s:I, s:I, s:I, s:I, s:f, s:f, s:i, s:I, s:I, s:I, s:I, s:I, s:I, "
        "s:{s:o, s:o}}",
        "generated_frames", (json_int_t)sim->generated, "generated_samples",
        (json_int_t)sim->generated * sim->samples, "acknowledged_frames", (json_int_t)sim->acked,
        "acknowledged_samples", (json_int_t)sim->acked * sim->samples, "unacknowledged_frames",
        (json_int_t)held, "settle_s", sim->settle, "reply_timeout_s", sim->reply_timeout, "window",
        (int)sim->window, "replies", (json_int_t)sim->replies, "duplicate_acks",
        (json_int_t)sim->duplicate_acks, "stray_replies", (json_int_t)sim->stray_replies,
        "reply_garbage", (json_int_t)sim->reply_garbage, "reconnects", (json_int_t)sim->reconnects,
        "reply_timeouts", (json_int_t)sim->reply_timeouts, "by_second", "generated", generated,
        "acknowledged", acked);
}

static int s_write_truth(const s_sim_t *sim, s_conn_t *conns, size_t nconns)
{
    json_t *by_vehicle = json_object(), *misbehaving = json_object();
    static const char *const names[5] = {NULL, "login", "realtime", "resend", "logout"};
    long frames = 0, samples = 0;
    for (size_t i = 0; i < nconns; i++) {
        s_conn_t *c = &conns[i];
        if (c->kind == 2)
            continue;
        json_t *counts = json_object();
        for (int cmd = 1; cmd <= 4; cmd++)
            json_object_set_new(counts, names[cmd], json_integer(c->sent[cmd]));
        if (c->sent[6])
            json_object_set_new(counts, "removal_alarm", json_integer(c->sent[6]));
        if (c->store) {
            long held = (long)vem_sim_store_held(c->store);
            json_object_set_new(counts, "generated", json_integer(c->generated));
            json_object_set_new(counts, "generated_samples",
                                json_integer((json_int_t)c->generated * sim->samples));
            json_object_set_new(counts, "acknowledged", json_integer(c->acked));
            json_object_set_new(counts, "acknowledged_samples",
                                json_integer((json_int_t)c->acked * sim->samples));
            json_object_set_new(counts, "unacknowledged", json_integer(held));
        }
        json_object_set_new(by_vehicle, c->model.vin, counts);
        for (int cmd = 1; cmd <= 8; cmd++)
            frames += c->sent[cmd];
        samples += (c->sent[2] + c->sent[3]) * (long)sim->samples;
        json_t *bad = json_array();
        for (int b = 0; b < 5; b++)
            if (c->model.misbehave & (1u << b))
                json_array_append_new(bad, json_string(s_scenarios[b]));
        if (json_array_size(bad))
            json_object_set_new(misbehaving, c->model.vin, bad);
        else
            json_decref(bad);
    }
    json_t *truth = json_pack(
        "{s:i, s:s, s:I, s:i, s:I, s:I, s:o, s:o, s:{s:i, s:I, s:I, s:I, s:I, s:I}, s:i, s:I, "
        "s:{s:I, s:I}}",
        "trucks", (int)sim->trucks, "protocol", sim->hj1239 ? "hj1239" : "gb17691", "seed",
        (json_int_t)sim->seed, "samples_per_frame", (int)sim->samples, "frames_sent",
        (json_int_t)frames, "samples_sent", (json_int_t)samples, "by_vehicle", by_vehicle,
        "misbehaving", misbehaving, "malformed", "connections", (int)sim->malformed, "good_frames",
        (json_int_t)sim->good_malformed, "bad_checksum", (json_int_t)sim->bad_checksum, "truncated",
        (json_int_t)sim->truncated, "garbage_runs", (json_int_t)sim->garbage_runs, "garbage_bytes",
        (json_int_t)sim->garbage_bytes, "idle_connections", (int)sim->idle, "replies_received",
        (json_int_t)(sim->replies_bytes / 31), "errors", "connect_failures",
        (json_int_t)sim->connect_failures, "resets", (json_int_t)sim->resets);
    if (sim->await)
        json_object_set_new(truth, "await_replies", s_await_truth(sim, conns, nconns));
    if (sim->stations)
        json_object_set_new(truth, "stations", vem_sim_stations_truth(sim->stations));
    int rc = sim->truth ? json_dump_file(truth, sim->truth, JSON_INDENT(2))
                        : json_dumpf(truth, stdout, JSON_INDENT(2));
    if (!sim->truth)
        putchar('\n');
    json_decref(truth);
    return rc;
}

/* The trucks' VIN, plate, region and engine figures as a `vemctl vehicles import` CSV. */
static int s_write_registry(const s_sim_t *sim)
{
    FILE *f = fopen(sim->registry, "w");
    if (!f) {
        fprintf(stderr, "vem-sim: %s: %s\n", sim->registry, strerror(errno));
        return 1;
    }
    fprintf(f, "vin,plate,plate_color,fuel,region_code,ref_torque_nm,rated_power_kw,"
               "whtc_work_kwh\n");
    for (unsigned i = 0; i < sim->trucks; i++) {
        vem_sim_truck_t t;
        vem_sim_truck_init(&t, sim->seed, i, S_LON0, S_LAT0, 0);
        if (sim->vin_prefix)
            snprintf(t.vin, sizeof t.vin, "%s%0*u", sim->vin_prefix,
                     (int)(17 - strlen(sim->vin_prefix)), i);
        bool shanghai = i % 2;
        fprintf(f, "%s,%sD%05u,yellow,diesel,%s,%.1f,%.1f,%.2f\n", t.vin, shanghai ? "沪" : "京", i,
                shanghai ? "310115" : "110105", t.ref_torque_nm, t.rated_power_kw,
                0.09 * t.rated_power_kw);
    }
    if (fclose(f) != 0) {
        fprintf(stderr, "vem-sim: %s: %s\n", sim->registry, strerror(errno));
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    s_sim_t sim = {.trucks = 10,
                   .duration = 30,
                   .rate = 1,
                   .samples = 10,
                   .hj1239 = true,
                   .seed = 1,
                   .settle = 30,
                   .reply_timeout = 5,
                   .window = 16};
    sim.start_time = (int64_t)time(NULL);
    int rc = s_parse(&sim, argc, argv);
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    signal(SIGPIPE, SIG_IGN);
    if (sim.registry)
        return s_write_registry(&sim);

    size_t nconns = sim.trucks + sim.malformed + sim.idle;
    s_conn_t *conns = calloc(nconns ? nconns : 1, sizeof *conns);
    vem_hj1239_frame_t *scratch = malloc(sizeof *scratch);
    struct pollfd *pfds = calloc(nconns ? nconns : 1, sizeof *pfds);
    if (!conns || !scratch || !pfds)
        abort();
    double start = s_mono(), period = 1.0 / sim.rate;
    for (size_t i = 0; i < nconns; i++) {
        s_conn_t *c = &conns[i];
        c->fd = -1;
        c->kind = i < sim.trucks ? 0 : i < sim.trucks + sim.malformed ? 1 : 2;
        /* Each scenario takes the next trucks that have none yet, in index order. */
        uint32_t bits = 0;
        for (int b = 0, first = 0; b < 5 && c->kind == 0; b++) {
            if (i >= (size_t)first && i < (size_t)first + sim.misbehave_count[b])
                bits |= 1u << b;
            first += (int)sim.misbehave_count[b];
        }
        vem_sim_truck_init(&c->model, sim.seed, (unsigned)i, S_LON0, S_LAT0, bits);
        if (sim.vin_prefix)
            snprintf(c->model.vin, sizeof c->model.vin, "%s%0*u", sim.vin_prefix,
                     (int)(17 - strlen(sim.vin_prefix)), (unsigned)i);
        if (c->kind == 1)
            memcpy(c->model.vin, "LVEMBAD", 7);
        if (c->kind == 2)
            c->model.vin[0] = '\0';
        /* the last trucks go offline, so the misbehaving ones (the first) keep their spans */
        c->offline_planned =
            c->kind == 0 && (sim.trucks - 1 - i) * 100 < (size_t)sim.offline_pct * sim.trucks;
        c->clock = sim.start_time;
        c->next_tick = start + period * (double)i / (double)(nconns ? nconns : 1);
        if (sim.await && c->kind == 0) {
            c->store = vem_sim_store_new();
            c->replies = vem_reasm_new(0);
            if (!c->replies)
                abort();
            c->backoff = 0.2;
        }
        s_connect(&sim, c);
    }

    double last_progress = start;
    for (;;) {
        double now = s_mono(), elapsed = now - start;
        size_t active = 0;
        for (size_t i = 0; i < nconns; i++) {
            s_conn_t *c = &conns[i];
            if (c->state == S_DONE)
                continue;
            active++;
            if (c->kind == 2) { /* idle: hold the connection until the end */
                if (elapsed >= sim.duration + 2) {
                    s_disconnect(c);
                    c->state = S_DONE;
                }
                continue;
            }
            if (c->store) {
                s_await_step(&sim, c, scratch, start, now);
                if (c->state == S_UP || c->state == S_CLOSING)
                    s_flush(&sim, c);
                continue;
            }
            if (c->state == S_OFF && now >= c->reconnect_at && elapsed < sim.duration &&
                !(c->offline_planned && !c->offline_done && elapsed >= sim.duration / 3 &&
                  elapsed < 2 * sim.duration / 3))
                s_connect(&sim, c);
            if (c->state == S_UP && c->offline_planned && !c->offline_done &&
                elapsed >= sim.duration / 3 && c->written == c->out_len) {
                s_disconnect(c); /* the link goes away for the middle third of the run */
                c->state = S_OFF;
                c->reconnect_at = start + 2 * sim.duration / 3;
            }
            if (c->offline_planned && !c->offline_done && elapsed >= 2 * sim.duration / 3) {
                c->offline_done = true;
                c->login_seq = 1; /* the next tick logs in again */
            }
            bool may_tick = c->state == S_UP || (c->state == S_OFF && c->offline_planned &&
                                                 !c->offline_done && elapsed >= sim.duration / 3);
            if (may_tick && now >= c->next_tick && elapsed < sim.duration) {
                s_tick(&sim, c, scratch, elapsed);
                c->next_tick += period;
            }
            if (c->state == S_UP && elapsed >= sim.duration && !c->logged_out) {
                s_finish(&sim, c, scratch);
                c->logged_out = true;
            }
            if (c->state == S_UP || c->state == S_CLOSING)
                s_flush(&sim, c);
            if (c->state == S_CLOSING && c->written == c->out_len) {
                s_disconnect(c);
                c->state = S_DONE;
            }
            if (c->state == S_OFF && elapsed >= sim.duration + 10)
                c->state = S_DONE; /* could not reconnect in time: reported in errors */
        }
        if (sim.stations)
            vem_sim_stations_poll(sim.stations, now, elapsed < sim.duration ? sim.newest_t : 0);
        if (active == 0)
            break;
        s_timeline(&sim, elapsed);
        if (!sim.quiet && now - last_progress >= 5) {
            long frames = 0;
            for (size_t i = 0; i < nconns; i++)
                for (int cmd = 1; cmd <= 8; cmd++)
                    frames += conns[i].sent[cmd];
            fprintf(stderr, "vem-sim: %.0f s, %zu connections active, %ld frames sent", elapsed,
                    active, frames);
            if (sim.await)
                fprintf(stderr, ", %ld of %ld generated acknowledged", sim.acked, sim.generated);
            fputc('\n', stderr);
            last_progress = now;
        }
        size_t n = 0;
        for (size_t i = 0; i < nconns; i++) {
            s_conn_t *c = &conns[i];
            if (c->fd < 0)
                continue;
            pfds[n].fd = c->fd;
            pfds[n].events =
                POLLIN | (c->state == S_CONNECTING || c->written < c->out_len ? POLLOUT : 0);
            pfds[n].revents = 0;
            n++;
        }
        poll(pfds, n, 20);
        for (size_t i = 0, k = 0; i < nconns && k < n; i++) {
            s_conn_t *c = &conns[i];
            if (c->fd < 0 || pfds[k].fd != c->fd)
                continue;
            short ev = pfds[k++].revents;
            if (c->state == S_CONNECTING && (ev & (POLLOUT | POLLERR | POLLHUP))) {
                int err = 0;
                socklen_t len = sizeof err;
                getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
                if (err) {
                    sim.connect_failures++;
                    s_link_down(c);
                    continue;
                }
                c->state = S_UP;
                if (c->store)
                    s_await_up(&sim, c, scratch);
            }
            if (ev & POLLIN) {
                uint8_t buf[4096];
                ssize_t got = recv(c->fd, buf, sizeof buf, 0);
                if (got > 0) {
                    sim.replies_bytes += got;
                    if (c->store)
                        s_await_replies(&sim, c, buf, (size_t)got);
                } else if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
                    if (c->kind == 2) { /* the daemon closed an idle connection: expected */
                        s_disconnect(c);
                        c->state = S_DONE;
                        continue;
                    }
                    bool closing = c->state == S_CLOSING;
                    if (!closing)
                        sim.resets++;
                    s_link_down(c);
                    if (closing)
                        c->state = S_DONE;
                }
            }
        }
    }
    if (sim.stations)
        vem_sim_stations_finish(sim.stations, 5);
    rc = s_write_truth(&sim, conns, nconns) == 0 ? 0 : 1;
    vem_sim_stations_destroy(&sim.stations);
    if (!sim.quiet)
        fprintf(stderr, "vem-sim: done in %.1f s\n", s_mono() - start);
    for (size_t i = 0; i < nconns; i++) {
        for (size_t b = 0; b < conns[i].nbacklog; b++)
            free(conns[i].backlog[b]);
        free(conns[i].backlog);
        free(conns[i].backlog_len);
        free(conns[i].out);
        free(conns[i].pend);
        vem_sim_store_destroy(&conns[i].store);
        vem_reasm_destroy(&conns[i].replies);
    }
    free(sim.timeline);
    free(conns);
    free(pfds);
    free(scratch);
    return rc;
}
