/* SPDX-License-Identifier: MIT */
/*
 * check_rc_cache.c - a small REFCOUNTED object, freed at its last unref or
 * by a delete, goes back to its owner's allocator cache like a plain one
 * (wcache.c, mempool__cache_free), so a channel stream of refcounted
 * objects takes no allocator lock per object (issue 12).
 *
 * last unref: the entry is CACHED by the owner (next generation, the old
 * DRef -ENOENT) whoever unrefs last (once another worker's stash is
 * handed back: stats read it out, handback.c), and the owner's next set
 * takes it.
 * deleted while referenced: the holders' reference cells of that
 * generation are forgotten before the entry is recached (mempool_check
 * finds no cell naming a freed object; the holder's unref is -ENOENT and
 * leaves the next generation alone).
 * stream: a producer process sends refcounted objects through a channel,
 * the consumer gets and unrefs each: every entry lands in the producer's
 * cache; the pool checks clean and holds nothing at the end.
 * killed giver (failpoints): an unref's hand-back killed inside the
 * owner's cache lock (cache.recached) with the entry CACHED but not
 * listed: the owner's next holder repairs the list, everything accounted
 * for.
 */
#include "helpers.h"
#include "layout.h"                /* mp_entry: its word */

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static const uint8_t *arena;
static size_t arena_len;
static const mempool_put_options rco = { .flags = MEMPOOL_PUT_REFCOUNTED };

static uint64_t word_of(mempool_dref r)
{
    ck_assert_uint_le((r.off & MEMPOOL_DREF_ENTRY_BITS) + sizeof(mp_entry), arena_len);
    return atomic_load((_Atomic uint64_t *)(uintptr_t)(arena + (r.off & MEMPOOL_DREF_ENTRY_BITS)));
}

static mempool_dref put_rc(mempool *p)
{
    char buf[64];
    mempool_dref r;
    memset(buf, 5, sizeof buf);
    ck_assert_int_eq(mempool_put_ex(p, buf, sizeof buf, &rco, &r), 0);
    return r;
}

static void cached_by(mempool *p, mempool_dref r, int wid)
{
    uint64_t w;
    (void)t_stats(p);                 /* every stash handed back */
    w = word_of(r);
    ck_assert_msg(MP_W_ST(w) == MP_ST_CACHED && MP_W_WHO(w) == (unsigned)wid &&
                  MP_W_GEN(w) == (uint32_t)r.gen + 1,
                  "entry of gen %u: word %llx, not CACHED by %d",
                  (unsigned)r.gen, (unsigned long long)w, wid);
}

static void finish(mempool *p)
{
    t_assert_healthy(p);
    ck_assert_uint_eq(t_stats(p).objects, 0);
    munmap((void *)(uintptr_t)arena, arena_len);
    mempool_close(p);
    mempool_destroy(t_name);
}

static mempool *setup(void)
{
    mempool *p;
    t_pool_name(t_name, "rcache");
    ck_assert_int_eq(t_open(t_name, T_ARENA_BYTES, &p), 0);
    arena = t_map_arena(t_name, &arena_len);
    return p;
}

START_TEST(test_last_unref_recaches)
{
    struct t_remote a;
    mempool_dref r, n;
    mempool_view v;
    mempool *p = setup();
    int me;

    t_remote_start(&a, t_name);
    me = mempool_worker_id(p);
    ck_assert_int_gt(me, 0);
    r = put_rc(p);
    ck_assert_int_eq(t_remote_call(&a, T_R_REF, &r, 1), 0);
    ck_assert_int_eq(mempool_unref(p, r), 0);         /* not the last */
    ck_assert_int_eq(mempool_get(p, r, &v), 0);
    ck_assert_int_eq(mempool_release(p, &v), 0);
    ck_assert_int_eq(t_remote_call(&a, T_R_UNREF, &r, 0), 0);  /* last */
    cached_by(p, r, me);                                 /* into our cache */
    ck_assert_int_eq(mempool_get(p, r, &v), -ENOENT);
    n = put_rc(p);
    ck_assert_uint_eq(n.off, r.off);                  /* taken back */
    ck_assert_int_eq(mempool_unref(p, n), 0);
    cached_by(p, n, me);
    ck_assert_int_eq(t_remote_quit(&a), 0);
    finish(p);
}
END_TEST

START_TEST(test_deleted_while_referenced)
{
    struct t_remote a;
    mempool_dref r, n;
    mempool_view v;
    mempool *p = setup();
    int me;

    t_remote_start(&a, t_name);
    me = mempool_worker_id(p);
    r = put_rc(p);
    ck_assert_int_eq(t_remote_call(&a, T_R_REF, &r, 2), 0);
    ck_assert_int_eq(mempool_delete(p, r), 0);
    cached_by(p, r, me);
    /* No cell names the freed generation: ours and the remote's are
     * gone (check fails on a leaked cell). */
    t_assert_healthy(p);
    ck_assert_int_eq(mempool_unref(p, r), -ENOENT);
    n = put_rc(p);                                    /* the next gen */
    ck_assert_uint_eq(n.off, r.off);
    ck_assert_int_eq(t_remote_call(&a, T_R_UNREF, &r, 0), -ENOENT);
    ck_assert_int_eq(mempool_get(p, n, &v), 0);       /* untouched */
    ck_assert_int_eq(mempool_release(p, &v), 0);
    t_assert_healthy(p);
    ck_assert_int_eq(mempool_unref(p, n), 0);
    cached_by(p, n, me);
    ck_assert_int_eq(t_remote_quit(&a), 0);
    finish(p);
}
END_TEST

enum { N_STREAM = 300 };

/* Put and send N_STREAM refcounted objects, say how many and who we are,
 * then wait for the go to leave (so our cache lock is free throughout the
 * consumer's unrefs). */
static int producer(void *arg)
{
    int *fds = arg;
    mempool_chan *c;
    mempool *p;
    int32_t wid;
    char go;

    T_CHILD_EQ(t_attach(t_name, &p), 0);
    T_CHILD_EQ(mempool_chan_open(p, "rc", 512, MEMPOOL_CHAN_CREATE, &c), 0);
    for (int i = 0; i < N_STREAM; i++) {
        mempool_dref r = put_rc(p);
        T_CHILD_EQ(mempool_chan_send(c, r, T_WAIT_S * 1000), 0);
    }
    wid = mempool_worker_id(p);
    T_CHILD_EQ(t_send(fds[1], &wid, sizeof wid), 0);
    T_CHILD_EQ(t_recv(fds[0], &go, 1, T_WAIT_S), 0);
    mempool_chan_close(c);
    mempool_close(p);
    return 0;
}

START_TEST(test_stream_into_producer_cache)
{
    int up[2], down[2], fds[2];
    mempool_chan *c;
    mempool *p = setup();
    int32_t wid;
    pid_t k;

    t_pipe(up);
    t_pipe(down);
    fds[0] = down[0];
    fds[1] = up[1];
    ck_assert_int_eq(mempool_chan_open(p, "rc", 512, MEMPOOL_CHAN_CREATE, &c),
                     0);
    k = t_fork(producer, fds);
    ck_assert_int_eq(t_recv(up[0], &wid, sizeof wid, T_WAIT_S), 0);
    for (int i = 0; i < N_STREAM; i++) {
        mempool_dref r;
        mempool_view v;
        ck_assert_int_eq(mempool_chan_recv(c, &r, T_WAIT_S * 1000), 0);
        ck_assert_int_eq(mempool_get(p, r, &v), 0);
        ck_assert_uint_eq(((const uint8_t *)v.data)[63], 5);
        ck_assert_int_eq(mempool_release(p, &v), 0);
        ck_assert_int_eq(mempool_unref(p, r), 0);    /* the last */
        cached_by(p, r, wid);
    }
    t_assert_healthy(p);
    ck_assert_int_eq(t_send(down[1], "g", 1), 0);
    ck_assert_int_eq(t_wait(k, T_WAIT_S), 0);
    ck_assert_int_eq(mempool_chan_close(c), 0);
    ck_assert_int_eq(mempool_chan_destroy(p, "rc"), 0);
    for (int i = 0; i < 2; i++) {
        close(up[i]);
        close(down[i]);
    }
    finish(p);
}
END_TEST

#ifdef T_FAILPOINTS
struct killed_arg {
    mempool_dref r;
    int out, in;                       /* to / from the parent */
};

/* Take a reference, let the parent drop the owner's, then unref the last
 * one with cache.recached=kill@1 armed: killed inside the owner's cache
 * lock, the entry CACHED but not listed. */
static int killed_last_unref(void *arg)
{
    struct killed_arg *k = arg;
    mempool *p;
    char go;
    setenv("MEMPOOL_FAILPOINT", "cache.recached=kill@1", 1);
    T_CHILD_EQ(t_attach(t_name, &p), 0);
    T_CHILD_EQ(mempool_ref(p, k->r), 0);
    T_CHILD_EQ(t_send(k->out, "r", 1), 0);
    T_CHILD_EQ(t_recv(k->in, &go, 1, T_WAIT_S), 0);
    (void)mempool_unref(p, k->r);
    (void)mempool_stats_get(p, &(struct mempool_stats){ .size = sizeof(
                                   struct mempool_stats) });
    return 3;                          /* not killed: the test fails */
}

START_TEST(test_unref_killed_in_owner_lock)
{
    struct t_remote a;
    struct killed_arg ka;
    mempool_dref keep[8], n;
    int up[2], down[2];
    mempool *p = setup();
    pid_t k;
    char ok;

    t_remote_start(&a, t_name);
    for (int i = 0; i < 8; i++)
        ck_assert_int_eq(t_remote_call(&a, T_R_SET_RC, &keep[i], 64), 0);
    ck_assert_int_eq(t_remote_call(&a, T_R_SET_RC, &ka.r, 64), 0);
    t_pipe(up);
    t_pipe(down);
    ka.out = up[1];
    ka.in = down[0];
    k = t_fork(killed_last_unref, &ka);
    ck_assert_int_eq(t_recv(up[0], &ok, 1, T_WAIT_S), 0);
    ck_assert_int_eq(t_remote_call(&a, T_R_UNREF, &ka.r, 0), 0);
    ck_assert_int_eq(t_send(down[1], "g", 1), 0);
    ck_assert_int_eq(t_wait(k, T_WAIT_S), 128 + SIGKILL);
    ck_assert_int_eq(mempool_reap(p), 1);
    ck_assert_int_eq(mempool_get(p, ka.r, &(mempool_view){ 0 }), -ENOENT);
    /* The owner's next sets take its lock from the dead giver: repaired
     * (the lost entry listed again). */
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(t_remote_call(&a, T_R_SET_RC, &n, 64), 0);
        ck_assert_int_eq(t_remote_call(&a, T_R_UNREF, &n, 0), 0);
    }
    t_assert_healthy(p);
    for (int i = 0; i < 8; i++)
        ck_assert_int_eq(t_remote_call(&a, T_R_UNREF, &keep[i], 0), 0);
    ck_assert_int_eq(t_remote_quit(&a), 0);
    for (int i = 0; i < 2; i++) {
        close(up[i]);
        close(down[i]);
    }
    finish(p);
}
END_TEST
#endif

int main(void)
{
    const struct t_case cases[] = {
        { "rc_cache", 120, false, {
              test_last_unref_recaches, test_deleted_while_referenced,
              test_stream_into_producer_cache,
#ifdef T_FAILPOINTS
              test_unref_killed_in_owner_lock,
#endif
          } },
        { .name = NULL }
    };
    return t_main("rc_cache", cases);
}
