/* it_rules — the rules inside vemd, end to end: vem-sim trucks that misbehave in known ways
 * (its truth says which), vemd's workers judge them, the PostgreSQL sink stores the verdicts.
 *
 *   flagged_exactly   trucks with the MIL on get obd.mil_on, the truck whose terminal reports
 *                     its removal gets obd.tamper, and no other truck gets either
 *   replay_same_ids   the same inputs replayed from the spool after a restart (cursor reset)
 *                     give the same verdicts under the same ids: nothing is added; the same
 *                     with the rule-state checkpoints removed, so every input is judged again
 *   kill9_same_verdicts  a fleet whose trucks misbehave for many minutes of their own time
 *                     (MIL on, frozen NOx sensor, SCR removed, removal alarm) gets exactly the
 *                     verdicts each misbehaviour calls for and no other truck any verdict;
 *                     with vemd killed (SIGKILL) twice in the middle of it, it stores the same
 *                     verdicts (vehicle, rule, severity, id, start) as the same fleet under a
 *                     vemd left alone: the open spans survived in the checkpoints
 *   link_drop_same_verdicts  the same fleet with every truck's link dropped for the middle third
 *                     of the run (longer than a trip's gap) and the hole re-sent among live
 *                     frames: the same verdicts as the fleet whose links never dropped
 *   daily_completeness  samples stored for an old enough day, one VIN with every other second
 *                     missing (1000 of 1999: 0.50025) and one with 20 of 2000 missing (0.99),
 *                     one that drives 2000 s from 10:00 and 2000 s from 16:00 with every
 *                     sample, one that sends a sample every 11 minutes while its odometer
 *                     advances, and a GB 17691 terminal with every sample, ten to a frame that
 *                     carries one time, one that sends every 11 minutes with no odometer, and
 *                     a VIN like the first that the registry does not know: vemd judges the day
 *                     at start; the first, the fourth and the sixth get an obd.offline notice
 *                     (the third's engine ran 4000 s, not the 23,600 s from its first sample to
 *                     its last: rules.md divides by engine-running seconds; the fifth sent 2000
 *                     samples, not 200 distinct times; the seventh is not registered)
 *   reload_switches_rules  a rule switched off in the file judges nothing; after the switch is
 *                     removed and SIGHUP sent, it does
 *   idle_state_released  20 trucks drive, log out and go silent: once silent past
 *                     pipeline.session_idle_s with nothing left to judge, each one's rule state
 *                     is let go (counted), the workers hold 0 bytes of rule state, and the
 *                     sessions then expire; a truck that comes back gets a state again
 *   roadside_history_from_pg  roadside readings stored in PostgreSQL before vemd starts (no
 *                     checkpoint, no spool): one new exceedance per plate completes the rsd.*
 *                     chain the stored ones began, under the id of its oldest reading (by plate
 *                     and, for a registered plate, by VIN), while an exceedance 6 natural months
 *                     and one day older than the new one does not chain
 *   roadside_history_bounds  40 stored exceedances of one plate and a new one: the violation
 *                     rests on the newest 32 (the chain's bound), as if vemd had seen them all
 *                     (the load takes 33 per plate and pollutant); a vemd allowed 1 reading of
 *                     history says the load was cut
 *   roadside_history_on_demand  readings of a plate stored after the start (as for a state let
 *                     go idle), then a backlog of a late exceedance and a new one: the new state
 *                     loads the stored ones before judging the late one, which chains with the
 *                     stored exceedance before it (a violation under that one's id, nothing
 *                     under its own), and the stored compliant reading keeps the new one a
 *                     notice, not a violation across it; the state then goes on as any other;
 *                     a state held by a VIN a station read takes that VIN's stored readings,
 *                     not its plate's stored without one; a registered VIN's state takes its
 *                     plate's, stored under whatever VIN a station read; with the workers'
 *                     connections closed by the server, the next loads reconnect, no failure
 *   roadside_history_db_down  PostgreSQL down at 6 new states' first readings: a worker's load
 *                     fails (logged, counted; no other load in that worker for 30 s), the
 *                     readings are judged without it, their verdicts stored once it is back;
 *                     after the 30 s the 6 states load their history all the same, and a stored
 *                     exceedance makes one state's notice a violation
 *   roadside_history_queue_full  PostgreSQL down while 2300 new plates pass: up to 1024 states a
 *                     worker wait for their history and load it once it is back; the rest are
 *                     counted once each
 *   roadside_history_db_slow  rsd_readings locked by another session for 15 s at a new state's
 *                     first reading: the load gives up at the statement timeout, counted and
 *                     logged, and the reading's notice is stored once the lock is gone
 *   roadside_history_replay_to_a_lagging_sink  two exceedances stored by PostgreSQL while
 *                     Kafka's brokers are down, vemd killed and started again with them up: the
 *                     history loaded at start holds both, and the catch-up from Kafka's cursor
 *                     still gives Kafka the notice and the violation live data gave
 *   stop_same_verdicts  vemd stopped for 135 s mid-trip with trip_gap_min = 1, the trucks
 *                     re-sending what they collected meanwhile: the stop counts as intake
 *                     paused, so the trips go on and the verdicts are those of a vemd left
 *                     alone (ids and starts)
 *   spool_full_pause_same_verdicts  a 1 MiB spool full for 135 s (PostgreSQL stopped) with
 *                     trip_gap_min = 1: the trucks' trips go on across the pause (silence is
 *                     measured on the intake clock), so the verdicts are those of the same
 *                     fleet under a vemd that never paused, with the burst after the pause
 *                     fed to the workers from the spool (queue_hwm = 10)
 *   window_verdict_survives_a_stop  registered trucks whose removed SCRs fail the NOx window,
 *                     judged when the silence sweep ends their trips (a verdict no input
 *                     caused, bearing the seq of an input the sink stored before): PostgreSQL
 *                     stopped before the sweep, vemd stopped after it, both started again:
 *                     the window verdicts are stored, those of a vemd left alone (the last
 *                     checkpoint, whose state had ended the trips, was not put in place)
 *   (and vemctl explain shows a stored verdict, and refuses an unknown id)
 *
 * Expected vehicles come from vem-sim's truth ("misbehaving"), never from vemd. */
#include "clock.h"
#include "completeness.h"
#include "itutil.h"
#include "testutil.h"

#include <check.h>
#include <signal.h>
#include <time.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* "vin rule severity" lines of the verdicts stored for the VINs starting with prefix, sorted. */
static char *s_verdicts(PGconn *conn, const char *prefix, const char *rules_sql)
{
    char sql[400], like[32];
    snprintf(like, sizeof like, "%s%%", prefix);
    snprintf(sql, sizeof sql,
             "SELECT string_agg(vin || ' ' || rule || ' ' || severity || ' ' || violation_id, "
             "E'\\n' ORDER BY vin, rule, violation_id) FROM violations WHERE vin LIKE $1 AND %s",
             rules_sql);
    const char *params[] = {like};
    PGresult *res = PQexecParams(conn, sql, 1, NULL, params, NULL, NULL, 0);
    ck_assert_int_eq(PQresultStatus(res), PGRES_TUPLES_OK);
    char *out = strdup(PQgetisnull(res, 0, 0) ? "" : PQgetvalue(res, 0, 0));
    PQclear(res);
    return out;
}

/* Runs a small fleet with two MIL-on trucks and one removal alarm, and waits for its rows. */
static json_t *s_fleet(vem_it_run_t *r, const char *prefix)
{
    char *argv[] = {"--trucks",    "8",        "--rate",       "5",
                    "--samples",   "10",       "--duration",   "15",
                    "--seed",      "51",       "--vin-prefix", (char *)prefix,
                    "--misbehave", "mil_on:2", "--misbehave",  "removal_alarm:1"};
    pid_t sim = vem_it_run_sim(r, argv, (int)(sizeof argv / sizeof argv[0]));
    ck_assert_int_eq(vem_it_wait(sim, 60), 0);
    json_t *truth = vem_it_truth(r);
    PGconn *conn = vem_it_pg();
    vem_it_compare_rows(conn, "obd_samples", prefix, truth);
    PQfinish(conn);
    json_decref(vem_it_sink_settled(r));
    return truth;
}

static int s_cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The lines of text (freed), sorted bytewise and joined again. */
static char *s_sorted(char *text)
{
    const char *lines[256];
    size_t n = 0;
    for (char *save = NULL, *l = strtok_r(text, "\n", &save); l && n < 256;
         l = strtok_r(NULL, "\n", &save))
        lines[n++] = l;
    qsort(lines, n, sizeof *lines, s_cmp_str);
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%s%s", i ? "\n" : "", lines[i]);
    fclose(f);
    free(text);
    return out;
}

/* What each misbehaviour of vem-sim breaks (rules.md): a MIL on with emission DTCs reported
 * is an obd.mil_on and an obd.dtc notice; a frozen downstream NOx sensor and a removal alarm
 * are obd.tamper; a removed SCR converts nothing (obd.scr_ineffective); an empty reagent tank
 * is obd.reagent_empty, and without reagent the SCR converts nothing either. */
static const struct {
    const char *scenario;
    const char *verdicts[2];
} s_breaks[] = {
    {"mil_on", {"obd.dtc notice", "obd.mil_on notice"}},
    {"frozen_nox", {"obd.tamper violation", NULL}},
    {"removal_alarm", {"obd.tamper violation", NULL}},
    {"scr_removed", {"obd.scr_ineffective violation", NULL}},
    {"urea_empty", {"obd.reagent_empty violation", "obd.scr_ineffective violation"}},
};

/* Every verdict the truth calls for, "vin rule severity" lines sorted: the trucks vem-sim made
 * misbehave with what their misbehaviour breaks, and nothing for the others; only those of
 * the rules in `only` (NULL-terminated) when it is not NULL. */
static bool s_among(const char *verdict, const char *const *only)
{
    for (; only && *only; only++)
        if (strncmp(verdict, *only, strlen(*only)) == 0 && verdict[strlen(*only)] == ' ')
            return true;
    return !only;
}

static char *s_expected(json_t *truth, const char *const *only)
{
    json_t *bad = json_object_get(truth, "misbehaving");
    ck_assert_ptr_nonnull(bad);
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    const char *vin;
    json_t *list;
    json_object_foreach(bad, vin, list)
    {
        size_t k;
        json_t *name;
        json_array_foreach(list, k, name)
        {
            size_t b = 0;
            while (b < sizeof s_breaks / sizeof s_breaks[0] &&
                   strcmp(s_breaks[b].scenario, json_string_value(name)) != 0)
                b++;
            ck_assert_msg(b < sizeof s_breaks / sizeof s_breaks[0], "misbehaviour %s",
                          json_string_value(name));
            for (int v = 0; v < 2 && s_breaks[b].verdicts[v]; v++)
                if (s_among(s_breaks[b].verdicts[v], only))
                    fprintf(f, "%s %s\n", vin, s_breaks[b].verdicts[v]);
        }
    }
    fclose(f);
    return s_sorted(out);
}

/* Drops the ids from "vin rule severity id" lines. */
static char *s_without_ids(const char *lines)
{
    char *out = strdup(lines), *w = out;
    for (const char *p = lines; *p;) {
        const char *eol = strchr(p, '\n');
        size_t n = eol ? (size_t)(eol - p) : strlen(p);
        const char *last = p + n;
        while (last > p && last[-1] != ' ')
            last--;
        size_t keep = last > p ? (size_t)(last - p - 1) : n;
        memcpy(w, p, keep);
        w += keep;
        if (eol)
            *w++ = '\n';
        p = eol ? eol + 1 : p + n;
    }
    *w = '\0';
    return out;
}

START_TEST(flagged_exactly)
{
    vem_it_run_t r = {0};
    vem_it_start(&r, "it_rules");
    json_t *truth = s_fleet(&r, "LRULEA");
    PGconn *conn = vem_it_pg();
    char *got = s_verdicts(conn, "LRULEA", "rule IN ('obd.mil_on', 'obd.tamper')");
    char *want = s_expected(truth, (const char *[]){"obd.mil_on", "obd.tamper", NULL});
    char *bare = s_sorted(s_without_ids(got));
    fprintf(stderr, "it_rules flagged_exactly: verdicts\n%s\n", got);
    ck_assert_str_eq(bare, want);
    /* vemctl explain of the tamper verdict: the id is the last word of its line */
    const char *line = strstr(got, "obd.tamper violation ");
    ck_assert_ptr_nonnull(line);
    char id[33] = "", cmd[900], out[400];
    ck_assert_int_eq(sscanf(line, "obd.tamper violation %32s", id), 1);
    snprintf(out, sizeof out, "%s/explain.txt", r.dir);
    snprintf(cmd, sizeof cmd, "'%s/vemctl' explain %s --db '%s' > '%s'", vem_test_bin_dir(), id,
             vem_test_env("VEM_TEST_PG"), out);
    ck_assert_int_eq(system(cmd), 0);
    size_t len;
    uint8_t *raw = vem_test_slurp(out, &len);
    ck_assert_ptr_nonnull(raw);
    char *text = calloc(1, len + 1); /* as a string */
    memcpy(text, raw, len);
    free(raw);
    ck_assert_msg(strstr(text, "obd.tamper violation of ") && strstr(text, id) &&
                      strstr(text, "why, step by step:"),
                  "vemctl explain printed:\n%s", text);
    free(text);
    snprintf(cmd, sizeof cmd,
             "'%s/vemctl' explain 00000000000000000000000000000000 --db '%s' "
             "2>/dev/null",
             vem_test_bin_dir(), vem_test_env("VEM_TEST_PG"));
    ck_assert_int_ne(system(cmd), 0);
    free(bare);
    free(want);
    free(got);
    PQfinish(conn);
    json_decref(truth);
    vem_it_stop(&r);
}
END_TEST

START_TEST(replay_same_ids)
{
    vem_it_run_t r = {0};
    vem_it_start(&r, "it_rules");
    json_decref(s_fleet(&r, "LRULEB"));
    PGconn *conn = vem_it_pg();
    char *before = s_verdicts(conn, "LRULEB", "true");
    ck_assert_str_ne(before, "");
    vem_it_halt(&r);
    char path[320];
    snprintf(path, sizeof path, "%s/spool/cursor.pg", r.dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("0\n", f); /* everything spooled goes through the workers and the rules again */
    fclose(f);
    vem_it_launch(&r);
    json_decref(vem_it_sink_settled(&r));
    char *after = s_verdicts(conn, "LRULEB", "true");
    ck_assert_str_eq(after, before);
    /* once more without the rule state: every spooled input is judged afresh */
    vem_it_halt(&r);
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("0\n", f);
    fclose(f);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -f '%s'/spool/rules.*.ckpt", r.dir);
    ck_assert_int_eq(system(cmd), 0);
    vem_it_launch(&r);
    json_decref(vem_it_sink_settled(&r));
    ck_assert(vem_it_log_has(&r, "rule state: 0 vehicles from 0 checkpoints"));
    char *again = s_verdicts(conn, "LRULEB", "true");
    ck_assert_str_eq(again, before);
    free(again);
    free(before);
    free(after);
    PQfinish(conn);
    vem_it_stop(&r);
}
END_TEST

/* "vin rule severity id first_at" of every verdict for the prefix, sorted. */
static char *s_episodes(PGconn *conn, const char *prefix)
{
    char like[32];
    snprintf(like, sizeof like, "%s%%", prefix);
    const char *params[] = {like};
    PGresult *res = PQexecParams(
        conn,
        "SELECT string_agg(vin || ' ' || rule || ' ' || severity || ' ' || violation_id || ' ' "
        "|| first_at::text, E'\\n' ORDER BY vin, rule, violation_id) FROM violations "
        "WHERE vin LIKE $1",
        1, NULL, params, NULL, NULL, 0);
    ck_assert_int_eq(PQresultStatus(res), PGRES_TUPLES_OK);
    char *out = strdup(PQgetisnull(res, 0, 0) ? "" : PQgetvalue(res, 0, 0));
    PQclear(res);
    return out;
}

/* The reference run of a fleet, in run a (configured by the caller): a vemd left alone, whose
 * verdicts are exactly what vem-sim's truth calls for, for the misbehaving trucks and no
 * others. Returns its episodes (s_episodes) and deletes its verdicts for the next run. */
static char *s_alone(PGconn *conn, vem_it_run_t *a, const char *fleet, const char *prefix,
                     const char *test)
{
    vem_it_start(a, "it_rules");
    ck_assert_int_eq(vem_it_wait(vem_it_run_sim_line(a, fleet), 120), 0);
    json_decref(vem_it_sink_settled(a));
    json_t *truth = vem_it_truth(a);
    vem_it_stop(a);
    char *alone = s_episodes(conn, prefix);
    fprintf(stderr, "it_rules %s: verdicts of the run left alone\n%s\n", test, alone);
    char *want = s_expected(truth, NULL);
    char *lines = s_verdicts(conn, prefix, "true");
    char *got = s_sorted(s_without_ids(lines));
    ck_assert_str_eq(got, want);
    free(lines);
    free(got);
    free(want);
    json_decref(truth);
    char sql[96];
    snprintf(sql, sizeof sql, "DELETE FROM violations WHERE vin LIKE '%s%%'", prefix);
    PQclear(PQexec(conn, sql));
    return alone;
}

/* The trucks of kill9_same_verdicts: 100 s of their time per second (10 frames of 10 samples),
 * so a frozen NOx sensor (10 minutes) and a removed SCR (30 minutes) are judged within the
 * run, from a fixed start time so both runs send the same samples. */
#define S_LONG_FLEET_OF(prefix)                                                                    \
    "--await-replies --settle 30 --trucks 10 --rate 10 --samples 10 --duration 30 --seed 77 "      \
    "--start-time 1790000000 --vin-prefix " prefix " --misbehave frozen_nox:2 --misbehave "        \
    "scr_removed:2 --misbehave mil_on:1 --misbehave removal_alarm:1"
#define S_LONG_FLEET S_LONG_FLEET_OF("LRULEK")

START_TEST(kill9_same_verdicts)
{
    PGconn *conn = vem_it_pg();
    /* the reference: a vemd left alone */
    vem_it_run_t a = {0};
    a.rules_opts = "checkpoint_interval_s = 5;";
    a.pipeline_opts = "sample_past_days = 36600;"; /* the fleet's fixed start lies in the past */
    char *alone = s_alone(conn, &a, S_LONG_FLEET, "LRULEK", "kill9_same_verdicts");

    /* the same fleet, vemd killed twice once checkpoints were written */
    vem_it_run_t b = {0};
    b.rules_opts = "checkpoint_interval_s = 5;";
    b.pipeline_opts = a.pipeline_opts;
    vem_it_start(&b, "it_rules");
    pid_t sim = vem_it_run_sim_line(&b, S_LONG_FLEET);
    for (int i = 0; i < 2; i++) {
        vem_it_sleep(9);
        ck_assert_int_eq(kill(b.vemd, SIGKILL), 0);
        ck_assert_int_eq(vem_it_wait(b.vemd, 10), 128 + SIGKILL);
        vem_it_sleep(0.5);
        vem_it_launch(&b);
        /* the restart took the trucks' rule state from the checkpoints, not from nothing */
        double restored = vem_it_metric_now(&b, "vem_rules_restored_total");
        ck_assert_msg(restored >= 10, "restart %d restored %.0f vehicles", i + 1, restored);
    }
    ck_assert_int_eq(vem_it_wait(sim, 120), 0);
    json_decref(vem_it_sink_settled(&b));
    vem_it_stop(&b);
    char *killed = s_episodes(conn, "LRULEK");
    ck_assert_str_eq(killed, alone);
    free(alone);
    free(killed);
    PQfinish(conn);
}
END_TEST

/* text without its lines that start with `start`, whose count is put in *n. */
static char *s_drop_lines(const char *text, const char *start, int *n)
{
    char *out = malloc(strlen(text) + 1);
    ck_assert_ptr_nonnull(out);
    size_t len = 0;
    *n = 0;
    for (const char *p = text; *p;) {
        const char *end = strchr(p, '\n');
        size_t line = end ? (size_t)(end - p) + 1 : strlen(p);
        if (strncmp(p, start, strlen(start)) == 0) {
            (*n)++;
        } else {
            memcpy(out + len, p, line);
            len += line;
        }
        p += line;
    }
    out[len] = '\0';
    return out;
}

/* The fleet of kill9_same_verdicts under other VINs, every truck's link dropped for the middle
 * third of the run (--offline 100: about 1000 s of its data, longer than trip_gap_min) and
 * re-sent as 0x03 frames once it is back, among its live frames. rules.md: a trip is the data
 * between login and logout or gaps longer than 10 minutes, and re-sent data gives the verdicts
 * live data would have given: so the verdicts stored (vehicle, rule, severity, id, start) are
 * those of the fleet whose links never dropped, which are what vem-sim's truth calls for.
 * (Judged as it came, the removed SCR's 30 minutes would fall apart at the hole.) One input
 * differs: the removal alarm, due in the middle of the run, is sent when the link is back and
 * carries that time (vem-sim), so its truck's one verdict rests on another time and id. */
#define S_DROP_FLEET S_LONG_FLEET_OF("LRULEG")

START_TEST(link_drop_same_verdicts)
{
    PGconn *conn = vem_it_pg();
    vem_it_run_t a = {0};
    a.pipeline_opts = "sample_past_days = 36600;"; /* the fleet's fixed start lies in the past */
    char *alone = s_alone(conn, &a, S_DROP_FLEET, "LRULEG", "link_drop_same_verdicts");
    vem_it_run_t b = {0};
    b.pipeline_opts = a.pipeline_opts;
    vem_it_start(&b, "it_rules");
    ck_assert_int_eq(vem_it_wait(vem_it_run_sim_line(&b, S_DROP_FLEET " --offline 100"), 120), 0);
    json_decref(vem_it_sink_settled(&b));
    /* the links did drop, and what they held came back as re-sent frames; the live samples
     * after each hole were held until it was filled, and every sample was judged once, none
     * on the back-fill track */
    ck_assert_double_gt(vem_it_metric_now(&b, "vem_resent_frames_total"), 0);
    ck_assert_double_gt(vem_it_metric_now(&b, "vem_rules_samples_total{path=\"held\"}"), 0);
    ck_assert_double_eq(vem_it_metric_now(&b, "vem_rules_samples_total{path=\"backfill\"}"), 0);
    ck_assert_double_eq(vem_it_metric_now(&b, "vem_rules_samples_total{path=\"copy\"}"), 0);
    ck_assert_double_eq(vem_it_metric_now(&b, "vem_rules_samples_total{path=\"judged\"}"),
                        vem_it_metric_now(&b, "vem_samples_total"));
    vem_it_stop(&b);
    char *dropped = s_episodes(conn, "LRULEG");
    int n[2];
    char *cut[2] = {s_drop_lines(alone, "LRULEG00000000005 obd.tamper violation ", &n[0]),
                    s_drop_lines(dropped, "LRULEG00000000005 obd.tamper violation ", &n[1])};
    ck_assert_int_eq(n[0], 1);
    ck_assert_int_eq(n[1], 1);
    ck_assert_str_eq(cut[1], cut[0]);
    PQclear(PQexec(conn, "DELETE FROM violations WHERE vin LIKE 'LRULEG%'"));
    free(cut[0]);
    free(cut[1]);
    free(alone);
    free(dropped);
    PQfinish(conn);
}
END_TEST

/* The trucks of spool_full_pause_same_verdicts: 40 reply-less trucks (enough to fill a 1 MiB
 * spool in seconds), 100 s of their time per second, from a fixed start; a removed SCR takes
 * 1800 samples, 18 s of the run, so its span is open when the spool fills. */
#define S_PAUSE_FLEET                                                                              \
    "--trucks 40 --rate 10 --samples 10 --duration 30 --seed 78 --start-time 1790000000 "          \
    "--vin-prefix LRULEP --misbehave scr_removed:2 --misbehave frozen_nox:2 --misbehave mil_on:1"

/* Regression: a full spool stops vemd reading for as long as the sinks need, and the trucks'
 * frames wait in their sockets meanwhile; the silence sweep took that for the trucks' silence
 * and ended every trip after twice trip_gap_min, so spans open across the pause started again
 * (a removed SCR judged 1000 samples late, under another id, or not at all). With
 * trip_gap_min = 1, PostgreSQL is stopped until the spool has been full for 135 s (more than
 * the 120 s that end a trip) and then started: the verdicts stored (vehicle, rule, severity,
 * id, start) must be those of the same fleet under a vemd that never paused, which are what
 * vem-sim's truth calls for. */
START_TEST(spool_full_pause_same_verdicts)
{
    PGconn *conn = vem_it_pg();
    vem_it_run_t a = {0};
    a.rules_opts = "trip_gap_min = 1;";
    /* no replies to data frames (GB 17691 style): a truck that ends with replies unread in its
     * socket closes it with a reset, which takes what vemd had not read yet with it */
    a.terminals_opts = "reply_mode = \"none\";";
    a.pipeline_opts = "sample_past_days = 36600;"; /* the fleet's fixed start lies in the past */
    char *alone = s_alone(conn, &a, S_PAUSE_FLEET, "LRULEP", "spool_full_pause_same_verdicts");

    vem_it_run_t b = {0};
    b.rules_opts = a.rules_opts;
    b.terminals_opts = a.terminals_opts;
    /* queues of 10 inputs: the burst after the pause outruns them, and the workers are fed
     * from the spool, so the paused total must come back from the frames' meta text */
    b.pipeline_opts = "sample_past_days = 36600; queue_hwm = 10;";
    b.spool_opts = "max_bytes = 1048576; segment_bytes = 65536;";
    vem_it_start(&b, "it_rules");
    pid_t sim = vem_it_run_sim_line(&b, S_PAUSE_FLEET);
    vem_it_sleep(1);
    vem_it_pgctl("stop");
    double t0 = vem_it_mono();
    while (vem_it_metric_now(&b, "vem_spool_full") < 1 && vem_it_mono() - t0 < 40)
        vem_it_sleep(0.2);
    bool full = vem_it_metric_now(&b, "vem_spool_full") == 1;
    if (!full) {
        vem_it_pgctl("start");
        vem_it_show_log(&b);
    }
    ck_assert_msg(full, "the 1 MiB spool never filled");
    vem_it_sleep(135);
    vem_it_pgctl("start");
    ck_assert_int_eq(vem_it_wait(sim, 240), 0);
    /* vem-sim is done once its bytes are in the sockets: vemd reads what is left there as the
     * spool makes room; a peer's end is read after all its data */
    t0 = vem_it_mono();
    while (vem_it_metric_now(&b, "vem_connections") > 0 && vem_it_mono() - t0 < 180)
        vem_it_sleep(0.5);
    ck_assert_msg(vem_it_metric_now(&b, "vem_connections") == 0,
                  "vemd did not read what the trucks wrote within 180 s");
    json_decref(vem_it_sink_settled(&b));
    /* the pause outlasted what ends a trip, and the spool directory keeps its total */
    double paused = vem_it_metric_now(&b, "vem_intake_paused_seconds");
    ck_assert_msg(paused >= 125, "intake paused %.0f s in all", paused);
    char path[400];
    snprintf(path, sizeof path, "%s/spool/intake-paused", b.dir);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    long long us = 0;
    ck_assert_int_eq(fscanf(f, " ~p%lld", &us), 1);
    fclose(f);
    ck_assert_msg(us >= (long long)paused * 1000000, "%s holds %lld us", path, us);
    /* frames judged after the pause came from the spool (their receipt and paused total read
     * back from the meta text): a replay that lost the total would end every trip there */
    ck_assert_msg(vem_it_metric_now(&b, "vem_catchup_total") >= 1,
                  "the workers were never fed from the spool in this run");
    /* Regression: with PostgreSQL down the daily completeness loader was started again as soon
     * as it failed, a few hundred times a second (the log held thousands of failures, most
     * of them suppressed as repeats); now again after 10, 20, 40, 80 s: at most 5 in the
     * outage, none if the load at start was done before it */
    int attempts = vem_it_log_count(&b, "completeness: cannot connect");
    ck_assert_msg(attempts <= 6, "%d completeness loads failed", attempts);
    PQfinish(conn); /* PostgreSQL was restarted under it */
    conn = vem_it_pg();
    char *paused_run = s_episodes(conn, "LRULEP");
    if (strcmp(paused_run, alone) != 0)
        vem_it_show_log(&b);
    vem_it_stop(&b);
    ck_assert_str_eq(paused_run, alone);
    free(alone);
    free(paused_run);
    PQfinish(conn);
}
END_TEST

/* The trucks of stop_same_verdicts: store and forward, 100 s of their time per second from a
 * fixed start, with time to re-send (--settle) what they collected while vemd was stopped. */
#define S_STOP_FLEET                                                                               \
    "--await-replies --settle 240 --trucks 10 --rate 10 --samples 10 --duration 30 --seed 79 "     \
    "--start-time 1790000000 --vin-prefix LRULED --misbehave frozen_nox:2 --misbehave "            \
    "scr_removed:2 --misbehave mil_on:1"

/* vemd stopped for 135 s in the middle of the trucks' trips, with trip_gap_min = 1: the trucks
 * keep collecting and re-send it all after the restart, so their data has no gap, while nothing
 * was received for longer than the 120 s of silence that end a trip. The stop counts as intake
 * paused, so the trips go on: the verdicts stored (vehicle, rule, severity, id, start) are
 * those of a vemd left alone, which are what vem-sim's truth calls for. */
START_TEST(stop_same_verdicts)
{
    PGconn *conn = vem_it_pg();
    vem_it_run_t a = {0};
    a.rules_opts = "trip_gap_min = 1;";
    a.pipeline_opts = "sample_past_days = 36600;"; /* the fleet's fixed start lies in the past */
    char *alone = s_alone(conn, &a, S_STOP_FLEET, "LRULED", "stop_same_verdicts");

    vem_it_run_t b = {0};
    b.rules_opts = a.rules_opts;
    b.pipeline_opts = a.pipeline_opts;
    vem_it_start(&b, "it_rules");
    pid_t sim = vem_it_run_sim_line(&b, S_STOP_FLEET);
    vem_it_sleep(9); /* the trips are under way: a removed SCR's 30 minutes are not complete */
    vem_it_halt(&b);
    vem_it_sleep(135);
    vem_it_launch(&b);
    ck_assert(vem_it_log_has(&b, "counted as paused"));
    double paused = vem_it_metric_now(&b, "vem_intake_paused_seconds");
    ck_assert_msg(paused >= 130, "intake paused %.0f s in all", paused);
    ck_assert_int_eq(vem_it_wait(sim, 300), 0);
    json_decref(vem_it_sink_settled(&b));
    vem_it_stop(&b);
    char *stopped = s_episodes(conn, "LRULED");
    ck_assert_str_eq(stopped, alone);
    free(alone);
    free(stopped);
    PQfinish(conn);
}
END_TEST

/* One truck of window_verdict_survives_a_stop, registered with its engine's figures and its SCR
 * removed: 60 samples a frame, 5 frames a second from a fixed start (so both runs' trips start
 * alike), some 45 minutes of its time once 46 inputs came (seed 1: valid NOx windows, all over
 * the limit). It is killed then, before it logs out,
 * so its trip stays open until the silence sweep ends it. Returns the inputs vemd took. */
static double s_window_truck(vem_it_run_t *r)
{
    char *drive[] = {"--trucks",     "1",          "--rate",       "5",
                     "--samples",    "60",         "--duration",   "600",
                     "--seed",       "1",          "--vin-prefix", "LRULEW",
                     "--start-time", "1790000000", "--misbehave",  "scr_removed:1"};
    pid_t sim = vem_it_run_sim(r, drive, (int)(sizeof drive / sizeof drive[0]));
    for (int i = 0; i < 600 && vem_it_metric_now(r, "vem_inputs_total") < 46; i++)
        vem_it_sleep(0.1);
    ck_assert_int_eq(kill(sim, SIGKILL), 0);
    ck_assert_int_eq(vem_it_wait(sim, 10), 128 + SIGKILL);
    json_decref(vem_it_sink_settled(r));
    return vem_it_metric_now(r, "vem_inputs_total");
}

/* The truck's registry row (vem-sim --registry, `vemctl vehicles import`), before vemd starts. */
static void s_window_registry(const vem_it_run_t *r)
{
    char cmd[1200];
    snprintf(cmd, sizeof cmd,
             "'%s/vem-sim' --registry '%s/registry.csv' --trucks 1 --seed 1 --vin-prefix LRULEW "
             "&& '%s/vemctl' vehicles import '%s/registry.csv' --db \"%s\" >/dev/null",
             vem_test_bin_dir(), r->dir, vem_test_bin_dir(), r->dir, vem_test_env("VEM_TEST_PG"));
    ck_assert_int_eq(system(cmd), 0);
}

/* The truck's obd.nox_window verdict as stored ("severity id first_at"), waiting up to
 * timeout_s for it; "" when none came. */
static char *s_window_verdict(PGconn *conn, double timeout_s)
{
    for (double t0 = vem_it_mono();; vem_it_sleep(1)) {
        PGresult *res = PQexec(conn, "SELECT severity || ' ' || violation_id || ' ' || "
                                     "first_at::text FROM violations WHERE vin LIKE 'LRULEW%' "
                                     "AND rule = 'obd.nox_window'");
        ck_assert_int_eq(PQresultStatus(res), PGRES_TUPLES_OK);
        char *out = strdup(PQntuples(res) ? PQgetvalue(res, 0, 0) : "");
        PQclear(res);
        if (*out || vem_it_mono() - t0 > timeout_s)
            return out;
        free(out);
    }
}

/* With trip_gap_min = 1 the silence sweep ends the truck's trip 120 s after its last frame, and
 * its NOx window verdict comes then, as a record of the last input judged, whose own records
 * the sink stored before. Run a, left alone, gives the reference. Run b: the truck's rows
 * stored, PostgreSQL stopped, the sweep's verdict made (vemd counts it; the sink cannot store
 * it), vemd stopped (a drain of 5 s), then PostgreSQL and vemd started again on the same spool:
 * the verdict must be stored, the same (id, severity, start). A build that put the last
 * checkpoint in place there (its inputs were all stored) lost it: the state it restored had
 * ended the trip, so nothing judged it again. */
START_TEST(window_verdict_survives_a_stop)
{
    PGconn *conn = vem_it_pg();
    vem_it_sql(conn, "DELETE FROM violations WHERE vin LIKE 'LRULEW%'");
    vem_it_run_t a = {0};
    a.rules_opts = "trip_gap_min = 1;";
    a.pipeline_opts = "drain_timeout_s = 5; sample_past_days = 36600;"; /* a fixed start */
    vem_it_prepare(&a, "it_rules");
    s_window_registry(&a);
    vem_it_launch(&a);
    s_window_truck(&a);
    char *alone = s_window_verdict(conn, 240);
    vem_it_stop(&a);
    fprintf(stderr, "it_rules window_verdict_survives_a_stop: left alone: %s\n", alone);
    ck_assert_msg(strncmp(alone, "violation ", 10) == 0, "no NOx window violation: '%s'", alone);
    vem_it_sql(conn, "DELETE FROM violations WHERE vin LIKE 'LRULEW%'");

    vem_it_run_t b = {0};
    b.rules_opts = a.rules_opts;
    b.pipeline_opts = a.pipeline_opts;
    vem_it_start(&b, "it_rules");
    s_window_truck(&b);
    double before = vem_it_metric_sum(&b, "vem_verdicts_total");
    vem_it_pgctl("stop");
    double made = before;
    for (double t0 = vem_it_mono(); made < before + 1 && vem_it_mono() - t0 < 240; vem_it_sleep(1))
        made = vem_it_metric_sum(&b, "vem_verdicts_total");
    vem_it_halt(&b);
    vem_it_pgctl("start");
    ck_assert_msg(made >= before + 1, "the sweep made no verdict in 240 s");
    vem_it_launch(&b);
    PQfinish(conn); /* PostgreSQL was restarted under it */
    conn = vem_it_pg();
    char *stopped = s_window_verdict(conn, 240);
    if (strcmp(stopped, alone) != 0)
        vem_it_show_log(&b);
    vem_it_stop(&b);
    ck_assert_str_eq(stopped, alone);
    free(alone);
    free(stopped);
    PQfinish(conn);
}
END_TEST

/* Runs a fleet of four trucks, two of them with the MIL on, and waits for its rows. */
static void s_mil_fleet(vem_it_run_t *r, const char *prefix)
{
    char *argv[] = {"--trucks",    "4",       "--rate", "5",  "--samples",    "10",
                    "--duration",  "6",       "--seed", "52", "--vin-prefix", (char *)prefix,
                    "--misbehave", "mil_on:2"};
    pid_t sim = vem_it_run_sim(r, argv, (int)(sizeof argv / sizeof argv[0]));
    ck_assert_int_eq(vem_it_wait(sim, 60), 0);
    json_decref(vem_it_sink_settled(r));
}

START_TEST(reload_switches_rules)
{
    vem_it_run_t r = {0};
    r.rules_opts = "disabled = \"obd.mil_on, obd.dtc\";";
    vem_it_start(&r, "it_rules");
    s_mil_fleet(&r, "LRULEH");
    PGconn *conn = vem_it_pg();
    char *off = s_verdicts(conn, "LRULEH", "rule IN ('obd.mil_on', 'obd.dtc')");
    ck_assert_str_eq(off, ""); /* switched off: nothing judged */
    /* the switch removed from the file, SIGHUP: the workers take the new rules */
    r.rules_opts = "enable = true;";
    vem_it_write_config(&r, "info");
    double reloads = vem_it_metric_now(&r, "vem_reloads_total");
    ck_assert_int_eq(kill(r.vemd, SIGHUP), 0);
    for (int i = 0; i < 100 && vem_it_metric_now(&r, "vem_reloads_total") <= reloads; i++)
        vem_it_sleep(0.1);
    ck_assert_double_gt(vem_it_metric_now(&r, "vem_reloads_total"), reloads);
    s_mil_fleet(&r, "LRULEJ");
    char *on = s_verdicts(conn, "LRULEJ", "rule = 'obd.mil_on'");
    char *bare = s_without_ids(on);
    ck_assert_str_eq(bare,
                     "LRULEJ00000000000 obd.mil_on notice\nLRULEJ00000000001 obd.mil_on notice");
    free(bare);
    free(on);
    free(off);
    PQfinish(conn);
    vem_it_stop(&r);
}
END_TEST

START_TEST(daily_completeness)
{
    PGconn *conn = vem_it_pg();
    int32_t day = vem_completeness_due(vem_now_us(), 24); /* judged at start */
    char sql[5000];
    /* the day's partition, then A: 1000 samples two seconds apart from 10:00 Beijing; B: 2000
     * consecutive seconds from 10:00 but every hundredth (i % 100 = 50) missing; C: 2000
     * consecutive seconds from 10:00 and 2000 from 16:00, parked in between (terminals send
     * nothing with the ignition off). rules.md: completeness = received 1 Hz samples / engine-
     * running seconds. A trip ends at a gap longer than rules.trip_gap_min (10 min), so C's
     * engine ran 2000 + 2000 s: 4000 / 4000 = 1, not 4000 / (10:00:00 .. 16:33:19 = 23,600 s) =
     * 0.17. D: 60 samples 660 s apart from 10:00, the odometer 10 km further at each: the truck
     * drove through every gap, so they do not end a trip: 60 / (59 x 660 + 1 = 38,941 s) = 0.0015.
     * E: GB 17691 frames of ten samples every 10 s from 10:00:00 for 2000 s, each frame stored
     * as its rows do: sample_time the frame's time (its last sample's, 10:00:09 + 10 k), block_idx
     * 0 .. 9; its samples are at 10:00:00 .. 10:33:19: 2000 / 2000 = 1 (the frame times alone
     * would make 200 / 1991 = 0.10). C's odometer stands at 1000 km all day: it stood through its
     * stop. F: as D with no odometer: nothing shows it stood, so the gaps are owed: 60 / 38,941.
     * G: as A, but a VIN the registry does not know: rules.md owes obd.offline to registered
     * vehicles, so no notice. */
    snprintf(sql, sizeof sql,
             "SELECT vem_ensure_partitions(DATE '1970-01-01' + %d, DATE '1970-01-01' + %d);"
             "INSERT INTO obd_samples (vin, sample_time, block_idx, received_at, frame_seq, "
             "resent, block_type) "
             "SELECT 'LCOMPL00000000001', t, 0, t, 1, false, 'stream' FROM (SELECT "
             "(DATE '1970-01-01' + %d)::timestamp AT TIME ZONE 'Asia/Shanghai' + "
             "interval '10 hours' + i * interval '2 s' AS t FROM generate_series(0, 999) i) x;"
             "INSERT INTO obd_samples (vin, sample_time, block_idx, received_at, frame_seq, "
             "resent, block_type) "
             "SELECT 'LCOMPL00000000002', t, 0, t, 1, false, 'stream' FROM (SELECT "
             "(DATE '1970-01-01' + %d)::timestamp AT TIME ZONE 'Asia/Shanghai' + "
             "interval '10 hours' + i * interval '1 s' AS t FROM generate_series(0, 1999) i "
             "WHERE i %% 100 <> 50) x;"
             "INSERT INTO obd_samples (vin, sample_time, block_idx, received_at, frame_seq, "
             "resent, block_type, odometer_km) "
             "SELECT 'LCOMPL00000000003', t, 0, t, 1, false, 'stream', 1000 FROM (SELECT "
             "(DATE '1970-01-01' + %d)::timestamp AT TIME ZONE 'Asia/Shanghai' + "
             "interval '10 hours' + (i / 2000) * interval '6 hours' + (i %% 2000) * "
             "interval '1 s' AS t FROM generate_series(0, 3999) i) x;"
             "INSERT INTO obd_samples (vin, sample_time, block_idx, received_at, frame_seq, "
             "resent, block_type, odometer_km) "
             "SELECT 'LCOMPL00000000004', t, 0, t, 1, false, 'stream', 2000 + 10 * i FROM "
             "(SELECT i, (DATE '1970-01-01' + %d)::timestamp AT TIME ZONE 'Asia/Shanghai' + "
             "interval '10 hours' + i * interval '660 s' AS t FROM generate_series(0, 59) i) x;"
             "INSERT INTO obd_samples (vin, sample_time, block_idx, received_at, frame_seq, "
             "resent, block_type) "
             "SELECT 'LCOMPL00000000005', t, i %% 10, t + interval '1 s', i / 10, false, "
             "'stream' FROM (SELECT i, (DATE '1970-01-01' + %d)::timestamp AT TIME ZONE "
             "'Asia/Shanghai' + interval '10 hours 9 s' + (i / 10) * interval '10 s' AS t "
             "FROM generate_series(0, 1999) i) x;"
             "INSERT INTO obd_samples (vin, sample_time, block_idx, received_at, frame_seq, "
             "resent, block_type) "
             "SELECT 'LCOMPL00000000006', t, 0, t, 1, false, 'stream' FROM "
             "(SELECT i, (DATE '1970-01-01' + %d)::timestamp AT TIME ZONE 'Asia/Shanghai' + "
             "interval '10 hours' + i * interval '660 s' AS t FROM generate_series(0, 59) i) x;"
             "INSERT INTO obd_samples (vin, sample_time, block_idx, received_at, frame_seq, "
             "resent, block_type) "
             "SELECT 'LCOMPL00000000007', t, 0, t, 1, false, 'stream' FROM (SELECT "
             "(DATE '1970-01-01' + %d)::timestamp AT TIME ZONE 'Asia/Shanghai' + "
             "interval '10 hours' + i * interval '2 s' AS t FROM generate_series(0, 999) i) x;"
             "INSERT INTO vehicles (vin, region_code) SELECT 'LCOMPL0000000000' || k, '110105' "
             "FROM generate_series(1, 6) k ON CONFLICT DO NOTHING;",
             day, day, day, day, day, day, day, day, day);
    PGresult *res = PQexec(conn, sql);
    ck_assert_msg(PQresultStatus(res) == PGRES_COMMAND_OK, "%s", PQerrorMessage(conn));
    PQclear(res);

    vem_it_run_t r = {0};
    vem_it_start(&r, "it_rules");
    /* the workers judge a day once they have judged an input: a small fleet gives them some */
    char *argv[] = {"--trucks", "12", "--rate",       "2",     "--duration", "3",
                    "--seed",   "53", "--vin-prefix", "LRULEC"};
    ck_assert_int_eq(vem_it_wait(vem_it_run_sim(&r, argv, 10), 60), 0);
    char *got = NULL;
    for (int i = 0; i < 100; i++) {
        json_decref(vem_it_sink_settled(&r));
        free(got);
        got = s_verdicts(conn, "LCOMPL", "rule = 'obd.offline'");
        if (*got)
            break;
        vem_it_sleep(0.2);
    }
    /* every worker's verdicts of the day in the sinks, not only the first one's */
    json_decref(vem_it_sink_settled(&r));
    free(got);
    got = s_verdicts(conn, "LCOMPL", "rule = 'obd.offline'");
    char *bare = s_without_ids(got);
    ck_assert_str_eq(bare, "LCOMPL00000000001 obd.offline notice\n"
                           "LCOMPL00000000004 obd.offline notice\n"
                           "LCOMPL00000000006 obd.offline notice");
    res = PQexec(conn, "SELECT measured, \"limit\", evidence->>'received_samples', "
                       "evidence->>'running_seconds' FROM violations WHERE vin = "
                       "'LCOMPL00000000001' AND rule = 'obd.offline'");
    ck_assert_int_eq(PQresultStatus(res), PGRES_TUPLES_OK);
    ck_assert_int_eq(PQntuples(res), 1);
    ck_assert_double_eq_tol(atof(PQgetvalue(res, 0, 0)), 1000.0 / 1999.0, 1e-9);
    ck_assert_double_eq_tol(atof(PQgetvalue(res, 0, 1)), 0.95, 1e-12);
    ck_assert_str_eq(PQgetvalue(res, 0, 2), "1000");
    ck_assert_str_eq(PQgetvalue(res, 0, 3), "1999");
    PQclear(res);
    free(bare);
    free(got);
    PQfinish(conn);
    vem_it_stop(&r);
}
END_TEST

static void s_send_readings_at(const vem_it_run_t *r, const char *const *ids,
                               const char *const *plates, const double *no_ppm,
                               const int64_t *times, const char *const *vins, size_t n);

START_TEST(idle_state_released)
{
    vem_it_run_t r = {0};
    /* obd.offline off, so a silent truck owes no verdict; the fusion history at its shortest */
    /* no roadside history: states seeded from what other tests stored would stay */
    r.rules_opts = "disabled = \"obd.offline\"; fusion_horizon_s = 10; rsd_history_readings = 0;";
    r.pipeline_opts = "session_idle_s = 60;";
    vem_it_start(&r, "it_rules");
    char *argv[] = {"--trucks", "20", "--rate",       "2",     "--duration", "3",
                    "--seed",   "61", "--vin-prefix", "LRULEK"};
    ck_assert_int_eq(vem_it_wait(vem_it_run_sim(&r, argv, 10), 60), 0);
    /* two plates the registry does not know, their states in the plate table: one compliant
     * reading, and an exceedance 200 days old that no reading taken now can complete (6 months
     * and 2 days at most): both go as well */
    const char *ids[] = {"idle-p1", "idle-p2"}, *plates[] = {"津L00001", "津L00002"};
    const double no_ppm[] = {900, 1800};
    const int64_t times[] = {(int64_t)time(NULL) - 3600, (int64_t)time(NULL) - 200 * 86400};
    s_send_readings_at(&r, ids, plates, no_ppm, times, NULL, 2);
    json_decref(vem_it_sink_settled(&r));
    /* the trucks' state, as the next silence sweep (every 10 s) counts it */
    for (int i = 0; i < 150 && vem_it_metric_sum(&r, "vem_rules_state_bytes") == 0; i++)
        vem_it_sleep(0.1);
    ck_assert_double_gt(vem_it_metric_sum(&r, "vem_rules_state_bytes"), 0);
    /* 60 s silent, then the next sweep */
    double t0 = vem_it_mono();
    while (vem_it_mono() - t0 < 100 && (vem_it_metric_sum(&r, "vem_rules_released_total") < 22 ||
                                        vem_it_metric_sum(&r, "vem_rules_state_bytes") > 0))
        vem_it_sleep(1);
    /* (states the day's completeness made for VINs of earlier tests go as well) */
    ck_assert_double_ge(vem_it_metric_sum(&r, "vem_rules_released_total"), 22);
    ck_assert_double_eq(vem_it_metric_sum(&r, "vem_rules_state_bytes"), 0);
    /* stateless now, the sessions go after session_idle_s like a login's (checked each second) */
    for (int i = 0; i < 30 && vem_it_metric_sum(&r, "vem_sessions") > 0; i++)
        vem_it_sleep(0.5);
    ck_assert_double_eq(vem_it_metric_sum(&r, "vem_sessions"), 0);
    /* one truck again: a new state, judged as before */
    char *again[] = {"--trucks", "1",  "--rate",       "2",     "--duration", "2",
                     "--seed",   "62", "--vin-prefix", "LRULEK"};
    ck_assert_int_eq(vem_it_wait(vem_it_run_sim(&r, again, 10), 60), 0);
    json_decref(vem_it_sink_settled(&r));
    for (int i = 0; i < 150 && vem_it_metric_sum(&r, "vem_rules_state_bytes") == 0; i++)
        vem_it_sleep(0.1);
    ck_assert_double_gt(vem_it_metric_sum(&r, "vem_rules_state_bytes"), 0);
    vem_it_stop(&r);
}
END_TEST

/* ---- roadside history ------------------------------------------------------------------------
 */

/* "YYYY-MM-DD HH:MM:SS+00" of epoch seconds. */
static void s_utc(int64_t t, char *out, size_t cap)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, cap, "%Y-%m-%d %H:%M:%S+00", &tm);
}

/* The instant 6 natural months and one day before t in Beijing time (rules.md): the same time
 * of day, the month six back, the day one before t's (a day that month lacks: its last day,
 * minus one). Adding 6 months to it lands the day before t's day, or in an earlier month. */
static int64_t s_six_months_and_a_day_before(int64_t t)
{
    time_t bj = (time_t)(t + 8 * 3600);
    struct tm tm;
    gmtime_r(&bj, &tm);
    int mon = tm.tm_mon - 6, year = tm.tm_year;
    if (mon < 0) {
        mon += 12;
        year--;
    }
    static const int dim[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y = year + 1900;
    int days = dim[mon] + (mon == 1 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0));
    tm.tm_year = year;
    tm.tm_mon = mon;
    tm.tm_mday = (tm.tm_mday < days ? tm.tm_mday : days) - 1; /* 0: timegm takes the last day
                                                                 of the month before */
    return (int64_t)timegm(&tm) - 8 * 3600;
}

/* A reading stored as vemd's sink would have stored it, valid by the station, diesel, inside
 * the HJ 845 window unless speed says otherwise, under vin (NULL: none); its day's partition
 * made first. */
static void s_store_reading_vin(PGconn *conn, const char *reading_id, int64_t t, const char *plate,
                                double no_ppm, double speed_kmh, const char *vin)
{
    char when[40], no[32], speed[32];
    s_utc(t, when, sizeof when);
    snprintf(no, sizeof no, "%g", no_ppm);
    snprintf(speed, sizeof speed, "%g", speed_kmh);
    const char *params[] = {reading_id, when, plate, no, speed, vin};
    PGresult *res = PQexecParams(
        conn,
        "SELECT vem_ensure_partitions(($1::timestamptz AT TIME ZONE 'Asia/Shanghai')::date, "
        "($1::timestamptz AT TIME ZONE 'Asia/Shanghai')::date)",
        1, NULL, params + 1, NULL, NULL, 0);
    ck_assert_msg(PQresultStatus(res) == PGRES_TUPLES_OK, "%s", PQerrorMessage(conn));
    PQclear(res);
    res = PQexecParams(conn,
                       "INSERT INTO rsd_readings (station_id, reading_id, time, received_at, "
                       "lane, plate, plate_color, vin, fuel, speed_kmh, accel_ms2, vsp_kw_t, "
                       "opacity_pct, no_ppm, wind_ms, slope_pct, valid, counted) VALUES ('RH-1', "
                       "$1, $2, $2, 1, $3, 'yellow', $6, 'diesel', $5, 0.2, 4.5, 8, $4, 1.5, 0.5, "
                       "true, $5::float8 <= 80)",
                       6, NULL, params, NULL, NULL, 0);
    ck_assert_msg(PQresultStatus(res) == PGRES_COMMAND_OK, "%s", PQerrorMessage(conn));
    PQclear(res);
}

/* The same, without a VIN. */
static void s_store_reading(PGconn *conn, const char *reading_id, int64_t t, const char *plate,
                            double no_ppm, double speed_kmh)
{
    s_store_reading_vin(conn, reading_id, t, plate, no_ppm, speed_kmh, NULL);
}

/* The new readings, sent by vemctl rsd send as a station would, at times[i], with the VIN
 * vins[i] the station read (vins or vins[i] NULL: none). */
static void s_send_readings_at(const vem_it_run_t *r, const char *const *ids,
                               const char *const *plates, const double *no_ppm,
                               const int64_t *times, const char *const *vins, size_t n)
{
    char path[512], when[32], cmd[1200];
    snprintf(path, sizeof path, "%s/history.jsonl", r->dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    for (size_t i = 0; i < n; i++) {
        time_t tt = (time_t)times[i];
        struct tm tm;
        gmtime_r(&tt, &tm);
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
        fprintf(f,
                "{\"version\":1,\"station_id\":\"RH-1\",\"reading_id\":\"%s\",\"lane\":1,%s%s%s"
                "\"time\":\"%s\",\"plate\":\"%s\",\"plate_color\":\"yellow\",\"fuel\":\"diesel\","
                "\"speed_kmh\":40,\"accel_ms2\":0.2,\"vsp_kw_t\":4.5,\"opacity_pct\":8,"
                "\"no_ppm\":%g,\"co2_pct\":10.5,\"wind_ms\":1.5,\"slope_pct\":0.5,"
                "\"valid\":true}\n",
                ids[i], vins && vins[i] ? "\"vin\":\"" : "", vins && vins[i] ? vins[i] : "",
                vins && vins[i] ? "\"," : "", when, plates[i], no_ppm[i]);
    }
    fclose(f);
    snprintf(cmd, sizeof cmd,
             "'%s/vemctl' rsd send '%s' --endpoint 'ipc://%s/stations.sock' --quiet >/dev/null",
             vem_test_bin_dir(), path, r->dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* The same, all at time t. */
static void s_send_readings(const vem_it_run_t *r, const char *const *ids,
                            const char *const *plates, const double *no_ppm, size_t n, int64_t t)
{
    int64_t times[8];
    ck_assert_uint_le(n, 8);
    for (size_t i = 0; i < n; i++)
        times[i] = t;
    s_send_readings_at(r, ids, plates, no_ppm, times, NULL, n);
}

/* One column of the violation with this id ("" when there is none). */
static char *s_violation(PGconn *conn, const char *id, const char *column_sql)
{
    char sql[300];
    snprintf(sql, sizeof sql, "SELECT %s FROM violations WHERE violation_id = $1", column_sql);
    const char *params[] = {id};
    PGresult *res = PQexecParams(conn, sql, 1, NULL, params, NULL, NULL, 0);
    ck_assert_int_eq(PQresultStatus(res), PGRES_TUPLES_OK);
    char *out = strdup(PQntuples(res) && !PQgetisnull(res, 0, 0) ? PQgetvalue(res, 0, 0) : "");
    PQclear(res);
    return out;
}

/* Waits up to 30 s for a verdict's column to read want; returns what it read last. */
static char *s_violation_wait(PGconn *conn, const char *id, const char *column_sql,
                              const char *want)
{
    char *v = NULL;
    for (int i = 0; i < 300; i++) {
        free(v);
        v = s_violation(conn, id, column_sql);
        if (strcmp(v, want) == 0)
            break;
        vem_it_sleep(0.1);
    }
    return v;
}

/* Ids from tests/data/rules/rule_id.py (the definition of vem_rules_id, worked in Python):
 *   rule_id.py rsd.no_exceed 津H00002 r=RH-1/e1
 *   rule_id.py rsd.no_exceed 津H00001 r=RH-1/n1
 *   rule_id.py rsd.no_exceed 津H00001 r=RH-1/o1
 *   rule_id.py rsd.no_exceed 津H00003 r=RH-1/c1
 *   rule_id.py rsd.no_exceed 津H00004 r=RH-1/d1
 *   rule_id.py rsd.no_exceed 津H00004 r=RH-1/dp */
#define S_ID_B_E1 "51380d3490a0107fd32d4eb5984f2f8e"
#define S_ID_A_N1 "f18231dc680f3e2104f18d4f541e61f0"
#define S_ID_A_O1 "f185b5dc6812544404ee294f541b822d"
#define S_ID_C_C1 "84e2d1f181a90352de2c0268833d39ff"
#define S_ID_D_D1 "c6b80b3de6fd6800e5e9e09733b8cb4d"
#define S_ID_D_DP "c6b84c3de6fdd673e5e99f9733b85cda"

START_TEST(roadside_history_from_pg)
{
    PGconn *conn = vem_it_pg();
    int64_t tn = (int64_t)time(NULL) - 600; /* the new readings */
    /* B, unregistered: compliant 170 days back, then over the limit 150 and 60 days back (and
     * once outside the HJ 845 window in between, which counts for nothing): the chain e1, e2 */
    s_store_reading(conn, "b0", tn - 170 * 86400, "津H00002", 900, 40);
    s_store_reading(conn, "e1", tn - 150 * 86400, "津H00002", 1700, 40);
    s_store_reading(conn, "x1", tn - 100 * 86400, "津H00002", 700, 100);
    s_store_reading(conn, "e2", tn - 60 * 86400, "津H00002", 1600, 40);
    /* A, unregistered: over the limit 6 natural months and one day before the new reading */
    s_store_reading(conn, "o1", s_six_months_and_a_day_before(tn), "津H00001", 1800, 40);
    /* C, registered with a VIN (its readings are routed by it): over the limit 30 days back */
    PGresult *res = PQexec(conn, "INSERT INTO vehicles (vin, plate, plate_color, fuel, "
                                 "region_code) VALUES ('LHIST000000000003', '津H00003', "
                                 "'yellow', 'diesel', '120101')");
    ck_assert_msg(PQresultStatus(res) == PGRES_COMMAND_OK, "%s", PQerrorMessage(conn));
    PQclear(res);
    s_store_reading(conn, "c1", tn - 30 * 86400, "津H00003", 1550, 40);
    /* D, unregistered: over the limit 40 days back with the VIN a station read (ingest routed it
     * to that VIN's state), and 20 days back without one (to the plate's state) */
    s_store_reading_vin(conn, "d1", tn - 40 * 86400, "津H00004", 1750, 40, "LHSTVN00000000004");
    s_store_reading(conn, "dp", tn - 20 * 86400, "津H00004", 1650, 40);

    vem_it_run_t r = {0};
    vem_it_start(&r, "it_rules");
    for (int i = 0; i < 100 && vem_it_metric_now(&r, "vem_rsd_history_readings_total") < 8; i++)
        vem_it_sleep(0.1);
    /* o1 is loaded (7 months are), it is the chain that leaves it out; b0 and x1 too (and
     * whatever earlier suites stored in the same database) */
    ck_assert(vem_it_metric_now(&r, "vem_rsd_history_readings_total") >= 8);
    static const char *const ids[] = {"n1", "n2", "n3", "n4", "n5"};
    static const char *const plates[] = {"津H00001", "津H00002", "津H00003", "津H00004",
                                         "津H00004"};
    static const double no[] = {1700, 1650, 1800, 1600, 1620};
    static const char *const vins[] = {NULL, NULL, NULL, NULL, "LHSTVN00000000004"};
    const int64_t times[] = {tn, tn, tn, tn, tn};
    s_send_readings_at(&r, ids, plates, no, times, vins, 5);
    char *sev = NULL;
    for (int i = 0; i < 300; i++) {
        free(sev);
        sev = s_violation(conn, S_ID_C_C1, "severity");
        char *a = s_violation(conn, S_ID_A_N1, "severity");
        char *b = s_violation(conn, S_ID_B_E1, "severity");
        bool done = strcmp(sev, "violation") == 0 && *a && strcmp(b, "violation") == 0;
        free(a);
        free(b);
        if (done)
            break;
        vem_it_sleep(0.1);
    }
    ck_assert_str_eq(sev, "violation");
    free(sev);
    char *v;
    /* B: the violation the stored chain and the new reading make, under e1's id */
    ck_assert_str_eq(v = s_violation(conn, S_ID_B_E1, "severity"), "violation");
    free(v);
    ck_assert_str_eq(v = s_violation(conn, S_ID_B_E1, "jsonb_array_length(evidence->'readings')"),
                     "3");
    free(v);
    ck_assert_str_eq(v = s_violation(conn, S_ID_B_E1,
                                     "evidence->'readings'->0->>'reading_id' || ',' || "
                                     "(evidence->'readings'->2->>'reading_id') || ',' || plate"),
                     "e1,n2,津H00002");
    free(v);
    /* C: by VIN */
    ck_assert_str_eq(v = s_violation(conn, S_ID_C_C1, "vin || ',' || plate"),
                     "LHIST000000000003,津H00003");
    free(v);
    /* A: o1 is too old to chain: n1 starts its own chain, a notice; nothing under o1's id */
    ck_assert_str_eq(v = s_violation(conn, S_ID_A_N1, "severity"), "notice");
    free(v);
    ck_assert_str_eq(v = s_violation(conn, S_ID_A_O1, "severity"), "");
    free(v);
    ck_assert_int_eq(atoi(v = s_violation(conn, S_ID_A_N1,
                                          "(SELECT count(*) FROM violations WHERE plate = "
                                          "'津H00001' AND severity = 'violation')")),
                     0);
    free(v);
    /* D: each state's chain holds what ingest routed to it: by plate dp, n4 (under dp's id);
     * by the VIN d1, n5 (under d1's id) */
    const char *d_sql = "severity || ',' || (evidence->'readings'->0->>'reading_id') || ',' || "
                        "(evidence->'readings'->1->>'reading_id') || ',' || "
                        "jsonb_array_length(evidence->'readings') || ',' || coalesce(vin, '-')";
    ck_assert_str_eq(v = s_violation_wait(conn, S_ID_D_DP, d_sql, "violation,dp,n4,2,-"),
                     "violation,dp,n4,2,-");
    free(v);
    ck_assert_str_eq(
        v = s_violation_wait(conn, S_ID_D_D1, d_sql, "violation,d1,n5,2,LHSTVN00000000004"),
        "violation,d1,n5,2,LHSTVN00000000004");
    free(v);
    PQfinish(conn);
    vem_it_stop(&r);
}
END_TEST

/* rule_id.py rsd.no_exceed 津H00009 r=RH-1/e10 */
#define S_ID_J_E10 "eeb56dcfc3f56bb6d9cd2bf0e88293c1"

START_TEST(roadside_history_bounds)
{
    PGconn *conn = vem_it_pg();
    int64_t tn = (int64_t)time(NULL) - 600;
    char id[16];
    for (int i = 1; i <= 40; i++) { /* e1 .. e40, an hour apart, all over the limit */
        snprintf(id, sizeof id, "e%d", i);
        s_store_reading(conn, id, tn - (41 - i) * 3600, "津H00009", 1600 + i, 40);
    }
    vem_it_run_t r = {0};
    vem_it_start(&r, "it_rules");
    for (int i = 0; i < 100 && vem_it_metric_now(&r, "vem_rsd_history_readings_total") < 33; i++)
        vem_it_sleep(0.1);
    static const char *const ids[] = {"j41"};
    static const char *const plates[] = {"津H00009"};
    static const double no[] = {1700};
    s_send_readings(&r, ids, plates, no, 1, tn);
    char *v = NULL;
    for (int i = 0; i < 300; i++) {
        free(v);
        v = s_violation(conn, S_ID_J_E10, "jsonb_array_length(evidence->'readings')");
        if (*v)
            break;
        vem_it_sleep(0.1);
    }
    /* in time order: e1 .. e40 and j41 are 41; the chain keeps the newest 32, e10 .. j41 */
    ck_assert_str_eq(v, "32");
    free(v);
    ck_assert_str_eq(
        v = s_violation(conn, S_ID_J_E10,
                        "severity || ',' || (evidence->'readings'->31->>'reading_id')"),
        "violation,j41");
    free(v);
    vem_it_stop(&r);

    /* allowed one reading of history: the load is cut, said so, and leaves the plates out */
    vem_it_run_t cut = {0};
    cut.rules_opts = "rsd_history_readings = 1;";
    vem_it_start(&cut, "it_rules");
    for (int i = 0; i < 100 && vem_it_metric_now(&cut, "vem_rsd_history_truncated_total") < 1; i++)
        vem_it_sleep(0.1);
    ck_assert_double_eq(vem_it_metric_now(&cut, "vem_rsd_history_truncated_total"), 1);
    ck_assert(vem_it_log_has(&cut, "more than rules.rsd_history_readings"));
    PQfinish(conn);
    vem_it_stop(&cut);
}
END_TEST

/* rule_id.py rsd.no_exceed 津H00011 r=RH-1/d1 (and d2, d4) */
#define S_ID_K_D1 "36255100d1d8b8121bfb98332522ec7b"
#define S_ID_K_D2 "36255000d1d8b65f1bfb99332522ee2e"
#define S_ID_K_D4 "36254e00d1d8b2f91bfb9b332522f194"
/* rule_id.py rsd.no_exceed 津H00077 r=RH-1/m0 (and m1) */
#define S_ID_N_M0 "bc45d15edb3e08404e7a8f9a4c89c0f9"
#define S_ID_N_M1 "bc45d25edb3e09f34e7a8e9a4c89bf46"
/* rule_id.py rsd.no_exceed 津H00079 r=RH-1/s1, 津H00080 r=RH-1/u1 */
#define S_ID_S_S1 "808f8a6eb6f88ed3b8041207dcb2d6ca"
#define S_ID_U_U1 "436fee414fbfd6e11bcc0ffa43d4343c"
/* rule_id.py rsd.no_exceed 津H00078 r=RH-1/p0 */
#define S_ID_Q_P0 "684df20be391214062302c70666ce549"

/* The first column of the first row of sql ("" when none). */
static char *s_sql_text(PGconn *conn, const char *sql)
{
    PGresult *res = PQexec(conn, sql);
    ck_assert_msg(PQresultStatus(res) == PGRES_TUPLES_OK, "%s", PQerrorMessage(conn));
    char *out = strdup(PQntuples(res) && !PQgetisnull(res, 0, 0) ? PQgetvalue(res, 0, 0) : "");
    PQclear(res);
    return out;
}

START_TEST(roadside_history_on_demand)
{
    /* Readings of K stored after vemd loaded the history at start (as when K's state was let go
     * idle, or another node judged them): over the limit 3 hours back (d1), compliant 1 hour
     * back (d3). Then a station's backlog brings, in one go, d2, over the limit 2 hours back,
     * and d4, K passing again over the limit. In time order d1 d2 make a violation under d1's
     * id, and the compliant d3 makes d4 a first exceedance: a notice. A state that judged d2
     * and d4 without the stored readings would chain d2 with d4 across d3: a violation under
     * d2's id (and a notice under d2's id for d2 alone before that). */
    PGconn *conn = vem_it_pg();
    int64_t tn = (int64_t)time(NULL) - 600;
    /* (Q, registered for the last case) */
    PGresult *res = PQexec(conn, "INSERT INTO vehicles (vin, plate, plate_color, fuel, "
                                 "region_code) VALUES ('LHIST000000000078', '津H00078', "
                                 "'yellow', 'diesel', '120101')");
    ck_assert_msg(PQresultStatus(res) == PGRES_COMMAND_OK, "%s", PQerrorMessage(conn));
    PQclear(res);
    vem_it_run_t r = {0};
    vem_it_start(&r, "it_rules");
    ck_assert(vem_it_log_until(&r, "roadside history:", 10));
    s_store_reading(conn, "d1", tn - 3 * 3600, "津H00011", 1700, 40);
    s_store_reading(conn, "d3", tn - 3600, "津H00011", 900, 40);
    static const char *const plates[] = {"津H00011", "津H00011"};
    static const char *const backlog[] = {"d2", "d4"};
    static const double backlog_no[] = {1650, 1800};
    const int64_t backlog_t[] = {tn - 2 * 3600, tn};
    s_send_readings_at(&r, backlog, plates, backlog_no, backlog_t, NULL, 2);
    char *v = s_violation_wait(conn, S_ID_K_D4, "severity", "notice");
    if (strcmp(v, "notice") != 0)
        vem_it_show_log(&r);
    ck_assert_str_eq(v, "notice");
    free(v);
    ck_assert_str_eq(v = s_violation(conn, S_ID_K_D1,
                                     "severity || ',' || "
                                     "(evidence->'readings'->0->>'reading_id') || ',' || "
                                     "(evidence->'readings'->1->>'reading_id') || ',' || "
                                     "jsonb_array_length(evidence->'readings')"),
                     "violation,d1,d2,2");
    free(v);
    ck_assert_str_eq(v = s_violation(conn, S_ID_K_D4, "evidence->>'compliant_before' IS NOT NULL"),
                     "t");
    free(v);
    /* d2 was judged with the history there: nothing under its own id */
    ck_assert_str_eq(v = s_violation(conn, S_ID_K_D2, "severity"), "");
    free(v);
    ck_assert_double_ge(vem_it_metric_now(&r, "vem_rsd_history_plates_total"), 1);
    ck_assert_double_eq(vem_it_metric_now(&r, "vem_rsd_history_failures_total"), 0);
    /* K again, over the limit: the state has its history and goes on, d4 d5 a violation */
    static const char *const again[] = {"d5"};
    static const double again_no[] = {1750};
    s_send_readings(&r, again, plates, again_no, 1, tn + 60);
    v = s_violation_wait(conn, S_ID_K_D4, "severity", "violation");
    ck_assert_str_eq(v, "violation");
    free(v);
    ck_assert_str_eq(v = s_violation(conn, S_ID_K_D4,
                                     "(evidence->'readings'->1->>'reading_id') || ',' || "
                                     "jsonb_array_length(evidence->'readings')"),
                     "d5,2");
    free(v);
    /* A state held by the VIN a station read takes that VIN's stored readings (m0), not those of
     * its plate stored without one (m1, which ingest routes to the plate's state): m2 chains
     * with m0 alone */
    double loads = vem_it_metric_now(&r, "vem_rsd_history_plates_total");
    s_store_reading_vin(conn, "m0", tn - 7200, "津H00077", 1750, 40, "LRDEMV00000000077");
    s_store_reading(conn, "m1", tn - 3600, "津H00077", 1700, 40);
    static const char *const m_plate[] = {"津H00077"};
    static const char *const m_id[] = {"m2"};
    static const char *const m_vin[] = {"LRDEMV00000000077"};
    static const double m_no[] = {1800};
    const int64_t m_t[] = {tn};
    s_send_readings_at(&r, m_id, m_plate, m_no, m_t, m_vin, 1);
    v = s_violation_wait(conn, S_ID_N_M0, "severity || ',' || vin", "violation,LRDEMV00000000077");
    ck_assert_str_eq(v, "violation,LRDEMV00000000077");
    free(v);
    ck_assert_str_eq(v = s_violation(conn, S_ID_N_M0,
                                     "(evidence->'readings'->0->>'reading_id') || ',' || "
                                     "(evidence->'readings'->1->>'reading_id') || ',' || "
                                     "jsonb_array_length(evidence->'readings')"),
                     "m0,m2,2");
    free(v);
    ck_assert_str_eq(v = s_violation(conn, S_ID_N_M1, "severity"), "");
    free(v);
    ck_assert_double_eq(vem_it_metric_now(&r, "vem_rsd_history_plates_total"), loads + 1);
    ck_assert_double_eq(vem_it_metric_now(&r, "vem_rsd_history_failures_total"), 0);
    /* Q's plate is registered to a VIN: ingest routes its readings there whatever VIN the
     * station read, so the VIN's state takes p0, stored under another VIN a station read */
    s_store_reading_vin(conn, "p0", tn - 7200, "津H00078", 1750, 40, "LOTHERVIN00000078");
    static const char *const q_plate[] = {"津H00078"};
    static const char *const q_id[] = {"p2"};
    s_send_readings_at(&r, q_id, q_plate, m_no, m_t, NULL, 1);
    v = s_violation_wait(conn, S_ID_Q_P0, "severity || ',' || vin", "violation,LHIST000000000078");
    ck_assert_str_eq(v, "violation,LHIST000000000078");
    free(v);
    ck_assert_str_eq(v = s_violation(conn, S_ID_Q_P0,
                                     "(evidence->'readings'->1->>'reading_id') || ',' || "
                                     "jsonb_array_length(evidence->'readings')"),
                     "p2,2");
    free(v);
    /* The workers' kept connections closed by the server (a restart, an idle cutoff): the next
     * load replaces its connection and goes on, no failure; S and U each chain with a stored
     * exceedance (their plates go to both workers) */
    s_store_reading(conn, "s1", tn - 7200, "津H00079", 1750, 40);
    s_store_reading(conn, "u1", tn - 7200, "津H00080", 1750, 40);
    ck_assert_str_eq(v = s_sql_text(conn, "SELECT count(pg_terminate_backend(pid)) FROM "
                                          "pg_stat_activity WHERE application_name = "
                                          "'vemd-rsdhist-worker'"),
                     "2");
    free(v);
    static const char *const su_plate[] = {"津H00079", "津H00080"};
    static const char *const su_id[] = {"s2", "u2"};
    static const double su_no[] = {1800, 1800};
    s_send_readings(&r, su_id, su_plate, su_no, 2, tn);
    v = s_violation_wait(conn, S_ID_S_S1, "severity", "violation");
    ck_assert_str_eq(v, "violation");
    free(v);
    v = s_violation_wait(conn, S_ID_U_U1, "severity", "violation");
    ck_assert_str_eq(v, "violation");
    free(v);
    ck_assert_double_eq(vem_it_metric_now(&r, "vem_rsd_history_failures_total"), 0);
    PQfinish(conn);
    vem_it_stop(&r);
}
END_TEST

/* rule_id.py rsd.no_exceed 津H00012 r=RH-1/f1, 津H00013 r=RH-1/f2 */
#define S_ID_L_F1 "37af70573f0470e9e4ca6af4b8f40638"
#define S_ID_M_F2 "faf546c3b5dcbdc78748e7583691d152"
/* rule_id.py rsd.no_exceed 津H00012 r=RH-1/g0 */
#define S_ID_L_G0 "37b275573f06af3fe4c6e5f4b8f0ee62"

START_TEST(roadside_history_db_down)
{
    /* PostgreSQL down when new states' first readings come: a worker's load fails at once
     * (logged, counted), the reading is judged without it, and for 30 s the worker tries no
     * other (of the 6 states, at most one failure per worker); once PostgreSQL is back, the
     * verdicts are stored: nothing was lost or held up. Once the 30 s are over, the 6 states
     * load their history after all: L's, stored after the start (g0, over the limit an hour
     * before f1), makes f1's notice the violation of g0 and f1, under g0's id */
    vem_it_run_t r = {0};
    vem_it_start(&r, "it_rules");
    ck_assert(vem_it_log_until(&r, "roadside history:", 10));
    ck_assert(vem_it_log_has(&r, ", 2 workers,"));
    int64_t tn = (int64_t)time(NULL) - 600;
    PGconn *early = vem_it_pg();
    s_store_reading(early, "g0", tn - 3600, "津H00012", 1650, 40);
    PQfinish(early);
    vem_it_pgctl("stop");
    static const char *const first[] = {"f1"}, *const first_plate[] = {"津H00012"};
    static const char *const rest[] = {"f2", "f3", "f4", "f5", "f6"};
    static const char *const rest_plates[] = {"津H00013", "津H00014", "津H00015", "津H00016",
                                              "津H00017"};
    static const double over[] = {1700, 1700, 1700, 1700, 1700};
    s_send_readings(&r, first, first_plate, over, 1, tn);
    for (int i = 0; i < 100 && vem_it_metric_now(&r, "vem_rsd_history_failures_total") < 1; i++)
        vem_it_sleep(0.1);
    s_send_readings(&r, rest, rest_plates, over, 5, tn);
    for (int i = 0; i < 100 && vem_it_metric_now(&r, "vem_rsd_readings_total") < 6; i++)
        vem_it_sleep(0.1);
    double failures = vem_it_metric_now(&r, "vem_rsd_history_failures_total");
    double readings = vem_it_metric_now(&r, "vem_rsd_readings_total");
    bool logged = vem_it_log_has(&r, "roadside history of 津H00012 not loaded");
    vem_it_pgctl("start");
    ck_assert_msg(failures >= 1 && failures <= 2, "%.0f failed loads", failures);
    ck_assert_double_eq(readings, 6);
    ck_assert(logged);
    PGconn *conn = vem_it_pg();
    char *v = s_violation_wait(conn, S_ID_L_F1, "severity", "notice");
    ck_assert_str_eq(v, "notice");
    free(v);
    v = s_violation_wait(conn, S_ID_M_F2, "severity", "notice");
    ck_assert_str_eq(v, "notice");
    free(v);
    for (int i = 0; i < 600 && vem_it_metric_now(&r, "vem_rsd_history_late_total") < 6; i++)
        vem_it_sleep(0.1);
    ck_assert_double_eq(vem_it_metric_now(&r, "vem_rsd_history_late_total"), 6);
    const char *g_sql = "severity || ',' || (evidence->'readings'->0->>'reading_id') || ',' || "
                        "(evidence->'readings'->1->>'reading_id')";
    ck_assert_str_eq(v = s_violation_wait(conn, S_ID_L_G0, g_sql, "violation,g0,f1"),
                     "violation,g0,f1");
    free(v);
    PQfinish(conn);
    vem_it_stop(&r);
}
END_TEST

START_TEST(roadside_history_queue_full)
{
    /* PostgreSQL down while 2300 new plates pass, twice each: every state judges without its
     * history, and waits for it, up to 1024 a worker; the rest are counted (each once, not per
     * reading) and load it with their next reading. Once PostgreSQL is back and the pause is
     * over, every waiting state loads it: the two counts make up the 2300 states, and neither
     * worker queued more than its 1024 */
    enum { S_PLATES = 2300, S_N = 2 * S_PLATES };
    vem_it_run_t r = {0};
    vem_it_start(&r, "it_rules");
    ck_assert(vem_it_log_until(&r, "roadside history:", 10));
    int64_t tn = (int64_t)time(NULL) - 600;
    char(*ids)[8] = calloc(S_N, sizeof *ids), (*plates)[16] = calloc(S_N, sizeof *plates);
    const char **id_p = calloc(S_N, sizeof *id_p), **plate_p = calloc(S_N, sizeof *plate_p);
    double *no = calloc(S_N, sizeof *no);
    int64_t *times = calloc(S_N, sizeof *times);
    ck_assert(ids && plates && id_p && plate_p && no && times);
    for (int i = 0; i < S_N; i++) {
        snprintf(ids[i], sizeof ids[i], "q%d", i);
        snprintf(plates[i], sizeof plates[i], "津Q%05d", i % S_PLATES);
        id_p[i] = ids[i];
        plate_p[i] = plates[i];
        no[i] = 1000;
        times[i] = tn + i / S_PLATES;
    }
    vem_it_pgctl("stop");
    s_send_readings_at(&r, id_p, plate_p, no, times, NULL, S_N);
    for (int i = 0; i < 300 && vem_it_metric_now(&r, "vem_rsd_readings_total") < S_N; i++)
        vem_it_sleep(0.1);
    double unqueued = vem_it_metric_now(&r, "vem_rsd_history_unqueued_total");
    vem_it_pgctl("start");
    double late = 0;
    for (int i = 0; i < 900 && late + unqueued < S_PLATES; i++) {
        vem_it_sleep(0.1);
        late = vem_it_metric_now(&r, "vem_rsd_history_late_total");
    }
    ck_assert_msg(unqueued > 0 && late <= 2 * 1024 && late + unqueued == S_PLATES,
                  "%.0f states loaded their history late, %.0f found the queue full", late,
                  unqueued);
    ck_assert_double_eq(vem_it_metric_now(&r, "vem_rsd_history_unqueued_total"), unqueued);
    free(ids);
    free(plates);
    free(id_p);
    free(plate_p);
    free(no);
    free(times);
    vem_it_stop(&r);
}
END_TEST

/* rule_id.py rsd.no_exceed 津H00020 r=RH-1/s1 */
#define S_ID_T_S1 "1fabbf85bd55dfd55e427eece4708658"

START_TEST(roadside_history_db_slow)
{
    /* PostgreSQL up but rsd_readings locked (a long migration, say) when a new state's first
     * reading comes: the worker's load gives up at the statement timeout (1 s), not when the
     * lock goes (15 s later), counted and logged as a failure; the reading is judged without
     * it and its notice stored once the lock is gone */
    vem_it_run_t r = {0};
    vem_it_start(&r, "it_rules");
    ck_assert(vem_it_log_until(&r, "roadside history:", 10));
    PGconn *lock = vem_it_pg();
    PGresult *res = PQexec(lock, "BEGIN; LOCK TABLE rsd_readings IN ACCESS EXCLUSIVE MODE");
    ck_assert_msg(PQresultStatus(res) == PGRES_COMMAND_OK, "%s", PQerrorMessage(lock));
    PQclear(res);
    double locked_at = vem_it_mono();
    int64_t tn = (int64_t)time(NULL) - 600;
    static const char *const ids[] = {"s1"}, *const plates[] = {"津H00020"};
    static const double over[] = {1700};
    s_send_readings(&r, ids, plates, over, 1, tn);
    for (int i = 0; i < 100 && vem_it_metric_now(&r, "vem_rsd_history_failures_total") < 1; i++)
        vem_it_sleep(0.1);
    double failures = vem_it_metric_now(&r, "vem_rsd_history_failures_total");
    double failed_after = vem_it_mono() - locked_at;
    bool logged = vem_it_log_has(&r, "statement timeout");
    vem_it_sleep(15 - failed_after);
    res = PQexec(lock, "ROLLBACK");
    PQclear(res);
    PQfinish(lock);
    ck_assert_double_eq(failures, 1);
    ck_assert_msg(failed_after < 10, "the load gave up %.1f s after the lock", failed_after);
    ck_assert(logged);
    PGconn *conn = vem_it_pg();
    char *v = s_violation_wait(conn, S_ID_T_S1, "severity", "notice");
    ck_assert_str_eq(v, "notice");
    free(v);
    PQfinish(conn);
    vem_it_stop(&r);
}
END_TEST

/* rule_id.py rsd.no_exceed 津H00005 r=RH-1/k1 */
#define S_ID_N_K1 "39f2d810746a222cadaae710062cceb5"

/* The violations on a Kafka topic with this id, as "severity,first reading id" lines. */
static char *s_kafka_violations(const char *topic, const char *id)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "kcat -b '%s' -C -t '%s' -e -q -f '%%s\\n' 2>/dev/null",
             vem_test_env("VEM_TEST_KAFKA"), topic);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    char *line = NULL, *out = strdup("");
    size_t cap = 0;
    while (getline(&line, &cap, p) > 0) {
        json_t *ev = json_loads(line, 0, NULL);
        const char *vid = json_string_value(json_object_get(ev, "violation_id"));
        if (vid && strcmp(vid, id) == 0) {
            const char *sev = json_string_value(json_object_get(ev, "severity"));
            const char *first = json_string_value(json_object_get(
                json_array_get(json_object_get(json_object_get(ev, "evidence"), "readings"), 0),
                "reading_id"));
            char *more = NULL;
            ck_assert_int_ge(
                asprintf(&more, "%s%s,%s\n", out, sev ? sev : "?", first ? first : "?"), 0);
            free(out);
            out = more;
        }
        json_decref(ev);
    }
    free(line);
    pclose(p); /* a topic not made yet reads as empty */
    return out;
}

START_TEST(roadside_history_replay_to_a_lagging_sink)
{
    /* Kafka's brokers down while two exceedances of N come (k1 two hours back, k2 one hour
     * back): PostgreSQL stores the readings and the violation under k1's id, the Kafka sink's
     * cursor stays below them. vemd is killed, the brokers come back, vemd starts again: the
     * start load gives the chain k1, k2 from PostgreSQL, and the catch-up from Kafka's cursor
     * brings k1 and k2 again. Kafka must get what live data gave: k1's notice and the
     * violation, both under k1's id (rules.md: two exceedances within 6 months). */
    pid_t broker = (pid_t)atol(vem_test_env("VEM_TEST_BROKER_PID"));
    ck_assert_int_eq(kill(broker, SIGUSR2), 0); /* up, whatever an earlier failure left */
    char t[64], opts[600], topic[96];
    snprintf(t, sizeof t, "rhlag%ld", (long)getpid());
    snprintf(opts, sizeof opts,
             "topic_samples = \"%s.samples\"; topic_terminal = \"%s.terminal\"; "
             "topic_violations = \"%s.violations\"; topic_rsd = \"%s.rsd\"; linger_ms = 5; "
             "message_timeout_ms = 4000; retry_max_s = 2;",
             t, t, t, t);
    snprintf(topic, sizeof topic, "%s.violations", t);
    vem_it_run_t r = {.kafka_opts = opts};
    vem_it_start(&r, "it_rules");
    ck_assert(vem_it_log_until(&r, "roadside history:", 10));
    ck_assert_int_eq(kill(broker, SIGUSR1), 0);
    int64_t tn = (int64_t)time(NULL) - 600;
    static const char *const ids[] = {"k1", "k2"}, *const plates[] = {"津H00005", "津H00005"};
    static const double no[] = {1700, 1650};
    const int64_t times[] = {tn - 7200, tn - 3600};
    s_send_readings_at(&r, ids, plates, no, times, NULL, 2);
    PGconn *conn = vem_it_pg();
    char *v = s_violation_wait(conn, S_ID_N_K1, "severity", "violation");
    int killed = kill(r.vemd, SIGKILL);
    int status = vem_it_wait(r.vemd, 10);
    ck_assert_int_eq(kill(broker, SIGUSR2), 0); /* up before any check can fail */
    ck_assert_str_eq(v, "violation");
    free(v);
    ck_assert_int_eq(killed, 0);
    ck_assert_int_eq(status, 128 + SIGKILL);
    char *seen = s_kafka_violations(topic, S_ID_N_K1);
    ck_assert_str_eq(seen, ""); /* nothing reached Kafka before the kill */
    free(seen);
    vem_it_launch(&r);
    seen = NULL;
    for (double until = vem_it_mono() + 30; vem_it_mono() < until;) {
        free(seen);
        seen = s_kafka_violations(topic, S_ID_N_K1);
        if (strstr(seen, "violation,k1\n"))
            break;
        vem_it_sleep(0.2);
    }
    /* each once, in the order live data gave them (one key, one partition) */
    ck_assert_msg(strcmp(seen, "notice,k1\nviolation,k1\n") == 0,
                  "Kafka's violations under k1's id: [%s]", seen);
    free(seen);
    ck_assert(vem_it_log_has(&r, "roadside history:"));
    v = s_violation(conn, S_ID_N_K1, "severity");
    ck_assert_str_eq(v, "violation");
    free(v);
    PQfinish(conn);
    vem_it_stop(&r);
}
END_TEST

Suite *vem_suite_rules_e2e(void);
Suite *vem_suite_rules_e2e(void)
{
    Suite *s = suite_create("rules_e2e");
    TCase *tc = tcase_create("rules_e2e");
    tcase_set_timeout(tc, 400);
    tcase_add_test(tc, flagged_exactly);
    tcase_add_test(tc, replay_same_ids);
    tcase_add_test(tc, kill9_same_verdicts);
    tcase_add_test(tc, link_drop_same_verdicts);
    tcase_add_test(tc, reload_switches_rules);
    tcase_add_test(tc, daily_completeness);
    suite_add_tcase(s, tc);
    TCase *hist = tcase_create("roadside_history"); /* CK_RUN_CASE=roadside_history */
    tcase_set_timeout(hist, 120);
    tcase_add_test(hist, roadside_history_from_pg);
    tcase_add_test(hist, roadside_history_bounds);
    tcase_add_test(hist, roadside_history_on_demand);
    tcase_add_test(hist, roadside_history_db_down);
    tcase_add_test(hist, roadside_history_db_slow);
    tcase_add_test(hist, roadside_history_queue_full);
    tcase_add_test(hist, roadside_history_replay_to_a_lagging_sink);
    suite_add_tcase(s, hist);
    TCase *idle = tcase_create("idle_state"); /* CK_RUN_CASE=idle_state */
    tcase_set_timeout(idle, 240);
    tcase_add_test(idle, idle_state_released);
    suite_add_tcase(s, idle);
    TCase *pause = tcase_create("spool_pause"); /* CK_RUN_CASE=spool_pause */
    tcase_set_timeout(pause, 480);
    tcase_add_test(pause, spool_full_pause_same_verdicts);
    TCase *stop = tcase_create("stop_same_verdicts"); /* CK_RUN_CASE=stop_same_verdicts */
    tcase_set_timeout(stop, 700);
    tcase_add_test(stop, stop_same_verdicts);
    TCase *window = tcase_create("window_stop"); /* CK_RUN_CASE=window_stop */
    tcase_set_timeout(window, 900);
    tcase_add_test(window, window_verdict_survives_a_stop);
    suite_add_tcase(s, pause);
    suite_add_tcase(s, stop);
    suite_add_tcase(s, window);
    return s;
}
