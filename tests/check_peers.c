/* check_peers — connections per source address (daemon/peers.c): the open count and the
 * arrivals per second of each address, each against its limit, and what the sweep forgets.
 * Expected values are counted by hand from the calls each test makes. */
#include "peers.h"

#include <check.h>
#include <stdio.h>

#define S_SEC 1000000LL /* microseconds */

START_TEST(open_limit_per_address)
{
    vem_peers_t *p = vem_peers_new(3, 1000);
    ck_assert_ptr_nonnull(p);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(vem_peers_admit(p, "10.0.0.1", 5 * S_SEC), VEM_PEERS_OK);
    ck_assert_int_eq(vem_peers_admit(p, "10.0.0.1", 5 * S_SEC), VEM_PEERS_TOO_MANY);
    /* another address has its own count */
    ck_assert_int_eq(vem_peers_admit(p, "10.0.0.2", 5 * S_SEC), VEM_PEERS_OK);
    ck_assert_uint_eq(vem_peers_open(p, "10.0.0.1"), 3);
    ck_assert_uint_eq(vem_peers_open(p, "10.0.0.2"), 1);
    /* one ends: room for one more, not two */
    vem_peers_release(p, "10.0.0.1");
    ck_assert_int_eq(vem_peers_admit(p, "10.0.0.1", 6 * S_SEC), VEM_PEERS_OK);
    ck_assert_int_eq(vem_peers_admit(p, "10.0.0.1", 6 * S_SEC), VEM_PEERS_TOO_MANY);
    ck_assert_str_eq(vem_peers_verdict_name(VEM_PEERS_TOO_MANY), "address_limit");
    vem_peers_destroy(&p);
    ck_assert_ptr_null(p);
    vem_peers_destroy(&p);
}
END_TEST

START_TEST(new_connections_per_second)
{
    vem_peers_t *p = vem_peers_new(100, 2);
    /* second 7: two arrivals pass, the third and fourth are refused (and still count) */
    ck_assert_int_eq(vem_peers_admit(p, "10.0.0.1", 7 * S_SEC), VEM_PEERS_OK);
    ck_assert_int_eq(vem_peers_admit(p, "10.0.0.1", 7 * S_SEC + 10), VEM_PEERS_OK);
    ck_assert_int_eq(vem_peers_admit(p, "10.0.0.1", 7 * S_SEC + 999999), VEM_PEERS_TOO_FAST);
    ck_assert_int_eq(vem_peers_admit(p, "10.0.0.1", 7 * S_SEC + 999999), VEM_PEERS_TOO_FAST);
    ck_assert_uint_eq(vem_peers_open(p, "10.0.0.1"), 2);
    /* a new second, a new allowance */
    ck_assert_int_eq(vem_peers_admit(p, "10.0.0.1", 8 * S_SEC), VEM_PEERS_OK);
    ck_assert_str_eq(vem_peers_verdict_name(VEM_PEERS_TOO_FAST), "address_rate");
    vem_peers_destroy(&p);
}
END_TEST

START_TEST(sweep_forgets_idle_addresses)
{
    vem_peers_t *p = vem_peers_new(10, 10);
    char addr[32];
    for (int i = 0; i < 1000; i++) { /* 1000 addresses: the table grows */
        snprintf(addr, sizeof addr, "192.168.%d.%d", i / 256, i % 256);
        ck_assert_int_eq(vem_peers_admit(p, addr, 20 * S_SEC), VEM_PEERS_OK);
        if (i % 2)
            vem_peers_release(p, addr);
    }
    ck_assert_uint_eq(vem_peers_count(p), 1000);
    vem_peers_sweep(p, 20 * S_SEC); /* same second: arrivals still count, all kept */
    ck_assert_uint_eq(vem_peers_count(p), 1000);
    vem_peers_sweep(p, 21 * S_SEC); /* the 500 released ones go */
    ck_assert_uint_eq(vem_peers_count(p), 500);
    ck_assert_uint_eq(vem_peers_open(p, "192.168.0.0"), 1);
    ck_assert_uint_eq(vem_peers_open(p, "192.168.0.1"), 0);
    ck_assert_uint_eq(vem_peers_open(p, "192.168.3.230"), 1); /* i = 998 */
    /* what was kept keeps its count */
    for (int k = 1; k < 10; k++)
        ck_assert_int_eq(vem_peers_admit(p, "192.168.0.0", 22 * S_SEC + k), VEM_PEERS_OK);
    ck_assert_int_eq(vem_peers_admit(p, "192.168.0.0", 22 * S_SEC), VEM_PEERS_TOO_MANY);
    ck_assert_int_eq(vem_peers_admit(p, "192.168.0.0", 22 * S_SEC), VEM_PEERS_TOO_FAST);
    for (int i = 0; i < 1000; i += 2) {
        snprintf(addr, sizeof addr, "192.168.%d.%d", i / 256, i % 256);
        vem_peers_release(p, addr);
    }
    vem_peers_sweep(p, 30 * S_SEC);
    ck_assert_uint_eq(vem_peers_count(p), 1); /* 192.168.0.0 still has 9 open */
    vem_peers_destroy(&p);
}
END_TEST

/* Activations judged per address and second: per_s of them, then none until the next second;
 * another address has its own; an address holding no connection gets none. */
START_TEST(activations_per_address)
{
    vem_peers_t *p = vem_peers_new(10, 10);
    ck_assert_ptr_nonnull(p);
    int64_t t = 5000000; /* second 5 */
    ck_assert_int_eq(vem_peers_admit(p, "10.0.0.1", t), VEM_PEERS_OK);
    ck_assert_int_eq(vem_peers_admit(p, "10.0.0.2", t), VEM_PEERS_OK);
    ck_assert(vem_peers_take(p, "10.0.0.1", 2, t));
    ck_assert(vem_peers_take(p, "10.0.0.1", 2, t + 1));
    ck_assert(!vem_peers_take(p, "10.0.0.1", 2, t + 999999)); /* still second 5 */
    ck_assert(vem_peers_take(p, "10.0.0.2", 2, t + 999999));  /* its own two */
    ck_assert(vem_peers_take(p, "10.0.0.1", 2, t + 1000000)); /* second 6 */
    ck_assert(!vem_peers_take(p, "10.0.0.3", 2, t));          /* no connection of its own */
    vem_peers_destroy(&p);
}
END_TEST

Suite *vem_suite_peers(void);
Suite *vem_suite_peers(void)
{
    Suite *s = suite_create("peers");
    TCase *tc = tcase_create("limits");
    tcase_add_test(tc, open_limit_per_address);
    tcase_add_test(tc, new_connections_per_second);
    tcase_add_test(tc, sweep_forgets_idle_addresses);
    tcase_add_test(tc, activations_per_address);
    suite_add_tcase(s, tc);
    return s;
}
