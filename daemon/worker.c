/* worker — decode, session state, counting; see worker.h.
 *
 * Thread: one actor per worker. Owns: its PULL and REP sockets, its session table, one
 * decoded-frame buffer reused for every input. Metric handles are looked up once at start,
 * so the per-frame path only touches atomics. */
#include "worker.h"

#include "clock.h"
#include "completeness.h"
#include "frame_json.h"
#include "actor.h"
#include "hj1239.h"
#include "ingest.h"
#include "keys.h"
#include "log.h"
#include "pipeline.h"
#include "plates.h"
#include "records.h"
#include "registry.h"
#include "rsd.h"
#include "pgload.h"
#include "rsdhist.h"
#include "rules.h"
#include "session.h"
#include "sm2.h"
#include "spool.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#define S_LAYOUTS 8 /* combinations of the VEM_HJ1239_LAYOUT_* flags */

/* The vehicles' rule counts that say where samples and snapshots went, as counters. */
static const char s_samples_help[] =
    "1 Hz samples the rules judged (judged), of them on the back-fill track for being older "
    "than the live trip or late for a hole (backfill); held after a hole in the live trip for "
    "its re-sent data and judged later (held); at a second judged or held already, not judged "
    "again (copy).";
static const char s_aside_help[] =
    "What the rules could not use: OBD snapshots older than the newest seen, not used for DTCs "
    "and the OBD VIN (late_obd); MIL snapshots that could not be placed (late_mil); trouble "
    "codes not judged while a vehicle's DTC set was full (dtcs_unjudged); roadside NO "
    "exceedances with no OBD sample within rules.fusion_match_s (fusion_unmatched); roadside "
    "readings too old for a chain that let readings go (readings_late).";
#define S_SAMPLES(path, member)                                                                    \
    {                                                                                              \
        "vem_rules_samples_total", "path", path, s_samples_help,                                   \
            offsetof(vem_rules_counts_t, member)                                                   \
    }
#define S_ASIDE(member)                                                                            \
    {                                                                                              \
        "vem_rules_set_aside_total", "kind", #member, s_aside_help,                                \
            offsetof(vem_rules_counts_t, member)                                                   \
    }
static const struct {
    const char *name, *label, *value, *help;
    size_t offset;
} s_rule_counts[] = {
    S_SAMPLES("judged", samples),
    S_SAMPLES("backfill", late_samples),
    S_SAMPLES("held", held_samples),
    S_SAMPLES("copy", copy_samples),
    S_ASIDE(late_obd),
    S_ASIDE(late_mil),
    S_ASIDE(dtcs_unjudged),
    S_ASIDE(fusion_unmatched),
    S_ASIDE(readings_late),
};

#define S_RULE_COUNTS (sizeof s_rule_counts / sizeof *s_rule_counts)

typedef struct {
    vem_worker_args_t *args;
    vem_sessions_t *sessions;
    vem_plates_t *plates; /* rule states of vehicles known only by plate */
    size_t station_vins;  /* rule states a station's VIN unknown to the registry made (at most
                           * args->max_plates): s_vstate_t.budget points here */
    vem_hj1239_frame_t *frame;
    void *acks;        /* PUSH to ingest: the last seq processed, so the spool can be trimmed */
    uint64_t last_seq; /* every input routed here up to this seq is processed */
    uint64_t acked;    /* the mark ingest last got */
    void **sinks;      /* PUSH to each sink */
    vem_records_t out; /* records of the inputs processed since the last emit */
    vem_registry_t *registry; /* vehicle registry snapshot (one reference), or NULL */
    bool judge;               /* the rules run (rules.enable) */
    vem_rules_config_t rules; /* this worker's copy: main sends a new one on SIGHUP */
    uint64_t rules_mark;      /* inputs routed here up to it have been judged (or skipped) */
    /* the next verdict's place among those emitted since the last input began (its own, then
     * the turns of the clock and stored history after it, which travel as its records:
     * s_last_input): with that input's seq and receipt, the order of the emissions of one id,
     * the latest being the verdict as it now stands (schema/0016_merge_by_input.sql) */
    int64_t emission;
    int64_t last_rx_us; /* receipt of the last input judged (at start: of the checkpoint's) */
    /* checkpoints */
    vem_ckpt_writer_t *pending; /* written, waiting for the sinks to hold its records */
    uint64_t pending_through;
    uint64_t ckpt_through;  /* through of the last checkpoint put in place */
    int64_t ckpt_due_us;    /* monotonic time of the next checkpoint */
    bool swept;             /* the silence sweep emitted verdicts since the last checkpoint */
    bool pending_next;      /* the pending checkpoint also waits for the next input ... */
    uint64_t pending_after; /* ... this one (0: not seen yet), whose records follow the sweep's */
    /* silence */
    int64_t sweep_due_ms;          /* monotonic time of the next silence sweep */
    int64_t newest_rx_us;          /* newest receipt time among the inputs processed ... */
    int64_t newest_paused_us;      /* ... and the highest paused total they carried */
    int64_t last_input_ms;         /* monotonic time of the last input processed */
    vem_day_counts_t *day_wait;    /* a day's completeness waiting for the first input */
    PGconn *hist_conn;             /* for the roadside history of states made later (rsdhist.h) */
    int64_t hist_used_ms;          /* when it last answered (monotonic) */
    int64_t hist_off_until_ms;     /* after a failed load: none before this (monotonic) */
    struct s_hist_wait *hist_wait; /* states judged without their history, to load it for */
    size_t hist_nwait;
    uint8_t *ckpt_buf;
    size_t ckpt_cap;
    /* metric handles */
    vem_counter_t *frames[VEM_SESSION_CMDS][S_LAYOUTS + 1]; /* [cmd][layout or S_LAYOUTS] */
    vem_counter_t *errors[VEM_HJ1239_STATUS_COUNT];
    vem_counter_t *bad_vin; /* vem_errors_total{class="bad_vin"}: the daemon's own class */
    /* vem_errors_total of the signature and binding classes, VEM_RECORD_CLASS_BAD_SIGNATURE on */
    vem_counter_t *sig_errors[VEM_RECORD_CLASS_UNVERIFIED - VEM_RECORD_CLASS_BAD_SIGNATURE];
    vem_counter_t *sig_checks[4]; /* vem_signature_checks_total{result}: vem_record_sig_t - 1 */
    vem_counter_t *unverified;    /* frames stored although not verified (flag) */
    vem_counter_t *key_conflicts; /* replayed activations the key registry could not take */
    vem_counter_t *act_limit;     /* vem_errors_total{class="too_many_activations"} */
    vem_counter_t *key_reused;    /* vem_errors_total{class="key_reused"} */
    vem_counter_t *sess_evicted, *sess_expired, *sess_refused;
    vem_gauge_t *sessions_now;
    int64_t expire_due_ms; /* monotonic time of the next idle-session sweep */
    vem_counter_t *samples, *duplicates, *resent, *gaps, *vendor, *unregistered, *verdicts;
    vem_counter_t *ckpts, *ckpt_errors, *restored, *restore_errors;
    vem_counter_t *readings, *readings_invalid, *plates_full;
    vem_gauge_t *ckpt_bytes, *ckpt_vehicles;
    vem_gauge_t *state_bytes; /* rule state held, summed at each silence sweep */
    vem_counter_t *released;  /* idle rule states let go */
    vem_counter_t *hist_plates, *hist_readings, *hist_failures, *hist_late, *hist_dropped;
    vem_counter_t *rule_counts[S_RULE_COUNTS];
    vem_histogram_t *latency;
} s_worker_t;

/* What calls into the rules added to the vehicles' counts (vem_rules_counts_add). */
static void s_rule_counts_add(s_worker_t *w, const vem_rules_counts_t *added)
{
    for (size_t k = 0; k < S_RULE_COUNTS; k++) {
        uint64_t d;
        memcpy(&d, (const char *)added + s_rule_counts[k].offset, sizeof d);
        if (d)
            vem_counter_add(w->rule_counts[k], d);
    }
}

static void s_register(s_worker_t *w, vem_metrics_t *m)
{
    for (unsigned cmd = 1; cmd < VEM_SESSION_CMDS; cmd++) {
        for (unsigned layout = 0; layout <= S_LAYOUTS; layout++) {
            bool sampled = cmd == VEM_HJ1239_CMD_REALTIME || cmd == VEM_HJ1239_CMD_RESEND;
            if (sampled != (layout < S_LAYOUTS))
                continue;
            const char *labels[] = {"cmd", vem_hj1239_cmd_name((uint8_t)cmd), "dialect",
                                    sampled ? vem_hj1239_dialect_name((uint8_t)layout) : "none",
                                    NULL};
            w->frames[cmd][layout] = vem_metrics_counter(
                m, "vem_frames_total", "Frames decoded, by command and dialect.", labels);
        }
    }
    for (unsigned st = 1; st < VEM_HJ1239_STATUS_COUNT; st++) {
        const char *labels[] = {"class", vem_hj1239_status_name((vem_hj1239_status_t)st), NULL};
        w->errors[st] = vem_metrics_counter(
            m, "vem_errors_total", "Inputs rejected, by error class (quarantined).", labels);
    }
    const char *bad_vin[] = {"class", vem_records_class_name(VEM_RECORD_CLASS_BAD_VIN), NULL};
    w->bad_vin = vem_metrics_counter(m, "vem_errors_total",
                                     "Inputs rejected, by error class (quarantined).", bad_vin);
    for (unsigned c = VEM_RECORD_CLASS_BAD_SIGNATURE; c < VEM_RECORD_CLASS_UNVERIFIED; c++) {
        const char *l[] = {"class", vem_records_class_name((uint8_t)c), NULL};
        w->sig_errors[c - VEM_RECORD_CLASS_BAD_SIGNATURE] = vem_metrics_counter(
            m, "vem_errors_total", "Inputs rejected, by error class (quarantined).", l);
    }
    const char *act_limit[] = {"class",
                               vem_records_class_name(VEM_RECORD_CLASS_TOO_MANY_ACTIVATIONS), NULL};
    w->act_limit = vem_metrics_counter(m, "vem_errors_total",
                                       "Inputs rejected, by error class (quarantined).", act_limit);
    const char *reused[] = {"class", vem_records_class_name(VEM_RECORD_CLASS_KEY_REUSED), NULL};
    w->key_reused = vem_metrics_counter(m, "vem_errors_total",
                                        "Inputs rejected, by error class (quarantined).", reused);
    for (unsigned i = 0; i < 4; i++) {
        const char *l[] = {"result", vem_records_sig_name((uint8_t)(VEM_RECORD_SIG_VERIFIED + i)),
                           NULL};
        w->sig_checks[i] = vem_metrics_counter(
            m, "vem_signature_checks_total",
            "SM2 signatures of real-time and re-sent frames checked (terminals.signatures flag "
            "or enforce), by result.",
            l);
    }
    w->unverified = vem_metrics_counter(
        m, "vem_unverified_frames_total",
        "Frames stored although their signature did not verify (terminals.signatures = flag).",
        NULL);
    w->key_conflicts = vem_metrics_counter(
        m, "vem_key_conflicts_total",
        "Replayed activations the terminal key registry could not take (it changed since).", NULL);
    w->samples =
        vem_metrics_counter(m, "vem_samples_total", "1 Hz data-stream samples decoded.", NULL);
    w->duplicates = vem_metrics_counter(
        m, "vem_duplicates_total", "Frames already seen (same VIN, time, serial), dropped.", NULL);
    w->resent = vem_metrics_counter(m, "vem_resent_frames_total",
                                    "Re-sent (0x03) frames, first copies.", NULL);
    w->gaps = vem_metrics_counter(m, "vem_serial_gaps_total",
                                  "Real-time serials skipped by terminals (frames lost).", NULL);
    w->unregistered = vem_metrics_counter(
        m, "vem_unregistered_frames_total",
        "Frames from VINs missing in the vehicle registry (stored all the same).", NULL);
    w->ckpts = vem_metrics_counter(m, "vem_rules_checkpoints_total",
                                   "Rule-state checkpoints put in place.", NULL);
    w->ckpt_errors = vem_metrics_counter(
        m, "vem_rules_checkpoint_errors_total",
        "Rule-state checkpoints that could not be written (the previous one stays).", NULL);
    w->restored =
        vem_metrics_counter(m, "vem_rules_restored_total",
                            "Vehicles whose rule state came back from a checkpoint.", NULL);
    w->restore_errors = vem_metrics_counter(
        m, "vem_rules_restore_errors_total",
        "Vehicle states in a checkpoint that were refused (they start afresh).", NULL);
    char index[16];
    snprintf(index, sizeof index, "%u", w->args->index);
    const char *by_worker[] = {"worker", index, NULL};
    w->ckpt_bytes =
        vem_metrics_gauge(m, "vem_rules_checkpoint_bytes",
                          "Size of the worker's last rule-state checkpoint.", by_worker);
    w->ckpt_vehicles = vem_metrics_gauge(m, "vem_rules_vehicles",
                                         "Vehicles with rule state in the worker.", by_worker);
    w->sessions_now =
        vem_metrics_gauge(m, "vem_sessions", "Vehicle sessions the worker holds.", by_worker);
    w->state_bytes = vem_metrics_gauge(
        m, "vem_rules_state_bytes",
        "Bytes of rule state the worker's vehicles hold (at the last silence sweep).", by_worker);
    w->released = vem_metrics_counter(
        m, "vem_rules_released_total",
        "Rule states let go: silent past pipeline.session_idle_s with nothing left to judge.",
        NULL);
    for (size_t k = 0; k < S_RULE_COUNTS; k++) {
        const char *l[] = {s_rule_counts[k].label, s_rule_counts[k].value, NULL};
        w->rule_counts[k] = vem_metrics_counter(m, s_rule_counts[k].name, s_rule_counts[k].help, l);
    }
    w->sess_evicted = vem_metrics_counter(
        m, "vem_sessions_evicted_total",
        "Sessions without rule state forgotten at pipeline.max_sessions for a new VIN.", NULL);
    w->sess_expired = vem_metrics_counter(
        m, "vem_sessions_expired_total",
        "Sessions without rule state forgotten after pipeline.session_idle_s.", NULL);
    w->sess_refused = vem_metrics_counter(
        m, "vem_sessions_refused_total",
        "Frames of a new VIN stored without session or rules: the table was full of vehicles "
        "with rule state.",
        NULL);
    w->verdicts = vem_metrics_counter(
        m, "vem_verdicts_total",
        "Violations and notices the rules reached (a growing verdict counts each time).", NULL);
    w->readings =
        vem_metrics_counter(m, "vem_rsd_readings_total",
                            "Roadside readings stored (first copies and re-sent ones).", NULL);
    w->hist_plates = vem_metrics_counter(
        m, "vem_rsd_history_plates_total",
        "Rule states made after the start that loaded their plate's roadside history.", NULL);
    w->hist_readings =
        vem_metrics_counter(m, "vem_rsd_history_readings_total", VEM_RSDHIST_READINGS_HELP, NULL);
    w->hist_failures = vem_metrics_counter(
        m, "vem_rsd_history_failures_total",
        "Loads of a plate's roadside history that failed (none for 30 s after one; the states "
        "judge without it, and load it after).",
        NULL);
    w->hist_late = vem_metrics_counter(
        m, "vem_rsd_history_late_total",
        "Rule states that judged roadside readings without their history (a failed load) and "
        "loaded it once loads resumed.",
        NULL);
    w->hist_dropped = vem_metrics_counter(
        m, "vem_rsd_history_unqueued_total",
        "Rule states that judged without their roadside history and found the queue of those "
        "waiting for it full (1024 a worker): they load it with their next reading.",
        NULL);
    w->readings_invalid = vem_metrics_counter(
        m, "vem_rsd_readings_invalid_total",
        "Roadside readings stored as not counting (station flag, HJ 845 window, fuel unknown).",
        NULL);
    w->plates_full = vem_metrics_counter(
        m, "vem_rsd_unjudged_total",
        "Roadside readings stored but not judged: too many vehicles known only to the stations "
        "(stations.max_plates), or a station's VIN with the session table full.",
        NULL);
    w->vendor = vem_metrics_counter(m, "vem_vendor_blocks_total",
                                    "Vendor blocks and vendor bytes skipped.", NULL);
    static const double bounds[] = {0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5};
    const char *labels[] = {"stage", "decode", NULL};
    w->latency =
        vem_metrics_histogram(m, "vem_stage_seconds", "Time from receipt to the end of a stage.",
                              labels, bounds, sizeof bounds / sizeof bounds[0]);
}

/* Counts a rejected input and keeps its bytes as a quarantine record. */
static void s_reject(s_worker_t *w, const vem_input_hdr_t *hdr, const uint8_t *data,
                     unsigned status, const char *detail, int64_t offset, const uint8_t *vin)
{
    if (status > 0 && status < VEM_HJ1239_STATUS_COUNT)
        vem_counter_add(w->errors[status], 1);
    else if (status == VEM_RECORD_CLASS_BAD_VIN)
        vem_counter_add(w->bad_vin, 1);
    else if (status >= VEM_RECORD_CLASS_BAD_SIGNATURE && status < VEM_RECORD_CLASS_UNVERIFIED)
        vem_counter_add(w->sig_errors[status - VEM_RECORD_CLASS_BAD_SIGNATURE], 1);
    else if (status == VEM_RECORD_CLASS_TOO_MANY_ACTIVATIONS)
        vem_counter_add(w->act_limit, 1);
    else if (status == VEM_RECORD_CLASS_KEY_REUSED)
        vem_counter_add(w->key_reused, 1);
    vem_record_t rec = {.seq = hdr->seq,
                        .nseqs = hdr->nseqs ? hdr->nseqs : 1,
                        .kind = VEM_RECORD_QUARANTINE,
                        .source = hdr->source,
                        .status = (uint8_t)status,
                        .received_us = hdr->received_us,
                        .offset = offset > INT32_MAX || offset < 0 ? -1 : (int32_t)offset,
                        .detail = detail,
                        .detail_len = detail ? (uint16_t)strnlen(detail, UINT16_MAX) : 0,
                        .data = data,
                        .data_len = hdr->data_len};
    if (vin) {
        rec.has_vin = true;
        memcpy(rec.vin, vin, 17);
    }
    vem_records_add(&w->out, &rec);
}

/* The input's own record: SETTLED for one that gives the sinks nothing, or FRAME, handing them
 * the accepted frame with its signature result (sig, vem_record_sig_t). */
static void s_emit(s_worker_t *w, const vem_input_hdr_t *hdr, const uint8_t *data, bool frame,
                   uint8_t sig)
{
    vem_record_t rec = {.seq = hdr->seq,
                        .nseqs = hdr->nseqs ? hdr->nseqs : 1,
                        .kind = frame ? VEM_RECORD_FRAME : VEM_RECORD_SETTLED,
                        .source = hdr->source,
                        .status = frame ? sig : 0,
                        .received_us = hdr->received_us,
                        .offset = -1,
                        .data = frame ? data : NULL,
                        .data_len = frame ? hdr->data_len : 0};
    vem_records_add(&w->out, &rec);
}

/* A verdict of the rules: a VIOLATION record beside the input's own, settling the same seq. */
typedef struct {
    s_worker_t *w;
    const vem_input_hdr_t *hdr;
} s_verdict_ctx_t;

static void s_on_verdict(void *arg, const vem_violation_t *v)
{
    s_verdict_ctx_t *ctx = arg;
    json_t *o = vem_rules_violation_json(v);
    json_object_set_new(o, "first_us", json_integer((json_int_t)v->first_us));
    json_object_set_new(o, "last_us", json_integer((json_int_t)v->last_us));
    json_object_set_new(o, "emission", json_integer(ctx->w->emission++));
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!text)
        abort();
    vem_record_t rec = {.seq = ctx->hdr->seq,
                        .nseqs = 1,
                        .kind = VEM_RECORD_VIOLATION,
                        .source = ctx->hdr->source,
                        .received_us = ctx->hdr->received_us,
                        .offset = -1,
                        .data = (const uint8_t *)text,
                        .data_len = (uint32_t)strlen(text)};
    vem_records_add(&ctx->w->out, &rec);
    free(text);
    vem_counter_add(ctx->w->verdicts, 1);
}

/* What a session slot holds: the vehicle's rule state and the last input it took. */
typedef struct {
    vem_rules_vehicle_t *v;
    uint64_t applied;   /* inputs up to this seq are in v */
    bool rsd_history;   /* its plate's roadside history is in v (rsdhist.h) */
    bool hist_waiting;  /* in the worker's hist_wait */
    bool hist_unqueued; /* found hist_wait full (counted once) */
    size_t *budget;     /* made by a station's VIN the registry does not know: the worker's
                         * count of those (station_vins), until the vehicle's own frames come */
    int64_t reading_us; /* receipt of the newest roadside reading it took (0: none) */
} s_vstate_t;

/* When the vehicle was last heard from, by a frame or by a station. */
static int64_t s_last_heard(const s_vstate_t *vs)
{
    int64_t frame_us = vem_rules_vehicle_last_received(vs->v);
    return frame_us > vs->reading_us ? frame_us : vs->reading_us;
}

/* The state no longer counts as a station's VIN unknown to the registry. */
static void s_budget_release(s_vstate_t *vs)
{
    if (vs->budget) {
        (*vs->budget)--;
        vs->budget = NULL;
    }
}

static void s_rules_free(void *state)
{
    s_vstate_t *vs = state;
    s_budget_release(vs);
    vem_rules_vehicle_destroy(&vs->v);
    free(vs);
}

/* The registry's engine figures of a vehicle (zero and unknown fuel when it has none). */
static vem_rules_engine_facts_t s_facts(const vem_vehicle_t *reg)
{
    if (!reg)
        return (vem_rules_engine_facts_t){0};
    return (vem_rules_engine_facts_t){.ref_torque_nm = reg->ref_torque_nm,
                                      .rated_power_kw = reg->rated_power_kw,
                                      .whtc_work_kwh = reg->whtc_work_kwh,
                                      .fuel = vem_rules_fuel(reg->fuel)};
}

/* After a registry reload: the vehicles that have rule state get their new figures and plate
 * (a trip in progress keeps the figures it started with). */
static void s_refresh_facts(void *arg, const vem_session_t *session)
{
    s_worker_t *w = arg;
    void **slot = vem_sessions_state(w->sessions, session->vin);
    if (!slot || !*slot)
        return;
    const vem_vehicle_t *reg = w->registry ? vem_registry_find(w->registry, session->vin) : NULL;
    s_vstate_t *vs = *slot;
    if (reg)
        s_budget_release(vs); /* registered now */
    vem_rules_engine_facts_t facts = s_facts(reg);
    vem_rules_vehicle_set_facts(vs->v, reg ? &facts : NULL);
    if (reg && *reg->plate)
        vem_rules_vehicle_set_ids(vs->v, NULL, reg->plate,
                                  *reg->plate_color ? reg->plate_color : NULL);
}

/* A new rule state of vin (NULL: none), with the registry's engine figures, plate and plate
 * colour when it knows the vehicle (reg, may be NULL), else plate and color (may be NULL). */
static s_vstate_t *s_vstate_new(const char *vin, const char *plate, const char *color,
                                const vem_vehicle_t *reg)
{
    vem_rules_engine_facts_t facts = s_facts(reg);
    s_vstate_t *vs = calloc(1, sizeof *vs);
    if (!vs)
        abort();
    bool known = reg && *reg->plate;
    vs->v = vem_rules_vehicle_new(vin, known ? reg->plate : plate, reg ? &facts : NULL);
    const char *c = known ? reg->plate_color : color;
    if (vs->v && c && *c)
        vem_rules_vehicle_set_ids(vs->v, NULL, NULL, c);
    return vs;
}

/* Runs the rules on an accepted frame, with the vehicle's state kept in its session entry
 * (created with the registry's engine figures the first time the vehicle is seen). */
static void s_rules(s_worker_t *w, const vem_input_hdr_t *hdr, const vem_hj1239_frame_t *f)
{
    char vin[VEM_VIN_LEN + 1];
    memcpy(vin, f->vin, VEM_VIN_LEN);
    vin[VEM_VIN_LEN] = '\0';
    void **slot = vem_sessions_state(w->sessions, vin);
    if (!slot)
        return; /* refused a session: counted in s_process */
    if (!*slot) {
        const vem_vehicle_t *reg = w->registry ? vem_registry_find(w->registry, vin) : NULL;
        /* A login or logout tells the rules only that the vehicle was heard (obd.offline): not
         * worth a rule state for a VIN the registry does not know, which is what a flood of
         * forged logins is; its first data frame or alarm makes the state. */
        if (!reg && f->cmd != VEM_HJ1239_CMD_REALTIME && f->cmd != VEM_HJ1239_CMD_RESEND &&
            f->cmd != VEM_HJ1239_CMD_REMOVAL_ALARM)
            return;
        *slot = s_vstate_new(vin, NULL, NULL, reg);
    }
    s_vstate_t *vs = *slot;
    /* a station's VIN, now with the vehicle's own data (what makes a terminal's state: a login
     * alone, easily forged, does not) */
    if (f->cmd == VEM_HJ1239_CMD_REALTIME || f->cmd == VEM_HJ1239_CMD_RESEND ||
        f->cmd == VEM_HJ1239_CMD_REMOVAL_ALARM)
        s_budget_release(vs);
    if (hdr->seq <= vs->applied)
        return; /* in the state restored from a checkpoint already */
    vs->applied = hdr->seq;
    s_verdict_ctx_t ctx = {w, hdr};
    vem_rules_counts_t added = {0};
    vem_rules_on_frame_counted(vs->v, &w->rules, f, hdr->received_us, hdr->paused_us, hdr->seq,
                               s_on_verdict, &ctx, &added);
    s_rule_counts_add(w, &added);
}

/* The session slot of a reading's VIN, made when missing: a VIN the registry knows always gets
 * one; a station's VIN it does not know, which is what a station that invents them sends, only
 * while such states are fewer than the worker's share of stations.max_plates and half its
 * pipeline.max_sessions, and within the session table's cap: so they can neither grow memory
 * nor crowd out the terminals' sessions. NULL: not judged. */
static void **s_vin_slot(s_worker_t *w, const char *vin, const vem_vehicle_t *reg)
{
    void **slot = vem_sessions_state(w->sessions, vin);
    if (slot && *slot)
        return slot;
    if (reg)
        return vem_sessions_state_new(w->sessions, vin);
    size_t bound = w->args->max_plates;
    if (w->args->max_sessions && w->args->max_sessions / 2 < bound)
        bound = w->args->max_sessions / 2;
    if (w->station_vins >= bound)
        return NULL;
    bool evicted = false;
    if (!slot && (slot = vem_sessions_state_try(w->sessions, vin, &evicted)) && evicted)
        vem_counter_add(w->sess_evicted, 1);
    return slot;
}

/* The slot of a reading's rule state: its VIN's session slot, or in the plate table, by plate
 * and colour, for a vehicle the registry did not map when the reading arrived; the state made on
 * first use (*made, may be NULL). NULL when there is no room (s_vin_slot, the plate table). */
static void **s_reading_slot(s_worker_t *w, const char *vin, const char *plate, const char *color,
                             bool *made)
{
    const vem_vehicle_t *reg = *vin && w->registry ? vem_registry_find(w->registry, vin) : NULL;
    void **slot = *vin ? s_vin_slot(w, vin, reg) : vem_plates_slot(w->plates, plate, color, true);
    if (made)
        *made = slot && !*slot;
    if (slot && !*slot) {
        s_vstate_t *vs = s_vstate_new(*vin ? vin : NULL, plate, color, reg);
        if (*vin && !reg) {
            vs->budget = &w->station_vins;
            w->station_vins++;
        }
        *slot = vs;
    }
    return slot;
}

/* The records of the last input judged here, which verdicts not of an input travel with (the
 * silence sweep's, a day's completeness, stored history): already settled by its own. Its seq
 * and receipt, with w->emission going on from that input's own verdicts, order them after
 * those and before the next input's (schema/0016_merge_by_input.sql). */
static vem_input_hdr_t s_last_input(const s_worker_t *w, uint8_t source)
{
    return (vem_input_hdr_t){
        .seq = w->rules_mark, .nseqs = 1, .received_us = w->last_rx_us, .source = source};
}

/* After a failed load of a state's history, the worker loads none for this long. */
#define S_HISTORY_OFF_MS 30000
/* A connection for those loads left unused this long is closed (a long idle one may be gone). */
#define S_HISTORY_IDLE_MS 60000

/* Closes the connection for history loads once unused for S_HISTORY_IDLE_MS. */
static void s_history_idle(s_worker_t *w)
{
    if (w->hist_conn && vem_mono_ms() - w->hist_used_ms > S_HISTORY_IDLE_MS) {
        PQfinish(w->hist_conn);
        w->hist_conn = NULL;
    }
}

/* One load of ask, connecting when there is no connection; once more on a fresh connection
 * when a kept one turned out closed (a server restart, an idle timeout). */
static vem_rsdhist_t *s_history_load(s_worker_t *w, const vem_rsdhist_ask_t *ask, char *err,
                                     size_t errlen)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        bool kept = w->hist_conn != NULL;
        if (!kept && !(w->hist_conn = vem_pgload_connect_short(w->args->rsd_conninfo,
                                                               "vemd-rsdhist-worker", err, errlen)))
            return NULL;
        vem_rsdhist_t *h =
            vem_rsdhist_load_plate(w->hist_conn, w->rules.rsd_cycle_months, ask, err, errlen);
        w->hist_used_ms = vem_mono_ms();
        if (h)
            return h;
        bool dead = PQstatus(w->hist_conn) == CONNECTION_BAD;
        PQfinish(w->hist_conn);
        w->hist_conn = NULL;
        if (!kept || !dead) /* a slow or failed statement is not tried again */
            break;
    }
    return NULL;
}

/* States of the worker that judged roadside readings without their history (a failed load, or
 * loads paused after one), to load it for once loads resume: their first such reading's
 * receipt (the history's bound) and the key of their slot. At most S_HISTORY_WAIT_MAX; one
 * more is counted and left to its next reading. */
#define S_HISTORY_WAIT_MAX 1024
/* Loads of waiting states per turn of the worker's loop (each some milliseconds). */
#define S_HISTORY_WAIT_BATCH 16

struct s_hist_wait {
    char vin[VEM_VIN_LEN + 1]; /* "" for a state held by plate */
    char plate[16], color[16];
    int64_t received_us;
};

/* What a state's history load asks for (vem_rsdhist_ask_t), received before received_us; false
 * for a plate rsd_readings keeps no history of (octet_length(plate) < 16). */
static bool s_history_ask(const s_worker_t *w, const char *vin, const char *plate,
                          const char *color, int64_t received_us, vem_rsdhist_ask_t *ask)
{
    memset(ask, 0, sizeof *ask);
    ask->since_us = received_us - (int64_t)(w->rules.rsd_cycle_months + 1) * 31 * 86400 * 1000000;
    ask->before_us = received_us;
    if (*vin) {
        snprintf(ask->vin, sizeof ask->vin, "%s", vin);
        /* the plate ingest routes to this VIN: the registry's, when it maps back to it */
        const vem_vehicle_t *reg = w->registry ? vem_registry_find(w->registry, vin) : NULL;
        if (reg && *reg->plate && strlen(reg->plate) < sizeof ask->plate &&
            strlen(reg->plate_color) < sizeof ask->color &&
            vem_registry_find_plate(w->registry, reg->plate, reg->plate_color) == reg) {
            snprintf(ask->plate, sizeof ask->plate, "%s", reg->plate);
            snprintf(ask->color, sizeof ask->color, "%s", reg->plate_color);
            ask->or_blank = vem_registry_find_plate(w->registry, reg->plate, "") == reg;
        }
        return true;
    }
    return *plate &&
           snprintf(ask->plate, sizeof ask->plate, "%s", plate) < (int)sizeof ask->plate &&
           snprintf(ask->color, sizeof ask->color, "%s", color) < (int)sizeof ask->color;
}

/* Loads ask's history into vs, its changed chains emitted with ctx's records: how many
 * verdicts, or -1 after a failure (logged, counted, loads paused). */
static int s_history_apply(s_worker_t *w, s_vstate_t *vs, const vem_rsdhist_ask_t *ask,
                           s_verdict_ctx_t *ctx)
{
    char err[300];
    vem_rsdhist_t *h = s_history_load(w, ask, err, sizeof err);
    if (!h) {
        w->hist_off_until_ms = vem_mono_ms() + S_HISTORY_OFF_MS;
        vem_counter_add(w->hist_failures, 1);
        vem_log(VEM_LOG_WARNING, "worker",
                "worker %u: roadside history of %s not loaded: %s; states meanwhile judge "
                "without theirs, and load it in %d s",
                w->args->index, *ask->vin ? ask->vin : ask->plate, err, S_HISTORY_OFF_MS / 1000);
        return -1;
    }
    /* a reading stored under this VIN that ingest routed elsewhere (the registry maps its plate
     * to another vehicle) was never this state's */
    if (*ask->vin && w->registry) {
        size_t kept = 0;
        for (size_t i = 0; i < h->n; i++) {
            const vem_vehicle_t *to =
                vem_registry_find_plate(w->registry, h->r[i].plate, h->r[i].plate_color);
            if (!to || strcmp(to->vin, ask->vin) == 0) {
                memcpy(h->vin[kept], h->vin[i], sizeof h->vin[kept]);
                h->r[kept++] = h->r[i];
            }
        }
        h->n = kept;
    }
    vem_counter_add(w->hist_plates, 1);
    vem_counter_add(w->hist_readings, h->n);
    vs->rsd_history = true;
    unsigned emitted =
        h->n ? vem_rules_history(vs->v, &w->rules, h->r, h->n, s_on_verdict, ctx) : 0;
    vem_rsdhist_free(h);
    return (int)emitted;
}

/* vs judges a reading without its history: it waits for the loads to resume. */
static void s_history_wait(s_worker_t *w, s_vstate_t *vs, const char *vin, const char *plate,
                           const char *color, int64_t received_us)
{
    if (vs->hist_waiting)
        return;
    if (w->hist_nwait == S_HISTORY_WAIT_MAX) {
        if (!vs->hist_unqueued)
            vem_counter_add(w->hist_dropped, 1);
        vs->hist_unqueued = true;
        return;
    }
    if (!w->hist_wait && !(w->hist_wait = calloc(S_HISTORY_WAIT_MAX, sizeof *w->hist_wait)))
        abort();
    struct s_hist_wait *e = &w->hist_wait[w->hist_nwait++];
    snprintf(e->vin, sizeof e->vin, "%s", vin);
    snprintf(e->plate, sizeof e->plate, "%s", plate);
    snprintf(e->color, sizeof e->color, "%s", color);
    e->received_us = received_us;
    vs->hist_waiting = true;
}

/* A state made after the start has not had its roadside history: it loads it before judging
 * its first roadside reading, and the chains it changes of what it held are emitted again,
 * with that reading's records. It takes what ingest routed to it (vem_rsdhist_ask_t), received
 * before this reading, within rsd_cycle_months + 1 months of it (31 days each: the query keeps
 * to those days' partitions). A state whose load failed, or that came while loads were paused
 * after a failure, waits for them to resume (s_history_resume). */
static void s_state_history(s_worker_t *w, s_vstate_t *vs, const char *vin, const vem_rsd_t *r,
                            s_verdict_ctx_t *ctx)
{
    if (vs->rsd_history || !w->args->rsd_conninfo)
        return;
    int64_t received = ctx->hdr->received_us;
    vem_rsdhist_ask_t ask;
    if (!s_history_ask(w, vin, r->plate, r->plate_color, received, &ask)) {
        vs->rsd_history = true; /* none to load, ever */
        return;
    }
    if (vem_mono_ms() < w->hist_off_until_ms || s_history_apply(w, vs, &ask, ctx) < 0)
        s_history_wait(w, vs, vin, r->plate, r->plate_color, received);
}

static void s_flush_out(s_worker_t *w);

/* Once loads resume after a failure, the waiting states load their history, a few per turn:
 * the chains it changes are emitted again as they now stand, with the records of the last
 * input judged here (as for the start's history). A state let go meanwhile is passed over (a
 * new one loads its own). Loads failing again pause them once more. */
static void s_history_resume(s_worker_t *w)
{
    if (!w->hist_nwait || vem_mono_ms() < w->hist_off_until_ms)
        return;
    vem_input_hdr_t hdr = s_last_input(w, VEM_SOURCE_ROADSIDE);
    s_verdict_ctx_t ctx = {w, &hdr};
    for (int k = 0; k < S_HISTORY_WAIT_BATCH && w->hist_nwait; k++) {
        struct s_hist_wait *e = &w->hist_wait[w->hist_nwait - 1];
        void **slot = *e->vin ? vem_sessions_state(w->sessions, e->vin)
                              : vem_plates_slot(w->plates, e->plate, e->color, false);
        s_vstate_t *vs = slot ? *slot : NULL;
        vem_rsdhist_ask_t ask;
        if (vs && vs->hist_waiting && !vs->rsd_history &&
            s_history_ask(w, e->vin, e->plate, e->color, e->received_us, &ask)) {
            int emitted = s_history_apply(w, vs, &ask, &ctx);
            if (emitted < 0)
                break;       /* paused again: it stays */
            if (emitted > 0) /* records of an input judged already (a sweep's, for checkpoints) */
                w->swept = true;
            vem_counter_add(w->hist_late, 1);
        }
        if (vs)
            vs->hist_waiting = false;
        w->hist_nwait--;
    }
    s_flush_out(w);
}

/* A roadside reading ingest accepted: checked again (the same pure parser, judged by the same
 * receipt time, so a replay decides as live intake did), its validity by the HJ 845 window,
 * a READING record for the sinks, then the rules in the state of the vehicle it was routed by
 * (route "V:<vin>" or "P:<plate>"). */
static void s_reading(s_worker_t *w, const vem_input_hdr_t *hdr, const char *route,
                      const uint8_t *data)
{
    vem_rsd_t r;
    vem_rsd_error_t err;
    /* ingest applied stations.future_tolerance_s; here only the widest bound it may have had */
    vem_rsd_status_t st = vem_rsd_parse(data, hdr->data_len, hdr->received_us, 86400, &r, &err);
    if (st != VEM_RSD_OK) {
        s_reject(w, hdr, data, (vem_hj1239_status_t)(VEM_RECORD_CLASS_RSD + st), err.detail, -1,
                 NULL);
        return;
    }
    char vin[VEM_VIN_LEN + 1] = "";
    bool by_vin = route[0] == 'V' && strlen(route) == 2 + VEM_VIN_LEN;
    if (by_vin)
        memcpy(vin, route + 2, sizeof vin);
    const vem_vehicle_t *reg = NULL;
    if (w->registry)
        reg = *vin ? vem_registry_find(w->registry, vin)
                   : vem_registry_find_plate(w->registry, r.plate, r.plate_color);
    vem_rsd_reading_t rr;
    vem_rules_reading_init(&rr);
    snprintf(rr.station_id, sizeof rr.station_id, "%s", r.station_id);
    snprintf(rr.reading_id, sizeof rr.reading_id, "%s", r.reading_id);
    rr.time_us = r.time_us;
    snprintf(rr.plate, sizeof rr.plate, "%s", r.plate);
    snprintf(rr.plate_color, sizeof rr.plate_color, "%s", r.plate_color);
    rr.fuel = vem_rules_fuel(r.fuel);
    rr.speed_kmh = r.speed_kmh;
    rr.accel_ms2 = r.accel_ms2;
    rr.vsp_kw_t = r.vsp_kw_t;
    rr.wind_ms = r.wind_ms;
    rr.slope_pct = r.slope_pct;
    rr.opacity_pct = r.opacity_pct;
    rr.ringelmann = r.ringelmann >= 0 ? r.ringelmann : NAN;
    rr.no_ppm = r.no_ppm;
    rr.co_pct = r.co_pct;
    rr.hc_ppm = r.hc_ppm;
    rr.valid = r.valid;
    rr.received_us = hdr->received_us;
    char why[160] = "";
    bool counted = vem_rules_reading_valid(&w->rules, &rr, why, sizeof why);
    if (counted && rr.fuel == VEM_FUEL_UNKNOWN &&
        (!reg || vem_rules_fuel(reg->fuel) == VEM_FUEL_UNKNOWN)) {
        counted = false;
        snprintf(why, sizeof why, "fuel unknown (neither the station nor the registry says)");
    }
    /* the reading as received (the parser checked it: FIELDS.md keys), and what vemd adds in
     * the detail: re-serializing every reading cost the worker as much as parsing it */
    const char *known = *r.vin ? r.vin : reg ? reg->vin : *vin ? vin : NULL;
    json_t *o = json_pack("{s:o, s:I, s:b, s:o}", "vin", known ? json_string(known) : json_null(),
                          "time_us", (json_int_t)r.time_us, "counted", counted, "invalid_reason",
                          counted ? json_null() : json_string(why));
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!text)
        abort();
    vem_record_t rec = {.seq = hdr->seq,
                        .nseqs = hdr->nseqs ? hdr->nseqs : 1,
                        .kind = VEM_RECORD_READING,
                        .source = hdr->source,
                        .received_us = hdr->received_us,
                        .offset = -1,
                        .detail = text,
                        .detail_len = (uint16_t)strlen(text),
                        .data = data,
                        .data_len = hdr->data_len};
    vem_records_add(&w->out, &rec);
    free(text);
    vem_counter_add(w->readings, 1);
    if (!counted)
        vem_counter_add(w->readings_invalid, 1);
    if (!w->judge || ((hdr->flags & VEM_INPUT_REPLAY) && hdr->seq <= w->rules_mark))
        return;
    void **slot = s_reading_slot(w, by_vin ? vin : "", r.plate, r.plate_color, NULL);
    s_vstate_t *vs = slot ? *slot : NULL;
    if (!vs) {
        vem_counter_add(w->plates_full, 1);
        return;
    }
    if (hdr->received_us > vs->reading_us)
        vs->reading_us = hdr->received_us;
    if (hdr->seq <= vs->applied)
        return; /* in the state restored from a checkpoint already */
    vs->applied = hdr->seq;
    s_verdict_ctx_t ctx = {w, hdr};
    vem_rules_counts_t was = *vem_rules_vehicle_counts(vs->v), added = {0};
    s_state_history(w, vs, by_vin ? vin : "", &r, &ctx);
    vem_rules_on_reading(vs->v, &w->rules, &rr, hdr->seq, s_on_verdict, &ctx);
    vem_rules_counts_add(&added, &was, vem_rules_vehicle_counts(vs->v));
    s_rule_counts_add(w, &added);
}

/* True when the 17 VIN bytes are all printable ASCII without the space: anything else would
 * be stored mangled (the sinks write '?' for what is not text and trim trailing spaces and
 * NULs), so two different garbage VINs would become one vehicle. */
static bool s_vin_ok(const uint8_t *vin)
{
    for (size_t i = 0; i < VEM_VIN_LEN; i++)
        if (vin[i] <= 0x20 || vin[i] >= 0x7F)
            return false;
    return true;
}

/* The first time of a decoded frame (its own, then each block's) outside the window around
 * receipt, in *bad with its block index in *block (-1: the frame's own); false when every
 * time is inside. Terminals with a reset clock (year 2000) or forged times would otherwise
 * create a partition per distinct day they name. */
static bool s_time_outside(const s_worker_t *w, const vem_input_hdr_t *hdr,
                           const vem_hj1239_frame_t *f, int64_t *bad, int *block)
{
    int64_t rx = hdr->received_us / 1000000;
    int64_t lo = rx - w->args->sample_past_s, hi = rx + w->args->sample_future_s;
    *block = -1;
    *bad = f->time;
    if (f->has_time && (f->time < lo || f->time > hi))
        return true;
    if (f->cmd != VEM_HJ1239_CMD_REALTIME && f->cmd != VEM_HJ1239_CMD_RESEND)
        return false;
    for (uint16_t i = 0; i < f->nblocks; i++) {
        if (f->blocks[i].time < lo || f->blocks[i].time > hi) {
            *block = i;
            *bad = f->blocks[i].time;
            return true;
        }
    }
    return false;
}

/* Quarantines an accepted-by-the-decoder frame that no sink may see: a VIN that is not text
 * (bad_vin) or a time outside the window (bad_time, the whole frame: see README). True when
 * it did. */
static bool s_screen(s_worker_t *w, const vem_input_hdr_t *hdr, const uint8_t *data,
                     const vem_hj1239_frame_t *f)
{
    char detail[160];
    if (!s_vin_ok(f->vin)) {
        char hex[2 * VEM_VIN_LEN + 1];
        vem_frame_json_hex_text(hex, f->vin, VEM_VIN_LEN);
        /* the bytes first: the quarantine table keeps the first 72 characters of a detail */
        snprintf(detail, sizeof detail, "VIN %s: not 17 printable ASCII characters", hex);
        s_reject(w, hdr, data, VEM_RECORD_CLASS_BAD_VIN, detail,
                 f->header == VEM_HJ1239_HEADER_PLATFORM ? 4 : 3, NULL);
        vem_log(VEM_LOG_WARNING, "worker", "input %llu quarantined: %s",
                (unsigned long long)hdr->seq, detail);
        return true;
    }
    int64_t bad;
    int block;
    if (!s_time_outside(w, hdr, f, &bad, &block))
        return false;
    char when[VEM_HJ1239_TIME_LEN], rx[VEM_HJ1239_TIME_LEN];
    vem_hj1239_time_format(bad, when);
    vem_hj1239_time_format(hdr->received_us / 1000000, rx);
    char where[32] = "frame time";
    if (block >= 0)
        snprintf(where, sizeof where, "time of block %d", block);
    snprintf(detail, sizeof detail,
             "%s %s outside the accepted window (received %s; %lld days back, %lld s ahead)", where,
             when, rx, (long long)(w->args->sample_past_s / 86400),
             (long long)w->args->sample_future_s);
    s_reject(w, hdr, data, VEM_HJ1239_BAD_TIME, detail, -1, f->vin);
    vem_log(VEM_LOG_WARNING, "worker", "input %llu quarantined: %.17s: %s",
            (unsigned long long)hdr->seq, (const char *)f->vin, detail);
    return true;
}

int vem_worker_signatures(const char *name)
{
    return name && strcmp(name, "enforce") == 0 ? VEM_SIGNATURES_ENFORCE
           : name && strcmp(name, "flag") == 0  ? VEM_SIGNATURES_FLAG
                                                : VEM_SIGNATURES_OFF;
}

/* Checks the SM2 signature of a real-time or re-sent frame against its VIN's registered key,
 * over the data unit before the signature (README "Signatures"). Under enforce a frame that
 * does not verify is quarantined (true: nothing more to do); under flag it is stored all the
 * same, with an `unverified` quarantine record beside it saying why (the raw bytes kept only
 * for a signature that failed: the frame itself is stored). *sig gets the result, which the
 * frame's own record carries to the sinks (Kafka's "signature_check"). Runs in the worker,
 * never in ingest: a check costs about as much as decoding a hundred frames. */
static bool s_signature(s_worker_t *w, const vem_input_hdr_t *hdr, const uint8_t *data,
                        const vem_hj1239_frame_t *f, int policy, uint8_t *sig)
{
    static const uint8_t s_class[VEM_RECORD_SIGS] = {
        [VEM_RECORD_SIG_BAD_SIGNATURE] = VEM_RECORD_CLASS_BAD_SIGNATURE,
        [VEM_RECORD_SIG_UNSIGNED] = VEM_RECORD_CLASS_UNSIGNED,
        [VEM_RECORD_SIG_NO_KEY] = VEM_RECORD_CLASS_NO_KEY};
    char detail[160];
    vem_record_sig_t res = VEM_RECORD_SIG_VERIFIED;
    vem_sm2_key_t *key = w->args->keys ? vem_keys_find(w->args->keys, f->vin) : NULL;
    size_t n = 0;
    const uint8_t *msg = vem_keys_signed_bytes(f, data, hdr->data_len, &n);
    if (!key) {
        res = VEM_RECORD_SIG_NO_KEY;
        snprintf(detail, sizeof detail, "no_key: the VIN has no activated chip (0x07)");
    } else if (!msg) {
        res = VEM_RECORD_SIG_UNSIGNED;
        snprintf(detail, sizeof detail, "unsigned: no signature after the last block");
    } else {
        vem_sm2_status_t st =
            vem_sm2_verify(key, f->sig.r, f->sig.rlen, f->sig.s, f->sig.slen, msg, n);
        if (st != VEM_SM2_OK) {
            res = VEM_RECORD_SIG_BAD_SIGNATURE;
            snprintf(detail, sizeof detail,
                     "bad_signature: %s against the key of the VIN's chip (%zu bytes signed)",
                     vem_sm2_status_name(st), n);
        }
    }
    vem_sm2_key_destroy(&key);
    vem_counter_add(w->sig_checks[res - VEM_RECORD_SIG_VERIFIED], 1);
    *sig = (uint8_t)res;
    if (res == VEM_RECORD_SIG_VERIFIED)
        return false;
    if (policy == VEM_SIGNATURES_ENFORCE) {
        /* the class leads the detail already: keep only the reason */
        const char *why = strchr(detail, ':') + 2;
        s_reject(w, hdr, data, s_class[res], why, -1, f->vin);
        vem_log(VEM_LOG_WARNING, "worker", "input %llu quarantined: %.17s: %s",
                (unsigned long long)hdr->seq, (const char *)f->vin, detail);
        return true;
    }
    vem_record_t rec = {.seq = hdr->seq,
                        .nseqs = hdr->nseqs ? hdr->nseqs : 1,
                        .kind = VEM_RECORD_QUARANTINE,
                        .source = hdr->source,
                        .status = VEM_RECORD_CLASS_UNVERIFIED,
                        .received_us = hdr->received_us,
                        .offset = -1,
                        .has_vin = true,
                        .detail = detail,
                        .detail_len = (uint16_t)strlen(detail),
                        .data = res == VEM_RECORD_SIG_BAD_SIGNATURE ? data : NULL,
                        .data_len = res == VEM_RECORD_SIG_BAD_SIGNATURE ? hdr->data_len : 0};
    memcpy(rec.vin, f->vin, 17);
    vem_records_add(&w->out, &rec);
    vem_counter_add(w->unverified, 1);
    return false;
}

static void s_process(s_worker_t *w, const vem_input_hdr_t *hdr, const char *detail,
                      const uint8_t *data)
{
    if (hdr->kind == VEM_SPOOL_KIND_RSD_READING) {
        s_reading(w, hdr, detail, data);
        return;
    }
    if (hdr->kind == VEM_SPOOL_KIND_QUARANTINE) {
        /* the detail travels in the spool record's meta text after the verdict */
        s_reject(w, hdr, data, (vem_hj1239_status_t)hdr->error,
                 detail[0]                            ? detail
                 : hdr->source == VEM_SOURCE_GATEWAY  ? "not a whole frame"
                 : hdr->source == VEM_SOURCE_ROADSIDE ? "roadside reading refused"
                                                      : "dropped by the stream reassembler",
                 hdr->error_offset, NULL);
        return;
    }
    if (hdr->kind != VEM_SPOOL_KIND_OBD_FRAME) {
        s_reject(w, hdr, data, VEM_HJ1239_MALFORMED_BODY, "spool record of an unknown kind", -1,
                 NULL);
        return;
    }
    vem_hj1239_frame_t *f = w->frame;
    vem_hj1239_error_t err;
    vem_hj1239_status_t st =
        vem_hj1239_decode(data, hdr->data_len, VEM_HJ1239_TRUSTED_BCC, f, &err);
    if (st != VEM_HJ1239_OK) {
        s_reject(w, hdr, data, st, err.detail, (int64_t)err.offset,
                 st == VEM_HJ1239_UNSUPPORTED_ENCRYPTION && s_vin_ok(f->vin) ? f->vin : NULL);
        vem_log(VEM_LOG_DEBUG, "worker", "input %llu rejected: %s at offset %zu: %s",
                (unsigned long long)hdr->seq, vem_hj1239_status_name(st), err.offset, err.detail);
        return;
    }
    if (s_screen(w, hdr, data, f))
        return;
    bool sampled = f->cmd == VEM_HJ1239_CMD_REALTIME || f->cmd == VEM_HJ1239_CMD_RESEND;
    int policy = w->args->signatures ? atomic_load(w->args->signatures) : VEM_SIGNATURES_OFF;
    uint8_t sig = VEM_RECORD_SIG_NONE;
    if (sampled && policy != VEM_SIGNATURES_OFF && s_signature(w, hdr, data, f, policy, &sig))
        return;
    /* An activation here is one ingest accepted (refused ones come as quarantine records):
     * the registry has it already, unless vemd restarted before the database did (replay). */
    if (f->cmd == VEM_HJ1239_CMD_ACTIVATION && w->args->keys &&
        !vem_keys_restore(w->args->keys, f)) {
        vem_counter_add(w->key_conflicts, 1);
        vem_log(VEM_LOG_WARNING, "worker",
                "input %llu: activation of %.17s no longer fits the terminal keys (changed "
                "since it was accepted); stored, not registered",
                (unsigned long long)hdr->seq, (const char *)f->vin);
    }
    /* A replayed input the rule states already hold was seen and counted before: no
     * bookkeeping, only its records again (the sinks' keys drop what they have). One past
     * the last checkpoint (restart after a crash) goes the live way, rules and all. */
    if ((hdr->flags & VEM_INPUT_REPLAY) && !(w->judge && hdr->seq > w->rules_mark)) {
        s_emit(w, hdr, data, true, sig);
        return;
    }
    vem_counter_t *frames = w->frames[f->cmd][sampled ? f->layout % S_LAYOUTS : S_LAYOUTS];
    if (frames)
        vem_counter_add(frames, 1);
    vem_session_verdict_t v = vem_sessions_observe(
        w->sessions, (const char *)f->vin, f->cmd,
        f->has_time ? f->time : hdr->received_us / 1000000, f->seq, hdr->received_us);
    if (v.evicted)
        vem_counter_add(w->sess_evicted, 1);
    if (v.refused) {
        /* stored all the same (the database's keys drop repeats), only not judged */
        vem_counter_add(w->sess_refused, 1);
        vem_log(VEM_LOG_WARNING, "worker",
                "%.17s: no session (pipeline.max_sessions %zu reached, every session holds rule "
                "state): frame stored, not judged",
                (const char *)f->vin, w->args->max_sessions);
        s_emit(w, hdr, data, true, sig);
        return;
    }
    if (v.duplicate) {
        vem_counter_add(w->duplicates, 1);
        s_emit(w, hdr, data, false, sig);
        return;
    }
    if (w->registry && !vem_registry_find(w->registry, (const char *)f->vin))
        vem_counter_add(w->unregistered, 1);
    if (v.gap)
        vem_counter_add(w->gaps, v.gap);
    if (f->cmd == VEM_HJ1239_CMD_RESEND)
        vem_counter_add(w->resent, 1);
    s_emit(w, hdr, data, true, sig);
    if (w->judge)
        s_rules(w, hdr, f);
    if (sampled) {
        uint64_t n = 0;
        for (uint16_t i = 0; i < f->nblocks; i++)
            n += f->blocks[i].type == VEM_HJ1239_BLOCK_STREAM ||
                 f->blocks[i].type == VEM_HJ1239_BLOCK_TWC ||
                 f->blocks[i].type == VEM_HJ1239_BLOCK_TWC_NOX;
        vem_counter_add(w->samples, n);
        if (f->vendor_blocks)
            vem_counter_add(w->vendor, f->vendor_blocks);
    }
}

typedef struct {
    json_t *out;
    const vem_registry_t *registry;
} s_json_ctx_t;

static void s_session_json(void *arg, const vem_session_t *s)
{
    s_json_ctx_t *ctx = arg;
    json_t *frames = json_object();
    for (unsigned cmd = 1; cmd < VEM_SESSION_CMDS; cmd++)
        if (s->by_cmd[cmd])
            json_object_set_new(frames, vem_hj1239_cmd_name((uint8_t)cmd),
                                json_integer((json_int_t)s->by_cmd[cmd]));
    json_t *o = json_pack("{s:s, s:o, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "vin", s->vin,
                          "frames", frames, "live", (json_int_t)s->live_frames, "resent",
                          (json_int_t)s->resent_frames, "duplicates", (json_int_t)s->duplicates,
                          "missing", (json_int_t)s->missing, "logins", (json_int_t)s->logins,
                          "logouts", (json_int_t)s->logouts, "last_seen_us",
                          (json_int_t)s->last_seen_us, "skew_s", (json_int_t)s->skew_s);
    const vem_vehicle_t *reg = vem_registry_find(ctx->registry, s->vin);
    if (reg) {
        json_object_set_new(o, "plate", json_string(reg->plate));
        json_object_set_new(o, "region_code", json_string(reg->region_code));
    }
    json_array_append_new(ctx->out, o);
}

static void s_answer(s_worker_t *w, void *rep)
{
    char request[32];
    int len = zmq_recv(rep, request, sizeof request - 1, 0);
    if (len < 0)
        return;
    request[(size_t)len < sizeof request ? (size_t)len : sizeof request - 1] = '\0';
    json_t *answer;
    if (strcmp(request, "sessions") == 0) {
        answer = json_array();
        s_json_ctx_t ctx = {answer, w->registry};
        vem_sessions_recent(w->sessions, VEM_WORKER_SESSIONS_MAX, s_session_json, &ctx);
    } else {
        answer = json_pack("{s:s}", "error", "unknown request");
    }
    char *text = json_dumps(answer, JSON_COMPACT);
    json_decref(answer);
    zmq_send(rep, text, strlen(text), 0);
    free(text);
}

/* Receives and processes one input; returns false when none was waiting (DONTWAIT). */
static bool s_take(s_worker_t *w, void *pull, int flags)
{
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    if (zmq_msg_recv(&msg, pull, flags) < 0) {
        zmq_msg_close(&msg);
        return false;
    }
    size_t size = zmq_msg_size(&msg);
    vem_input_hdr_t hdr;
    const uint8_t *p = zmq_msg_data(&msg);
    if (size >= sizeof hdr) {
        memcpy(&hdr, p, sizeof hdr);
        if ((size_t)hdr.detail_len + hdr.data_len == size - sizeof hdr) {
            char detail[VEM_INPUT_DETAIL_MAX + 1];
            size_t n =
                hdr.detail_len < VEM_INPUT_DETAIL_MAX ? hdr.detail_len : VEM_INPUT_DETAIL_MAX;
            memcpy(detail, p + sizeof hdr, n);
            detail[n] = '\0';
            uint64_t last = hdr.seq + (hdr.nseqs ? hdr.nseqs : 1) - 1;
            if (last > w->rules_mark) /* one judged here: its verdicts count from 0 (those below
                                         the mark are replays passed over, and emit nothing) */
                w->emission = 0;
            s_process(w, &hdr, detail, p + sizeof hdr + hdr.detail_len);
            vem_histogram_observe_ns(w->latency, (uint64_t)(vem_now_us() - hdr.received_us) * 1000);
            if (last > w->last_seq) /* a replayed input lies below: the mark never goes back */
                w->last_seq = last;
            if (last > w->rules_mark)
                w->rules_mark = last;
            if (hdr.received_us > w->newest_rx_us)
                w->newest_rx_us = hdr.received_us;
            if (last >= w->rules_mark && hdr.received_us > w->last_rx_us)
                w->last_rx_us = hdr.received_us;
            if (hdr.paused_us > w->newest_paused_us)
                w->newest_paused_us = hdr.paused_us;
            if (w->pending && w->pending_next && !w->pending_after)
                w->pending_after = last;
        } else {
            vem_log(VEM_LOG_ERR, "worker", "malformed input message of %zu bytes ignored", size);
        }
    }
    zmq_msg_close(&msg);
    atomic_fetch_add_explicit(&w->args->done, 1, memory_order_relaxed);
    w->last_input_ms = vem_mono_ms();
    return true;
}

/* Hands the records of the inputs processed since the last call to every sink, then tells
 * ingest how far this worker got. Waits while a sink's queue is full: a sink spills what it
 * cannot write, so that happens only when its spill is full too. The mark is cumulative, so
 * an acknowledgement lost to a full queue is made good by the next one. */
static void s_flush_out(s_worker_t *w)
{
    if (w->out.count) {
        size_t len;
        const uint8_t *bytes = vem_records_message(&w->out, &len);
        vem_records_hdr_t hdr;
        memcpy(&hdr, bytes, sizeof hdr);
        for (unsigned i = 0; i < w->args->nsinks; i++) {
            zmq_msg_t msg;
            zmq_msg_init_size(&msg, len);
            memcpy(zmq_msg_data(&msg), bytes, len);
            if (vem_actor_send_wait(w->sinks[i], &msg, &w->args->beats) != 0)
                vem_log(VEM_LOG_ERR, "worker",
                        "records of inputs %llu..%llu not handed to sink %u: %s; its cursor "
                        "stays below them and they are replayed at the next start",
                        (unsigned long long)hdr.first_seq, (unsigned long long)hdr.last_seq, i,
                        zmq_strerror(zmq_errno()));
        }
        vem_records_reset(&w->out);
    }
    if (w->last_seq == w->acked)
        return;
    vem_ack_t ack = {.consumer = VEM_CONSUMER_WORKERS, .from = w->args->index, .mark = w->last_seq};
    if (zmq_send(w->acks, &ack, sizeof ack, ZMQ_DONTWAIT) == (int)sizeof ack)
        w->acked = w->last_seq;
}

/* A message from main on the pipe: a registry snapshot or rules to use, or $TERM. True to
 * stop. */
static void s_judge_day(s_worker_t *w);

static void s_history(s_worker_t *w, vem_rsdhist_t *h);

static bool s_on_pipe(s_worker_t *w, void *pipe)
{
    uint8_t msg[sizeof VEM_WORKER_REGISTRY_MSG + sizeof(void *)];
    int len = zmq_recv(pipe, msg, sizeof msg, 0);
    if (len < 0)
        return true;
    if ((size_t)len == sizeof VEM_WORKER_DAY_MSG + sizeof(void *) &&
        memcmp(msg, VEM_WORKER_DAY_MSG, sizeof VEM_WORKER_DAY_MSG) == 0) {
        vem_day_counts_t *counts;
        memcpy(&counts, msg + sizeof VEM_WORKER_DAY_MSG, sizeof counts);
        vem_day_counts_free(w->day_wait); /* a newer day: the older one is judged again later */
        w->day_wait = counts;
        s_judge_day(w);
        return false;
    }
    if ((size_t)len == sizeof VEM_WORKER_HISTORY_MSG + sizeof(void *) &&
        memcmp(msg, VEM_WORKER_HISTORY_MSG, sizeof VEM_WORKER_HISTORY_MSG) == 0) {
        vem_rsdhist_t *h;
        memcpy(&h, msg + sizeof VEM_WORKER_HISTORY_MSG, sizeof h);
        s_history(w, h);
        return false;
    }
    if ((size_t)len == sizeof VEM_WORKER_RULES_MSG + sizeof(void *) &&
        memcmp(msg, VEM_WORKER_RULES_MSG, sizeof VEM_WORKER_RULES_MSG) == 0) {
        vem_rules_config_t *fresh;
        memcpy(&fresh, msg + sizeof VEM_WORKER_RULES_MSG, sizeof fresh);
        w->rules = *fresh;
        free(fresh);
        return false;
    }
    if ((size_t)len == sizeof msg &&
        memcmp(msg, VEM_WORKER_REGISTRY_MSG, sizeof VEM_WORKER_REGISTRY_MSG) == 0) {
        vem_registry_t *fresh;
        memcpy(&fresh, msg + sizeof VEM_WORKER_REGISTRY_MSG, sizeof fresh);
        vem_registry_release(w->registry);
        w->registry = fresh;
        vem_sessions_each(w->sessions, s_refresh_facts, w);
        return false;
    }
    return vem_actor_is_term(msg, (size_t)len);
}

/* Once a second: forgets the idle sessions without rule state and shows the table's size. */
static void s_expire(s_worker_t *w)
{
    int64_t mono = vem_mono_ms();
    if (mono < w->expire_due_ms)
        return;
    w->expire_due_ms = mono + 1000;
    size_t n = vem_sessions_expire(w->sessions, vem_now_us());
    if (n)
        vem_counter_add(w->sess_expired, n);
    vem_gauge_set(w->sessions_now, (int64_t)vem_sessions_count(w->sessions));
}

/* ---- silence -------------------------------------------------------------------------------- */

/* rules.md owes obd.offline to registered vehicles. With no registry loaded (yet), nothing is
 * withheld on a guess. */
static bool s_registered(const s_worker_t *w, const char *vin)
{
    return !w->registry || vem_registry_find(w->registry, vin) != NULL;
}

#define S_SWEEP_MS        10000 /* how often the silence rules look at every vehicle */
#define S_BACKLOG_US      (60 * (int64_t)1000000)
#define S_BACKLOG_IDLE_MS 5000

typedef struct {
    s_worker_t *w;
    int64_t now_us;
    int64_t paused_us; /* intake's paused total at now_us */
    int64_t idle_us;   /* a state with nothing left to judge goes after this long silent */
    uint64_t bytes, released;
    vem_input_hdr_t hdr;
} s_sweep_ctx_t;

/* Silent for idle_us, and nothing left that later inputs or the clock need
 * (vem_rules_vehicle_idle), nor a roadside history on its way (it may still move verdicts). */
static bool s_releasable(const s_sweep_ctx_t *ctx, const s_vstate_t *vs)
{
    return ctx->now_us - s_last_heard(vs) >= ctx->idle_us &&
           vem_rules_vehicle_idle(vs->v, &ctx->w->rules, ctx->now_us) && !vs->hist_waiting;
}

/* The silence rules of one vehicle; then, if it has been silent for idle_us and its state
 * holds nothing later inputs or the clock need (vem_rules_vehicle_idle), the state goes, and
 * with it the session's claim to stay (the session table forgets it like any other). A VIN
 * that comes back gets a new state. So rule state follows the vehicles that drive, not every
 * VIN that ever sent a frame. */
static void s_sweep_vehicle(void *arg, const vem_session_t *session)
{
    s_sweep_ctx_t *ctx = arg;
    void **slot = vem_sessions_state(ctx->w->sessions, session->vin);
    if (!slot || !*slot)
        return;
    s_vstate_t *vs = *slot;
    s_verdict_ctx_t vctx = {ctx->w, &ctx->hdr};
    vem_rules_vehicle_set_registered(vs->v, s_registered(ctx->w, session->vin));
    vem_rules_counts_t was = *vem_rules_vehicle_counts(vs->v), added = {0};
    if (vem_rules_on_silence(vs->v, &ctx->w->rules, ctx->now_us, ctx->paused_us, s_on_verdict,
                             &vctx))
        ctx->w->swept = true;
    vem_rules_counts_add(&added, &was, vem_rules_vehicle_counts(vs->v));
    s_rule_counts_add(ctx->w, &added);
    if (s_releasable(ctx, vs)) {
        s_rules_free(vs);
        *slot = NULL;
        ctx->released++;
        return;
    }
    ctx->bytes += vem_rules_vehicle_bytes(vs->v);
}

/* The same for a vehicle known only by plate (no OBD, so no silence rules): true when its state
 * goes, and its plate with it, leaving room under stations.max_plates. */
static bool s_sweep_plate(void *arg, void *state)
{
    s_sweep_ctx_t *ctx = arg;
    s_vstate_t *vs = state;
    if (s_releasable(ctx, vs)) {
        ctx->released++;
        return true;
    }
    ctx->bytes += vem_rules_vehicle_bytes(vs->v);
    return false;
}

/* The clock's turn for the rules (trips that went quiet end and are judged; obd.offline).
 * None while ingest feeds the workers from the spool (a replay after a restart, a catch-up):
 * a vehicle is not silent only because its data is still on the way. "Now" is the wall clock,
 * but never later than
 *  - the receipt of an input ingest has stamped and not yet handed over (vem_ingest_sweep_now:
 *    the wall clock read first, "behind" after ingest's mark, which ingest clears only once
 *    its inputs are handed over or it has fallen behind);
 *  - while inputs wait in this worker's queue, or a queue of old inputs is worked through, the
 *    newest receipt judged here (ingest hands a worker its inputs in the order it stamped them).
 * A replay judges the frame that breaks a truck's silence before that silence ends its trip;
 * so must the live sweep. The paused total is ingest's at that "now" (the pause in progress
 * included, so no trip goes quiet while intake reads nothing; every pause ended since counted
 * whole), and never less than any judged frame carried (readings carry none, so theirs would
 * miss a restart's downtime): more pause only puts a trip's end later, to where the next
 * frame's receipt gap, live or replayed alike, decides it. Verdicts travel as
 * records of the last input judged here (already settled by its own record). */
static void s_sweep(s_worker_t *w, void *pull)
{
    int64_t mono = vem_mono_ms();
    if (mono < w->sweep_due_ms || w->rules_mark == 0)
        return;
    int64_t wall = vem_now_us();
    int64_t now =
        w->args->staged_from_us ? vem_ingest_sweep_now(wall, w->args->staged_from_us) : wall;
    if (w->args->behind && atomic_load(w->args->behind))
        return;
    int events = 0;
    size_t events_len = sizeof events;
    bool queued =
        zmq_getsockopt(pull, ZMQ_EVENTS, &events, &events_len) != 0 || (events & ZMQ_POLLIN);
    if ((queued && w->newest_rx_us < now) ||
        (w->newest_rx_us < now - S_BACKLOG_US && mono - w->last_input_ms < S_BACKLOG_IDLE_MS))
        now = w->newest_rx_us;
    if (now <= 0)
        return; /* nothing judged since a restore, and inputs wait: at the next turn */
    int64_t paused = w->args->paused_us
                         ? vem_ingest_paused_now(w->args->paused_us, w->args->closed_at_us, now)
                         : 0;
    if (paused < w->newest_paused_us) /* (a wall clock stepped back during a pause) */
        paused = w->newest_paused_us;
    w->sweep_due_ms = mono + S_SWEEP_MS;
    /* never before the fusion history has passed (a late reading may still match it) */
    int64_t idle_s = w->args->session_idle_s;
    if (idle_s < (int64_t)w->rules.fusion_horizon_s)
        idle_s = (int64_t)w->rules.fusion_horizon_s;
    s_sweep_ctx_t ctx = {.w = w,
                         .now_us = now,
                         .paused_us = paused,
                         .idle_us = idle_s * 1000000,
                         .hdr = s_last_input(w, VEM_SOURCE_TERMINAL)};
    vem_sessions_each(w->sessions, s_sweep_vehicle, &ctx);
    vem_plates_sweep(w->plates, s_sweep_plate, &ctx);
    vem_gauge_set(w->state_bytes, (int64_t)ctx.bytes);
    if (ctx.released) {
        vem_counter_add(w->released, ctx.released);
        w->swept = true; /* the next checkpoint leaves them out */
    }
}

/* A day's completeness for the vehicles of this worker (counts from PostgreSQL, see
 * completeness.h). Its verdicts travel like the silence sweep's, as records of the last input
 * judged here: before the first, the day waits. */
static void s_judge_day(s_worker_t *w)
{
    const vem_day_counts_t *counts = w->day_wait;
    if (!counts || !w->judge || w->rules_mark == 0)
        return;
    vem_input_hdr_t hdr = s_last_input(w, VEM_SOURCE_TERMINAL);
    s_verdict_ctx_t ctx = {w, &hdr};
    for (size_t i = 0; i < counts->n; i++) {
        const vem_day_count_t *c = &counts->v[i];
        if (!s_registered(w, c->vin))
            continue; /* owes no obd.offline: not worth a rule state either */
        void **slot = vem_sessions_state_new(w->sessions, c->vin);
        if (!*slot) {
            const vem_vehicle_t *reg = w->registry ? vem_registry_find(w->registry, c->vin) : NULL;
            *slot = s_vstate_new(c->vin, NULL, NULL, reg);
        }
        s_vstate_t *vs = *slot;
        vem_rules_vehicle_set_registered(vs->v, true);
        if (vem_rules_on_day(vs->v, &w->rules, counts->day, c->received, c->running_s, s_on_verdict,
                             &ctx))
            w->swept = true;
    }
    vem_day_counts_free(w->day_wait);
    w->day_wait = NULL;
    s_flush_out(w);
}

/* ---- roadside history ----------------------------------------------------------------------- */

/* Seeds n stored readings into the rule state ingest routes them to (vin "": the plate's);
 * true when that state is kept. */
static bool s_history_state(s_worker_t *w, const char *vin, const char *plate, const char *color,
                            const vem_rsd_reading_t *part, size_t n, s_verdict_ctx_t *ctx)
{
    bool made;
    void **slot = s_reading_slot(w, vin, plate, color, &made);
    if (!slot) {
        vem_counter_add(w->plates_full, n);
        return false;
    }
    s_vstate_t *vs = *slot;
    vs->rsd_history = true;
    /* verdicts need an input to travel with: before the first, no chain was judged live */
    if (vem_rules_history(vs->v, &w->rules, part, n, w->rules_mark ? s_on_verdict : NULL, ctx))
        w->swept = true;
    if (made && vem_rules_vehicle_rsd_links(vs->v) == 0) {
        s_rules_free(vs);
        *slot = NULL;
        return false;
    }
    return true;
}

/* The stored roadside readings of this worker's vehicles (rsdhist.h), one plate after the
 * other: seeded into the rule state where ingest routes them (the registry's VIN for the plate,
 * else the VIN stored with the reading, else the plate), each state's in time order. A state
 * made only for the history is kept when its chains hold something; one that was there (from a
 * checkpoint, or readings judged before the history came) has its changed chains judged again,
 * as records of the last input judged here. */
static void s_history(s_worker_t *w, vem_rsdhist_t *h)
{
    if (!w->judge) {
        vem_rsdhist_free(h);
        return;
    }
    vem_input_hdr_t hdr = s_last_input(w, VEM_SOURCE_ROADSIDE);
    s_verdict_ctx_t ctx = {w, &hdr};
    size_t kept = 0;
    vem_rsd_reading_t *part = malloc((h->n ? h->n : 1) * sizeof *part);
    bool *taken = calloc(h->n ? h->n : 1, sizeof *taken);
    if (!part || !taken)
        abort();
    for (size_t i = 0, j; i < h->n; i = j) {
        const char *plate = h->r[i].plate, *color = h->r[i].plate_color;
        for (j = i + 1; j < h->n && strcmp(h->r[j].plate, plate) == 0 &&
                        strcmp(h->r[j].plate_color, color) == 0;
             j++)
            ;
        const vem_vehicle_t *reg =
            w->registry ? vem_registry_find_plate(w->registry, plate, color) : NULL;
        for (size_t k = i; k < j; k++) { /* the plate's readings of one route, then the next */
            if (taken[k])
                continue;
            size_t n = 0;
            for (size_t m = k; m < j; m++) {
                if (!taken[m] && (reg || strcmp(h->vin[m], h->vin[k]) == 0)) {
                    taken[m] = true;
                    part[n++] = h->r[m];
                }
            }
            const char *vin = reg ? reg->vin : strlen(h->vin[k]) == VEM_VIN_LEN ? h->vin[k] : "";
            kept += s_history_state(w, vin, plate, color, part, n, &ctx);
        }
    }
    free(part);
    free(taken);
    vem_log(VEM_LOG_INFO, "worker", "worker %u: roadside history of %zu readings, %zu vehicles",
            w->args->index, h->n, kept);
    vem_rsdhist_free(h);
    s_flush_out(w);
}

/* ---- checkpoints ---------------------------------------------------------------------------- */

typedef struct {
    s_worker_t *w;
    vem_ckpt_writer_t *cw;
    uint64_t bytes, vehicles;
    int rc;
} s_ckpt_ctx_t;

static void s_ckpt_vehicle(void *arg, const vem_session_t *session)
{
    s_ckpt_ctx_t *ctx = arg;
    void **slot = vem_sessions_state(ctx->w->sessions, session->vin);
    if (!slot || !*slot || ctx->rc != 0)
        return;
    s_vstate_t *vs = *slot;
    size_t len = 0;
    vem_rules_vehicle_save(vs->v, &ctx->w->ckpt_buf, &len, &ctx->w->ckpt_cap);
    ctx->rc = vem_ckpt_add(ctx->cw, session->vin, vs->applied, ctx->w->ckpt_buf, len);
    ctx->bytes += len;
    ctx->vehicles++;
}

/* A plate's state; its colour is in the state itself (rules_ckpt.c), and keys it on restore. */
static void s_ckpt_plate(void *arg, const char *plate, const char *color, void **slot)
{
    (void)color;
    s_ckpt_ctx_t *ctx = arg;
    if (!*slot || ctx->rc != 0)
        return;
    s_vstate_t *vs = *slot;
    size_t len = 0;
    vem_rules_vehicle_save(vs->v, &ctx->w->ckpt_buf, &len, &ctx->w->ckpt_cap);
    ctx->rc = vem_ckpt_add_plate(ctx->cw, plate, vs->applied, ctx->w->ckpt_buf, len);
    ctx->bytes += len;
    ctx->vehicles++;
}

/* Writes every vehicle's rule state to a temp file, through rules_mark. Put in place at once
 * when now is true (the states hold nothing the sinks lack: at start), else once the sinks hold
 * the records up to its through (s_ckpt_settle). */
static void s_ckpt_write(s_worker_t *w, bool now)
{
    char err[600];
    vem_ckpt_writer_t *cw = vem_ckpt_begin(w->args->ckpt_dir, w->args->index, w->args->workers,
                                           w->rules_mark, err, sizeof err);
    s_ckpt_ctx_t ctx = {.w = w, .cw = cw};
    if (cw) {
        vem_sessions_each(w->sessions, s_ckpt_vehicle, &ctx);
        vem_plates_each(w->plates, s_ckpt_plate, &ctx);
    }
    if (!cw || ctx.rc != 0) {
        if (cw)
            snprintf(err, sizeof err, "rules checkpoint of worker %u: write: %s", w->args->index,
                     strerror(errno));
        vem_ckpt_abort(&cw);
        vem_counter_add(w->ckpt_errors, 1);
        vem_log(VEM_LOG_ERR, "worker", "%s; the previous checkpoint stays", err);
        return;
    }
    vem_gauge_set(w->ckpt_bytes, (int64_t)ctx.bytes);
    vem_gauge_set(w->ckpt_vehicles, (int64_t)ctx.vehicles);
    w->pending = cw;
    w->pending_through = w->rules_mark;
    w->pending_next = w->swept;
    w->pending_after = 0;
    w->swept = false;
    if (now) {
        if (vem_ckpt_commit(&w->pending, err, sizeof err) != 0) {
            vem_counter_add(w->ckpt_errors, 1);
            vem_log(VEM_LOG_ERR, "worker", "%s; the previous checkpoint stays", err);
            return;
        }
        vem_counter_add(w->ckpts, 1);
        w->ckpt_through = w->pending_through;
    }
}

/* Puts the pending checkpoint in place once the sinks hold every record up to its through:
 * before that, a crash would replay inputs whose verdicts only the checkpointed state made.
 * Then tells ingest, which may trim the spool up to it. */
static void s_ckpt_settle(s_worker_t *w)
{
    uint64_t output = atomic_load(w->args->output_seq);
    if (w->pending && output >= w->pending_through &&
        (!w->pending_next || (w->pending_after && output >= w->pending_after))) {
        char err[600];
        if (vem_ckpt_commit(&w->pending, err, sizeof err) != 0) {
            vem_counter_add(w->ckpt_errors, 1);
            vem_log(VEM_LOG_ERR, "worker", "%s; the previous checkpoint stays", err);
        } else {
            vem_counter_add(w->ckpts, 1);
            w->ckpt_through = w->pending_through;
        }
    }
    vem_ack_t ack = {
        .consumer = VEM_CONSUMER_RULES, .from = w->args->index, .mark = w->ckpt_through};
    zmq_send(w->acks, &ack, sizeof ack, ZMQ_DONTWAIT); /* cumulative: a lost one is made good */
}

/* The checkpoint's turn in the loop: a new one when the interval is over and something was
 * judged since (none while one waits for the sinks). */
static void s_ckpt_tick(s_worker_t *w)
{
    if (!w->args->ckpt_dir)
        return;
    int64_t now = (vem_mono_ms() * 1000);
    bool wanted = w->args->ckpt_wanted && atomic_load(w->args->ckpt_wanted);
    if (!w->pending && (now >= w->ckpt_due_us || wanted) && w->rules_mark > w->ckpt_through) {
        s_ckpt_write(w, false);
        w->ckpt_due_us = now + (int64_t)w->args->ckpt_interval_s * 1000000;
    }
    s_ckpt_settle(w);
}

/* The vehicles main restored for this worker go back into their session slots. */
static void s_ckpt_restore(s_worker_t *w)
{
    for (size_t i = 0; i < w->args->nckpt; i++) {
        const vem_ckpt_entry_t *e = w->args->ckpt[i];
        char err[300];
        vem_rules_vehicle_t *v = vem_rules_vehicle_load(e->state, e->len, err, sizeof err);
        if (!v) {
            vem_counter_add(w->restore_errors, 1);
            vem_log(VEM_LOG_ERR, "worker", "rule state of %s not restored: %s; it starts afresh",
                    e->vin, err);
            continue;
        }
        s_vstate_t *vs = calloc(1, sizeof *vs);
        if (!vs)
            abort();
        vs->v = v;
        vs->applied = e->applied;
        /* No frame in it, only stations' readings: their silence counts from this start (the
         * checkpoint keeps no receipt of readings). No data either (a login is no data), and a
         * VIN the registry does not know: it counts against the bound of those a station
         * makes, as before the restart (when the registry comes and knows the VIN, it stops
         * counting: s_refresh_facts). */
        if (vem_rules_vehicle_last_received(v) == 0)
            vs->reading_us = vem_now_us();
        if (!e->plate[0] && vem_rules_vehicle_counts(v)->samples == 0 &&
            !(w->registry && vem_registry_find(w->registry, e->vin))) {
            vs->budget = &w->station_vins;
            w->station_vins++;
        }
        void **slot = e->plate[0] ? vem_plates_slot(w->plates, e->plate,
                                                    vem_rules_vehicle_plate_color(v), true)
                                  : vem_sessions_state_new(w->sessions, e->vin);
        if (!slot) { /* more plates than stations.max_plates allows now */
            s_rules_free(vs);
            vem_counter_add(w->restore_errors, 1);
            continue;
        }
        if (*slot)
            s_rules_free(*slot); /* the same vehicle twice: the later file wins */
        *slot = vs;
        vem_counter_add(w->restored, 1);
    }
    w->rules_mark = w->args->rules_floor;
    w->last_rx_us = w->args->rules_floor_rx_us;
    /* after whatever that input itself emitted, and after what a run started earlier emitted
     * before its first input (the same seq and receipt) */
    w->emission = vem_now_us();
    w->ckpt_through = w->args->rules_floor;
    w->ckpt_due_us = (vem_mono_ms() * 1000) + (int64_t)w->args->ckpt_interval_s * 1000000;
    w->sweep_due_ms = vem_mono_ms() + S_SWEEP_MS;
    if (w->args->ckpt_dir)
        s_ckpt_write(w, true); /* this run's file, so main can remove those of a bigger run */
}

void vem_worker_actor(void *pipe, void *args_)
{
    vem_worker_args_t *args = args_;
    s_worker_t w = {.args = args, .judge = args->rules != NULL};
    if (args->rules)
        w.rules = *args->rules;
    char endpoint[64], err[160];
    void *pull = zmq_socket(args->zctx, ZMQ_PULL);
    void *rep = zmq_socket(args->zctx, ZMQ_REP);
    int zero = 0;
    zmq_setsockopt(pull, ZMQ_RCVHWM, &args->rcvhwm, sizeof args->rcvhwm);
    zmq_setsockopt(pull, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(rep, ZMQ_LINGER, &zero, sizeof zero);
    snprintf(endpoint, sizeof endpoint, VEM_WORKER_ENDPOINT, args->index);
    int rc = zmq_bind(pull, endpoint);
    if (rc == 0) {
        snprintf(endpoint, sizeof endpoint, VEM_WORKER_QUERY_ENDPOINT, args->index);
        rc = zmq_bind(rep, endpoint);
    }
    if (rc != 0) {
        snprintf(err, sizeof err, "cannot bind %s: %s", endpoint, zmq_strerror(zmq_errno()));
        zmq_close(pull);
        zmq_close(rep);
        vem_actor_ready(pipe, err);
        return;
    }
    w.acks = zmq_socket(args->zctx, ZMQ_PUSH);
    zmq_setsockopt(w.acks, ZMQ_LINGER, &zero, sizeof zero);
    zmq_connect(w.acks, VEM_ACK_ENDPOINT);
    w.sinks = calloc(args->nsinks ? args->nsinks : 1, sizeof *w.sinks);
    if (!w.sinks)
        abort();
    for (unsigned i = 0; i < args->nsinks; i++) {
        w.sinks[i] = zmq_socket(args->zctx, ZMQ_PUSH);
        zmq_setsockopt(w.sinks[i], ZMQ_SNDHWM, &args->sink_hwm, sizeof args->sink_hwm);
        int forever = -1; /* the sinks stop after us and read their queues empty */
        zmq_setsockopt(w.sinks[i], ZMQ_LINGER, &forever, sizeof forever);
        zmq_connect(w.sinks[i], args->sinks[i]);
    }
    w.sessions = vem_sessions_new(args->dedup_window);
    vem_sessions_set_limits(w.sessions, args->max_sessions, args->session_idle_s * 1000000);
    vem_sessions_set_state_free(w.sessions, s_rules_free);
    w.plates = vem_plates_new(args->max_plates ? args->max_plates : 1, s_rules_free);
    w.frame = malloc(sizeof *w.frame);
    if (!w.frame)
        abort();
    s_register(&w, args->metrics);
    if (w.judge)
        s_ckpt_restore(&w);
    vem_actor_ready(pipe, NULL);

    for (;;) {
        atomic_fetch_add_explicit(&args->beats, 1, memory_order_relaxed);
        zmq_pollitem_t items[] = {
            {pipe, 0, ZMQ_POLLIN, 0}, {pull, 0, ZMQ_POLLIN, 0}, {rep, 0, ZMQ_POLLIN, 0}};
        /* waiting history loads go on at once, a batch per turn */
        bool resume = w.hist_nwait && vem_mono_ms() >= w.hist_off_until_ms;
        if (zmq_poll(items, 3, resume ? 0 : 1000) < 0) {
            if (zmq_errno() == EINTR)
                continue;
            break;
        }
        if ((items[0].revents & ZMQ_POLLIN) && s_on_pipe(&w, pipe))
            break;
        /* A bounded batch per wake-up, so queries and $TERM are never starved. */
        for (int i = 0; i < VEM_WORKER_BATCH && s_take(&w, pull, ZMQ_DONTWAIT); i++)
            ;
        s_flush_out(&w);
        s_expire(&w);
        s_history_idle(&w);
        if (w.judge) {
            s_history_resume(&w);
            if (w.day_wait)
                s_judge_day(&w);
            s_sweep(&w, pull);
            s_ckpt_tick(&w);
        }
        if (items[2].revents & ZMQ_POLLIN)
            s_answer(&w, rep);
    }
    /* Drain: ingest has stopped before us, so what is queued is all there is. */
    for (unsigned n = 1; s_take(&w, pull, ZMQ_DONTWAIT); n++)
        if (n % VEM_WORKER_BATCH == 0)
            s_flush_out(&w);
    s_flush_out(&w);
    /* The last checkpoint: written now, put in place by main once the sinks, which stop after
     * us, have stored everything (a pending one that never got there is dropped for it). */
    if (w.judge && args->ckpt_dir) {
        if (w.pending && atomic_load(args->output_seq) >= w.pending_through)
            s_ckpt_settle(&w);
        if (w.pending && w.pending_next)
            w.swept = true; /* the sweep it held stays unproven in the one that replaces it */
        vem_ckpt_abort(&w.pending);
        if (w.rules_mark > w.ckpt_through)
            s_ckpt_write(&w, false);
        args->pending_ckpt = w.pending;
        args->pending_through = w.pending_through;
        args->pending_swept = w.pending && w.pending_next;
        w.pending = NULL;
    }
    free(w.ckpt_buf);
    PQfinish(w.hist_conn);
    free(w.hist_wait);
    vem_day_counts_free(w.day_wait);
    zmq_close(pull);
    zmq_close(w.acks);
    for (unsigned i = 0; i < args->nsinks; i++)
        zmq_close(w.sinks[i]);
    free(w.sinks);
    vem_records_free(&w.out);
    vem_registry_release(w.registry);
    zmq_close(rep);
    vem_sessions_destroy(&w.sessions);
    vem_plates_destroy(&w.plates);
    free(w.frame);
}
