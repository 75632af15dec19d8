/* SPDX-License-Identifier: MIT */
/*
 * check_handoff_stream.c - a stream receiver's short spin (src/handoff/
 * spin.h: STREAM), the receive that has no lead:
 *
 *   decide    mempool__spin_stream() without a lead does not look at the
 *             word when the last sender is unknown or asleep (nor when
 *             another receiver holds the side's gate); it watches the
 *             word while that sender says awake on another CPU, gives up
 *             at its bound (halving the next one; a late answer,
 *             mempool__spin_answered(), forgets that), returns as soon as
 *             the word moves, and publishes our own run word. While that
 *             sender says awake on OUR CPU it naps instead (NAP): a look
 *             before and one after, true if the word moved; after an
 *             unanswered nap only every 16th such decision naps. With a
 *             lead it is mempool__spin() (the lead's memory, not the
 *             stream's, learns from it).
 *   stream    a producer process streams numbered plain objects to two
 *             receiver threads sharing one channel handle (its gate and
 *             spin memory), and is stopped and continued now and then
 *             (its run word says awake meanwhile): every object arrives
 *             exactly once, each thread's in order, and the pool ends
 *             with no object left (the TSan lane runs this file).
 *   point     (failpoint builds) a receiver stopped, or killed, at
 *             spin.stream - holding the side's gate, about to watch the
 *             ring - or at spin.nap (its sender on its CPU): another
 *             receiver goes on receiving (the gate expires by itself; a
 *             nap holds nothing), every item sent is received exactly
 *             once, and the pool is healthy after the reap.
 *
 * White-box (calls mempool__spin_stream and writes run words), so it
 * links the library's objects. No timing is asserted.
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
#include "chan.h"
#include "spin.h"
#define T_WB_TAG "stream"
#include "t_wbpool.h"
#include "t_looker.h"

/* t_wbpool.h's ping-pong echo is not used here */
static int (*const unused_echo)(mempool *, mempool_chan *, mempool_chan *,
                                int) __attribute__((unused)) = t_wb_echo;

/* ---- decide --------------------------------------------------------------- */


/* One stream decision (no lead) with the peer's run word @p run. */
static bool spin_free(_Atomic uint64_t *rw, uint64_t run, uint64_t peer1,
                      _Atomic uint64_t *gate, mp_spin *st, mp_spin *sst,
                      struct looker *l)
{
    atomic_store(rw, run);
    atomic_store(&l->looks, 0);
    return mempool__spin_stream(P, peer1, gate, st, sst, look, l,
                                UINT64_MAX);
}

START_TEST(test_decide)
{
    const uint64_t peer1 = MP_WORKERS;     /* a slot nobody uses here */
    _Atomic uint64_t *run = &P->hand->run[peer1 - 1], gate;
    uint64_t me = pin_to(0), other = me + 1;
    struct looker l = { 0, 0, 0 };
    mp_spin st = { MP_SPIN_KEY_CHAN(1), 0 }, sst = { MP_SPIN_KEY_CHAN(1), 0 };
    uint32_t f;

    ck_assert_uint_ne(peer1, (uint64_t)P->slot + 1);
    /* no stream memory (a sender's wait), the peer unknown or out of
     * range, or its word unknown, asleep, on our CPU: no look at all */
    ck_assert(!spin_free(run, other, peer1, NULL, &st, NULL, &l));
    ck_assert(!spin_free(run, other, 0, NULL, &st, &sst, &l));
    ck_assert(!spin_free(run, other, MP_WORKERS + 1, NULL, &st, &sst, &l));
    const uint64_t never[] = { 0, other | MP_RUN_ASLEEP,
                               me | MP_RUN_ASLEEP };
    for (size_t i = 0; i < sizeof never / sizeof never[0]; i++)
        ck_assert(!spin_free(run, never[i], peer1, NULL, &st, &sst, &l));
    ck_assert_uint_eq(atomic_load(&l.looks), 0);
    ck_assert_uint_eq(atomic_load(&sst.fails), 0);
    /* deciding published our own run word: awake, here */
    ck_assert_uint_eq(atomic_load(&P->hand->run[P->slot]), me);

    /* awake on another CPU, silent: spins to its bound, then halves it;
     * the last check finding the item (answered) forgets that */
    ck_assert(!spin_free(run, other, peer1, NULL, &st, &sst, &l));
    ck_assert_uint_gt(atomic_load(&l.looks), 1);
    unanswered(&sst, 0);
    f = atomic_load(&sst.fails);
    ck_assert(!spin_free(run, other, peer1, NULL, &st, &sst, &l));
    unanswered(&sst, f);
    mempool__spin_answered(&sst);
    ck_assert_uint_eq(atomic_load(&sst.fails), 0);
    ck_assert_uint_eq(atomic_load(&st.fails), 0);

    /* the word moves while it spins: true, at once */
    l.move_at = 5;
    ck_assert(spin_free(run, other, peer1, NULL, &st, &sst, &l));
    ck_assert_uint_eq(atomic_load(&l.looks), 5);
    ck_assert_uint_eq(atomic_load(&sst.fails), 0);

    /* another receiver spins (its gate runs): not us; an expired gate
     * (its spinner gone) we take and give back */
    atomic_store(&gate, UINT64_MAX);
    ck_assert(!spin_free(run, other, peer1, &gate, &st, &sst, &l));
    ck_assert_uint_eq(atomic_load(&l.looks), 0);
    atomic_store(&gate, 1);
    l.move_at = 3;
    ck_assert(spin_free(run, other, peer1, &gate, &st, &sst, &l));
    ck_assert_uint_eq(atomic_load(&l.looks), 3);
    ck_assert_uint_eq(atomic_load(&gate), 0);

    /* awake on our CPU: a nap (spin.h: NAP), one look before and one
     * after, true if the word moved meanwhile; after an unanswered one
     * only every 16th such decision naps; the stream spin's memory and
     * the gate are not touched */
    atomic_store(&gate, UINT64_MAX);
    l.move_at = 2;
    ck_assert(spin_free(run, me, peer1, &gate, &st, &sst, &l));
    ck_assert_uint_eq(atomic_load(&l.looks), 2);
    l.move_at = 0;
    ck_assert(!spin_free(run, me, peer1, &gate, &st, &sst, &l));
    ck_assert_uint_eq(atomic_load(&l.looks), 2);
    for (int i = 1; i < 16; i++) {
        ck_assert(!spin_free(run, me, peer1, &gate, &st, &sst, &l));
        ck_assert_uint_eq(atomic_load(&l.looks), 0);
    }
    l.move_at = 2;
    ck_assert(spin_free(run, me, peer1, &gate, &st, &sst, &l));
    ck_assert_uint_eq(atomic_load(&l.looks), 2);
    ck_assert_uint_eq(atomic_load(&gate), UINT64_MAX);
    ck_assert_uint_eq(atomic_load(&sst.fails), 0);
    ck_assert_uint_eq(atomic_load(&st.fails), 0);

    /* with a lead elsewhere it is the lead's spin: its memory learns */
    l.move_at = 0;
    mempool__lead(MP_SPIN_KEY_CHAN(2), false);
    ck_assert(!spin_free(run, other, peer1, NULL, &st, &sst, &l));
    ck_assert_uint_gt(atomic_load(&l.looks), 1);
    unanswered(&st, 0);
    ck_assert_uint_eq(atomic_load(&sst.fails), 0);
    atomic_store(run, 0);
}
END_TEST

/* ---- stream --------------------------------------------------------------- */

#define NOBJ 20000

/* The producer: @p n plain objects holding 0, 1, ... on "s", stopping
 * itself now and then when @p stops (a stopped sender still says awake). */
static int producer(int n, bool stops)
{
    mempool *q = t_wb_attach();
    mempool_chan *c;
    if (!q || mempool_chan_open(q, "s", 0, 0, &c))
        return 2;
    pin_to(1);
    for (int i = 0; i < n; i++) {
        mempool_dref r;
        if (mempool_put(q, &i, sizeof i, &r) ||
            mempool_chan_send(c, r, 60000))
            return 3;
        if (stops && i % 4000 == 2000)
            raise(SIGSTOP);
    }
    mempool_chan_close(c);
    mempool_close(q);
    return 0;
}

struct rx {
    mempool_chan *c;
    int n, got, last, bad;
    unsigned char *seen;          /* shared by the threads: each index once */
};

static void *receiver(void *arg)
{
    struct rx *x = arg;
    x->last = -1;
    for (int i = 0; i < x->n; i++) {
        mempool_dref r;
        mempool_view v;
        int val;
        if (mempool_chan_recv(x->c, &r, 60000) || mempool_get(P, r, &v)) {
            x->bad++;
            break;
        }
        memcpy(&val, v.data, sizeof val);
        mempool_release(P, &v);
        if (mempool_delete(P, r) || val < 0 || val >= NOBJ || val <= x->last ||
            __atomic_fetch_add(&x->seen[val], 1, __ATOMIC_RELAXED))
            x->bad++;
        x->last = val;
        x->got++;
    }
    return NULL;
}

/* Only a receiver of direct items spins as a stream's (spin.h, STREAM): the
 * handle remembers whether its last item came in a box (chan_queue.c,
 * note_kind) - a refcounted one - or direct - a plain one. */
START_TEST(test_kind)
{
    static const mempool_put_options rco = { .flags = MEMPOOL_PUT_REFCOUNTED };
    mempool_chan *c;
    char b[64] = { 1 };

    ck_assert_int_eq(mempool_chan_open(P, "k", 8, MEMPOOL_CHAN_CREATE, &c),
                     0);
    ck_assert(!atomic_load(&c->boxed));
    for (int i = 0; i < 5; i++) {
        bool boxed = i & 1;
        mempool_dref r, got;
        ck_assert_int_eq(mempool_put_ex(P, b, sizeof b, boxed ? &rco : NULL,
                                        &r), 0);
        ck_assert_int_eq(mempool_chan_send(c, r, 0), 0);
        ck_assert_int_eq(mempool_chan_recv(c, &got, 0), 0);
        ck_assert(mempool_dref_equal(got, r));
        ck_assert(atomic_load(&c->boxed) == boxed);
        ck_assert_int_eq(boxed ? mempool_unref(P, got)
                               : mempool_delete(P, got), 0);
    }
    ck_assert_int_eq(mempool_chan_close(c), 0);
    ck_assert_int_eq(mempool_chan_destroy(P, "k"), 0);
}
END_TEST

START_TEST(test_stream)
{
    mempool_chan *c;
    struct mempool_stats s0, s1;
    struct rx x[2];
    pthread_t t[2];
    unsigned char *seen = calloc(NOBJ, 1);
    int st;
    pid_t k;

    ck_assert_ptr_nonnull(seen);
    ck_assert_int_eq(mempool_chan_open(P, "s", 64, MEMPOOL_CHAN_CREATE, &c),
                     0);
    ck_assert_int_eq(mempool_stats_get(P, &s0), 0);
    if ((k = fork()) == 0)
        _exit(producer(NOBJ, true));
    ck_assert_int_gt(k, 0);
    pin_to(0);
    for (int i = 0; i < 2; i++) {
        x[i] = (struct rx){ c, NOBJ / 2, 0, -1, 0, seen };
        ck_assert_int_eq(pthread_create(&t[i], NULL, receiver, &x[i]), 0);
    }
    /* continue the producer whenever it stopped itself */
    for (;;) {
        pid_t w = waitpid(k, &st, WUNTRACED);
        ck_assert_int_eq(w, k);
        if (!WIFSTOPPED(st))
            break;
        t_sleep_ms(5);              /* the receivers spin, then sleep */
        ck_assert_int_eq(kill(k, SIGCONT), 0);
    }
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(pthread_join(t[i], NULL), 0);
        ck_assert_int_eq(x[i].bad, 0);
        ck_assert_int_eq(x[i].got, NOBJ / 2);
    }
    for (int i = 0; i < NOBJ; i++)
        ck_assert_uint_eq(seen[i], 1);
    free(seen);
    ck_assert_int_eq(mempool_chan_close(c), 0);
    ck_assert_int_eq(mempool_chan_destroy(P, "s"), 0);
    ck_assert_int_ge(mempool_reap(P), 0);
    ck_assert_int_eq(mempool_stats_get(P, &s1), 0);
    ck_assert_uint_eq(s1.objects, s0.objects);
}
END_TEST

/* ---- point ---------------------------------------------------------------- */

#ifdef MEMPOOL_FAILPOINTS
#define PN 400

/* A receiver armed with @p fp on its own CPU: receives until it has
 * PN items or the channel goes, writing each value it got to @p out. */
static int armed(const char *fp, int out, int cpu)
{
    mempool *q;
    mempool_chan *c;
    setenv("MEMPOOL_FAILPOINT", fp, 1);
    if (!(q = t_wb_attach()) || mempool_chan_open(q, "s", 0, 0, &c))
        return 2;
    pin_to(cpu);
    for (int i = 0; i < PN; i++) {
        mempool_dref r;
        mempool_view v;
        int val, rc = mempool_chan_recv(c, &r, 60000);
        if (rc == -EPIPE)
            break;
        if (rc || mempool_get(q, r, &v))
            return 3;
        memcpy(&val, v.data, sizeof val);
        mempool_release(q, &v);
        if (mempool_delete(q, r) || write(out, &val, sizeof val) != sizeof val)
            return 4;
    }
    return 0;
}

/* Has child @p k stopped or ended? Ended ones are left to reap. */
static int child_state(pid_t k)
{
    siginfo_t si;
    memset(&si, 0, sizeof si);
    if (waitid(P_PID, (id_t)k, &si,
               WEXITED | WSTOPPED | WNOHANG | WNOWAIT) != 0 || si.si_pid != k)
        return 0;
    return si.si_code == CLD_STOPPED ? 1 : 2;
}

/* Take what we receive ourselves (no wait) into @p seen. */
static int drain_into(mempool_chan *c, unsigned char *seen)
{
    mempool_dref r;
    mempool_view v;
    int n = 0, val;
    while (mempool_chan_recv(c, &r, 0) == 0) {
        ck_assert_int_eq(mempool_get(P, r, &v), 0);
        memcpy(&val, v.data, sizeof val);
        mempool_release(P, &v);
        ck_assert_int_eq(mempool_delete(P, r), 0);
        ck_assert(val >= 0 && val < PN);
        ck_assert_uint_eq(seen[val]++, 0);
        n++;
    }
    return n;
}

/* Child @p k, sent every item, takes the rest and ends, or reaches its
 * point on the way (after our last look in the sending loop, e.g. while
 * waiting for the last item): wait for one of them (1 stopped, 2 ended). */
static int child_settle(pid_t k)
{
    double end = t_now_s() + 60.0;  /* helpers.h's T_WAIT_S */
    int state;
    while ((state = child_state(k)) == 0) {
        ck_assert_msg(t_now_s() < end, "the receiver neither ended nor "
                      "stopped with every item sent");
        t_sleep_ms(1);
    }
    return state;
}

/* The armed receiver on another CPU (@p cpu 1; 0: on ours), we the
 * producer (and, once it is stopped or dead, the other receiver): one
 * item at a time, so that it often finds the ring empty while our run
 * word says awake elsewhere (on its CPU). */
static void point_case(const char *fp, bool kill_case, int cpu)
{
    mempool_chan *c;
    unsigned char seen[PN] = { 0 };
    int fds[2], st, sent = 0, got = 0, val, state = 0;
    char why[256];
    pid_t k;

    ck_assert_int_eq(mempool_chan_open(P, "s", 64, MEMPOOL_CHAN_CREATE, &c),
                     0);
    ck_assert_int_eq(pipe(fds), 0);
    if ((k = fork()) == 0) {
        close(fds[0]);
        _exit(armed(fp, fds[1], cpu));
    }
    close(fds[1]);
    pin_to(0);
    t_sleep_ms(50);                  /* let it fall asleep once */
    while (sent < PN && (state = child_state(k)) == 0) {
        mempool_dref r;
        int rc;
        ck_assert_int_eq(mempool_put(P, &sent, sizeof sent, &r), 0);
        /* a full ring (a slow receiver, e.g. under ASan) that stays full
         * while it stops or dies: look at it again every 100 ms */
        while ((rc = mempool_chan_send(c, r, 100)) == -ETIMEDOUT &&
               (state = child_state(k)) == 0)
            ;
        if (rc) {
            ck_assert_int_eq(rc, -ETIMEDOUT);
            ck_assert_int_eq(mempool_delete(P, r), 0);
            break;
        }
        sent++;
        for (volatile int spin = 0; spin < 20000; spin++)
            ;                       /* awake, not sending */
    }
    if (state == 0)
        state = child_settle(k);
    if (state == 1) {
        /* stopped holding the gate: we receive past it */
        got += drain_into(c, seen);
        for (int i = sent; i < PN; i++) {
            mempool_dref r;
            ck_assert_int_eq(mempool_put(P, &i, sizeof i, &r), 0);
            ASSERT_RC(mempool_chan_send(c, r, 60000), 0);
            mempool_dref r2;
            mempool_view v;
            ASSERT_RC(mempool_chan_recv(c, &r2, 60000), 0);
            ck_assert_int_eq(mempool_get(P, r2, &v), 0);
            memcpy(&val, v.data, sizeof val);
            mempool_release(P, &v);
            ck_assert_int_eq(mempool_delete(P, r2), 0);
            ck_assert_uint_eq(seen[val]++, 0);
            got++;
        }
        sent = PN;
        ck_assert_int_eq(kill(k, SIGCONT), 0);
    }
    /* the channel goes: a receiver continued returns -EPIPE and exits */
    got += drain_into(c, seen);
    ck_assert_int_eq(mempool_chan_destroy(P, "s"), 0);
    ck_assert_int_eq(waitpid(k, &st, 0), k);
    if (kill_case && WIFSIGNALED(st))
        ck_assert_int_eq(WTERMSIG(st), SIGKILL);
    else
        ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    if (state == 2 && WIFEXITED(st))
        fprintf(stderr, "check_handoff_stream: %s never reached\n", fp);
    while (read(fds[0], &val, sizeof val) == (ssize_t)sizeof val) {
        ck_assert(val >= 0 && val < PN);
        ck_assert_uint_eq(seen[val]++, 0);
        got++;
    }
    close(fds[0]);
    ck_assert_int_eq(got, sent);
    for (int i = 0; i < sent; i++)
        ck_assert_uint_eq(seen[i], 1);
    ck_assert_int_ge(mempool_reap(P), 0);
    ck_assert_msg(mempool_check(P, why, sizeof why) == 0, "%s", why);
    mempool_chan_close(c);
}

START_TEST(test_point_stop)
{
    point_case("spin.stream=stop@1", false, 1);
}
END_TEST

START_TEST(test_point_kill)
{
    point_case("spin.stream=kill@1", true, 1);
}
END_TEST

/* A receiver stopped, or killed, at spin.nap - its sender awake on its
 * CPU, about to nap, counted nowhere: the other receiver (we) goes on,
 * every item sent is received exactly once, the pool is healthy. */
START_TEST(test_nap_stop)
{
    point_case("spin.nap=stop@1", false, 0);
}
END_TEST

START_TEST(test_nap_kill)
{
    point_case("spin.nap=kill@1", true, 0);
}
END_TEST
#endif

int main(void)
{
    Suite *s = suite_create("handoff_stream");
    TCase *tc = tcase_create("stream");
    SRunner *sr;
    int nf;
    tcase_add_checked_fixture(tc, t_wb_setup, t_wb_teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_decide);
    tcase_add_test(tc, test_kind);
    tcase_add_test(tc, test_stream);
#ifdef MEMPOOL_FAILPOINTS
    tcase_add_test(tc, test_point_stop);
    tcase_add_test(tc, test_point_kill);
    tcase_add_test(tc, test_nap_stop);
    tcase_add_test(tc, test_nap_kill);
#endif
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nf ? 1 : 0;
}
