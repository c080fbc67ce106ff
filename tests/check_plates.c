/* check_plates — the table of rule states by plate and colour: its bound, and the sweep that
 * removes the plates whose state goes (the table stays findable after the rebuild). */
#include "plates.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>

static int s_freed;

static void s_free(void *state)
{
    s_freed++;
    free(state);
}

static void *s_int(int v)
{
    int *p = malloc(sizeof *p);
    ck_assert_ptr_nonnull(p);
    *p = v;
    return p;
}

/* gone: the states holding an odd number */
static bool s_odd(void *arg, void *state)
{
    (*(int *)arg)++;
    return *(int *)state % 2 == 1;
}

START_TEST(bound_and_colour)
{
    vem_plates_t *t = vem_plates_new(3, s_free);
    void **a = vem_plates_slot(t, "京A12345", "yellow", true);
    void **b = vem_plates_slot(t, "京A12345", "blue", true); /* another vehicle */
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    ck_assert_ptr_ne(a, b);
    ck_assert_ptr_nonnull(vem_plates_slot(t, "京B00001", NULL, true));
    ck_assert_ptr_null(vem_plates_slot(t, "京B00002", NULL, true)); /* past max 3 */
    ck_assert_ptr_null(vem_plates_slot(t, "京B00003", NULL, false));
    ck_assert_uint_eq(vem_plates_count(t), 3);
    vem_plates_destroy(&t);
    ck_assert_ptr_null(t);
}
END_TEST

START_TEST(sweep_removes_and_keeps_finding)
{
    s_freed = 0;
    vem_plates_t *t = vem_plates_new(1000, s_free);
    char plate[16];
    for (int i = 0; i < 500; i++) {
        snprintf(plate, sizeof plate, "P%05d", i);
        void **slot = vem_plates_slot(t, plate, i % 3 ? "yellow" : "", true);
        ck_assert_ptr_nonnull(slot);
        if (i % 10 != 9) /* every tenth plate keeps an empty slot */
            *slot = s_int(i);
    }
    ck_assert_uint_eq(vem_plates_count(t), 500);
    int asked = 0;
    /* 50 empty (i = 9, 19, ...: all odd) go unasked; of the 450 with state, the 200 odd ones go */
    ck_assert_uint_eq(vem_plates_sweep(t, s_odd, &asked), 250);
    ck_assert_int_eq(asked, 450);
    ck_assert_int_eq(s_freed, 200);
    ck_assert_uint_eq(vem_plates_count(t), 250);
    for (int i = 0; i < 500; i++) {
        snprintf(plate, sizeof plate, "P%05d", i);
        void **slot = vem_plates_slot(t, plate, i % 3 ? "yellow" : "", false);
        if (i % 2 == 1) {
            ck_assert_ptr_null(slot);
            continue;
        }
        ck_assert_ptr_nonnull(slot);
        ck_assert_int_eq(*(int *)*slot, i);
        /* the same plate in another colour was never there */
        ck_assert_ptr_null(vem_plates_slot(t, plate, i % 3 ? "" : "yellow", false));
    }
    /* nothing to remove: nothing moves */
    void **kept = vem_plates_slot(t, "P00000", "", false);
    asked = 0;
    ck_assert_uint_eq(vem_plates_sweep(t, s_odd, &asked), 0);
    ck_assert_ptr_eq(vem_plates_slot(t, "P00000", "", false), kept);
    /* room again below the bound, down to none */
    for (int i = 0; i < 750; i++) {
        snprintf(plate, sizeof plate, "Q%05d", i);
        ck_assert_ptr_nonnull(vem_plates_slot(t, plate, NULL, true));
    }
    ck_assert_ptr_null(vem_plates_slot(t, "Q99999", NULL, true));
    vem_plates_destroy(&t);
    ck_assert_int_eq(s_freed, 450); /* the 250 kept states freed with the table */
}
END_TEST

Suite *vem_suite_plates(void);
Suite *vem_suite_plates(void)
{
    Suite *s = suite_create("plates");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, bound_and_colour);
    tcase_add_test(tc, sweep_removes_and_keeps_finding);
    suite_add_tcase(s, tc);
    return s;
}
