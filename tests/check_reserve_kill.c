/* SPDX-License-Identifier: MIT */
/*
 * check_reserve_kill.c - a process SIGKILLed while it creates a pool with
 * MEMPOOL_OPEN_RESERVE (backing the whole arena, src/core/backing.c
 * mempool__back_all) leaves nothing a new opener trips over (issue 11
 * target 3):
 *
 *   anytime   the creator of a 512 MiB reserved pool is SIGKILLed while
 *             its private build file is being backed (the parent watches
 *             the file's allocated bytes grow past its metadata and kills
 *             then): an attach without CREATE answers -ENOENT (nothing
 *             was linked); a new creator (RESERVE again) sweeps the dead
 *             build file, gets a working pool whose pages are all backed,
 *             and no build file is left
 *   points    (failpoints) the same after a kill just before the data
 *             collapse (back.chunk@2: @1 is the metadata's) and after the
 *             whole backing, before the link (create.built)
 */
#include "helpers.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#define ARENA (512 * MiB)

static int create_pool(const char *name, mempool **p)
{
    mempool_options o;
    t_options(&o, ARENA);
    o.flags = MEMPOOL_OPEN_CREATE | MEMPOOL_OPEN_EXCL | MEMPOOL_OPEN_RESERVE;
    return mempool_open(name, &o, p);
}

/* Allocated bytes of pool @p name's build file, or -1 if there is none. */
static int64_t build_bytes(const char *name)
{
    char prefix[T_NAME_LEN + 32], path[600];
    DIR *d = opendir("/dev/shm");
    struct dirent *e;
    int64_t got = -1;
    snprintf(prefix, sizeof prefix, "mempool.%s#init.", name);
    while (d && (e = readdir(d))) {
        struct stat st;
        if (strncmp(e->d_name, prefix, strlen(prefix)) != 0)
            continue;
        snprintf(path, sizeof path, "/dev/shm/%s", e->d_name);
        if (stat(path, &st) == 0)
            got = (int64_t)st.st_blocks * 512;
    }
    if (d)
        closedir(d);
    return got;
}

struct creator {
    const char *name, *spec;
};

static int creator_child(void *arg)
{
    const struct creator *c = arg;
    mempool *p;
    if (c->spec)
        setenv("MEMPOOL_FAILPOINT", c->spec, 1);
    T_CHILD_EQ(create_pool(c->name, &p), 0);
    T_CHILD_EQ(mempool_close(p), 0);
    return 0;
}

/* After the creator died: nothing linked, a new creator gets a whole
 * reserved pool and sweeps the build file. */
static void after_kill(const char *name)
{
    mempool *p = NULL;
    ASSERT_RC(t_attach(name, &p), -ENOENT);
    ck_assert_int_gt(build_bytes(name), 0);          /* the dead one's */
    ASSERT_RC(create_pool(name, &p), 0);
    ck_assert_int_eq(build_bytes(name), -1);         /* swept */
    struct mempool_stats s = t_stats(p);
    ck_assert_uint_ge(t_shm_bytes(name), s.data_bytes);  /* all backed */
    void *buf = malloc(64 * MiB);
    mempool_dref r;
    mempool_view v;
    ck_assert_ptr_nonnull(buf);
    t_fill(buf, 64 * MiB, 5);
    ASSERT_RC(mempool_put(p, buf, 64 * MiB, &r), 0);
    ASSERT_RC(mempool_get(p, r, &v), 0);
    ck_assert(t_check_fill(v.data, v.len, 5));
    ASSERT_RC(mempool_release(p, &v), 0);
    ASSERT_RC(mempool_delete(p, r), 0);
    free(buf);
    t_assert_healthy(p);
    ASSERT_RC(mempool_close(p), 0);
    ASSERT_RC(mempool_destroy(name), 0);
}

/* Kill the creator once its build file holds more than its metadata
 * (~40 MiB at this size). @return true if it was caught backing. */
static bool kill_while_backing(const char *name)
{
    struct creator c = { name, NULL };
    pid_t pid = t_fork(creator_child, &c);
    for (int i = 0; i < 300000; i++) {
        int64_t b = build_bytes(name);
        int st;
        if (b > (int64_t)(96 * MiB) && b < (int64_t)(ARENA - 8 * MiB)) {
            ck_assert_int_eq(t_kill(pid), SIGKILL);
            return true;
        }
        if (waitpid(pid, &st, WNOHANG) == pid) {
            /* done before we caught it backing: not this time */
            ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
                          "creator ended with %#x", st);
            ASSERT_RC(mempool_destroy(name), 0);
            return false;
        }
        nanosleep(&(struct timespec){ 0, 50000 }, NULL);
    }
    ck_abort_msg("creator neither backed nor ended");
    return false;
}

START_TEST(test_killed_anytime)
{
    char name[T_NAME_LEN];
    int caught = 0;
    for (int i = 0; i < 10 && caught < 3; i++) {
        t_pool_name(name, "reskill");
        if (kill_while_backing(name)) {
            caught++;
            after_kill(name);
        }
    }
    ck_assert_msg(caught > 0, "never caught a creator backing its arena");
}
END_TEST

#ifdef T_FAILPOINTS
static void point_case(const char *spec)
{
    char name[T_NAME_LEN];
    struct creator c = { name, spec };
    t_pool_name(name, "reskill");
    ck_assert_int_eq(t_wait(t_fork(creator_child, &c), T_WAIT_S),
                     128 + SIGKILL);
    after_kill(name);
}

START_TEST(test_killed_points)
{
    point_case("back.chunk=kill@2");
    point_case("create.built=kill");
}
END_TEST
#endif

int main(void)
{
    const struct t_case cases[] = {
        { "reserve_kill", 240, false, {
              test_killed_anytime,
#ifdef T_FAILPOINTS
              test_killed_points,
#endif
          } },
        { .name = NULL }
    };
    return t_main("reserve_kill", cases);
}
