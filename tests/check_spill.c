/* SPDX-License-Identifier: MIT */
/*
 * check_spill.c - the spilling layer: per-worker memory and disk limits,
 * LRU/MRU victims, move/copy/save_to_disk, get_file, reads of spilled
 * objects from other processes, corrupt spill files, I/O failpoints, the
 * io_uring -> pwrite fallback, and processes killed while they spill.
 *
 * REFERENCE.md section 4, as far as the API supports it:
 *   B7 (dry run E(n), emulated by one fresh pool per question), B9-B12,
 *   D19-D20 (D21/D22, RETAIN and tags, do not exist), E24-E27, E29, E30,
 *   E32-E34, F35 (unwritable directory; there is no RETAIN set), F36, F37,
 *   G39-G41. Scenarios that talk about "order" check it destructively at
 *   the end with assert_order(): lower the owner's limit step by step and
 *   watch which object each 0-byte set spills.
 *
 * Every test gets its own spill directory (mkdtemp inside the suite's, so
 * the suite's sweep removes it even when a test dies before its teardown)
 * and its own pool; handles are opened with spiller = 0 unless the test is
 * about the background spiller, so nothing but the test moves objects.
 * The main scenarios run under both I/O backends (loop index: io_mode, or
 * policy + 2 * io_mode). Failpoints (MEMPOOL_FAILPOINT) and seccomp filters
 * are only ever set in forked children.
 *
 * The binary doubles as the "unrelated process" of the exec test:
 * check_spill --peer-get <pool> <dref> <len> <sum-hex> attaches and reads a
 * spilled object (tests/t_peer insists on MEMPOOL_VIEW_MEMORY).
 */
#include "t_seccomp.h"
#include "helpers.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/io_uring.h>

#define SMALL_ARENA (4 * MiB)
#define FILE_HDR 4096u

#define ST_MEM  MEMPOOL_STATE_MEMORY
#define ST_DISK MEMPOOL_STATE_DISK
#define ST_BOTH (MEMPOOL_STATE_MEMORY | MEMPOOL_STATE_DISK)
#define ST_GONE 0x100u
#define V_MEM   MEMPOOL_VIEW_MEMORY
#define V_DISK  MEMPOOL_VIEW_DISK

/* ------------------------------------------------------------ fixture */

static char sp_dir[256];                 /* this test's spill dir */
static char sp_name[T_NAME_LEN];         /* this test's pool */
static char sp_pdir[512];                /* sp_dir/sp_name: its files */
static char sp_extra[4][T_NAME_LEN];     /* more pools to destroy */
static int sp_nextra;
static mempool *sp_h[16];                /* handles to close */
static int sp_nh;

static void sp_setup(void)
{
    mempool_options o;
    const char *base;

    t_options(&o, T_ARENA_BYTES);
    base = o.spill_dir && o.spill_dir[0] == '/' ? o.spill_dir : "/tmp";
    snprintf(sp_dir, sizeof sp_dir, "%s/d.XXXXXX", base);
    ck_assert_msg(mkdtemp(sp_dir) != NULL, "mkdtemp(%s): %s", sp_dir,
                  strerror(errno));
    t_pool_name_fn(sp_name, NULL, "fx");
    snprintf(sp_pdir, sizeof sp_pdir, "%s/%s", sp_dir, sp_name);
    sp_nh = 0;
    sp_nextra = 0;
}

static void sp_teardown(void)
{
    while (sp_nh > 0)
        mempool_close(sp_h[--sp_nh]);
    (void)mempool_destroy(sp_name);
    while (sp_nextra > 0)
        (void)mempool_destroy(sp_extra[--sp_nextra]);
    if (sp_dir[0])
        t_rm_tree(sp_dir);
}

static TCase *sp_tcase(Suite *s, const char *name, double timeout)
{
    TCase *tc = tcase_create(name);

    tcase_add_checked_fixture(tc, sp_setup, sp_teardown);
    tcase_set_timeout(tc, timeout);
    suite_add_tcase(s, tc);
    return tc;
}

/* Options for this test's pools: private spill dir, no background spiller. */
static void sp_opts(mempool_options *o, uint64_t arena, uint64_t maxmem,
                    unsigned policy, unsigned io)
{
    t_options(o, arena);
    o->spill_dir = sp_dir;
    o->max_memsize = maxmem;
    o->policy = policy;
    o->io_mode = io;
    o->spiller = 0;
}

static mempool *sp_open_as(const char *name, const mempool_options *o)
{
    mempool *p = NULL;
    int rc = mempool_open(name, o, &p);

    ck_assert_msg(rc == 0, "mempool_open(%s) = %d (%s)", name, rc,
                  mempool_strerror(rc));
    ck_assert_int_lt(sp_nh, 16);
    sp_h[sp_nh++] = p;
    return p;
}

static mempool *sp_open(const mempool_options *o)
{
    return sp_open_as(sp_name, o);
}

/* Create this test's pool (W1). */
static mempool *sp_create(uint64_t arena, uint64_t maxmem, unsigned policy,
                          unsigned io)
{
    mempool_options o;

    sp_opts(&o, arena, maxmem, policy, io);
    return sp_open(&o);
}

/* Another handle (worker) on this test's pool in this process. */
static mempool *sp_attach(uint64_t maxmem, unsigned io)
{
    mempool_options o;

    sp_opts(&o, T_ARENA_BYTES, maxmem, MEMPOOL_POLICY_LRU, io);
    o.flags = 0;
    return sp_open(&o);
}

static void sp_close(mempool *p)
{
    for (int i = 0; i < sp_nh; i++) {
        if (sp_h[i] == p) {
            sp_h[i] = sp_h[--sp_nh];
            ASSERT_RC(mempool_close(p), 0);
            return;
        }
    }
    ck_abort_msg("sp_close: unknown handle");
}

static const char *sp_extra_name(void)
{
    ck_assert_int_lt(sp_nextra, 4);
    return t_pool_name_fn(sp_extra[sp_nextra++], NULL, "extra");
}

/* In a forked child: a handle of its own on pool @p name (attach). */
static mempool *child_open(const char *name, uint64_t maxmem, unsigned io,
                           uint32_t flags, uint32_t spiller)
{
    mempool_options o;
    mempool *p = NULL;
    int rc;

    sp_opts(&o, T_ARENA_BYTES, maxmem, MEMPOOL_POLICY_LRU, io);
    o.flags = flags;
    o.spiller = spiller;
    rc = mempool_open(name, &o, &p);
    if (rc != 0) {
        fprintf(stderr, "child %d: open %s: %s\n", (int)getpid(), name,
                mempool_strerror(rc));
        return NULL;
    }
    return p;
}

/* --------------------------------------------------------------- data */

static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* A fast pattern (8 bytes per step: objects here go up to 64 MiB). */
static void sp_fill(void *buf, size_t len, uint64_t seed)
{
    unsigned char *b = buf;
    size_t i;

    for (i = 0; i + 8 <= len; i += 8) {
        uint64_t w = mix(seed ^ (i * 0x100000001b3ull));

        memcpy(b + i, &w, 8);
    }
    if (i < len) {
        uint64_t w = mix(seed ^ (i * 0x100000001b3ull));

        memcpy(b + i, &w, len - i);
    }
}

static bool sp_check(const void *buf, size_t len, uint64_t seed)
{
    const unsigned char *b = buf;
    size_t i;

    for (i = 0; i + 8 <= len; i += 8) {
        uint64_t w = mix(seed ^ (i * 0x100000001b3ull));

        if (memcmp(b + i, &w, 8) != 0)
            return false;
    }
    if (i < len) {
        uint64_t w = mix(seed ^ (i * 0x100000001b3ull));

        return memcmp(b + i, &w, len - i) == 0;
    }
    return true;
}

/* A checksum of any bytes, 8 at a time. */
static uint64_t sp_sum(const void *buf, size_t len)
{
    const unsigned char *b = buf;
    uint64_t h = 0xcbf29ce484222325ull ^ len;
    size_t i;

    for (i = 0; i + 8 <= len; i += 8) {
        uint64_t w;

        memcpy(&w, b + i, 8);
        h = (h ^ w) * 0x100000001b3ull;
        h ^= h >> 29;
    }
    for (; i < len; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

/* --------------------------------------------------------- objects */

/* An untyped object of the int64s 1..n (REFERENCE's i64{1,..,n}). */
static mempool_dref set_i64(mempool *p, int owner, int n, uint32_t flags)
{
    int64_t v[16];
    mempool_set_options o = { owner, 0, flags };
    mempool_dref r;

    ck_assert_int_le(n, 16);
    for (int i = 0; i < n; i++)
        v[i] = i + 1;
    ASSERT_RC(mempool_set_ex(p, v, (size_t)n * 8, &o, &r), 0);
    return r;
}

/* Read i64{1..n} back through @p p; the view must have @p vflags. */
static void expect_i64(mempool *p, mempool_dref r, int n, uint32_t vflags)
{
    mempool_view v;

    ASSERT_RC(mempool_get(p, r, &v), 0);
    ck_assert_ptr_nonnull(v.data);
    ck_assert_uint_eq(v.len, (uint64_t)n * 8);
    ck_assert_msg(v.flags == vflags, "view flags %u, want %u", v.flags,
                  vflags);
    for (int i = 0; i < n; i++) {
        int64_t x;

        memcpy(&x, (const char *)v.data + 8 * i, 8);
        ck_assert_int_eq(x, i + 1);
    }
    ASSERT_RC(mempool_release(p, &v), 0);
}

static mempool_dref set_bytes(mempool *p, int owner, size_t len,
                              uint64_t seed, uint32_t flags)
{
    mempool_set_options o = { owner, 0, flags };
    unsigned char *buf = malloc(len ? len : 1);
    mempool_dref r;
    int rc;

    ck_assert_ptr_nonnull(buf);
    sp_fill(buf, len, seed);
    rc = mempool_set_ex(p, buf, len, &o, &r);
    free(buf);
    ASSERT_RC(rc, 0);
    return r;
}

static int try_set_bytes(mempool *p, int owner, size_t len, uint64_t seed,
                         mempool_dref *r)
{
    mempool_set_options o = { owner, 0, 0 };
    unsigned char *buf = malloc(len ? len : 1);
    int rc;

    if (!buf)
        return -ENOMEM;
    sp_fill(buf, len, seed);
    rc = mempool_set_ex(p, buf, len, &o, r);
    free(buf);
    return rc;
}

/* Read sp_fill(seed) bytes back; @p vflags 0 = either kind of view. */
static void expect_bytes(mempool *p, mempool_dref r, size_t len,
                         uint64_t seed, uint32_t vflags)
{
    mempool_view v;

    ASSERT_RC(mempool_get(p, r, &v), 0);
    ck_assert_ptr_nonnull(v.data);
    ck_assert_uint_eq(v.len, len);
    if (vflags)
        ck_assert_msg(v.flags == vflags, "view flags %u, want %u", v.flags,
                      vflags);
    ck_assert_msg(sp_check(v.data, len, seed), "bytes of seed %" PRIu64
                  " differ", seed);
    ASSERT_RC(mempool_release(p, &v), 0);
}

/* Any process: the object's state bits, or ST_GONE. */
static unsigned state_of(mempool *p, mempool_dref r)
{
    mempool_info in;

    return mempool_info_get(p, r, &in) == 0 ? in.state : ST_GONE;
}

#define ASSERT_STATE(p, r, want) \
    do { \
        unsigned st_ = state_of((p), (r)); \
        ck_assert_msg(st_ == (unsigned)(want), "state of %s is %#x, want %#x", \
                      #r, st_, (unsigned)(want)); \
    } while (0)

/* ------------------------------------------------------------- files */

/* Does @p n look like a spill file name ("<idx>-<gen>" or ".tmp")? */
static bool spill_name(const char *n, bool *tmp)
{
    const char *s = n;

    if (*s < '0' || *s > '9')
        return false;
    while (*s >= '0' && *s <= '9')
        s++;
    if (*s++ != '-' || *s < '0' || *s > '9')
        return false;
    while (*s >= '0' && *s <= '9')
        s++;
    *tmp = strcmp(s, ".tmp") == 0;
    return *s == '\0' || *tmp;
}

/* Spill files in @p dir (0 if it does not exist); *ntmp gets the temps. */
static int dir_files(const char *dir, int *ntmp)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0, t = 0;

    while (d && (e = readdir(d))) {
        bool tmp;

        if (spill_name(e->d_name, &tmp)) {
            if (tmp)
                t++;
            else
                n++;
        }
    }
    if (d)
        closedir(d);
    if (ntmp)
        *ntmp = t;
    return n;
}

#define ASSERT_FILES(dir, nfiles, ntmpfiles) \
    do { \
        int t_ = -1, n_ = dir_files((dir), &t_); \
        ck_assert_msg(n_ == (nfiles) && t_ == (ntmpfiles), \
                      "%s holds %d spill files and %d temps, want %d and %d", \
                      (dir), n_, t_, (int)(nfiles), (int)(ntmpfiles)); \
    } while (0)

static bool exists(const char *path)
{
    struct stat st;

    return lstat(path, &st) == 0;
}

static struct stat stat_of(const char *path)
{
    struct stat st;

    ck_assert_msg(stat(path, &st) == 0, "stat %s: %s", path, strerror(errno));
    return st;
}

/* The fileref must name "<sp_pdir>/<idx>-<gen>" of @p len payload bytes. */
static void check_fileref(const mempool_fileref *f, uint64_t len)
{
    size_t n = strlen(sp_pdir);
    bool tmp = true;
    struct stat st;

    ck_assert_msg(strncmp(f->path, sp_pdir, n) == 0 && f->path[n] == '/' &&
                  spill_name(f->path + n + 1, &tmp) && !tmp,
                  "fileref path %s is not a spill file of %s", f->path,
                  sp_pdir);
    ck_assert_uint_eq(f->len, len);
    st = stat_of(f->path);
    ck_assert(S_ISREG(st.st_mode));
    ck_assert_uint_eq((uint64_t)st.st_size, FILE_HDR + len);
}

static bool same_file(const struct stat *a, const struct stat *b)
{
    return a->st_ino == b->st_ino && a->st_dev == b->st_dev &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
           a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
           a->st_size == b->st_size;
}

/* Read a whole file into a malloc'd buffer. */
static unsigned char *slurp(const char *path, size_t *len)
{
    struct stat st = stat_of(path);
    unsigned char *b = malloc((size_t)st.st_size + 1);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    size_t got = 0;

    ck_assert_ptr_nonnull(b);
    ck_assert_int_ge(fd, 0);
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, b + got, (size_t)st.st_size - got);

        ck_assert_int_gt(r, 0);
        got += (size_t)r;
    }
    close(fd);
    *len = got;
    return b;
}

static void spit(const char *path, const void *buf, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

    ck_assert_msg(fd >= 0, "open %s: %s", path, strerror(errno));
    ck_assert_int_eq(write(fd, buf, len), (ssize_t)len);
    close(fd);
}

static void flip_byte(const char *path, off_t off)
{
    int fd = open(path, O_RDWR | O_CLOEXEC);
    unsigned char c;

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pread(fd, &c, 1, off), 1);
    c ^= 0x20;
    ck_assert_int_eq(pwrite(fd, &c, 1, off), 1);
    close(fd);
}

/* ------------------------------------------------------------ backends */

static bool uring_usable(void)
{
#ifdef __NR_io_uring_setup
    struct io_uring_params prm;
    long fd;

    memset(&prm, 0, sizeof prm);
    fd = syscall(__NR_io_uring_setup, 4, &prm);
    if (fd < 0)
        return false;
    close((int)fd);
    return true;
#else
    return false;
#endif
}

/* What stats.io_backend must say after a handle opened with @p io wrote. */
static const char *want_backend(unsigned io)
{
    const char *env = getenv("MEMPOOL_IO");

    if (io == MEMPOOL_IO_PWRITE || (env && strcmp(env, "pwrite") == 0) ||
        !uring_usable())
        return "pwrite";
    return "io_uring";
}

#define ASSERT_BACKEND(p, io) \
    do { \
        struct mempool_stats s_ = t_stats(p); \
        ck_assert_msg(strcmp(s_.io_backend, want_backend(io)) == 0, \
                      "io_backend '%s', want '%s'", s_.io_backend, \
                      want_backend(io)); \
    } while (0)

/* -------------------------------------------------------------- order */

/*
 * The owner's resident objects, most recent first, are r[0..n) (and
 * nothing else of anyone's is resident). Checked destructively: for each
 * victim in policy order (LRU: from the end, MRU: from the front) lower the
 * owner's limit by its size and set a 0-byte object charged to the owner;
 * exactly that victim must be spilled.
 */
static void assert_order(mempool *setter, mempool *owner, unsigned policy,
                         const mempool_dref *r, const uint64_t *len, int n)
{
    mempool_set_options o = { mempool_worker_id(owner), 0, 0 };
    bool gone[16] = { false };
    uint64_t total = 0;

    ck_assert_int_le(n, 16);
    for (int i = 0; i < n; i++)
        total += len[i];
    ck_assert_uint_eq(t_stats(setter).resident_bytes, total);
    for (int k = 0; k < n; k++) {
        int v = policy == MEMPOOL_POLICY_LRU ? n - 1 - k : k;
        uint64_t lim = total - len[v] ? total - len[v] : 1;
        mempool_dref z;

        ASSERT_RC(mempool_set_max_memsize(owner, lim), 0);
        ASSERT_RC(mempool_set_ex(setter, "", 0, &o, &z), 0);
        gone[v] = true;
        total -= len[v];
        for (int j = 0; j < n; j++) {
            unsigned st = state_of(setter, r[j]);

            ck_assert_msg(gone[j] ? st == ST_DISK : (st & ST_MEM) != 0,
                          "order: after spilling #%d (step %d) #%d has "
                          "state %#x", v, k, j, st);
        }
        ck_assert_uint_eq(t_stats(setter).resident_bytes, total);
        ASSERT_RC(mempool_delete(setter, z), 0);
    }
}

/* ==================================================== B. basic store */

/*
 * B7 [14]. E(n) = what admitting n bytes would evict; there is no dry run
 * in the API, so each question gets a fresh pool (limit 20) where the steps
 * are replayed and n bytes are really set. Returns bit 0 = a spilled, bit 1
 * = b spilled. Steps: 1 set a (10 B), 2 set b (10 B), 3 get(a).
 */
static unsigned b7_evicts(int steps, uint64_t n, int *set_rc)
{
    char name[T_NAME_LEN];
    mempool_options o;
    mempool *p;
    mempool_dref a = { 0, 0 }, b = { 0, 0 }, x;
    unsigned mask = 0;

    t_pool_name(name, NULL);
    sp_opts(&o, SMALL_ARENA, 20, MEMPOOL_POLICY_LRU, MEMPOOL_IO_AUTO);
    p = sp_open_as(name, &o);
    if (steps >= 1)
        a = set_bytes(p, 0, 10, 1, 0);
    if (steps >= 2)
        b = set_bytes(p, 0, 10, 2, 0);
    if (steps >= 3)
        expect_bytes(p, a, 10, 1, V_MEM);
    *set_rc = try_set_bytes(p, 0, n, 3, &x);
    if (steps >= 1 && state_of(p, a) == ST_DISK)
        mask |= 1;
    if (steps >= 2 && state_of(p, b) == ST_DISK)
        mask |= 2;
    t_assert_healthy(p);
    sp_close(p);
    ASSERT_RC(mempool_destroy(name), 0);
    return mask;
}

#define E(steps, n, want) \
    do { \
        int rc_; \
        unsigned m_ = b7_evicts((steps), (n), &rc_); \
        ck_assert_msg(rc_ == 0, "E(%d) after %d steps: set = %d", (int)(n), \
                      (steps), rc_); \
        ck_assert_msg(m_ == (want), "E(%d) after %d steps evicted %#x, " \
                      "want %#x", (int)(n), (steps), m_, (unsigned)(want)); \
    } while (0)

START_TEST(test_b7_dry_run)
{
    int rc;

    E(0, 20, 0u);
    ck_assert_uint_eq(b7_evicts(0, 21, &rc), 0);
    ASSERT_RC(rc, -E2BIG);
    E(1, 10, 0u);
    E(1, 11, 1u);
    E(2, 0, 0u);
    E(2, 1, 1u);
    E(2, 10, 1u);
    E(2, 11, 3u);
    E(3, 1, 2u);
    E(3, 10, 2u);
    E(3, 11, 3u);
}
END_TEST

/*
 * B10 [17]: limit 80, owner W2 (a second handle), setter W1.
 */
START_TEST(test_b10_limit_80)
{
    unsigned io = (unsigned)_i;
    mempool *p1 = sp_create(SMALL_ARENA, 0, MEMPOOL_POLICY_LRU, io);
    mempool *p2 = sp_attach(80, io);
    int w2 = mempool_worker_id(p2);
    mempool_dref r1, r2, r3, r4, r5, r6;
    struct mempool_stats s;
    mempool_view v;
    mempool_info in;

    ck_assert_int_ge(w2, 1);
    ck_assert_int_ne(w2, mempool_worker_id(p1));
    ck_assert_str_eq(t_stats(p1).io_backend, "");
    /* (a) 16 + 24 + 40 = 80 = the limit: all resident */
    r1 = set_i64(p1, w2, 2, 0);
    r2 = set_i64(p1, w2, 3, 0);
    r3 = set_i64(p1, w2, 5, MEMPOOL_SET_DESTROY_ON_EVICT);
    s = t_stats(p1);
    ck_assert_uint_eq(s.resident_bytes, 80);
    ck_assert_uint_eq(s.spills, 0);
    ck_assert_uint_eq(s.disk_bytes, 0);
    ASSERT_STATE(p1, r1, ST_MEM);
    ASSERT_STATE(p1, r2, ST_MEM);
    ASSERT_STATE(p1, r3, ST_MEM);
    ASSERT_RC(mempool_info_get(p1, r1, &in), 0);
    ck_assert_int_eq(in.owner, w2);
    /* (b) r4 = 8: 88 > 80, r1 (the LRU) is spilled */
    r4 = set_i64(p1, w2, 1, 0);
    ASSERT_STATE(p1, r1, ST_DISK);
    ASSERT_STATE(p1, r2, ST_MEM);
    ASSERT_STATE(p1, r3, ST_MEM);
    ASSERT_STATE(p1, r4, ST_MEM);
    s = t_stats(p1);
    ck_assert_uint_eq(s.resident_bytes, 72);
    ck_assert_uint_eq(s.disk_bytes, 16);
    ck_assert_uint_eq(s.spills, 1);
    ck_assert_uint_eq(s.spill_bytes, 16);
    ASSERT_FILES(sp_pdir, 1, 0);
    ASSERT_BACKEND(p1, io);
    ck_assert_str_eq(t_stats(p2).io_backend, "");   /* W2 never wrote */
    /* (c) W1 reads r2: order r2, r4, r3 */
    expect_i64(p1, r2, 3, V_MEM);
    /* (d) r3 is destroy-on-evict: r5 destroys it, never writes it */
    r5 = set_i64(p1, w2, 2, 0);
    ASSERT_RC(mempool_get(p1, r3, &v), -ENOENT);
    ASSERT_RC(mempool_info_get(p1, r3, &in), -ENOENT);
    ASSERT_STATE(p1, r4, ST_MEM);
    ASSERT_STATE(p1, r2, ST_MEM);
    s = t_stats(p1);
    ck_assert_uint_eq(s.resident_bytes, 48);
    ck_assert_uint_eq(s.spills, 1);
    ASSERT_FILES(sp_pdir, 1, 0);
    /* (e) r6: 64, no eviction */
    r6 = set_i64(p1, w2, 2, 0);
    s = t_stats(p1);
    ck_assert_uint_eq(s.resident_bytes, 64);
    ck_assert_uint_eq(s.spills, 1);
    /* (f) everything reads back, r1 mapped from its file, from W1 and W2 */
    expect_i64(p1, r1, 2, V_DISK);
    expect_i64(p2, r1, 2, V_DISK);
    expect_i64(p1, r2, 3, V_MEM);
    expect_i64(p1, r4, 1, V_MEM);
    expect_i64(p1, r5, 2, V_MEM);
    expect_i64(p1, r6, 2, V_MEM);
    ASSERT_STATE(p1, r1, ST_DISK);        /* a get does not copy it back */
    s = t_stats(p1);
    ck_assert_uint_eq(s.resident_bytes, 64);
    ck_assert_uint_eq(s.disk_bytes, 16);
    ck_assert_uint_eq(s.spills, 1);
    ck_assert_uint_eq(s.restores, 2);
    ck_assert_uint_eq(s.spill_errors, 0);
    ck_assert_uint_eq(s.objects, 5);
    t_assert_healthy(p1);
    {
        mempool_dref ord[] = { r6, r5, r4, r2 };
        uint64_t len[] = { 16, 16, 8, 24 };

        assert_order(p1, p2, MEMPOOL_POLICY_LRU, ord, len, 4);
    }
    t_assert_healthy(p1);
}
END_TEST

/*
 * B8 [15] as far as spilling goes, B9 [16], B11 [18], B12 [19]: W1 moves
 * W2's object to disk; everyone reads it; save_to_disk + get_file from W3
 * (a forked child); delete removes the spill file but not the saved one;
 * destroy removes the spill directory and never the saved file.
 */
static char b9_path[600];

static int b9_child(void *arg)
{
    mempool *p = child_open(sp_name, 0, MEMPOOL_IO_AUTO, 0, 0);
    mempool_fileref f;
    mempool_view v;
    int64_t want[2] = { 1, 2 };

    (void)arg;
    T_CHILD_ASSERT(p != NULL);
    memset(&f, 0, sizeof f);
    snprintf(f.path, sizeof f.path, "%s", b9_path);
    T_CHILD_EQ(mempool_get_file(p, &f, &v), 0);
    T_CHILD_EQ(v.len, 16);
    T_CHILD_EQ(v.flags, V_DISK);
    T_CHILD_ASSERT(memcmp(v.data, want, 16) == 0);
    T_CHILD_EQ(mempool_release(p, &v), 0);
    T_CHILD_EQ(mempool_release(p, &v), -EINVAL);
    T_CHILD_EQ(mempool_close(p), 0);
    return 0;
}

START_TEST(test_b9_move_save_destroy)
{
    unsigned io = (unsigned)_i;
    mempool *p1 = sp_create(SMALL_ARENA, 0, MEMPOOL_POLICY_LRU, io);
    mempool *p2 = sp_attach(0, io);
    int w2 = mempool_worker_id(p2);
    mempool_fileref f, f2, fs;
    mempool_dref r;
    struct mempool_stats s;
    struct stat st;
    mempool_view v;
    unsigned char *file;
    size_t flen;

    r = set_i64(p1, w2, 2, 0);
    ck_assert_uint_eq(t_stats(p1).resident_bytes, 16);
    ck_assert(!exists(sp_pdir) || dir_files(sp_pdir, NULL) == 0);
    /* W1 (not the owner) moves it */
    ASSERT_RC(mempool_move_to_disk(p1, r, &f), 0);
    check_fileref(&f, 16);
    ASSERT_STATE(p1, r, ST_DISK);
    s = t_stats(p1);
    ck_assert_uint_eq(s.resident_bytes, 0);
    ck_assert_uint_eq(s.disk_bytes, 16);
    ck_assert_uint_eq(s.spills, 1);
    ASSERT_BACKEND(p1, io);
    /* the file format: magic, then the payload at 4096 */
    file = slurp(f.path, &flen);
    ck_assert_uint_eq(flen, FILE_HDR + 16);
    ck_assert_mem_eq(file, "MPSPILL1", 8);
    {
        int64_t want[2] = { 1, 2 };

        ck_assert_mem_eq(file + FILE_HDR, want, 16);
    }
    free(file);
    expect_i64(p1, r, 2, V_DISK);
    expect_i64(p2, r, 2, V_DISK);
    /* idempotent: same file, no second write */
    ASSERT_RC(mempool_move_to_disk(p2, r, &f2), 0);
    ck_assert_str_eq(f2.path, f.path);
    ck_assert_uint_eq(t_stats(p1).spills, 1);
    /* save_to_disk: the caller's durable file; W3 maps it */
    snprintf(b9_path, sizeof b9_path, "%s/saved.bin", sp_dir);
    ASSERT_RC(mempool_save_to_disk(p1, r, b9_path, &fs), 0);
    ck_assert_str_eq(fs.path, b9_path);
    ck_assert_uint_eq(fs.len, 16);
    ASSERT_STATE(p1, r, ST_DISK);
    t_wait_ok(t_fork(b9_child, NULL));
    ASSERT_RC(mempool_get_file(p1, &fs, &v), 0);
    ck_assert_uint_eq(v.flags, V_DISK);
    ck_assert_uint_eq(v.len, 16);
    ASSERT_RC(mempool_release(p1, &v), 0);
    ASSERT_RC(mempool_release(p1, &v), -EINVAL);
    /* get_file of the spill file itself */
    ASSERT_RC(mempool_get_file(p2, &f, &v), 0);
    ck_assert_uint_eq(v.len, 16);
    ASSERT_RC(mempool_release(p2, &v), 0);
    /* delete: spill file gone, saved file kept, W2 at 0 */
    ASSERT_RC(mempool_delete(p1, r), 0);
    ck_assert_msg(!exists(f.path), "%s survived delete", f.path);
    ck_assert(exists(b9_path));
    s = t_stats(p1);
    ck_assert_uint_eq(s.resident_bytes, 0);
    ck_assert_uint_eq(s.disk_bytes, 0);
    ck_assert_uint_eq(s.objects, 0);
    ASSERT_RC(mempool_delete(p2, r), -ENOENT);
    ASSERT_RC(mempool_move_to_disk(p1, r, NULL), -ENOENT);
    ASSERT_RC(mempool_copy_to_disk(p1, r, NULL), -ENOENT);
    ASSERT_RC(mempool_save_to_disk(p1, r, b9_path, NULL), -ENOENT);
    t_assert_healthy(p1);
    /* B12: another spilled object; destroy removes the directory */
    r = set_i64(p1, w2, 2, 0);
    ASSERT_RC(mempool_move_to_disk(p1, r, &f), 0);
    st = stat_of(b9_path);
    sp_close(p2);
    sp_close(p1);
    ASSERT_RC(mempool_destroy(sp_name), 0);
    ck_assert_msg(!exists(sp_pdir), "%s survived destroy", sp_pdir);
    /* B11: the saved file is intact */
    {
        struct stat st2 = stat_of(b9_path);
        int64_t want[2] = { 1, 2 };

        ck_assert(same_file(&st, &st2));
        file = slurp(b9_path, &flen);
        ck_assert_uint_eq(flen, FILE_HDR + 16);
        ck_assert_mem_eq(file + FILE_HDR, want, 16);
        free(file);
    }
}
END_TEST

/* A saved file inside the pool's own directory survives delete and
 * destroy (only names mempool writes are removed). */
START_TEST(test_save_in_pool_dir)
{
    mempool *p = sp_create(SMALL_ARENA, 0, MEMPOOL_POLICY_LRU,
                           MEMPOOL_IO_AUTO);
    mempool_dref r = set_bytes(p, 0, 3000, 5, 0);
    char path[700];

    ASSERT_RC(mempool_copy_to_disk(p, r, NULL), 0);   /* creates the dir */
    snprintf(path, sizeof path, "%s/user.bin", sp_pdir);
    ASSERT_RC(mempool_save_to_disk(p, r, path, NULL), 0);
    ASSERT_RC(mempool_delete(p, r), 0);
    ck_assert(exists(path));
    ASSERT_FILES(sp_pdir, 0, 0);
    t_assert_healthy(p);
    sp_close(p);
    ASSERT_RC(mempool_destroy(sp_name), 0);
    ck_assert_msg(exists(path), "destroy removed the user's %s", path);
}
END_TEST

/* ========================================= D. move, copy, save, files */

/*
 * D19 [36], D20 [#39]: copy_to_disk keeps the object resident and charged
 * and served from the arena; move_to_disk then frees it without a second
 * write (same inode and mtime); both are idempotent; delete removes the
 * file. A clean copy is later evicted without a write too.
 */
START_TEST(test_d19_copy_then_move)
{
    unsigned io = (unsigned)_i;
    mempool *p = sp_create(SMALL_ARENA, 0, MEMPOOL_POLICY_LRU, io);
    mempool_fileref f1, f2, f3;
    struct stat st1, st2;
    struct mempool_stats s;
    mempool_dref r, c, d;

    r = set_i64(p, 0, 3, 0);
    ASSERT_RC(mempool_copy_to_disk(p, r, &f1), 0);
    check_fileref(&f1, 24);
    ASSERT_STATE(p, r, ST_BOTH);
    s = t_stats(p);
    ck_assert_uint_eq(s.resident_bytes, 24);
    ck_assert_uint_eq(s.disk_bytes, 24);
    ck_assert_uint_eq(s.spills, 1);
    expect_i64(p, r, 3, V_MEM);
    st1 = stat_of(f1.path);
    /* copy again: nothing written */
    ASSERT_RC(mempool_copy_to_disk(p, r, &f2), 0);
    ck_assert_str_eq(f2.path, f1.path);
    ck_assert_uint_eq(t_stats(p).spills, 1);
    /* a moment later (so a rewrite would show in mtime), move */
    usleep(20000);
    ASSERT_RC(mempool_move_to_disk(p, r, &f2), 0);
    ck_assert_str_eq(f2.path, f1.path);
    st2 = stat_of(f2.path);
    ck_assert_msg(same_file(&st1, &st2), "move_to_disk rewrote the clean "
                  "copy (inode %lu -> %lu)", (unsigned long)st1.st_ino,
                  (unsigned long)st2.st_ino);
    ASSERT_STATE(p, r, ST_DISK);
    s = t_stats(p);
    ck_assert_uint_eq(s.resident_bytes, 0);
    ck_assert_uint_eq(s.disk_bytes, 24);
    ck_assert_uint_eq(s.spills, 1);
    expect_i64(p, r, 3, V_DISK);
    /* D20: move twice (and copy of a spilled object) = 0, one write */
    ASSERT_RC(mempool_move_to_disk(p, r, &f3), 0);
    ck_assert_str_eq(f3.path, f1.path);
    ASSERT_RC(mempool_copy_to_disk(p, r, &f3), 0);
    ck_assert_str_eq(f3.path, f1.path);
    st2 = stat_of(f1.path);
    ck_assert(same_file(&st1, &st2));
    ck_assert_uint_eq(t_stats(p).spills, 1);
    ASSERT_STATE(p, r, ST_DISK);
    /* delete removes the file */
    ASSERT_RC(mempool_delete(p, r), 0);
    ck_assert(!exists(f1.path));
    ck_assert_uint_eq(t_stats(p).disk_bytes, 0);
    ASSERT_FILES(sp_pdir, 0, 0);
    /* a clean copy is evicted without a write */
    ASSERT_RC(mempool_set_max_memsize(p, 40), 0);
    c = set_i64(p, 0, 3, 0);
    ASSERT_RC(mempool_copy_to_disk(p, c, &f1), 0);
    st1 = stat_of(f1.path);
    ck_assert_uint_eq(t_stats(p).spills, 2);
    usleep(20000);
    d = set_i64(p, 0, 3, 0);              /* 48 > 40: c goes */
    ASSERT_STATE(p, c, ST_DISK);
    ASSERT_STATE(p, d, ST_MEM);
    st2 = stat_of(f1.path);
    ck_assert(same_file(&st1, &st2));
    s = t_stats(p);
    ck_assert_uint_eq(s.spills, 2);
    ck_assert_uint_eq(s.resident_bytes, 24);
    ck_assert_uint_eq(s.disk_bytes, 24);
    expect_i64(p, c, 3, V_DISK);
    ASSERT_RC(mempool_flush(p), 0);
    ASSERT_FILES(sp_pdir, 1, 0);
    t_assert_healthy(p);
}
END_TEST

/*
 * DESTROY_ON_EVICT (2.9): eviction deletes instead of writing, and also
 * removes a clean copy; an explicit move_to_disk still writes.
 */
START_TEST(test_destroy_on_evict)
{
    unsigned io = (unsigned)_i;
    mempool *p = sp_create(SMALL_ARENA, 64, MEMPOOL_POLICY_LRU, io);
    mempool_fileref f;
    mempool_dref a, b, c, d;
    mempool_view v;

    /* explicit move writes */
    a = set_i64(p, 0, 4, MEMPOOL_SET_DESTROY_ON_EVICT);
    ASSERT_RC(mempool_move_to_disk(p, a, &f), 0);
    check_fileref(&f, 32);
    ASSERT_STATE(p, a, ST_DISK);
    expect_i64(p, a, 4, V_DISK);
    ck_assert_uint_eq(t_stats(p).spills, 1);
    /* eviction of a plain one-memory object: destroyed, nothing written */
    b = set_i64(p, 0, 4, MEMPOOL_SET_DESTROY_ON_EVICT);   /* 32 */
    c = set_i64(p, 0, 4, 0);                              /* 64 */
    d = set_i64(p, 0, 4, 0);                              /* b goes */
    ASSERT_RC(mempool_get(p, b, &v), -ENOENT);
    ASSERT_STATE(p, b, ST_GONE);
    ASSERT_STATE(p, c, ST_MEM);
    ASSERT_STATE(p, d, ST_MEM);
    ck_assert_uint_eq(t_stats(p).spills, 1);
    ASSERT_FILES(sp_pdir, 1, 0);
    ASSERT_RC(mempool_delete(p, c), 0);
    /* with a clean copy: destroyed too, and its file removed */
    b = set_i64(p, 0, 4, MEMPOOL_SET_DESTROY_ON_EVICT);   /* d, b: 64 */
    ASSERT_RC(mempool_copy_to_disk(p, b, &f), 0);
    ck_assert(exists(f.path));
    ASSERT_RC(mempool_delete(p, d), 0);
    expect_i64(p, b, 4, V_MEM);
    d = set_i64(p, 0, 4, 0);
    c = set_i64(p, 0, 4, 0);                              /* b goes */
    ASSERT_STATE(p, b, ST_GONE);
    ck_assert_msg(!exists(f.path), "destroyed object's file %s kept",
                  f.path);
    ck_assert_uint_eq(t_stats(p).resident_bytes, 64);
    ck_assert_uint_eq(t_stats(p).disk_bytes, 32);   /* a */
    ASSERT_FILES(sp_pdir, 1, 0);
    t_assert_healthy(p);
}
END_TEST

/*
 * G39 [69b, 69d]: move_to_disk of a pinned object writes now and frees at
 * the last release; the held view stays valid meanwhile. A get of a
 * spilled object pins its mapping.
 */
START_TEST(test_g39_pinned_move)
{
    unsigned io = (unsigned)_i;
    mempool *p = sp_create(SMALL_ARENA, 0, MEMPOOL_POLICY_LRU, io);
    mempool_dref r1, r2;
    mempool_view v1, v2, v3;
    mempool_fileref f;
    int64_t want[4] = { 1, 2, 3, 4 };

    /* with a clean file already */
    r1 = set_i64(p, 0, 4, 0);
    ASSERT_RC(mempool_copy_to_disk(p, r1, NULL), 0);
    ASSERT_RC(mempool_get(p, r1, &v1), 0);
    ck_assert_uint_eq(v1.flags, V_MEM);
    ASSERT_RC(mempool_move_to_disk(p, r1, &f), 0);
    check_fileref(&f, 32);
    ck_assert_mem_eq(v1.data, want, 32);
    ck_assert(state_of(p, r1) & ST_MEM);
    ck_assert_uint_eq(t_stats(p).resident_bytes, 32);
    /* without a file: written now */
    r2 = set_i64(p, 0, 4, 0);
    ASSERT_RC(mempool_get(p, r2, &v2), 0);
    ASSERT_RC(mempool_move_to_disk(p, r2, &f), 0);
    check_fileref(&f, 32);
    ck_assert(state_of(p, r2) & ST_MEM);
    ck_assert_uint_eq(t_stats(p).resident_bytes, 64);
    ck_assert_uint_eq(t_stats(p).disk_bytes, 64);
    ck_assert_mem_eq(v2.data, want, 32);
    /* the last release frees */
    ASSERT_RC(mempool_release(p, &v1), 0);
    ASSERT_STATE(p, r1, ST_DISK);
    ck_assert_uint_eq(t_stats(p).resident_bytes, 32);
    ck_assert_mem_eq(v2.data, want, 32);
    ASSERT_RC(mempool_release(p, &v2), 0);
    ASSERT_STATE(p, r2, ST_DISK);
    ck_assert_uint_eq(t_stats(p).resident_bytes, 0);
    /* 69d: a get of a spilled object pins a mapping */
    ASSERT_RC(mempool_get(p, r2, &v3), 0);
    ck_assert_uint_eq(v3.flags, V_DISK);
    ck_assert_int_eq(t_pins(p, r2), 1);
    ck_assert(!t_in_pool_mapping(sp_name, v3.data, 32));
    ck_assert_mem_eq(v3.data, want, 32);
    ASSERT_RC(mempool_release(p, &v3), 0);
    ck_assert_int_eq(t_pins(p, r2), 0);
    ASSERT_RC(mempool_release(p, &v3), -EINVAL);
    t_assert_healthy(p);
}
END_TEST

/* G39c for a spilled object: delete while its mapping is pinned; the view
 * keeps reading; the file and the entry go at the last release. */
START_TEST(test_pinned_spilled_delete)
{
    unsigned io = (unsigned)_i;
    mempool *p = sp_create(SMALL_ARENA, 0, MEMPOOL_POLICY_LRU, io);
    mempool *q = sp_attach(0, io);
    mempool_dref r = set_bytes(p, 0, 200000, 9, 0);
    mempool_fileref f;
    mempool_view v, w;

    ASSERT_RC(mempool_move_to_disk(p, r, &f), 0);
    ASSERT_RC(mempool_get(q, r, &v), 0);
    ASSERT_RC(mempool_get(p, r, &w), 0);
    ck_assert_uint_eq(v.flags, V_DISK);
    ck_assert_int_eq(t_pins(p, r), 2);
    ASSERT_RC(mempool_delete(p, r), 0);
    ASSERT_RC(mempool_get(p, r, &(mempool_view){ 0 }), -ENOENT);
    ASSERT_RC(mempool_get(q, r, &(mempool_view){ 0 }), -ENOENT);
    ck_assert(sp_check(v.data, 200000, 9));
    ASSERT_RC(mempool_release(p, &w), 0);
    ck_assert(sp_check(v.data, 200000, 9));
    ASSERT_RC(mempool_release(q, &v), 0);
    ck_assert_msg(!exists(f.path), "%s survived delete + last release",
                  f.path);
    ck_assert_uint_eq(t_stats(p).objects, 0);
    ck_assert_uint_eq(t_stats(p).disk_bytes, 0);
    t_assert_healthy(p);
}
END_TEST

/*
 * 2.7: save_to_disk changes nothing about the object or its recency: under
 * LRU, a saved object is still the first victim.
 */
START_TEST(test_save_keeps_recency)
{
    mempool *p = sp_create(SMALL_ARENA, 48, MEMPOOL_POLICY_LRU,
                           MEMPOOL_IO_AUTO);
    mempool_dref a, b, c, d;
    mempool_fileref fs;
    mempool_view v;
    char path[600];
    uint64_t spills;

    a = set_i64(p, 0, 2, 0);
    b = set_i64(p, 0, 2, 0);
    c = set_i64(p, 0, 2, 0);
    snprintf(path, sizeof path, "%s/a.saved", sp_dir);
    spills = t_stats(p).spills;
    ASSERT_RC(mempool_save_to_disk(p, a, path, &fs), 0);
    ASSERT_STATE(p, a, ST_MEM);           /* no spill file, no DISK bit */
    ck_assert_uint_eq(t_stats(p).spills, spills);
    ck_assert_uint_eq(t_stats(p).disk_bytes, 0);
    ASSERT_FILES(sp_pdir, 0, 0);
    d = set_i64(p, 0, 2, 0);              /* 64 > 48: the LRU goes */
    ck_assert_msg(state_of(p, a) == ST_DISK && state_of(p, b) == ST_MEM,
                  "save_to_disk touched recency: a %#x, b %#x (want a "
                  "spilled, b resident)", state_of(p, a), state_of(p, b));
    ASSERT_STATE(p, c, ST_MEM);
    ASSERT_STATE(p, d, ST_MEM);
    /* the saved file maps with the object's bytes */
    ASSERT_RC(mempool_get_file(p, &fs, &v), 0);
    ck_assert_uint_eq(v.len, 16);
    ASSERT_RC(mempool_release(p, &v), 0);
    /* saving a spilled object works from its file */
    snprintf(path, sizeof path, "%s/a2.saved", sp_dir);
    ASSERT_RC(mempool_save_to_disk(p, a, path, &fs), 0);
    ASSERT_STATE(p, a, ST_DISK);
    ASSERT_RC(mempool_get_file(p, &fs, &v), 0);
    {
        int64_t want[2] = { 1, 2 };

        ck_assert_uint_eq(v.len, 16);
        ck_assert_mem_eq(v.data, want, 16);
    }
    ASSERT_RC(mempool_release(p, &v), 0);
    /* bad paths */
    ASSERT_RC(mempool_save_to_disk(p, a, "", NULL), -EINVAL);
    ASSERT_RC(mempool_save_to_disk(p, a, NULL, NULL), -EINVAL);
    snprintf(path, sizeof path, "%s/", sp_dir);
    ASSERT_RC(mempool_save_to_disk(p, a, path, NULL), -EINVAL);
    snprintf(path, sizeof path, "%s/no/such/dir/x", sp_dir);
    ASSERT_RC(mempool_save_to_disk(p, a, path, NULL), -ENOENT);
    t_assert_healthy(p);
}
END_TEST

/* Typed objects keep their type through a spill file and a saved file and
 * decode as views into the mapping (64-byte aligned). */
START_TEST(test_typed_spill)
{
    mempool *p = sp_create(SMALL_ARENA, 0, MEMPOOL_POLICY_LRU,
                           MEMPOOL_IO_AUTO);
    double vals[10];
    mempool_array a, out;
    mempool_dref r;
    mempool_view v;
    mempool_info in;
    mempool_fileref fs;
    char path[600];

    for (int i = 0; i < 10; i++)
        vals[i] = 0.5 * i - 1.25;
    memset(&a, 0, sizeof a);
    a.dtype = MEMPOOL_DTYPE_FLOAT64;
    a.ndim = 1;
    a.shape[0] = 10;
    a.data = vals;
    ASSERT_RC(mempool_set_obj(p, MEMPOOL_TYPE_ARRAY, &a, NULL, &r), 0);
    ASSERT_RC(mempool_move_to_disk(p, r, NULL), 0);
    ASSERT_RC(mempool_info_get(p, r, &in), 0);
    ck_assert_uint_eq(in.type, MEMPOOL_TYPE_ARRAY);
    ck_assert_uint_eq(in.state, ST_DISK);
    memset(&out, 0, sizeof out);
    ASSERT_RC(mempool_get_obj(p, r, MEMPOOL_TYPE_ARRAY, &out, &v), 0);
    ck_assert_uint_eq(v.flags, V_DISK);
    ck_assert_uint_eq(v.type, MEMPOOL_TYPE_ARRAY);
    ck_assert_uint_eq(out.count, 10);
    ck_assert_uint_eq(out.dtype, MEMPOOL_DTYPE_FLOAT64);
    ck_assert_uint_eq((uintptr_t)v.data % 64, 0);
    ck_assert_uint_eq((uintptr_t)out.data % 64, 0);
    ck_assert((const char *)out.data >= (const char *)v.data &&
              (const char *)out.data + out.nbytes <=
                  (const char *)v.data + v.len);
    ck_assert_mem_eq(out.data, vals, sizeof vals);
    ASSERT_RC(mempool_release(p, &v), 0);
    /* a saved copy, mapped with get_file, decodes the same */
    snprintf(path, sizeof path, "%s/arr.saved", sp_dir);
    ASSERT_RC(mempool_save_to_disk(p, r, path, &fs), 0);
    ASSERT_RC(mempool_get_file(p, &fs, &v), 0);
    ck_assert_uint_eq(v.type, MEMPOOL_TYPE_ARRAY);
    memset(&out, 0, sizeof out);
    ASSERT_RC(mempool_decode(p, v.type, v.data, v.len, &out), 0);
    ck_assert_uint_eq(out.count, 10);
    ck_assert_mem_eq(out.data, vals, sizeof vals);
    ASSERT_RC(mempool_release(p, &v), 0);
    t_assert_healthy(p);
}
END_TEST

/* Empty objects and one larger than an engine write chunk (16 MiB). */
START_TEST(test_zero_and_big)
{
    unsigned io = (unsigned)_i;
    const size_t big = 20 * MiB + 3;
    mempool *p = sp_create(64 * MiB, 0, MEMPOOL_POLICY_LRU, io);
    mempool_fileref f;
    mempool_dref z, b, c;
    mempool_view v;

    ASSERT_RC(mempool_set(p, NULL, 0, &z), 0);
    ASSERT_RC(mempool_move_to_disk(p, z, &f), 0);
    check_fileref(&f, 0);
    ASSERT_STATE(p, z, ST_DISK);
    ASSERT_RC(mempool_get(p, z, &v), 0);
    ck_assert_ptr_nonnull(v.data);
    ck_assert_uint_eq(v.len, 0);
    ck_assert_uint_eq(v.flags, V_DISK);
    ASSERT_RC(mempool_release(p, &v), 0);
    b = set_bytes(p, 0, big, 77, 0);
    ASSERT_RC(mempool_move_to_disk(p, b, &f), 0);
    check_fileref(&f, big);
    expect_bytes(p, b, big, 77, V_DISK);
    /* evicted by the limit rather than moved */
    ASSERT_RC(mempool_set_max_memsize(p, big + 100), 0);
    c = set_bytes(p, 0, big, 78, 0);
    ck_assert_uint_eq(t_stats(p).resident_bytes, big);
    b = set_bytes(p, 0, 200, 79, 0);
    ASSERT_STATE(p, c, ST_DISK);
    expect_bytes(p, c, big, 78, V_DISK);
    expect_bytes(p, b, 200, 79, V_MEM);
    ASSERT_BACKEND(p, io);
    ASSERT_FILES(sp_pdir, 3, 0);
    t_assert_healthy(p);
}
END_TEST

/* Many spilled objects mapped at once, more than the idle mapping cache
 * keeps; every view stays right while the others come and go. */
START_TEST(test_many_mappings)
{
    enum { N = 48 };
    mempool *p = sp_create(SMALL_ARENA, 0, MEMPOOL_POLICY_LRU,
                           MEMPOOL_IO_AUTO);
    mempool_dref r[N];
    mempool_view v[N];
    int i;

    for (i = 0; i < N; i++) {
        r[i] = set_bytes(p, 0, 5000 + (size_t)i, 100 + (uint64_t)i, 0);
        ASSERT_RC(mempool_move_to_disk(p, r[i], NULL), 0);
    }
    for (int round = 0; round < 2; round++) {
        for (i = 0; i < N; i++) {
            ASSERT_RC(mempool_get(p, r[i], &v[i]), 0);
            ck_assert_uint_eq(v[i].flags, V_DISK);
        }
        for (i = 0; i < N; i++)
            ck_assert(sp_check(v[i].data, 5000 + (size_t)i,
                               100 + (uint64_t)i));
        for (i = 0; i < N; i += 2)
            ASSERT_RC(mempool_release(p, &v[i]), 0);
        for (i = 1; i < N; i += 2)
            ck_assert(sp_check(v[i].data, 5000 + (size_t)i,
                               100 + (uint64_t)i));
        for (i = 1; i < N; i += 2)
            ASSERT_RC(mempool_release(p, &v[i]), 0);
    }
    ck_assert_uint_eq(t_stats(p).restores, 2 * N);
    for (i = 0; i < N; i++)
        ASSERT_RC(mempool_delete(p, r[i]), 0);
    ASSERT_FILES(sp_pdir, 0, 0);
    t_assert_healthy(p);
}
END_TEST

/* Creating a pool wipes stale spill files in its directory (only names
 * mempool writes); attaching does not; destroy removes the directory. */
START_TEST(test_stale_files_wiped)
{
    char path[700];
    mempool *p, *q;
    mempool_dref r;
    mempool_fileref f;

    ck_assert_int_eq(mkdir(sp_pdir, 0700), 0);
    snprintf(path, sizeof path, "%s/12-3", sp_pdir);
    spit(path, "junk", 4);
    snprintf(path, sizeof path, "%s/7-1.tmp", sp_pdir);
    spit(path, "junk", 4);
    snprintf(path, sizeof path, "%s/keep.txt", sp_pdir);
    spit(path, "mine", 4);
    p = sp_create(SMALL_ARENA, 0, MEMPOOL_POLICY_LRU, MEMPOOL_IO_AUTO);
    ASSERT_FILES(sp_pdir, 0, 0);
    ck_assert(exists(path));
    r = set_bytes(p, 0, 1000, 3, 0);
    ASSERT_RC(mempool_move_to_disk(p, r, &f), 0);
    snprintf(path, sizeof path, "%s/99-9", sp_pdir);
    spit(path, "junk", 4);
    q = sp_attach(0, MEMPOOL_IO_AUTO);
    ck_assert(exists(path));
    expect_bytes(q, r, 1000, 3, V_DISK);
    unlink(path);
    snprintf(path, sizeof path, "%s/keep.txt", sp_pdir);
    unlink(path);
    t_assert_healthy(q);
    sp_close(q);
    sp_close(p);
    ASSERT_RC(mempool_destroy(sp_name), 0);
    ck_assert(!exists(sp_pdir));
}
END_TEST

/* get_file and the DRef checks on spilled objects (F37). */
START_TEST(test_bad_files_and_drefs)
{
    mempool *p = sp_create(SMALL_ARENA, 0, MEMPOOL_POLICY_LRU,
                           MEMPOOL_IO_AUTO);
    mempool_dref r = set_bytes(p, 0, 4000, 8, 0), bad;
    mempool_fileref f;
    mempool_view v;
    char junk[5000];

    ASSERT_RC(mempool_move_to_disk(p, r, NULL), 0);
    memset(&f, 0, sizeof f);
    ASSERT_RC(mempool_get_file(p, NULL, &v), -EINVAL);
    ASSERT_RC(mempool_get_file(p, &f, &v), -EINVAL);
    snprintf(f.path, sizeof f.path, "%s/nothing", sp_dir);
    ASSERT_RC(mempool_get_file(p, &f, &v), -ENOENT);
    snprintf(f.path, sizeof f.path, "%s", sp_dir);
    ASSERT_RC(mempool_get_file(p, &f, &v), MEMPOOL_ECORRUPT);
    memset(junk, 'x', sizeof junk);
    snprintf(f.path, sizeof f.path, "%s/junk", sp_dir);
    spit(f.path, junk, sizeof junk);
    ASSERT_RC(mempool_get_file(p, &f, &v), MEMPOOL_ECORRUPT);
    spit(f.path, junk, 10);
    ASSERT_RC(mempool_get_file(p, &f, &v), MEMPOOL_ECORRUPT);
    /* forged DRefs of a spilled object */
    bad = r;
    bad.gen += 1;
    ASSERT_RC(mempool_get(p, bad, &v), -ENOENT);
    ASSERT_RC(mempool_move_to_disk(p, bad, NULL), -ENOENT);
    bad = r;
    bad.gen += 2;
    ASSERT_RC(mempool_copy_to_disk(p, bad, NULL), -ENOENT);
    bad = r;
    bad.off += 8;
    ASSERT_RC(mempool_get(p, bad, &v), -EINVAL);
    ASSERT_RC(mempool_move_to_disk(p, bad, NULL), -EINVAL);
    bad = r;
    bad.gen ^= UINT64_C(1) << 40;          /* another pool's tag */
    ASSERT_RC(mempool_get(p, bad, &v), -EINVAL);
    expect_bytes(p, r, 4000, 8, V_DISK);
    ASSERT_STATE(p, r, ST_DISK);
    ASSERT_RC(mempool_flush(p), 0);
    t_assert_healthy(p);
}
END_TEST

/* Options: policy and io_mode are checked; a handle reports no backend
 * before its first write; MEMPOOL_IO=pwrite forces pwrite. */
static int env_pwrite_child(void *arg)
{
    mempool *p;
    mempool_dref r;
    struct mempool_stats s;
    static char buf[3000];

    (void)arg;
    setenv("MEMPOOL_IO", "pwrite", 1);
    p = child_open(sp_name, 0, MEMPOOL_IO_AUTO, 0, 0);
    T_CHILD_ASSERT(p != NULL);
    T_CHILD_EQ(mempool_stats(p, &s), 0);
    T_CHILD_ASSERT(s.io_backend[0] == '\0');
    T_CHILD_EQ(mempool_set(p, buf, sizeof buf, &r), 0);
    T_CHILD_EQ(mempool_move_to_disk(p, r, NULL), 0);
    T_CHILD_EQ(mempool_stats(p, &s), 0);
    T_CHILD_ASSERT(strcmp(s.io_backend, "pwrite") == 0);
    T_CHILD_EQ(mempool_delete(p, r), 0);
    mempool_close(p);
    return 0;
}

START_TEST(test_options_and_backend)
{
    mempool_options o;
    mempool *p = NULL;
    mempool_dref r;

    sp_opts(&o, SMALL_ARENA, 0, 2, MEMPOOL_IO_AUTO);
    ASSERT_RC(mempool_open(sp_name, &o, &p), -EINVAL);
    sp_opts(&o, SMALL_ARENA, 0, MEMPOOL_POLICY_LRU, 2);
    ASSERT_RC(mempool_open(sp_name, &o, &p), -EINVAL);
    p = sp_create(SMALL_ARENA, 0, MEMPOOL_POLICY_MRU, MEMPOOL_IO_AUTO);
    ck_assert_str_eq(t_stats(p).io_backend, "");
    ASSERT_RC(mempool_flush(p), 0);          /* nothing queued yet */
    r = set_bytes(p, 0, 100, 1, 0);
    ASSERT_RC(mempool_copy_to_disk(p, r, NULL), 0);
    ASSERT_BACKEND(p, MEMPOOL_IO_AUTO);
    ASSERT_RC(mempool_flush(p), 0);
    t_wait_ok(t_fork(env_pwrite_child, NULL));
    ASSERT_RC(mempool_set_max_memsize(NULL, 1), -EINVAL);
    ASSERT_RC(mempool_set_max_disksize(NULL, 1), -EINVAL);
    ASSERT_RC(mempool_flush(NULL), -EINVAL);
    t_assert_healthy(p);
}
END_TEST

/* =============================================== E. limits and order */

/*
 * E24-E27, E29 [44-47, 49] under LRU and MRU: limit 80, disk limit 80000,
 * owner W2. (Promotion, E27's second half and E28, does not exist.)
 */
START_TEST(test_e24_policy_order)
{
    unsigned policy = (unsigned)_i & 1, io = (unsigned)_i >> 1;
    bool lru = policy == MEMPOOL_POLICY_LRU;
    mempool *p1 = sp_create(SMALL_ARENA, 0, policy, io);
    mempool *p2 = sp_attach(80, io);
    int w2 = mempool_worker_id(p2);
    mempool_dref r1, r2, r3, r4, spilled;
    struct mempool_stats s;
    mempool_fileref f;
    int sn;

    ASSERT_RC(mempool_set_max_disksize(p2, 80000), 0);
    r1 = set_i64(p1, w2, 2, 0);
    r2 = set_i64(p1, w2, 3, 0);
    r3 = set_i64(p1, w2, 5, 0);
    ck_assert_uint_eq(t_stats(p1).resident_bytes, 80);
    /* E25: r4 (16) makes 96 */
    r4 = set_i64(p1, w2, 2, 0);
    spilled = lru ? r1 : r3;
    sn = lru ? 2 : 5;
    ASSERT_STATE(p1, spilled, ST_DISK);
    ASSERT_STATE(p1, r2, ST_MEM);
    ASSERT_STATE(p1, r4, ST_MEM);
    ASSERT_STATE(p1, lru ? r3 : r1, ST_MEM);
    s = t_stats(p1);
    ck_assert_uint_eq(s.resident_bytes, lru ? 80 : 56);
    ck_assert_uint_eq(s.disk_bytes, (uint64_t)sn * 8);
    ck_assert_uint_eq(s.spills, 1);
    /* E26: get(r2) */
    expect_i64(p1, r2, 3, V_MEM);
    /* E27: get of the spilled one maps it; charges and arena unchanged */
    expect_i64(p1, spilled, sn, V_DISK);
    expect_i64(p2, spilled, sn, V_DISK);
    ASSERT_STATE(p1, spilled, ST_DISK);
    ck_assert_uint_eq(t_stats(p1).resident_bytes, s.resident_bytes);
    ck_assert_uint_eq(t_stats(p1).used_bytes, s.used_bytes);
    ck_assert_uint_eq(t_stats(p1).disk_bytes, s.disk_bytes);
    /* its file, without a rewrite */
    ASSERT_RC(mempool_move_to_disk(p1, spilled, &f), 0);
    check_fileref(&f, (uint64_t)sn * 8);
    ck_assert_uint_eq(t_stats(p1).spills, 1);
    /* E29: delete the spilled one: disk drops by its size, file gone */
    ASSERT_RC(mempool_delete(p1, spilled), 0);
    ck_assert(!exists(f.path));
    ck_assert_uint_eq(t_stats(p1).disk_bytes, 0);
    ck_assert_uint_eq(t_stats(p1).resident_bytes, s.resident_bytes);
    ASSERT_RC(mempool_get(p1, spilled, &(mempool_view){ 0 }), -ENOENT);
    t_assert_healthy(p1);
    /* the order: LRU r2, r4, r3; MRU r2, r4, r1 */
    {
        mempool_dref ord[3] = { r2, r4, lru ? r3 : r1 };
        uint64_t len[3] = { 24, 16, lru ? 40 : 16 };

        assert_order(p1, p2, policy, ord, len, 3);
    }
    ck_assert_uint_eq(t_stats(p1).spills, 4);
    t_assert_healthy(p1);
}
END_TEST

/* Total equal to the limit is allowed; lowering the limit spills nothing
 * until the next set; 0 = no limit; len > limit = -E2BIG. */
START_TEST(test_limit_edges)
{
    unsigned io = (unsigned)_i;
    mempool *p = sp_create(SMALL_ARENA, 100, MEMPOOL_POLICY_LRU, io);
    mempool_dref a, b, c, d, e;
    mempool_view v;

    a = set_bytes(p, 0, 60, 1, 0);
    b = set_bytes(p, 0, 40, 2, 0);
    ck_assert_uint_eq(t_stats(p).resident_bytes, 100);
    ck_assert_uint_eq(t_stats(p).spills, 0);
    ASSERT_RC(mempool_set_max_memsize(p, 50), 0);
    ASSERT_STATE(p, a, ST_MEM);
    ASSERT_STATE(p, b, ST_MEM);
    ck_assert_uint_eq(t_stats(p).resident_bytes, 100);
    c = set_bytes(p, 0, 10, 3, 0);        /* 110 - 50 = 60: a covers it */
    ASSERT_STATE(p, a, ST_DISK);
    ASSERT_STATE(p, b, ST_MEM);
    ASSERT_STATE(p, c, ST_MEM);
    ck_assert_uint_eq(t_stats(p).resident_bytes, 50);
    ASSERT_RC(mempool_set_max_memsize(p, 0), 0);
    d = set_bytes(p, 0, 100000, 4, 0);
    ASSERT_STATE(p, b, ST_MEM);
    ck_assert_uint_eq(t_stats(p).resident_bytes, 100050);
    ASSERT_RC(mempool_set_max_memsize(p, 64), 0);
    ASSERT_RC(try_set_bytes(p, 0, 65, 5, &e), -E2BIG);
    ASSERT_RC(mempool_reserve(p, 65, NULL, &(void *){ NULL }, &e), -E2BIG);
    e = set_bytes(p, 0, 64, 5, 0);        /* everything else goes */
    ASSERT_STATE(p, b, ST_DISK);
    ASSERT_STATE(p, c, ST_DISK);
    ASSERT_STATE(p, d, ST_DISK);
    ck_assert_uint_eq(t_stats(p).resident_bytes, 64);
    expect_bytes(p, a, 60, 1, V_DISK);
    expect_bytes(p, d, 100000, 4, V_DISK);
    expect_bytes(p, e, 64, 5, V_MEM);
    /* a reservation counts as soon as it is made */
    {
        void *buf = NULL;
        mempool_dref rr;

        ASSERT_RC(mempool_reserve(p, 64, NULL, &buf, &rr), 0);
        ASSERT_STATE(p, e, ST_DISK);
        memset(buf, 7, 64);
        ASSERT_RC(mempool_publish(p, rr), 0);
        ASSERT_RC(mempool_get(p, rr, &v), 0);
        ck_assert_uint_eq(v.flags, V_MEM);
        ASSERT_RC(mempool_release(p, &v), 0);
    }
    t_assert_healthy(p);
}
END_TEST

/* E30 [50, 51]: over the limit -> -E2BIG, and nothing changed. */
START_TEST(test_e30_too_big)
{
    unsigned io = (unsigned)_i;
    mempool *p1 = sp_create(SMALL_ARENA, 0, MEMPOOL_POLICY_LRU, io);
    mempool *p2 = sp_attach(80, io);
    int w2 = mempool_worker_id(p2);
    mempool_dref r1, r2, r3, r4, x;
    struct mempool_stats s0, s1;

    ASSERT_RC(mempool_set_max_disksize(p2, 80000), 0);
    r1 = set_i64(p1, w2, 2, 0);
    r2 = set_i64(p1, w2, 3, 0);
    r3 = set_i64(p1, w2, 5, 0);
    r4 = set_i64(p1, w2, 2, 0);             /* r1 spilled */
    s0 = t_stats(p1);
    ASSERT_RC(try_set_bytes(p1, w2, 88, 1, &x), -E2BIG);
    ASSERT_RC(try_set_bytes(p1, w2, 80008, 1, &x), -E2BIG);
    s1 = t_stats(p1);
    ck_assert_uint_eq(s1.objects, s0.objects);
    ck_assert_uint_eq(s1.resident_bytes, s0.resident_bytes);
    ck_assert_uint_eq(s1.disk_bytes, s0.disk_bytes);
    ck_assert_uint_eq(s1.used_bytes, s0.used_bytes);
    ck_assert_uint_eq(s1.spills, s0.spills);
    ASSERT_FILES(sp_pdir, 1, 0);
    ASSERT_STATE(p1, r1, ST_DISK);
    t_assert_healthy(p1);
    {
        mempool_dref ord[3] = { r4, r3, r2 };
        uint64_t len[3] = { 16, 40, 24 };

        assert_order(p1, p2, MEMPOOL_POLICY_LRU, ord, len, 3);
    }
}
END_TEST

/* E32 [53]: two 80-byte objects, the second evicting the first; deleting
 * both leaves exactly 0 resident and 0 on disk. */
START_TEST(test_e32_delete_both)
{
    unsigned io = (unsigned)_i;
    mempool *p1 = sp_create(SMALL_ARENA, 0, MEMPOOL_POLICY_LRU, io);
    mempool *p2 = sp_attach(80, io);
    int w2 = mempool_worker_id(p2);
    mempool_dref a, b;
    struct mempool_stats s;

    a = set_bytes(p1, w2, 80, 1, 0);
    b = set_bytes(p1, w2, 80, 2, 0);
    ASSERT_STATE(p1, a, ST_DISK);
    ASSERT_STATE(p1, b, ST_MEM);
    s = t_stats(p1);
    ck_assert_uint_eq(s.resident_bytes, 80);
    ck_assert_uint_eq(s.disk_bytes, 80);
    ASSERT_RC(mempool_delete(p2, a), 0);
    ASSERT_RC(mempool_delete(p1, b), 0);
    s = t_stats(p1);
    ck_assert_uint_eq(s.resident_bytes, 0);
    ck_assert_uint_eq(s.disk_bytes, 0);
    ck_assert_uint_eq(s.objects, 0);
    ASSERT_FILES(sp_pdir, 0, 0);
    t_assert_healthy(p1);
}
END_TEST

/* E33: everything pinned -> -ENOMEM after the bounded wait, nothing
 * spilled; release r1 and the same set spills r1. */
START_TEST(test_e33_all_pinned)
{
    unsigned io = (unsigned)_i;
    mempool_options o;
    mempool *p1, *p2;
    mempool_dref r1, r2, r3, x;
    mempool_view v1, v2, v3;
    struct mempool_stats s0, s1;
    int w2;

    sp_opts(&o, SMALL_ARENA, 0, MEMPOOL_POLICY_LRU, io);
    o.evict_wait_ms = 30;
    p1 = sp_open(&o);
    p2 = sp_attach(80, io);
    w2 = mempool_worker_id(p2);
    r1 = set_i64(p1, w2, 2, 0);
    r2 = set_i64(p1, w2, 3, 0);
    r3 = set_i64(p1, w2, 5, 0);
    ASSERT_RC(mempool_get(p1, r1, &v1), 0);
    ASSERT_RC(mempool_get(p1, r2, &v2), 0);
    ASSERT_RC(mempool_get(p1, r3, &v3), 0);
    s0 = t_stats(p1);
    ASSERT_RC(try_set_bytes(p1, w2, 8, 1, &x), -ENOMEM);
    s1 = t_stats(p1);
    ck_assert_uint_eq(s1.objects, s0.objects);
    ck_assert_uint_eq(s1.resident_bytes, 80);
    ck_assert_uint_eq(s1.used_bytes, s0.used_bytes);
    ck_assert_uint_eq(s1.spills, 0);
    ck_assert_uint_eq(s1.disk_bytes, 0);
    ASSERT_STATE(p1, r1, ST_MEM);
    ASSERT_STATE(p1, r2, ST_MEM);
    ASSERT_STATE(p1, r3, ST_MEM);
    ASSERT_FILES(sp_pdir, 0, 0);
    ASSERT_RC(mempool_release(p1, &v1), 0);
    ASSERT_RC(try_set_bytes(p1, w2, 8, 1, &x), 0);
    ASSERT_STATE(p1, r1, ST_DISK);
    ASSERT_STATE(p1, r2, ST_MEM);
    ASSERT_STATE(p1, r3, ST_MEM);
    ck_assert_uint_eq(t_stats(p1).resident_bytes, 72);
    ASSERT_RC(mempool_release(p1, &v2), 0);
    ASSERT_RC(mempool_release(p1, &v3), 0);
    expect_i64(p1, r1, 2, V_DISK);
    t_assert_healthy(p1);
}
END_TEST

/* E34: disk limit 100 with 96 on disk: a set needing a 16-byte spill
 * fails with -ENOSPC and changes nothing; so do move and copy. */
START_TEST(test_e34_disk_limit)
{
    unsigned io = (unsigned)_i;
    mempool *p1 = sp_create(SMALL_ARENA, 0, MEMPOOL_POLICY_LRU, io);
    mempool *p2 = sp_attach(80, io);
    int w2 = mempool_worker_id(p2);
    mempool_dref a, b, sm, c, x;
    struct mempool_stats s0, s1;

    ASSERT_RC(mempool_set_max_disksize(p2, 100), 0);
    a = set_bytes(p1, w2, 48, 1, 0);
    b = set_bytes(p1, w2, 48, 2, 0);         /* a spilled: disk 48 */
    sm = set_bytes(p1, w2, 16, 3, 0);
    c = set_bytes(p1, w2, 48, 4, 0);         /* b spilled: disk 96 */
    ASSERT_STATE(p1, a, ST_DISK);
    ASSERT_STATE(p1, b, ST_DISK);
    ASSERT_STATE(p1, sm, ST_MEM);
    ASSERT_STATE(p1, c, ST_MEM);
    s0 = t_stats(p1);
    ck_assert_uint_eq(s0.disk_bytes, 96);
    ck_assert_uint_eq(s0.resident_bytes, 64);
    ASSERT_RC(try_set_bytes(p1, w2, 24, 5, &x), -ENOSPC);
    ASSERT_RC(mempool_move_to_disk(p1, sm, NULL), -ENOSPC);
    ASSERT_RC(mempool_copy_to_disk(p2, sm, NULL), -ENOSPC);
    s1 = t_stats(p1);
    ck_assert_uint_eq(s1.disk_bytes, 96);
    ck_assert_uint_eq(s1.resident_bytes, 64);
    ck_assert_uint_eq(s1.objects, s0.objects);
    ck_assert_uint_eq(s1.used_bytes, s0.used_bytes);
    ck_assert_uint_eq(s1.spills, s0.spills);
    ASSERT_STATE(p1, sm, ST_MEM);
    expect_bytes(p1, sm, 16, 3, V_MEM);
    ASSERT_FILES(sp_pdir, 2, 0);
    t_assert_healthy(p1);
    /* lifted: the same set spills (c: the read above made sm recent) */
    ASSERT_RC(mempool_set_max_disksize(p2, 0), 0);
    ASSERT_RC(try_set_bytes(p1, w2, 24, 5, &x), 0);
    ASSERT_STATE(p1, c, ST_DISK);
    ASSERT_STATE(p1, sm, ST_MEM);
    expect_bytes(p1, c, 48, 4, V_DISK);
    ck_assert_uint_eq(t_stats(p1).disk_bytes, 144);
    t_assert_healthy(p1);
}
END_TEST

/* The disk limit also holds when one set needs several victims at once. */
START_TEST(test_disk_limit_many_victims)
{
    unsigned io = (unsigned)_i;
    mempool *p1 = sp_create(SMALL_ARENA, 0, MEMPOOL_POLICY_LRU, io);
    mempool *p2 = sp_attach(80, io);
    int w2 = mempool_worker_id(p2);
    mempool_dref x, a, b, c;
    int rc;

    ASSERT_RC(mempool_set_max_disksize(p2, 100), 0);
    x = set_bytes(p1, w2, 40, 1, 0);
    ASSERT_RC(mempool_move_to_disk(p1, x, NULL), 0);   /* disk 40 */
    a = set_bytes(p1, w2, 40, 2, 0);
    b = set_bytes(p1, w2, 40, 3, 0);                   /* resident 80 */
    rc = try_set_bytes(p1, w2, 80, 4, &c);             /* needs a and b */
    ck_assert_msg(t_stats(p1).disk_bytes <= 100,
                  "disk limit 100 overshot: disk_bytes %" PRIu64
                  " after a set that needed two victims (set = %d, a %#x, "
                  "b %#x)", t_stats(p1).disk_bytes, rc, state_of(p1, a),
                  state_of(p1, b));
    ASSERT_RC(rc, -ENOSPC);
    expect_bytes(p1, a, 40, 2, 0);
    expect_bytes(p1, b, 40, 3, 0);
    t_assert_healthy(p1);
}
END_TEST

/* G40 [69e]: a pinned object is skipped as a victim, and after its release
 * (which does not touch recency) it is the next one. */
START_TEST(test_g40_pinned_victim)
{
    unsigned io = (unsigned)_i;
    mempool *p1 = sp_create(SMALL_ARENA, 0, MEMPOOL_POLICY_LRU, io);
    mempool *p2 = sp_attach(80, io);
    int w2 = mempool_worker_id(p2);
    mempool_dref r1, r2, r3, r4, r5, r6;
    mempool_view v1;

    r1 = set_i64(p1, w2, 2, 0);
    ASSERT_RC(mempool_get(p1, r1, &v1), 0);
    r2 = set_i64(p1, w2, 3, 0);
    r3 = set_i64(p1, w2, 5, 0);
    r4 = set_i64(p1, w2, 5, 0);               /* 120: r1 skipped */
    ASSERT_STATE(p1, r1, ST_MEM);
    ASSERT_STATE(p1, r2, ST_DISK);
    ASSERT_STATE(p1, r3, ST_DISK);
    ASSERT_STATE(p1, r4, ST_MEM);
    ck_assert_uint_eq(t_stats(p1).resident_bytes, 56);
    ASSERT_RC(mempool_release(p1, &v1), 0);
    r5 = set_i64(p1, w2, 5, 0);               /* 96: r1 goes */
    ASSERT_STATE(p1, r1, ST_DISK);
    ASSERT_STATE(p1, r4, ST_MEM);
    ck_assert_uint_eq(t_stats(p1).resident_bytes, 80);
    r6 = set_i64(p1, w2, 5, 0);               /* 120: r4 goes */
    ASSERT_STATE(p1, r4, ST_DISK);
    ASSERT_STATE(p1, r5, ST_MEM);
    ASSERT_STATE(p1, r6, ST_MEM);
    expect_i64(p1, r1, 2, V_DISK);
    expect_i64(p2, r2, 3, V_DISK);
    expect_i64(p2, r3, 5, V_DISK);
    ck_assert_uint_eq(t_stats(p1).resident_bytes, 80);
    ck_assert_uint_eq(t_stats(p1).disk_bytes, 16 + 24 + 40 + 40);
    t_assert_healthy(p1);
    {
        mempool_dref ord[2] = { r6, r5 };
        uint64_t len[2] = { 40, 40 };

        assert_order(p1, p2, MEMPOOL_POLICY_LRU, ord, len, 2);
    }
}
END_TEST

/* When the arena itself is short, anyone's objects are spilled: two
 * workers without limits store twice the arena and read it all back. */
START_TEST(test_arena_pressure)
{
    enum { N = 64 };
    unsigned io = (unsigned)_i;
    const size_t len = 256 * KiB;
    mempool *p1 = sp_create(8 * MiB, 0, MEMPOOL_POLICY_LRU, io);
    mempool *p2 = sp_attach(0, io);
    mempool_dref r[N];
    struct mempool_stats s;
    int i, disk = 0;

    for (i = 0; i < N; i++)
        r[i] = set_bytes(i % 2 ? p2 : p1, 0, len, 500 + (uint64_t)i, 0);
    s = t_stats(p1);
    ck_assert_uint_gt(s.spills, 0);
    ck_assert_uint_le(s.used_bytes, s.data_bytes);
    for (i = 0; i < N; i++) {
        unsigned st = state_of(p1, r[i]);

        ck_assert(st == ST_DISK || (st & ST_MEM));
        disk += st == ST_DISK;
        expect_bytes(i % 3 ? p1 : p2, r[i], len, 500 + (uint64_t)i, 0);
    }
    ck_assert_int_gt(disk, N / 3);
    t_assert_healthy(p1);
}
END_TEST

/* ================================================ corrupt spill files */

START_TEST(test_corrupt_files)
{
    enum { N = 9, LEN = 10000 };
    mempool *p = sp_create(SMALL_ARENA, 0, MEMPOOL_POLICY_LRU,
                           MEMPOOL_IO_AUTO);
    mempool *nv;
    mempool_options o;
    mempool_fileref f[N];
    mempool_dref r[N], x;
    mempool_view v;
    unsigned char *buf;
    size_t blen;
    int i;
    /* 0 truncate, 1 payload flip, 2 header flip (length), 3 header flip
     * (padding), 4 another object's file, 5 deleted, 6 extended,
     * 7 symlink to a good file, 8 intact */
    const int want[N] = { MEMPOOL_ECORRUPT, MEMPOOL_ECORRUPT,
                          MEMPOOL_ECORRUPT, MEMPOOL_ECORRUPT,
                          MEMPOOL_ECORRUPT, -ENOENT, MEMPOOL_ECORRUPT,
                          MEMPOOL_ECORRUPT, 0 };

    for (i = 0; i < N; i++) {
        r[i] = set_bytes(p, 0, LEN, 40 + (uint64_t)i, 0);
        ASSERT_RC(mempool_move_to_disk(p, r[i], &f[i]), 0);
    }
    sp_opts(&o, SMALL_ARENA, 0, MEMPOOL_POLICY_LRU, MEMPOOL_IO_AUTO);
    o.flags = MEMPOOL_OPEN_NOVERIFY;
    nv = sp_open(&o);
    /* corrupt before anyone maps them */
    ck_assert_int_eq(truncate(f[0].path, FILE_HDR + LEN / 2), 0);
    flip_byte(f[1].path, FILE_HDR + 1234);
    flip_byte(f[2].path, 40);
    flip_byte(f[3].path, 2000);
    buf = slurp(f[8].path, &blen);
    spit(f[4].path, buf, blen);
    free(buf);
    ck_assert_int_eq(unlink(f[5].path), 0);
    {
        int fd = open(f[6].path, O_WRONLY | O_APPEND | O_CLOEXEC);

        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(write(fd, "x", 1), 1);
        close(fd);
    }
    ck_assert_int_eq(unlink(f[7].path), 0);
    ck_assert_int_eq(symlink(f[8].path, f[7].path), 0);
    for (int round = 0; round < 2; round++) {
        for (i = 0; i < N; i++) {
            memset(&v, 0, sizeof v);
            ck_assert_msg(mempool_get(p, r[i], &v) == want[i],
                          "case %d: get = %d, want %d", i,
                          mempool_get(p, r[i], &v), want[i]);
            if (want[i] == 0) {
                ck_assert(sp_check(v.data, LEN, 40 + (uint64_t)i));
                ASSERT_RC(mempool_release(p, &v), 0);
            }
            ck_assert_int_eq(t_pins(p, r[i]), 0);
            ASSERT_STATE(p, r[i], ST_DISK);
        }
    }
    /* without payload verification the flipped byte goes unnoticed; the
     * header is still checked */
    for (i = 0; i < N; i++) {
        int rc = mempool_get(nv, r[i], &v);

        if (i == 1) {
            ASSERT_RC(rc, 0);
            ck_assert(!sp_check(v.data, LEN, 41));
            ASSERT_RC(mempool_release(nv, &v), 0);
        } else {
            ck_assert_msg(rc == want[i], "NOVERIFY case %d: get = %d", i,
                          rc);
            if (rc == 0)
                ASSERT_RC(mempool_release(nv, &v), 0);
        }
    }
    /* the pool keeps working; deletes remove what is there */
    x = set_bytes(p, 0, LEN, 99, 0);
    ASSERT_RC(mempool_move_to_disk(p, x, NULL), 0);
    expect_bytes(p, x, LEN, 99, V_DISK);
    for (i = 0; i < N - 1; i++)
        ASSERT_RC(mempool_delete(p, r[i]), 0);
    ck_assert(exists(f[8].path));
    ck_assert_uint_eq(t_stats(p).disk_bytes, 2 * LEN);
    ASSERT_FILES(sp_pdir, 2, 0);
    t_assert_healthy(p);
}
END_TEST

/* A fresh process meets a corrupt file: an error, no crash. */
static mempool_dref corrupt_r;

static int corrupt_child(void *arg)
{
    mempool *p = child_open(sp_name, 0, MEMPOOL_IO_AUTO, 0, 0);
    mempool_view v;

    (void)arg;
    T_CHILD_ASSERT(p != NULL);
    T_CHILD_EQ(mempool_get(p, corrupt_r, &v), MEMPOOL_ECORRUPT);
    T_CHILD_EQ(mempool_check(p, NULL, 0), 0);
    mempool_close(p);
    return 0;
}

START_TEST(test_corrupt_other_process)
{
    mempool *p = sp_create(SMALL_ARENA, 0, MEMPOOL_POLICY_LRU,
                           MEMPOOL_IO_AUTO);
    mempool_fileref f;

    corrupt_r = set_bytes(p, 0, 300000, 4, 0);
    ASSERT_RC(mempool_move_to_disk(p, corrupt_r, &f), 0);
    flip_byte(f.path, FILE_HDR + 299999);
    t_wait_ok(t_fork(corrupt_child, NULL));
    ck_assert_int_eq(truncate(f.path, 100), 0);
    t_wait_ok(t_fork(corrupt_child, NULL));
    ASSERT_RC(mempool_delete(p, corrupt_r), 0);
    ASSERT_FILES(sp_pdir, 0, 0);
    t_assert_healthy(p);
}
END_TEST

/* ============================================ F. failures (children) */

static const char *fp_name;
static unsigned fp_io;
static int fp_fd = -1;

/* F36: copy/move under an injected error return it; the object stays
 * resident, readable and charged; a set whose victim cannot be written
 * fails and leaves the victim alone; nothing is left on disk. */
static int fp_child(void *arg)
{
    int want = strcmp(fp_name, "io.write") == 0 ? -EIO : -ENOSPC;
    struct mempool_stats s0, s;
    mempool_fileref f;
    mempool_dref r, x;
    mempool_view v;
    mempool *p;
    int nt;

    (void)arg;
    setenv("MEMPOOL_FAILPOINT", fp_name, 1);
    p = child_open(sp_name, 0, fp_io, 0, 0);
    T_CHILD_ASSERT(p != NULL);
    T_CHILD_EQ(mempool_stats(p, &s0), 0);
    T_CHILD_EQ(try_set_bytes(p, 0, 5000, 11, &r), 0);
    T_CHILD_EQ(mempool_copy_to_disk(p, r, &f), want);
    T_CHILD_EQ(state_of(p, r), ST_MEM);
    T_CHILD_EQ(mempool_move_to_disk(p, r, &f), want);
    T_CHILD_EQ(state_of(p, r), ST_MEM);
    T_CHILD_EQ(mempool_get(p, r, &v), 0);
    T_CHILD_EQ(v.flags, V_MEM);
    T_CHILD_ASSERT(sp_check(v.data, 5000, 11));
    T_CHILD_EQ(mempool_release(p, &v), 0);
    T_CHILD_EQ(mempool_stats(p, &s), 0);
    T_CHILD_EQ(s.resident_bytes, s0.resident_bytes + 5000);
    T_CHILD_EQ(s.disk_bytes, s0.disk_bytes);
    T_CHILD_EQ(s.spills, s0.spills);
    T_CHILD_ASSERT(s.spill_errors >= s0.spill_errors + 2);
    T_CHILD_EQ(strcmp(s.io_backend, want_backend(fp_io)), 0);
    T_CHILD_EQ(dir_files(sp_pdir, &nt), 0);
    T_CHILD_EQ(nt, 0);
    /* an eviction that cannot write */
    T_CHILD_EQ(mempool_set_max_memsize(p, 8000), 0);
    s0 = s;
    T_CHILD_EQ(try_set_bytes(p, 0, 5000, 12, &x), want);
    T_CHILD_EQ(state_of(p, r), ST_MEM);
    T_CHILD_EQ(mempool_stats(p, &s), 0);
    T_CHILD_EQ(s.objects, s0.objects);
    T_CHILD_EQ(s.used_bytes, s0.used_bytes);
    T_CHILD_EQ(s.resident_bytes, s0.resident_bytes);
    T_CHILD_ASSERT(s.spill_errors >= s0.spill_errors + 1);
    T_CHILD_EQ(mempool_get(p, r, &v), 0);
    T_CHILD_ASSERT(sp_check(v.data, 5000, 11));
    T_CHILD_EQ(mempool_release(p, &v), 0);
    T_CHILD_EQ(dir_files(sp_pdir, &nt), 0);
    T_CHILD_EQ(nt, 0);
    T_CHILD_EQ(mempool_check(p, NULL, 0), 0);
    T_CHILD_EQ(t_send_dref(fp_fd, r), 0);
    mempool_close(p);
    return 0;
}

START_TEST(test_f36_failpoints)
{
    static const char *const fps[2] = { "io.write", "io.nospc" };
    mempool *p;
    mempool_dref r, y;
    int fds[2];

    fp_name = fps[_i & 1];
    fp_io = (unsigned)_i >> 1;
    p = sp_create(SMALL_ARENA, 0, MEMPOOL_POLICY_LRU, fp_io);
    t_pipe(fds);
    fp_fd = fds[1];
    t_wait_ok(t_fork(fp_child, NULL));
    close(fds[1]);
    ASSERT_RC(t_recv_dref(fds[0], &r, T_WAIT_S), 0);
    close(fds[0]);
    /* without the failpoint (this process), spilling works again */
    ASSERT_STATE(p, r, ST_MEM);
    expect_bytes(p, r, 5000, 11, V_MEM);
    ASSERT_RC(mempool_move_to_disk(p, r, NULL), 0);
    ASSERT_STATE(p, r, ST_DISK);
    expect_bytes(p, r, 5000, 11, V_DISK);
    ASSERT_RC(mempool_set_max_memsize(p, 8000), 0);
    y = set_bytes(p, 0, 5000, 13, 0);
    ASSERT_RC(mempool_set_max_memsize(p, 8000), 0);
    (void)set_bytes(p, 0, 5000, 14, 0);
    ASSERT_STATE(p, y, ST_DISK);
    expect_bytes(p, y, 5000, 13, V_DISK);
    ASSERT_FILES(sp_pdir, 2, 0);
    ck_assert_uint_ge(t_stats(p).spill_errors, 3);
    t_assert_healthy(p);
}
END_TEST

/* io.short: every write is cut to 4096 bytes; files are still complete. */
static int short_child(void *arg)
{
    static const size_t lens[3] = { 1 * MiB + 7, 100000, 17 * MiB + 1 };
    mempool *p;

    (void)arg;
    setenv("MEMPOOL_FAILPOINT", "io.short", 1);
    p = child_open(sp_name, 0, fp_io, 0, 0);
    T_CHILD_ASSERT(p != NULL);
    for (int i = 0; i < 3; i++) {
        mempool_dref r;
        mempool_view v;

        T_CHILD_EQ(try_set_bytes(p, 0, lens[i], 60 + (uint64_t)i, &r), 0);
        T_CHILD_EQ(mempool_move_to_disk(p, r, NULL), 0);
        T_CHILD_EQ(mempool_get(p, r, &v), 0);
        T_CHILD_EQ(v.flags, V_DISK);
        T_CHILD_EQ(v.len, lens[i]);
        T_CHILD_ASSERT(sp_check(v.data, lens[i], 60 + (uint64_t)i));
        T_CHILD_EQ(mempool_release(p, &v), 0);
        T_CHILD_EQ(t_send_dref(fp_fd, r), 0);
        T_CHILD_EQ(t_send_u64(fp_fd, lens[i]), 0);
    }
    mempool_close(p);
    return 0;
}

START_TEST(test_fp_short_writes)
{
    mempool *p;
    int fds[2];

    fp_io = (unsigned)_i;
    p = sp_create(64 * MiB, 0, MEMPOOL_POLICY_LRU, fp_io);
    t_pipe(fds);
    fp_fd = fds[1];
    t_wait_ok(t_fork(short_child, NULL));
    close(fds[1]);
    for (int i = 0; i < 3; i++) {
        mempool_dref r;
        mempool_fileref f;
        uint64_t len;

        ASSERT_RC(t_recv_dref(fds[0], &r, T_WAIT_S), 0);
        ASSERT_RC(t_recv_u64(fds[0], &len, T_WAIT_S), 0);
        ASSERT_STATE(p, r, ST_DISK);
        expect_bytes(p, r, len, 60 + (uint64_t)i, V_DISK);
        ASSERT_RC(mempool_move_to_disk(p, r, &f), 0);
        check_fileref(&f, len);
    }
    close(fds[0]);
    ASSERT_FILES(sp_pdir, 3, 0);
    t_assert_healthy(p);
}
END_TEST

/* F35: the spill directory cannot be used (a file where it should be):
 * writes fail, victims stay resident and readable, nothing changes. */
static mempool_dref unw_spilled;

static int unwritable_child(void *arg)
{
    mempool *p = child_open(sp_name, 0, MEMPOOL_IO_AUTO, 0, 0);
    struct mempool_stats s0, s;
    mempool_dref a, x;
    mempool_view v;

    (void)arg;
    T_CHILD_ASSERT(p != NULL);
    T_CHILD_EQ(mempool_set_max_memsize(p, 8000), 0);
    T_CHILD_EQ(try_set_bytes(p, 0, 5000, 21, &a), 0);
    T_CHILD_EQ(mempool_stats(p, &s0), 0);
    T_CHILD_ASSERT(try_set_bytes(p, 0, 5000, 22, &x) < 0);
    T_CHILD_ASSERT(mempool_copy_to_disk(p, a, NULL) < 0);
    T_CHILD_ASSERT(mempool_move_to_disk(p, a, NULL) < 0);
    T_CHILD_EQ(mempool_stats(p, &s), 0);
    T_CHILD_EQ(s.objects, s0.objects);
    T_CHILD_EQ(s.used_bytes, s0.used_bytes);
    T_CHILD_EQ(s.resident_bytes, s0.resident_bytes);
    T_CHILD_EQ(state_of(p, a), ST_MEM);
    T_CHILD_EQ(mempool_get(p, a, &v), 0);
    T_CHILD_ASSERT(sp_check(v.data, 5000, 21));
    T_CHILD_EQ(mempool_release(p, &v), 0);
    /* the object spilled before cannot be read now, but no crash */
    T_CHILD_ASSERT(mempool_get(p, unw_spilled, &v) < 0);
    T_CHILD_EQ(mempool_check(p, NULL, 0), 0);
    T_CHILD_EQ(t_send_dref(fp_fd, a), 0);
    mempool_close(p);
    return 0;
}

START_TEST(test_f35_unusable_dir)
{
    mempool *p = sp_create(SMALL_ARENA, 0, MEMPOOL_POLICY_LRU,
                           MEMPOOL_IO_AUTO);
    char away[700];
    mempool_dref a;
    int fds[2];

    unw_spilled = set_bytes(p, 0, 3000, 20, 0);
    ASSERT_RC(mempool_move_to_disk(p, unw_spilled, NULL), 0);
    snprintf(away, sizeof away, "%s.away", sp_pdir);
    ck_assert_int_eq(rename(sp_pdir, away), 0);
    spit(sp_pdir, "not a directory", 15);
    t_pipe(fds);
    fp_fd = fds[1];
    t_wait_ok(t_fork(unwritable_child, NULL));
    close(fds[1]);
    ASSERT_RC(t_recv_dref(fds[0], &a, T_WAIT_S), 0);
    close(fds[0]);
    ck_assert_int_eq(unlink(sp_pdir), 0);
    ck_assert_int_eq(rename(away, sp_pdir), 0);
    ASSERT_FILES(sp_pdir, 1, 0);
    ASSERT_RC(mempool_move_to_disk(p, a, NULL), 0);
    expect_bytes(p, a, 5000, 21, V_DISK);
    expect_bytes(p, unw_spilled, 3000, 20, V_DISK);
    t_assert_healthy(p);
}
END_TEST

/* ------------------------------------------- io_uring -> pwrite fallback */

#define SC_N 12

struct sc_digest {
    char     backend[12];
    int32_t  rc[SC_N];
    uint32_t state[SC_N];
    uint32_t flags[SC_N];
    uint64_t sum[SC_N];
    uint64_t resident, disk, spills, spill_bytes, objects;
};

static size_t sc_len(int i)
{
    return i == SC_N - 1 ? 1 * MiB + 5 : 9000 + 1000 * (size_t)i;
}

/* The same steps in any process; the digest records every outcome. */
static void sc_scenario(mempool *p, struct sc_digest *d)
{
    mempool_dref r[SC_N];
    struct mempool_stats s;

    memset(d, 0, sizeof *d);
    memset(r, 0, sizeof r);
    mempool_set_max_memsize(p, 40000);
    for (int i = 0; i < SC_N - 1; i++)
        d->rc[i] = try_set_bytes(p, 0, sc_len(i), 700 + (uint64_t)i, &r[i]);
    d->rc[0] |= mempool_move_to_disk(p, r[0], NULL);
    d->rc[SC_N - 2] |= mempool_copy_to_disk(p, r[SC_N - 2], NULL);
    mempool_set_max_memsize(p, 0);
    d->rc[SC_N - 1] = try_set_bytes(p, 0, sc_len(SC_N - 1),
                                    700 + (uint64_t)(SC_N - 1), &r[SC_N - 1]);
    d->rc[SC_N - 1] |= mempool_move_to_disk(p, r[SC_N - 1], NULL);
    for (int i = 0; i < SC_N; i++) {
        mempool_view v;

        d->state[i] = state_of(p, r[i]);
        if (mempool_get(p, r[i], &v) == 0) {
            d->sum[i] = sp_sum(v.data, v.len);
            d->flags[i] = v.flags;
            mempool_release(p, &v);
        }
    }
    mempool_flush(p);
    mempool_stats(p, &s);
    memcpy(d->backend, s.io_backend, sizeof d->backend);
    d->resident = s.resident_bytes;
    d->disk = s.disk_bytes;
    d->spills = s.spills;
    d->spill_bytes = s.spill_bytes;
    d->objects = s.objects;
}

static const char *sc_pool;
static bool sc_filter;

static int sc_child(void *arg)
{
    struct sc_digest d;
    mempool *p;

    (void)arg;
#if defined(__x86_64__)
    if (sc_filter) {
        T_CHILD_EQ(t_deny_uring_setup(EPERM), 0);
        T_CHILD_ASSERT(!uring_usable());
    }
#endif
    p = child_open(sc_pool, 0, MEMPOOL_IO_AUTO, 0, 0);
    T_CHILD_ASSERT(p != NULL);
    sc_scenario(p, &d);
    T_CHILD_EQ(mempool_check(p, NULL, 0), 0);
    T_CHILD_EQ(t_send(fp_fd, &d, sizeof d), 0);
    mempool_close(p);
    return 0;
}

static void sc_run(const char *pool, bool filter, struct sc_digest *d)
{
    int fds[2];

    sc_pool = pool;
    sc_filter = filter;
    t_pipe(fds);
    fp_fd = fds[1];
    t_wait_ok(t_fork(sc_child, NULL));
    close(fds[1]);
    ASSERT_RC(t_recv(fds[0], d, sizeof *d, T_WAIT_S), 0);
    close(fds[0]);
}

START_TEST(test_seccomp_fallback)
{
#if defined(__x86_64__)
    const char *other = sp_extra_name();
    mempool_options o;
    mempool *pa, *pb;
    struct sc_digest a, b;

    sp_opts(&o, SMALL_ARENA, 0, MEMPOOL_POLICY_LRU, MEMPOOL_IO_AUTO);
    pa = sp_open(&o);
    pb = sp_open_as(other, &o);
    sc_run(sp_name, false, &a);
    sc_run(other, true, &b);
    ck_assert_str_eq(b.backend, "pwrite");
    ck_assert_str_eq(a.backend, want_backend(MEMPOOL_IO_AUTO));
    for (int i = 0; i < SC_N; i++) {
        uint64_t want;
        unsigned char *buf = malloc(sc_len(i));

        ck_assert_ptr_nonnull(buf);
        sp_fill(buf, sc_len(i), 700 + (uint64_t)i);
        want = sp_sum(buf, sc_len(i));
        free(buf);
        ck_assert_msg(a.rc[i] == 0 && b.rc[i] == 0, "step %d: %d / %d", i,
                      a.rc[i], b.rc[i]);
        ck_assert_msg(a.state[i] == b.state[i], "object %d: state %#x with "
                      "%s, %#x with pwrite", i, a.state[i], a.backend,
                      b.state[i]);
        ck_assert_msg(a.flags[i] == b.flags[i], "object %d: view flags %u "
                      "with %s, %u with pwrite", i, a.flags[i], a.backend,
                      b.flags[i]);
        ck_assert_msg(a.sum[i] == want && b.sum[i] == want,
                      "object %d reads differently", i);
    }
    ck_assert_uint_eq(a.resident, b.resident);
    ck_assert_uint_eq(a.disk, b.disk);
    ck_assert_uint_eq(a.spills, b.spills);
    ck_assert_uint_eq(a.spill_bytes, b.spill_bytes);
    ck_assert_uint_eq(a.objects, b.objects);
    ck_assert_uint_gt(a.spills, 2);
    /* and the parent reads the fallback's files */
    ASSERT_RC(mempool_check(pb, NULL, 0), 0);
    t_assert_healthy(pa);
#else
    fprintf(stderr, "check_spill: the seccomp case is x86-64 only\n");
#endif
}
END_TEST

/* =================================================== other processes */

static mempool_dref xp_r[3];
static const size_t xp_len[3] = { 100, 200000, 5 * MiB + 1 };

static int xp_child(void *arg)
{
    mempool *p = child_open(sp_name, 0, MEMPOOL_IO_AUTO, 0, 0);
    struct mempool_stats s;

    (void)arg;
    T_CHILD_ASSERT(p != NULL);
    for (int i = 0; i < 3; i++) {
        mempool_view v;

        T_CHILD_EQ(mempool_get(p, xp_r[i], &v), 0);
        T_CHILD_EQ(v.flags, V_DISK);
        T_CHILD_EQ(v.len, xp_len[i]);
        T_CHILD_ASSERT(sp_check(v.data, xp_len[i], 30 + (uint64_t)i));
        T_CHILD_EQ(mempool_release(p, &v), 0);
        T_CHILD_EQ(state_of(p, xp_r[i]), ST_DISK);
    }
    T_CHILD_EQ(mempool_stats(p, &s), 0);
    T_CHILD_ASSERT(s.restores >= 3);
    T_CHILD_EQ(mempool_close(p), 0);
    return 0;
}

static char peer_args[3][64];

static int exec_peer(void *arg)
{
    (void)arg;
    execl("/proc/self/exe", "check_spill", "--peer-get", sp_name,
          peer_args[0], peer_args[1], peer_args[2], sp_dir, (char *)NULL);
    fprintf(stderr, "exec /proc/self/exe: %s\n", strerror(errno));
    return 127;
}

/* A spilled object is read, mapped, from a forked child and from an
 * exec'd process that shares nothing with us. */
START_TEST(test_cross_process_read)
{
    mempool *p = sp_create(32 * MiB, 0, MEMPOOL_POLICY_LRU, MEMPOOL_IO_AUTO);
    unsigned char *buf;
    int st;

    for (int i = 0; i < 3; i++) {
        xp_r[i] = set_bytes(p, 0, xp_len[i], 30 + (uint64_t)i, 0);
        ASSERT_RC(mempool_move_to_disk(p, xp_r[i], NULL), 0);
    }
    t_wait_ok(t_fork(xp_child, NULL));
    buf = malloc(xp_len[2]);
    ck_assert_ptr_nonnull(buf);
    sp_fill(buf, xp_len[2], 32);
    ck_assert_int_eq(mempool_dref_format(xp_r[2], peer_args[0], 64), 33);
    snprintf(peer_args[1], 64, "%zu", xp_len[2]);
    snprintf(peer_args[2], 64, "%016" PRIx64, sp_sum(buf, xp_len[2]));
    st = t_wait(t_fork(exec_peer, NULL), T_WAIT_S);
    ck_assert_msg(st == 0, "peer exited %d", st);
    /* negative control */
    snprintf(peer_args[2], 64, "%016" PRIx64, sp_sum(buf, xp_len[2]) ^ 1);
    st = t_wait(t_fork(exec_peer, NULL), T_WAIT_S);
    ck_assert_msg(st == 1, "peer with a wrong sum exited %d", st);
    free(buf);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(t_pins(p, xp_r[i]), 0);
    ck_assert_int_eq(mempool_reap(p), 0);
    t_assert_healthy(p);
}
END_TEST

/* G41 for a mapped view: a remote worker pins a spilled object and is
 * killed; the reaper drops the pin; delete then removes the file. */
START_TEST(test_g41_remote_pin_killed)
{
    mempool *p = sp_create(SMALL_ARENA, 0, MEMPOOL_POLICY_LRU,
                           MEMPOOL_IO_AUTO);
    struct t_remote w;
    mempool_fileref f;
    mempool_dref r = set_bytes(p, 0, 50000, 3, 0);

    ASSERT_RC(mempool_move_to_disk(p, r, &f), 0);
    t_remote_start(&w, sp_name);
    ASSERT_RC(t_remote_call(&w, T_R_GET, &r, 2), 0);
    ck_assert_int_eq(t_pins(p, r), 2);
    ASSERT_RC(t_remote_call(&w, T_R_VERIFY, NULL, 0), 2);
    t_remote_kill(&w);
    ck_assert_int_ge(mempool_reap(p), 1);
    ck_assert_int_eq(t_pins(p, r), 0);
    ASSERT_STATE(p, r, ST_DISK);
    expect_bytes(p, r, 50000, 3, V_DISK);
    ASSERT_RC(mempool_delete(p, r), 0);
    ck_assert(!exists(f.path));
    ck_assert_uint_eq(t_stats(p).objects, 0);
    t_assert_healthy(p);
}
END_TEST

/*
 * G39 across processes: move_to_disk of an object another process pins
 * frees its memory at that process's last release (loop 0) - or, if that
 * process is killed instead, when the reaper drops its pins (loop 1).
 */
START_TEST(test_move_pinned_by_other)
{
    mempool *p = sp_create(SMALL_ARENA, 0, MEMPOOL_POLICY_LRU,
                           MEMPOOL_IO_AUTO);
    struct t_remote w;
    mempool_dref r = set_bytes(p, 0, 50000, 6, 0);

    t_remote_start(&w, sp_name);
    ASSERT_RC(t_remote_call(&w, T_R_GET, &r, 1), 0);
    ASSERT_RC(mempool_move_to_disk(p, r, NULL), 0);
    ASSERT_STATE(p, r, ST_BOTH);
    ck_assert_uint_eq(t_stats(p).resident_bytes, 50000);
    ck_assert_uint_eq(t_stats(p).disk_bytes, 50000);
    if (_i == 0) {
        ASSERT_RC(t_remote_call(&w, T_R_RELEASE_ALL, NULL, 0), 1);
        ck_assert_int_eq(t_remote_quit(&w), 0);
    } else {
        t_remote_kill(&w);
        ck_assert_int_ge(mempool_reap(p), 1);
        ck_assert_int_eq(t_pins(p, r), 0);
    }
    ck_assert_msg(state_of(p, r) == ST_DISK &&
                  t_stats(p).resident_bytes == 0,
                  "move_to_disk of an object pinned by a %s process: state "
                  "%#x, resident %" PRIu64 " after its pin went",
                  _i == 0 ? "releasing" : "killed", state_of(p, r),
                  t_stats(p).resident_bytes);
    expect_bytes(p, r, 50000, 6, V_DISK);
    t_assert_healthy(p);
}
END_TEST

/* Refcounted objects spill like any other; the last unref of a spilled
 * one deletes it and its file. */
START_TEST(test_refcounted_spilled)
{
    mempool *p = sp_create(SMALL_ARENA, 0, MEMPOOL_POLICY_LRU,
                           MEMPOOL_IO_AUTO);
    mempool *q = sp_attach(48, MEMPOOL_IO_AUTO);
    int wq = mempool_worker_id(q);
    mempool_dref a, b, c;
    mempool_fileref f;

    a = set_i64(p, wq, 2, MEMPOOL_SET_REFCOUNTED);
    b = set_i64(p, wq, 2, MEMPOOL_SET_REFCOUNTED);
    c = set_i64(p, wq, 4, MEMPOOL_SET_REFCOUNTED);   /* 64 > 48: a goes */
    ASSERT_STATE(p, a, ST_DISK);
    ASSERT_STATE(p, b, ST_MEM);
    ASSERT_STATE(p, c, ST_MEM);
    ASSERT_RC(mempool_move_to_disk(p, a, &f), 0);
    ASSERT_RC(mempool_ref(q, a), 0);
    ck_assert_int_eq(t_refs(p, a), 2);
    expect_i64(q, a, 2, V_DISK);
    ASSERT_RC(mempool_unref(p, a), 0);
    ASSERT_STATE(p, a, ST_DISK);
    ck_assert(exists(f.path));
    ASSERT_RC(mempool_unref(q, a), 0);
    ASSERT_STATE(p, a, ST_GONE);
    ck_assert_msg(!exists(f.path), "last unref kept the file %s", f.path);
    ck_assert_uint_eq(t_stats(p).disk_bytes, 0);
    ASSERT_RC(mempool_move_to_disk(p, b, NULL), 0);
    ASSERT_RC(mempool_unref(p, b), 0);
    ASSERT_RC(mempool_unref(p, c), 0);
    ck_assert_uint_eq(t_stats(p).objects, 0);
    ck_assert_uint_eq(t_stats(p).resident_bytes, 0);
    ASSERT_FILES(sp_pdir, 0, 0);
    t_assert_healthy(p);
}
END_TEST

/* Readers in another process never see a wrong byte or an error while
 * their objects are evicted, moved and copied under them. */
enum { CR_N = 32 };
static mempool_dref cr_r[CR_N];
static const size_t cr_len = 64 * KiB;

static int cr_reader(void *arg)
{
    mempool *p = child_open(sp_name, 0, MEMPOOL_IO_AUTO, 0, 0);
    uint64_t rs = (uint64_t)getpid();

    (void)arg;
    T_CHILD_ASSERT(p != NULL);
    for (int k = 0; k < 4000; k++) {
        int i = (int)(t_rand(&rs) % CR_N);
        mempool_view v;

        T_CHILD_EQ(mempool_get(p, cr_r[i], &v), 0);
        T_CHILD_EQ(v.len, cr_len);
        T_CHILD_ASSERT(sp_check(v.data, cr_len, 900 + (uint64_t)i));
        T_CHILD_EQ(mempool_release(p, &v), 0);
    }
    T_CHILD_EQ(mempool_close(p), 0);
    return 0;
}

START_TEST(test_readers_during_eviction)
{
    unsigned io = (unsigned)_i;
    mempool *p = sp_create(32 * MiB, 512 * KiB, MEMPOOL_POLICY_LRU, io);
    uint64_t rs = 12345;
    bool reaped = false;
    pid_t pid;
    int st = -1;

    for (int i = 0; i < CR_N; i++)
        cr_r[i] = set_bytes(p, 0, cr_len, 900 + (uint64_t)i, 0);
    pid = t_fork(cr_reader, NULL);
    for (int k = 0; k < 400; k++) {
        int i = (int)(t_rand(&rs) % CR_N);
        mempool_dref t;

        if (waitpid(pid, &st, WNOHANG) == pid) {
            reaped = true;
            break;
        }
        switch (k % 4) {
        case 0:
            ASSERT_RC(mempool_move_to_disk(p, cr_r[i], NULL), 0);
            break;
        case 1:
            ASSERT_RC(mempool_copy_to_disk(p, cr_r[i], NULL), 0);
            break;
        default:
            t = set_bytes(p, 0, cr_len, 1, 0);
            ASSERT_RC(mempool_delete(p, t), 0);
            break;
        }
    }
    if (!reaped)
        st = t_wait(pid, T_WAIT_S);
    else
        st = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    ck_assert_msg(st == 0, "reader failed (%d)", st);
    for (int i = 0; i < CR_N; i++)
        expect_bytes(p, cr_r[i], cr_len, 900 + (uint64_t)i, 0);
    ck_assert_uint_gt(t_stats(p).spills, 0);
    t_assert_healthy(p);
}
END_TEST

/* B12: every worker killed; the next open reaps them and the spilled and
 * resident objects are all still there. */
static int ak_fd = -1;

static int ak_child(void *arg)
{
    mempool *p = child_open(sp_name, 20000, MEMPOOL_IO_AUTO, 0, 0);

    (void)arg;
    T_CHILD_ASSERT(p != NULL);
    for (int i = 0; i < 4; i++) {
        mempool_dref r;

        T_CHILD_EQ(try_set_bytes(p, 0, 8000, 80 + (uint64_t)i, &r), 0);
        T_CHILD_EQ(t_send_dref(ak_fd, r), 0);
    }
    for (;;)
        pause();
}

START_TEST(test_all_workers_killed)
{
    mempool *p = sp_create(SMALL_ARENA, 0, MEMPOOL_POLICY_LRU,
                           MEMPOOL_IO_AUTO);
    mempool_dref r[4];
    int fds[2], disk = 0;
    pid_t pid;

    sp_close(p);                      /* the pool stays */
    t_pipe(fds);
    ak_fd = fds[1];
    pid = t_fork(ak_child, NULL);
    close(fds[1]);
    for (int i = 0; i < 4; i++)
        ASSERT_RC(t_recv_dref(fds[0], &r[i], T_WAIT_S), 0);
    close(fds[0]);
    ck_assert_int_eq(t_kill(pid), SIGKILL);
    p = sp_attach(0, MEMPOOL_IO_AUTO);
    t_assert_healthy(p);
    for (int i = 0; i < 4; i++) {
        unsigned st = state_of(p, r[i]);

        disk += st == ST_DISK;
        expect_bytes(p, r[i], 8000, 80 + (uint64_t)i,
                     st == ST_DISK ? V_DISK : V_MEM);
    }
    ck_assert_int_eq(disk, 2);
    ASSERT_FILES(sp_pdir, 2, 0);
    t_assert_healthy(p);
}
END_TEST

/* ============================================================ kills */

struct kill_rep {
    mempool_dref r;
    uint64_t len, seed, sum;
};

static unsigned kill_io;
static int kill_fd = -1;

static int kill_child(void *arg)
{
    mempool *p = child_open(sp_name, 48 * MiB, kill_io, 0, 0);
    uint64_t rs = (uint64_t)getpid() * 7919u;
    unsigned char *buf = malloc(32 * MiB);

    (void)arg;
    T_CHILD_ASSERT(p != NULL && buf != NULL);
    for (int i = 0; i < 24; i++) {
        struct kill_rep k;

        k.len = (8 * MiB) + t_rand(&rs) % (24 * MiB + 1);
        k.seed = t_rand(&rs);
        sp_fill(buf, k.len, k.seed);
        k.sum = sp_sum(buf, k.len);
        T_CHILD_EQ(mempool_set(p, buf, k.len, &k.r), 0);
        T_CHILD_EQ(t_send(kill_fd, &k, sizeof k), 0);
    }
    for (;;)
        pause();
}

/*
 * SIGKILL a process at a random moment while it sets 8-32 MiB objects over
 * its limit (so it is spilling): after reaping, the pool checks out, no
 * temp file is left, and everything it published reads back exactly.
 */
START_TEST(test_kill_while_spilling)
{
    mempool *p = sp_create(192 * MiB, 0, MEMPOOL_POLICY_LRU,
                           MEMPOOL_IO_AUTO);
    uint64_t rs = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 20);

    for (int round = 0; round < 4; round++) {
        struct kill_rep reps[24];
        int n = 0, want, fds[2], ntmp, nfiles;
        pid_t pid;

        kill_io = (unsigned)round % 2;
        t_pipe(fds);
        kill_fd = fds[1];
        pid = t_fork(kill_child, NULL);
        close(fds[1]);
        want = 3 + (int)(t_rand(&rs) % 4);   /* by then it spills */
        while (n < want) {
            ASSERT_RC(t_recv(fds[0], &reps[n], sizeof reps[n], T_WAIT_S), 0);
            n++;
        }
        usleep((useconds_t)(t_rand(&rs) % 60000));
        ck_assert_int_eq(t_kill(pid), SIGKILL);
        while (n < 24 && t_recv(fds[0], &reps[n], sizeof reps[n], 1.0) == 0)
            n++;
        close(fds[0]);
        ck_assert_int_ge(mempool_reap(p), 0);
        t_assert_healthy(p);
        nfiles = dir_files(sp_pdir, &ntmp);
        ck_assert_msg(ntmp == 0, "round %d: %d temp files after the reap",
                      round, ntmp);
        for (int i = 0; i < n; i++) {
            mempool_view v;

            ASSERT_RC(mempool_get(p, reps[i].r, &v), 0);
            ck_assert_uint_eq(v.len, reps[i].len);
            ck_assert_msg(sp_sum(v.data, v.len) == reps[i].sum,
                          "round %d: object %d (%s) differs", round, i,
                          v.flags == V_DISK ? "disk" : "memory");
            ASSERT_RC(mempool_release(p, &v), 0);
        }
        for (int i = 0; i < n; i++)
            ASSERT_RC(mempool_delete(p, reps[i].r), 0);
        t_assert_healthy(p);
        if (t_stats(p).objects == 0) {
            struct mempool_stats s = t_stats(p);

            nfiles = dir_files(sp_pdir, &ntmp);
            ck_assert_msg(nfiles == 0 && ntmp == 0, "round %d: %d files and "
                          "%d temps left with no object", round, nfiles,
                          ntmp);
            ck_assert_uint_eq(s.disk_bytes, 0);
            ck_assert_uint_eq(s.resident_bytes, 0);
        }
        (void)nfiles;
    }
    ck_assert_uint_gt(t_stats(p).spills, 0);
}
END_TEST

/* The pool's background spiller is re-elected when its process dies. */
static int sk_fd = -1;

static int spiller_child(void *arg)
{
    mempool *p = child_open(sp_name, 0, MEMPOOL_IO_AUTO, 0, 1);
    struct mempool_stats s;
    int me;

    (void)arg;
    T_CHILD_ASSERT(p != NULL);
    me = mempool_worker_id(p);
    for (int i = 0; i < 2000; i++) {
        T_CHILD_EQ(mempool_stats(p, &s), 0);
        if (s.spiller == me)
            break;
        usleep(5000);
    }
    T_CHILD_EQ(s.spiller, me);
    T_CHILD_EQ(t_send_u64(sk_fd, (uint64_t)me), 0);
    for (;;)
        pause();
}

static bool poll_spiller(mempool *p, int want, double seconds)
{
    for (int i = 0; i < (int)(seconds * 200); i++) {
        if (t_stats(p).spiller == want)
            return true;
        usleep(5000);
    }
    return t_stats(p).spiller == want;
}

START_TEST(test_spiller_reelected)
{
    mempool *p = sp_create(SMALL_ARENA, 0, MEMPOOL_POLICY_LRU,
                           MEMPOOL_IO_AUTO);
    mempool_options o;
    mempool *q;
    uint64_t cw;
    int fds[2];
    pid_t pid;

    ck_assert_int_eq(t_stats(p).spiller, 0);
    t_pipe(fds);
    sk_fd = fds[1];
    pid = t_fork(spiller_child, NULL);
    close(fds[1]);
    ASSERT_RC(t_recv_u64(fds[0], &cw, T_WAIT_S), 0);
    close(fds[0]);
    ck_assert_int_eq(t_stats(p).spiller, (int)cw);
    sp_opts(&o, SMALL_ARENA, 0, MEMPOOL_POLICY_LRU, MEMPOOL_IO_AUTO);
    o.flags = 0;
    o.spiller = 1;
    q = sp_open(&o);
    usleep(150000);                  /* a few of q's ticks: it must lose */
    ck_assert_int_eq(t_stats(p).spiller, (int)cw);
    ck_assert_int_eq(t_kill(pid), SIGKILL);
    ck_assert_msg(poll_spiller(p, mempool_worker_id(q), 20.0),
                  "spiller is %d after the old one (%d) died; want %d",
                  t_stats(p).spiller, (int)cw, mempool_worker_id(q));
    ck_assert_int_ge(mempool_reap(p), 0);
    t_assert_healthy(p);
}
END_TEST

/* The elected spiller keeps the arena under its high watermark (85%) when
 * nobody sets anything. */
START_TEST(test_background_spiller)
{
    enum { N = 200 };
    mempool_options o;
    mempool *p;
    mempool_dref r[N];
    struct mempool_stats s;
    const size_t len = 128 * KiB;
    int n = 0;
    bool ok = false;

    sp_opts(&o, 16 * MiB, 0, MEMPOOL_POLICY_LRU, MEMPOOL_IO_AUTO);
    o.spiller = 1;
    p = sp_open(&o);
    ck_assert(poll_spiller(p, mempool_worker_id(p), 20.0));
    s = t_stats(p);
    while (n < N && s.used_bytes < s.data_bytes / 100 * 92 &&
           s.used_bytes + 2 * len < s.data_bytes) {
        r[n] = set_bytes(p, 0, len, 3000 + (uint64_t)n, 0);
        n++;
        s = t_stats(p);
    }
    for (int i = 0; i < 4000 && !ok; i++) {
        s = t_stats(p);
        ok = s.used_bytes <= s.data_bytes / 100 * 85 && s.spills > 0;
        if (!ok)
            usleep(5000);
    }
    ck_assert_msg(ok, "arena at %" PRIu64 " of %" PRIu64 " bytes, %" PRIu64
                  " spills", s.used_bytes, s.data_bytes, s.spills);
    for (int i = 0; i < n; i++)
        expect_bytes(p, r[i], len, 3000 + (uint64_t)i, 0);
    t_assert_healthy(p);
}
END_TEST

/*
 * A writer killed in the middle of writing a file (stopped while its temp
 * file exists, then SIGKILLed): the reaper removes the temp file. Loop 0:
 * the object was deleted meanwhile - its memory and entry must come back.
 * Loop 1: it stays resident and can be moved to disk again.
 */
static int mw_go = -1, mw_go_w = -1;

static int midwrite_child(void *arg)
{
    const size_t len = 64 * MiB;
    mempool *p;
    mempool_dref r;

    (void)arg;
    close(mw_go_w);
    setenv("MEMPOOL_FAILPOINT", "io.short", 1);
    p = child_open(sp_name, 0, MEMPOOL_IO_PWRITE, 0, 0);
    T_CHILD_ASSERT(p != NULL);
    T_CHILD_EQ(try_set_bytes(p, 0, len, 5, &r), 0);
    T_CHILD_EQ(t_send_dref(fp_fd, r), 0);
    T_CHILD_EQ(t_wait_fd(mw_go, T_WAIT_S), 0);
    T_CHILD_EQ(mempool_move_to_disk(p, r, NULL), 0);
    for (;;)
        pause();
}

START_TEST(test_kill_mid_write)
{
    mempool *p = sp_create(160 * MiB, 0, MEMPOOL_POLICY_LRU,
                           MEMPOOL_IO_AUTO);
    struct mempool_stats s0, s;
    bool caught = false;

    s0 = t_stats(p);
    for (int attempt = 0; attempt < 5 && !caught; attempt++) {
        int fds[2], go[2], ntmp = 0, st;
        mempool_dref r;
        pid_t pid;

        t_pipe(fds);
        t_pipe(go);
        fp_fd = fds[1];
        mw_go = go[0];
        mw_go_w = go[1];
        pid = t_fork(midwrite_child, NULL);
        close(fds[1]);
        close(go[0]);
        ASSERT_RC(t_recv_dref(fds[0], &r, T_WAIT_S), 0);
        close(fds[0]);
        close(go[1]);                          /* go */
        for (int i = 0; i < 20000 && ntmp == 0; i++) {
            if (dir_files(sp_pdir, &ntmp) > 0)
                break;                         /* finished: too late */
            if (ntmp == 0)
                usleep(100);
        }
        if (ntmp > 0) {
            kill(pid, SIGSTOP);
            ck_assert_int_eq(waitpid(pid, &st, WUNTRACED), pid);
            dir_files(sp_pdir, &ntmp);
            caught = ntmp > 0 && state_of(p, r) == ST_MEM;
        }
        for (int i = 0; !caught && i < 4000 && state_of(p, r) != ST_DISK;
             i++)
            usleep(5000);                      /* let the move finish */
        if (caught && _i == 0)
            ASSERT_RC(mempool_delete(p, r), 0);
        ck_assert_int_eq(t_kill(pid), SIGKILL);
        ck_assert_int_ge(mempool_reap(p), 1);
        t_assert_healthy(p);
        ASSERT_FILES(sp_pdir, caught ? 0 : 1, 0);
        if (!caught || _i == 1) {
            ASSERT_STATE(p, r, caught ? ST_MEM : ST_DISK);
            ASSERT_RC(mempool_move_to_disk(p, r, NULL), 0);
            expect_bytes(p, r, 64 * MiB, 5, V_DISK);
            ASSERT_RC(mempool_delete(p, r), 0);
        }
        s = t_stats(p);
        ck_assert_msg(s.objects == s0.objects && s.used_bytes == s0.used_bytes,
                      "after a writer died mid-write%s: %" PRIu64 " objects, "
                      "%" PRIu64 " bytes used (before: %" PRIu64 ", %" PRIu64
                      ")", _i == 0 ? " of a deleted object" : "", s.objects,
                      s.used_bytes, s0.objects, s0.used_bytes);
        ASSERT_FILES(sp_pdir, 0, 0);
    }
    if (!caught)
        fprintf(stderr, "check_spill: test_kill_mid_write never caught a "
                "write in flight; only the plain path ran\n");
    t_assert_healthy(p);
}
END_TEST

/*
 * A writer killed after renaming its file into place but before recording
 * it (the object is still memory-only): the file must not outlive the
 * object. The window is microseconds wide; it is aimed at by running the
 * writer niced on the same CPU as this process, which an inotify event for
 * the rename wakes to stop it. Attempts that miss the window are repeated.
 */
static int kr_go = -1, kr_go_w = -1;
static mempool_dref kr_r;

static int kill_after_rename_child(void *arg)
{
    mempool *p;

    (void)arg;
    close(kr_go_w);
    (void)setpriority(PRIO_PROCESS, 0, 19);
    p = child_open(sp_name, 0, MEMPOOL_IO_PWRITE, 0, 0);
    T_CHILD_ASSERT(p != NULL);
    T_CHILD_EQ(t_wait_fd(kr_go, T_WAIT_S), 0);
    T_CHILD_EQ(mempool_move_to_disk(p, kr_r, NULL), 0);
    for (;;)
        pause();
}

START_TEST(test_kill_after_rename)
{
    mempool *p = sp_create(SMALL_ARENA * 4, 0, MEMPOOL_POLICY_LRU,
                           MEMPOOL_IO_AUTO);
    cpu_set_t cpus;
    int caught = 0, attempt;

    CPU_ZERO(&cpus);
    CPU_SET(0, &cpus);
    (void)sched_setaffinity(0, sizeof cpus, &cpus);
    (void)setpriority(PRIO_PROCESS, 0, -20);
    /* the pool makes its directory when it is created */
    ck_assert(mkdir(sp_pdir, 0700) == 0 || errno == EEXIST);
    for (attempt = 0; attempt < 30 && !caught; attempt++) {
        int in = inotify_init1(IN_CLOEXEC), go[2], st;
        char ev[4096];
        unsigned state;
        pid_t pid;

        ck_assert_int_ge(in, 0);
        ck_assert_int_ge(inotify_add_watch(in, sp_pdir, IN_MOVED_TO), 0);
        kr_r = set_bytes(p, 0, 1 * MiB, 50 + (uint64_t)attempt, 0);
        t_pipe(go);
        kr_go = go[0];
        kr_go_w = go[1];
        pid = t_fork(kill_after_rename_child, NULL);
        close(go[0]);
        close(go[1]);                              /* go */
        ASSERT_RC(t_wait_fd(in, T_WAIT_S), 0);      /* the rename */
        kill(pid, SIGSTOP);
        ck_assert_int_gt(read(in, ev, sizeof ev), 0);
        ck_assert_int_eq(waitpid(pid, &st, WUNTRACED), pid);
        state = state_of(p, kr_r);
        caught = state == ST_MEM;
        ck_assert_int_eq(t_kill(pid), SIGKILL);
        close(in);
        ck_assert_int_ge(mempool_reap(p), 1);
        t_assert_healthy(p);
        ASSERT_RC(mempool_delete(p, kr_r), 0);
        ck_assert_msg(dir_files(sp_pdir, NULL) == 0, "a writer killed between "
                      "rename and record (state %#x) left %d spill file(s) "
                      "behind its deleted object", state,
                      dir_files(sp_pdir, NULL));
    }
    if (!caught)
        fprintf(stderr, "check_spill: test_kill_after_rename never hit its "
                "window in %d attempts\n", attempt);
    ck_assert_uint_eq(t_stats(p).objects, 0);
    t_assert_healthy(p);
}
END_TEST

/* ============================================================= main */

/* check_spill --peer-get <pool> <dref> <len> <sum-hex> <spill_dir>: an
 * unrelated process reads a spilled object. 0 ok, 1 mismatch, 3 open, 4
 * get. */
static int peer_get(int argc, char **argv)
{
    mempool_options o;
    mempool *p;
    mempool_dref r;
    mempool_view v;
    uint64_t len, sum;
    int rc, bad = 0;

    if (argc != 7 || mempool_dref_parse(argv[3], &r) != 0)
        return 2;
    len = strtoull(argv[4], NULL, 10);
    sum = strtoull(argv[5], NULL, 16);
    mempool_options_init(&o);
    o.flags = 0;
    o.spill_dir = argv[6];
    o.spiller = 0;
    if ((rc = mempool_open(argv[2], &o, &p)) != 0) {
        fprintf(stderr, "peer: open: %s\n", mempool_strerror(rc));
        return 3;
    }
    if ((rc = mempool_get(p, r, &v)) != 0) {
        fprintf(stderr, "peer: get: %s\n", mempool_strerror(rc));
        mempool_close(p);
        return 4;
    }
    if (v.len != len || v.flags != V_DISK || sp_sum(v.data, v.len) != sum) {
        fprintf(stderr, "peer: len %" PRIu64 " flags %u: mismatch\n", v.len,
                v.flags);
        bad = 1;
    }
    if (mempool_release(p, &v) != 0)
        bad = 1;
    mempool_close(p);
    return bad;
}

static Suite *spill_suite(void)
{
    Suite *s = suite_create("spill");
    TCase *tc;

    tc = sp_tcase(s, "limits", 60);
    tcase_add_test(tc, test_b7_dry_run);
    tcase_add_loop_test(tc, test_b10_limit_80, 0, 2);
    tcase_add_loop_test(tc, test_e24_policy_order, 0, 4);
    tcase_add_loop_test(tc, test_limit_edges, 0, 2);
    tcase_add_loop_test(tc, test_e30_too_big, 0, 2);
    tcase_add_loop_test(tc, test_e32_delete_both, 0, 2);
    tcase_add_loop_test(tc, test_e33_all_pinned, 0, 2);
    tcase_add_loop_test(tc, test_e34_disk_limit, 0, 2);
    tcase_add_loop_test(tc, test_disk_limit_many_victims, 0, 2);
    tcase_add_loop_test(tc, test_g40_pinned_victim, 0, 2);
    tcase_add_loop_test(tc, test_arena_pressure, 0, 2);

    tc = sp_tcase(s, "files", 60);
    tcase_add_loop_test(tc, test_b9_move_save_destroy, 0, 2);
    tcase_add_test(tc, test_save_in_pool_dir);
    tcase_add_loop_test(tc, test_d19_copy_then_move, 0, 2);
    tcase_add_loop_test(tc, test_destroy_on_evict, 0, 2);
    tcase_add_loop_test(tc, test_g39_pinned_move, 0, 2);
    tcase_add_loop_test(tc, test_pinned_spilled_delete, 0, 2);
    tcase_add_test(tc, test_save_keeps_recency);
    tcase_add_test(tc, test_typed_spill);
    tcase_add_loop_test(tc, test_zero_and_big, 0, 2);
    tcase_add_test(tc, test_many_mappings);
    tcase_add_test(tc, test_stale_files_wiped);
    tcase_add_test(tc, test_bad_files_and_drefs);
    tcase_add_test(tc, test_options_and_backend);

    tc = sp_tcase(s, "corrupt", 60);
    tcase_add_test(tc, test_corrupt_files);
    tcase_add_test(tc, test_corrupt_other_process);

    tc = sp_tcase(s, "failures", 90);
    tcase_add_loop_test(tc, test_f36_failpoints, 0, 4);
    tcase_add_loop_test(tc, test_fp_short_writes, 0, 2);
    tcase_add_test(tc, test_f35_unusable_dir);
    tcase_add_test(tc, test_seccomp_fallback);

    tc = sp_tcase(s, "processes", 90);
    tcase_add_test(tc, test_cross_process_read);
    tcase_add_test(tc, test_g41_remote_pin_killed);
    tcase_add_loop_test(tc, test_move_pinned_by_other, 0, 2);
    tcase_add_test(tc, test_refcounted_spilled);
    tcase_add_loop_test(tc, test_readers_during_eviction, 0, 2);
    tcase_add_test(tc, test_all_workers_killed);
    tcase_add_test(tc, test_background_spiller);

    tc = sp_tcase(s, "kills", 120);
    tcase_add_test(tc, test_kill_while_spilling);
    tcase_add_test(tc, test_spiller_reelected);
    tcase_add_loop_test(tc, test_kill_mid_write, 0, 2);
    tcase_add_test(tc, test_kill_after_rename);
    return s;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--peer-get") == 0)
        return peer_get(argc, argv);
    return t_run(spill_suite(), "spill");
}
