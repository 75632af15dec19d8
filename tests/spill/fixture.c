/* SPDX-License-Identifier: MIT */
/*
 * spill/fixture.c - the spilling suite's fixture, data patterns, object and
 * file helpers, backend detection and the destructive order check (see
 * fixture.h for the rules every section follows).
 */
#include "fixture.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/io_uring.h>

/* ------------------------------------------------------------ fixture */

/* The one fixture of the running test (set by sp_setup). */
struct sp_fixture sp;

static void sp_setup(void)
{
    mempool_options o;
    const char *base;

    t_options(&o, T_ARENA_BYTES);
    base = o.spill_dir && o.spill_dir[0] == '/' ? o.spill_dir : "/tmp";
    snprintf(sp.dir, sizeof sp.dir, "%s/d.XXXXXX", base);
    ck_assert_msg(mkdtemp(sp.dir) != NULL, "mkdtemp(%s): %s", sp.dir,
                  strerror(errno));
    t_pool_name_fn(sp.name, NULL, "fx");
    snprintf(sp.pdir, sizeof sp.pdir, "%s/%s", sp.dir, sp.name);
    sp.nh = 0;
    sp.nextra = 0;
}

static void sp_teardown(void)
{
    while (sp.nh > 0)
        mempool_close(sp.h[--sp.nh]);
    (void)mempool_destroy(sp.name);
    while (sp.nextra > 0)
        (void)mempool_destroy(sp.extra[--sp.nextra]);
    if (sp.dir[0])
        t_rm_tree(sp.dir);
}

TCase *sp_tcase(Suite *s, const char *name, double timeout)
{
    TCase *tc = tcase_create(name);

    tcase_add_checked_fixture(tc, sp_setup, sp_teardown);
    tcase_set_timeout(tc, timeout);
    suite_add_tcase(s, tc);
    return tc;
}

/* Options for this test's pools: private spill dir, no background spiller,
 * and the library's default bound on a set that makes room (5 s), not the
 * core tests' 10 ms: a set here spills its victims itself, and on a
 * loaded machine a first spill (directory, I/O engine, write) outlasted
 * 10 ms and the set answered -ENOMEM. A test that wants -ENOMEM after the
 * wait (E33) sets its own. */
void sp_opts(mempool_options *o, uint64_t arena, uint64_t maxmem,
             unsigned policy, unsigned io)
{
    t_options(o, arena);
    o->spill_dir = sp.dir;
    o->max_memsize = maxmem;
    o->policy = policy;
    o->io_mode = io;
    o->spiller = 0;
    o->evict_wait_ms = MEMPOOL_PEER_WAIT_MS;
}

mempool *sp_open_as(const char *name, const mempool_options *o)
{
    mempool *p = NULL;
    int rc = mempool_open(name, o, &p);

    ck_assert_msg(rc == 0, "mempool_open(%s) = %d (%s)", name, rc,
                  mempool_strerror(rc));
    ck_assert_int_lt(sp.nh, 16);
    sp.h[sp.nh++] = p;
    return p;
}

mempool *sp_open(const mempool_options *o)
{
    return sp_open_as(sp.name, o);
}

/* Create this test's pool (W1). */
mempool *sp_create(uint64_t arena, uint64_t maxmem, unsigned policy,
                   unsigned io)
{
    mempool_options o;

    sp_opts(&o, arena, maxmem, policy, io);
    return sp_open(&o);
}

/* Another handle (worker) on this test's pool in this process. */
mempool *sp_attach(uint64_t maxmem, unsigned io)
{
    mempool_options o;

    sp_opts(&o, T_ARENA_BYTES, maxmem, MEMPOOL_POLICY_LRU, io);
    o.flags = 0;
    return sp_open(&o);
}

void sp_close(mempool *p)
{
    for (int i = 0; i < sp.nh; i++) {
        if (sp.h[i] == p) {
            sp.h[i] = sp.h[--sp.nh];
            ASSERT_RC(mempool_close(p), 0);
            return;
        }
    }
    ck_abort_msg("sp_close: unknown handle");
}

const char *sp_extra_name(void)
{
    ck_assert_int_lt(sp.nextra, 4);
    return t_pool_name_fn(sp.extra[sp.nextra++], NULL, "extra");
}

/* In a forked child: a handle of its own on pool @p name (attach). */
mempool *child_open(const char *name, uint64_t maxmem, unsigned io,
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
void sp_fill(void *buf, size_t len, uint64_t seed)
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

bool sp_check(const void *buf, size_t len, uint64_t seed)
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
uint64_t sp_sum(const void *buf, size_t len)
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

/* An untyped object of the int64s 1..n (docs/scenarios.md: i64{1,..,n}). */
mempool_dref set_i64(mempool *p, int owner, int n, uint32_t flags)
{
    int64_t v[16];
    mempool_put_options o = { owner, 0, flags };
    mempool_dref r;

    ck_assert_int_le(n, 16);
    for (int i = 0; i < n; i++)
        v[i] = i + 1;
    ASSERT_RC(mempool_put_ex(p, v, (size_t)n * 8, &o, &r), 0);
    return r;
}

/* Read i64{1..n} back through @p p; the view must have @p vflags. */
void expect_i64(mempool *p, mempool_dref r, int n, uint32_t vflags)
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

mempool_dref set_bytes(mempool *p, int owner, size_t len,
                       uint64_t seed, uint32_t flags)
{
    mempool_put_options o = { owner, 0, flags };
    unsigned char *buf = malloc(len ? len : 1);
    mempool_dref r;
    int rc;

    ck_assert_ptr_nonnull(buf);
    sp_fill(buf, len, seed);
    rc = mempool_put_ex(p, buf, len, &o, &r);
    free(buf);
    ASSERT_RC(rc, 0);
    return r;
}

int try_set_bytes(mempool *p, int owner, size_t len, uint64_t seed,
                  mempool_dref *r)
{
    mempool_put_options o = { owner, 0, 0 };
    unsigned char *buf = malloc(len ? len : 1);
    int rc;

    if (!buf)
        return -ENOMEM;
    sp_fill(buf, len, seed);
    rc = mempool_put_ex(p, buf, len, &o, r);
    free(buf);
    return rc;
}

/* Read sp_fill(seed) bytes back; @p vflags 0 = either kind of view. */
void expect_bytes(mempool *p, mempool_dref r, size_t len,
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
unsigned state_of(mempool *p, mempool_dref r)
{
    mempool_info in;

    return mempool_info_get(p, r, &in) == 0 ? in.state : ST_GONE;
}

/* ------------------------------------------------------------- files */

/* Does @p n look like a spill file name ("<idx>-<gen>" or ".tmp")? Written
 * apart from the library's own test (spilldir.c), as an oracle. */
bool spill_name(const char *n, bool *tmp)
{
    static const char digits[] = "0123456789";
    size_t a = strspn(n, digits), b;

    if (a == 0 || n[a] != '-' || (b = strspn(n + a + 1, digits)) == 0)
        return false;
    *tmp = strcmp(n + a + 1 + b, ".tmp") == 0;
    return n[a + 1 + b] == '\0' || *tmp;
}

/* Spill files in @p dir (0 if it does not exist); *ntmp gets the temps. */
int dir_files(const char *dir, int *ntmp)
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

bool exists(const char *path)
{
    struct stat st;

    return lstat(path, &st) == 0;
}

struct stat stat_of(const char *path)
{
    struct stat st;

    ck_assert_msg(stat(path, &st) == 0, "stat %s: %s", path, strerror(errno));
    return st;
}

/* The fileref must name "<sp.pdir>/<idx>-<gen>" of @p len payload bytes. */
void check_fileref(const mempool_fileref *f, uint64_t len)
{
    size_t n = strlen(sp.pdir);
    bool tmp = true;
    struct stat st;

    ck_assert_msg(strncmp(f->path, sp.pdir, n) == 0 && f->path[n] == '/' &&
                  spill_name(f->path + n + 1, &tmp) && !tmp,
                  "fileref path %s is not a spill file of %s", f->path,
                  sp.pdir);
    ck_assert_uint_eq(f->len, len);
    st = stat_of(f->path);
    ck_assert(S_ISREG(st.st_mode));
    ck_assert_uint_eq((uint64_t)st.st_size, FILE_HDR + len);
}

bool same_file(const struct stat *a, const struct stat *b)
{
    return a->st_ino == b->st_ino && a->st_dev == b->st_dev &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
           a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
           a->st_size == b->st_size;
}

/* Read a whole file into a malloc'd buffer. */
unsigned char *slurp(const char *path, size_t *len)
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

void spit(const char *path, const void *buf, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

    ck_assert_msg(fd >= 0, "open %s: %s", path, strerror(errno));
    ck_assert_int_eq(write(fd, buf, len), (ssize_t)len);
    close(fd);
}

void flip_byte(const char *path, off_t off)
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

bool uring_usable(void)
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
const char *want_backend(unsigned io)
{
    const char *env = getenv("MEMPOOL_IO");

    if (io == MEMPOOL_IO_PWRITE || (env && strcmp(env, "pwrite") == 0) ||
        !uring_usable())
        return "pwrite";
    return "io_uring";
}

/* -------------------------------------------------------------- order */

/*
 * The owner's resident objects, most recent first, are r[0..n) (and
 * nothing else of anyone's is resident). Checked destructively: for each
 * victim in policy order (LRU: from the end, MRU: from the front) lower the
 * owner's limit by its size and set a 0-byte object charged to the owner;
 * exactly that victim must be spilled.
 */
void assert_order(mempool *setter, mempool *owner, unsigned policy,
                  const mempool_dref *r, const uint64_t *len, int n)
{
    mempool_put_options o = { mempool_worker_id(owner), 0, 0 };
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

        ASSERT_RC(mempool_limit_set(owner, MEMPOOL_LIMIT_MEMSIZE, lim), 0);
        ASSERT_RC(mempool_put_ex(setter, "", 0, &o, &z), 0);
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

/* -------------------------------------------------------------- spiller */

bool poll_spiller(mempool *p, int want, double seconds)
{
    for (int i = 0; i < (int)(seconds * 200); i++) {
        if (t_stats(p).spiller == want)
            return true;
        usleep(5000);
    }
    return t_stats(p).spiller == want;
}
