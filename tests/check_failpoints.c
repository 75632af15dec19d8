/* SPDX-License-Identifier: MIT */
/*
 * check_failpoints.c - the crash matrix: a worker SIGKILLed (or SIGSTOPped)
 * at every failpoint of src/failpoints.def, at every hit the workload makes
 * (N = 1, 2, 3, ... until the point is not reached), leaves the pool exactly
 * as the objects it published account for.
 *
 * Only built with -DMEMPOOL_FAILPOINTS=ON. The list of points is generated
 * from src/failpoints.def (one loop test per point), so a point added there
 * is killed at here without any change to this file; a point that no
 * workload variant reaches fails its test ("extend the workload").
 *
 * One run: a forked child sets MEMPOOL_FAILPOINT="<point>@N" and opens the
 * pool (max_memsize 96 KiB, so its objects spill and are read back from
 * disk) and runs a workload that exercises every operation: set of sizes 0
 * .. 70000 (slab and page-run objects), reserve/publish, reserve/abort,
 * get/release, delete while pinned, refcounted set/ref/unref (its own
 * objects and one of the parent's), set with owner = another live worker
 * (the "peer"; one of them 5 MiB, which backs new pages on a helper
 * thread: back.ahead; a small one we delete: our stash, handback.c),
 * move_to_disk (also while pinned: evicted at the last
 * release), copy_to_disk, get of spilled objects (its own and one of the
 * parent's), delete of a spilled object. Before each operation can make an
 * object visible, and after it did, the child writes a record to a pipe, so
 * the parent knows which objects must survive (published), may survive
 * (publish or delete in flight) or must be gone (reservations, aborts,
 * deletes, refcounted objects only the child referenced).
 *
 * Variants: "main" (the workload above); "reaper" (the child first forks a
 * grandchild that pins, reserves and references, kills it and then opens
 * the pool, reusing and repairing the dead slot - slot.locked, reap.entries
 * - and later kills a second grandchild and calls mempool_reap());
 * "create" (the child creates a new pool - create.built, create.linked -
 * and runs the workload there).
 *
 * After the child died (or finished: the point was not hit N times) the
 * parent reaps it (mempool_reap(), or a fresh mempool_open() on every other
 * run), then: mempool_check() is clean; no *.tmp is left; every object the
 * child published reads back with its checksum (from memory or disk), none
 * is pinned or referenced; objects that must be gone are -ENOENT; the
 * refcounted object the parent shares has exactly the parent's reference;
 * stats objects / used_bytes / resident_bytes / disk_bytes equal the
 * figures before the run plus exactly what the surviving objects account
 * for (the dead child's survivors become the pool's, owner 0, and still
 * count in every figure: see test_departed_in_stats); after the parent
 * deletes the survivors,
 * all four are back to their values before the run and no spill file of
 * the child's is left.
 *
 * The "stop" case runs a few points with the stop action: the stopped
 * child is not reaped (mempool_reap() returns 0, it counts as alive), the
 * pool checks clean, the parent and the peer keep setting, getting and
 * deleting other objects meanwhile (outside the allocator lock; with the
 * child stopped holding the lock only reads are expected to proceed and a
 * set waits), and after SIGCONT the child completes its workload, verifying
 * everything it reads.
 *
 * The "bugs" case holds minimal reproductions of library bugs this matrix,
 * check_soak and check_linear found; each explains itself.
 *
 * Environment: T_FP_ONLY=<point> runs one point; T_FP_MAXN caps N (default
 * 1000); T_FP_VERBOSE=1 prints every run; T_FP_OPEN_REAP=0 reaps with
 * mempool_reap() only (never by a fresh open).
 * Scenarios (docs/scenarios.md): S2, S9-S16, S18.
 */
#include "helpers.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>

/* The matrix: every failpoint the library defines. */
static const struct fp_def {
    const char *name, *what;
} fp_list[] = {
#define MP_FAILPOINT(id, name, what) { name, what },
#include "failpoints.def"
#undef MP_FAILPOINT
};
#define NFP ((int)(sizeof fp_list / sizeof fp_list[0]))

#define WL_LIMIT (96 * KiB)      /* the child's max_memsize */
#define WL_ROUNDS 2
#define WL_KEEP 20               /* live objects the child keeps at most */
#define WL_BIG (5 * MiB + 4097)  /* a large put (the peer's): backahead.c */

/* The kill case's work is a count: every hit of a point (up to T_FP_MAXN)
 * and three of each other variant, each one child's workload and its
 * verification. So the bound is per run (t_watchdog), not per point:
 * cache.flushed is hit once per entry a close flushes from the allocator
 * cache (~280 runs, ~25 s of CPU under ASan): 250 s of wall time at load
 * ~21, and over Check's old 300 s for the point at load ~40. A run takes
 * about a second under ASan at load ~21; one still going after
 * RUN_BOUND_S is hung. Check's timeout for a point (KILL_POINT_S) then only has to
 * stop a count gone wild (T_FP_MAXN runs of a point that never ends). */
#define RUN_BOUND_S 300
#define KILL_POINT_S 2400

/* ------------------------------------------------------------ records */

enum {
    R_RESERVED = 1, /* r reserved, not published */
    R_PUBLISHING,   /* about to publish r (len, sum) */
    R_PUB,          /* r published (len, sum); flags RF_PEER: owner peer */
    R_ABORTING,     /* about to abort reservation r */
    R_DELETING,     /* about to delete r */
    R_DELETED,      /* r deleted */
    R_RC,           /* refcounted r, referenced by the child only */
    R_STAGE,        /* progress: flags = stage */
    R_DONE          /* workload complete, handle closed */
};
#define RF_PEER 1u

struct rec {
    uint32_t op, flags;
    mempool_dref r;
    uint64_t len, sum;
};

enum { S_START, S_GRANDCHILD1, S_OPENED, S_GRANDCHILD2, S_REAPING, S_SETS,
       S_RESERVE, S_ABORT, S_OWNED, S_GETS, S_DEL_PINNED, S_REFCOUNT,
       S_MOVE, S_COPY, S_MOVE_PINNED, S_GET_SPILLED, S_DEL_SPILLED, S_TRIM,
       S_CLOSING, S_NSTAGES };
static const char *const stage_names[S_NSTAGES] = {
    "start", "grandchild1", "opened", "grandchild2", "reaping", "sets",
    "reserve", "abort", "owned", "gets", "del_pinned", "refcount", "move",
    "copy", "move_pinned", "get_spilled", "del_spilled", "trim", "closing"
};

/* ----------------------------------------------------- the workload */

enum { V_MAIN, V_REAPER, V_CREATE, V_COUNT };
static const char *const variant_names[V_COUNT] = { "main", "reaper",
                                                    "create" };

/* What the child needs; set before fork. */
static struct wl {
    int variant;
    char pool[T_NAME_LEN];
    char fp[160];
    int fd;
    int peer_wid;            /* 0: no peer */
    bool has_base;
    mempool_dref base_mem, base_disk, base_rc;
    uint64_t base_mem_len, base_mem_sum, base_disk_len, base_disk_sum;
    uint64_t base_rc_len, base_rc_sum;
} wl;

static const uint64_t wl_sizes[] = { 0, 1, 64, 2047, 2048, 2049, 3000,
                                     20000, 70000 };
#define WL_NSIZES (sizeof wl_sizes / sizeof wl_sizes[0])

struct cobj {
    mempool_dref r;
    uint64_t len, sum;
};

static struct cobj c_objs[64];
static int c_n;
static char *c_buf;
static uint64_t c_seed;

static void c_send(uint32_t op, uint32_t flags, mempool_dref r, uint64_t len,
                   uint64_t sum)
{
    struct rec x = { op, flags, r, len, sum };

    T_CHILD_EQ(t_send(wl.fd, &x, sizeof x), 0);
}

static void c_stage(int s)
{
    c_send(R_STAGE, (uint32_t)s, (mempool_dref){ 0, 0 }, 0, 0);
}

/* Fill c_buf with @p len fresh bytes; @return their checksum. */
static uint64_t c_fill(uint64_t len)
{
    t_fill(c_buf, len, ++c_seed);
    return t_fnv1a(c_buf, len);
}

static void c_keep(mempool_dref r, uint64_t len, uint64_t sum)
{
    T_CHILD_ASSERT(c_n < (int)(sizeof c_objs / sizeof c_objs[0]));
    c_objs[c_n++] = (struct cobj){ r, len, sum };
}

static void c_drop(int k)
{
    c_objs[k] = c_objs[--c_n];
}

static void c_check_view(const mempool_view *v, uint64_t len, uint64_t sum)
{
    T_CHILD_EQ(v->len, len);
    T_CHILD_ASSERT(v->data != NULL);
    T_CHILD_EQ(t_fnv1a(v->data, v->len), sum);
}

static void c_verify(mempool *p, mempool_dref r, uint64_t len, uint64_t sum)
{
    mempool_view v;

    T_CHILD_EQ(mempool_get(p, r, &v), 0);
    c_check_view(&v, len, sum);
    T_CHILD_EQ(mempool_release(p, &v), 0);
}

static mempool_dref c_set(mempool *p, uint64_t len, int owner)
{
    mempool_put_options o = { owner, 0, 0 };
    uint64_t sum = c_fill(len);
    mempool_dref r;

    T_CHILD_EQ(mempool_put_ex(p, c_buf, len, &o, &r), 0);
    c_send(R_PUB, owner ? RF_PEER : 0, r, len, sum);
    if (!owner)
        c_keep(r, len, sum);
    return r;
}

static void c_delete(mempool *p, int k)
{
    mempool_dref r = c_objs[k].r;

    c_send(R_DELETING, 0, r, c_objs[k].len, c_objs[k].sum);
    T_CHILD_EQ(mempool_delete(p, r), 0);
    c_send(R_DELETED, 0, r, 0, 0);
    c_drop(k);
    T_CHILD_EQ(mempool_get(p, r, &(mempool_view){ 0 }), -ENOENT);
}

/* Index of the newest kept object of @p len, or -1. */
static int c_find(uint64_t len)
{
    for (int k = c_n - 1; k >= 0; k--)
        if (c_objs[k].len == len)
            return k;
    return -1;
}

static void c_round(mempool *p)
{
    mempool_put_options rco = { 0, 0, MEMPOOL_PUT_REFCOUNTED };
    struct mempool_stats st;
    mempool_fileref f;
    mempool_info in;
    mempool_view v;
    mempool_dref r;
    uint64_t sum;
    void *dst;
    unsigned i;
    int k;

    c_stage(S_SETS);
    for (i = 0; i < WL_NSIZES; i++)
        (void)c_set(p, wl_sizes[i], 0);

    c_stage(S_RESERVE);
    T_CHILD_EQ(mempool_reserve(p, 5000, NULL, &dst, &r), 0);
    c_send(R_RESERVED, 0, r, 5000, 0);
    t_fill(dst, 5000, ++c_seed);
    sum = t_fnv1a(dst, 5000);
    c_send(R_PUBLISHING, 0, r, 5000, sum);
    T_CHILD_EQ(mempool_publish(p, r), 0);
    c_send(R_PUB, 0, r, 5000, sum);
    c_keep(r, 5000, sum);

    c_stage(S_ABORT);
    T_CHILD_EQ(mempool_reserve(p, 3000, NULL, &dst, &r), 0);
    c_send(R_RESERVED, 0, r, 3000, 0);
    memset(dst, 0x77, 1500);
    c_send(R_ABORTING, 0, r, 0, 0);
    T_CHILD_EQ(mempool_abort(p, r), 0);
    T_CHILD_EQ(mempool_get(p, r, &v), -ENOENT);

    if (wl.peer_wid) {
        c_stage(S_OWNED);
        (void)c_set(p, 3000, wl.peer_wid);
        (void)c_set(p, 100, wl.peer_wid);
        /* over the child's limit, but not the peer's: a large put into
         * new pages backs them on a helper thread (back.ahead) */
        (void)c_set(p, WL_BIG, wl.peer_wid);
        /* A small object of the peer's deleted by us waits in our stash
         * (handback.stashed) until a stats read hands it to the peer's
         * cache (handback.given). */
        r = c_set(p, 64, wl.peer_wid);
        c_send(R_DELETING, 0, r, 64, t_fnv1a(c_buf, 64));
        T_CHILD_EQ(mempool_delete(p, r), 0);
        c_send(R_DELETED, 0, r, 0, 0);
        T_CHILD_EQ(mempool_stats_get(p, &st), 0);
    }

    c_stage(S_GETS);
    for (k = 0; k < c_n; k++)
        c_verify(p, c_objs[k].r, c_objs[k].len, c_objs[k].sum);
    if (wl.has_base) {
        c_verify(p, wl.base_mem, wl.base_mem_len, wl.base_mem_sum);
        c_verify(p, wl.base_disk, wl.base_disk_len, wl.base_disk_sum);
    }

    c_stage(S_DEL_PINNED);
    k = c_find(2049);
    T_CHILD_ASSERT(k >= 0);
    r = c_objs[k].r;
    T_CHILD_EQ(mempool_get(p, r, &v), 0);
    {
        uint64_t len = c_objs[k].len;

        sum = c_objs[k].sum;
        c_delete(p, k);
        c_check_view(&v, len, sum);       /* still readable while pinned */
    }
    T_CHILD_EQ(mempool_release(p, &v), 0);
    /* A small object of our own deleted unpinned: its entry goes back to
     * our allocator cache (cache.recached). */
    (void)c_set(p, 64, 0);
    c_delete(p, c_find(64));

    c_stage(S_REFCOUNT);
    sum = c_fill(700);
    T_CHILD_EQ(mempool_put_ex(p, c_buf, 700, &rco, &r), 0);
    c_send(R_RC, 0, r, 700, sum);
    T_CHILD_EQ(mempool_ref(p, r), 0);
    c_verify(p, r, 700, sum);
    T_CHILD_EQ(mempool_unref(p, r), 0);  /* one reference left */
    c_verify(p, r, 700, sum);
    sum = c_fill(3000);
    T_CHILD_EQ(mempool_put_ex(p, c_buf, 3000, &rco, &r), 0);
    c_send(R_RC, 0, r, 3000, sum);
    T_CHILD_EQ(mempool_unref(p, r), 0);  /* the last: deleted */
    T_CHILD_EQ(mempool_get(p, r, &v), -ENOENT);
    /* Small ones go back to our allocator cache (cache.recached): at the
     * last unref, and when deleted while referenced (its cells forgotten
     * first). */
    sum = c_fill(64);
    T_CHILD_EQ(mempool_put_ex(p, c_buf, 64, &rco, &r), 0);
    c_send(R_RC, 0, r, 64, sum);
    T_CHILD_EQ(mempool_unref(p, r), 0);
    T_CHILD_EQ(mempool_get(p, r, &v), -ENOENT);
    sum = c_fill(64);
    T_CHILD_EQ(mempool_put_ex(p, c_buf, 64, &rco, &r), 0);
    c_send(R_RC, 0, r, 64, sum);
    T_CHILD_EQ(mempool_ref(p, r), 0);
    T_CHILD_EQ(mempool_delete(p, r), 0);
    T_CHILD_EQ(mempool_get(p, r, &v), -ENOENT);
    if (wl.has_base) {
        T_CHILD_EQ(mempool_ref(p, wl.base_rc), 0);
        c_verify(p, wl.base_rc, wl.base_rc_len, wl.base_rc_sum);
        T_CHILD_EQ(mempool_unref(p, wl.base_rc), 0);
        c_verify(p, wl.base_rc, wl.base_rc_len, wl.base_rc_sum);
    }

    c_stage(S_MOVE);
    r = c_set(p, 6000, 0);                /* resident: just set */
    T_CHILD_EQ(mempool_move_to_disk(p, r, &f), 0);
    T_CHILD_EQ(mempool_info_get(p, r, &in), 0);
    T_CHILD_EQ(in.state, MEMPOOL_STATE_DISK);
    T_CHILD_EQ(mempool_move_to_disk(p, r, NULL), 0);   /* idempotent */

    c_stage(S_COPY);
    r = c_set(p, 4000, 0);
    T_CHILD_EQ(mempool_copy_to_disk(p, r, &f), 0);
    T_CHILD_EQ(mempool_info_get(p, r, &in), 0);
    T_CHILD_ASSERT(in.state & MEMPOOL_STATE_DISK);

    c_stage(S_MOVE_PINNED);
    r = c_set(p, 2048, 0);
    sum = c_objs[c_n - 1].sum;
    T_CHILD_EQ(mempool_get(p, r, &v), 0);
    T_CHILD_EQ(mempool_move_to_disk(p, r, NULL), 0);  /* evicted at release */
    c_check_view(&v, 2048, sum);
    T_CHILD_EQ(mempool_release(p, &v), 0);
    T_CHILD_EQ(mempool_info_get(p, r, &in), 0);
    T_CHILD_EQ(in.state, MEMPOOL_STATE_DISK);

    c_stage(S_GET_SPILLED);
    for (k = 0; k < c_n; k++) {
        if (mempool_info_get(p, c_objs[k].r, &in) != 0 ||
            in.state != MEMPOOL_STATE_DISK)
            continue;
        T_CHILD_EQ(mempool_get(p, c_objs[k].r, &v), 0);
        T_CHILD_EQ(v.flags, MEMPOOL_VIEW_DISK);
        c_check_view(&v, c_objs[k].len, c_objs[k].sum);
        T_CHILD_EQ(mempool_release(p, &v), 0);
    }

    c_stage(S_DEL_SPILLED);
    k = c_find(6000);
    T_CHILD_ASSERT(k >= 0);
    T_CHILD_EQ(mempool_info_get(p, c_objs[k].r, &in), 0);
    T_CHILD_EQ(in.state, MEMPOOL_STATE_DISK);
    c_delete(p, k);

    c_stage(S_TRIM);
    while (c_n > WL_KEEP)
        c_delete(p, 0);
}

/* A worker that pins, reserves and references, then waits to be killed. */
static void grandchild(const char *pool, int ready)
{
    mempool_put_options rco = { 0, 0, MEMPOOL_PUT_REFCOUNTED };
    mempool_options o;
    mempool_view v[3];
    mempool_dref r;
    mempool *p;
    void *dst;
    char c = 1;

    close(wl.fd);
    unsetenv("MEMPOOL_FAILPOINT");       /* read again after fork: none */
    t_options(&o, T_ARENA_BYTES);
    o.flags = 0;
    T_CHILD_EQ(mempool_open(pool, &o, &p), 0);
    if (wl.has_base) {
        T_CHILD_EQ(mempool_get(p, wl.base_mem, &v[0]), 0);
        T_CHILD_EQ(mempool_get(p, wl.base_mem, &v[1]), 0);
        T_CHILD_EQ(mempool_get(p, wl.base_disk, &v[2]), 0);
        T_CHILD_EQ(mempool_ref(p, wl.base_rc), 0);
    }
    T_CHILD_EQ(mempool_reserve(p, 100000, NULL, &dst, &r), 0);
    memset(dst, 0x42, 100000);
    T_CHILD_EQ(mempool_reserve(p, 500, &rco, &dst, &r), 0);
    T_CHILD_EQ(mempool_put_ex(p, "gc", 2, &rco, &r), 0);
    T_CHILD_EQ(mempool_get(p, r, &v[0]), 0);
    T_CHILD_EQ(t_send(ready, &c, 1), 0);
    for (;;)
        pause();
}

/* Fork a grandchild worker, let it take things, SIGKILL it. */
static void kill_grandchild(void)
{
    pid_t me = getpid(), pid;
    int fds[2], st;
    char c;

    T_CHILD_EQ(pipe2(fds, O_CLOEXEC), 0);
    pid = fork();
    T_CHILD_ASSERT(pid >= 0);
    if (pid == 0) {
        (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != me)
            _exit(0);
        close(fds[0]);
        grandchild(wl.pool, fds[1]);
        _exit(0);
    }
    close(fds[1]);
    T_CHILD_EQ(t_recv(fds[0], &c, 1, T_WAIT_S), 0);
    close(fds[0]);
    T_CHILD_EQ(kill(pid, SIGKILL), 0);
    T_CHILD_EQ(waitpid(pid, &st, 0), pid);
    T_CHILD_ASSERT(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
}

static int wl_child(void *arg)
{
    mempool_options o;
    mempool *p = NULL;
    int r;

    (void)arg;
    c_buf = malloc(WL_BIG);
    T_CHILD_ASSERT(c_buf != NULL);
    c_n = 0;
    c_seed = (uint64_t)getpid() << 20;
    c_stage(S_START);
    if (wl.variant == V_REAPER) {
        c_stage(S_GRANDCHILD1);
        kill_grandchild();               /* its slot is reused by our open */
    }
    setenv("MEMPOOL_FAILPOINT", wl.fp, 1);
    t_options(&o, T_ARENA_BYTES);
    o.max_memsize = WL_LIMIT;
    o.flags = wl.variant == V_CREATE
                  ? MEMPOOL_OPEN_CREATE | MEMPOOL_OPEN_EXCL : 0;
    o.flags |= MEMPOOL_OPEN_BACK_AHEAD;   /* even on a busy machine */
    /* new pool: its holes get 4 KiB pages (back.pages); the others may
     * back whole chunks with huge pages (back.chunk) */
    o.huge = wl.variant == V_CREATE ? MEMPOOL_HUGE_OFF : MEMPOOL_HUGE_AUTO;
    T_CHILD_EQ(mempool_open(wl.pool, &o, &p), 0);
    c_stage(S_OPENED);
    if (wl.variant == V_REAPER) {
        c_stage(S_GRANDCHILD2);
        kill_grandchild();
        c_stage(S_REAPING);
        T_CHILD_EQ(mempool_reap(p), 1);
        T_CHILD_EQ(mempool_reap(p), 0);
    }
    for (r = 0; r < WL_ROUNDS; r++)
        c_round(p);
    c_stage(S_CLOSING);
    T_CHILD_EQ(mempool_close(p), 0);
    c_send(R_DONE, 0, (mempool_dref){ 0, 0 }, 0, 0);
    free(c_buf);
    return 0;
}

/* ------------------------------------------------------- the parent */

struct env {
    mempool *p;
    char pool[T_NAME_LEN];
    struct t_remote peer;
    int peer_wid;
    int alive;               /* workers alive when no child runs */
    char dir[1100];          /* the pool's spill directory */
};

/* used_bytes one object of each length costs (measured lazily). */
static struct { uint64_t len, charge; } charges[64];
static int ncharges;

static uint64_t charge_of(mempool *p, uint64_t len)
{
    struct mempool_stats a, b;
    mempool_dref r;
    char *buf;
    int i;

    for (i = 0; i < ncharges; i++)
        if (charges[i].len == len)
            return charges[i].charge;
    buf = calloc(1, len ? len : 1);
    ck_assert_ptr_nonnull(buf);
    a = t_stats(p);
    ASSERT_RC(mempool_put(p, buf, len, &r), 0);
    b = t_stats(p);
    ASSERT_RC(mempool_delete(p, r), 0);
    ck_assert_uint_eq(t_stats(p).used_bytes, a.used_bytes);
    free(buf);
    ck_assert_int_lt(ncharges, 64);
    charges[ncharges].len = len;
    charges[ncharges].charge = b.used_bytes - a.used_bytes;
    return charges[ncharges++].charge;
}

/* Files in @p dir: final spill files and *.tmp. */
static int dir_files(const char *dir, int *ntmp)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0, t = 0;

    while (d && (e = readdir(d))) {
        size_t l = strlen(e->d_name);

        if (e->d_name[0] == '.')
            continue;
        if (l > 4 && strcmp(e->d_name + l - 4, ".tmp") == 0)
            t++;
        else
            n++;
    }
    if (d)
        closedir(d);
    if (ntmp)
        *ntmp = t;
    return n;
}

static void list_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;

    fprintf(stderr, "%s:", dir);
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.')
            fprintf(stderr, " %s", e->d_name);
    fprintf(stderr, "\n");
    if (d)
        closedir(d);
}

static uint64_t set_pattern(mempool *p, uint64_t len, uint64_t seed,
                            uint32_t flags, mempool_dref *r)
{
    mempool_put_options o = { 0, 0, flags };
    char *buf = malloc(len ? len : 1);
    uint64_t sum;

    ck_assert_ptr_nonnull(buf);
    t_fill(buf, len, seed);
    sum = t_fnv1a(buf, len);
    ASSERT_RC(mempool_put_ex(p, buf, len, &o, r), 0);
    free(buf);
    return sum;
}

static void expect_bytes(mempool *p, mempool_dref r, uint64_t len,
                         uint64_t sum, const char *what)
{
    mempool_view v;
    int rc = mempool_get(p, r, &v);

    ck_assert_msg(rc == 0, "%s: get = %d (%s)", what, rc,
                  mempool_strerror(rc));
    ck_assert_msg(v.len == len && t_fnv1a(v.data, v.len) == sum,
                  "%s: %" PRIu64 " bytes (want %" PRIu64 "), checksum %s",
                  what, v.len, len,
                  t_fnv1a(v.data, v.len) == sum ? "ok" : "WRONG");
    ASSERT_RC(mempool_release(p, &v), 0);
}

static void env_open(struct env *E, const char *pool)
{
    struct mempool_stats s;

    snprintf(E->pool, sizeof E->pool, "%s", pool);
    ASSERT_RC(t_open(E->pool, T_ARENA_BYTES, &E->p), 0);
    s = t_stats(E->p);
    snprintf(E->dir, sizeof E->dir, "%s", s.spill_dir);
}

/* The standing pool: parent, a peer worker, the parent's objects. */
static void env_setup(struct env *E)
{
    char name[T_NAME_LEN];
    mempool_dref r;

    memset(E, 0, sizeof *E);
    env_open(E, t_pool_name(name, NULL));
    t_remote_start(&E->peer, E->pool);
    E->peer_wid = (int)t_remote_call(&E->peer, T_R_WID, &r, 0);
    ck_assert_int_ge(E->peer_wid, 1);
    E->alive = 2;
    memset(&wl, 0, sizeof wl);
    wl.has_base = true;
    wl.peer_wid = E->peer_wid;
    wl.base_mem_len = 3000;
    wl.base_mem_sum = set_pattern(E->p, 3000, 1, 0, &wl.base_mem);
    wl.base_disk_len = 10000;
    wl.base_disk_sum = set_pattern(E->p, 10000, 2, 0, &wl.base_disk);
    ASSERT_RC(mempool_move_to_disk(E->p, wl.base_disk, NULL), 0);
    wl.base_rc_len = 500;
    wl.base_rc_sum = set_pattern(E->p, 500, 3, MEMPOOL_PUT_REFCOUNTED,
                                 &wl.base_rc);
    t_assert_healthy(E->p);
}

static void env_teardown(struct env *E)
{
    if (E->peer.pid)
        ck_assert_int_eq(t_remote_quit(&E->peer), 0);
    if (E->p) {
        t_assert_healthy(E->p);
        ASSERT_RC(mempool_close(E->p), 0);
        E->p = NULL;
    }
    (void)mempool_destroy(E->pool);
}

/* What the parent knows about one of the child's DRefs. */
enum { X_NO, X_MAYBE, X_YES };
struct track {
    mempool_dref r;
    uint64_t len, sum;
    int expect;
    uint32_t flags;
};

static bool same(mempool_dref a, mempool_dref b)
{
    return a.off == b.off && a.gen == b.gen;
}

struct outcome {
    struct rec *recs;
    int n, cap;
    int last_stage;
    bool done;
};

static void outcome_add(struct outcome *o, const struct rec *x)
{
    if (o->n == o->cap) {
        o->cap = o->cap ? 2 * o->cap : 256;
        o->recs = realloc(o->recs, (size_t)o->cap * sizeof *o->recs);
        ck_assert_ptr_nonnull(o->recs);
    }
    o->recs[o->n++] = *x;
    if (x->op == R_STAGE)
        o->last_stage = (int)x->flags;
    if (x->op == R_DONE)
        o->done = true;
}

/* Read records until end of file (every writer gone). */
static void read_records(int fd, struct outcome *o)
{
    for (;;) {
        struct rec x;
        int rc = t_recv(fd, &x, sizeof x, T_WAIT_S);

        if (rc == -EPIPE)
            break;
        ck_assert_msg(rc == 0, "record stream: %d (child hung at stage %s?)",
                      rc, stage_names[o->last_stage]);
        outcome_add(o, &x);
    }
}

static int tracks_from(const struct outcome *o, struct track **out)
{
    struct track *t = calloc((size_t)o->n + 1, sizeof *t);
    int n = 0;

    ck_assert_ptr_nonnull(t);
    for (int i = 0; i < o->n; i++) {
        const struct rec *x = &o->recs[i];
        int k;

        if (x->op == R_STAGE || x->op == R_DONE)
            continue;
        for (k = 0; k < n && !same(t[k].r, x->r); k++)
            ;
        if (k == n)
            t[n++].r = x->r;
        switch (x->op) {
        case R_RESERVED:
        case R_ABORTING:
        case R_DELETED:
        case R_RC:
            t[k].expect = X_NO;
            break;
        case R_PUBLISHING:
        case R_DELETING:
            t[k].expect = X_MAYBE;
            t[k].len = x->len;
            t[k].sum = x->sum;
            break;
        case R_PUB:
            t[k].expect = X_YES;
            t[k].len = x->len;
            t[k].sum = x->sum;
            t[k].flags = x->flags;
            break;
        default:
            ck_abort_msg("bad record %u", x->op);
        }
    }
    *out = t;
    return n;
}

/* Wait until @p want workers are alive (a grandchild dies of its parent's
 * death asynchronously). Watchdog only. */
static void wait_alive(mempool *p, uint32_t want)
{
    struct mempool_stats s;
    int i;

    for (i = 0; i < 6000; i++) {
        s = t_stats(p);
        if (s.workers_alive == want)
            return;
        usleep(10000);
    }
    ck_abort_msg("%u workers alive, want %u", s.workers_alive, want);
}

static bool verbose(void)
{
    const char *v = getenv("T_FP_VERBOSE");

    return v && *v == '1';
}

/* Print every used worker slot's figures (diagnostics on a mismatch). */
static void dump_workers(mempool *p, const char *what)
{
    fprintf(stderr, "%s: workers:\n", what);
    for (int i = 1; i <= MEMPOOL_MAX_WORKERS; i++) {
        struct mempool_worker_stats w;

        if (mempool_worker_stats_get(p, i, &w) != 0 ||
            w.state == MEMPOOL_WORKER_FREE)
            continue;
        fprintf(stderr, "  worker %d state %u objects %" PRIu64 " resident %"
                PRIu64 " disk %" PRIu64 " pins %" PRIu64 "\n", i, w.state,
                w.objects, w.resident_bytes, w.disk_bytes, w.pins);
    }
}

/*
 * After a child ended: reap, check, verify every object it reported,
 * compare the figures with @p s0 (before the child ran), delete the
 * survivors and compare again.
 */
enum { K_NONE, K_EARLY, K_OPENED };   /* how the child ended */

static void verify_after(struct env *E, const struct outcome *o,
                         const struct mempool_stats *s0, int files0,
                         int killed, bool open_reap, const char *what)
{
    struct mempool_stats s1, s2;
    uint64_t mem = 0, disk = 0, used = 0, nsurv = 0;
    struct track *t;
    int n, i, ntmp, files;

    wait_alive(E->p, (uint32_t)E->alive);
    if (open_reap) {
        mempool *q;

        ASSERT_RC(t_attach(E->pool, &q), 0);   /* the reaper runs in open */
        ASSERT_RC(mempool_reap(q), 0);
        ASSERT_RC(mempool_close(q), 0);
    } else {
        /* a child killed inside its open may not hold a slot yet */
        n = mempool_reap(E->p);
        ck_assert_msg(killed == K_NONE ? n == 0 : killed == K_EARLY || n >= 1,
                      "%s: reap = %d", what, n);
    }
    ASSERT_RC(mempool_reap(E->p), 0);
    s1 = t_stats(E->p);
    ck_assert_msg(s1.workers == (uint32_t)E->alive && s1.workers_dead == 0,
                  "%s: %u workers (%u dead), want %d", what, s1.workers,
                  s1.workers_dead, E->alive);
    {
        char why[256] = "";
        int rc = mempool_check(E->p, why, sizeof why);

        ck_assert_msg(rc == 0, "%s: mempool_check = %d: %s", what, rc, why);
    }
    files = dir_files(E->dir, &ntmp);
    ck_assert_msg(ntmp == 0, "%s: %d *.tmp left in %s", what, ntmp, E->dir);
    ck_assert_uint_eq(s1.reserved_objects, 0);
    ck_assert_uint_eq(s1.pins, 0);
    ck_assert_uint_eq(s1.deleted_objects, 0);

    n = tracks_from(o, &t);
    for (i = 0; i < n; i++) {
        mempool_info in;
        char msg[160];
        int rc = mempool_info_get(E->p, t[i].r, &in);

        snprintf(msg, sizeof msg, "%s: object %d (%" PRIu64 " bytes, %s)",
                 what, i, t[i].len,
                 t[i].expect == X_YES ? "published" :
                 t[i].expect == X_MAYBE ? "in flight" : "gone");
        if (t[i].expect == X_NO) {
            ck_assert_msg(rc == -ENOENT, "%s: info = %d, want -ENOENT", msg,
                          rc);
            ASSERT_RC(mempool_get(E->p, t[i].r, &(mempool_view){ 0 }),
                      -ENOENT);
            continue;
        }
        if (t[i].expect == X_MAYBE && rc == -ENOENT)
            continue;
        ck_assert_msg(rc == 0, "%s: info = %d (%s)", msg, rc,
                      mempool_strerror(rc));
        ck_assert_msg(in.pins == 0 && in.refs == 0, "%s: %u pins, %u refs "
                      "after the reap", msg, in.pins, in.refs);
        ck_assert_uint_eq(in.len, t[i].len);
        /* The child's objects became the pool's when it was reaped (README
         * "Owners"); the peer's stay charged to the peer. */
        ck_assert_msg(in.owner == ((t[i].flags & RF_PEER) ? E->peer_wid : 0),
                      "%s: owner %d after the reap", msg, in.owner);
        expect_bytes(E->p, t[i].r, t[i].len, t[i].sum, msg);
        t[i].expect = X_YES;
        nsurv++;
        if (in.state & MEMPOOL_STATE_MEMORY)
            used += charge_of(E->p, in.len);
        /* stats.resident_bytes / disk_bytes count every live object,
         * the pool's own (owner 0) included (test_departed_in_stats) */
        if (in.state & MEMPOOL_STATE_MEMORY)
            mem += in.len;
        if (in.state & MEMPOOL_STATE_DISK)
            disk += in.len;
    }
    if (wl.has_base) {
        ck_assert_int_eq(t_refs(E->p, wl.base_rc), 1);
        expect_bytes(E->p, wl.base_mem, wl.base_mem_len, wl.base_mem_sum,
                     "parent's object");
        expect_bytes(E->p, wl.base_disk, wl.base_disk_len,
                     wl.base_disk_sum, "parent's spilled object");
        expect_bytes(E->p, wl.base_rc, wl.base_rc_len, wl.base_rc_sum,
                     "parent's refcounted object");
    }
    s1 = t_stats(E->p);
    if (!(s1.objects == s0->objects + nsurv &&
          s1.used_bytes == s0->used_bytes + used &&
          s1.resident_bytes == s0->resident_bytes + mem &&
          s1.disk_bytes == s0->disk_bytes + disk))
        dump_workers(E->p, what);
    ck_assert_msg(s1.objects == s0->objects + nsurv &&
                  s1.used_bytes == s0->used_bytes + used &&
                  s1.resident_bytes == s0->resident_bytes + mem &&
                  s1.disk_bytes == s0->disk_bytes + disk,
                  "%s: objects %" PRIu64 " used %" PRIu64 " resident %" PRIu64
                  " disk %" PRIu64 "; want %" PRIu64 " / %" PRIu64 " / %"
                  PRIu64 " / %" PRIu64 " (%" PRIu64 " survivors)", what,
                  s1.objects, s1.used_bytes, s1.resident_bytes, s1.disk_bytes,
                  s0->objects + nsurv, s0->used_bytes + used,
                  s0->resident_bytes + mem, s0->disk_bytes + disk, nsurv);
    for (i = 0; i < n; i++)
        if (t[i].expect == X_YES)
            ASSERT_RC(mempool_delete(E->p, t[i].r), 0);
    s2 = t_stats(E->p);
    ck_assert_msg(s2.objects == s0->objects &&
                  s2.used_bytes == s0->used_bytes &&
                  s2.resident_bytes == s0->resident_bytes &&
                  s2.disk_bytes == s0->disk_bytes,
                  "%s: after deleting the survivors: objects %" PRIu64
                  " used %" PRIu64 " resident %" PRIu64 " disk %" PRIu64
                  "; before the child: %" PRIu64 " / %" PRIu64 " / %" PRIu64
                  " / %" PRIu64, what, s2.objects, s2.used_bytes,
                  s2.resident_bytes, s2.disk_bytes, s0->objects,
                  s0->used_bytes, s0->resident_bytes, s0->disk_bytes);
    files = dir_files(E->dir, &ntmp);
    if (files != files0 || ntmp) {
        list_dir(E->dir);
        for (i = 0; verbose() && i < o->n; i++) /* base_mem is entry 0 */
            if (o->recs[i].op != R_STAGE && o->recs[i].op != R_DONE)
                fprintf(stderr, "  rec %d op %u len %" PRIu64 " entry ~%"
                        PRIu64 "-%u\n", i, o->recs[i].op, o->recs[i].len,
                        ((o->recs[i].r.off & MEMPOOL_DREF_ENTRY_BITS) - (wl.base_mem.off & MEMPOOL_DREF_ENTRY_BITS)) / 64,
                        (unsigned)o->recs[i].r.gen);
    }
    ck_assert_msg(files == files0 && ntmp == 0, "%s: %d spill files (%d tmp)"
                  " left, %d before the child", what, files, ntmp, files0);
    t_assert_healthy(E->p);
    free(t);
}

/* No private build file of pool @p name left in /dev/shm, and no lock
 * file (src/core/lockfile.c) but the live pool's, if there is one. */
static void assert_no_builds(const char *name)
{
    char prefix[T_NAME_LEN + 32], locks[T_NAME_LEN + 32];
    DIR *d = opendir("/dev/shm");
    struct dirent *e;
    size_t l, ll;
    int nlocks = 0;

    snprintf(prefix, sizeof prefix, "mempool.%s#init.", name);
    snprintf(locks, sizeof locks, "mempool.%s#lock.", name);
    l = strlen(prefix);
    ll = strlen(locks);
    while (d && (e = readdir(d))) {
        ck_assert_msg(strncmp(e->d_name, prefix, l) != 0,
                      "private build file %s left behind", e->d_name);
        nlocks += strncmp(e->d_name, locks, ll) == 0;
    }
    if (d)
        closedir(d);
    ck_assert_msg(nlocks <= 1, "%d lock files of pool %s: a dead creator's "
                  "left behind", nlocks, name);
}

/*
 * One run of @p variant with MEMPOOL_FAILPOINT=@p spec. @return 1 if the
 * child was killed, 0 if it completed (the point was not hit N times).
 */
static int run_kill(struct env *E, int variant, const char *spec,
                    bool open_reap, int *stage)
{
    static const struct mempool_stats zero;
    struct mempool_stats s0 = zero;
    struct outcome o = { 0 };
    struct wl saved;
    struct env C;
    char what[300];
    int fds[2], st, files0 = 0;
    pid_t pid;

    snprintf(what, sizeof what, "%s %s%s", variant_names[variant], spec,
             open_reap ? " (reaped by open)" : "");
    if (variant != V_CREATE) {
        s0 = t_stats(E->p);
        files0 = dir_files(E->dir, NULL);
        snprintf(wl.pool, sizeof wl.pool, "%s", E->pool);
    } else {
        t_pool_name(wl.pool, NULL);    /* a pool nobody has created yet */
        saved = wl;
        wl.peer_wid = 0;
        wl.has_base = false;
    }
    t_watchdog(RUN_BOUND_S, what);
    wl.variant = variant;
    snprintf(wl.fp, sizeof wl.fp, "%s", spec);
    t_pipe(fds);
    wl.fd = fds[1];
    pid = t_fork(wl_child, NULL);
    close(fds[1]);
    read_records(fds[0], &o);
    close(fds[0]);
    st = t_wait(pid, T_WAIT_S);
    ck_assert_msg(st == 0 || st == 128 + SIGKILL, "%s: child ended with %d "
                  "at stage %s (1: an assertion failed in the child, see "
                  "its message above; -1: hung)", what, st,
                  stage_names[o.last_stage]);
    ck_assert_msg(st != 0 || o.done, "%s: child exited 0 before the end",
                  what);
    *stage = o.last_stage;
    if (verbose())
        fprintf(stderr, "  %s: %s at stage %s, %d records\n", what,
                st ? "killed" : "completed", stage_names[o.last_stage], o.n);
    if (variant == V_CREATE) {
        /* The pool may not exist, be half-built or complete: opening it
         * (create or attach) must give a working pool either way. */
        memset(&C, 0, sizeof C);
        env_open(&C, wl.pool);
        C.alive = 1;
        assert_no_builds(wl.pool);
        verify_after(&C, &o, &s0, 0, K_NONE, true, what);
        ck_assert_uint_eq(t_stats(C.p).objects, 0);
        ASSERT_RC(mempool_close(C.p), 0);
        ASSERT_RC(mempool_destroy(C.pool), 0);
        wl = saved;
    } else {
        verify_after(E, &o, &s0, files0,
                     st == 0 ? K_NONE
                     : o.last_stage >= S_OPENED ? K_OPENED : K_EARLY,
                     open_reap, what);
    }
    free(o.recs);
    t_watchdog(0, NULL);
    return st != 0;
}

static int max_n(void)
{
    const char *v = getenv("T_FP_MAXN");
    int n = v ? atoi(v) : 0;

    return n > 0 ? n : 1000;
}

static bool handoff_point(const char *name)
{
    static const char *const pre[] = { "name.", "give.", "take.",  "send.",
                                       "recv.", "chan.", "bcast.", "box.",
                                       "wait.", "spin.", "keep.",  "wake." };
    for (size_t i = 0; i < sizeof pre / sizeof pre[0]; i++)
        if (strncmp(name, pre[i], strlen(pre[i])) == 0)
            return true;
    return false;
}

START_TEST(test_kill_matrix)
{
    const char *only = getenv("T_FP_ONLY");
    const char *name = fp_list[_i].name;
    char line[600];
    int v, reached = 0, runs = 0, len;
    bool open_reap;
    struct env E;

    if (only && *only && strcmp(only, name) != 0)
        return;
    if (handoff_point(name)) {
        /* Names, flight and channels have their own workload and exact
         * accounting of pool-held references: check_handoff_crash.c
         * kills at these points (same failpoints.def, same @N loop), and
         * check_handoff_kill.c at the broadcast ones (bcast.*),
         * check_handoff_yield.c at spin.yield (a one-CPU ping-pong),
         * check_handoff_stream.c at spin.stream (a stream receiver),
         * check_wait_keeper.c at get_wait's keeper (keep.*),
         * check_wait_yield.c at a publish's yield to its sleepers
         * (wake.yield). */
        fprintf(stderr, "failpoint %-17s | in check_%s\n", name,
                !strncmp(name, "bcast.", 6)      ? "handoff_kill"
                : !strcmp(name, "spin.stream")   ? "handoff_stream"
                : !strncmp(name, "spin.", 5)     ? "handoff_yield"
                : !strncmp(name, "keep.", 5)     ? "wait_keeper"
                : !strncmp(name, "wake.", 5)     ? "wait_yield"
                : !strcmp(name, "box.sweeping")  ? "sweep_alias"
                : !strcmp(name, "take.expiring") ? "flight_alias"
                                                 : "handoff_crash");
        return;
    }
    /* destroy's points kill mempool_destroy(), which no worker workload
     * calls: check_security kills destroy there and checks a second
     * destroy finishes (test_destroy_killed_midway_finishes). */
    if (!strncmp(name, "destroy.", 8))
        return;
    /* cells.overflow needs a full home bucket, which this small workload
     * never fills: check_capacity kills a worker there at every hit and
     * checks the reaper (test_killed_in_overflow). */
    if (!strncmp(name, "cells.", 6))
        return;
    open_reap = !getenv("T_FP_OPEN_REAP") || atoi(getenv("T_FP_OPEN_REAP"));
    env_setup(&E);
    len = snprintf(line, sizeof line, "failpoint %-17s", name);
    for (v = 0; v < V_COUNT; v++) {
        int killed_max = 0, missed = 0, first_stage = -1;
        /* main: every hit, until the point is not reached; the other
         * variants add what main lacks: their first three hits */
        int cap = v == V_MAIN ? max_n() : 3;

        for (int n = 1; n <= cap; n++) {
            char spec[160];
            int stage;

            snprintf(spec, sizeof spec, "%s@%d", name, n);
            if (run_kill(&E, v, spec, open_reap && (runs++ & 1) != 0,
                         &stage)) {
                killed_max = n;
                if (first_stage < 0)
                    first_stage = stage;
            } else {
                missed = n;
                break;
            }
        }
        if (killed_max)
            reached++;
        if (killed_max && len < (int)sizeof line)
            len += snprintf(line + len, sizeof line - (size_t)len,
                            " | %s: @1..@%d%s (first in %s)", variant_names[v],
                            killed_max, missed ? "" : "+",
                            stage_names[first_stage]);
        else if (len < (int)sizeof line)
            len += snprintf(line + len, sizeof line - (size_t)len,
                            " | %s: -", variant_names[v]);
    }
    fprintf(stderr, "%s\n", line);
    env_teardown(&E);
    ck_assert_msg(reached > 0, "failpoint %s (%s) was never reached by any "
                  "workload variant: extend the workload", name,
                  fp_list[_i].what);
}
END_TEST

/* ------------------------------------------------------------- stop */

struct setter {
    mempool *p;
    int rc;
};

static void *setter_main(void *arg)
{
    struct setter *s = arg;
    mempool_dref r;

    s->rc = mempool_put(s->p, "while stopped", 13, &r);
    if (s->rc == 0)
        s->rc = mempool_delete(s->p, r);
    return NULL;
}

/* Other workers work while the child is stopped at a failpoint. */
static void others_work(struct env *E, bool lock_held)
{
    mempool_dref r;
    uint64_t sum;

    expect_bytes(E->p, wl.base_mem, wl.base_mem_len, wl.base_mem_sum,
                 "get while a worker is stopped");
    expect_bytes(E->p, wl.base_disk, wl.base_disk_len, wl.base_disk_sum,
                 "get of a spilled object while a worker is stopped");
    r = wl.base_mem;
    ASSERT_RC(t_remote_call(&E->peer, T_R_GET, &r, 2), 0);
    ASSERT_RC(t_remote_call(&E->peer, T_R_RELEASE_ALL, NULL, 0), 2);
    if (lock_held)
        return;
    sum = set_pattern(E->p, 3000, 99, 0, &r);
    expect_bytes(E->p, r, 3000, sum, "set while a worker is stopped");
    ASSERT_RC(mempool_delete(E->p, r), 0);
    ASSERT_RC(t_remote_call(&E->peer, T_R_SET, &r, 5000), 0);
    ASSERT_RC(t_remote_call(&E->peer, T_R_GET, &r, 1), 0);
    ASSERT_RC(t_remote_call(&E->peer, T_R_RELEASE_ALL, NULL, 0), 1);
    ASSERT_RC(t_remote_call(&E->peer, T_R_DELETE, &r, 0), 0);
    t_assert_healthy(E->p);
}

/* Points where a stopped worker does not hold the allocator lock. */
static const char *const stop_outside[] = {
    "slot.locked", "reserve.done", "publish.before", "get.pinned",
    "release.before", "delete.marked", "ref.added", "refcheck.flagged",
    "spill.claimed", "spill.chunk", "spill.sealed", "spill.written",
    "evict.marked", "map.before", "reap.entries"
};
/* ... and where it does. */
static const char *const stop_inside[] = {
    "alloc.locked", "free.locked", "evict.locked"
};
#define NSTOP_OUT (int)(sizeof stop_outside / sizeof stop_outside[0])
#define NSTOP_IN (int)(sizeof stop_inside / sizeof stop_inside[0])

static void run_stop(const char *name, bool lock_held)
{
    struct mempool_stats s0, s;
    struct outcome o = { 0 };
    struct setter set = { 0 };
    pthread_t th;
    struct env E;
    char spec[160];
    int fds[2], st = 0, i, files0, stop_stage;
    bool stopped = false;
    pid_t pid;

    env_setup(&E);
    s0 = t_stats(E.p);
    files0 = dir_files(E.dir, NULL);
    /* the second hit where there is one: the child holds more by then */
    snprintf(spec, sizeof spec, "%s=stop@%d", name,
             strcmp(name, "slot.locked") && strcmp(name, "reap.entries") ? 2
                                                                        : 1);
    snprintf(wl.pool, sizeof wl.pool, "%s", E.pool);
    snprintf(wl.fp, sizeof wl.fp, "%s", spec);
    wl.variant = V_MAIN;
    t_pipe(fds);
    wl.fd = fds[1];
    pid = t_fork(wl_child, NULL);
    close(fds[1]);
    for (i = 0; i < 6000; i++) {
        pid_t w = waitpid(pid, &st, WUNTRACED | WNOHANG);

        ck_assert_int_ge(w, 0);
        if (w == pid) {
            stopped = WIFSTOPPED(st);
            break;
        }
        usleep(10000);
    }
    ck_assert_msg(i < 6000, "%s: child neither stopped nor ended", spec);
    if (!stopped) {
        fprintf(stderr, "stop %s: not reached (child ended with %#x)\n",
                spec, st);
        ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
                      "%s: child ended with status %#x", spec, st);
        read_records(fds[0], &o);
        close(fds[0]);
        verify_after(&E, &o, &s0, files0, K_NONE, false, spec);
        free(o.recs);
        env_teardown(&E);
        return;
    }
    /* what it did before it stopped */
    while (poll(&(struct pollfd){ fds[0], POLLIN, 0 }, 1, 0) > 0) {
        struct rec x;

        ASSERT_RC(t_recv(fds[0], &x, sizeof x, T_WAIT_S), 0);
        outcome_add(&o, &x);
    }
    stop_stage = o.last_stage;
    /* Stopped is not dead. */
    ASSERT_RC(mempool_reap(E.p), 0);
    s = t_stats(E.p);
    /* (stopped in slot.locked it is not counted as attached yet) */
    ck_assert_uint_ge(s.workers_alive, 2);
    ck_assert_uint_eq(s.workers_dead, 0);
    others_work(&E, lock_held);
    set.p = E.p;
    if (lock_held)
        ck_assert_int_eq(pthread_create(&th, NULL, setter_main, &set), 0);
    ASSERT_RC(mempool_reap(E.p), 0);
    ck_assert_int_eq(kill(pid, SIGCONT), 0);
    if (lock_held) {
        ck_assert_int_eq(pthread_join(th, NULL), 0);
        ASSERT_RC(set.rc, 0);
    }
    read_records(fds[0], &o);
    close(fds[0]);
    st = t_wait(pid, T_WAIT_S);
    ck_assert_msg(st == 0 && o.done, "%s: after SIGCONT the child ended "
                  "with %d at stage %s", spec, st, stage_names[o.last_stage]);
    fprintf(stderr, "stop %-22s stopped in stage %s, not reaped; others "
            "worked; completed after SIGCONT\n", spec,
            stage_names[stop_stage]);
    verify_after(&E, &o, &s0, files0, K_NONE, false, spec);
    free(o.recs);
    env_teardown(&E);
}

START_TEST(test_stop_outside_lock)
{
    run_stop(stop_outside[_i], false);
}
END_TEST

START_TEST(test_stop_inside_lock)
{
    run_stop(stop_inside[_i], true);
}
END_TEST

/* Every name the stop lists use is a real failpoint. */
START_TEST(test_stop_names_exist)
{
    for (int i = 0; i < NSTOP_OUT + NSTOP_IN; i++) {
        const char *n = i < NSTOP_OUT ? stop_outside[i]
                                      : stop_inside[i - NSTOP_OUT];
        bool found = false;

        for (int k = 0; k < NFP; k++)
            found |= strcmp(fp_list[k].name, n) == 0;
        ck_assert_msg(found, "%s is not in failpoints.def", n);
    }
}
END_TEST

/* ------------------------------------------- minimal reproductions */

static int bug_fd = -1;
static char bug_pool[T_NAME_LEN];

/* A worker that leaves a spilled refcounted object behind, referenced only
 * by itself, and waits to be killed. */
static int spilled_rc_child(void *arg)
{
    mempool_put_options rco = { 0, 0, MEMPOOL_PUT_REFCOUNTED };
    mempool_dref r;
    mempool *p;
    char buf[5000];

    (void)arg;
    memset(buf, 7, sizeof buf);
    T_CHILD_EQ(t_attach(bug_pool, &p), 0);
    T_CHILD_EQ(mempool_put_ex(p, buf, sizeof buf, &rco, &r), 0);
    T_CHILD_EQ(mempool_move_to_disk(p, r, NULL), 0);
    T_CHILD_EQ(t_send_dref(bug_fd, r), 0);
    for (;;)
        pause();
}

/*
 * Regression (a library bug, fixed): a dead worker reaped by mempool_open() while it claims the
 * dead worker's slot (worker.c mempool__claim_slot -> reap_contents) runs
 * before mempool__spill_init(): the handle's dirfd is still 0 (calloc), so
 * mempool__unlink_files() does unlinkat(0, ...) and the spill files of
 * objects that reap frees stay on disk forever (here: a refcounted object
 * whose last reference was the dead worker's; also a dead writer's
 * renamed or *.tmp file, and deletes the reaper finishes). Loop 0 reaps
 * with mempool_reap() first (the control, passes); loop 1 lets the next
 * open reap (fails: one orphaned spill file). docs/scenarios.md S8, I4.
 */
START_TEST(test_regress_open_reap_leaks_spill_file)
{
    struct mempool_stats s;
    mempool *a, *b;
    mempool_dref r;
    int fds[2], files, ntmp;
    pid_t pid;

    t_pool_name(bug_pool, NULL);
    ASSERT_RC(t_open(bug_pool, T_ARENA_BYTES, &a), 0);
    s = t_stats(a);
    t_pipe(fds);
    bug_fd = fds[1];
    pid = t_fork(spilled_rc_child, NULL);
    close(fds[1]);
    ASSERT_RC(t_recv_dref(fds[0], &r, T_WAIT_S), 0);
    close(fds[0]);
    ck_assert_int_eq(dir_files(s.spill_dir, NULL), 1);
    ck_assert_int_eq(t_kill(pid), SIGKILL);
    if (_i == 0)
        ASSERT_RC(mempool_reap(a), 1);
    ASSERT_RC(t_attach(bug_pool, &b), 0);   /* reuses the dead slot */
    ASSERT_RC(mempool_reap(a), 0);
    ASSERT_RC(mempool_get(a, r, &(mempool_view){ 0 }), -ENOENT);
    ck_assert_uint_eq(t_stats(a).objects, 0);
    t_assert_healthy(a);
    files = dir_files(s.spill_dir, &ntmp);
    if (files)
        list_dir(s.spill_dir);
    ck_assert_msg(files == 0 && ntmp == 0, "the object is gone but %d spill "
                  "file(s) (%d tmp) of it are left (reaped by %s)", files,
                  ntmp, _i ? "mempool_open's slot claim" : "mempool_reap");
    ASSERT_RC(mempool_close(b), 0);
    ASSERT_RC(mempool_close(a), 0);
    ASSERT_RC(mempool_destroy(bug_pool), 0);
}
END_TEST

static int departing_child(void *arg)
{
    mempool_dref r[2];
    mempool *p;
    char buf[3000];

    (void)arg;
    memset(buf, 9, sizeof buf);
    T_CHILD_EQ(t_attach(bug_pool, &p), 0);
    T_CHILD_EQ(mempool_put(p, buf, sizeof buf, &r[0]), 0);
    T_CHILD_EQ(mempool_put(p, buf, 2000, &r[1]), 0);
    T_CHILD_EQ(mempool_move_to_disk(p, r[1], NULL), 0);
    T_CHILD_EQ(mempool_close(p), 0);
    return 0;
}

/*
 * Regression: objects of a departed worker become the pool's (owner 0);
 * mempool_stats_get()'s resident_bytes and disk_bytes must still count them
 * (they add the pool's own charges to the workers'). Here a worker sets
 * 3000 B (in memory) and 2000 B (moved to disk) and closes.
 */
START_TEST(test_departed_in_stats)
{
    struct mempool_stats s;
    mempool *a;

    t_pool_name(bug_pool, NULL);
    ASSERT_RC(t_open(bug_pool, T_ARENA_BYTES, &a), 0);
    t_wait_ok(t_fork(departing_child, NULL));
    s = t_stats(a);
    ck_assert_uint_eq(s.objects, 2);
    ck_assert_uint_eq(s.mem_objects, 1);
    ck_assert_uint_eq(s.disk_objects, 1);
    ck_assert_msg(s.resident_bytes == 3000 && s.disk_bytes == 2000,
                  "after their worker closed: %" PRIu64 " object(s) in memory"
                  " with resident_bytes %" PRIu64 " (want 3000), %" PRIu64
                  " on disk with disk_bytes %" PRIu64 " (want 2000)",
                  s.mem_objects, s.resident_bytes, s.disk_objects,
                  s.disk_bytes);
    ASSERT_RC(mempool_close(a), 0);
    ASSERT_RC(mempool_destroy(bug_pool), 0);
}
END_TEST

static mempool_dref bug_r;

/* Moves bug_r to disk with its file write held open for a second. */
static int slow_writer_child(void *arg)
{
    mempool *p;

    (void)arg;
    setenv("MEMPOOL_FAILPOINT", "spill.written=delay:1500", 1);
    T_CHILD_EQ(t_attach(bug_pool, &p), 0);
    T_CHILD_EQ(mempool_move_to_disk(p, bug_r, NULL), 0);
    T_CHILD_EQ(mempool_close(p), 0);
    return 0;
}

/*
 * Regression (a library bug, fixed): mempool_move_to_disk() of an object whose file another
 * worker is writing (F_WRITING by it: a victim being spilled, or its own
 * move/copy) returns -EAGAIN, which the API does not document, instead of
 * waiting for that writer. diskapi.c ensure_file() retries only when
 * mempool__write_clean() returns -EAGAIN, but write_clean() leaves -EAGAIN
 * out of its return value (it is reported in res[] only), so ensure_file()
 * returns 0 without a complete file and evict_or_flag() then answers
 * -EAGAIN. By the same path copy_to_disk() returns 0 and a fileref to a
 * file that does not exist yet. Found by check_soak (3 workers, within
 * 50 ms); reproduced here with a writer held at spill.written for 1.5 s.
 */
START_TEST(test_regress_move_during_foreign_write)
{
    char buf[100000], dir[1100];
    mempool *p;
    pid_t pid;
    int rc;

    t_pool_name(bug_pool, NULL);
    ASSERT_RC(t_open(bug_pool, T_ARENA_BYTES, &p), 0);
    snprintf(dir, sizeof dir, "%s", t_stats(p).spill_dir);
    memset(buf, 3, sizeof buf);
    ASSERT_RC(mempool_put(p, buf, sizeof buf, &bug_r), 0);
    pid = t_fork(slow_writer_child, NULL);
    /* wait until the writer's file is complete (it is still F_WRITING);
     * T_WAIT_S, not 3 s: a loaded machine can take longer to fork, attach
     * and write 100 KB */
    for (double t0 = t_now_s();
         dir_files(dir, NULL) == 0 && t_now_s() - t0 < T_WAIT_S;)
        usleep(1000);
    ck_assert_int_eq(dir_files(dir, NULL), 1);
    rc = mempool_move_to_disk(p, bug_r, NULL);
    ck_assert_msg(rc == 0, "move_to_disk while another worker writes the "
                  "object's file: %d (%s), want 0", rc, mempool_strerror(rc));
    t_wait_ok(pid);
    ASSERT_RC(mempool_delete(p, bug_r), 0);
    ASSERT_RC(mempool_close(p), 0);
    ASSERT_RC(mempool_destroy(bug_pool), 0);
}
END_TEST

/* A worker with a 64 KiB limit that sets victims, reports them, then sets
 * an object that needs them spilled - with its victim write held at
 * spill.claimed for a second, while the parent deletes the victims. */
static int victims_child(void *arg)
{
    const int nvict = (int)(intptr_t)arg;
    static char buf[60000];
    mempool_options o;
    mempool_dref r;
    mempool *p;
    int rc;

    setenv("MEMPOOL_FAILPOINT", "spill.claimed=delay:1000@1", 1);
    t_options(&o, T_ARENA_BYTES);
    o.flags = 0;
    o.max_memsize = 64 * KiB;
    o.evict_wait_ms = 100;
    T_CHILD_EQ(mempool_open(bug_pool, &o, &p), 0);
    for (int i = 0; i < nvict; i++) {
        T_CHILD_EQ(mempool_put(p, buf, nvict == 1 ? 40000 : 30000, &r), 0);
        T_CHILD_EQ(t_send_dref(bug_fd, r), 0);
    }
    /* needs 1 victim (40000 + 40000 > 64 KiB) or both (60000 + 60000) */
    rc = mempool_put(p, buf, nvict == 1 ? 40000 : 60000, &r);
    T_CHILD_EQ(t_send_u64(bug_fd, (uint64_t)(int64_t)rc), 0);
    T_CHILD_EQ(mempool_close(p), 0);
    return 0;
}

/*
 * Regression (a library bug, fixed): mempool_put() fails although the object fits, when the
 * victims it chose go away by other means while it spills them. spill.c
 * mempool__make_room() loops until a pass of its own frees something and
 * never goes back to admit(): here the only victim is deleted by another
 * worker while being written, so the owner's charge drops to 0, yet the
 * set spins until evict_wait_ms and fails with -ENOMEM (loop 0). And when
 * nothing was freed it returns the first victim's error: a victim deleted
 * between the choice and its claim makes the set fail with -ENOENT, which
 * set does not document (loop 1). Found by check_linear (threads deleting
 * what other threads' sets pick as victims: a few failures per 100k ops).
 */
START_TEST(test_regress_set_victims_deleted)
{
    mempool_dref v[2];
    uint64_t rc;
    mempool *p;
    int fds[2], nvict = _i + 1;
    pid_t pid;

    t_pool_name(bug_pool, NULL);
    ASSERT_RC(t_open(bug_pool, T_ARENA_BYTES, &p), 0);
    t_pipe(fds);
    bug_fd = fds[1];
    pid = t_fork(victims_child, (void *)(intptr_t)nvict);
    close(fds[1]);
    for (int i = 0; i < nvict; i++)
        ASSERT_RC(t_recv_dref(fds[0], &v[i], T_WAIT_S), 0);
    usleep(300000);              /* the child is inside its 1 s delay */
    for (int i = 0; i < nvict; i++)
        ASSERT_RC(mempool_delete(p, v[i]), 0);
    ASSERT_RC(t_recv_u64(fds[0], &rc, T_WAIT_S), 0);
    close(fds[0]);
    t_wait_ok(pid);
    ck_assert_msg((int64_t)rc == 0, "set, after the victim%s it was "
                  "spilling %s deleted by another worker: %d (%s), want 0",
                  nvict > 1 ? "s" : "", nvict > 1 ? "were" : "was", (int)rc,
                  mempool_strerror((int)rc));
    t_assert_healthy(p);
    ASSERT_RC(mempool_close(p), 0);
    ASSERT_RC(mempool_destroy(bug_pool), 0);
}
END_TEST

/* Sets 20000-byte objects through a handle with a 64 KiB limit, so each
 * set spills older ones; the newest DRefs go to a ring. */
static struct {
    mempool *p;
    mempool_dref ring[64];
    _Atomic long head;
    _Atomic int stop;
} ev;

static void *evicting_setter(void *arg)
{
    static char buf[20000];

    (void)arg;
    for (long i = 0; !atomic_load(&ev.stop); i++) {
        mempool_dref r;

        if (mempool_put(ev.p, buf, sizeof buf, &r) != 0)
            continue;
        ev.ring[i % 64] = r;
        atomic_store(&ev.head, i + 1);
        if (i >= 40)                     /* keep the disk bounded */
            (void)mempool_delete(ev.p, ev.ring[(i - 40) % 64]);
    }
    return NULL;
}

/*
 * Regression (a library bug, fixed): move_to_disk() / copy_to_disk() of a live object answer
 * -ENOENT when another worker evicts it at the same moment. spill.c
 * claim() checks the state once (LIVE), pins, then re-reads it in its CAS
 * loop and returns -ENOENT for anything but LIVE - but by then the object
 * may be EVICTING or SPILLED (evicted before the pin), both of which mean
 * "a complete file exists" and should give 0, as the first check does. And
 * move's mempool__evict() answers -ENOENT when the object is EVICTING by
 * another worker, instead of waiting for that verdict.
 * The same -ENOENT reaches mempool_put() through a victim's claim (see
 * test_regress_set_victims_deleted). A race: one thread sets through a handle
 * with a 64 KiB limit (each set evicts older objects), this one copies
 * (loop 0) or moves (loop 1) the newest objects through another handle; a
 * -ENOENT for an object that still exists afterwards (deletes are final)
 * is the bug. Found by check_soak under ASan; here usually within a
 * second, bounded at 5 s.
 */
START_TEST(test_regress_to_disk_during_eviction)
{
    mempool_options o;
    mempool *p, *b;
    pthread_t th;
    long calls = 0, hits = 0;
    uint64_t rnd = 1;
    double t0;
    struct timespec ts;

    t_pool_name(bug_pool, NULL);
    t_options(&o, 64ull << 20);
    ASSERT_RC(mempool_open(bug_pool, &o, &p), 0);
    o.flags = 0;
    o.max_memsize = 64 * KiB;
    ASSERT_RC(mempool_open(bug_pool, &o, &ev.p), 0);
    o.max_memsize = 0;
    ASSERT_RC(mempool_open(bug_pool, &o, &b), 0);
    atomic_store(&ev.head, 0);
    atomic_store(&ev.stop, 0);
    ck_assert_int_eq(pthread_create(&th, NULL, evicting_setter, NULL), 0);
    clock_gettime(CLOCK_MONOTONIC, &ts);
    t0 = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
    for (;;) {
        long h = atomic_load(&ev.head);
        mempool_dref r;
        mempool_info in;
        int rc;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        if (hits || (double)ts.tv_sec + (double)ts.tv_nsec / 1e9 - t0 > 5)
            break;
        if (h < 12)
            continue;
        r = ev.ring[(h - 1 - (long)(t_rand(&rnd) % 8)) % 64];
        rc = _i ? mempool_move_to_disk(b, r, NULL)
                : mempool_copy_to_disk(b, r, NULL);
        calls++;
        if (rc == -ENOENT && mempool_info_get(b, r, &in) == 0)
            hits++;                      /* it exists: -ENOENT was wrong */
    }
    atomic_store(&ev.stop, 1);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    ASSERT_RC(mempool_close(b), 0);
    ASSERT_RC(mempool_close(ev.p), 0);
    ASSERT_RC(mempool_close(p), 0);
    ASSERT_RC(mempool_destroy(bug_pool), 0);
    ck_assert_msg(hits == 0, "%s_to_disk answered -ENOENT for an object "
                  "that exists (while another worker evicted it), after %ld"
                  " calls", _i ? "move" : "copy", calls);
}
END_TEST

static Suite *fp_suite(void)
{
    Suite *s = suite_create("failpoints");
    TCase *tc;

    tc = tcase_create("kill");
    tcase_set_timeout(tc, KILL_POINT_S);
    tcase_add_loop_test(tc, test_kill_matrix, 0, NFP);
    suite_add_tcase(s, tc);

    tc = tcase_create("stop");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_stop_names_exist);
    tcase_add_loop_test(tc, test_stop_outside_lock, 0, NSTOP_OUT);
    tcase_add_loop_test(tc, test_stop_inside_lock, 0, NSTOP_IN);
    suite_add_tcase(s, tc);

    /* Minimal reproductions of library bugs the matrix found. */
    tc = tcase_create("bugs");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_regress_open_reap_leaks_spill_file, 0, 2);
    tcase_add_test(tc, test_departed_in_stats);
    tcase_add_test(tc, test_regress_move_during_foreign_write);
    tcase_add_loop_test(tc, test_regress_set_victims_deleted, 0, 2);
    tcase_add_loop_test(tc, test_regress_to_disk_during_eviction, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return t_run(fp_suite(), "fp");
}
