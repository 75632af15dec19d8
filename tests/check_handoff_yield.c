/* SPDX-License-Identifier: MIT */
/*
 * check_handoff_yield.c - the yield to a peer on our own CPU, the third
 * way of mempool__spin() (src/handoff/spin.h: YIELD):
 *
 *   decide    with a lead, a peer awake on our CPU (or asleep there, just
 *             woken by our send) gets the CPU: the word is looked at
 *             after each yield, true as soon as it moves; a silent peer
 *             costs at most MP_SPIN_YIELDS yields and counts as
 *             unanswered; a peer whose run word says asleep (not woken
 *             by us) or that falls asleep meanwhile is not yielded to.
 *             Each case runs in a thread of its own (the yield back-off
 *             after a late yield is per thread: a loaded machine must not
 *             change the next case).
 *   one CPU   two processes pinned to one CPU hand one reference back and
 *             forth - the yielding regime, where nobody sleeps and no
 *             send makes a FUTEX_WAKE - while the echo side is stopped and
 *             continued now and then: every trip completes, in order, the
 *             object is freed once at the end.
 *   killed    the echo side SIGKILLed mid-run: the asker's receive ends
 *             (item or timeout, never a hang), and after the reap the one
 *             reference is either back with us or dropped with the dead.
 *   point     (failpoint builds) the echo stopped, or killed, at
 *             spin.yield - about to give us the CPU: continued, the trips
 *             go on; killed, the reference is where it was sent.
 *
 * White-box (calls mempool__spin, writes a run word), so it links the
 * library's objects. No timing is asserted.
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers_base.h"
#include <mempool/mempool.h>
#include "internal.h"
#include "spin.h"
#define T_WB_TAG "yield"
#include "t_wbpool.h"

static const mempool_put_options rco = { .flags = MEMPOOL_PUT_REFCOUNTED };

/* Pin the caller to the first CPU it may run on. */
static uint64_t pin_first(void)
{
    cpu_set_t all, one;
    if (sched_getaffinity(0, sizeof all, &all))
        return 0;
    for (int c = 0; c < CPU_SETSIZE; c++) {
        if (!CPU_ISSET(c, &all))
            continue;
        CPU_ZERO(&one);
        CPU_SET(c, &one);
        if (sched_setaffinity(0, sizeof one, &one))
            return 0;
        return (uint64_t)c + 1;
    }
    return 0;
}

/* ---- decide --------------------------------------------------------------- */

/* One spin decision in a fresh thread: the peer's run word @p run, our
 * lead's send woke someone if @p woke; the word moves at look @p move_at
 * (0 never), the run word becomes @p then at look @p then_at (0 never). */
struct dcase {
    uint64_t run, then;
    bool woke;
    unsigned move_at, then_at;
    /* out */
    _Atomic uint64_t word;
    _Atomic unsigned looks;
    bool moved;
    uint32_t fails;
};

static struct dcase *cur;

static uint64_t look(const void *arg)
{
    struct dcase *d = (struct dcase *)(uintptr_t)arg;
    unsigned n = atomic_fetch_add(&d->looks, 1) + 1;
    if (d->move_at && n == d->move_at)
        atomic_fetch_add(&d->word, 1);
    if (d->then_at && n == d->then_at)
        atomic_store(&P->hand->run[MP_WORKERS - 1], d->then);
    return atomic_load(&d->word);
}

static void *decide(void *arg)
{
    struct dcase *d = arg;
    mp_spin st = { MP_SPIN_KEY_CHAN(1), 0 };
    atomic_store(&P->hand->run[MP_WORKERS - 1], d->run);
    mempool__lead(MP_SPIN_KEY_CHAN(2), d->woke);
    d->moved = mempool__spin(P, MP_WORKERS, NULL, &st, look, d, UINT64_MAX);
    d->fails = atomic_load(&st.fails);
    return NULL;
}

static struct dcase *run_case(struct dcase *d)
{
    pthread_t t;
    cur = d;
    ck_assert_int_eq(pthread_create(&t, NULL, decide, d), 0);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    atomic_store(&P->hand->run[MP_WORKERS - 1], 0);
    return d;
}

START_TEST(test_decide)
{
    uint64_t me = pin_first();   /* threads inherit it: "our CPU" */
    struct dcase *d;

    ck_assert_uint_gt(me, 0);
    ck_assert_uint_ne((uint64_t)P->slot + 1, MP_WORKERS);
    /* awake on our CPU: yields, and sees the word move after one */
    d = run_case(&(struct dcase){ .run = me, .move_at = 2 });
    ck_assert(d->moved);
    ck_assert_uint_eq(atomic_load(&d->looks), 2);
    ck_assert_uint_eq(d->fails, 0);
    /* asleep on our CPU, woken by our send: yields to it */
    d = run_case(&(struct dcase){ .run = me | MP_RUN_ASLEEP, .woke = true,
                                  .move_at = 2 });
    ck_assert(d->moved);
    ck_assert_uint_eq(atomic_load(&d->looks), 2);
    /* asleep on our CPU, our send woke nobody: it will not answer */
    d = run_case(&(struct dcase){ .run = me | MP_RUN_ASLEEP, .move_at = 1 });
    ck_assert(!d->moved);
    ck_assert_uint_eq(atomic_load(&d->looks), 0);
    ck_assert_uint_eq(d->fails, 0);
    /* silent: at most MP_SPIN_YIELDS yields, one look after each, then
     * unanswered */
    d = run_case(&(struct dcase){ .run = me });
    ck_assert(!d->moved);
    ck_assert_uint_ge(atomic_load(&d->looks), 2);
    ck_assert_uint_le(atomic_load(&d->looks), 1 + MP_SPIN_YIELDS);
    ck_assert_uint_eq(d->fails, 1);
    /* it falls asleep after our first yield (without answering): no more */
    d = run_case(&(struct dcase){ .run = me, .then = me | MP_RUN_ASLEEP,
                                  .then_at = 2 });
    ck_assert(!d->moved);
    ck_assert_uint_eq(atomic_load(&d->looks), 2);
    /* it went to another CPU meanwhile: no more yields (spinning is the
     * RUN rule's, at the next decision) */
    d = run_case(&(struct dcase){ .run = me, .then = me + 1, .then_at = 2 });
    ck_assert(!d->moved);
    ck_assert_uint_eq(atomic_load(&d->looks), 2);
}
END_TEST

/* ---- one CPU ---------------------------------------------------------- */

#define TRIPS 3000

/* The echo side: receive on "ping", check the object, send it back;
 * @p fp arms a failpoint first (NULL: none). */
static int echo(const char *fp)
{
    mempool *q;
    mempool_chan *in, *out;
    if (fp)
        setenv("MEMPOOL_FAILPOINT", fp, 1);
    if (!(q = t_wb_attach()) || mempool_chan_open(q, "ping", 0, 0, &in) ||
        mempool_chan_open(q, "pong", 0, 0, &out))
        return 2;
    pin_first();
    return t_wb_echo(q, in, out, TRIPS);
}

struct pair {
    mempool_chan *ping, *pong;
    mempool_dref r;
    pid_t k;
};

static void pair_start(struct pair *pp, const char *fp)
{
    int v = 42;
    ck_assert_int_eq(mempool_chan_open(P, "ping", 4, MEMPOOL_CHAN_CREATE,
                                       &pp->ping), 0);
    ck_assert_int_eq(mempool_chan_open(P, "pong", 4, MEMPOOL_CHAN_CREATE,
                                       &pp->pong), 0);
    ck_assert_int_eq(mempool_put_ex(P, &v, sizeof v, &rco, &pp->r), 0);
    pin_first();
    if ((pp->k = fork()) == 0)
        _exit(echo(fp));
    ck_assert_int_gt(pp->k, 0);
}

/* Receive (no wait) until @p c is empty: how many items it held. */
static int drain(mempool_chan *c)
{
    mempool_dref back;
    int n = 0;
    while (mempool_chan_recv(c, &back, 0) == 0)
        n++;
    return n;
}

/* @p r has one reference left, ours: drop it. */
static void unref_last(mempool_dref r)
{
    mempool_info in;
    ck_assert_int_eq(mempool_info_get(P, r, &in), 0);
    ck_assert_uint_eq(in.refs, 1);
    ASSERT_RC(mempool_unref(P, r), 0);
}

/* The echo is dead (reaped by waitpid): reap its slot, take back what
 * the channels hold; the one reference is then ours (1) or was dropped
 * with the dead echo (0): either way, freed exactly once. */
static void pair_settle_dead(struct pair *pp)
{
    mempool_info in;
    int got;
    ck_assert_int_ge(mempool_reap(P), 0);   /* unless a wait reaped it */
    got = drain(pp->ping) + drain(pp->pong);
    ck_assert_int_le(got, 1);
    if (got)
        unref_last(pp->r);
    ck_assert_int_eq(mempool_info_get(P, pp->r, &in), -ENOENT);
    ck_assert_int_eq(mempool_check(P, NULL, 0), 0);
}

static void pair_end(struct pair *pp)
{
    mempool_chan_close(pp->ping);
    mempool_chan_close(pp->pong);
}

START_TEST(test_one_cpu_stopped)
{
    struct pair pp;
    mempool_dref back;
    mempool_info in;
    int st;

    pair_start(&pp, NULL);
    for (int i = 0; i < TRIPS; i++) {
        ASSERT_RC(mempool_chan_send(pp.ping, pp.r, 60000), 0);
        if (i % 500 == 250) {
            /* stopped while we may yield to it (its run word says awake
             * on our CPU): our yields come back, we sleep, it answers */
            ck_assert_int_eq(kill(pp.k, SIGSTOP), 0);
            t_sleep_ms(20);
            ck_assert_int_eq(kill(pp.k, SIGCONT), 0);
        }
        ASSERT_RC(mempool_chan_recv(pp.pong, &back, 60000), 0);
        ck_assert(back.off == pp.r.off && back.gen == pp.r.gen);
    }
    ck_assert_int_eq(waitpid(pp.k, &st, 0), pp.k);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    unref_last(pp.r);
    ck_assert_int_eq(mempool_info_get(P, pp.r, &in), -ENOENT);
    pair_end(&pp);
}
END_TEST

START_TEST(test_one_cpu_killed)
{
    struct pair pp;
    mempool_dref back;
    int st, rc = 0, at = 100 + 37 * _i;

    pair_start(&pp, NULL);
    for (int i = 0; i < TRIPS && rc == 0; i++) {
        ASSERT_RC(mempool_chan_send(pp.ping, pp.r, 60000), 0);
        if (i == at)
            ck_assert_int_eq(kill(pp.k, SIGKILL), 0);
        rc = mempool_chan_recv(pp.pong, &back, i == at ? 2000 : 60000);
        ck_assert(rc == 0 || (i == at && rc == -ETIMEDOUT));
        if (i == at) {
            ck_assert_int_eq(waitpid(pp.k, &st, 0), pp.k);
            ck_assert(WIFSIGNALED(st));
            if (rc == 0)   /* its answer was out before it died */
                ck_assert_int_eq(mempool_chan_send(pp.ping, back, 0), 0);
            break;
        }
    }
    pair_settle_dead(&pp);
    pair_end(&pp);
}
END_TEST

/* ---- point ------------------------------------------------------------- */

#ifdef MEMPOOL_FAILPOINTS
/* The echo stops at its first spin.yield: the asker's receive waits
 * (its own yields come back from a stopped peer, it sleeps); continued,
 * the trips go on to the end. */
START_TEST(test_point_stop)
{
    struct pair pp;
    mempool_dref back;
    int st;
    bool seen = false;

    pair_start(&pp, "spin.yield=stop@1");
    for (int i = 0; i < TRIPS; i++) {
        int rc;
        ASSERT_RC(mempool_chan_send(pp.ping, pp.r, 60000), 0);
        while ((rc = mempool_chan_recv(pp.pong, &back, 100)) == -ETIMEDOUT) {
            /* 100 ms without an answer: stopped, or only off the CPU
             * on a loaded machine (then wait on) */
            pid_t w = waitpid(pp.k, &st, WUNTRACED | WNOHANG);
            if (w == 0)
                continue;
            ck_assert_int_eq(w, pp.k);
            ck_assert(WIFSTOPPED(st));
            seen = true;
            ck_assert_int_eq(kill(pp.k, SIGCONT), 0);
        }
        ASSERT_RC(rc, 0);
        ck_assert(back.off == pp.r.off && back.gen == pp.r.gen);
    }
    ck_assert_int_eq(waitpid(pp.k, &st, 0), pp.k);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    unref_last(pp.r);
    pair_end(&pp);
    /* A stop that never came means the pair never yielded: not an
     * error (two CPUs' worth of scheduling may keep them apart), but
     * say so. */
    if (!seen)
        fprintf(stderr, "check_handoff_yield: spin.yield never reached\n");
}
END_TEST

/* Has child @p k ended? (Not reaped: its waitpid() comes later.) */
static bool ended(pid_t k)
{
    siginfo_t si;
    memset(&si, 0, sizeof si);
    return waitid(P_PID, (id_t)k, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
           si.si_pid == k;
}

/* The echo dies at its first spin.yield (having sent its answer): we
 * run out of time on the next one; the reference is in "ping". */
START_TEST(test_point_kill)
{
    struct pair pp;
    mempool_dref back;
    int st, rc = 0;

    pair_start(&pp, "spin.yield=kill@1");
    for (int i = 0; i < TRIPS && rc == 0; i++) {
        ASSERT_RC(mempool_chan_send(pp.ping, pp.r, 60000), 0);
        /* a second without an answer: dead, or only off the CPU on a
         * loaded machine (then wait on) */
        while ((rc = mempool_chan_recv(pp.pong, &back, 1000)) == -ETIMEDOUT
               && !ended(pp.k))
            ;
        ck_assert(rc == 0 || rc == -ETIMEDOUT);
    }
    ck_assert_int_eq(waitpid(pp.k, &st, 0), pp.k);
    if (rc == 0) {
        /* it never yielded: finished every trip */
        ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        fprintf(stderr, "check_handoff_yield: spin.yield never reached\n");
        ASSERT_RC(mempool_unref(P, pp.r), 0);
    } else {
        ck_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
        pair_settle_dead(&pp);
    }
    pair_end(&pp);
}
END_TEST
#endif

int main(void)
{
    Suite *s = suite_create("handoff_yield");
    TCase *tc = tcase_create("yield");
    SRunner *sr;
    int nf;
    tcase_add_checked_fixture(tc, t_wb_setup, t_wb_teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_decide);
    tcase_add_test(tc, test_one_cpu_stopped);
    tcase_add_loop_test(tc, test_one_cpu_killed, 0, 3);
#ifdef MEMPOOL_FAILPOINTS
    tcase_add_test(tc, test_point_stop);
    tcase_add_test(tc, test_point_kill);
#endif
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nf ? 1 : 0;
}
