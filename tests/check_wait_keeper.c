/* SPDX-License-Identifier: MIT */
/*
 * check_wait_keeper.c - mempool_get_wait() sleeping without a timer, its
 * handle's keeper thread watching the writers (src/handoff/keeper.c):
 *
 *   killed      a writer SIGKILLed before publishing wakes every sleeper
 *               (threads of this process, other processes, two
 *               reservations) with -ENOENT long before their own 20 s
 *               timeout: an untimed sleep that the keeper failed to wake
 *               would end in -ETIMEDOUT.
 *   many        more sleepers than the keeper has places (the rest cap
 *               their sleeps as before): all -ENOENT.
 *   thread_exit a writer whose reserving thread exits is still alive: the
 *               sleeper keeps sleeping across several keeper ticks and
 *               gets the object when another thread publishes it.
 *   stopped     a stopped writer: get_wait runs its timeout (bounded) and
 *               gets the object once the writer continues and publishes.
 *   forked      a child forked from a process whose keeper runs: its
 *               handle answers MEMPOOL_EFORKED and its close does not
 *               hang (no keeper to join there); the parent's keeper still
 *               wakes it.
 *   planted     another user of a 0666 pool plants writer numbers (out
 *               of range, 0) in a reservation's entry word: get_wait
 *               answers MEMPOOL_ECORRUPT (no crash, no hang; it ran its
 *               timeout until session 12, and an untimed one waited for
 *               ever: check_review12 wait_nobody); put back, the keeper
 *               wakes a sleeper of the killed writer as before.
 *   failpoints  (failpoint builds) keep.start=eio: no keeper, the capped
 *               sleep still answers -ENOENT for a killed writer;
 *               keep.kept=kill / stop: a waiter killed or stopped right
 *               after registering costs the others nothing.
 */
#include "helpers.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define WAIT_MS 20000          /* a sleeper's own timeout: never reached */

static int to_w[2], from_w[2]; /* parent -> writer, writer -> parent */
static mempool_dref refs[2];

/* Waiter exit codes (and thread results). W_LATE: -ENOENT, but only
 * after half its timeout - the sleep's own deadline, not a wake-up,
 * ended it (the keeper missed the death). */
enum { W_ENOENT = 1, W_TIMEDOUT = 2, W_GOT = 3, W_OTHER = 4, W_LATE = 5 };

static int code_of(int rc, const mempool_view *v)
{
    if (rc == 0) {
        bool ok = v->len == 64 && t_check_fill(v->data, 64, 7);
        return ok ? W_GOT : W_OTHER;
    }
    return rc == -ENOENT ? W_ENOENT : rc == -ETIMEDOUT ? W_TIMEDOUT : W_OTHER;
}

/* get_wait of @p r on @p q, as a waiter code (the view kept in @p v). */
static int wait_code(mempool *q, mempool_dref r, mempool_view *v)
{
    double t0 = t_now_s();
    int rc = mempool_get_wait(q, r, v, WAIT_MS);
    if (rc == -ENOENT && t_now_s() - t0 >= WAIT_MS / 2000.0)
        return W_LATE;
    return code_of(rc, v);
}

/* ------------------------------------------------------------ writers */

static void reserve_send(mempool *q)
{
    for (int i = 0; i < 2; i++) {
        void *buf;
        mempool_dref r;
        if (mempool_reserve(q, 64, NULL, &buf, &r) < 0)
            _exit(20);
        t_fill(buf, 64, 7);
        refs[i] = r;                   /* the writer's own copy */
        if (t_send_dref(from_w[1], r) < 0)
            _exit(21);
    }
}

/* The writer's answer to each byte from the parent: 'p' publishes both
 * reservations, 'q' closes and quits (its exit code). */
static int serve(mempool *q)
{
    char c;
    while (t_recv(to_w[0], &c, 1, 120) == 0) {
        if (c == 'q')
            return mempool_close(q) == 0 ? 0 : 24;
        for (int i = 0; c == 'p' && i < 2; i++)
            if (mempool_publish(q, refs[i]) < 0)
                return 22;
    }
    return 23;
}

/* Reserves two objects, sends their DRefs, then on each byte from the
 * parent: 'p' publishes both, 'q' quits. */
static int writer(void *arg)
{
    mempool *q;
    (void)arg;
    if (t_attach(t_name, &q) < 0)
        return 10;
    reserve_send(q);
    return serve(q);
}

static void *reserver(void *arg)
{
    reserve_send(arg);
    return NULL;                       /* this thread ends here */
}

/* The same, but the reservations are made by a second thread that exits
 * at once: the process (and its slot) lives on. */
static int thread_writer(void *arg)
{
    pthread_t th;
    mempool *q;
    (void)arg;
    if (t_attach(t_name, &q) < 0)
        return 10;
    if (pthread_create(&th, NULL, reserver, q) || pthread_join(th, NULL))
        return 11;
    return serve(q);
}

static pid_t writer_start(int (*fn)(void *))
{
    pid_t w;
    t_pipe(to_w);
    t_pipe(from_w);
    w = t_fork(fn, NULL);
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(t_recv_dref(from_w[0], &refs[i], T_WAIT_S), 0);
    return w;
}

static void writer_say(char c)
{
    ck_assert_int_eq(t_send(to_w[1], &c, 1), 0);
}

/* Writer @p w closes and exits 0; both objects are deleted and the pool
 * is healthy (a killed worker's slot reaped). */
static void writer_quit(pid_t w)
{
    writer_say('q');
    t_wait_ok(w);
    for (int i = 0; i < 2; i++)
        ASSERT_RC(mempool_delete(t_pool, refs[i]), 0);
    ck_assert_int_ge(mempool_reap(t_pool), 0);  /* a killed worker's slot */
    t_assert_healthy(t_pool);
}

/* ------------------------------------------------------------ waiters */

/* A waiter process on refs[arg & 1]; arg & 2: with keep.start=eio. */
static int waiter(void *arg)
{
    long a = (long)arg;
    mempool_view v;
    mempool *q;
    int rc;
    if (a & 2)
        setenv("MEMPOOL_FAILPOINT", "keep.start=eio", 1);
    if (t_attach(t_name, &q) < 0)
        return 10;
    rc = wait_code(q, refs[a & 1], &v);
    if (rc == W_GOT)
        mempool_release(q, &v);
    mempool_close(q);
    return rc;
}

struct thr {
    pthread_t th;
    mempool_dref r;
    int code;
};

static void *waiter_thread(void *arg)
{
    struct thr *t = arg;
    mempool_view v;
    t->code = wait_code(t_pool, t->r, &v);
    if (t->code == W_GOT)
        mempool_release(t_pool, &v);
    return NULL;
}

/* Until @p n more get_wait calls than @p base have slept. */
static void await_sleepers(uint64_t base, uint64_t n)
{
    double t0 = t_now_s();
    while (t_stats(t_pool).get_waits < base + n) {
        ck_assert_msg(t_now_s() - t0 < T_WAIT_S, "sleepers never slept");
        t_sleep_ms(5);
    }
    t_sleep_ms(100);                   /* into FUTEX_WAIT, most likely */
}

static void expect_code(pid_t pid, int code)
{
    int st = t_wait(pid, WAIT_MS / 1000.0 + 30);
    ck_assert_msg(st == code, "waiter %d ended with %d, want %d (1 ENOENT, "
                  "2 ETIMEDOUT, 3 got, 5 late)", (int)pid, st, code);
}

/* ------------------------------------------------------------- tests */

START_TEST(test_killed)
{
    uint64_t base = t_stats(t_pool).get_waits;
    pid_t w = writer_start(writer), k[3];
    struct thr th[2];
    for (int i = 0; i < 3; i++)
        k[i] = t_fork(waiter, (void *)(long)(i == 2));
    for (int i = 0; i < 2; i++) {
        th[i].r = refs[i];
        ck_assert_int_eq(pthread_create(&th[i].th, NULL, waiter_thread,
                                        &th[i]), 0);
    }
    await_sleepers(base, 5);
    t_kill(w);
    for (int i = 0; i < 3; i++)
        expect_code(k[i], W_ENOENT);
    for (int i = 0; i < 2; i++) {
        pthread_join(th[i].th, NULL);
        ck_assert_int_eq(th[i].code, W_ENOENT);
    }
    ck_assert_int_ge(mempool_reap(t_pool), 0);  /* a killed worker's slot */
    t_assert_healthy(t_pool);
}
END_TEST

#define MANY 72                        /* > MP_KEEP_N (64) */

START_TEST(test_many)
{
    uint64_t base = t_stats(t_pool).get_waits;
    pid_t w = writer_start(writer);
    struct thr *th = calloc(MANY, sizeof *th);
    ck_assert_ptr_nonnull(th);
    for (int i = 0; i < MANY; i++) {
        th[i].r = refs[i & 1];
        ck_assert_int_eq(pthread_create(&th[i].th, NULL, waiter_thread,
                                        &th[i]), 0);
    }
    await_sleepers(base, MANY);
    t_kill(w);
    for (int i = 0; i < MANY; i++) {
        pthread_join(th[i].th, NULL);
        ck_assert_msg(th[i].code == W_ENOENT, "sleeper %d: %d", i,
                      th[i].code);
    }
    free(th);
    ck_assert_int_ge(mempool_reap(t_pool), 0);  /* a killed worker's slot */
    t_assert_healthy(t_pool);
}
END_TEST

START_TEST(test_thread_exit)
{
    uint64_t base = t_stats(t_pool).get_waits;
    pid_t w = writer_start(thread_writer), k;
    k = t_fork(waiter, (void *)0L);
    await_sleepers(base, 1);
    t_sleep_ms(300);                   /* several keeper ticks */
    ck_assert_int_eq(waitpid(k, NULL, WNOHANG), 0);   /* still asleep */
    writer_say('p');
    expect_code(k, W_GOT);
    writer_quit(w);
}
END_TEST

START_TEST(test_stopped)
{
    pid_t w = writer_start(writer);
    mempool_view v;
    double t0;
    kill(w, SIGSTOP);
    t_await_stopped(w, "SIGSTOP");
    t0 = t_now_s();
    ASSERT_RC(mempool_get_wait(t_pool, refs[0], &v, 300), -ETIMEDOUT);
    ck_assert(t_now_s() - t0 >= 0.29);
    kill(w, SIGCONT);
    writer_say('p');
    ASSERT_RC(mempool_get_wait(t_pool, refs[0], &v, WAIT_MS), 0);
    ck_assert(t_check_fill(v.data, 64, 7));
    ASSERT_RC(mempool_release(t_pool, &v), 0);
    writer_quit(w);
}
END_TEST

static int forked_child(void *arg)
{
    mempool_view v;
    (void)arg;
    if (mempool_get_wait(t_pool, refs[0], &v, 100) != MEMPOOL_EFORKED)
        return 30;
    return mempool_close(t_pool) == 0 ? 0 : 31;
}

START_TEST(test_forked)
{
    pid_t w = writer_start(writer), c;
    uint64_t base;
    struct thr th = { .r = refs[1] };
    mempool_view v;
    /* our keeper runs (started by this sleep) when we fork */
    ASSERT_RC(mempool_get_wait(t_pool, refs[0], &v, 100), -ETIMEDOUT);
    c = t_fork(forked_child, NULL);
    t_wait_ok(c);
    base = t_stats(t_pool).get_waits;
    ck_assert_int_eq(pthread_create(&th.th, NULL, waiter_thread, &th), 0);
    await_sleepers(base, 1);
    t_kill(w);
    pthread_join(th.th, NULL);
    ck_assert_int_eq(th.code, W_ENOENT);
    ck_assert_int_ge(mempool_reap(t_pool), 0);  /* a killed worker's slot */
    t_assert_healthy(t_pool);
}
END_TEST

/* The entry word of refs[0] in a mapping of the arena of t_name. */
static _Atomic uint64_t *word_of(uint8_t *base)
{
    return (_Atomic uint64_t *)(base + (refs[0].off &
                                        MEMPOOL_DREF_ENTRY_BITS));
}

static uint64_t planted;

/* As uid 65534 (another user of the 0666 pool): write @p planted's
 * writer byte (bits 16..23) into refs[0]'s entry word, or restore the
 * whole word to @p arg when it is not 0. */
static int plant(void *arg)
{
    uint64_t restore = *(uint64_t *)arg;
    _Atomic uint64_t *w;
    uint8_t *base;
    size_t len;
    if (t_become_nobody() != 0)
        return 40;
    if (!(base = t_map_arena_rw(t_name, &len)))
        return 41;
    w = word_of(base);
    if (restore)
        atomic_store(w, restore);
    else
        atomic_store(w, (atomic_load(w) & ~(UINT64_C(0xff) << 16)) |
                            planted << 16);
    return 0;
}

/* Another user plants writer numbers in a reservation's entry word (out
 * of range, 0): get_wait neither crashes nor hangs, it answers
 * MEMPOOL_ECORRUPT (no worker reserves with such a number). With the word put back, a
 * sleeper is woken by the keeper when the writer is killed, as before. */
START_TEST(test_planted)
{
    static const uint64_t who[] = { 0xfe, 0 };
    struct thr th;
    mempool_options o;
    mempool_view v;
    uint64_t orig, base;
    uint8_t *arena;
    size_t len;
    pid_t w;
    t_pool_name(t_name, "wait_keeper");
    t_options(&o, T_ARENA_BYTES);
    o.mode = 0666;
    ASSERT_RC(mempool_open(t_name, &o, &t_pool), 0);
    w = writer_start(writer);
    arena = t_map_arena_rw(t_name, &len);
    ck_assert_ptr_nonnull(arena);
    orig = atomic_load(word_of(arena));
    for (int i = 0; i < 2; i++) {
        double t0 = t_now_s();
        int rc;
        planted = who[i];
        t_wait_ok(t_fork(plant, &(uint64_t){ 0 }));
        ck_assert(atomic_load(word_of(arena)) != (uint64_t)orig);
        rc = mempool_get_wait(t_pool, refs[0], &v, 300);
        ck_assert_msg(rc == MEMPOOL_ECORRUPT, "planted writer %u: %d",
                      (unsigned)planted, rc);
        ck_assert(t_now_s() - t0 < T_WAIT_S / 2);
    }
    t_wait_ok(t_fork(plant, &orig));
    ck_assert(atomic_load(word_of(arena)) == (uint64_t)orig);
    munmap(arena, len);
    base = t_stats(t_pool).get_waits;
    th.r = refs[0];
    ck_assert_int_eq(pthread_create(&th.th, NULL, waiter_thread, &th), 0);
    await_sleepers(base, 1);
    t_kill(w);
    pthread_join(th.th, NULL);
    ck_assert_int_eq(th.code, W_ENOENT);
    ck_assert_int_ge(mempool_reap(t_pool), 0);
    t_assert_healthy(t_pool);
    ASSERT_RC(mempool_close(t_pool), 0);
    t_pool = NULL;
    mempool_destroy(t_name);
}
END_TEST

#ifdef MEMPOOL_FAILPOINTS
/* No keeper (keep.start=eio): the capped sleep notices the death. */
START_TEST(test_no_keeper)
{
    uint64_t base = t_stats(t_pool).get_waits;
    pid_t w = writer_start(writer), k;
    k = t_fork(waiter, (void *)2L);
    await_sleepers(base, 1);
    t_kill(w);
    expect_code(k, W_ENOENT);
    ck_assert_int_ge(mempool_reap(t_pool), 0);  /* a killed worker's slot */
    t_assert_healthy(t_pool);
}
END_TEST

static int kept_waiter(void *arg)
{
    setenv("MEMPOOL_FAILPOINT", arg, 1);
    return waiter((void *)0L);
}

/* A waiter killed or stopped just after registering with its keeper:
 * the object is published and got by another waiter all the same. */
static void kept_case(const char *spec, bool stop)
{
    pid_t w = writer_start(writer), k;
    mempool_view v;
    int st;
    k = t_fork(kept_waiter, (void *)spec);
    if (stop) {
        t_await_stopped(k, spec);
    } else {
        st = t_wait(k, T_WAIT_S);
        ck_assert_msg(st == 128 + SIGKILL, "%s: waiter ended with %d", spec,
                      st);
    }
    writer_say('p');
    ASSERT_RC(mempool_get_wait(t_pool, refs[0], &v, WAIT_MS), 0);
    ck_assert(t_check_fill(v.data, 64, 7));
    ASSERT_RC(mempool_release(t_pool, &v), 0);
    if (stop) {
        kill(k, SIGCONT);
        expect_code(k, W_GOT);
    }
    writer_quit(w);
}

START_TEST(test_kept_kill)
{
    kept_case("keep.kept=kill@1", false);
}
END_TEST

START_TEST(test_kept_stop)
{
    kept_case("keep.kept=stop@1", true);
}
END_TEST
#endif

int main(void)
{
    const struct t_case cases[] = {
        { "keeper", 120, true, {
              test_killed, test_many, test_thread_exit, test_stopped,
              test_forked } },
        { "keeper_planted", 120, false, { test_planted } },
#ifdef MEMPOOL_FAILPOINTS
        { "keeper_failpoints", 120, true, {
              test_no_keeper, test_kept_kill, test_kept_stop } },
#endif
        { .name = NULL }
    };
    return t_main("wait_keeper", cases);
}
