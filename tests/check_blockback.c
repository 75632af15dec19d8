/* SPDX-License-Identifier: MIT */
/*
 * check_blockback.c - a large block's pages are backed by its owner after
 * the allocator lock is released (src/core/blockback.c, issue 11 target 3),
 * and the record that they may still be holes (the pages' punched flags)
 * survives every crash (all cases need failpoints):
 *
 *   unlocked   a writer stopped while backing the huge pages of its new
 *              8 MiB block (back.chunk=stop) holds no lock: another
 *              process sets, gets and deletes small and large objects
 *              meanwhile; resumed, the writer's object reads back intact
 *   killed     a writer killed after its reservation, before backing
 *              (back.block=kill): once reaped, the pages are still known
 *              to be holes - a put into them with backing refused is
 *              -ENOSPC (not a write into unbacked memory), a plain put
 *              succeeds, and the pool checks clean
 *   rebuilt    the same after a kill holding the allocator lock with the
 *              run taken (alloc.locked=kill): the rebuild that follows
 *              keeps the allocated pages' flags
 */
#include "helpers.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>

#define MiB (1ull << 20)
#define BIG (8 * MiB)

#ifdef T_FAILPOINTS
struct writer {
    const char *name, *spec;
    uint64_t seed;
};

static int open_pool(const char *name, bool create, mempool **p)
{
    mempool_options o;
    t_options(&o, 64 * MiB);
    o.flags = create ? MEMPOOL_OPEN_CREATE | MEMPOOL_OPEN_EXCL : 0;
    o.huge = MEMPOOL_HUGE_AUTO;
    return mempool_open(name, &o, p);
}

/* Put a BIG object under failpoint spec; verify it if the put returns. */
static int writer_child(void *arg)
{
    const struct writer *w = arg;
    mempool *p;
    mempool_dref r;
    mempool_view v;
    void *buf = malloc(BIG);
    T_CHILD_ASSERT(buf != NULL);
    t_fill(buf, BIG, w->seed);
    setenv("MEMPOOL_FAILPOINT", w->spec, 1);
    T_CHILD_EQ(open_pool(w->name, false, &p), 0);
    T_CHILD_EQ(mempool_put(p, buf, BIG, &r), 0);
    T_CHILD_EQ(mempool_get(p, r, &v), 0);
    T_CHILD_ASSERT(t_check_fill(v.data, BIG, w->seed));
    T_CHILD_EQ(mempool_release(p, &v), 0);
    T_CHILD_EQ(mempool_delete(p, r), 0);
    T_CHILD_EQ(mempool_check(p, NULL, 0), 0);
    T_CHILD_EQ(mempool_close(p), 0);
    free(buf);
    return 0;
}

/* Wait until @p pid stops (SIGSTOP at its failpoint). */
static void wait_stopped(pid_t pid)
{
    for (int i = 0; i < 60000; i++) {
        int st;
        pid_t got = waitpid(pid, &st, WUNTRACED | WNOHANG);
        ck_assert_int_ne(got, -1);
        if (got == pid) {
            ck_assert_msg(WIFSTOPPED(st), "writer ended (%#x), not stopped",
                          st);
            return;
        }
        nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
    }
    ck_abort_msg("writer did not reach its failpoint");
}

static void put_verify_delete(mempool *p, size_t len, uint64_t seed)
{
    mempool_dref r = t_put_fill(p, len, seed);
    t_expect_fill(p, r, len, seed);
    ASSERT_RC(mempool_delete(p, r), 0);
}

START_TEST(test_unlocked)
{
    char name[T_NAME_LEN];
    struct writer w = { name, "back.chunk=stop@1", 11 };
    mempool *p;
    t_pool_name(name, "blockback");
    ASSERT_RC(open_pool(name, true, &p), 0);
    pid_t pid = t_fork(writer_child, &w);
    wait_stopped(pid);
    /* The writer is stopped outside the lock: all of this proceeds (a hang
     * here is the failure). Our objects take other pages than its block. */
    put_verify_delete(p, 64, 1);
    put_verify_delete(p, 100000, 2);
    put_verify_delete(p, 4 * MiB, 3);
    ck_assert_int_eq(mempool_reap(p), 0);         /* stopped, not dead */
    ck_assert_int_eq(kill(pid, SIGCONT), 0);
    t_wait_ok(pid);
    t_assert_healthy(p);
    ASSERT_RC(mempool_close(p), 0);
    ASSERT_RC(mempool_destroy(name), 0);
}
END_TEST

/* Put BIG with backing refused everywhere: expect @p want. */
static int refused_child(void *arg)
{
    const struct writer *w = arg;
    mempool *p;
    mempool_dref r;
    void *buf = calloc(1, BIG);
    T_CHILD_ASSERT(buf != NULL);
    setenv("MEMPOOL_FAILPOINT", "back.chunk=enospc,back.pages=enospc", 1);
    T_CHILD_EQ(open_pool(w->name, false, &p), 0);
    T_CHILD_EQ(mempool_put(p, buf, BIG, &r), -ENOSPC);
    T_CHILD_EQ(mempool_check(p, NULL, 0), 0);
    T_CHILD_EQ(mempool_close(p), 0);
    free(buf);
    return 0;
}

/* A writer killed at @p spec while its block's pages are still holes. */
static void killed_case(const char *spec)
{
    char name[T_NAME_LEN];
    struct writer w = { name, spec, 12 };
    mempool *p;
    t_pool_name(name, "blockback");
    ASSERT_RC(open_pool(name, true, &p), 0);
    uint64_t used = t_stats(p).used_bytes;
    ck_assert_int_eq(t_wait(t_fork(writer_child, &w), T_WAIT_S),
                     128 + SIGKILL);
    ck_assert_int_eq(mempool_reap(p), 1);  /* and a rebuild, if locked */
    t_assert_healthy(p);
    ck_assert_uint_eq(t_stats(p).used_bytes, used);
    /* The freed run's pages are still flagged: a put into them must back
     * them, and with backing refused it fails cleanly. */
    t_wait_ok(t_fork(refused_child, &w));
    t_assert_healthy(p);
    put_verify_delete(p, BIG, 13);
    t_assert_healthy(p);
    ASSERT_RC(mempool_close(p), 0);
    ASSERT_RC(mempool_destroy(name), 0);
}

START_TEST(test_killed)
{
    killed_case("back.block=kill");
}
END_TEST

START_TEST(test_rebuilt)
{
    killed_case("alloc.locked=kill");
}
END_TEST
#endif

int main(void)
{
    const struct t_case cases[] = {
        { "blockback", 120, false, {
#ifdef T_FAILPOINTS
              test_unlocked, test_killed, test_rebuilt,
#endif
          } },
        { .name = NULL }
    };
    return t_main("blockback", cases);
}
