/* SPDX-License-Identifier: MIT */
/*
 * check_alloc_review.c - hostile tests of the per-worker allocator caches
 * (src/core/wcache.c), written by a reviewer of that protocol, beside the
 * author's own check_alloc_cache.c.
 *
 * storm: three worker processes reserve/publish and delete small (and a
 * few large) objects in a shared board of DRefs, each deleting whatever it
 * finds there (so most deletes are of another worker's objects, some of
 * its own: recaches), and reading objects back (their bytes are a pattern
 * of their DRef: two objects sharing a block or an entry show). A checker
 * process runs mempool_check() in a loop. The parent SIGKILLs workers and
 * the checker at random points and starts new ones (which claim the dead
 * slots), and SIGSTOPs workers (maybe inside their cache lock) for a while
 * with the checker and the others running: every wait must end once the
 * worker continues. At the end: check clean; after every known object is
 * deleted, stats say 0 objects, 0 used and 0 resident bytes; trim, check
 * again. A worker holds each DRef in its "hand" (shared memory) before it
 * publishes or deletes it, so the parent knows every object a kill can
 * leave; a reservation a kill leaves unpublished is reaped.
 *
 * claim: a worker killed after marking its small object DELETED leaves it
 * to whoever claims its slot next; the claimer's reap recaches it into the
 * slot's cache. Stopped right there (inside that cache lock, failpoint
 * cache.recached=stop), a mempool_check() in another process waits for it
 * (the dead holder's slot is still marked attached, so check holds its
 * cache), finishes clean once it continues, and the pool is empty after.
 */
#include "helpers.h"
#include "layout.h"                /* mp_entry: to damage one */

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------ storm */

#define NWORK 3
#define NBOARD 256
#define STORM_S 6.0
#define NORPHANS 4096

#define NREFS (1u << 19)

struct shared {
    _Atomic uint64_t board[NBOARD];  /* 1 + an index in refs, 0 = empty */
    _Atomic uint64_t hand[NWORK + 1];/* a DRef a worker may leave behind */
    _Atomic uint64_t ops[NWORK + 1]; /* progress of each worker, checker */
    struct t_note note;              /* set by a child that saw a bug */
    _Atomic uint64_t nrefs;          /* refs handed out */
    mempool_dref refs[NREFS];        /* written before its index is shown */
};

static struct shared *sh;

static mempool_dref dec(uint64_t v)
{
    return sh->refs[v - 1];
}

static void bug(const char *what, long long rc)
{
    t_note_bug(&sh->note, what, rc);
}

static uint64_t len_of(uint64_t *rng)
{
    uint64_t x = t_rand(rng);
    if (x % 16 == 0)
        return 2049 + x % 6000;      /* large: the locked path */
    return 1 + (x >> 8) % 2048;
}

/* Delete the object on board cell @p j (value @p v), if we win it. */
static void take(mempool *p, int me, unsigned j, uint64_t v)
{
    int rc;
    atomic_store(&sh->hand[me], v);
    if (atomic_compare_exchange_strong(&sh->board[j], &v, 0)) {
        rc = mempool_delete(p, dec(v));
        if (rc)
            bug("delete of a board object", rc);
    }
    atomic_store(&sh->hand[me], 0);
}

/* A new object on board cell @p j, if it is still empty. */
static void give(mempool *p, int me, unsigned j, uint64_t *rng)
{
    uint64_t len = len_of(rng), v = atomic_fetch_add(&sh->nrefs, 1) + 1, z = 0;
    mempool_dref *r;
    void *data;
    int rc;
    if (v > NREFS)
        return;                      /* the test's own table is full */
    r = &sh->refs[v - 1];
    /* The hand first: a kill right after the reservation leaves it named. */
    atomic_store(&sh->hand[me], v);
    rc = mempool_reserve(p, len, NULL, &data, r);
    if (rc) {
        if (rc != -ENOMEM)
            bug("reserve", rc);
        atomic_store(&sh->hand[me], 0);
        return;
    }
    t_fill(data, len, v);
    if ((rc = mempool_publish(p, *r))) {
        bug("publish", rc);
        return;
    }
    if (!atomic_compare_exchange_strong(&sh->board[j], &z, v) &&
        (rc = mempool_delete(p, *r)))
        bug("delete of our own object", rc);
    atomic_store(&sh->hand[me], 0);
}

/* Read board cell @p j's object: its bytes are its DRef's pattern. */
static void look(mempool *p, uint64_t v)
{
    mempool_view view;
    int rc = mempool_get(p, dec(v), &view);
    if (rc == -ENOENT)
        return;                      /* deleted meanwhile */
    if (rc) {
        bug("get", rc);
        return;
    }
    if (!t_check_fill(view.data, view.len, v))
        bug("an object's bytes are not its own (shared block?)",
             (long long)view.len);
    mempool_release(p, &view);
}

static int worker(void *arg)
{
    int me = (int)(intptr_t)arg;
    uint64_t rng = (uint64_t)getpid() * 0x9e3779b97f4a7c15ull | 1;
    mempool *p;
    int rc = t_attach(t_name, &p);
    if (rc) {
        bug("attach", rc);
        return 1;
    }
    for (;;) {
        unsigned j = (unsigned)(t_rand(&rng) % NBOARD);
        uint64_t v = atomic_load(&sh->board[j]);
        if (v && t_rand(&rng) % 4 == 0)
            look(p, v);
        else if (v)
            take(p, me, j, v);
        else
            give(p, me, j, &rng);
        atomic_fetch_add(&sh->ops[me], 1);
    }
}

static int checker(void *arg)
{
    char why[256];
    mempool *p;
    int rc = t_attach(t_name, &p);
    (void)arg;
    if (rc) {
        bug("checker attach", rc);
        return 1;
    }
    for (;;) {
        /* A worker the parent just killed is for the reaper first. */
        rc = mempool_check(p, why, sizeof why);
        if (rc == MEMPOOL_ECORRUPT && strstr(why, "dead and not reaped")) {
            mempool_reap(p);
            continue;
        }
        if (rc) {
            bug(why, rc);
            return 1;
        }
        atomic_fetch_add(&sh->ops[NWORK], 1);
    }
}

static void nap_ms(uint64_t ms)
{
    nanosleep(&(struct timespec){ (time_t)(ms / 1000),
                                  (long)(ms % 1000) * 1000000L }, NULL);
}

/* Progress of process @p k (a worker, or the checker) within 20 s. */
static void assert_moves(int k, const char *what)
{
    uint64_t a = atomic_load(&sh->ops[k]);
    double end = t_now_s() + 20;
    while (atomic_load(&sh->ops[k]) == a && t_now_s() < end &&
           !atomic_load(&sh->note.failed))
        nap_ms(1);
    ck_assert_msg(!atomic_load(&sh->note.failed), "%s", sh->note.why);
    ck_assert_msg(atomic_load(&sh->ops[k]) != a, "%s %d made no progress",
                  what, k);
}

START_TEST(storm)
{
    pid_t pid[NWORK + 1];
    uint64_t rng = (uint64_t)getpid() | 1, hi = 0, used = 0;
    char why[256];
    struct mempool_stats s;
    int kills = 0, stops = 0, norphans = 0;
    static uint64_t orphans[NORPHANS];
    double end;

    sh = t_shared_map(sizeof *sh);
    for (int k = 0; k < NWORK; k++)
        pid[k] = t_fork(worker, (void *)(intptr_t)k);
    pid[NWORK] = t_fork(checker, NULL);
    end = t_now_s() + STORM_S;
    while (t_now_s() < end && !atomic_load(&sh->note.failed)) {
        int k = (int)(t_rand(&rng) % (NWORK + 1));
        nap_ms(20 + t_rand(&rng) % 60);
        if (k < NWORK && t_rand(&rng) % 3 == 0) {
            /* Stopped, perhaps inside its cache lock: the checker (and
             * sets of the others that need the allocator lock) wait for
             * it, and go on when it does. */
            kill(pid[k], SIGSTOP);
            nap_ms(50 + t_rand(&rng) % 100);
            kill(pid[k], SIGCONT);
            stops++;
            assert_moves(NWORK, "checker");
            assert_moves(k, "worker");
        } else {
            ck_assert_int_eq(t_kill(pid[k]), SIGKILL);
            kills++;
            if (k < NWORK) {             /* its replacement reuses hand[k] */
                ck_assert_int_lt(norphans, NORPHANS);
                orphans[norphans++] = atomic_exchange(&sh->hand[k], 0);
            }
            pid[k] = t_fork(k < NWORK ? worker : checker,
                            (void *)(intptr_t)k);   /* claims a dead slot */
        }
    }
    ck_assert_msg(!atomic_load(&sh->note.failed), "%s", sh->note.why);
    for (int k = 0; k <= NWORK; k++)
        assert_moves(k, k < NWORK ? "worker" : "checker");
    for (int k = 0; k <= NWORK; k++)
        ck_assert_int_eq(t_kill(pid[k]), SIGKILL);
    ck_assert_msg(!atomic_load(&sh->note.failed), "%s", sh->note.why);

    /* The dead are reaped; every object we know of is deleted. */
    ck_assert_int_ge(mempool_reap(t_pool), 0);
    ASSERT_RC(mempool_check(t_pool, why, sizeof why), 0);
    s = t_stats(t_pool);
    hi = s.objects;
    for (int j = 0; j < NBOARD; j++) {
        uint64_t v = atomic_load(&sh->board[j]);
        if (v) {
            mempool_view view;
            ASSERT_RC(mempool_get(t_pool, dec(v), &view), 0);
            ck_assert(t_check_fill(view.data, view.len, v));
            ASSERT_RC(mempool_release(t_pool, &view), 0);
            ASSERT_RC(mempool_delete(t_pool, dec(v)), 0);
        }
    }
    for (int k = 0; k < NWORK; k++)
        orphans[norphans++] = atomic_load(&sh->hand[k]);
    for (int k = 0; k < norphans; k++) {
        uint64_t v = orphans[k];
        int rc = v ? mempool_delete(t_pool, dec(v)) : -ENOENT;
        /* unpublished (reaped: -ENOENT), or killed inside the reserve
         * before the DRef was written (none: -EINVAL) or while it was:
         * the 16-byte store may be two, offset first (half: its gen 0,
         * -EINVAL; seen once in a clean-clone werror lane, session 11) */
        ck_assert_msg(rc == 0 || rc == -ENOENT ||
                      (rc == -EINVAL && (!dec(v).off || !dec(v).gen)),
                      "hand delete: %d (DRef %llx %llx)", rc,
                      (unsigned long long)dec(v).off,
                      (unsigned long long)dec(v).gen);
    }
    ASSERT_RC(mempool_check(t_pool, why, sizeof why), 0);
    s = t_stats(t_pool);
    used = s.used_bytes;
    ck_assert_msg(s.objects == 0 && used == 0 && s.resident_bytes == 0,
                  "after deleting everything (%llu objects before; %d "
                  "kills, %d stops): %llu objects, %llu used, %llu "
                  "resident", (unsigned long long)hi, kills, stops,
                  (unsigned long long)s.objects, (unsigned long long)used,
                  (unsigned long long)s.resident_bytes);
    ck_assert_int_ge(mempool_trim(t_pool), 0);
    ASSERT_RC(mempool_check(t_pool, why, sizeof why), 0);
    s = t_stats(t_pool);
    ck_assert_uint_eq(s.free_bytes, s.data_bytes);
    munmap(sh, sizeof *sh);
}
END_TEST

/* ---------------------------------------------------------------- damaged */

/* The block a cached entry names was damaged (shared memory any of the
 * pool's users can write): a set that pops the entry must not write where
 * it points - past the arena, into its metadata (the header), or inside a
 * page but not on a block of the entry's class. The set gets another
 * block and its bytes read back, nothing at the damaged offset changed,
 * and mempool_check() reports the damage. (A crash here kills the test.) */
START_TEST(damaged)
{
    static const uint64_t bad[] = { 1ull << 40, 64, 32 };
    char why[256], path[256], b[100], was[64]; /* inside the old block */
    mempool_dref r, r2;
    mempool_view v;
    mp_entry *e;
    uint64_t off = bad[_i];
    int fd;
    uint8_t *m;
    size_t mlen;

    t_shm_path(path, sizeof path, t_name);
    fd = open(path, O_RDWR);
    ck_assert_int_ge(fd, 0);
    mlen = (size_t)t_stats(t_pool).arena_bytes;
    m = mmap(NULL, mlen, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    ck_assert_ptr_ne(m, MAP_FAILED);
    close(fd);
    /* Our own small object, deleted: its entry is now in our cache. */
    memset(b, 1, sizeof b);
    ASSERT_RC(mempool_put(t_pool, b, sizeof b, &r), 0);
    ASSERT_RC(mempool_delete(t_pool, r), 0);
    e = (mp_entry *)(m + (r.off & MEMPOOL_DREF_ENTRY_BITS));
    if (_i == 2)
        off += e->off;                   /* inside its page, off a block */
    e->off = off;
    if (off + sizeof was <= mlen)
        memcpy(was, m + off, sizeof was);
    memset(b, 2, sizeof b);
    ASSERT_RC(mempool_put(t_pool, b, sizeof b, &r2), 0);
    if (off + sizeof was <= mlen)
        ck_assert_msg(memcmp(was, m + off, sizeof was) == 0,
                      "a set wrote at the damaged offset %llu",
                      (unsigned long long)off);
    ASSERT_RC(mempool_get(t_pool, r2, &v), 0);
    ck_assert_uint_eq(v.len, sizeof b);
    ck_assert(memcmp(v.data, b, sizeof b) == 0);
    ASSERT_RC(mempool_release(t_pool, &v), 0);
    ck_assert_msg(mempool_check(t_pool, why, sizeof why) == MEMPOOL_ECORRUPT,
                  "damage %d not reported", _i);
    munmap(m, mlen);
}
END_TEST

/* ------------------------------------------------------------------ claim */
#ifdef MEMPOOL_FAILPOINTS

/* Set one small object, then die right after marking it DELETED. */
static int die_deleting(void *arg)
{
    mempool *p;
    mempool_dref r;
    char b[100] = { 1 };
    (void)arg;
    setenv("MEMPOOL_FAILPOINT", "delete.marked=kill", 1);
    T_CHILD_EQ(t_attach(t_name, &p), 0);
    T_CHILD_EQ(mempool_put(p, b, sizeof b, &r), 0);
    mempool_delete(p, r);
    return 1;                        /* not reached: killed */
}

/* Claim the dead worker's slot (its reap recaches the DELETED object:
 * stop there, inside the slot's cache lock). Then close. */
static int claimer(void *arg)
{
    int fd = (int)(intptr_t)arg;
    mempool *p;
    setenv("MEMPOOL_FAILPOINT", "cache.recached=stop", 1);
    T_CHILD_EQ(t_attach(t_name, &p), 0);
    T_CHILD_EQ(t_send_u64(fd, (uint64_t)mempool_worker_id(p)), 0);
    T_CHILD_EQ(mempool_close(p), 0);
    return 0;
}

static int check_child(void *arg)
{
    char why[256];
    mempool *p;
    int rc;
    (void)arg;
    T_CHILD_EQ(t_attach(t_name, &p), 0);
    rc = mempool_check(p, why, sizeof why);
    if (rc)
        fprintf(stderr, "check: %s\n", why);
    T_CHILD_EQ(rc, 0);
    T_CHILD_EQ(mempool_close(p), 0);
    return 0;
}

START_TEST(claim)
{
    char why[256];
    int fds[2], st;
    uint64_t id = 0;
    pid_t c, k;
    struct mempool_stats s;

    ck_assert_int_eq(t_wait(t_fork(die_deleting, NULL), T_WAIT_S),
                     128 + SIGKILL);
    s = t_stats(t_pool);
    ck_assert_uint_eq(s.objects, 1);          /* DELETED, nobody reaped it */
    t_pipe(fds);
    c = t_fork(claimer, (void *)(intptr_t)fds[1]);
    close(fds[1]);
    /* The claimer's reap stops at the recache, holding slot 2's cache
     * lock; the slot is still marked attached (its dead holder's bit). */
    for (double end = t_now_s() + T_WAIT_S;;) {
        pid_t w = waitpid(c, &st, WNOHANG | WUNTRACED);
        ck_assert_int_ne(w, -1);
        if (w == c) {
            ck_assert_msg(WIFSTOPPED(st), "claimer ended: %d", st);
            break;
        }
        ck_assert_msg(t_now_s() < end, "the claimer did not stop");
        nap_ms(1);
    }
    /* A check meanwhile (another process) waits for it, sees its step
     * whole once it continues, and is clean; so is the pool after. */
    k = t_fork(check_child, NULL);
    nap_ms(200);
    kill(c, SIGCONT);
    t_wait_ok(k);
    ASSERT_RC(t_recv_u64(fds[0], &id, T_WAIT_S), 0);
    ck_assert_int_eq((int)id, 2);              /* we are worker 1 */
    t_wait_ok(c);
    close(fds[0]);
    ASSERT_RC(mempool_check(t_pool, why, sizeof why), 0);
    s = t_stats(t_pool);
    ck_assert_uint_eq(s.objects, 0);
    ck_assert_uint_eq(s.used_bytes, 0);
    ck_assert_uint_eq(s.resident_bytes, 0);
}
END_TEST

#endif /* MEMPOOL_FAILPOINTS */

static Suite *suite(void)
{
    Suite *s = suite_create("alloc_review");
    TCase *tc = t_tcase(s, "storm", 60);
    tcase_add_test(tc, storm);
    tc = t_tcase(s, "damaged", 60);
    tcase_add_loop_test(tc, damaged, 0, 3);
#ifdef MEMPOOL_FAILPOINTS
    tc = t_tcase(s, "claim", 60);
    tcase_add_test(tc, claim);
#endif
    return s;
}

int main(void)
{
    return t_run(suite(), "areview");
}
