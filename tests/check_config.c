/* check_config — the key table, the loader's errors (file:line and key), print/load round
 * trip, reload of reloadable keys only, and that deploy/vemd.cfg loads. */
#include "config.h"
#include "log.h"
#include "testutil.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static char s_dir[256];

static void s_setup(void)
{
    vem_test_mkdtemp("check_config", s_dir, sizeof s_dir);
}

static void s_teardown(void)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", s_dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* Writes text to a file in the temp dir and returns its path (static buffer). */
static const char *s_file(const char *text)
{
    static char path[300];
    snprintf(path, sizeof path, "%s/vemd.cfg", s_dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
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
    snprintf(path, sizeof path, "%s/x", s_file("log: { burst = 5; };\n"));
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

START_TEST(shipped_example_loads)
{
    char err[512];
    vem_config_t *cfg = vem_config_load("deploy/vemd.cfg", err, sizeof err);
    ck_assert_msg(cfg != NULL, "%s", err);
    vem_config_t *defaults = vem_config_defaults();
    ck_assert_int_eq(vem_config_reload(defaults, cfg, err, sizeof err), 0);
    ck_assert_str_eq(err, ""); /* the example shows the defaults */
    vem_config_destroy(&cfg);
    vem_config_destroy(&defaults);
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
    tcase_add_test(tc, print_loads_back_equal);
    tcase_add_test(tc, reload_applies_only_reloadable_keys);
    tcase_add_test(tc, shipped_example_loads);
    suite_add_tcase(s, tc);
    return s;
}
