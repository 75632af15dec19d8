/* SPDX-License-Identifier: MIT */
/*
 * check_open.c - opening, creating, attaching and destroying pools.
 *
 * Issue semantics covered: 1 (unrelated processes share a pool; 32 racing
 * creators get one pool and never a half-built one) and 9 (open fails
 * cleanly: invalid names, an arena /dev/shm cannot hold, bad magic, another
 * layout, a size not matching the header; mode 0600 by default). The
 * permission (-EACCES) cases live in check_perm.c, which needs to drop root.
 *
 * Corruption tests write into /dev/shm/mempool.<name> with plain pwrite or
 * ftruncate after the pool is closed, then open it in a forked child so that
 * a crash or a hang is reported as such instead of killing the test.
 */
#include "helpers.h"

#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>


static bool shm_exists(const char *name)
{
    char path[300];
    struct stat st;

    t_shm_path(path, sizeof path, name);
    return stat(path, &st) == 0;
}

/* Number of /dev/shm entries whose name contains @p name. */
static int shm_entries_with(const char *name)
{
    DIR *d = opendir("/dev/shm");
    struct dirent *e;
    int n = 0;

    while (d && (e = readdir(d)))
        if (strstr(e->d_name, name))
            n++;
    if (d)
        closedir(d);
    return n;
}

/* ------------------------------------------------------------ 9: names */

START_TEST(test_name_invalid)
{
    static const char *bad[] = {
        "", "a/b", "/abc", "abc/", "/", ".hidden", ".", "..", "a b", "a*b",
        "a\nb", "a:b", "a\\b", "caf\xc3\xa9", "x\x7f", "tab\t",
    };
    char longname[MEMPOOL_NAME_MAX + 2];
    mempool *p = NULL;
    mempool_options o;
    size_t i;

    t_options(&o, T_ARENA_BYTES);
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = mempool_open(bad[i], &o, &p);

        ck_assert_msg(rc == -EINVAL, "open('%s') = %d, want -EINVAL", bad[i],
                      rc);
        rc = mempool_destroy(bad[i]);
        ck_assert_msg(rc == -EINVAL, "destroy('%s') = %d, want -EINVAL",
                      bad[i], rc);
    }
    ck_assert_int_eq(mempool_open(NULL, &o, &p), -EINVAL);
    ck_assert_int_eq(mempool_destroy(NULL), -EINVAL);
    ck_assert_int_eq(mempool_open(t_name, &o, NULL), -EINVAL);

    /* one character too long: refused, nothing created */
    memset(longname, 'n', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    ck_assert_uint_eq(strlen(longname), MEMPOOL_NAME_MAX + 1);
    ck_assert_int_eq(mempool_open(longname, &o, &p), -EINVAL);
    ck_assert_int_eq(mempool_destroy(longname), -EINVAL);
    ck_assert_int_eq(shm_entries_with("nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn"), 0);
    /* the fixture's pool is untouched */
    t_assert_healthy(t_pool);
    ck_assert_uint_eq(t_stats(t_pool).workers, 1);
}
END_TEST

START_TEST(test_name_max_length)
{
    char name[T_NAME_LEN];
    mempool *p = NULL;
    size_t n;

    t_pool_name(name, NULL);
    n = strlen(name);
    memset(name + n, 'm', MEMPOOL_NAME_MAX - n);
    name[MEMPOOL_NAME_MAX] = '\0';
    ck_assert_int_eq(t_open(name, 4 * MiB, &p), 0);
    ck_assert(shm_exists(name));
    t_assert_healthy(p);
    ck_assert_int_eq(mempool_close(p), 0);
    ck_assert_int_eq(mempool_destroy(name), 0);
    ck_assert(!shm_exists(name));
    ck_assert_int_eq(mempool_destroy(name), -ENOENT);
}
END_TEST

START_TEST(test_open_flags)
{
    char name[T_NAME_LEN];
    mempool_options o;
    mempool *p = NULL, *q = NULL;

    /* without CREATE a missing pool is -ENOENT and nothing is created */
    t_pool_name(name, NULL);
    t_options(&o, T_ARENA_BYTES);
    o.flags = 0;
    ck_assert_int_eq(mempool_open(name, &o, &p), -ENOENT);
    ck_assert(!shm_exists(name));
    ck_assert_int_eq(mempool_destroy(name), -ENOENT);

    /* CREATE|EXCL: new name created, existing name -EEXIST */
    o.flags = MEMPOOL_OPEN_CREATE | MEMPOOL_OPEN_EXCL;
    ck_assert_int_eq(mempool_open(t_name, &o, &q), -EEXIST);
    ck_assert_int_eq(mempool_open(name, &o, &p), 0);
    ck_assert(shm_exists(name));
    ck_assert_int_eq(mempool_open(name, &o, &q), -EEXIST);
    ck_assert_uint_eq(t_stats(p).workers, 1);

    /* plain attach works, and NULL options mean CREATE: attach too */
    o.flags = 0;
    ck_assert_int_eq(mempool_open(name, &o, &q), 0);
    ck_assert_uint_eq(t_stats(p).workers, 2);
    ck_assert_int_eq(mempool_close(q), 0);
    ck_assert_int_eq(mempool_open(name, NULL, &q), 0);
    ck_assert_uint_eq(t_stats(q).workers, 2);
    ck_assert_int_eq(mempool_close(q), 0);
    ck_assert_int_eq(mempool_close(p), 0);
    ck_assert_int_eq(mempool_destroy(name), 0);
    ck_assert_int_eq(mempool_close(NULL), -EINVAL);
}
END_TEST

START_TEST(test_bad_options)
{
    char name[T_NAME_LEN];
    mempool_options o;
    mempool *p = NULL;

    t_pool_name(name, NULL);
    /* arena below the documented minimum (MEMPOOL_MIN_ARENA_BYTES) */
    t_options(&o, 4096);
    ck_assert_int_eq(mempool_open(name, &o, &p), -EINVAL);
    ck_assert(!shm_exists(name));
    /* an unknown open flag */
    t_options(&o, T_ARENA_BYTES);
    o.flags |= 0x80000000u;
    ck_assert_int_eq(mempool_open(name, &o, &p), -EINVAL);
    ck_assert(!shm_exists(name));
    ck_assert_int_eq(shm_entries_with(name), 0);
}
END_TEST

START_TEST(test_options_init_defaults)
{
    mempool_options o;

    memset(&o, 0x5a, sizeof o);
    mempool_options_init(&o);
    ck_assert_uint_eq(o.arena_bytes, MEMPOOL_DEFAULT_ARENA_BYTES);
    ck_assert_uint_eq(o.max_memsize, 0);
    ck_assert_ptr_nonnull(o.spill_dir);
    ck_assert_str_eq(o.spill_dir, ".mempool");
    ck_assert_uint_eq(o.mode, 0600);
    ck_assert_uint_eq(o.flags, MEMPOOL_OPEN_CREATE);
    ck_assert_uint_eq(o.max_objects, 0);
}
END_TEST

/* ------------------------------------------------------- 9: mode, size */

START_TEST(test_mode_default_0600)
{
    char path[300];
    struct stat st;
    struct mempool_stats s = t_stats(t_pool);

    t_shm_path(path, sizeof path, t_name);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert(S_ISREG(st.st_mode));
    ck_assert_msg((st.st_mode & 07777) == 0600, "mode %o, want 0600",
                  (unsigned)(st.st_mode & 07777));
    ck_assert_uint_eq(st.st_uid, geteuid());
    /* the arena is the whole object and holds what was asked for */
    ck_assert_uint_eq((uint64_t)st.st_size, s.arena_bytes);
    ck_assert_uint_ge(s.arena_bytes, T_ARENA_BYTES);
    ck_assert_uint_gt(s.data_bytes, 0);
    ck_assert_uint_le(s.data_bytes, s.arena_bytes);
    ck_assert_uint_eq(s.used_bytes + s.free_bytes, s.data_bytes);
    ck_assert_uint_eq(s.objects, 0);
    ck_assert_uint_ge(s.max_objects, 1024);
    ck_assert_uint_eq(s.workers, 1);
    ck_assert_uint_eq(s.max_workers, MEMPOOL_MAX_WORKERS);
    ck_assert_uint_eq(s.version, 1);
    /* only the metadata is reserved: data pages are holes until used
     * (MEMPOOL_OPEN_RESERVE reserves them all: check_backing) */
    ck_assert_uint_gt((uint64_t)st.st_blocks * 512, s.free_bytes / 1024);
    ck_assert_uint_lt((uint64_t)st.st_blocks * 512, s.data_bytes);
}
END_TEST

START_TEST(test_mode_option)
{
    char name[T_NAME_LEN], path[300];
    mempool_options o;
    mempool *p = NULL;
    struct stat st;

    umask(022);
    t_pool_name(name, NULL);
    t_options(&o, 4 * MiB);
    o.mode = 0640;
    ck_assert_int_eq(mempool_open(name, &o, &p), 0);
    t_shm_path(path, sizeof path, name);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_msg((st.st_mode & 07777) == 0640, "mode %o, want 0640",
                  (unsigned)(st.st_mode & 07777));
    ck_assert_int_eq(mempool_close(p), 0);
    ck_assert_int_eq(mempool_destroy(name), 0);
}
END_TEST

START_TEST(test_arena_larger_than_devshm)
{
    char name[T_NAME_LEN];
    struct statvfs vfs;
    mempool_options o;
    mempool *p = NULL;
    uint64_t total, want = 1ull << 40;

    ck_assert_int_eq(statvfs("/dev/shm", &vfs), 0);
    total = (uint64_t)vfs.f_blocks * vfs.f_frsize;
    if (total == 0) {
        fprintf(stderr, "note: /dev/shm has no size limit; -ENOSPC case "
                        "not testable here\n");
        return;
    }
    while (want <= 2 * total)
        want <<= 1;
    t_pool_name(name, NULL);
    t_options(&o, want);
    ck_assert_int_eq(mempool_open(name, &o, &p), -ENOSPC);
    /* nothing left behind: neither the pool nor its private build name */
    ck_assert(!shm_exists(name));
    ck_assert_int_eq(shm_entries_with(name), 0);
    /* the name is usable afterwards */
    ck_assert_int_eq(t_open(name, 4 * MiB, &p), 0);
    ck_assert_uint_eq(t_stats(p).arena_bytes >= 4 * MiB, 1);
    ck_assert_int_eq(mempool_close(p), 0);
    ck_assert_int_eq(mempool_destroy(name), 0);
}
END_TEST

/* ------------------------------------------------- 1: create race of 32 */

#define RACERS 32

struct race_report {
    int32_t rc, wid, check;
    uint32_t workers_max;
    uint64_t arena_bytes, st_size;
    mempool_dref r;
};

struct race_arg {
    const char *name;
    int go, done, out, idx;
    int close_fds[3]; /* the parent's ends, closed in the child */
};

static int racer(void *arg)
{
    struct race_arg *a = arg;
    struct race_report rep;
    struct mempool_stats s;
    mempool *p = NULL;
    char path[300];
    struct stat st;
    uint32_t v = 0xabc00000u | (uint32_t)a->idx;

    memset(&rep, 0, sizeof rep);
    for (int i = 0; i < 3; i++)
        close(a->close_fds[i]);
    T_CHILD_ASSERT(t_wait_fd(a->go, T_WAIT_S) == 0);
    rep.rc = t_open(a->name, 16 * MiB, &p);
    if (rep.rc == 0) {
        /* a half-built pool would fail one of these */
        rep.check = mempool_check(p, NULL, 0);
        rep.wid = mempool_worker_id(p);
        if (mempool_stats_get(p, &s) == 0) {
            rep.arena_bytes = s.arena_bytes;
            rep.workers_max = s.max_workers;
        }
        t_shm_path(path, sizeof path, a->name);
        if (stat(path, &st) == 0)
            rep.st_size = (uint64_t)st.st_size;
        if (mempool_put(p, &v, sizeof v, &rep.r) != 0)
            rep.check = -1;
    }
    T_CHILD_ASSERT(t_send(a->out, &rep, sizeof rep) == 0);
    /* stay attached until the parent has counted us */
    T_CHILD_ASSERT(t_wait_fd(a->done, T_WAIT_S) == 0);
    if (p)
        T_CHILD_EQ(mempool_close(p), 0);
    return 0;
}

static void create_race_round(void)
{
    char name[T_NAME_LEN];
    int go[2], done[2], out[2], i, j;
    pid_t pids[RACERS];
    struct race_report rep[RACERS];
    struct race_arg a;
    mempool *p = NULL;
    struct mempool_stats s;

    t_pool_name(name, NULL);
    t_pipe(go);
    t_pipe(done);
    t_pipe(out);
    a.name = name;
    a.go = go[0];
    a.done = done[0];
    a.out = out[1];
    a.close_fds[0] = go[1];
    a.close_fds[1] = done[1];
    a.close_fds[2] = out[0];
    for (i = 0; i < RACERS; i++) {
        a.idx = i;
        pids[i] = t_fork(racer, &a);
    }
    close(go[0]);
    close(done[0]);
    close(out[1]);
    close(go[1]); /* all racers start at once */
    for (i = 0; i < RACERS; i++) {
        int rc = t_recv(out[0], &rep[i], sizeof rep[i], T_WAIT_S);

        ck_assert_msg(rc == 0, "racer report %d: %d", i, rc);
    }
    for (i = 0; i < RACERS; i++) {
        ck_assert_msg(rep[i].rc == 0, "racer open = %d (%s)", rep[i].rc,
                      mempool_strerror(rep[i].rc));
        ck_assert_msg(rep[i].check == 0, "racer saw an unhealthy pool: %d",
                      rep[i].check);
        ck_assert_int_ge(rep[i].wid, 1);
        ck_assert_int_le(rep[i].wid, MEMPOOL_MAX_WORKERS);
        ck_assert_uint_eq(rep[i].workers_max, MEMPOOL_MAX_WORKERS);
        ck_assert_uint_ge(rep[i].arena_bytes, 16 * MiB);
        ck_assert_uint_eq(rep[i].arena_bytes, rep[0].arena_bytes);
        ck_assert_uint_eq(rep[i].st_size, rep[i].arena_bytes);
        for (j = 0; j < i; j++)
            ck_assert_msg(rep[i].wid != rep[j].wid,
                          "two racers got worker id %d", rep[i].wid);
    }
    /* one pool: every racer's object is in the pool that has the name */
    ck_assert_int_eq(t_attach(name, &p), 0);
    s = t_stats(p);
    ck_assert_uint_eq(s.objects, RACERS);
    ck_assert_uint_eq(s.workers, RACERS + 1);
    for (i = 0; i < RACERS; i++) {
        mempool_view v;
        uint32_t val;
        int rc = mempool_get(p, rep[i].r, &v);

        ck_assert_msg(rc == 0, "racer object %d: get = %d", i, rc);
        ck_assert_uint_eq(v.len, sizeof val);
        memcpy(&val, v.data, sizeof val);
        ck_assert_uint_eq(val & 0xfff00000u, 0xabc00000u);
        ck_assert_int_eq(mempool_release(p, &v), 0);
    }
    close(done[1]);
    for (i = 0; i < RACERS; i++)
        t_wait_ok(pids[i]);
    close(out[0]);
    ck_assert_uint_eq(t_stats(p).workers, 1);
    t_assert_healthy(p);
    ck_assert_int_eq(mempool_close(p), 0);
    ck_assert_int_eq(mempool_destroy(name), 0);
}

START_TEST(test_create_race_32)
{
    int round;

    for (round = 0; round < 3; round++)
        create_race_round();
}
END_TEST

/* The creator is SIGKILLed at a random moment of mempool_open(CREATE): the
 * next opener gets a complete, healthy pool (finishing or redoing the
 * creation), never a half-built one. */
static const char *creator_name;

static int creator(void *arg)
{
    mempool *p = NULL;

    (void)arg;
    if (t_open(creator_name, 256 * MiB, &p) == 0)
        mempool_close(p);
    return 0;
}

START_TEST(test_creator_killed)
{
    char name[T_NAME_LEN], path[300];
    uint64_t seed = 99;
    int round, leaked = 0;

    for (round = 0; round < 8; round++) {
        struct mempool_stats s;
        struct stat st;
        mempool *p = NULL;
        pid_t pid;
        int rc;

        t_pool_name(name, NULL);
        creator_name = name;
        pid = t_fork(creator, NULL);
        /* early kills hit the private build, later ones the reservation */
        usleep((useconds_t)(t_rand(&seed) % (round & 1 ? 200000 : 3000)));
        (void)t_kill(pid); /* it may have finished: fine */
        rc = t_open(name, 256 * MiB, &p);
        ck_assert_msg(rc == 0, "round %d: open after a killed creator = %d "
                      "(%s)", round, rc, mempool_strerror(rc));
        t_assert_healthy(p);
        s = t_stats(p);
        t_shm_path(path, sizeof path, name);
        ck_assert_int_eq(stat(path, &st), 0);
        ck_assert_uint_eq((uint64_t)st.st_size, s.arena_bytes);
        /* the metadata is reserved (data pages get memory when used) */
        ck_assert_uint_gt((uint64_t)st.st_blocks, 0);
        ck_assert_uint_eq(s.workers, 1);
        ck_assert_int_eq(mempool_close(p), 0);
        ck_assert_int_eq(mempool_destroy(name), 0);
        /* a creator killed before linking leaves its private build file */
        leaked += shm_entries_with(name);
    }
    if (leaked)
        fprintf(stderr, "note: %d private build file(s) of killed creators "
                "left in /dev/shm (swept at exit)\n", leaked);
}
END_TEST

/* --------------------------------------- 1: unrelated processes (exec) */

static const char *peer_name;
static char peer_args[4][80];
static int peer_stdout = -1;
static bool peer_quiet;

static int exec_peer(void *arg)
{
    const char *mode = arg;
    mempool_options o;

    t_options(&o, T_ARENA_BYTES);
    setenv("T_PEER_SPILL_DIR", o.spill_dir, 1);
    if (peer_stdout >= 0)
        dup2(peer_stdout, STDOUT_FILENO);
    if (peer_quiet) {
        int null = open("/dev/null", O_WRONLY);

        if (null >= 0)
            dup2(null, STDERR_FILENO);
    }
    if (strcmp(mode, "get") == 0)
        execl(T_PEER_PATH, "t_peer", "get", peer_name, peer_args[0],
              peer_args[1], peer_args[2], (char *)NULL);
    else
        execl(T_PEER_PATH, "t_peer", "set", peer_name, peer_args[0],
              peer_args[1], (char *)NULL);
    fprintf(stderr, "exec %s: %s\n", T_PEER_PATH, strerror(errno));
    return 127;
}

START_TEST(test_exec_unrelated_peer)
{
    enum { LEN = 100000 };
    unsigned char *buf = malloc(LEN);
    mempool_dref r, r2;
    mempool_view v;
    mempool_info in;
    char line[80];
    uint64_t fnv;
    int fds[2], st;

    ck_assert_ptr_nonnull(buf);
    t_fill(buf, LEN, 7);
    ck_assert_int_eq(mempool_put(t_pool, buf, LEN, &r), 0);
    peer_name = t_name;
    ck_assert_int_eq(mempool_dref_format(r, peer_args[0], 80), 33);
    snprintf(peer_args[1], 80, "%d", LEN);
    snprintf(peer_args[2], 80, "%016" PRIx64, t_fnv1a(buf, LEN));

    /* the peer attaches by name and reads the same bytes */
    st = t_wait(t_fork(exec_peer, (void *)"get"), T_WAIT_S);
    ck_assert_msg(st == 0, "t_peer get exited %d", st);
    /* negative control: a wrong checksum makes the peer fail */
    snprintf(peer_args[2], 80, "%016" PRIx64, t_fnv1a(buf, LEN) ^ 1);
    peer_quiet = true;
    st = t_wait(t_fork(exec_peer, (void *)"get"), T_WAIT_S);
    peer_quiet = false;
    ck_assert_msg(st == 1, "t_peer get with a wrong checksum exited %d", st);
    ck_assert_int_eq(t_pins(t_pool, r), 0);

    /* the peer sets an object, prints its DRef and exits; we read it */
    snprintf(peer_args[0], 80, "%d", 5000);
    snprintf(peer_args[1], 80, "%d", 99);
    t_pipe(fds);
    peer_stdout = fds[1];
    {
        pid_t pid = t_fork(exec_peer, (void *)"set");

        close(fds[1]);
        peer_stdout = -1;
        memset(line, 0, sizeof line);
        ck_assert_int_eq(t_recv(fds[0], line, 33 + 1 + 16 + 1, T_WAIT_S), 0);
        close(fds[0]);
        st = t_wait(pid, T_WAIT_S);
        ck_assert_msg(st == 0, "t_peer set exited %d", st);
    }
    line[33] = '\0';
    ck_assert_int_eq(mempool_dref_parse(line, &r2), 0);
    fnv = strtoull(line + 34, NULL, 16);
    /* the setter is gone; its plain object stays (semantic 6) */
    ck_assert_int_eq(mempool_reap(t_pool), 0);
    ck_assert_int_eq(mempool_get(t_pool, r2, &v), 0);
    ck_assert_uint_eq(v.len, 5000);
    ck_assert(t_in_pool_mapping(t_name, v.data, v.len));
    ck_assert_uint_eq(t_fnv1a(v.data, v.len), fnv);
    ck_assert_int_eq(mempool_release(t_pool, &v), 0);
    ck_assert_int_eq(mempool_info_get(t_pool, r2, &in), 0);
    ck_assert_uint_eq(in.len, 5000);
    ck_assert_uint_eq(t_stats(t_pool).workers, 1);
    t_assert_healthy(t_pool);
    free(buf);
}
END_TEST

/* ------------------------------------- workers: two handles, 64 workers */

START_TEST(test_two_handles_one_process)
{
    mempool *q = NULL;
    mempool_dref r;
    mempool_view v1, v2;
    const char msg[] = "two handles, one process";

    ck_assert_int_eq(t_attach(t_name, &q), 0);
    ck_assert_int_ne(mempool_worker_id(q), mempool_worker_id(t_pool));
    ck_assert_uint_eq(t_stats(t_pool).workers, 2);
    ck_assert_int_eq(mempool_put(t_pool, msg, sizeof msg, &r), 0);
    ck_assert_int_eq(mempool_get(q, r, &v2), 0);
    ck_assert_int_eq(mempool_get(t_pool, r, &v1), 0);
    ck_assert_mem_eq(v2.data, msg, sizeof msg);
    ck_assert(t_in_pool_mapping(t_name, v1.data, v1.len));
    ck_assert(t_in_pool_mapping(t_name, v2.data, v2.len));
    ck_assert_int_eq(t_pins(t_pool, r), 2);
    /* a view belongs to the worker that got it */
    {
        mempool_view c = v1;

        ck_assert_int_eq(mempool_release(q, &c), -EINVAL);
        ck_assert_int_eq(t_pins(t_pool, r), 2);
    }
    ck_assert_int_eq(mempool_release(q, &v2), 0);
    ck_assert_int_eq(t_pins(t_pool, r), 1);
    /* closing one handle leaves the other live: nothing to reap */
    ck_assert_int_eq(mempool_get(q, r, &v2), 0);
    ck_assert_int_eq(mempool_close(q), 0);
    ck_assert_int_eq(t_pins(t_pool, r), 1);
    ck_assert_int_eq(mempool_reap(t_pool), 0);
    ck_assert_int_eq(t_pins(t_pool, r), 1);
    ck_assert_uint_eq(t_stats(t_pool).workers, 1);
    ck_assert_int_eq(mempool_release(t_pool, &v1), 0);
    t_assert_healthy(t_pool);
}
END_TEST

static int attach_expect(void *arg)
{
    mempool *p = NULL;

    T_CHILD_EQ(t_attach(t_name, &p), *(int *)arg);
    if (p)
        mempool_close(p);
    return 0;
}

START_TEST(test_max_workers)
{
    mempool *h[MEMPOOL_MAX_WORKERS];
    bool seen[MEMPOOL_MAX_WORKERS + 1] = { false };
    mempool_dref r;
    mempool_view v;
    int i, n = MEMPOOL_MAX_WORKERS - 1, want = -EUSERS, id;
    mempool *extra = NULL;

    id = mempool_worker_id(t_pool);
    ck_assert_int_ge(id, 1);
    seen[id] = true;
    for (i = 0; i < n; i++) {
        int rc = t_attach(t_name, &h[i]);

        ck_assert_msg(rc == 0, "attach %d: %d (%s)", i, rc,
                      mempool_strerror(rc));
        id = mempool_worker_id(h[i]);
        ck_assert_int_ge(id, 1);
        ck_assert_int_le(id, MEMPOOL_MAX_WORKERS);
        ck_assert_msg(!seen[id], "worker id %d given twice", id);
        seen[id] = true;
    }
    ck_assert_uint_eq(t_stats(t_pool).workers, MEMPOOL_MAX_WORKERS);
    ck_assert_int_eq(mempool_put(h[5], "x", 1, &r), 0);
    ck_assert_int_eq(mempool_get(h[5], r, &v), 0);
    /* all slots held by live workers: here and from another process */
    ck_assert_int_eq(t_attach(t_name, &extra), -EUSERS);
    t_wait_ok(t_fork(attach_expect, &want));
    /* a freed slot is reusable; live workers are not reaped meanwhile */
    ck_assert_int_eq(mempool_close(h[10]), 0);
    ck_assert_int_eq(t_attach(t_name, &h[10]), 0);
    ck_assert_uint_eq(t_stats(t_pool).workers, MEMPOOL_MAX_WORKERS);
    ck_assert_int_eq(t_pins(t_pool, r), 1);
    ck_assert_int_eq(mempool_reap(t_pool), 0);
    ck_assert_int_eq(mempool_release(h[5], &v), 0);
    for (i = 0; i < n; i++)
        ck_assert_int_eq(mempool_close(h[i]), 0);
    ck_assert_uint_eq(t_stats(t_pool).workers, 1);
    t_assert_healthy(t_pool);
}
END_TEST

/* ----------------------------------------------------------- destroy */

START_TEST(test_destroy_while_attached)
{
    mempool *p2 = NULL;
    mempool_dref r, r2;
    mempool_view v;
    const char a[] = "old pool";

    ck_assert_int_eq(mempool_put(t_pool, a, sizeof a, &r), 0);
    ck_assert_int_eq(mempool_destroy(t_name), 0);
    ck_assert(!shm_exists(t_name));
    ck_assert_int_eq(mempool_destroy(t_name), -ENOENT);
    /* the attached handle keeps working on its mapping */
    ck_assert_int_eq(mempool_get(t_pool, r, &v), 0);
    ck_assert_mem_eq(v.data, a, sizeof a);
    ck_assert_int_eq(mempool_release(t_pool, &v), 0);
    ck_assert_int_eq(mempool_put(t_pool, a, sizeof a, &r2), 0);
    /* the name now makes a new, empty pool that rejects the old DRef */
    ck_assert_int_eq(t_open(t_name, T_ARENA_BYTES, &p2), 0);
    ck_assert_uint_eq(t_stats(p2).objects, 0);
    ck_assert_uint_eq(t_stats(p2).workers, 1);
    {
        int rc = mempool_get(p2, r, &v);

        ck_assert_msg(rc == -EINVAL || rc == -ENOENT,
                      "old DRef in a new pool: %d", rc);
    }
    ck_assert_int_eq(mempool_close(p2), 0);
    ck_assert_int_eq(mempool_close(t_pool), 0);
    t_pool = NULL;
}
END_TEST

/* ----------------------------------------- 9: corrupt, foreign, resized */

struct open_result {
    int status; /* child exit: 0, or 128+signal, -1 hung */
    int rc;     /* mempool_open() */
    int check;  /* mempool_check() when open succeeded */
};

static const char *probe_name;
static unsigned probe_flags;

static int open_probe(void *arg)
{
    int fd = *(int *)arg;
    mempool_options o;
    mempool *p = NULL;
    int res[2];

    t_options(&o, T_ARENA_BYTES);
    o.flags = probe_flags;
    res[0] = mempool_open(probe_name, &o, &p);
    res[1] = 0;
    if (res[0] == 0) {
        struct mempool_stats s;
        mempool_dref r;

        res[1] = mempool_check(p, NULL, 0);
        mempool_stats_get(p, &s);
        mempool_put(p, "probe", 5, &r); /* must not crash */
        mempool_close(p);
    }
    T_CHILD_ASSERT(t_send(fd, res, sizeof res) == 0);
    return 0;
}

/* Open @p name in a child with @p flags. */
static struct open_result open_in_child(const char *name, unsigned flags)
{
    struct open_result r = { -1, 1, 0 };
    int fds[2], res[2];

    probe_name = name;
    probe_flags = flags;
    t_pipe(fds);
    {
        pid_t pid = t_fork(open_probe, &fds[1]);

        close(fds[1]);
        r.status = t_wait(pid, 20.0);
    }
    if (r.status == 0 && t_recv(fds[0], res, sizeof res, 1.0) == 0) {
        r.rc = res[0];
        r.check = res[1];
    }
    close(fds[0]);
    return r;
}

static int shm_fd(const char *name)
{
    char path[300];
    int fd;

    t_shm_path(path, sizeof path, name);
    fd = open(path, O_RDWR | O_CLOEXEC);
    ck_assert_msg(fd >= 0, "open %s: %s", path, strerror(errno));
    return fd;
}

static void close_fixture_pool(void)
{
    ck_assert_int_eq(mempool_close(t_pool), 0);
    t_pool = NULL;
}

#define ASSERT_OPEN_FAILS(res, want, what) \
    do { \
        ck_assert_msg((res).status == 0, "%s: opening child ended with %d " \
                      "(crash or hang)", what, (res).status); \
        ck_assert_msg((res).rc == (want), "%s: open = %d (%s), want %d " \
                      "(%s)", what, (res).rc, mempool_strerror((res).rc), \
                      want, mempool_strerror(want)); \
    } while (0)

START_TEST(test_bad_magic)
{
    uint64_t orig, junk = 0x0123456789abcdefull;
    struct open_result res;
    int fd;

    close_fixture_pool();
    fd = shm_fd(t_name);
    ck_assert_int_eq(pread(fd, &orig, 8, 0), 8);
    ck_assert_int_eq(pwrite(fd, &junk, 8, 0), 8);
    res = open_in_child(t_name, 0);
    ASSERT_OPEN_FAILS(res, MEMPOOL_ECORRUPT, "bad magic, attach");
    /* CREATE must not silently replace someone's object either */
    res = open_in_child(t_name, MEMPOOL_OPEN_CREATE);
    ASSERT_OPEN_FAILS(res, MEMPOOL_ECORRUPT, "bad magic, create");
    /* restoring the magic makes it a healthy pool again */
    ck_assert_int_eq(pwrite(fd, &orig, 8, 0), 8);
    close(fd);
    res = open_in_child(t_name, 0);
    ck_assert_int_eq(res.status, 0);
    ck_assert_int_eq(res.rc, 0);
    ck_assert_int_eq(res.check, 0);
}
END_TEST

/* Flip each of the first 8 header words in turn (magic, format, size, ...
 * live there). Every open must end cleanly; the magic (word 0) must give
 * MEMPOOL_ECORRUPT and some word must be the layout/version word that gives
 * MEMPOOL_EFORMAT. */
START_TEST(test_header_words)
{
    struct open_result res;
    int fd, w, eformat = 0;

    close_fixture_pool();
    fd = shm_fd(t_name);
    for (w = 0; w < 8; w++) {
        uint64_t orig, flip;
        char what[64];

        ck_assert_int_eq(pread(fd, &orig, 8, w * 8), 8);
        flip = ~orig;
        ck_assert_int_eq(pwrite(fd, &flip, 8, w * 8), 8);
        res = open_in_child(t_name, 0);
        snprintf(what, sizeof what, "header word %d flipped", w);
        ck_assert_msg(res.status == 0, "%s: opening child ended with %d "
                      "(crash or hang)", what, res.status);
        ck_assert_msg(res.rc <= 0, "%s: open = %d", what, res.rc);
        if (w == 0)
            ASSERT_OPEN_FAILS(res, MEMPOOL_ECORRUPT, what);
        if (res.rc == MEMPOOL_EFORMAT)
            eformat++;
        ck_assert_int_eq(pwrite(fd, &orig, 8, w * 8), 8);
    }
    close(fd);
    ck_assert_msg(eformat > 0, "no header word gave MEMPOOL_EFORMAT");
    res = open_in_child(t_name, 0);
    ck_assert_int_eq(res.status, 0);
    ck_assert_int_eq(res.rc, 0);
    ck_assert_int_eq(res.check, 0);
}
END_TEST

START_TEST(test_size_mismatch)
{
    struct open_result res;
    struct stat st;
    off_t size;
    char *copy;
    int fd;

    close_fixture_pool();
    fd = shm_fd(t_name);
    ck_assert_int_eq(fstat(fd, &st), 0);
    size = st.st_size;
    copy = malloc((size_t)size);
    ck_assert_ptr_nonnull(copy);
    ck_assert_int_eq(pread(fd, copy, (size_t)size, 0), (ssize_t)size);
    /* shorter than the header says: refused without touching the tail */
    ck_assert_int_eq(ftruncate(fd, size / 2), 0);
    res = open_in_child(t_name, 0);
    ASSERT_OPEN_FAILS(res, MEMPOOL_ECORRUPT, "truncated to half");
    res = open_in_child(t_name, MEMPOOL_OPEN_CREATE);
    ASSERT_OPEN_FAILS(res, MEMPOOL_ECORRUPT, "truncated to half, create");
    /* longer than the header says */
    ck_assert_int_eq(ftruncate(fd, size + (off_t)MiB), 0);
    res = open_in_child(t_name, 0);
    ASSERT_OPEN_FAILS(res, MEMPOOL_ECORRUPT, "extended by 1 MiB");
    /* back to the right size and bytes: healthy again */
    ck_assert_int_eq(ftruncate(fd, size), 0);
    ck_assert_int_eq(pwrite(fd, copy, (size_t)size, 0), (ssize_t)size);
    close(fd);
    free(copy);
    res = open_in_child(t_name, 0);
    ck_assert_int_eq(res.status, 0);
    ck_assert_int_eq(res.rc, 0);
    ck_assert_int_eq(res.check, 0);
}
END_TEST

START_TEST(test_size_tiny)
{
    static const off_t sizes[] = { 0, 7, 100, 4096 };
    struct open_result res;
    size_t i;
    int fd;

    close_fixture_pool();
    fd = shm_fd(t_name);
    for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        ck_assert_int_eq(ftruncate(fd, sizes[i]), 0);
        res = open_in_child(t_name, 0);
        ck_assert_msg(res.status == 0, "size %ld: child ended with %d",
                      (long)sizes[i], res.status);
        ck_assert_msg(res.rc == MEMPOOL_ECORRUPT ||
                      res.rc == MEMPOOL_ENOTREADY,
                      "size %ld: open = %d (%s)", (long)sizes[i], res.rc,
                      mempool_strerror(res.rc));
    }
    close(fd);
}
END_TEST

START_TEST(test_foreign_file)
{
    char name[T_NAME_LEN], path[300], junk[8192];
    struct open_result res;
    int fd;

    /* a file of random bytes under a pool's name */
    t_pool_name(name, NULL);
    t_shm_path(path, sizeof path, name);
    fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    ck_assert_int_ge(fd, 0);
    t_fill(junk, sizeof junk, 1234);
    ck_assert_int_eq(write(fd, junk, sizeof junk), (ssize_t)sizeof junk);
    ck_assert_int_eq(ftruncate(fd, (off_t)(4 * MiB)), 0);
    close(fd);
    res = open_in_child(name, 0);
    ASSERT_OPEN_FAILS(res, MEMPOOL_ECORRUPT, "random bytes");
    ck_assert_int_eq(unlink(path), 0);
}
END_TEST

/* ------------------------------------------------------------- misc */

START_TEST(test_strerror_version)
{
    static const int codes[] = {
        MEMPOOL_EFORMAT, MEMPOOL_ECORRUPT, MEMPOOL_EFORKED, MEMPOOL_ENOTREADY,
    };
    char v[32];
    size_t i, j;

    for (i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        ck_assert_int_lt(codes[i], -4095);
        ck_assert_ptr_nonnull(mempool_strerror(codes[i]));
        ck_assert_str_ne(mempool_strerror(codes[i]), "unknown error");
        for (j = 0; j < i; j++)
            ck_assert_str_ne(mempool_strerror(codes[i]),
                             mempool_strerror(codes[j]));
    }
    ck_assert_ptr_nonnull(mempool_strerror(0));
    ck_assert_ptr_nonnull(mempool_strerror(-ENOENT));
    ck_assert_str_ne(mempool_strerror(-ENOENT), "unknown error");
    ck_assert_str_eq(mempool_strerror(-4999), "unknown error");
    ck_assert_str_eq(mempool_strerror(12345), "unknown error");
    snprintf(v, sizeof v, "%d.%d.%d", MEMPOOL_VERSION_MAJOR,
             MEMPOOL_VERSION_MINOR, MEMPOOL_VERSION_PATCH);
    ck_assert_str_eq(mempool_version(), v);
}
END_TEST

int main(void)
{
    const struct t_case cases[] = {
        { "names", 30, true, {
              test_name_invalid, test_name_max_length, test_open_flags,
              test_bad_options, test_options_init_defaults,
              test_strerror_version } },
        { "create", 60, true, {
              test_mode_default_0600, test_mode_option,
              test_arena_larger_than_devshm, test_destroy_while_attached } },
        { "processes", 120, true, {
              test_create_race_32, test_creator_killed,
              test_exec_unrelated_peer, test_two_handles_one_process,
              test_max_workers } },
        { "corrupt", 120, true, {
              test_bad_magic, test_header_words, test_size_mismatch,
              test_size_tiny, test_foreign_file } },
        { .name = NULL }
    };
    return t_main("open", cases);
}
