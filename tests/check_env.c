/* SPDX-License-Identifier: MIT */
/*
 * check_env.c - hostile environments (docs/scenarios.md S6, S31, S35, S37,
 * S45, and planted symlinks in the spill directory).
 *
 * Each case builds its environment in a forked child - a seccomp filter, a
 * tiny RLIMIT_MEMLOCK without CAP_IPC_LOCK, a private mount namespace with
 * a small tmpfs on /dev/shm or on the spill directory, uid 65534 - and runs
 * its scenario there, so nothing leaks into the host or the next case. A
 * child that cannot build its environment (not root, no CAP_SYS_ADMIN, no
 * seccomp, not x86-64, ...) exits 77: the case then passes with a NOTE on
 * stderr, and the binary exits 77 (ctest: skipped) when no case could run.
 *
 *   seccomp     io_uring_setup denied (EPERM): the pwrite backend spills
 *               (one quick case; check_spill and check_io cover more)
 *   memlock     RLIMIT_MEMLOCK 64 KiB without CAP_IPC_LOCK (capset as
 *               root, and as uid 65534): spilling still works
 *   shm_small   a 16 MiB tmpfs on /dev/shm: a 64 MiB arena is -ENOSPC with
 *               no file left and no SIGBUS, an 8 MiB one works; memory given
 *               back by mempool_trim() and taken by someone else is -ENOSPC
 *               at the next set, not SIGBUS; two creators racing for room
 *               for one with MEMPOOL_OPEN_RESERVE: at most one pool,
 *               -ENOSPC for the others, nothing left behind (without it a
 *               pool's data pages are holes until used, check_backing)
 *   spill_full  a 1 MiB tmpfs on the spill directory: the set that must
 *               spill into a full disk is -ENOSPC, every object stays
 *               readable, no *.tmp is left; with space freed spilling
 *               resumes
 *   deleted_space  a spilled object read, then deleted: the spill file
 *               system gets its space back at once (fails today: the
 *               handle's idle mapping of the unlinked file keeps it)
 *   unwritable  spill directory (and then the pool's own directory) 0500,
 *               as uid 65534 when root (root ignores modes): the spilling
 *               set and move_to_disk fail with -EACCES, nothing is lost;
 *               chmod back and spilling resumes
 *   symlinks    planted before the object is spilled: at the final name
 *               (replaced, never followed), at the .tmp name (the spill
 *               fails), at the pool's directory (the spill fails); and at
 *               the name of a spilled object, pointing to a forged but valid
 *               spill file: get refuses it (a regular file with the same
 *               bytes is accepted, which shows the refusal is the symlink's)
 *
 * "Another user opening a 0600 pool gets -EACCES" is check_perm's.
 * Decoys are files of this test, never /etc/passwd: if a symlink were
 * followed the test must fail, not damage the host.
 */
#include "t_seccomp.h"
#include "helpers.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <libgen.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <linux/capability.h>

#define NOBODY 65534

/* Cases that ran / were skipped, shared by every forked test process. */
static struct env_counts {
    atomic_int ran, skipped;
} *counts;

#define SKIP 77

/* In a child: say why the case cannot run here, and exit 77. */
#define CHILD_SKIP(...) \
    do { \
        fprintf(stderr, "check_env: NOTE: " __VA_ARGS__); \
        fputc('\n', stderr); \
        fflush(stderr); \
        _exit(SKIP); \
    } while (0)

#define CHILD_RC(call, want) \
    do { \
        int c_rc_ = (call); \
        if (c_rc_ != (want)) { \
            fprintf(stderr, "child %d: %s:%d: %s = %d (%s), expected %d " \
                    "(%s)\n", (int)getpid(), __FILE__, __LINE__, #call, \
                    c_rc_, mempool_strerror(c_rc_), (int)(want), \
                    mempool_strerror(want)); \
            fflush(stderr); \
            _exit(1); \
        } \
    } while (0)

static void case_teardown(void);

/* Run @p fn in a child; 77 from it is a skip (noted), else it must pass. */
static void run_case(const char *what, int (*fn)(void *), void *arg,
                     double timeout)
{
    int st = t_wait(t_fork(fn, arg), timeout);

    if (st == SKIP) {
        fprintf(stderr, "check_env: %s: skipped here (passed with a note)\n",
                what);
        atomic_fetch_add(&counts->skipped, 1);
        return;
    }
    if (st != 0)
        case_teardown();        /* a failed check skips the fixture's */
    ck_assert_msg(st == 0, "%s: child ended with %d (-1: hung, >=128: "
                  "signal)", what, st);
    atomic_fetch_add(&counts->ran, 1);
}

/* ------------------------------------------------------------- helpers */

static char case_dir[256];    /* a private directory of the case */

static void case_setup(void)
{
    snprintf(case_dir, sizeof case_dir, "/tmp/t-env-case.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(case_dir));
}

static void case_teardown(void)
{
    umount2(case_dir, MNT_DETACH);   /* in case a child's mount leaked */
    if (case_dir[0])
        t_rm_tree(case_dir);
}

static void opts(mempool_options *o, uint64_t arena, const char *spill)
{
    t_options(o, arena);
    o->spill_dir = spill;
    o->evict_wait_ms = 10;
}

/* Set @p n objects of @p len bytes (t_fill(seed + i)) into @p r. */
static int set_many(mempool *p, mempool_dref *r, int n, size_t len,
                    uint64_t seed)
{
    void *buf = malloc(len);
    int rc = 0;

    T_CHILD_ASSERT(buf != NULL);
    for (int i = 0; i < n && rc == 0; i++) {
        t_fill(buf, len, seed + (uint64_t)i);
        rc = mempool_put(p, buf, len, &r[i]);
    }
    free(buf);
    return rc;
}

/* Get @p r and check its bytes are t_fill(seed) of @p len. */
static void verify(mempool *p, mempool_dref r, size_t len, uint64_t seed)
{
    mempool_view v;

    CHILD_RC(mempool_get(p, r, &v), 0);
    T_CHILD_EQ(v.len, len);
    T_CHILD_ASSERT(t_check_fill(v.data, len, seed));
    CHILD_RC(mempool_release(p, &v), 0);
}

static void healthy(mempool *p)
{
    char why[256] = "";
    int rc = mempool_check(p, why, sizeof why);

    if (rc) {
        fprintf(stderr, "child %d: mempool_check = %d: %s\n", (int)getpid(),
                rc, why);
        _exit(1);
    }
}

static uint32_t state_of(mempool *p, mempool_dref r)
{
    mempool_info in;

    CHILD_RC(mempool_info_get(p, r, &in), 0);
    return in.state;
}

/* Files in @p dir whose name ends in @p suffix (NULL: all but . and ..). */
static int count_files(const char *dir, const char *suffix)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int n = 0;

    if (!d)
        return 0;
    while ((de = readdir(d))) {
        size_t l = strlen(de->d_name), s = suffix ? strlen(suffix) : 0;
        if (de->d_name[0] == '.' && (l == 1 || (l == 2 && de->d_name[1] == '.')))
            continue;
        if (!suffix || (l >= s && !strcmp(de->d_name + l - s, suffix)))
            n++;
    }
    closedir(d);
    return n;
}

/* Become uid/gid 65534 with no capabilities; false if that did not work. */
static bool become_nobody(void)
{
    if (setgroups(0, NULL) != 0 || setgid(NOBODY) != 0 ||
        setuid(NOBODY) != 0)
        return false;
    return getuid() == NOBODY && geteuid() == NOBODY;
}

/* A private mount namespace whose mounts do not propagate back. */
static bool private_mounts(void)
{
    return unshare(CLONE_NEWNS) == 0 &&
           mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0;
}

/* The common spill scenario: 8 x 32 KiB under a 64 KiB limit. */
static void spill_scenario(const char *name, const char *dir, char *backend,
                           size_t blen)
{
    mempool_options o;
    struct mempool_stats s;
    mempool_dref r[8];
    mempool *p;

    opts(&o, 16 * MiB, dir);
    o.max_memsize = 64 * KiB;
    CHILD_RC(mempool_open(name, &o, &p), 0);
    CHILD_RC(set_many(p, r, 8, 32 * KiB, 100), 0);
    CHILD_RC(mempool_flush(p), 0);
    CHILD_RC(mempool_stats_get(p, &s), 0);
    T_CHILD_ASSERT(s.spills >= 6);
    T_CHILD_ASSERT(s.resident_bytes <= 64 * KiB);
    for (int i = 0; i < 8; i++)
        verify(p, r[i], 32 * KiB, 100 + (uint64_t)i);
    snprintf(backend, blen, "%s", s.io_backend);
    healthy(p);
    mempool_close(p);
    CHILD_RC(mempool_destroy(name), 0);
}

/* ---------------------------------------------------- seccomp (S35) */

static int seccomp_child(void *arg)
{
    const char *name = arg;
    char backend[16];

#if defined(__x86_64__)
    if (t_deny_uring_setup(EPERM) != 0)
        CHILD_SKIP("seccomp: cannot install a seccomp filter: %s",
                   strerror(errno));
    if (syscall(__NR_io_uring_setup, 4, NULL) != -1 || errno != EPERM)
        CHILD_SKIP("seccomp: the filter does not deny io_uring_setup");
    spill_scenario(name, case_dir, backend, sizeof backend);
    T_CHILD_ASSERT(strcmp(backend, "pwrite") == 0);
    return 0;
#else
    (void)name;
    (void)backend;
    CHILD_SKIP("seccomp: the filter is written for x86-64 only");
#endif
}

START_TEST(test_seccomp)
{
    char name[T_NAME_LEN];

    t_pool_name(name, "env");
    run_case("seccomp", seccomp_child, name, 60);
    mempool_destroy(name);
}
END_TEST

/* ----------------------------------------------------- memlock (S37) */

static bool drop_ipc_lock(void)
{
    struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct d[2];
    unsigned word = CAP_IPC_LOCK / 32, bit = 1u << (CAP_IPC_LOCK % 32);

    memset(d, 0, sizeof d);
    if (syscall(SYS_capget, &h, d) != 0)
        return false;
    d[word].effective &= ~bit;
    d[word].permitted &= ~bit;
    d[word].inheritable &= ~bit;
    prctl(PR_CAPBSET_DROP, CAP_IPC_LOCK, 0, 0, 0);
    if (syscall(SYS_capset, &h, d) != 0)
        return false;
    memset(d, 0, sizeof d);
    return syscall(SYS_capget, &h, d) == 0 && !(d[word].effective & bit);
}

static const char *memlock_name;

static int memlock_child(void *arg)
{
    int variant = (int)(intptr_t)arg;
    struct rlimit rl = { 64 * KiB, 64 * KiB };
    char backend[16];

    if (variant == 1 && chown(case_dir, NOBODY, NOBODY) != 0)
        CHILD_SKIP("memlock: chown: %s", strerror(errno));
    if (setrlimit(RLIMIT_MEMLOCK, &rl) != 0)
        CHILD_SKIP("memlock: setrlimit(RLIMIT_MEMLOCK): %s", strerror(errno));
    if (variant == 0 && !drop_ipc_lock())
        CHILD_SKIP("memlock: cannot drop CAP_IPC_LOCK (capset)");
    if (variant == 1 && !become_nobody())
        CHILD_SKIP("memlock: cannot become uid %d", NOBODY);
    spill_scenario(memlock_name, case_dir, backend, sizeof backend);
    fprintf(stderr, "check_env: memlock (%s): spilled with %s\n",
            variant ? "uid 65534" : "root without CAP_IPC_LOCK", backend);
    return 0;
}

START_TEST(test_memlock)
{
    char name[T_NAME_LEN];

    memlock_name = t_pool_name(name, "env");
    run_case(_i ? "memlock (uid 65534)" : "memlock (no CAP_IPC_LOCK)",
             memlock_child, (void *)(intptr_t)_i, 60);
    mempool_destroy(name);
}
END_TEST

/* --------------------------------------------------- shm_small (S6) */

static const char *shm_name;

static bool shm_has(const char *name)
{
    char pfx[T_NAME_LEN + 16];
    DIR *d = opendir("/dev/shm");
    struct dirent *de;
    bool found = false;

    snprintf(pfx, sizeof pfx, "mempool.%s", name);
    while (d && (de = readdir(d)))
        if (!strncmp(de->d_name, pfx, strlen(pfx)))
            found = true;
    if (d)
        closedir(d);
    return found;
}

/* Write a file in /dev/shm until the tmpfs is full. */
static int fill_shm(const char *path)
{
    static char chunk[64 * 1024];
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

    if (fd < 0)
        return -1;
    memset(chunk, 0x5a, sizeof chunk);
    while (write(fd, chunk, sizeof chunk) > 0)
        ;
    /* the last partial page too */
    while (write(fd, chunk, 4096) > 0)
        ;
    close(fd);
    return 0;
}

struct racer {
    char name[T_NAME_LEN];
    int go, go_w;                /* the write end closed by all = go */
};

static int racer_child(void *arg)
{
    struct racer *rc = arg;
    mempool_options o;
    mempool_dref r;
    mempool *p;
    int ret;

    close(rc->go_w);
    opts(&o, 9 * MiB, case_dir);
    o.flags |= MEMPOOL_OPEN_RESERVE;   /* the whole arena at open */
    T_CHILD_EQ(t_wait_fd(rc->go, T_WAIT_S), 0);
    ret = mempool_open(rc->name, &o, &p);
    if (ret == -ENOSPC)
        return 3;
    CHILD_RC(ret, 0);
    CHILD_RC(set_many(p, &r, 1, 1 * MiB, 7), 0);
    verify(p, r, 1 * MiB, 7);
    healthy(p);
    mempool_close(p);
    return 0;
}

static int shm_small_child(void *arg)
{
    char n64[T_NAME_LEN + 8], filler[] = "/dev/shm/t-env-filler";
    struct racer ra[2];
    mempool_options o;
    mempool_dref r[8], keep;
    mempool *p;
    int go[2], st[2], won = -1;
    uint64_t freed;

    (void)arg;
    if (!private_mounts())
        CHILD_SKIP("shm_small: no private mount namespace: %s",
                   strerror(errno));
    if (mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV,
              "size=16m,mode=1777") != 0)
        CHILD_SKIP("shm_small: cannot mount a tmpfs on /dev/shm: %s",
                   strerror(errno));
    /* 64 MiB in 16: -ENOSPC, no file, and we are still here (no SIGBUS) */
    snprintf(n64, sizeof n64, "%s-64", shm_name);
    opts(&o, 64 * MiB, case_dir);
    p = NULL;
    CHILD_RC(mempool_open(n64, &o, &p), -ENOSPC);
    T_CHILD_ASSERT(p == NULL);
    T_CHILD_EQ(count_files("/dev/shm", NULL), 0);
    /* 15 MiB: passes the free-space check only just */
    opts(&o, 15 * MiB, case_dir);
    if (mempool_open(n64, &o, &p) == 0) {
        mempool_close(p);
        CHILD_RC(mempool_destroy(n64), 0);
    }
    T_CHILD_EQ(count_files("/dev/shm", NULL), 0);
    /* 8 MiB works */
    opts(&o, 8 * MiB, case_dir);
    CHILD_RC(mempool_open(shm_name, &o, &p), 0);
    CHILD_RC(set_many(p, &keep, 1, 1 * MiB, 1), 0);
    CHILD_RC(set_many(p, r, 4, 1 * MiB, 10), 0);
    for (int i = 0; i < 4; i++)
        CHILD_RC(mempool_delete(p, r[i]), 0);
    /* give 4 MiB back, let someone else take /dev/shm: the next set that
     * needs those pages is -ENOSPC, not SIGBUS */
    freed = (uint64_t)mempool_trim(p);
    T_CHILD_ASSERT(freed >= 4 * MiB);
    T_CHILD_EQ(fill_shm(filler), 0);
    CHILD_RC(set_many(p, r, 1, 2 * MiB, 20), -ENOSPC);
    verify(p, keep, 1 * MiB, 1);
    healthy(p);
    unlink(filler);
    CHILD_RC(set_many(p, r, 1, 2 * MiB, 20), 0);
    verify(p, r[0], 2 * MiB, 20);
    verify(p, keep, 1 * MiB, 1);
    healthy(p);
    mempool_close(p);
    CHILD_RC(mempool_destroy(shm_name), 0);
    T_CHILD_EQ(count_files("/dev/shm", NULL), 0);
    /* two creators race for room for one: one pool, one -ENOSPC */
    t_pipe(go);
    for (int i = 0; i < 2; i++) {
        snprintf(ra[i].name, sizeof ra[i].name, "%s-r%d", shm_name, i);
        ra[i].go = go[0];
        ra[i].go_w = go[1];
        st[i] = (int)t_fork(racer_child, &ra[i]);
    }
    close(go[1]);
    for (int i = 0; i < 2; i++) {
        st[i] = t_wait((pid_t)st[i], T_WAIT_S);
        T_CHILD_ASSERT(st[i] == 0 || st[i] == 3);
        if (st[i] == 0)
            won = i;
    }
    /* Both may lose: their fallocates ran at once and each got only part
     * of the room (tmpfs undoes a failed fallocate). Never both win. */
    if (st[0] + st[1] == 0) {
        fprintf(stderr, "child: two 9 MiB arenas in a 16 MiB /dev/shm\n");
        _exit(1);
    }
    /* A pool is two files: its arena and its lock file (lockfile.c). */
    T_CHILD_EQ(count_files("/dev/shm", NULL), won >= 0 ? 2 : 0);
    if (won >= 0) {
        T_CHILD_ASSERT(shm_has(ra[won].name));
        T_CHILD_ASSERT(!shm_has(ra[!won].name));  /* no #init leftover */
        CHILD_RC(mempool_destroy(ra[won].name), 0);
    } else {
        fprintf(stderr, "check_env: shm_small: both racing creators got "
                "-ENOSPC\n");
    }
    /* alone, the same pool fits */
    ra[0].go_w = -1;
    close(go[0]);
    t_pipe(go);
    ra[0].go = go[0];
    close(go[1]);
    T_CHILD_EQ(t_wait(t_fork(racer_child, &ra[0]), T_WAIT_S), 0);
    T_CHILD_EQ(count_files("/dev/shm", NULL), 2);    /* arena, lock file */
    CHILD_RC(mempool_destroy(ra[0].name), 0);
    return 0;
}

START_TEST(test_shm_small)
{
    char name[T_NAME_LEN];

    shm_name = t_pool_name(name, "env");
    run_case("shm_small", shm_small_child, NULL, 120);
    mempool_destroy(name);      /* in the host's /dev/shm: nothing, or a
                                   leak of a failed case */
}
END_TEST

/* ----------------------------------------------- spill_full (S31) */

static const char *full_name;

static int spill_full_child(void *arg)
{
    char pooldir[512];
    mempool_options o;
    struct mempool_stats s;
    mempool_dref r[64], more[3];
    bool dead[64] = { false };
    mempool *p, *q;
    int n = 0, rc = 0, spilled = 0, freed = 0;

    (void)arg;
    if (!private_mounts())
        CHILD_SKIP("spill_full: no private mount namespace: %s",
                   strerror(errno));
    if (mount("tmpfs", case_dir, "tmpfs", MS_NOSUID | MS_NODEV,
              "size=1m,mode=0700") != 0)
        CHILD_SKIP("spill_full: cannot mount a tmpfs: %s", strerror(errno));
    opts(&o, 32 * MiB, case_dir);
    o.max_memsize = 256 * KiB;
    CHILD_RC(mempool_open(full_name, &o, &p), 0);
    snprintf(pooldir, sizeof pooldir, "%s/%s", case_dir, full_name);
    while (n < 64 && (rc = set_many(p, &r[n], 1, 100 * KiB,
                                    1000 + (uint64_t)n)) == 0)
        n++;
    /* a 1 MiB disk holds 9 files of 4 KiB + 100 KiB */
    T_CHILD_ASSERT(n >= 8 && n < 64);
    CHILD_RC(rc, -ENOSPC);
    CHILD_RC(mempool_stats_get(p, &s), 0);
    T_CHILD_ASSERT(s.resident_bytes <= 256 * KiB);   /* never overshot */
    T_CHILD_EQ(count_files(pooldir, ".tmp"), 0);
    /* Read everything through a second handle, closed before space is
     * freed below: a handle keeps idle mappings of files it read, and a
     * deleted file's space stays taken while one is mapped (see
     * test_deleted_space). */
    opts(&o, 32 * MiB, case_dir);
    o.flags = 0;
    CHILD_RC(mempool_open(full_name, &o, &q), 0);
    for (int i = 0; i < n; i++) {
        verify(q, r[i], 100 * KiB, 1000 + (uint64_t)i);
        spilled += state_of(q, r[i]) == MEMPOOL_STATE_DISK;
    }
    mempool_close(q);
    T_CHILD_ASSERT(spilled >= 8);
    /* a resident object cannot be moved either, and stays */
    for (int i = 0; i < n; i++) {
        if (!(state_of(p, r[i]) & MEMPOOL_STATE_MEMORY))
            continue;
        CHILD_RC(mempool_move_to_disk(p, r[i], NULL), -ENOSPC);
        T_CHILD_ASSERT(state_of(p, r[i]) & MEMPOOL_STATE_MEMORY);
        verify(p, r[i], 100 * KiB, 1000 + (uint64_t)i);
        break;
    }
    T_CHILD_EQ(count_files(pooldir, ".tmp"), 0);
    healthy(p);
    /* free space (deleting spilled objects removes their files): spilling
     * resumes */
    for (int i = 0; i < n && freed < 3; i++) {
        if (state_of(p, r[i]) != MEMPOOL_STATE_DISK)
            continue;
        CHILD_RC(mempool_delete(p, r[i]), 0);
        dead[i] = true;
        freed++;
    }
    T_CHILD_EQ(freed, 3);
    CHILD_RC(set_many(p, more, 3, 100 * KiB, 5000), 0);
    for (int i = 0; i < n; i++)
        if (!dead[i])
            verify(p, r[i], 100 * KiB, 1000 + (uint64_t)i);
    for (int i = 0; i < 3; i++)
        verify(p, more[i], 100 * KiB, 5000 + (uint64_t)i);
    T_CHILD_EQ(count_files(pooldir, ".tmp"), 0);
    healthy(p);
    mempool_close(p);
    CHILD_RC(mempool_destroy(full_name), 0);
    return 0;
}

START_TEST(test_spill_full)
{
    char name[T_NAME_LEN];

    full_name = t_pool_name(name, "env");
    run_case("spill_full", spill_full_child, NULL, 120);
    mempool_destroy(name);
}
END_TEST

/* A spilled object that was read and then deleted: its file is removed,
 * and its disk space must come back (mapcache.c: "unless its object is
 * gone, in which case it is unmapped at once so a deleted file's space is
 * returned"), or a full disk never drains. */
static const char *space_name;

static uint64_t fs_avail(const char *dir)
{
    struct statvfs v;

    T_CHILD_EQ(statvfs(dir, &v), 0);
    return (uint64_t)v.f_bavail * v.f_frsize;
}

static int deleted_space_child(void *arg)
{
    mempool_options o;
    mempool_dref r;
    mempool_view v;
    mempool *p;
    uint64_t start, spilled, after;

    (void)arg;
    if (!private_mounts())
        CHILD_SKIP("deleted_space: no private mount namespace: %s",
                   strerror(errno));
    if (mount("tmpfs", case_dir, "tmpfs", MS_NOSUID | MS_NODEV,
              "size=4m,mode=0700") != 0)
        CHILD_SKIP("deleted_space: cannot mount a tmpfs: %s",
                   strerror(errno));
    opts(&o, 16 * MiB, case_dir);
    CHILD_RC(mempool_open(space_name, &o, &p), 0);
    CHILD_RC(set_many(p, &r, 1, 512 * KiB, 77), 0);
    start = fs_avail(case_dir);
    CHILD_RC(mempool_move_to_disk(p, r, NULL), 0);
    spilled = fs_avail(case_dir);
    T_CHILD_ASSERT(spilled + 512 * KiB <= start);
    CHILD_RC(mempool_get(p, r, &v), 0);
    CHILD_RC(mempool_release(p, &v), 0);
    CHILD_RC(mempool_delete(p, r), 0);
    after = fs_avail(case_dir);
    if (after + 64 * KiB < start) {
        fprintf(stderr, "child: deleted spilled object still holds %llu KiB "
                "of the spill file system (free %llu KiB, was %llu KiB) "
                "until the handle closes\n",
                (unsigned long long)((start - after) / KiB),
                (unsigned long long)(after / KiB),
                (unsigned long long)(start / KiB));
        _exit(1);
    }
    mempool_close(p);
    CHILD_RC(mempool_destroy(space_name), 0);
    return 0;
}

START_TEST(test_deleted_space)
{
    char name[T_NAME_LEN];

    space_name = t_pool_name(name, "env");
    run_case("deleted_space", deleted_space_child, NULL, 60);
    mempool_destroy(name);
}
END_TEST

/* ----------------------------------------------- unwritable (S45) */

static const char *unw_name;

/* Can this process still write where the mode says it may not? */
static bool modes_bind(void)
{
    char probe[300];
    int fd;

    snprintf(probe, sizeof probe, "%s/probe", case_dir);
    mkdir(probe, 0500);
    snprintf(probe, sizeof probe, "%s/probe/x", case_dir);
    fd = open(probe, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0) {
        close(fd);
        return false;
    }
    snprintf(probe, sizeof probe, "%s/probe", case_dir);
    rmdir(probe);
    return errno == EACCES;
}

static int unwritable_child(void *arg)
{
    char spill[300], pooldir[600];
    mempool_options o;
    mempool_dref r[6], extra;
    mempool *p;
    int rc;

    (void)arg;
    snprintf(spill, sizeof spill, "%s/spill", case_dir);
    if (mkdir(spill, 0700) != 0)
        CHILD_SKIP("unwritable: mkdir: %s", strerror(errno));
    if (geteuid() == 0) {       /* root ignores modes: become someone */
        if (chown(spill, NOBODY, NOBODY) != 0 ||
            chown(case_dir, NOBODY, NOBODY) != 0)
            CHILD_SKIP("unwritable: cannot give a directory to uid %d",
                       NOBODY);
        if (!become_nobody())
            CHILD_SKIP("unwritable: cannot become uid %d", NOBODY);
    }
    if (!modes_bind())
        CHILD_SKIP("unwritable: directory modes do not bind this process");
    snprintf(pooldir, sizeof pooldir, "%s/%s", spill, unw_name);
    opts(&o, 16 * MiB, spill);
    o.max_memsize = 64 * KiB;
    CHILD_RC(chmod(spill, 0500), 0);
    CHILD_RC(mempool_open(unw_name, &o, &p), 0);
    /* the pool's directory cannot be made: the spilling set fails */
    CHILD_RC(set_many(p, r, 2, 32 * KiB, 1), 0);
    rc = set_many(p, &r[2], 1, 32 * KiB, 3);
    CHILD_RC(rc, -EACCES);
    CHILD_RC(mempool_move_to_disk(p, r[0], NULL), -EACCES);
    verify(p, r[0], 32 * KiB, 1);
    verify(p, r[1], 32 * KiB, 2);
    T_CHILD_ASSERT(state_of(p, r[0]) & MEMPOOL_STATE_MEMORY);
    healthy(p);
    /* writable again: spilling resumes */
    CHILD_RC(chmod(spill, 0700), 0);
    CHILD_RC(set_many(p, &r[2], 1, 32 * KiB, 3), 0);
    T_CHILD_ASSERT(state_of(p, r[0]) == MEMPOOL_STATE_DISK);
    /* now the pool's own directory loses write permission */
    CHILD_RC(chmod(pooldir, 0500), 0);
    rc = set_many(p, &extra, 1, 32 * KiB, 9);
    CHILD_RC(rc, -EACCES);
    CHILD_RC(mempool_move_to_disk(p, r[2], NULL), -EACCES);
    T_CHILD_EQ(count_files(pooldir, ".tmp"), 0);
    for (int i = 0; i < 3; i++)
        verify(p, r[i], 32 * KiB, 1 + (uint64_t)i);     /* disk and memory */
    healthy(p);
    CHILD_RC(chmod(pooldir, 0700), 0);
    CHILD_RC(set_many(p, &r[3], 1, 32 * KiB, 4), 0);
    for (int i = 0; i < 4; i++)
        verify(p, r[i], 32 * KiB, 1 + (uint64_t)i);
    healthy(p);
    mempool_close(p);
    CHILD_RC(mempool_destroy(unw_name), 0);
    return 0;
}

START_TEST(test_unwritable)
{
    char name[T_NAME_LEN];

    unw_name = t_pool_name(name, "env");
    run_case("unwritable", unwritable_child, NULL, 60);
    mempool_destroy(name);
}
END_TEST

/* ------------------------------------------------------ symlinks */

static const char *sym_name;

static uint32_t crc32c(const void *buf, size_t len)
{
    const uint8_t *p = buf;
    uint32_t c = ~0u;

    while (len--) {
        c ^= *p++;
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
    }
    return ~c;
}

struct decoy {
    char path[4200];
    uint64_t sum;
    off_t size;
};

static void decoy_make(struct decoy *d, const char *path, size_t len)
{
    char *b = malloc(len);
    int fd;

    T_CHILD_ASSERT(b != NULL);
    memset(b, 'D', len);
    snprintf(d->path, sizeof d->path, "%s", path);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    T_CHILD_ASSERT(fd >= 0 && write(fd, b, len) == (ssize_t)len);
    close(fd);
    d->sum = t_fnv1a(b, len);
    d->size = (off_t)len;
    free(b);
}

static void decoy_intact(const struct decoy *d)
{
    struct stat st;
    char *b;
    int fd;

    T_CHILD_ASSERT(lstat(d->path, &st) == 0 && S_ISREG(st.st_mode));
    T_CHILD_EQ(st.st_size, d->size);
    b = malloc((size_t)st.st_size);
    fd = open(d->path, O_RDONLY | O_CLOEXEC);
    T_CHILD_ASSERT(b && fd >= 0 &&
                   read(fd, b, (size_t)st.st_size) == st.st_size);
    close(fd);
    T_CHILD_ASSERT(t_fnv1a(b, (size_t)st.st_size) == d->sum);
    free(b);
}

/* The spill file name "<idx>-<gen>" of @p r, given the table's offset. */
static void file_name_of(mempool_dref r, uint64_t table, char *buf,
                         size_t len)
{
    snprintf(buf, len, "%llu-%u",
             (unsigned long long)(((r.off & MEMPOOL_DREF_ENTRY_BITS) - table) / 64), (uint32_t)r.gen);
}

static mempool *sym_open(const char *name, const char *spill)
{
    mempool_options o;
    mempool *p;

    opts(&o, 16 * MiB, spill);
    CHILD_RC(mempool_open(name, &o, &p), 0);
    return p;
}

static int symlinks_child(void *arg)
{
    static char spill[300], decoys[300], pooldir[4096], fname[64],
        path[4200], tmpname[4400], evil[400], name2[T_NAME_LEN + 8],
        ddir[400];
    mempool_fileref f;
    mempool_dref y, x, x2, x3;
    mempool_view v;
    struct decoy dec, devil;
    struct stat st;
    uint64_t table, idx;
    mempool *p, *q;
    int rc, fd;

    (void)arg;
    snprintf(spill, sizeof spill, "%s/spill", case_dir);
    snprintf(decoys, sizeof decoys, "%s/decoys", case_dir);
    T_CHILD_ASSERT(mkdir(spill, 0700) == 0 && mkdir(decoys, 0700) == 0);
    snprintf(path, sizeof path, "%s/decoy", decoys);
    decoy_make(&dec, path, 8192);
    p = sym_open(sym_name, spill);
    /* where files go, and the table's offset (from one real file) */
    CHILD_RC(set_many(p, &y, 1, 100, 1), 0);
    CHILD_RC(mempool_copy_to_disk(p, y, &f), 0);
    snprintf(tmpname, sizeof tmpname, "%s", f.path);
    snprintf(pooldir, sizeof pooldir, "%s", dirname(tmpname));
    T_CHILD_ASSERT(sscanf(strrchr(f.path, '/') + 1, "%llu-",
                          (unsigned long long *)&idx) == 1);
    table = (y.off & MEMPOOL_DREF_ENTRY_BITS) - idx * 64;

    /* A: a symlink at the final name is replaced, never followed */
    CHILD_RC(set_many(p, &x, 1, 5000, 2), 0);
    file_name_of(x, table, fname, sizeof fname);
    snprintf(path, sizeof path, "%s/%s", pooldir, fname);
    T_CHILD_ASSERT(symlink(dec.path, path) == 0);
    rc = mempool_move_to_disk(p, x, &f);
    decoy_intact(&dec);
    if (rc == 0) {
        T_CHILD_ASSERT(lstat(path, &st) == 0 && S_ISREG(st.st_mode));
        T_CHILD_ASSERT(state_of(p, x) == MEMPOOL_STATE_DISK);
    } else {
        fprintf(stderr, "check_env: symlink at the final name: move_to_disk "
                "= %d (%s)\n", rc, mempool_strerror(rc));
        T_CHILD_ASSERT(state_of(p, x) & MEMPOOL_STATE_MEMORY);
        unlink(path);
    }
    verify(p, x, 5000, 2);

    /* B: a symlink at the .tmp name: the write fails, nothing is lost */
    CHILD_RC(set_many(p, &x2, 1, 6000, 3), 0);
    file_name_of(x2, table, fname, sizeof fname);
    snprintf(tmpname, sizeof tmpname, "%s/%s.tmp", pooldir, fname);
    T_CHILD_ASSERT(symlink(dec.path, tmpname) == 0);
    rc = mempool_move_to_disk(p, x2, NULL);
    decoy_intact(&dec);
    if (rc == 0) {
        /* replaced safely is fine too - but then not through the link */
        T_CHILD_ASSERT(state_of(p, x2) == MEMPOOL_STATE_DISK);
    } else {
        T_CHILD_ASSERT(state_of(p, x2) & MEMPOOL_STATE_MEMORY);
        fprintf(stderr, "check_env: symlink at the .tmp name: move_to_disk "
                "= %d (%s); the object stays in memory\n", rc,
                mempool_strerror(rc));
    }
    /* the link may be gone (unlinked, not followed) or still there */
    T_CHILD_ASSERT(lstat(tmpname, &st) != 0 || S_ISLNK(st.st_mode));
    verify(p, x2, 6000, 3);
    healthy(p);
    unlink(tmpname);
    CHILD_RC(mempool_move_to_disk(p, x2, NULL), 0);   /* spilling resumes */
    verify(p, x2, 6000, 3);

    /* C: a spilled object's file replaced by a symlink to a forged, valid
     * file of the same identity: get must not serve the forged bytes */
    CHILD_RC(set_many(p, &x3, 1, 3000, 4), 0);
    CHILD_RC(mempool_move_to_disk(p, x3, &f), 0);
    {
        uint8_t *b = malloc(4096 + 3000);
        uint32_t c, z = 0;

        T_CHILD_ASSERT(b != NULL);
        fd = open(f.path, O_RDONLY | O_CLOEXEC);
        T_CHILD_ASSERT(fd >= 0 && read(fd, b, 4096 + 3000) == 4096 + 3000);
        close(fd);
        memset(b + 4096, 'E', 3000);                   /* evil payload */
        c = crc32c(b + 4096, 3000);             /* its one chunk's crc */
        memcpy(b + 64, &c, 4);
        memcpy(b + 60, &z, 4);
        c = crc32c(b, 4096);
        memcpy(b + 60, &c, 4);
        snprintf(evil, sizeof evil, "%s/evil", decoys);
        fd = open(evil, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        T_CHILD_ASSERT(fd >= 0 && write(fd, b, 4096 + 3000) == 4096 + 3000);
        close(fd);
        devil.sum = t_fnv1a(b, 4096 + 3000);
        devil.size = 4096 + 3000;
        snprintf(devil.path, sizeof devil.path, "%s", evil);
        free(b);
    }
    snprintf(path, sizeof path, "%s", f.path);
    T_CHILD_ASSERT(unlink(path) == 0 && symlink(evil, path) == 0);
    q = sym_open(sym_name, spill);               /* no cached mapping */
    rc = mempool_get(q, x3, &v);
    if (rc == 0) {
        fprintf(stderr, "child: get through a planted symlink served %s "
                "bytes\n", ((const char *)v.data)[0] == 'E' ? "the forged"
                                                             : "some");
        _exit(1);
    }
    T_CHILD_EQ(rc, MEMPOOL_ECORRUPT);
    decoy_intact(&devil);
    mempool_close(q);
    /* control: the same bytes as a regular file are accepted (so it was
     * the symlink that was refused, not the content) */
    T_CHILD_ASSERT(unlink(path) == 0);
    {
        static char cmd[9000];
        snprintf(cmd, sizeof cmd, "cp '%s' '%s'", evil, path);
        T_CHILD_EQ(system(cmd), 0);
    }
    q = sym_open(sym_name, spill);
    CHILD_RC(mempool_get(q, x3, &v), 0);
    T_CHILD_ASSERT(((const char *)v.data)[0] == 'E');
    CHILD_RC(mempool_release(q, &v), 0);
    mempool_close(q);
    mempool_close(p);
    CHILD_RC(mempool_destroy(sym_name), 0);

    /* D: the pool's directory itself planted as a symlink */
    snprintf(name2, sizeof name2, "%s-d", sym_name);
    snprintf(ddir, sizeof ddir, "%s/ddir", decoys);
    T_CHILD_ASSERT(mkdir(ddir, 0700) == 0);
    snprintf(path, sizeof path, "%s/%s", spill, name2);
    T_CHILD_ASSERT(symlink(ddir, path) == 0);
    p = sym_open(name2, spill);
    CHILD_RC(set_many(p, &x, 1, 5000, 5), 0);
    rc = mempool_move_to_disk(p, x, NULL);
    T_CHILD_ASSERT(rc != 0);
    fprintf(stderr, "check_env: symlinked pool directory: move_to_disk = %d "
            "(%s)\n", rc, mempool_strerror(rc));
    T_CHILD_EQ(count_files(ddir, NULL), 0);
    T_CHILD_ASSERT(state_of(p, x) & MEMPOOL_STATE_MEMORY);
    verify(p, x, 5000, 5);
    healthy(p);
    mempool_close(p);
    CHILD_RC(mempool_destroy(name2), 0);
    T_CHILD_ASSERT(lstat(path, &st) != 0 || S_ISLNK(st.st_mode));
    T_CHILD_EQ(count_files(ddir, NULL), 0);
    decoy_intact(&dec);
    return 0;
}

START_TEST(test_symlinks)
{
    char name[T_NAME_LEN];

    sym_name = t_pool_name(name, "env");
    run_case("symlinks", symlinks_child, NULL, 60);
    mempool_destroy(name);
}
END_TEST

/* ------------------------------------------------------------------ */

static Suite *env_suite(void)
{
    Suite *s = suite_create("env");
    TCase *tc = tcase_create("env");

    tcase_add_checked_fixture(tc, case_setup, case_teardown);
    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, test_seccomp);
    tcase_add_loop_test(tc, test_memlock, 0, 2);
    tcase_add_test(tc, test_shm_small);
    tcase_add_test(tc, test_spill_full);
    tcase_add_test(tc, test_deleted_space);
    tcase_add_test(tc, test_unwritable);
    tcase_add_test(tc, test_symlinks);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    int rc;

    counts = mmap(NULL, sizeof *counts, PROT_READ | PROT_WRITE,
                  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (counts == MAP_FAILED)
        return 1;
    rc = t_run(env_suite(), "env");
    fprintf(stderr, "check_env: %d case(s) ran, %d skipped here\n",
            atomic_load(&counts->ran), atomic_load(&counts->skipped));
    if (rc == 0 && atomic_load(&counts->ran) == 0)
        return 77;
    return rc;
}
