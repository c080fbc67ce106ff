/* it_deploy — what `make install` puts in place is valid: the unit passes systemd-analyze
 * verify with the real binary, its sandbox rates OK (exposure at most 1.5 on systemd's 0-10
 * scale, a non-root User=, no privileged Exec line) in systemd-analyze security, and the shipped
 * configuration passes --check-config. */
#include "testutil.h"

#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char s_unit[300];

/* Writes deploy/vemd.service with @SBINDIR@ pointing at the built vemd. */
static void s_make_unit(void)
{
    char dir[256], cwd[512], cmd[1400];
    vem_test_mkdtemp("it_deploy", dir, sizeof dir);
    ck_assert_ptr_nonnull(getcwd(cwd, sizeof cwd));
    snprintf(s_unit, sizeof s_unit, "%s/vemd.service", dir);
    const char *bin = vem_test_bin_dir();
    snprintf(cmd, sizeof cmd, "sed 's|@SBINDIR@|%s%s%s|g' deploy/vemd.service > '%s'",
             bin[0] == '/' ? "" : cwd, bin[0] == '/' ? "" : "/", bin, s_unit);
    ck_assert_int_eq(system(cmd), 0);
}

START_TEST(unit_verifies)
{
    s_make_unit();
    char cmd[512];
    snprintf(cmd, sizeof cmd, "systemd-analyze verify '%s' 2>&1", s_unit);
    FILE *p = popen(cmd, "r");
    char out[4096] = "";
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    int status = pclose(p);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "verify: %s", out);
    ck_assert_msg(n == 0, "systemd-analyze verify complained: %s", out);
}
END_TEST

/* The retention job: its service (pointing at the built vemctl) and its timer verify. */
START_TEST(prune_timer_verifies)
{
    char dir[256], cwd[512], cmd[4096];
    vem_test_mkdtemp("it_deploy", dir, sizeof dir);
    ck_assert_ptr_nonnull(getcwd(cwd, sizeof cwd));
    const char *bin = vem_test_bin_dir();
    snprintf(cmd, sizeof cmd,
             "sed 's|@BINDIR@|%s%s%s|g' deploy/vemd-prune.service > '%s/vemd-prune.service' && "
             "cp deploy/vemd-prune.timer '%s/' && systemd-analyze verify '%s/vemd-prune.service' "
             "'%s/vemd-prune.timer' 2>&1",
             bin[0] == '/' ? "" : cwd, bin[0] == '/' ? "" : "/", bin, dir, dir, dir, dir);
    FILE *p = popen(cmd, "r");
    char out[4096] = "";
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    int status = pclose(p);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "verify: %s", out);
    ck_assert_msg(n == 0, "systemd-analyze verify complained: %s", out);
}
END_TEST

/* systemd's own rating of the sandbox, offline: exposure at most 1.5 on its 0-10 scale, and
 * vemd never root (a static non-root User=, and no Exec line that escapes it with '+' or '!'). */
START_TEST(sandbox_rates_ok)
{
    s_make_unit();
    char cmd[512];
    snprintf(cmd, sizeof cmd, "systemd-analyze security --offline=true '%s' 2>&1", s_unit);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    char line[512], exposure_line[512] = "";
    bool non_root = false;
    while (fgets(line, sizeof line, p)) {
        if (strstr(line, "Overall exposure level"))
            snprintf(exposure_line, sizeof exposure_line, "%s", line);
        if (strncmp(line, "\u2713 User=/DynamicUser=", strlen("\u2713 User=/DynamicUser=")) == 0)
            non_root = true;
    }
    pclose(p);
    const char *colon = strrchr(exposure_line, ':');
    ck_assert_msg(colon != NULL, "no exposure level for %s", s_unit);
    double exposure = atof(colon + 1);
    ck_assert_msg(exposure > 0 && exposure <= 1.5, "exposure %s", exposure_line);
    ck_assert_msg(non_root, "systemd-analyze does not rate User= as a non-root identity");
    FILE *unit = fopen(s_unit, "r");
    ck_assert_ptr_nonnull(unit);
    while (fgets(line, sizeof line, unit)) {
        const char *eq = strchr(line, '=');
        bool exec = strncmp(line, "Exec", 4) == 0 && eq;
        ck_assert_msg(!exec || (eq[1] != '+' && eq[1] != '!'), "runs privileged: %s", line);
        ck_assert_msg(strncmp(line, "User=root", 9) != 0, "%s", line);
    }
    fclose(unit);
}
END_TEST

START_TEST(shipped_config_checks)
{
    char cmd[1024], dir[256], bad[300];
    snprintf(cmd, sizeof cmd, "%s/vemd --check-config deploy/vemd.cfg >/dev/null",
             vem_test_bin_dir());
    ck_assert_int_eq(system(cmd), 0);
    vem_test_mkdtemp("it_deploy", dir, sizeof dir);
    snprintf(bad, sizeof bad, "%s/bad.cfg", dir);
    FILE *f = fopen(bad, "w");
    ck_assert_ptr_nonnull(f);
    fputs("spool: { dirr = \"x\"; };\n", f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "%s/vemd --check-config '%s' 2>/dev/null", vem_test_bin_dir(), bad);
    int status = system(cmd);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 1);
}
END_TEST

Suite *vem_suite_deploy(void);
Suite *vem_suite_deploy(void)
{
    Suite *s = suite_create("deploy");
    TCase *tc = tcase_create("deploy");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, unit_verifies);
    tcase_add_test(tc, prune_timer_verifies);
    tcase_add_test(tc, sandbox_rates_ok);
    tcase_add_test(tc, shipped_config_checks);
    suite_add_tcase(s, tc);
    return s;
}
