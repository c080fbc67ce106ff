/* vem-tests — the one Check runner for every suite.
 *
 * Suites are registered by file name (tests/check_NAME.c is unit suite NAME,
 * tests/it_NAME.c integration suite NAME; see the Makefile), each defining
 * Suite *vem_suite_NAME(void).
 *
 *   vem-tests [--group unit|integration|all] [SUITE...]
 *
 * With suite names, only those run. Exit 0 when every check passed. */
#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VEM_SUITE(name, group) Suite *vem_suite_##name(void);
#include "suites.h"
#undef VEM_SUITE

typedef struct {
    const char *name;
    const char *group;
    Suite *(*make)(void);
} s_suite_t;

#define VEM_SUITE(name, group) {#name, #group, vem_suite_##name},
static const s_suite_t s_suites[] = {
#include "suites.h"
    {NULL, NULL, NULL}};
#undef VEM_SUITE

static void s_usage(void)
{
    fprintf(stderr, "usage: vem-tests [--group unit|integration|all] [SUITE...]\nsuites:");
    for (const s_suite_t *s = s_suites; s->name; s++)
        fprintf(stderr, " %s(%s)", s->name, s->group);
    fputc('\n', stderr);
}

static bool s_wanted(const s_suite_t *s, const char *group, char **names, int n_names)
{
    if (n_names > 0) {
        for (int i = 0; i < n_names; i++)
            if (strcmp(names[i], s->name) == 0)
                return true;
        return false;
    }
    return strcmp(group, "all") == 0 || strcmp(group, s->group) == 0;
}

int main(int argc, char **argv)
{
    const char *group = "all";
    int first = 1;
    if (argc > 2 && strcmp(argv[1], "--group") == 0) {
        group = argv[2];
        first = 3;
    } else if (argc > 1 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
        s_usage();
        return 0;
    }
    char **names = argv + first;
    int n_names = argc - first;
    for (int i = 0; i < n_names; i++) {
        bool known = false;
        for (const s_suite_t *s = s_suites; s->name; s++)
            known = known || strcmp(s->name, names[i]) == 0;
        if (!known) {
            fprintf(stderr, "vem-tests: no suite named '%s'\n", names[i]);
            s_usage();
            return 2;
        }
    }
    SRunner *runner = NULL;
    for (const s_suite_t *s = s_suites; s->name; s++) {
        if (!s_wanted(s, group, names, n_names))
            continue;
        if (!runner)
            runner = srunner_create(s->make());
        else
            srunner_add_suite(runner, s->make());
    }
    if (!runner) {
        fprintf(stderr, "vem-tests: no suite selected\n");
        return 2;
    }
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
