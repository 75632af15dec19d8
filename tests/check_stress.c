/* SPDX-License-Identifier: MIT */
/*
 * check_stress.c - threads hammering the object table and the allocator.
 *
 * Four threads run a random mix of set, reserve/publish/abort, get + verify
 * + release, delete, and ref/get/unref of refcounted objects over shared
 * slot arrays, first all on one handle, then on two handles of the same pool
 * in one process (threads standing in for processes, so ThreadSanitizer can
 * see the races; docs/scenarios.md S21, S25, S26, S28). Invariants checked
 * on the way: a get either fails with -ENOENT or returns bytes that verify
 * and do not change until release; each DRef is deleted exactly once and that
 * delete succeeds; a referenced object can always be pinned. At the end the
 * pool is empty, used_bytes is back to 0 and mempool_check() is clean.
 *
 * This binary is what the TSan lane runs (label "stress"). T_STRESS_OPS sets
 * the operations per thread (default 20000).
 */
#include "helpers.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* ThreadSanitizer cannot relate two mappings of the same memory: a
 * happens-before edge made through one handle's mapping (a CAS, the
 * allocator mutex) is invisible for accesses through the other's, so the
 * two-handle case reports races that are not there. It runs in the other
 * lanes; under TSan (T_TSAN, helpers_base.h) only when
 * T_STRESS_TSAN_TWO_HANDLES=1. */

#define NTHREADS 4
#define SLOTS 64
#define RC_SLOTS 32

struct slot {
    pthread_mutex_t mu;
    mempool_dref r;
    int holder; /* rc slots: handle index holding the slot's reference */
    bool full;
};

static struct slot slots[SLOTS], rc_slots[RC_SLOTS];
static mempool *handles[2];
static atomic_long failures, enomem, enoent_gets, good_gets;
static pthread_mutex_t fail_mu = PTHREAD_MUTEX_INITIALIZER;
static char first_failure[512];
static long ops_per_thread = 20000;

#define FAIL(...) \
    do { \
        if (atomic_fetch_add(&failures, 1) == 0) { \
            pthread_mutex_lock(&fail_mu); \
            snprintf(first_failure, sizeof first_failure, __VA_ARGS__); \
            pthread_mutex_unlock(&fail_mu); \
        } \
        return; \
    } while (0)

#define EXPECT(cond, ...) \
    do { \
        if (!(cond)) \
            FAIL(__VA_ARGS__); \
    } while (0)

struct worker {
    int idx, hidx;
    uint64_t seed;
    char *buf;
};

/* Content: len < 16 -> t_fill(len); else {seed, len} then t_fill(seed). */
static void fill(char *buf, size_t len, uint64_t seed)
{
    uint64_t l = len;

    if (len < 16) {
        t_fill(buf, len, len);
        return;
    }
    memcpy(buf, &seed, 8);
    memcpy(buf + 8, &l, 8);
    t_fill(buf + 16, len - 16, seed);
}

static bool valid(const void *data, size_t len)
{
    const char *b = data;
    uint64_t seed, l;

    if (len < 16)
        return t_check_fill(b, len, len);
    memcpy(&seed, b, 8);
    memcpy(&l, b + 8, 8);
    return l == len && t_check_fill(b + 16, len - 16, seed);
}

static size_t pick_len(uint64_t *s)
{
    unsigned x = (unsigned)(t_rand(s) % 100);

    if (x < 5)
        return 0;
    if (x < 70)
        return (size_t)(t_rand(s) % 257);
    if (x < 95)
        return (size_t)(t_rand(s) % 4097);
    return (size_t)(t_rand(s) % 65537);
}

/* Put @p r into a random slot; delete what it replaces. */
static void store(struct worker *w, mempool *p, mempool_dref r)
{
    struct slot *sl = &slots[t_rand(&w->seed) % SLOTS];
    mempool_dref old;
    bool had;
    int rc;

    pthread_mutex_lock(&sl->mu);
    old = sl->r;
    had = sl->full;
    sl->r = r;
    sl->full = true;
    pthread_mutex_unlock(&sl->mu);
    if (had) {
        rc = mempool_delete(p, old);
        EXPECT(rc == 0, "delete of a replaced object = %d", rc);
    }
}

static void op_set(struct worker *w, mempool *p)
{
    size_t len = pick_len(&w->seed);
    mempool_dref r;
    int rc;

    fill(w->buf, len, t_rand(&w->seed));
    rc = mempool_put(p, w->buf, len, &r);
    if (rc == -ENOMEM) {
        atomic_fetch_add(&enomem, 1);
        return;
    }
    EXPECT(rc == 0, "set(%zu) = %d", len, rc);
    store(w, p, r);
}

static void op_reserve(struct worker *w, mempool *p)
{
    size_t len = pick_len(&w->seed) + 1;
    mempool_dref r;
    void *dst = NULL;
    int rc = mempool_reserve(p, len, NULL, &dst, &r);

    if (rc == -ENOMEM) {
        atomic_fetch_add(&enomem, 1);
        return;
    }
    EXPECT(rc == 0, "reserve(%zu) = %d", len, rc);
    EXPECT(((uintptr_t)dst & 63) == 0, "reserve: buffer not 64-aligned");
    fill(dst, len, t_rand(&w->seed));
    if (t_rand(&w->seed) % 4 == 0) {
        rc = mempool_abort(p, r);
        EXPECT(rc == 0, "abort = %d", rc);
        return;
    }
    rc = mempool_publish(p, r);
    EXPECT(rc == 0, "publish = %d", rc);
    store(w, p, r);
}

static void op_get(struct worker *w, mempool *p)
{
    struct slot *sl = &slots[t_rand(&w->seed) % SLOTS];
    mempool_dref r;
    mempool_view v;
    bool full;
    uint64_t sum;
    int rc;

    pthread_mutex_lock(&sl->mu);
    r = sl->r;
    full = sl->full;
    pthread_mutex_unlock(&sl->mu);
    if (!full)
        return;
    rc = mempool_get(p, r, &v);
    if (rc == -ENOENT) {
        atomic_fetch_add(&enoent_gets, 1);
        return;
    }
    EXPECT(rc == 0, "get = %d", rc);
    atomic_fetch_add(&good_gets, 1);
    EXPECT(v.data != NULL, "get: NULL data");
    EXPECT(valid(v.data, v.len), "get: %" PRIu64 " bytes do not verify",
           v.len);
    sum = t_fnv1a(v.data, v.len);
    if (t_rand(&w->seed) % 8 == 0)
        sched_yield();
    EXPECT(t_fnv1a(v.data, v.len) == sum, "pinned bytes changed");
    rc = mempool_release(p, &v);
    EXPECT(rc == 0, "release = %d", rc);
}

static void op_delete(struct worker *w, mempool *p)
{
    struct slot *sl = &slots[t_rand(&w->seed) % SLOTS];
    mempool_dref r;
    bool full;
    int rc;

    pthread_mutex_lock(&sl->mu);
    r = sl->r;
    full = sl->full;
    sl->full = false;
    pthread_mutex_unlock(&sl->mu);
    if (!full)
        return;
    rc = mempool_delete(p, r);
    EXPECT(rc == 0, "delete = %d", rc);
}

static void op_rc_use(struct worker *w, mempool *p)
{
    struct slot *sl = &rc_slots[t_rand(&w->seed) % RC_SLOTS];
    mempool_dref r;
    mempool_view v;
    int rc;

    pthread_mutex_lock(&sl->mu);
    if (!sl->full) {
        pthread_mutex_unlock(&sl->mu);
        return;
    }
    r = sl->r;
    rc = mempool_ref(p, r); /* alive: the slot holds a reference */
    pthread_mutex_unlock(&sl->mu);
    EXPECT(rc == 0, "ref of a held object = %d", rc);
    rc = mempool_get(p, r, &v);
    EXPECT(rc == 0, "get of a referenced object = %d", rc);
    EXPECT(valid(v.data, v.len), "refcounted bytes do not verify");
    rc = mempool_release(p, &v);
    EXPECT(rc == 0, "release = %d", rc);
    rc = mempool_unref(p, r);
    EXPECT(rc == 0, "unref of own reference = %d", rc);
}

static void op_rc_replace(struct worker *w, mempool *p)
{
    struct slot *sl = &rc_slots[t_rand(&w->seed) % RC_SLOTS];
    mempool_put_options o = { 0, 0, MEMPOOL_PUT_REFCOUNTED };
    size_t len = pick_len(&w->seed);
    mempool_dref r, old;
    int rc, holder;
    bool had;

    fill(w->buf, len, t_rand(&w->seed));
    rc = mempool_put_ex(p, w->buf, len, &o, &r);
    if (rc == -ENOMEM) {
        atomic_fetch_add(&enomem, 1);
        return;
    }
    EXPECT(rc == 0, "set refcounted = %d", rc);
    pthread_mutex_lock(&sl->mu);
    old = sl->r;
    had = sl->full;
    holder = sl->holder;
    sl->r = r;
    sl->holder = w->hidx;
    sl->full = true;
    pthread_mutex_unlock(&sl->mu);
    if (had) {
        rc = mempool_unref(handles[holder], old);
        EXPECT(rc == 0, "unref of the slot's reference = %d", rc);
    }
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    mempool *p = handles[w->hidx];
    long i;

    for (i = 0; i < ops_per_thread && atomic_load(&failures) == 0; i++) {
        unsigned x = (unsigned)(t_rand(&w->seed) % 100);

        if (x < 20)
            op_set(w, p);
        else if (x < 25)
            op_reserve(w, p);
        else if (x < 60)
            op_get(w, p);
        else if (x < 70)
            op_delete(w, p);
        else if (x < 90)
            op_rc_use(w, p);
        else
            op_rc_replace(w, p);
    }
    return NULL;
}

static void run_stress(mempool *h0, mempool *h1)
{
    pthread_t th[NTHREADS];
    struct worker w[NTHREADS];
    struct mempool_stats s0 = t_stats(h0), s;
    const char *env = getenv("T_STRESS_OPS");
    int i, rc;

    if (env && atoi(env) > 0)
        ops_per_thread = atol(env);
    handles[0] = h0;
    handles[1] = h1;
    for (i = 0; i < SLOTS; i++) {
        pthread_mutex_init(&slots[i].mu, NULL);
        slots[i].full = false;
    }
    for (i = 0; i < RC_SLOTS; i++) {
        pthread_mutex_init(&rc_slots[i].mu, NULL);
        rc_slots[i].full = false;
    }
    for (i = 0; i < NTHREADS; i++) {
        w[i].idx = i;
        w[i].hidx = i < NTHREADS / 2 ? 0 : 1;
        w[i].seed = 0x1234567ull * (uint64_t)(i + 1);
        w[i].buf = malloc(65536 + 16);
        ck_assert_ptr_nonnull(w[i].buf);
        ck_assert_int_eq(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
    }
    for (i = 0; i < NTHREADS; i++) {
        pthread_join(th[i], NULL);
        free(w[i].buf);
    }
    ck_assert_msg(atomic_load(&failures) == 0, "%ld failures; first: %s",
                  atomic_load(&failures), first_failure);
    ck_assert_int_gt(atomic_load(&good_gets), 0);
    t_assert_healthy(h0);
    /* drain: every stored object goes exactly once */
    for (i = 0; i < SLOTS; i++)
        if (slots[i].full) {
            rc = mempool_info_get(h0, slots[i].r, &(mempool_info){ 0 });
            ck_assert_int_eq(rc, 0);
            ck_assert_int_eq(t_pins(h0, slots[i].r), 0);
            ck_assert_int_eq(mempool_delete(h1, slots[i].r), 0);
        }
    for (i = 0; i < RC_SLOTS; i++)
        if (rc_slots[i].full) {
            ck_assert_int_eq(t_refs(h0, rc_slots[i].r), 1);
            rc = mempool_unref(handles[rc_slots[i].holder], rc_slots[i].r);
            ck_assert_int_eq(rc, 0);
            ck_assert_int_eq(t_refs(h0, rc_slots[i].r), -1);
        }
    s = t_stats(h0);
    ck_assert_uint_eq(s.objects, s0.objects);
    ck_assert_uint_eq(s.used_bytes, s0.used_bytes);
    t_assert_healthy(h0);
    fprintf(stderr, "stress: %ld good gets, %ld -ENOENT gets, %ld -ENOMEM\n",
            atomic_load(&good_gets), atomic_load(&enoent_gets),
            atomic_load(&enomem));
}

START_TEST(test_threads_one_handle)
{
    run_stress(t_pool, t_pool);
}
END_TEST

START_TEST(test_threads_two_handles)
{
    mempool *q = NULL;
    const char *force = getenv("T_STRESS_TSAN_TWO_HANDLES");

    if (T_TSAN && !(force && *force == '1')) {
        fprintf(stderr, "note: two-handle stress not run under TSan (two "
                        "mappings of one arena hide happens-before edges)\n");
        return;
    }
    ck_assert_int_eq(t_attach(t_name, &q), 0);
    ck_assert_int_ne(mempool_worker_id(q), mempool_worker_id(t_pool));
    run_stress(t_pool, q);
    ck_assert_int_eq(mempool_close(q), 0);
    ck_assert_uint_eq(t_stats(t_pool).workers, 1);
    t_assert_healthy(t_pool);
}
END_TEST

/* Pins taken on one thread are released on others (one handle). */
static mempool_view cross_views[400];

static void *release_half(void *arg)
{
    long k = (long)arg, i;

    for (i = k; i < 400; i += 2)
        if (mempool_release(t_pool, &cross_views[i]) != 0)
            atomic_fetch_add(&failures, 1);
    return NULL;
}

START_TEST(test_release_on_other_thread)
{
    mempool_dref r;
    pthread_t a, b;
    int i;

    ck_assert_int_eq(mempool_put(t_pool, "shared pin", 10, &r), 0);
    for (i = 0; i < 400; i++)
        ck_assert_int_eq(mempool_get(t_pool, r, &cross_views[i]), 0);
    ck_assert_int_eq(t_pins(t_pool, r), 400);
    ck_assert_int_eq(pthread_create(&a, NULL, release_half, (void *)0L), 0);
    ck_assert_int_eq(pthread_create(&b, NULL, release_half, (void *)1L), 0);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    ck_assert_int_eq(atomic_load(&failures), 0);
    ck_assert_int_eq(t_pins(t_pool, r), 0);
    ck_assert_int_eq(mempool_delete(t_pool, r), 0);
    ck_assert_uint_eq(t_stats(t_pool).used_bytes, 0);
    t_assert_healthy(t_pool);
}
END_TEST

int main(void)
{
    const struct t_case cases[] = {
        { "threads", 300, true, {
              test_threads_one_handle, test_threads_two_handles,
              test_release_on_other_thread } },
        { .name = NULL }
    };
    return t_main("stress", cases);
}
