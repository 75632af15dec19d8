/* SPDX-License-Identifier: MIT */
/*
 * check_hazards.c - the box hazards of one handle's threads
 * (src/core/box_hazard.c, "hazards"): mempool_ref_take() announces the box
 * it judges as a hazard, and the handle's bit in hand->sweeping (which makes
 * claims look at its announcements) is held by a count of its threads'
 * hazards. Four threads of one handle give and take references of their own
 * objects at once: every take finds its reference, and afterwards the count
 * is 0 and the bit clear - a count that missed a decrement (an exit racing
 * an enter) would leave the bit set for good, and every claim of the pool
 * would read this worker's announcements from then on.
 *
 * INTERNAL: it reads the handle's count and hand->sweeping. Labelled
 * stress: it runs under ThreadSanitizer too.
 */
#include "helpers.h"

#include <pthread.h>
#include <stdatomic.h>

#include "internal.h"

#define NTHR 4
#define ROUNDS (T_TSAN ? 20000 : 300000)

static const mempool_put_options rco = { 0, 0, MEMPOOL_PUT_REFCOUNTED };
static _Atomic int failures;

static void *giver(void *arg)
{
    mempool_dref x;
    int rc = mempool_put_ex(t_pool, "h", 2, &rco, &x);
    (void)arg;
    for (int i = 0; i < ROUNDS && rc == 0; i++) {
        rc = mempool_ref_give(t_pool, x, -1);
        if (rc == 0)
            rc = mempool_ref_take(t_pool, x);
    }
    if (rc == 0)
        rc = mempool_unref(t_pool, x);
    if (rc)
        atomic_fetch_add(&failures, 1);
    return NULL;
}

START_TEST(test_threads)
{
    uint64_t objects0 = t_stats(t_pool).objects, hazards, sweeping;
    pthread_t t[NTHR];

    for (int i = 0; i < NTHR; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, giver, NULL), 0);
    for (int i = 0; i < NTHR; i++)
        ck_assert_int_eq(pthread_join(t[i], NULL), 0);
    ck_assert_int_eq(atomic_load(&failures), 0);
    hazards = atomic_load(&t_pool->hazards);
    sweeping = atomic_load(&t_pool->hand->sweeping);
    ck_assert_msg(hazards == 0 && sweeping == 0, "hazards %llu, sweeping "
                  "%#llx after all threads ended", (unsigned long long)hazards,
                  (unsigned long long)sweeping);
    ck_assert_uint_eq(t_stats(t_pool).objects, objects0);
    t_assert_healthy(t_pool);
}
END_TEST

int main(void)
{
    const struct t_case cases[] = {
        { "threads", 120, true, { test_threads } },
        { .name = NULL }
    };
    return t_main("hazards", cases);
}
