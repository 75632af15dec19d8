/* SPDX-License-Identifier: MIT */
/*
 * check_owed_claim.c - a worker slot claimed while its last holder's
 * charges are owed (issue 11 accounting, found in session 6).
 *
 * A worker that closes while the allocator lock's holder is stopped
 * (SIGSTOP at failpoint alloc.locked) cannot give its charges up to the
 * pool (mempool__disown): they stay on its slot, owed, and the lock's
 * next holder gives them up (mempool__settle_left) - but only of slots
 * nobody holds. A new worker that claimed that slot in the stall took the
 * charges with it: they counted against its max_memsize, in its stats row,
 * until it left in turn. Here a worker opens in the stall, after such a
 * close: it must start with nothing charged, and once the holder goes on,
 * neither its slot nor the closed worker's may hold the closed worker's
 * objects (they are the pool's).
 *
 * Stops the holder for one bound. INTERNAL: it reads slots' charges
 * (layout.h). Needs a -DMEMPOOL_FAILPOINTS=ON build.
 */
#include "helpers.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>

#include "internal.h"

#define BIG (64u * 1024u)              /* a page run: the allocator lock */
#define NCLOSED 4

static mempool_dref objs[NCLOSED];
static int rep_fd = -1;

/* Child: open (a claim), our worker id over rep_fd, then stay open until
 * a byte on fd arg, and close. */
static int claimer(void *arg)
{
    int go = (int)(intptr_t)arg;
    mempool *p;
    T_CHILD_EQ(t_attach(t_name, &p), 0);
    T_CHILD_EQ(t_send_u64(rep_fd, (uint64_t)mempool_worker_id(p)), 0);
    T_CHILD_EQ(t_wait_fd(go, T_WAIT_S), 0);
    T_CHILD_EQ(mempool_close(p), 0);
    return 0;
}

/* Objects and resident bytes charged to worker @p wid (its slot's part
 * and its cache's). */
static uint64_t charged(uint64_t wid, uint64_t *resident)
{
    int s = (int)wid - 1;
    *resident = atomic_load(&t_pool->slots[s].resident_bytes) +
                atomic_load(&t_pool->wcs[s].resident);
    return atomic_load(&t_pool->slots[s].objects) +
           atomic_load(&t_pool->wcs[s].objects);
}

static void assert_clean(uint64_t wid, const char *who)
{
    uint64_t res, n = charged(wid, &res);
    ck_assert_msg(n == 0 && res == 0, "%s (worker %d) charged %llu objects, "
                  "%llu bytes it never set", who, (int)wid,
                  (unsigned long long)n, (unsigned long long)res);
}

/* Start the closer; its objects' DRefs into objs[], its id in *wid. */
static pid_t start_closer(int fds[2], int go[2], uint64_t *wid)
{
    pid_t c;
    t_pipe(fds);
    t_pipe(go);
    rep_fd = fds[1];
    c = t_fork(t_closer, &(struct t_closer){ NCLOSED, BIG, fds[1], go[0] });
    close(go[0]);
    for (int i = 0; i < NCLOSED; i++)
        ASSERT_RC(t_recv_dref(fds[0], &objs[i], T_WAIT_S), 0);
    ASSERT_RC(t_recv_u64(fds[0], wid, T_WAIT_S), 0);
    return c;
}

START_TEST(test_claim_in_stall)
{
    uint64_t objects0 = t_stats(t_pool).objects, a, b, v, res;
    uint64_t used0 = t_stats(t_pool).used_bytes, objects1, used1;
    int fds[2], go[2], bgo[2];
    pid_t h, c, n;

    c = start_closer(fds, go, &a);
    ck_assert_uint_eq(charged(a, &res), NCLOSED);
    objects1 = t_stats(t_pool).objects;
    used1 = t_stats(t_pool).used_bytes;
    h = t_fork(t_alloc_holder, NULL);
    t_await_stopped(h, "alloc.locked");
    ASSERT_RC(t_send_u64(go[1], 1), 0);             /* close in the stall */
    ASSERT_RC(t_recv_u64(fds[0], &v, T_WAIT_S), 0);
    ck_assert_int_eq((int64_t)v, 0);
    t_wait_ok(c);
    ck_assert_uint_eq(charged(a, &res), NCLOSED);  /* left, owed */
    t_pipe(bgo);
    n = t_fork(claimer, (void *)(intptr_t)bgo[0]);  /* opens in the stall */
    close(bgo[0]);
    ASSERT_RC(t_recv_u64(fds[0], &b, T_WAIT_S), 0);
    assert_clean(b, "a worker that opened in the stall");
    ASSERT_RC(kill(h, SIGCONT), 0);
    t_wait_ok(h);
    t_assert_settled(t_pool, objects1, used1);     /* our free pays */
    assert_clean(b, "the new worker, once the holder went on");
    if (a != b)
        assert_clean(a, "the closed worker's slot");
    ASSERT_RC(t_send_u64(bgo[1], 1), 0);
    t_wait_ok(n);
    close(fds[0]);
    close(go[1]);
    close(bgo[1]);
    for (int i = 0; i < NCLOSED; i++)
        ASSERT_RC(mempool_delete(t_pool, objs[i]), 0);   /* the pool's */
    t_assert_settled(t_pool, objects0, used0);
}
END_TEST

int main(void)
{
    const struct t_case cases[] = {
        { "owed_claim", 120, true, { test_claim_in_stall } },
        { .name = NULL }
    };
    return t_main("owed_claim", cases);
}
