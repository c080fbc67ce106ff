/* check_config — the key table, the loader's errors (file:line and key, empty files, cross-key
 * rules), print/load round trip, reload of reloadable keys only, the byte budget against this
 * machine's memory and descriptor limit, and that deploy/vemd.cfg loads and fits. */
#include "config.h"
#include "log.h"
#include "pgrows.h"
#include "testutil.h"

#include <check.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

static char s_dir[256];

static void s_setup(void)
{
    vem_test_mkdtemp("check_config", s_dir, sizeof s_dir);
}

static void s_teardown(void)
{
    vem_test_rmtree(s_dir);
}

/* Writes text to a file in the temp dir and returns its path (static buffer). */
static const char *s_file(const char *text)
{
    static char path[300];
    snprintf(path, sizeof path, "%s/vemd.cfg", s_dir);
    vem_test_spit(path, text);
    return path;
}

static void s_refused(const char *text, const char *expected_error_tail)
{
    char err[512] = "";
    const char *path = s_file(text);
    ck_assert_ptr_null(vem_config_load(path, err, sizeof err));
    char expected[700];
    snprintf(expected, sizeof expected, "%s:%s", path, expected_error_tail);
    ck_assert_str_eq(err, expected);
}

START_TEST(defaults_are_within_bounds)
{
    size_t n;
    const vem_conf_key_t *keys = vem_config_keys(&n);
    ck_assert_uint_gt(n, 20);
    for (size_t i = 0; i < n; i++) {
        ck_assert_ptr_nonnull(strchr(keys[i].key, '.'));
        ck_assert(keys[i].help && *keys[i].help);
        if (keys[i].type == VEM_CONF_INT) {
            long long v = strtoll(keys[i].dflt, NULL, 10);
            ck_assert_msg(v >= keys[i].min && v <= keys[i].max, "%s default out of bounds",
                          keys[i].key);
        }
    }
    vem_config_t *cfg = vem_config_defaults();
    ck_assert_str_eq(cfg->terminals.endpoint, "tcp://127.0.0.1:7611");
    ck_assert_int_eq(cfg->terminals.backlog, 4096); /* NOTES.md: 100 loses connect bursts */
    ck_assert_str_eq(cfg->terminals.reply_mode, "none");
    ck_assert_int_eq(cfg->log.level, VEM_LOG_INFO);
    ck_assert(cfg->spool.fsync);
    vem_config_destroy(&cfg);
    ck_assert_ptr_null(cfg);
}
END_TEST

START_TEST(file_values_override_defaults)
{
    char err[512];
    vem_config_t *cfg = vem_config_load(
        s_file("terminals: { endpoint = \"tcp://127.0.0.1:9000\"; reply_mode = \"hj1239\"; };\n"
               "spool: { max_bytes = 10000000000L; fsync = false; };\nlog: { level = "
               "\"debug\"; };\n"),
        err, sizeof err);
    ck_assert_msg(cfg != NULL, "%s", err);
    ck_assert_str_eq(cfg->terminals.endpoint, "tcp://127.0.0.1:9000");
    ck_assert_str_eq(cfg->terminals.reply_mode, "hj1239");
    ck_assert_int_eq(cfg->spool.max_bytes, 10000000000LL);
    ck_assert(!cfg->spool.fsync);
    ck_assert_int_eq(cfg->log.level, VEM_LOG_DEBUG);
    ck_assert_int_eq(cfg->terminals.idle_timeout_s, 300); /* untouched: default */
    vem_config_destroy(&cfg);
}
END_TEST

START_TEST(errors_name_file_line_and_key)
{
    s_refused("terminals: {\n  edpoint = \"x\";\n};\n", "2: unknown key 'terminals.edpoint'");
    s_refused("\n\nterminal: { endpoint = \"x\"; };\n", "3: unknown section 'terminal'");
    s_refused("pipeline: {\n workers = \"two\";\n};\n", "2: 'pipeline.workers' must be an integer");
    s_refused("pipeline: { workers = 999; };\n",
              "1: 'pipeline.workers' = 999 is out of range 0..256");
    s_refused("terminals: { reply_mode = \"always\"; };\n",
              "1: 'terminals.reply_mode' = \"always\" is not one of none|hj1239");
    s_refused("metrics: { enable = 1; };\n", "1: 'metrics.enable' must be true or false");
    s_refused("log: { level = \"loud\"; };\n",
              "1: 'log.level' = \"loud\" is not one of err|warning|notice|info|debug");
    s_refused("log: {\n level = ;\n};\n", "2: syntax error");
}
END_TEST

START_TEST(missing_file_is_an_error)
{
    char err[512];
    ck_assert_ptr_null(vem_config_load("/nonexistent/vemd.cfg", err, sizeof err));
    ck_assert_str_eq(err, "/nonexistent/vemd.cfg: cannot read: No such file or directory");
}
END_TEST

/* A file that sets nothing loaded as all defaults: on SIGHUP an emptied file reset every
 * reloadable key without a word. Empty sections set nothing either. */
START_TEST(empty_file_sets_no_key)
{
    static const char *const empties[] = {"", "# only a comment\n// and another\n", "\n\n   \n",
                                          "log: { };\nterminals: {};\n"};
    for (size_t i = 0; i < sizeof empties / sizeof empties[0]; i++)
        s_refused(empties[i], " sets no key (empty configuration)");
    /* the defaults do not come from a file, and one key is enough for a file */
    vem_config_t *cfg = vem_config_defaults();
    ck_assert_int_eq(cfg->log.burst, 10);
    vem_config_destroy(&cfg);
    char err[512];
    cfg = vem_config_load(s_file("# a comment\nlog: { burst = 5; };\n"), err, sizeof err);
    ck_assert_msg(cfg != NULL, "%s", err);
    ck_assert_int_eq(cfg->log.burst, 5);
    vem_config_destroy(&cfg);
}
END_TEST

/* The spool trims whole segments and never the active one: with max_bytes at or below one
 * segment intake pauses for good, and below two it pauses every time a segment fills. */
START_TEST(spool_needs_two_segments)
{
    s_refused("spool: { max_bytes = 67108864L; };\n", /* the default segment: 64 MiB */
              " spool.max_bytes 67108864 must be at least 2 x spool.segment_bytes 67108864"
              " (134217728): the active segment is never trimmed, so intake would stall");
    s_refused("spool: {\n max_bytes = 1048576;\n segment_bytes = 1048575;\n};\n",
              " spool.max_bytes 1048576 must be at least 2 x spool.segment_bytes 1048575"
              " (2097150): the active segment is never trimmed, so intake would stall");
    char err[512];
    vem_config_t *cfg = vem_config_load(
        s_file("spool: { max_bytes = 2097152; segment_bytes = 1048576; };\n"), err, sizeof err);
    ck_assert_msg(cfg != NULL, "%s", err); /* exactly two segments is enough */
    vem_config_destroy(&cfg);
}
END_TEST

/* A CURVE endpoint needs both its key pair and its clients directory; the limits a station
 * controls have bounds; a text loads like a file. */
START_TEST(curve_and_input_limits)
{
    s_refused("stations: { curve_server_key = \"/k/server.key\"; };\n",
              " stations.curve_server_key and stations.curve_clients_dir go together");
    s_refused("gateways: { curve_clients_dir = \"/k/gw.d\"; };\n",
              " gateways.curve_server_key and gateways.curve_clients_dir go together");
    s_refused("stations: {\n max_json_depth = 0;\n};\n",
              "2: 'stations.max_json_depth' = 0 is out of range 1..64");
    s_refused("control: {\n max_message_bytes = 2000000;\n};\n",
              "2: 'control.max_message_bytes' = 2000000 is out of range 64..1048576");
    char err[512];
    vem_config_t *cfg = vem_config_parse("stations: { max_json_depth = 3; curve_server_key = "
                                         "\"/k/s.key\"; curve_clients_dir = \"/k/s.d\"; };\n",
                                         "text", err, sizeof err);
    ck_assert_msg(cfg != NULL, "%s", err);
    ck_assert_int_eq(cfg->stations.max_json_depth, 3);
    ck_assert_str_eq(cfg->stations.curve_clients_dir, "/k/s.d");
    ck_assert_str_eq(cfg->gateways.curve_server_key, ""); /* plain unless configured */
    ck_assert_int_eq(cfg->control.max_message_bytes, 4096);
    vem_config_destroy(&cfg);
    ck_assert_ptr_null(
        vem_config_parse("stations: { max_json_depth = ; };", "text", err, sizeof err));
    ck_assert_msg(strncmp(err, "text:1: ", 8) == 0, "%s", err);
}
END_TEST

/* A directory used to come back from libconfig as "No such file or directory". */
START_TEST(directory_is_not_a_file)
{
    char err[512], path[300], expected[400];
    snprintf(path, sizeof path, "%s/conf.d", s_dir);
    ck_assert_int_eq(mkdir(path, 0700), 0);
    ck_assert_ptr_null(vem_config_load(path, err, sizeof err));
    snprintf(expected, sizeof expected, "%s: is a directory", path);
    ck_assert_str_eq(err, expected);
    /* other open errors carry the errno of the open itself */
    int n = snprintf(path, sizeof path, "%s/x", s_file("log: { burst = 5; };\n"));
    ck_assert(n > 0 && (size_t)n < sizeof path);
    ck_assert_ptr_null(vem_config_load(path, err, sizeof err));
    snprintf(expected, sizeof expected, "%s: cannot read: Not a directory", path);
    ck_assert_str_eq(err, expected);
}
END_TEST

START_TEST(print_loads_back_equal)
{
    char err[512];
    vem_config_t *cfg = vem_config_load(
        s_file("terminals: { endpoint = \"tcp://[::1]:7611\"; max_connections = 77; };\n"
               "spool: { dir = \"/var/lib/vemd/sp\\\"ool\"; max_bytes = 5000000000L; };\n"
               "metrics: { enable = false; };\nlog: { level = \"warning\"; };\n"),
        err, sizeof err);
    ck_assert_msg(cfg != NULL, "%s", err);
    char path[300];
    snprintf(path, sizeof path, "%s/printed.cfg", s_dir);
    FILE *f = fopen(path, "w");
    ck_assert_int_eq(vem_config_print(cfg, f), 0);
    fclose(f);
    vem_config_t *back = vem_config_load(path, err, sizeof err);
    ck_assert_msg(back != NULL, "%s", err);
    /* A reload between equal configurations reports nothing changed. */
    ck_assert_int_eq(vem_config_reload(cfg, back, err, sizeof err), 0);
    ck_assert_str_eq(err, "");
    ck_assert_str_eq(back->spool.dir, "/var/lib/vemd/sp\"ool");
    ck_assert_int_eq(back->terminals.max_connections, 77);
    ck_assert_int_eq(back->spool.max_bytes, 5000000000LL);
    ck_assert(!back->metrics.enable);
    ck_assert_int_eq(back->log.level, VEM_LOG_WARNING);
    vem_config_destroy(&cfg);
    vem_config_destroy(&back);
}
END_TEST

START_TEST(reload_applies_only_reloadable_keys)
{
    char err[512];
    vem_config_t *live = vem_config_defaults();
    vem_config_t *fresh = vem_config_load(
        s_file("terminals: { endpoint = \"tcp://127.0.0.1:1\"; reply_mode = \"hj1239\"; };\n"
               "log: { level = \"debug\"; burst = 3; };\npipeline: { workers = 7; };\n"),
        err, sizeof err);
    ck_assert_ptr_nonnull(fresh);
    ck_assert_int_eq(vem_config_reload(live, fresh, err, sizeof err), 0);
    ck_assert_str_eq(live->terminals.reply_mode, "hj1239"); /* reloadable */
    ck_assert_int_eq(live->log.level, VEM_LOG_DEBUG);
    ck_assert_int_eq(live->log.burst, 3);
    ck_assert_str_eq(live->terminals.endpoint, "tcp://127.0.0.1:7611"); /* needs a restart */
    ck_assert_int_eq(live->pipeline.workers, 0);
    ck_assert_str_eq(err, "changed keys that need a restart: terminals.endpoint, pipeline.workers");
    vem_config_destroy(&live);
    vem_config_destroy(&fresh);
}
END_TEST

/* The table's default texts are the rules engine's own defaults (rules_config.c, which
 * follows protocol/rules.md): two sources that must not drift apart. */
START_TEST(rules_defaults_are_the_engines)
{
    vem_config_t *cfg = vem_config_defaults();
    vem_rules_config_t engine;
    vem_rules_config_defaults(&engine);
    ck_assert_int_eq(memcmp(&cfg->rules.t, &engine, sizeof engine), 0);
    vem_config_destroy(&cfg);
}
END_TEST

START_TEST(rules_keys_set_thresholds_and_switches)
{
    char err[512];
    vem_config_t *cfg =
        vem_config_load(s_file("rules: {\n"
                               "  nox_window_mg_kwh = 460;\n" /* an integer is a number too */
                               "  fuel_density_kg_l = 0.84;\n"
                               "  mil_days = 3;\n"
                               "  gas_co_pct = 4.5;\n"
                               "  rsd_speed_kmh_min = 15.0; rsd_speed_kmh_max = 90.0;\n"
                               "  rsd_no_ppm_b = 900.0;\n"
                               "  rsd_limit_column = \"b\";\n"
                               "  rsd_limit_b_from = \"2024-03-07\";\n"
                               "  disabled = \"obd.offline, rsd.hc_exceed\tfusion.obd_mismatch\";\n"
                               "};\n"),
                        err, sizeof err);
    ck_assert_msg(cfg != NULL, "%s", err);
    const vem_rules_config_t *t = &cfg->rules.t;
    ck_assert_double_eq(t->nox_window_mg_kwh, 460);
    ck_assert_double_eq(t->fuel_density_kg_l, 0.84);
    ck_assert_uint_eq(t->mil_days, 3);
    ck_assert_double_eq(t->gas_co_pct, 4.5);
    ck_assert(isnan(t->gas_hc_ppm)); /* untouched: still unset */
    ck_assert_double_eq(t->rsd_speed_kmh.lo, 15);
    ck_assert_double_eq(t->rsd_speed_kmh.hi, 90);
    ck_assert_double_eq(t->rsd_no_ppm[VEM_RSD_LIMIT_B], 900);
    ck_assert_double_eq(t->rsd_no_ppm[VEM_RSD_LIMIT_A], 1500);
    ck_assert_int_eq(t->rsd_column, VEM_RSD_LIMIT_B);
    /* 2024-03-07 00:00 Beijing is 2024-03-06 16:00 UTC: 19723 days to 2024-01-01, + 65 */
    ck_assert_int_eq(t->rsd_b_from_us, ((19723LL + 65) * 86400 + 16 * 3600) * 1000000);
    for (unsigned r = 0; r < VEM_RULE_COUNT; r++)
        ck_assert_msg(t->enabled[r] == (r != VEM_RULE_OBD_OFFLINE && r != VEM_RULE_RSD_HC &&
                                        r != VEM_RULE_FUSION_OBD_MISMATCH),
                      "rule %s", vem_rules_name((vem_rule_t)r));
    ck_assert_int_eq(vem_rules_config_validate(t, err, sizeof err), 0);

    /* printed and loaded back: the same thresholds, switches and column */
    char path[300];
    snprintf(path, sizeof path, "%s/printed.cfg", s_dir);
    FILE *f = fopen(path, "w");
    ck_assert_int_eq(vem_config_print(cfg, f), 0);
    fclose(f);
    vem_config_t *back = vem_config_load(path, err, sizeof err);
    ck_assert_msg(back != NULL, "%s", err);
    ck_assert_int_eq(memcmp(&back->rules.t, &cfg->rules.t, sizeof cfg->rules.t), 0);
    vem_config_destroy(&back);
    vem_config_destroy(&cfg);
}
END_TEST

START_TEST(rules_keys_refused_with_the_reason)
{
    s_refused("rules: { disabled = \"obd.mil_on, obd.nope\"; };\n",
              " rules.disabled: no rule called 'obd.nope' (rules.md names, e.g. obd.nox_window)");
    s_refused("rules: { nox_percentile = 0; };\n", " rules.nox_percentile: 0 is outside 1 .. 100");
    s_refused("rules: { scr_eff_min = 1.5; };\n", " rules.scr_eff_min: 1.5 is outside 0 .. 1");
    s_refused("rules: { backlog_hole_s = 0; };\n", " rules.backlog_hole_s: 0 is outside 1 .. 600");
    s_refused("rules: { backlog_hole_s = 601; };\n",
              " rules.backlog_hole_s: 601 is outside 1 .. 600");
    s_refused("rules: { rsd_speed_kmh_min = 90.0; };\n",
              " rules.rsd_speed_kmh_min .. rsd_speed_kmh_max: 90 .. 80 is not a range (low above "
              "high?)");
    s_refused("rules: {\n  nox_u = \"x\";\n};\n", "2: 'rules.nox_u' must be a number");
    s_refused("rules: {\n  mil_days = -1;\n};\n",
              "2: 'rules.mil_days' = -1 is out of range 0..4294967295");
    s_refused("rules: {\n  rsd_limit_column = \"c\";\n};\n",
              "2: 'rules.rsd_limit_column' = \"c\" is not one of a|b");
    s_refused("rules: { rsd_limit_column = \"b\"; rsd_limit_b_from = \"2023-02-29\"; };\n",
              " rules.rsd_limit_b_from: '2023-02-29' is not a date (YYYY-MM-DD)");
    s_refused("rules: { rsd_limit_b_from = \"2024-03-07\"; };\n",
              " rules.rsd_limit_b_from: a date from which column b applies, but the column is a "
              "(set rsd_limit_column = \"b\")");
}
END_TEST

/* A file with the one rules key set to text: loads (true) or is refused. */
static bool s_rules_loads(const char *name, const char *text)
{
    char cfgtext[256], err[512];
    snprintf(cfgtext, sizeof cfgtext, "rules: { %s = %s; };\n", name, text);
    vem_config_t *cfg = vem_config_load(s_file(cfgtext), err, sizeof err);
    bool ok = cfg != NULL;
    vem_config_destroy(&cfg);
    return ok;
}

/* The bounds --print-config (and so deploy/vemd.cfg and README) gives a rules threshold are the
 * ones the loader holds it to: each end loads, a step beyond each is refused. Read back from
 * the printed text, so a bound printed but not enforced, or enforced but printed wrong, fails. */
START_TEST(rules_bounds_printed_are_enforced)
{
    vem_config_t *cfg = vem_config_defaults();
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    ck_assert_int_eq(vem_config_print(cfg, out), 0);
    fclose(out);
    vem_config_destroy(&cfg);
    const char *sec = strstr(text, "\nrules: {\n");
    ck_assert_ptr_nonnull(sec);
    unsigned ints = 0, reals = 0, positive = 0;
    const char *end = strstr(sec, "\n};");
    ck_assert_ptr_nonnull(end);
    for (const char *l = strstr(sec, "    # default "); l && l < end;
         l = strstr(l + 1, "    # default ")) {
        const char *eol = strchr(l, '\n'), *r = strstr(l, ", range ");
        if (!eol || !r || r > eol)
            continue;
        char name[64];
        if (sscanf(eol + 1, " %*[# ]%63[a-z_0-9] =", name) != 1 &&
            sscanf(eol + 1, " %63[a-z_0-9] =", name) != 1)
            ck_abort_msg("no key after %.*s", (int)(eol - l), l);
        char lo[40], hi[40], v[48];
        double h;
        if (sscanf(r, ", range above 0 up to %lf", &h) == 1) {
            snprintf(v, sizeof v, "%.17g", h);
            ck_assert_msg(s_rules_loads(name, v), "%s = %s refused", name, v);
            snprintf(v, sizeof v, "%.17g", h * 1.001 + 1e-6);
            ck_assert_msg(!s_rules_loads(name, v), "%s = %s loaded", name, v);
            ck_assert_msg(!s_rules_loads(name, "0.0"), "%s = 0.0 loaded", name);
            ck_assert_msg(s_rules_loads(name, "1e-6") == (h >= 1e-6), "%s = 1e-6", name);
            positive++;
        } else if (strncmp(r, ", range ", 8) == 0 && strstr(r, "..") && strstr(r, "..") < eol) {
            const char *dots = strstr(r, "..");
            snprintf(lo, sizeof lo, "%.*s", (int)(dots - r - 8), r + 8);
            snprintf(hi, sizeof hi, "%.*s", (int)strcspn(dots + 2, ",\n"), dots + 2);
            /* the key's type from its printed value: a real has a point or an exponent */
            const char *val = strchr(eol + 1, '=');
            bool is_int = val && strcspn(val, ".e;") == strcspn(val, ";");
            if (is_int) {
                long long a = atoll(lo), b = atoll(hi);
                snprintf(v, sizeof v, "%lld", a);
                ck_assert_msg(s_rules_loads(name, v), "%s = %s refused", name, v);
                snprintf(v, sizeof v, "%lld", b);
                ck_assert_msg(s_rules_loads(name, v), "%s = %s refused", name, v);
                snprintf(v, sizeof v, "%lld", b + 1);
                ck_assert_msg(!s_rules_loads(name, v), "%s = %s loaded", name, v);
                if (a > 0) {
                    snprintf(v, sizeof v, "%lld", a - 1);
                    ck_assert_msg(!s_rules_loads(name, v), "%s = %s loaded", name, v);
                }
                ints++;
            } else {
                double a = strtod(lo, NULL), b = strtod(hi, NULL);
                snprintf(v, sizeof v, "%.17g", b);
                if (!strpbrk(v, ".e"))
                    strcat(v, ".0");
                ck_assert_msg(s_rules_loads(name, v), "%s = %s refused", name, v);
                snprintf(v, sizeof v, "%.17g", a);
                if (!strpbrk(v, ".e"))
                    strcat(v, ".0");
                ck_assert_msg(s_rules_loads(name, v), "%s = %s refused", name, v);
                snprintf(v, sizeof v, "%.17g", b + 0.5);
                ck_assert_msg(!s_rules_loads(name, v), "%s = %s loaded", name, v);
                snprintf(v, sizeof v, "%.17g", a - 0.5);
                ck_assert_msg(!s_rules_loads(name, v), "%s = %s loaded", name, v);
                reals++;
            }
        } else {
            ck_abort_msg("a range that is neither form: %.*s", (int)(eol - r), r);
        }
    }
    free(text);
    /* every threshold but the validity windows' ends and the limit column has bounds */
    ck_assert_uint_ge(ints, 17);
    ck_assert_uint_ge(reals, 10);
    ck_assert_uint_ge(positive, 8);
}
END_TEST

/* Every threshold is reloadable: SIGHUP takes them without a word about a restart. */
START_TEST(rules_keys_reload)
{
    char err[512];
    vem_config_t *live = vem_config_defaults();
    vem_config_t *fresh = vem_config_load(
        s_file("rules: { nox_ppm_max = 450.0; disabled = \"obd.dtc\"; };\n"), err, sizeof err);
    ck_assert_msg(fresh != NULL, "%s", err);
    ck_assert_int_eq(vem_config_reload(live, fresh, err, sizeof err), 0);
    ck_assert_str_eq(err, "");
    ck_assert_double_eq(live->rules.t.nox_ppm_max, 450);
    ck_assert(!live->rules.t.enabled[VEM_RULE_OBD_DTC]);
    ck_assert(live->rules.t.enabled[VEM_RULE_OBD_MIL_ON]);
    vem_config_destroy(&live);
    vem_config_destroy(&fresh);
}
END_TEST

START_TEST(shipped_example_loads)
{
    char err[512];
    vem_config_t *cfg = vem_config_load("deploy/vemd.cfg", err, sizeof err);
    ck_assert_msg(cfg != NULL, "%s", err);
    vem_config_t *defaults = vem_config_defaults();
    ck_assert_int_eq(vem_config_reload(defaults, cfg, err, sizeof err), 0);
    ck_assert_str_eq(err, ""); /* the example shows the defaults */
    /* ... as --print-config prints them, byte for byte: no key, comment or bound left behind */
    char *printed = NULL, *shipped = NULL;
    size_t printed_len = 0, shipped_len = 0;
    FILE *f = open_memstream(&printed, &printed_len);
    ck_assert_int_eq(vem_config_print(defaults, f), 0);
    fclose(f);
    f = fopen("deploy/vemd.cfg", "r");
    ck_assert_ptr_nonnull(f);
    FILE *g = open_memstream(&shipped, &shipped_len);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        fwrite(chunk, 1, n, g);
    fclose(f);
    fclose(g);
    ck_assert_msg(strcmp(printed, shipped) == 0,
                  "deploy/vemd.cfg differs from vemd --print-config: regenerate it");
    free(printed);
    free(shipped);
    vem_budget_t b;
    ck_assert_msg(vem_config_budget(cfg, &b, err, sizeof err) == 0, "%s", err);
    vem_config_destroy(&cfg);
    vem_config_destroy(&defaults);
}
END_TEST

/* Small known values, worked by hand from the assumptions in config.c:
 *   reassembly     100 connections x 1000 B frames                          =    100,000
 *   socket queues  100 connections x rcvhwm 10 x (8192 + 128) B per read    =  8,320,000
 *   libzmq         100 connections x 21 x 1024 B                            =  2,150,400
 *   worker queues  an input is the 48 B vem_input_hdr_t + a 512 B detail + max(1000, 8192) B
 *                  = 8,752 B; (2 workers x 2 x queue_hwm 100 + ingest's 512) x 8,752
 *                                                                           =  7,981,824
 *   sink queues    a message is the 32 B vem_records_hdr_t + 256 records x (64 B header +
 *                  512 B detail + 8,192 B data) = 32 + 2,244,608            =  2,244,640 B;
 *                  2 workers x 2 x pg.queue_hwm 10 x 2,244,640              = 89,785,600
 *   sink batch     1000 rows x 440 B + 65,536 seqs x 8 B + one message
 *                  = 440,000 + 524,288 + 2,244,640                          =  3,208,928
 *   total                                                                   = 111,546,752
 *   descriptors    100 connections + 64 + 8 per worker x 2                  =        180 */
/* kafka.properties: an array of "name=value" strings, kept as lines, printed and loaded back;
 * anything else is refused with the file, line and key. */
START_TEST(kafka_properties)
{
    char err[512];
    vem_config_t *cfg = vem_config_load(
        s_file("kafka: { enable = true; brokers = \"k1:9093,k2:9093\"; topic_rsd = \"\";\n"
               "  properties = [ \"security.protocol=SASL_SSL\", \"sasl.mechanism=PLAIN\",\n"
               "                 \"sasl.password=a\\\"b=c\" ]; };\n"),
        err, sizeof err);
    ck_assert_msg(cfg != NULL, "%s", err);
    ck_assert(cfg->kafka.enable);
    ck_assert_str_eq(cfg->kafka.properties,
                     "security.protocol=SASL_SSL\nsasl.mechanism=PLAIN\nsasl.password=a\"b=c");
    ck_assert_str_eq(cfg->kafka.topic_rsd, "");
    ck_assert_str_eq(cfg->kafka.topic_samples, "vem.samples");
    char path[300];
    snprintf(path, sizeof path, "%s/printed.cfg", s_dir);
    FILE *f = fopen(path, "w");
    ck_assert_int_eq(vem_config_print(cfg, f), 0);
    fclose(f);
    vem_config_t *back = vem_config_load(path, err, sizeof err);
    ck_assert_msg(back != NULL, "%s", err);
    ck_assert_str_eq(back->kafka.properties, cfg->kafka.properties);
    ck_assert_int_eq(vem_config_reload(cfg, back, err, sizeof err), 0);
    ck_assert_str_eq(err, "");
    vem_config_destroy(&cfg);
    vem_config_destroy(&back);
    /* the defaults print an empty list that loads back */
    cfg = vem_config_defaults();
    ck_assert_str_eq(cfg->kafka.properties, "");
    vem_config_destroy(&cfg);
    s_refused("kafka: {\n properties = [ \"acks\" ]; };\n",
              "2: 'kafka.properties' item 1 must be a \"name=value\" string");
    s_refused("kafka: {\n properties = \"acks=all\"; };\n",
              "2: 'kafka.properties' must be an array of \"name=value\" strings");
    s_refused("kafka: {\n compression = \"brotli\"; };\n",
              "2: 'kafka.compression' = \"brotli\" is not one of none|gzip|snappy|lz4|zstd");
}
END_TEST

START_TEST(budget_worked_by_hand)
{
    char err[512];
    vem_config_t *cfg = vem_config_load(
        s_file("terminals: { max_connections = 100; max_frame_bytes = 1000; rcvhwm = 10; };\n"
               "pipeline: { workers = 2; queue_hwm = 100; };\n"
               "pg: { queue_hwm = 10; batch_rows = 1000; };\n"),
        err, sizeof err);
    ck_assert_msg(cfg != NULL, "%s", err);
    vem_budget_t b;
    ck_assert_msg(vem_config_budget(cfg, &b, err, sizeof err) == 0, "%s", err);
    ck_assert_str_eq(err, "");
    ck_assert_uint_eq(b.workers, 2);
    ck_assert_uint_eq(b.reassembly, 100000);
    ck_assert_uint_eq(b.socket_queues, 8320000);
    ck_assert_uint_eq(b.zmq_connections, 2150400);
    ck_assert_uint_eq(b.worker_queues, 7981824);
    ck_assert_uint_eq(b.sink_queues, 89785600);
    ck_assert_uint_eq(b.sink_batch, 3208928);
    ck_assert_uint_eq(b.total, 111546752);
    ck_assert_uint_eq(b.descriptors, 180);
    ck_assert_uint_gt(b.memory, 0);
    /* frames above one read make inputs larger: (2 x 2 x 100 + 512) x (48 + 512 + 20000) */
    cfg->terminals.max_frame_bytes = 20000;
    ck_assert_int_eq(vem_config_budget(cfg, &b, err, sizeof err), 0);
    ck_assert_uint_eq(b.reassembly, 2000000);
    ck_assert_uint_eq(b.worker_queues, 18750720);
    /* without PostgreSQL there is no sink to queue for */
    cfg->terminals.max_frame_bytes = 1000;
    cfg->pg.enable = false;
    ck_assert_int_eq(vem_config_budget(cfg, &b, err, sizeof err), 0);
    ck_assert_uint_eq(b.sink_queues, 0);
    ck_assert_uint_eq(b.sink_batch, 0);
    ck_assert_uint_eq(b.total, 111546752 - 89785600 - 3208928);
    ck_assert_uint_eq(b.kafka_queue, 0);
    /* the Kafka sink: its worker pipes hold what PostgreSQL's do at the same queue_hwm
     * (89785600 above), and librdkafka holds up to queue_kbytes of values (1000 x 1024) and
     * queue_messages events of 1 KiB besides (2000 x 1024) */
    cfg->pg.enable = true;
    cfg->kafka.enable = true;
    cfg->kafka.queue_hwm = 10;
    cfg->kafka.queue_kbytes = 1000;
    cfg->kafka.queue_messages = 2000;
    ck_assert_int_eq(vem_config_budget(cfg, &b, err, sizeof err), 0);
    ck_assert_uint_eq(b.kafka_queue, 89785600 + 1024000 + 2048000);
    ck_assert_uint_eq(b.total, 111546752 + 89785600 + 1024000 + 2048000);
    vem_config_destroy(&cfg);
}
END_TEST

/* Each Check test runs in a forked child, so lowering the limit here touches nothing else; it
 * is put back all the same, for CK_FORK=no. */
START_TEST(budget_refuses_more_connections_than_descriptors)
{
    char err[512];
    vem_config_t *cfg = vem_config_load(
        s_file("terminals: { max_connections = 500; };\npipeline: { workers = 2; };\n"), err,
        sizeof err);
    ck_assert_msg(cfg != NULL, "%s", err);
    struct rlimit saved, low;
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &saved), 0);
    low = saved;
    low.rlim_cur = 200;
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
    vem_budget_t b;
    int rc = vem_config_budget(cfg, &b, err, sizeof err);
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &saved), 0);
    ck_assert_int_eq(rc, -1);
    ck_assert_str_eq(err, "terminals.max_connections 500 + 80 reserved descriptors = 580 do not "
                          "fit under the open-file limit 200 (soft RLIMIT_NOFILE; raise "
                          "LimitNOFILE or lower terminals.max_connections)");
    ck_assert_uint_eq(b.descriptors, 580);
    ck_assert_uint_eq(b.nofile, 200);
    /* 580 descriptors fit under the limit this suite runs with */
    ck_assert_msg(vem_config_budget(cfg, &b, err, sizeof err) == 0, "%s", err);
    vem_config_destroy(&cfg);
}
END_TEST

START_TEST(budget_refuses_more_than_half_the_memory)
{
    /* 1,000,000 connections x 100,000 reads x 8,320 B = 8.32e14 B = 756.7 TiB of socket queues */
    char err[512];
    vem_config_t *cfg = vem_config_load(
        s_file("terminals: { max_connections = 1000000; rcvhwm = 100000; };\n"), err, sizeof err);
    ck_assert_msg(cfg != NULL, "%s", err);
    vem_budget_t b;
    ck_assert_int_eq(vem_config_budget(cfg, &b, err, sizeof err), -1);
    ck_assert_uint_eq(b.socket_queues, UINT64_C(1000000) * 100000 * (8192 + 128));
    ck_assert_uint_gt(b.total, b.memory / 2);
    static const char head[] = "memory budget 756.7 TiB is more than half of the machine's ";
    ck_assert_msg(strncmp(err, head, sizeof head - 1) == 0, "%s", err);
    ck_assert_msg(strstr(err,
                         "; biggest part: terminal socket queues 756.7 TiB "
                         "(terminals.max_connections x terminals.rcvhwm x 8 KiB reads)") != NULL,
                  "%s", err);
    vem_config_destroy(&cfg);
}
END_TEST

START_TEST(budget_of_defaults_fits_this_machine)
{
    char err[512];
    vem_config_t *cfg = vem_config_defaults();
    vem_budget_t b;
    ck_assert_msg(vem_config_budget(cfg, &b, err, sizeof err) == 0, "%s", err);
    ck_assert_uint_eq(b.total, b.reassembly + b.socket_queues + b.zmq_connections +
                                   b.worker_queues + b.sink_queues + b.sink_batch);
    ck_assert_uint_eq(b.descriptors, 10000 + 64 + 8 * (uint64_t)b.workers);
    /* and the printed form names every part and the total */
    char path[300];
    snprintf(path, sizeof path, "%s/budget.txt", s_dir);
    FILE *f = fopen(path, "w+");
    ck_assert_int_eq(vem_config_print_budget(&b, f), 0);
    rewind(f);
    char text[2048] = "";
    text[fread(text, 1, sizeof text - 1, f)] = '\0';
    fclose(f);
    static const char *const parts[] = {"reassembly buffers",
                                        "terminal socket queues",
                                        "libzmq per connection",
                                        "worker queues",
                                        "sink queues",
                                        "sink batch",
                                        "total",
                                        "descriptors: 100"};
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
        ck_assert_msg(strstr(text, parts[i]) != NULL, "%s missing in:\n%s", parts[i], text);
    ck_assert_msg(strstr(text, "39.1 MiB") != NULL, "%s", text); /* 10000 x 4096 B */
    vem_config_destroy(&cfg);
}
END_TEST

/* config.c sizes the sink's queues and batch with sample rows of 440 B: the rows pgrows.c
 * writes for the shared vectors (a stream block alone, with a supplementary block joined, with
 * invalid and abnormal values) must not have outgrown that. */
START_TEST(budget_row_size_holds_for_the_vectors)
{
    char path[512];
    snprintf(path, sizeof path, "%s/hj1239/vectors.jsonl", vem_test_vectors_dir());
    FILE *in = fopen(path, "r");
    ck_assert_ptr_nonnull(in);
    vem_hj1239_frame_t *f = malloc(sizeof *f);
    ck_assert_ptr_nonnull(f);
    unsigned checked = 0;
    json_error_t jerr;
    json_t *v;
    while ((v = json_loadf(in, JSON_DISABLE_EOF_CHECK, &jerr))) {
        const char *name = json_string_value(json_object_get(v, "name"));
        uint8_t frame[4096];
        long len =
            vem_test_unhex(json_string_value(json_object_get(v, "hex")), frame, sizeof frame);
        vem_pgrows_t r = {0};
        if (len > 0 && vem_hj1239_decode(frame, (size_t)len, 0, f, NULL) == VEM_HJ1239_OK)
            vem_pgrows_frame(&r, f, INT64_C(1709597351000000));
        if (r.nrows[VEM_PGROWS_SAMPLES]) { /* obd_frames rows: the budget's bytes per sample */
            ck_assert_msg(r.rows[VEM_PGROWS_SAMPLES].len <= 440 * r.samples,
                          "%s: %zu B for %llu samples", name, r.rows[VEM_PGROWS_SAMPLES].len,
                          (unsigned long long)r.samples);
            checked++;
        }
        vem_pgrows_free(&r);
        json_decref(v);
    }
    fclose(in);
    free(f);
    ck_assert_uint_ge(checked, 4); /* gb17691, hj1239, resend, sentinels */
}
END_TEST

Suite *vem_suite_config(void);
Suite *vem_suite_config(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("config");
    tcase_add_checked_fixture(tc, s_setup, s_teardown);
    tcase_add_test(tc, defaults_are_within_bounds);
    tcase_add_test(tc, file_values_override_defaults);
    tcase_add_test(tc, errors_name_file_line_and_key);
    tcase_add_test(tc, missing_file_is_an_error);
    tcase_add_test(tc, directory_is_not_a_file);
    tcase_add_test(tc, empty_file_sets_no_key);
    tcase_add_test(tc, spool_needs_two_segments);
    tcase_add_test(tc, curve_and_input_limits);
    tcase_add_test(tc, print_loads_back_equal);
    tcase_add_test(tc, reload_applies_only_reloadable_keys);
    tcase_add_test(tc, rules_defaults_are_the_engines);
    tcase_add_test(tc, rules_keys_set_thresholds_and_switches);
    tcase_add_test(tc, rules_keys_refused_with_the_reason);
    tcase_add_test(tc, rules_keys_reload);
    tcase_add_test(tc, shipped_example_loads);
    tcase_add_test(tc, kafka_properties);
    tcase_add_test(tc, budget_worked_by_hand);
    tcase_add_test(tc, budget_refuses_more_connections_than_descriptors);
    tcase_add_test(tc, rules_bounds_printed_are_enforced);
    tcase_add_test(tc, budget_refuses_more_than_half_the_memory);
    tcase_add_test(tc, budget_of_defaults_fits_this_machine);
    tcase_add_test(tc, budget_row_size_holds_for_the_vectors);
    suite_add_tcase(s, tc);
    return s;
}
