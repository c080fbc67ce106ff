/* check_rules_order — verdicts that do not depend on the order the data comes in.
 *
 * A decision of vemd: rules are functions of the data and its timestamps, so a replay, a
 * re-sent backlog or a back-fill gives the verdicts live data gives, with the same ids. Each
 * case below is a small set of roadside readings (rsd.no_exceed) or OBD snapshots (obd.mil_on)
 * fed in every order. The expected verdicts are those of time order, worked by hand from
 * rules.md (written next to each case); every order must emit each of them, with the same
 * rule, severity, id, end and (roadside) number of readings, and must leave the same state
 * behind, so that whatever comes next is judged the same. A verdict emitted before an older
 * reading came is not taken back (rules_rsd.c, rules.c s_mil): such verdicts are the only
 * others an order may emit, and they are counted, not forbidden.
 *
 * Ids: vem_rules_id of (rule, plate, "r=STATION/READING") for roadside chains, anchored at the
 * chain's oldest reading; of (rule, VIN, "t=<start in us>") for MIL episodes (rules_out.c).
 *
 * Times: T0 = 1709596800 is 2024-03-05T08:00:00+08:00; six natural months later is
 * 2024-09-05T08:00:00+08:00 = 1725494400 (check_rules.c works both out). */
#include "rules.h"
#include "rules_int.h"
#include "testutil.h"

#include <check.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VIN   "LZZORDERVIN000001"
#define PLATE "京C24680"
#define T0    1709596800LL
#define T6M   1725494400LL
#define DAY   86400LL
#define US(t) ((int64_t)(t)*1000000)

/* ---- verdicts ----------------------------------------------------------------------------- */

typedef struct {
    vem_rule_t rule;
    vem_severity_t severity;
    char id[VEM_RULES_ID_LEN];
    int64_t first_us, last_us;
    size_t nreadings; /* roadside: readings in the evidence */
} s_got_t;

typedef struct {
    s_got_t v[64];
    int n;
} s_log_t;

static void s_collect(void *arg, const vem_violation_t *v)
{
    s_log_t *log = arg;
    ck_assert_int_lt(log->n, 64);
    s_got_t *g = &log->v[log->n++];
    g->rule = v->rule;
    g->severity = v->severity;
    memcpy(g->id, v->id, sizeof g->id);
    g->first_us = v->first_us;
    g->last_us = v->last_us;
    g->nreadings = json_array_size(json_object_get(v->evidence, "readings"));
}

/* Steps through every permutation of idx[0 .. n) in lexicographic order; false after the last. */
static bool s_next_perm(int *idx, int n)
{
    int i = n - 2;
    while (i >= 0 && idx[i] >= idx[i + 1])
        i--;
    if (i < 0)
        return false;
    int j = n - 1;
    while (idx[j] <= idx[i])
        j--;
    int t = idx[i];
    idx[i] = idx[j];
    idx[j] = t;
    for (int a = i + 1, b = n - 1; a < b; a++, b--) {
        t = idx[a];
        idx[a] = idx[b];
        idx[b] = t;
    }
    return true;
}

/* An expected verdict: severity, the reading (roadside) or instant (MIL) its id is anchored
 * at, its last reading or snapshot, and (roadside) how many readings it rests on. */
typedef struct {
    vem_severity_t severity;
    const char *anchor; /* roadside: reading id */
    int64_t start;      /* MIL: the episode's start, epoch s */
    const char *last;   /* roadside: reading id of the last */
    int64_t last_s;     /* MIL: the snapshot that showed it */
    size_t nreadings;
} s_want_t;

#define S_MAX_WANT 6

/* ---- roadside ----------------------------------------------------------------------------- */

typedef struct {
    const char *id;
    int64_t t; /* epoch s; the reading is at t + 0.25 s */
    double no; /* ppm: limit a is 1500, exceeded strictly above */
} s_rd_t;

typedef struct {
    const char *name;
    int n;
    s_rd_t r[5];
    int nwant;
    s_want_t want[S_MAX_WANT];
} s_rsd_case_t;

#define E 1600 /* above 1500: an exceedance */
#define C 1400 /* at most 1500: compliant */
#define V VEM_SEVERITY_VIOLATION
#define N VEM_SEVERITY_NOTICE
#define W(sev, anchor, last, n)                                                                    \
    {                                                                                              \
        sev, anchor, 0, last, 0, n                                                                 \
    }

static const s_rsd_case_t s_rsd_cases[] = {
    /* rules.md: "two or more consecutive valid exceedances ... the first exceedance is a
     * notice, the one that completes the rule a violation whose evidence lists all the readings
     * it rests on". a: notice on {a}; b: violation on {a, b}; c is compliant after them. The
     * order a, c, b used to lose the violation. */
    {"exceedance, exceedance, then compliant",
     3,
     {{"a", T0, E}, {"b", T0 + DAY, E}, {"c", T0 + 2 * DAY, C}},
     2,
     {W(N, "a", "a", 1), W(V, "a", "b", 2)}},
    /* "consecutive means no valid compliant reading of that pollutant in between": b breaks
     * the run; a and c are each the first exceedance of their own: two notices */
    {"a compliant reading between two exceedances",
     3,
     {{"a", T0, E}, {"b", T0 + DAY, C}, {"c", T0 + 2 * DAY, E}},
     2,
     {W(N, "a", "a", 1), W(N, "c", "c", 1)}},
    /* a run of three: notice, violation on two, violation on three, all under a's id */
    {"three exceedances",
     3,
     {{"a", T0, E}, {"b", T0 + DAY, E}, {"c", T0 + 2 * DAY, E}},
     3,
     {W(N, "a", "a", 1), W(V, "a", "b", 2), W(V, "a", "c", 3)}},
    /* "within 6 natural months": b is six months and one day after a, so b starts a chain of
     * its own (notice under b's id); c, a day later, completes it */
    {"more than six months apart",
     3,
     {{"a", T0, E}, {"b", T6M + DAY, E}, {"c", T6M + 2 * DAY, E}},
     3,
     {W(N, "a", "a", 1), W(N, "b", "b", 1), W(V, "b", "c", 2)}},
    /* the cycle cuts a run: T0 + 6 months is T0 + 184 days. b (day 100) completes {a, b}; c
     * (day 200) is more than six months after a: its verdict rests on {b, c}, under b's id */
    {"the cycle cuts a run",
     3,
     {{"a", T0, E}, {"b", T0 + 100 * DAY, E}, {"c", T0 + 200 * DAY, E}},
     3,
     {W(N, "a", "a", 1), W(V, "a", "b", 2), W(V, "b", "c", 2)}},
    /* a compliant reading first: the run after it is b, c; d ends it */
    {"compliant, two exceedances, compliant",
     4,
     {{"a", T0, C}, {"b", T0 + DAY, E}, {"c", T0 + 2 * DAY, E}, {"d", T0 + 3 * DAY, C}},
     2,
     {W(N, "b", "b", 1), W(V, "b", "c", 2)}},
    /* two runs split by c: {a, b} and {d, e}, each a notice then a violation */
    {"two runs",
     5,
     {{"a", T0, E},
      {"b", T0 + DAY, E},
      {"c", T0 + 2 * DAY, C},
      {"d", T0 + 3 * DAY, E},
      {"e", T0 + 4 * DAY, E}},
     4,
     {W(N, "a", "a", 1), W(V, "a", "b", 2), W(N, "d", "d", 1), W(V, "d", "e", 2)}},
    /* the same reading twice is judged once: the copy of a emits nothing in any order */
    {"a re-sent copy",
     3,
     {{"a", T0, E}, {"a", T0, E}, {"b", T0 + DAY, E}},
     2,
     {W(N, "a", "a", 1), W(V, "a", "b", 2)}},
};

static void s_reading(vem_rsd_reading_t *r, const s_rd_t *d)
{
    vem_rules_reading_init(r);
    snprintf(r->station_id, sizeof r->station_id, "S01");
    snprintf(r->reading_id, sizeof r->reading_id, "%s", d->id);
    snprintf(r->plate, sizeof r->plate, "%s", PLATE);
    r->time_us = US(d->t) + 250000;
    r->fuel = VEM_FUEL_DIESEL;
    r->valid = true;
    r->speed_kmh = 40;
    r->accel_ms2 = 0.2;
    r->vsp_kw_t = 5;
    r->wind_ms = 2;
    r->slope_pct = 1;
    r->no_ppm = d->no;
}

static int64_t s_time_of(const s_rsd_case_t *c, const char *id)
{
    for (int i = 0; i < c->n; i++)
        if (strcmp(c->r[i].id, id) == 0)
            return US(c->r[i].t) + 250000;
    ck_abort_msg("%s: no reading %s", c->name, id);
    return 0;
}

/* Feeds the case's readings in the order idx to a new vehicle; returns it. */
static vem_rules_vehicle_t *s_rsd_feed(const s_rsd_case_t *c, const int *idx, s_log_t *log)
{
    vem_rules_config_t cfg;
    vem_rules_config_defaults(&cfg);
    vem_rules_vehicle_t *v = vem_rules_vehicle_new(NULL, PLATE, NULL);
    for (int k = 0; k < c->n; k++) {
        vem_rsd_reading_t r;
        s_reading(&r, &c->r[idx[k]]);
        vem_rules_on_reading(v, &cfg, &r, (uint64_t)k + 1, s_collect, log);
    }
    return v;
}

static const s_got_t *s_latest(const s_log_t *log, const char *id);

/* True when the last emission of every id in the log rests on consecutive exceedances: no
 * compliant reading of the case lies inside its span (rules.md: "consecutive means no valid
 * compliant reading of that pollutant in between"). */
static bool s_consecutive(const s_log_t *log, const s_rsd_case_t *c, int *bad)
{
    for (int i = 0; i < log->n; i++) {
        const s_got_t *g = s_latest(log, log->v[i].id);
        for (int k = 0; k < c->n; k++) {
            int64_t t = US(c->r[k].t) + 250000;
            if (c->r[k].no <= 1500 && t > g->first_us && t < g->last_us) {
                *bad = i;
                return false;
            }
        }
    }
    return true;
}

static bool s_emitted(const s_log_t *log, vem_rule_t rule, const s_want_t *w, const char *id,
                      int64_t last_us)
{
    for (int i = 0; i < log->n; i++) {
        const s_got_t *g = &log->v[i];
        if (g->rule == rule && g->severity == w->severity && strcmp(g->id, id) == 0 &&
            g->last_us == last_us && (rule == VEM_RULE_OBD_MIL_ON || g->nreadings == w->nreadings))
            return true;
    }
    return false;
}

/* The last emission of id in the log (what a sink that keeps each id's latest holds); NULL when
 * none. */
static const s_got_t *s_latest(const s_log_t *log, const char *id)
{
    const s_got_t *last = NULL;
    for (int i = 0; i < log->n; i++)
        if (strcmp(log->v[i].id, id) == 0)
            last = &log->v[i];
    return last;
}

static void s_same_chain(const vem_rules_chain_t *a, const vem_rules_chain_t *b, const char *name,
                         int perm)
{
    ck_assert_msg(a && b && a->n == b->n, "%s, order %d: chains of different lengths", name, perm);
    for (uint32_t i = 0; i < a->n; i++)
        ck_assert_msg(a->links[i].time_us == b->links[i].time_us &&
                          a->links[i].over == b->links[i].over &&
                          strcmp(a->links[i].reading_id, b->links[i].reading_id) == 0,
                      "%s, order %d: reading %u of the chain differs", name, perm, i);
}

START_TEST(roadside_in_every_order)
{
    const s_rsd_case_t *c = &s_rsd_cases[_i];
    char ids[S_MAX_WANT][VEM_RULES_ID_LEN];
    for (int w = 0; w < c->nwant; w++) {
        char anchor[64];
        snprintf(anchor, sizeof anchor, "r=S01/%s", c->want[w].anchor);
        vem_rules_id(VEM_RULE_RSD_NO, PLATE, anchor, ids[w]);
    }
    int idx[5];
    for (int i = 0; i < c->n; i++)
        idx[i] = i;
    /* time order (the table is in it) emits exactly the expected verdicts */
    s_log_t ref = {0};
    vem_rules_vehicle_t *in_order = s_rsd_feed(c, idx, &ref);
    ck_assert_msg(ref.n == c->nwant, "%s: %d verdicts in time order, expected %d", c->name, ref.n,
                  c->nwant);
    int perms = 0, others = 0;
    do {
        s_log_t log = {0};
        vem_rules_vehicle_t *v = s_rsd_feed(c, idx, &log);
        for (int w = 0; w < c->nwant; w++)
            ck_assert_msg(s_emitted(&log, VEM_RULE_RSD_NO, &c->want[w], ids[w],
                                    s_time_of(c, c->want[w].last)),
                          "%s, order %d: %s on %zu readings to %s (id of %s) not emitted", c->name,
                          perms, c->want[w].severity == V ? "violation" : "notice",
                          c->want[w].nreadings, c->want[w].last, c->want[w].anchor);
        /* and each id of time order ends as time order left it: a verdict a later (older)
         * reading changed is emitted again as it now stands, even when that is less */
        for (int w = 0; w < ref.n; w++) {
            const s_got_t *want = s_latest(&ref, ref.v[w].id), *got = s_latest(&log, ref.v[w].id);
            ck_assert_msg(got && got->severity == want->severity && got->last_us == want->last_us &&
                              got->nreadings == want->nreadings,
                          "%s, order %d: the id of verdict %d does not end as in time order",
                          c->name, perms, w);
        }
        /* and no id, of time order or one an order made, ends on a verdict across a compliant
         * reading */
        int bad = -1;
        ck_assert_msg(
            s_consecutive(&log, c, &bad),
            "%s, order %d: verdict %d (last emission of its id) spans a compliant reading", c->name,
            perms, bad);
        others += log.n - c->nwant;
        s_same_chain(in_order->rsd.chain[0], v->rsd.chain[0], c->name, perms);
        ck_assert_uint_eq(vem_rules_vehicle_counts(v)->readings_late, 0);
        vem_rules_vehicle_destroy(&v);
        perms++;
    } while (s_next_perm(idx, c->n));
    fprintf(stderr, "rules_order: %s: %d orders, %d verdicts emitted before an older reading\n",
            c->name, perms, others);
    vem_rules_vehicle_destroy(&in_order);
}
END_TEST

/* ---- MIL ---------------------------------------------------------------------------------- */

typedef struct {
    int64_t t;
    bool on;
} s_snap_t;

typedef struct {
    const char *name;
    int n;
    s_snap_t s[5];
    int nwant;
    s_want_t want[S_MAX_WANT];
} s_mil_case_t;

#define M(sev, start, last)                                                                        \
    {                                                                                              \
        sev, NULL, start, NULL, last, 0                                                            \
    }

/* rules.md obd.mil_on: "notice at once; violation if still on after mil_days (7)". Snapshots are
 * hours or days apart: further apart than trip_gap_min (10 minutes), as the snapshots of a
 * re-sent backlog are from the live ones around them. */
static const s_mil_case_t s_mil_cases[] = {
    /* on from T0: the notice at T0; on 8 days later (> 7 days): the violation, on_at T0 + 8 d */
    {"on for eight days",
     3,
     {{T0, true}, {T0 + 3 * DAY, true}, {T0 + 8 * DAY, true}},
     2,
     {M(N, T0, T0), M(V, T0, T0 + 8 * DAY)}},
    /* off in between: two episodes, a notice each; the second is four days old at most */
    {"off between two on",
     3,
     {{T0, true}, {T0 + 2 * DAY, false}, {T0 + 4 * DAY, true}},
     2,
     {M(N, T0, T0), M(N, T0 + 4 * DAY, T0 + 4 * DAY)}},
    /* off before and after: one episode from T0 + 1 d; on at T0 + 9 d is 8 days on: violation */
    {"an episode between two off",
     4,
     {{T0, false}, {T0 + DAY, true}, {T0 + 9 * DAY, true}, {T0 + 10 * DAY, false}},
     2,
     {M(N, T0 + DAY, T0 + DAY), M(V, T0 + DAY, T0 + 9 * DAY)}},
    /* off at T0 + 4 d splits: {T0} and {T0 + 8 d} are one-snapshot episodes, no violation */
    {"off splits eight days",
     3,
     {{T0, true}, {T0 + 4 * DAY, false}, {T0 + 8 * DAY, true}},
     2,
     {M(N, T0, T0), M(N, T0 + 8 * DAY, T0 + 8 * DAY)}},
    /* off at T0 + 8.5 d ends an episode already 8 days on: its violation stands, shown by
     * T0 + 8 d, whatever snapshot escalated it first; T0 + 9 d is an episode of its own */
    {"off after eight days",
     4,
     {{T0, true}, {T0 + 8 * DAY, true}, {T0 + 8 * DAY + DAY / 2, false}, {T0 + 9 * DAY, true}},
     3,
     {M(N, T0, T0), M(V, T0, T0 + 8 * DAY), M(N, T0 + 9 * DAY, T0 + 9 * DAY)}},
    /* exactly 7 days is not "after 7 days"; 7 days and an hour is */
    {"seven days and an hour",
     4,
     {{T0, true}, {T0 + 7 * DAY, true}, {T0 + 7 * DAY + 3600, true}, {T0 + 8 * DAY, false}},
     2,
     {M(N, T0, T0), M(V, T0, T0 + 7 * DAY + 3600)}},
};

/* An OBD-only real-time frame at t with the MIL on or off. */
static void s_snapshot(vem_hj1239_frame_t *f, int64_t t, bool on)
{
    vem_test_envelope(f, VEM_HJ1239_CMD_REALTIME, VIN, t);
    f->layout = VEM_HJ1239_LAYOUT_BLOCK_TIME;
    vem_hj1239_block_t *b = &f->blocks[f->nblocks++];
    memset(b, 0, sizeof *b);
    b->type = VEM_HJ1239_BLOCK_OBD;
    b->time = t;
    b->raw[VEM_HJ1239_F_OBD_PROTOCOL] = 2;
    b->raw[VEM_HJ1239_F_MIL] = on;
    b->raw[VEM_HJ1239_F_DIAG_SUPPORTED] = 0x0C00;
    b->raw[VEM_HJ1239_F_DIAG_READY] = 0x0C00;
    vem_hj1239_obd_t *o = &f->obd[f->nobd++];
    memset(o, 0, sizeof *o);
    memcpy(o->vin, VIN, 17);
    b->novalue = vem_hj1239_novalue(b);
}

static vem_rules_vehicle_t *s_mil_feed(const s_snap_t *s, int n, const int *idx, s_log_t *log)
{
    vem_rules_config_t cfg;
    vem_rules_config_defaults(&cfg);
    vem_rules_vehicle_t *v = vem_rules_vehicle_new(VIN, NULL, NULL);
    vem_hj1239_frame_t *f = malloc(sizeof *f);
    ck_assert_ptr_nonnull(f);
    for (int k = 0; k < n; k++) {
        const s_snap_t *x = &s[idx ? idx[k] : k];
        s_snapshot(f, x->t, x->on);
        vem_rules_on_frame(v, &cfg, f, US(x->t) + 1500000, 0, (uint64_t)k + 1, s_collect, log);
    }
    free(f);
    return v;
}

static void s_mil_id(int64_t start, char id[VEM_RULES_ID_LEN])
{
    char anchor[64];
    snprintf(anchor, sizeof anchor, "t=%" PRId64, US(start));
    vem_rules_id(VEM_RULE_OBD_MIL_ON, VIN, anchor, id);
}

START_TEST(mil_in_every_order)
{
    const s_mil_case_t *c = &s_mil_cases[_i];
    int idx[5];
    for (int i = 0; i < c->n; i++)
        idx[i] = i;
    s_log_t ref = {0};
    vem_rules_vehicle_t *in_order = s_mil_feed(c->s, c->n, idx, &ref);
    ck_assert_msg(ref.n == c->nwant, "%s: %d verdicts in time order, expected %d", c->name, ref.n,
                  c->nwant);
    int perms = 0, others = 0;
    do {
        s_log_t log = {0};
        vem_rules_vehicle_t *v = s_mil_feed(c->s, c->n, idx, &log);
        for (int w = 0; w < c->nwant; w++) {
            char id[VEM_RULES_ID_LEN];
            s_mil_id(c->want[w].start, id);
            ck_assert_msg(
                s_emitted(&log, VEM_RULE_OBD_MIL_ON, &c->want[w], id, US(c->want[w].last_s)),
                "%s, order %d: %s of the episode from T0 + %" PRId64 " s not emitted", c->name,
                perms, c->want[w].severity == V ? "violation" : "notice",
                (int64_t)(c->want[w].start - T0));
        }
        /* and each episode's id ends as time order left it (an "off" snapshot that comes after
         * the "on" ones around it splits their episode: its violation is taken back) */
        for (int w = 0; w < ref.n; w++) {
            const s_got_t *want = s_latest(&ref, ref.v[w].id), *got = s_latest(&log, ref.v[w].id);
            ck_assert_msg(got && got->severity == want->severity && got->last_us == want->last_us,
                          "%s, order %d: the id of verdict %d does not end as in time order",
                          c->name, perms, w);
        }
        others += log.n - c->nwant;
        ck_assert_uint_eq(v->nmil, in_order->nmil);
        for (uint32_t k = 0; k < v->nmil; k++)
            ck_assert_msg(v->mil[k].first.sec == in_order->mil[k].first.sec &&
                              v->mil[k].last.sec == in_order->mil[k].last.sec &&
                              v->mil[k].on == in_order->mil[k].on,
                          "%s, order %d: MIL run %u differs", c->name, perms, k);
        ck_assert_uint_eq(vem_rules_vehicle_counts(v)->late_mil, 0);
        vem_rules_vehicle_destroy(&v);
        perms++;
    } while (s_next_perm(idx, c->n));
    fprintf(stderr, "rules_order: %s: %d orders, %d verdicts emitted before an older snapshot\n",
            c->name, perms, others);
    vem_rules_vehicle_destroy(&in_order);
}
END_TEST

/* ---- bounds ------------------------------------------------------------------------------- */

/* A chain holds 64 readings. Exceedances f1 .. f64 an hour apart, then f65: f1 goes, and from
 * then on a late reading is judged only when what its verdict rests on is held (its run below it
 * and the reading that closes it; rules_rsd.c). x, between f10 and f11, has the run f2 .. f10
 * below it, down to the oldest held (which would go for it): what came before f2 is not known,
 * so x is counted late, no verdict, nothing changes. y, between f40 and f41, has f10 .. f40 below
 * it, closed by f9 (the one below the 32 a verdict rests on): judged. Its verdict rests on the 32
 * newest exceedances up to it, f10 .. f40 and y, a violation under f10's id, which is what time
 * order gives; and the exceedances after it, f41 .. f65, whose 32 now include y, are emitted again
 * as they now stand (f41's rests on f11 .. f40, y, f41): 26 verdicts. */
START_TEST(roadside_bound)
{
    vem_rules_config_t cfg;
    vem_rules_config_defaults(&cfg);
    vem_rules_vehicle_t *v = vem_rules_vehicle_new(NULL, PLATE, NULL);
    char id[16];
    for (int i = 1; i <= 65; i++) {
        snprintf(id, sizeof id, "f%d", i);
        s_rd_t d = {id, T0 + i * 3600, E};
        vem_rsd_reading_t r;
        s_reading(&r, &d);
        vem_rules_on_reading(v, &cfg, &r, (uint64_t)i, NULL, NULL);
    }
    const vem_rules_chain_t *c = v->rsd.chain[0];
    ck_assert_uint_eq(c->n, 64);
    ck_assert(c->truncated);
    ck_assert_str_eq(c->links[0].reading_id, "f2");
    s_log_t log = {0};
    s_rd_t x = {"x", T0 + 10 * 3600 + 60, E};
    vem_rsd_reading_t r;
    s_reading(&r, &x);
    ck_assert_uint_eq(vem_rules_on_reading(v, &cfg, &r, 66, s_collect, &log), 0);
    ck_assert_uint_eq(vem_rules_vehicle_counts(v)->readings_late, 1);
    ck_assert_str_eq(c->links[0].reading_id, "f2");
    s_rd_t y = {"y", T0 + 40 * 3600 + 60, E};
    s_reading(&r, &y);
    ck_assert_uint_eq(vem_rules_on_reading(v, &cfg, &r, 67, s_collect, &log), 26);
    ck_assert_uint_eq(vem_rules_vehicle_counts(v)->readings_late, 1);
    c = v->rsd.chain[0];
    ck_assert_uint_eq(c->n, 64);
    ck_assert_str_eq(c->links[0].reading_id, "f3");
    char want[VEM_RULES_ID_LEN];
    vem_rules_id(VEM_RULE_RSD_NO, PLATE, "r=S01/f10", want);
    ck_assert_int_eq(log.v[0].severity, VEM_SEVERITY_VIOLATION);
    ck_assert_str_eq(log.v[0].id, want);
    ck_assert_uint_eq(log.v[0].nreadings, 32);
    ck_assert_int_eq(log.v[0].last_us, US(y.t) + 250000);
    vem_rules_id(VEM_RULE_RSD_NO, PLATE, "r=S01/f11", want);
    ck_assert_str_eq(log.v[1].id, want);
    ck_assert_int_eq(log.v[1].last_us, US(T0 + 41 * 3600) + 250000);
    vem_rules_vehicle_destroy(&v);
}
END_TEST

/* Feeds reading id at t (epoch s) with no ppm NO; returns the verdicts it emitted. */
static unsigned s_feed_one(vem_rules_vehicle_t *v, const vem_rules_config_t *cfg, const char *id,
                           int64_t t, double no, s_log_t *log)
{
    s_rd_t d = {id, t, no};
    vem_rsd_reading_t r;
    s_reading(&r, &d);
    return vem_rules_on_reading(v, cfg, &r, 1, log ? s_collect : NULL, log);
}

/* Readings PREFIX1 .. PREFIXn, an hour apart, reading i taken at base + i hours. */
static void s_feed_hourly(vem_rules_vehicle_t *v, const vem_rules_config_t *cfg, const char *prefix,
                          int n, int64_t base, double no)
{
    char id[16];
    for (int i = 1; i <= n; i++) {
        snprintf(id, sizeof id, "%s%d", prefix, i);
        s_feed_one(v, cfg, id, base + i * 3600, no, NULL);
    }
}

/* Ids from tests/data/rules/rule_id.py (vem_rules_id worked in Python):
 *   rule_id.py rsd.no_exceed 京C24680 r=S01/e1 -> 2c15d766464fda4b2028e74fc900a6b8
 *   rule_id.py rsd.no_exceed 京C24680 r=S01/e2 -> 2c15d866464fdbfe2028ea4fc900abd1
 *   rule_id.py rsd.no_exceed 京C24680 r=S01/g1 -> 2c1ce36646560d5d2021db4fc8fa73a6 */
#define S_ID_E1 "2c15d766464fda4b2028e74fc900a6b8"
#define S_ID_E2 "2c15d866464fdbfe2028ea4fc900abd1"
#define S_ID_G1 "2c1ce36646560d5d2021db4fc8fa73a6"

/* A late exceedance whose context is held is judged, however few readings lie below it.
 * c1 .. c30 compliant an hour apart up to 07:00 (T0 - 1 h), e2 an exceedance at 11:00, d1 ..
 * d40 compliant from 12:00: 71 readings, c1 .. c7 went, c8 is the oldest held. e2 was a notice
 * under its own id (c30 before it). Then e1, an exceedance at 10:00, comes: its place has 23
 * readings below it, but the one just below, c30, is compliant: e1's verdict rests on [e1]
 * alone (and c30), e2's on [e1, e2] (and c30), all held. Time order gives e1 a notice under e1's
 * id, then e2 a violation on [e1, e2] under e1's id; e1 emits both, in time order (rules_rsd.c:
 * a reading emits the verdicts it changed), and c8 goes to make room.
 * Then the same with the run's closer at the bottom: k0, k1 compliant, g1 .. g14 exceedances,
 * h1 .. h48 compliant (64 held, none gone); l, an exceedance between g14 and h1, has its run
 * g1 .. g14 closed by k1, which stays held when k0 goes for it: a violation on [g1 .. g14, l]
 * (15 readings) under g1's id; h1 after it is compliant, so nothing else changes. */
START_TEST(roadside_late_with_context)
{
    vem_rules_config_t cfg;
    vem_rules_config_defaults(&cfg);
    vem_rules_vehicle_t *v = vem_rules_vehicle_new(NULL, PLATE, NULL);
    char id[16];
    s_log_t log = {0};
    for (int i = 1; i <= 30; i++) {
        snprintf(id, sizeof id, "c%d", i);
        s_feed_one(v, &cfg, id, T0 - (31 - i) * 3600, C, NULL);
    }
    ck_assert_uint_eq(s_feed_one(v, &cfg, "e2", T0 + 3 * 3600, E, &log), 1);
    ck_assert_int_eq(log.v[0].severity, N);
    ck_assert_str_eq(log.v[0].id, S_ID_E2);
    s_feed_hourly(v, &cfg, "d", 40, T0 + 3 * 3600, C);
    const vem_rules_chain_t *c = v->rsd.chain[0];
    ck_assert_uint_eq(c->n, VEM_RULES_CHAIN_HELD);
    ck_assert(c->truncated);
    ck_assert_str_eq(c->links[0].reading_id, "c8");
    log.n = 0;
    ck_assert_uint_eq(s_feed_one(v, &cfg, "e1", T0 + 2 * 3600, E, &log), 2);
    ck_assert_uint_eq(vem_rules_vehicle_counts(v)->readings_late, 0);
    ck_assert_int_eq(log.v[0].severity, N);
    ck_assert_str_eq(log.v[0].id, S_ID_E1);
    ck_assert_uint_eq(log.v[0].nreadings, 1);
    ck_assert_int_eq(log.v[0].last_us, US(T0 + 2 * 3600) + 250000);
    ck_assert_int_eq(log.v[1].severity, V);
    ck_assert_str_eq(log.v[1].id, S_ID_E1);
    ck_assert_uint_eq(log.v[1].nreadings, 2);
    ck_assert_int_eq(log.v[1].last_us, US(T0 + 3 * 3600) + 250000);
    c = v->rsd.chain[0];
    ck_assert_uint_eq(c->n, VEM_RULES_CHAIN_HELD);
    ck_assert_str_eq(c->links[0].reading_id, "c9");
    vem_rules_vehicle_destroy(&v);

    v = vem_rules_vehicle_new(NULL, PLATE, NULL);
    s_feed_one(v, &cfg, "k0", T0, C, NULL);
    s_feed_one(v, &cfg, "k1", T0 + 3600, C, NULL);
    s_feed_hourly(v, &cfg, "g", 14, T0 + 3600, E);
    s_feed_hourly(v, &cfg, "h", 48, T0 + 15 * 3600, C);
    c = v->rsd.chain[0];
    ck_assert_uint_eq(c->n, VEM_RULES_CHAIN_HELD);
    ck_assert(!c->truncated);
    log.n = 0;
    ck_assert_uint_eq(s_feed_one(v, &cfg, "l", T0 + 15 * 3600 + 1800, E, &log), 1);
    ck_assert_uint_eq(vem_rules_vehicle_counts(v)->readings_late, 0);
    ck_assert_int_eq(log.v[0].severity, V);
    ck_assert_str_eq(log.v[0].id, S_ID_G1);
    ck_assert_uint_eq(log.v[0].nreadings, 15);
    c = v->rsd.chain[0];
    ck_assert(c->truncated);
    ck_assert_str_eq(c->links[0].reading_id, "k1");
    vem_rules_vehicle_destroy(&v);
}
END_TEST

/* A late exceedance whose context is not held stays counted and unjudged. g1 .. g20
 * exceedances an hour apart, h1 .. h50 compliant after them: g1 .. g6 went, g7 is the oldest
 * held. l, an exceedance between g20 and h1, would rest on g7 .. g20 and on whatever came
 * before g7, which is gone (an exceedance or a compliant reading: a violation or not, and under
 * which id): counted late, nothing emitted, the chain as it was. Then with k1 compliant before
 * g1 .. g14 and h1 .. h49 after them (64 held, none gone): k1 closes l's run, but it is the
 * reading that would go to make room for l: late too. */
START_TEST(roadside_late_without_context)
{
    vem_rules_config_t cfg;
    vem_rules_config_defaults(&cfg);
    vem_rules_vehicle_t *v = vem_rules_vehicle_new(NULL, PLATE, NULL);
    s_log_t log = {0};
    s_feed_hourly(v, &cfg, "g", 20, T0, E);
    s_feed_hourly(v, &cfg, "h", 50, T0 + 20 * 3600, C);
    const vem_rules_chain_t *c = v->rsd.chain[0];
    ck_assert_str_eq(c->links[0].reading_id, "g7");
    ck_assert_uint_eq(s_feed_one(v, &cfg, "l", T0 + 20 * 3600 + 1800, E, &log), 0);
    ck_assert_int_eq(log.n, 0);
    ck_assert_uint_eq(vem_rules_vehicle_counts(v)->readings_late, 1);
    c = v->rsd.chain[0];
    ck_assert_uint_eq(c->n, VEM_RULES_CHAIN_HELD);
    ck_assert_str_eq(c->links[0].reading_id, "g7");
    ck_assert_str_eq(c->links[14].reading_id, "h1");
    vem_rules_vehicle_destroy(&v);

    v = vem_rules_vehicle_new(NULL, PLATE, NULL);
    s_feed_one(v, &cfg, "k1", T0 + 3600, C, NULL);
    s_feed_hourly(v, &cfg, "g", 14, T0 + 3600, E);
    s_feed_hourly(v, &cfg, "h", 49, T0 + 15 * 3600, C);
    c = v->rsd.chain[0];
    ck_assert_uint_eq(c->n, VEM_RULES_CHAIN_HELD);
    ck_assert(!c->truncated);
    ck_assert_uint_eq(s_feed_one(v, &cfg, "l", T0 + 15 * 3600 + 1800, E, &log), 0);
    ck_assert_int_eq(log.n, 0);
    ck_assert_uint_eq(vem_rules_vehicle_counts(v)->readings_late, 1);
    c = v->rsd.chain[0];
    ck_assert_str_eq(c->links[0].reading_id, "k1");
    ck_assert_str_eq(c->links[15].reading_id, "h1");
    vem_rules_vehicle_destroy(&v);
}
END_TEST

/* A cut never makes a verdict more severe. b (T0 + 1 d) comes first: its notice, under b's id.
 * Then a (T0), c (T0 + 2 d), d (T0 + 4 d): the run a .. d, a violation under a's id. Then x
 * (T0 + 3 d), compliant, cuts it after c: a's id holds a, b, c (a violation); d's holds d, a
 * notice; b's id held only b and reached nowhere near x, so it stays the notice it was (the
 * run from b up to x would be a violation on b and c: a second one for the same run). */
START_TEST(roadside_cut_never_raises)
{
    vem_rules_config_t cfg;
    vem_rules_config_defaults(&cfg);
    vem_rules_vehicle_t *v = vem_rules_vehicle_new(NULL, PLATE, NULL);
    s_log_t log = {0};
    ck_assert_uint_eq(s_feed_one(v, &cfg, "b", T0 + DAY, E, &log), 1);
    s_feed_one(v, &cfg, "a", T0, E, &log);
    s_feed_one(v, &cfg, "c", T0 + 2 * DAY, E, &log);
    s_feed_one(v, &cfg, "d", T0 + 4 * DAY, E, &log);
    log.n = 0;
    ck_assert_uint_eq(s_feed_one(v, &cfg, "x", T0 + 3 * DAY, C, &log), 2);
    char ida[VEM_RULES_ID_LEN], idd[VEM_RULES_ID_LEN];
    vem_rules_id(VEM_RULE_RSD_NO, PLATE, "r=S01/a", ida);
    vem_rules_id(VEM_RULE_RSD_NO, PLATE, "r=S01/d", idd);
    ck_assert_str_eq(log.v[0].id, ida);
    ck_assert_int_eq(log.v[0].severity, V);
    ck_assert_uint_eq(log.v[0].nreadings, 3);
    ck_assert_str_eq(log.v[1].id, idd);
    ck_assert_int_eq(log.v[1].severity, N);
    vem_rules_vehicle_destroy(&v);
}
END_TEST

/* Nor when readings came between since: with rsd_chain_n 3, c (T0 + 1 d) and f (T0 + 5 d) come
 * first: c's id holds the notice of c and f. Then a (T0), d (T0 + 2 d), e (T0 + 3 d): the run a
 * .. f under a's id. x (T0 + 4 d), compliant, cuts it after e: a's id holds a, c, d, e (a
 * violation); c's id, whose notice reached f, holds c and d, two readings as it did (c, d, e would
 * be a second violation of the run); f's id f's notice. */
START_TEST(roadside_cut_keeps_a_notice_short)
{
    vem_rules_config_t cfg;
    vem_rules_config_defaults(&cfg);
    cfg.rsd_chain_n = 3;
    vem_rules_vehicle_t *v = vem_rules_vehicle_new(NULL, PLATE, NULL);
    s_log_t log = {0};
    static const s_rd_t rd[] = {{"c", T0 + DAY, E},
                                {"f", T0 + 5 * DAY, E},
                                {"a", T0, E},
                                {"d", T0 + 2 * DAY, E},
                                {"e", T0 + 3 * DAY, E}};
    for (int k = 0; k < 5; k++) {
        log.n = 0;
        s_feed_one(v, &cfg, rd[k].id, rd[k].t, rd[k].no, &log);
    }
    log.n = 0;
    ck_assert_uint_eq(s_feed_one(v, &cfg, "x", T0 + 4 * DAY, C, &log), 3);
    char ida[VEM_RULES_ID_LEN], idc[VEM_RULES_ID_LEN];
    vem_rules_id(VEM_RULE_RSD_NO, PLATE, "r=S01/a", ida);
    vem_rules_id(VEM_RULE_RSD_NO, PLATE, "r=S01/c", idc);
    const s_got_t *a = s_latest(&log, ida), *c = s_latest(&log, idc);
    ck_assert_ptr_nonnull(a);
    ck_assert_int_eq(a->severity, V);
    ck_assert_uint_eq(a->nreadings, 4);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(c->severity, N);
    ck_assert_uint_eq(c->nreadings, 2);
    ck_assert_int_eq(c->last_us, US(T0 + 2 * DAY) + 250000);
    vem_rules_vehicle_destroy(&v);
}
END_TEST

/* A history load that completes a run it also cuts: with rsd_chain_n 4, a (T0), c (T0 + 2 d) and
 * e (T0 + 6 d) came live, a's id the notice of all three. The history brings b (T0 + 1 d) and c2
 * (T0 + 3 d), both over, and x (T0 + 4 d), compliant: the runs are a, b, c, c2 (a violation, four
 * readings) and e. The last verdict under a's id is that violation, whatever came before it. */
START_TEST(roadside_history_completes_what_it_cuts)
{
    vem_rules_config_t cfg;
    vem_rules_config_defaults(&cfg);
    cfg.rsd_chain_n = 4;
    vem_rules_vehicle_t *v = vem_rules_vehicle_new(NULL, PLATE, NULL);
    s_log_t log = {0};
    s_feed_one(v, &cfg, "a", T0, E, &log);
    s_feed_one(v, &cfg, "c", T0 + 2 * DAY, E, &log);
    s_feed_one(v, &cfg, "e", T0 + 6 * DAY, E, &log);
    static const s_rd_t past[] = {
        {"b", T0 + DAY, E}, {"c2", T0 + 3 * DAY, E}, {"x", T0 + 4 * DAY, C}};
    vem_rsd_reading_t r[3];
    for (int k = 0; k < 3; k++) {
        s_reading(&r[k], &past[k]);
        r[k].received_us = US(past[k].t + 60);
    }
    log.n = 0;
    vem_rules_history(v, &cfg, r, 3, s_collect, &log);
    char ida[VEM_RULES_ID_LEN], ide[VEM_RULES_ID_LEN];
    vem_rules_id(VEM_RULE_RSD_NO, PLATE, "r=S01/a", ida);
    vem_rules_id(VEM_RULE_RSD_NO, PLATE, "r=S01/e", ide);
    const s_got_t *a = s_latest(&log, ida), *e = s_latest(&log, ide);
    ck_assert_ptr_nonnull(a);
    ck_assert_int_eq(a->severity, V);
    ck_assert_uint_eq(a->nreadings, 4);
    ck_assert_int_eq(a->last_us, US(T0 + 3 * DAY) + 250000);
    ck_assert_ptr_nonnull(e);
    ck_assert_int_eq(e->severity, N);
    ck_assert_uint_eq(e->nreadings, 1);
    vem_rules_vehicle_destroy(&v);
}
END_TEST

/* Readings of one instant: the chain orders them by station and reading id, and a cut among
 * them is a cut. With rsd_chain_n 3: a (T0 + 42 h), e (T0 + 48 h), and b, c, d all at T0 + 54 h,
 * c compliant, the others over; time order is a, e, b, c, d. Fed e, b, d, a, c: once c comes,
 * no id's last verdict spans it (e's id held e, b, d across it). */
START_TEST(roadside_cut_at_one_instant)
{
    vem_rules_config_t cfg;
    vem_rules_config_defaults(&cfg);
    cfg.rsd_chain_n = 3;
    vem_rules_vehicle_t *v = vem_rules_vehicle_new(NULL, PLATE, NULL);
    static const s_rd_t rd[] = {{"e", T0 + 48 * 3600, E},
                                {"b", T0 + 54 * 3600, E},
                                {"d", T0 + 54 * 3600, E},
                                {"a", T0 + 42 * 3600, E},
                                {"c", T0 + 54 * 3600, C}};
    s_log_t log = {0};
    for (int k = 0; k < 5; k++)
        s_feed_one(v, &cfg, rd[k].id, rd[k].t, rd[k].no, &log);
    char ide[VEM_RULES_ID_LEN];
    vem_rules_id(VEM_RULE_RSD_NO, PLATE, "r=S01/e", ide);
    const s_got_t *e = s_latest(&log, ide);
    ck_assert_ptr_nonnull(e);
    ck_assert_msg(e->nreadings <= 2, "e's id still rests on %zu readings, across c", e->nreadings);
    vem_rules_vehicle_destroy(&v);
}
END_TEST

/* Readings of one instant are told apart by their whole station and reading ids, whatever bytes
 * those hold: e1 (station "S", reading "1/x") and r (station "S/1", reading "x") at T0 + 1 d,
 * both over, then a (T0), over: the run a, e1, r under a's id, and e1's id the violation of e1
 * and r it held before a came. Then c (station "S", reading "2"), compliant, at the same
 * instant: by station and reading id it lies between e1 and r. Three verdicts: a's id a and e1,
 * e1's id e1 alone (a notice), r's id r alone. (e1's and r's ids are one: a verdict's id names
 * its oldest reading as "station/reading", which these two share; not changed here.) */
START_TEST(roadside_cut_between_ids_alike)
{
    vem_rules_config_t cfg;
    vem_rules_config_defaults(&cfg);
    vem_rules_vehicle_t *v = vem_rules_vehicle_new(NULL, PLATE, NULL);
    static const struct {
        const char *station, *id;
        int64_t t;
        double no;
    } rd[] = {{"S", "1/x", T0 + DAY, E},
              {"S/1", "x", T0 + DAY, E},
              {"S", "a", T0, E},
              {"S", "2", T0 + DAY, C}};
    s_log_t log = {0};
    unsigned n = 0;
    for (int k = 0; k < 4; k++) {
        s_rd_t d = {rd[k].id, rd[k].t, rd[k].no};
        vem_rsd_reading_t r;
        s_reading(&r, &d);
        snprintf(r.station_id, sizeof r.station_id, "%s", rd[k].station);
        log.n = k == 3 ? 0 : log.n;
        n = vem_rules_on_reading(v, &cfg, &r, (uint64_t)k + 1, s_collect, &log);
    }
    ck_assert_uint_eq(n, 3);
    char id[VEM_RULES_ID_LEN];
    vem_rules_id(VEM_RULE_RSD_NO, PLATE, "r=S/a", id);
    const s_got_t *g = s_latest(&log, id);
    ck_assert(g && g->severity == V && g->nreadings == 2);
    vem_rules_id(VEM_RULE_RSD_NO, PLATE, "r=S/1/x", id);
    g = s_latest(&log, id);
    ck_assert(g && g->severity == N && g->nreadings == 1);
    ck_assert_int_eq(log.v[1].severity, N); /* e1's, before r's */
    ck_assert_uint_eq(log.v[1].nreadings, 1);
    vem_rules_vehicle_destroy(&v);
}
END_TEST

/* A run longer than VEM_RULES_CHAIN_MAX: e1 .. e40 an hour apart, all exceedances, in time order.
 * e32's verdict rests on e1 .. e32 (under e1's id), e33's on e2 .. e33 (under e2's), ... e40's on
 * e9 .. e40 (under e9's). Then c, compliant, taken between e20 and e21, comes: the runs are e1
 * .. e20 and e21 .. e40. Under e1's id, e1 .. e20 (a violation on 20 readings); under e2 .. e9's,
 * which held verdicts reaching past c, the run from each up to c (e5: e5 .. e20, 16 readings);
 * e21 .. e40 emitted again under e21's id, the last on all 20. 1 + 8 + 20 verdicts, and none
 * spans c. */
START_TEST(roadside_long_run_cut)
{
    vem_rules_config_t cfg;
    vem_rules_config_defaults(&cfg);
    vem_rules_vehicle_t *v = vem_rules_vehicle_new(NULL, PLATE, NULL);
    s_log_t log = {0};
    char id[16];
    for (int i = 1; i <= 40; i++) {
        snprintf(id, sizeof id, "e%d", i);
        log.n = 0;
        ck_assert_uint_eq(s_feed_one(v, &cfg, id, T0 + i * 3600, E, &log), 1);
    }
    log.n = 0;
    ck_assert_uint_eq(s_feed_one(v, &cfg, "c", T0 + 20 * 3600 + 1800, C, &log), 29);
    s_rsd_case_t cut = {"c", 1, {{"c", T0 + 20 * 3600 + 1800, C}}, 0, {{0}}};
    int bad = -1;
    ck_assert_msg(s_consecutive(&log, &cut, &bad), "verdict %d spans c", bad);
    char want[VEM_RULES_ID_LEN], anchor[32];
    vem_rules_id(VEM_RULE_RSD_NO, PLATE, "r=S01/e1", want);
    const s_got_t *g = s_latest(&log, want);
    ck_assert_ptr_nonnull(g);
    ck_assert_int_eq(g->severity, VEM_SEVERITY_VIOLATION);
    ck_assert_uint_eq(g->nreadings, 20);
    ck_assert_int_eq(g->last_us, US(T0 + 20 * 3600) + 250000);
    for (int k = 2; k <= 9; k++) {
        snprintf(anchor, sizeof anchor, "r=S01/e%d", k);
        vem_rules_id(VEM_RULE_RSD_NO, PLATE, anchor, want);
        g = s_latest(&log, want);
        ck_assert_msg(g && g->nreadings == (size_t)(21 - k) &&
                          g->last_us == US(T0 + 20 * 3600) + 250000,
                      "e%d's id does not end on e%d .. e20", k, k);
    }
    vem_rules_id(VEM_RULE_RSD_NO, PLATE, "r=S01/e21", want);
    g = s_latest(&log, want);
    ck_assert_ptr_nonnull(g);
    ck_assert_uint_eq(g->nreadings, 20);
    ck_assert_int_eq(g->last_us, US(T0 + 40 * 3600) + 250000);
    vem_rules_vehicle_destroy(&v);
}
END_TEST

/* What the MIL runs cannot place. An off snapshot between two on snapshots 5 minutes apart
 * (one run: the snapshots around it are not held) is counted (late_mil) and changes nothing.
 * Sixteen runs are held: with a seventeenth (on and off alternating, so no two runs of one
 * state to join) the oldest goes, and a snapshot before the oldest held is counted too. */
START_TEST(mil_bound)
{
    s_snap_t in_run[] = {{T0, true}, {T0 + 300, true}, {T0 + 120, false}};
    s_log_t log = {0};
    vem_rules_vehicle_t *v = s_mil_feed(in_run, 3, NULL, &log);
    ck_assert_int_eq(log.n, 1); /* the notice at T0 */
    ck_assert_uint_eq(vem_rules_vehicle_counts(v)->late_mil, 1);
    ck_assert_uint_eq(v->nmil, 1);
    ck_assert_int_eq(v->mil[0].last.sec, T0 + 300);
    vem_rules_vehicle_destroy(&v);

    s_snap_t runs[18];
    for (int i = 0; i < 17; i++)
        runs[i] = (s_snap_t){T0 + (i + 1) * 3600, i % 2 == 0};
    runs[17] = (s_snap_t){T0, false};
    log.n = 0;
    v = s_mil_feed(runs, 18, NULL, &log);
    ck_assert_int_eq(log.n, 9); /* a notice for each "on" hour: 1, 3, ..., 17 */
    ck_assert_uint_eq(v->nmil, VEM_RULES_MIL_RUNS);
    ck_assert(v->mil_truncated);
    ck_assert_int_eq(v->mil[0].first.sec, T0 + 2 * 3600);
    ck_assert_uint_eq(vem_rules_vehicle_counts(v)->late_mil, 1);
    vem_rules_vehicle_destroy(&v);
}
END_TEST

Suite *vem_suite_rules_order(void);
Suite *vem_suite_rules_order(void)
{
    Suite *s = suite_create("rules_order");
    TCase *tc = tcase_create("permutations");
    tcase_add_loop_test(tc, roadside_in_every_order, 0, sizeof s_rsd_cases / sizeof *s_rsd_cases);
    tcase_add_loop_test(tc, mil_in_every_order, 0, sizeof s_mil_cases / sizeof *s_mil_cases);
    tcase_add_test(tc, roadside_bound);
    tcase_add_test(tc, roadside_late_with_context);
    tcase_add_test(tc, roadside_late_without_context);
    tcase_add_test(tc, roadside_long_run_cut);
    tcase_add_test(tc, roadside_cut_never_raises);
    tcase_add_test(tc, roadside_cut_keeps_a_notice_short);
    tcase_add_test(tc, roadside_cut_at_one_instant);
    tcase_add_test(tc, roadside_cut_between_ids_alike);
    tcase_add_test(tc, roadside_history_completes_what_it_cuts);
    tcase_add_test(tc, mil_bound);
    suite_add_tcase(s, tc);
    return s;
}
