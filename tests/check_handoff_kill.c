/* SPDX-License-Identifier: MIT */
/*
 * check_handoff_kill.c - kills (and stops) at the handoff failpoints that
 * check_handoff_crash.c's workload does not exercise in full: the broadcast
 * ring's overwrite, and the creation and destruction of a channel.
 *
 *   bcast_kill     a publisher SIGKILLed at every hit of bcast.* (position
 *                  taken but not written; slot overwritten but the
 *                  replaced item's box not yet dropped) while a subscriber
 *                  lags a ring behind. Afterwards, whoever reaped the dead
 *                  publisher (mempool_reap, or the next process to open the
 *                  pool, which takes over its slot): fsck is clean, the
 *                  lagging subscriber skips the dead position after a
 *                  bounded wait, every object of the publisher has exactly
 *                  the references the ring and the subscriber hold (the
 *                  ring holds one per item, never two, never none), the
 *                  subscriber count is exact again, and once drained and
 *                  destroyed nothing is left.
 *   bcast_stop     the publisher stopped (SIGSTOP) holding a position:
 *                  others publish and subscribers read on, within a bounded
 *                  wait; continued, it finishes and nothing leaks.
 *   create_kill    a creator killed mid-create (chan.creating), repaired by
 *                  the reaper, by the next opener on its slot, or by the
 *                  next directory locker: the half-made header is undone
 *                  (the name is free, its ring range too), fsck is clean.
 *   destroy_kill   a destroyer killed before it woke the waiters
 *                  (chan.destroying) and while closing the ring
 *                  (chan.closing), with items in the channel and a process
 *                  blocked in send (queue) or recv (broadcast): the same
 *                  three repairers finish the destroy, the blocked process
 *                  wakes with -EPIPE and keeps its reference, the items'
 *                  references are dropped, fsck is clean.
 *
 * Needs a -DMEMPOOL_FAILPOINTS=ON build. T_HK_MAXN caps the kill loop's N.
 */
#include "helpers.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

static const mempool_put_options rco = { 0, 0, MEMPOOL_PUT_REFCOUNTED };
static char fp_spec[120];
static int rep_fd = -1, go_fd = -1, go_wfd = -1;

static const struct fp_def {
    const char *name, *what;
} fp_all[] = {
#define MP_FAILPOINT(id, name, what) { name, what },
#include "../src/util/failpoints.def"
#undef MP_FAILPOINT
};
#define NALL ((int)(sizeof fp_all / sizeof fp_all[0]))

static bool same(mempool_dref a, mempool_dref b)
{
    return a.off == b.off && a.gen == b.gen;
}

static int max_n(void)
{
    const char *v = getenv("T_HK_MAXN");
    int n = v ? atoi(v) : 0;
    return n > 0 ? n : 30;
}

/* In a child: open the pool with the failpoint spec set, report our
 * worker id. */
static mempool *child_open(void)
{
    mempool *p;
    setenv("MEMPOOL_FAILPOINT", fp_spec, 1);
    T_CHILD_EQ(t_attach(t_name, &p), 0);
    T_CHILD_EQ(t_send_u64(rep_fd, (uint64_t)mempool_worker_id(p)), 0);
    return p;
}

/* Repair paths after a kill: 0 mempool_reap(), 1 the next process to open
 * the pool (which takes over the dead one's slot: checked), 2 nobody
 * reaps, the next directory locker (our create of another channel) takes
 * the dead holder's lock over. */
enum { BY_REAP, BY_OPENER, BY_LOCKER, NPATH };
static const char *const path_names[] = { "reaper", "next opener",
                                          "next locker" };

static int opener(void *arg)
{
    mempool *p;
    (void)arg;
    T_CHILD_EQ(t_attach(t_name, &p), 0);
    T_CHILD_EQ(t_send_u64(rep_fd, (uint64_t)mempool_worker_id(p)), 0);
    T_CHILD_EQ(mempool_close(p), 0);
    return 0;
}

static void repair(int path, uint64_t dead_wid)
{
    if (path == BY_REAP) {
        ck_assert_int_ge(mempool_reap(t_pool), 1);
    } else if (path == BY_OPENER) {
        int fds[2];
        uint64_t wid = 0;
        pid_t pid;
        t_pipe(fds);
        rep_fd = fds[1];
        pid = t_fork(opener, NULL);
        close(fds[1]);
        ASSERT_RC(t_recv_u64(fds[0], &wid, T_WAIT_S), 0);
        close(fds[0]);
        t_wait_ok(pid);
        ck_assert_msg(wid == dead_wid, "the opener got worker %" PRIu64
                      ", not the dead one's %" PRIu64, wid, dead_wid);
    } else {
        mempool_chan *c;
        ASSERT_RC(mempool_chan_open(t_pool, "locker", 1, MEMPOOL_CHAN_CREATE,
                                    &c), 0);
        ASSERT_RC(mempool_chan_close(c), 0);
        ASSERT_RC(mempool_chan_destroy(t_pool, "locker"), 0);
    }
}

/* No channel is left, and the whole ring is free again: a channel as
 * large as the ring fits. */
static void ring_all_free(const char *what)
{
    mempool_chan *c;
    uint32_t n = 1024;               /* ring slots of a T_ARENA_BYTES pool */
    int rc = mempool_chan_open(t_pool, "whole-ring", n, MEMPOOL_CHAN_CREATE,
                               &c);
    ck_assert_msg(rc == 0, "%s: a %u-slot channel does not fit (%d): a "
                  "range is still taken", what, n, rc);
    ASSERT_RC(mempool_chan_close(c), 0);
    ASSERT_RC(mempool_chan_destroy(t_pool, "whole-ring"), 0);
}

/* ---------------------------------------------------- broadcast kills */

#define NB 10          /* items a publisher sends into a ring of BCAP */
#define BCAP 4
#define MAXOBJ 32

enum { H_OBJ = 1, H_SENDING, H_SENT, H_DONE };

struct hrec {
    uint32_t op, pad;
    mempool_dref r;
};

struct obj {
    mempool_dref r;
    int sending, sent, got;
};

struct outcome {
    struct obj o[MAXOBJ];
    int n, done;
};

static void put_rec(uint32_t op, mempool_dref r)
{
    struct hrec x = { op, 0, r };
    T_CHILD_EQ(t_send(rep_fd, &x, sizeof(x)), 0);
}

static int publisher(void *arg)
{
    mempool *p = child_open();
    mempool_chan *c;
    uint64_t tag = (uint64_t)getpid() << 20;
    (void)arg;
    T_CHILD_EQ(mempool_chan_open(p, "kb", 0, MEMPOOL_CHAN_BROADCAST, &c), 0);
    for (int k = 0; k < NB; k++) {
        mempool_dref x;
        tag++;
        T_CHILD_EQ(mempool_put_ex(p, &tag, sizeof(tag), &rco, &x), 0);
        put_rec(H_OBJ, x);
        put_rec(H_SENDING, x);
        T_CHILD_EQ(mempool_chan_send(c, x, 0), 0);
        put_rec(H_SENT, x);
    }
    T_CHILD_EQ(mempool_chan_close(c), 0);
    T_CHILD_EQ(mempool_close(p), 0);
    put_rec(H_DONE, (mempool_dref){ 0, 0 });
    return 0;
}

static struct obj *find_obj(struct outcome *o, mempool_dref r)
{
    for (int i = 0; i < o->n; i++)
        if (same(o->o[i].r, r))
            return &o->o[i];
    return NULL;
}

static void read_recs(int fd, struct outcome *o)
{
    struct hrec x;
    while (t_recv(fd, &x, sizeof(x), T_WAIT_S) == 0) {
        struct obj *ob = find_obj(o, x.r);
        if (x.op == H_OBJ) {
            ck_assert_int_lt(o->n, MAXOBJ);
            o->o[o->n++].r = x.r;
        } else if (x.op == H_SENDING) {
            ob->sending = 1;
        } else if (x.op == H_SENT) {
            ob->sent = 1;
            ob->sending = 0;
        } else if (x.op == H_DONE) {
            o->done = 1;
        }
    }
}

/* Drain subscriber @p sub, then check every object's references against
 * what the ring and the subscriber hold; clean everything up. */
static void bverify(mempool_chan **sub, struct outcome *o, uint64_t objects0,
                    const char *what)
{
    char why[256] = "";
    mempool_chan_info in;
    mempool_dref r;
    long extra_sum = 0;
    double t0 = t_now_s();
    int rc;

    rc = mempool_check(t_pool, why, sizeof(why));
    ck_assert_msg(rc == 0, "%s: check: %s", what, why);
    in = t_chan_info(t_pool, "kb", NULL);
    ck_assert_msg(in.subscribers == 1, "%s: %u subscribers, want 1 (ours)",
                  what, in.subscribers);
    /* The lagging subscriber: -EOVERFLOW for what it lost (and for a
     * position the dead publisher took and never wrote, after a bounded
     * wait), then the items still in the ring, each once. */
    while ((rc = mempool_chan_recv(*sub, &r, 200)) != -ETIMEDOUT) {
        struct obj *ob;
        if (rc == -EOVERFLOW)
            continue;
        ck_assert_msg(rc == 0, "%s: recv %d", what, rc);
        ob = find_obj(o, r);
        ck_assert_msg(ob != NULL, "%s: received a stranger", what);
        ck_assert_msg(!ob->got, "%s: received twice", what);
        ck_assert_msg(ob->sent || ob->sending, "%s: received an item never "
                      "sent", what);
        ob->got = 1;
    }
    ck_assert_msg(t_now_s() - t0 < 10.0, "%s: draining took %.2f s", what,
                  t_now_s() - t0);
    /* Exact references: ours (one per item received) + the ring's. */
    in = t_chan_info(t_pool, "kb", NULL);
    for (int i = 0; i < o->n; i++) {
        struct obj *ob = &o->o[i];
        long refs = t_refs(t_pool, ob->r), extra;
        ck_assert_msg(!ob->got || refs >= 1, "%s: object %d freed while "
                      "we hold a reference to it", what, i);
        extra = refs < 0 ? 0 : refs - ob->got;
        ck_assert_msg(extra == 0 || extra == 1, "%s: object %d has %ld "
                      "references beside ours: the ring holds one per item",
                      what, i, extra);
        ck_assert_msg(!extra || ob->sent || ob->sending, "%s: object %d "
                      "(never sent) still has a reference: leaked", what, i);
        extra_sum += extra;
    }
    ck_assert_msg(extra_sum == (long)in.refs && in.refs == in.depth,
                  "%s: objects hold %ld ring references, the ring says %"
                  PRIu64 " (depth %" PRIu64 ")", what, extra_sum, in.refs,
                  in.depth);
    ck_assert_uint_le(in.depth, BCAP);
    /* Clean up: our references, then the ring's (destroy). */
    for (int i = 0; i < o->n; i++)
        if (o->o[i].got)
            ASSERT_RC(mempool_unref(t_pool, o->o[i].r), 0);
    ASSERT_RC(mempool_chan_destroy(t_pool, "kb"), 0);
    ASSERT_RC(mempool_chan_close(*sub), 0);
    for (int i = 0; i < o->n; i++)
        ck_assert_msg(t_refs(t_pool, o->o[i].r) == -1, "%s: object %d "
                      "leaked", what, i);
    ck_assert_uint_eq(t_stats(t_pool).objects, objects0);
    rc = mempool_check(t_pool, why, sizeof(why));
    ck_assert_msg(rc == 0, "%s: check after cleanup: %s", what, why);
    ASSERT_RC(mempool_chan_open(t_pool, "kb", BCAP,
                                MEMPOOL_CHAN_CREATE | MEMPOOL_CHAN_BROADCAST,
                                sub), 0);
}

/* One run of the publisher with fp_spec; true if it was killed. */
static bool bcast_run(mempool_chan **sub, int path, const char *what)
{
    struct outcome o;
    uint64_t objects0 = t_stats(t_pool).objects, wid = 0;
    int fds[2], st;
    pid_t pid;

    memset(&o, 0, sizeof(o));
    t_pipe(fds);
    rep_fd = fds[1];
    pid = t_fork(publisher, NULL);
    close(fds[1]);
    ASSERT_RC(t_recv_u64(fds[0], &wid, T_WAIT_S), 0);
    read_recs(fds[0], &o);
    close(fds[0]);
    st = t_wait(pid, T_WAIT_S);
    ck_assert_msg(st == 0 || st == 128 + SIGKILL, "%s: child ended with %d",
                  what, st);
    ck_assert_msg(st != 0 || o.done, "%s: child exited 0 early", what);
    if (st != 0)
        repair(path, wid);
    else
        mempool_reap(t_pool);
    bverify(sub, &o, objects0, what);
    return st != 0;
}

static bool is_bcast_point(int i)
{
    return strncmp(fp_all[i].name, "bcast.", 6) == 0;
}

START_TEST(test_bcast_kill)
{
    const char *name = fp_all[_i].name;
    mempool_chan *sub;
    int n, killed = 0;

    if (!is_bcast_point(_i))
        return;
    ASSERT_RC(mempool_chan_open(t_pool, "kb", BCAP,
                                MEMPOOL_CHAN_CREATE | MEMPOOL_CHAN_BROADCAST,
                                &sub), 0);
    for (n = 1; n <= max_n(); n++) {
        char what[160];
        int path = n % 2 ? BY_REAP : BY_OPENER;
        snprintf(fp_spec, sizeof fp_spec, "%s@%d", name, n);
        snprintf(what, sizeof what, "%s (%s)", fp_spec, path_names[path]);
        if (!bcast_run(&sub, path, what))
            break;
        killed = n;
    }
    fprintf(stderr, "broadcast failpoint %-15s killed @1..@%d%s\n", name,
            killed, n > max_n() ? "+" : "");
    ck_assert_msg(killed >= NB, "failpoint %s (%s) reached %d times: the "
                  "workload reaches it at every send", name, fp_all[_i].what,
                  killed);
    ASSERT_RC(mempool_chan_close(sub), 0);
    t_assert_healthy(t_pool);
}
END_TEST

/* A publisher stopped holding a position (bcast.claimed=stop@K): we keep
 * publishing, a subscriber keeps reading past the hole within a bounded
 * wait; continued, the publisher finishes; nothing leaks. */
START_TEST(test_bcast_stop)
{
    const int at = 6;             /* past a lap: its slot holds an item */
    struct outcome o;
    mempool_chan *sub, *pub, *fresh;
    uint64_t objects0 = t_stats(t_pool).objects, wid;
    int fds[2], got = 0, overflows = 0;
    mempool_dref r;
    double t0;
    pid_t pid;

    memset(&o, 0, sizeof(o));
    ASSERT_RC(mempool_chan_open(t_pool, "kb", BCAP,
                                MEMPOOL_CHAN_CREATE | MEMPOOL_CHAN_BROADCAST,
                                &sub), 0);
    ASSERT_RC(mempool_chan_open(t_pool, "kb", 0, MEMPOOL_CHAN_BROADCAST,
                                &pub), 0);
    snprintf(fp_spec, sizeof fp_spec, "bcast.claimed=stop@%d", at);
    t_pipe(fds);
    rep_fd = fds[1];
    pid = t_fork(publisher, NULL);
    close(fds[1]);
    ASSERT_RC(t_recv_u64(fds[0], &wid, T_WAIT_S), 0);
    /* (T_WAIT_S: a 5 s wait here could end before a publisher on a
     * loaded machine reached its point) */
    t_await_stopped(pid, fp_spec);
    /* A subscriber that opens now (past the hole) and the old one, a lap
     * behind it: our items reach both, the old one after skipping the
     * stuck position (-EOVERFLOW) within a bounded wait. */
    ASSERT_RC(mempool_chan_open(t_pool, "kb", 0, MEMPOOL_CHAN_BROADCAST,
                                &fresh), 0);
    ck_assert_uint_eq(t_chan_info(t_pool, "kb", NULL).subscribers, 4);
    t0 = t_now_s();
    for (int k = 0; k < 3; k++) {
        uint64_t x = 1000 + (uint64_t)k;
        ck_assert_int_lt(o.n, MAXOBJ);
        ASSERT_RC(mempool_put_ex(t_pool, &x, sizeof(x), &rco, &r), 0);
        o.o[o.n].r = r;
        o.o[o.n++].sent = 1;
        ASSERT_RC(mempool_chan_send(pub, r, 0), 0);   /* never waits */
    }
    while (got < 3) {
        int rc = mempool_chan_recv(sub, &r, 2000);
        ck_assert_msg(rc == 0 || rc == -EOVERFLOW, "recv past the hole: %d",
                      rc);
        if (rc == 0) {
            got++;
            ck_assert(same(r, o.o[got - 1].r));   /* ours, in order */
            ASSERT_RC(mempool_unref(t_pool, r), 0);
        } else {
            overflows++;
        }
    }
    ck_assert_msg(t_now_s() - t0 < 5.0, "a stopped publisher held us %.3f s",
                  t_now_s() - t0);
    ck_assert_int_ge(overflows, 1);       /* the lap it lost, the hole */
    for (int k = 0; k < 3; k++) {
        ASSERT_RC(mempool_chan_recv(fresh, &r, 0), 0);
        ck_assert(same(r, o.o[k].r));
        ASSERT_RC(mempool_unref(t_pool, r), 0);
    }
    ASSERT_RC(mempool_chan_recv(fresh, &r, 0), -ETIMEDOUT);
    ASSERT_RC(mempool_chan_close(fresh), 0);
    ASSERT_RC(mempool_reap(t_pool), 0);            /* stopped is alive */
    kill(pid, SIGCONT);
    read_recs(fds[0], &o);
    close(fds[0]);
    t_wait_ok(pid);
    ck_assert(o.done);
    ASSERT_RC(mempool_chan_close(pub), 0);
    /* Everything the publisher and we sent: in the ring at most once. */
    bverify(&sub, &o, objects0, "bcast.claimed=stop");
    ASSERT_RC(mempool_chan_close(sub), 0);
    ASSERT_RC(mempool_chan_destroy(t_pool, "kb"), 0);
    (void)overflows;
}
END_TEST

/* ------------------------------------------------ create and destroy */

static int creator(void *arg)
{
    mempool *p = child_open();
    mempool_chan *c;
    (void)arg;
    T_CHILD_EQ(mempool_chan_open(p, "kc", 64, MEMPOOL_CHAN_CREATE, &c), 0);
    T_CHILD_EQ(mempool_chan_close(c), 0);
    T_CHILD_EQ(mempool_close(p), 0);
    return 0;
}

START_TEST(test_create_kill)
{
    int path = _i;
    uint64_t wid = 0, objects0 = t_stats(t_pool).objects;
    mempool_chan *c;
    bool found;
    int fds[2];
    pid_t pid;

    snprintf(fp_spec, sizeof fp_spec, "chan.creating@1");
    t_pipe(fds);
    rep_fd = fds[1];
    pid = t_fork(creator, NULL);
    close(fds[1]);
    ASSERT_RC(t_recv_u64(fds[0], &wid, T_WAIT_S), 0);
    close(fds[0]);
    ck_assert_int_eq(t_wait(pid, T_WAIT_S), 128 + SIGKILL);
    /* Half made: not there for anyone. */
    ASSERT_RC(mempool_chan_open(t_pool, "kc", 0, 0, &c), -ENOENT);
    (void)t_chan_info(t_pool, "kc", &found);
    ck_assert(!found);
    repair(path, wid);
    /* Undone: the name and the ring range are free. */
    ASSERT_RC(mempool_chan_open(t_pool, "kc", 0, 0, &c), -ENOENT);
    ring_all_free(path_names[path]);
    mempool_reap(t_pool);        /* the next locker repairs only channels */
    t_assert_healthy(t_pool);
    ASSERT_RC(mempool_chan_open(t_pool, "kc", 8, MEMPOOL_CHAN_CREATE, &c), 0);
    ck_assert_uint_eq(t_chan_info(t_pool, "kc", NULL).capacity, 8);
    ASSERT_RC(mempool_chan_close(c), 0);
    ASSERT_RC(mempool_chan_destroy(t_pool, "kc"), 0);
    ck_assert_uint_eq(t_stats(t_pool).objects, objects0);
    t_assert_healthy(t_pool);
}
END_TEST

/* A process blocked in send (queue, full) or recv (broadcast, nothing
 * new) of channel "kd", with no timeout: reports what the call returned,
 * and, for the sender, that it still holds its reference. */
static int blocked(void *arg)
{
    bool bcast = arg != NULL;
    mempool *p;
    mempool_chan *c;
    mempool_dref r;
    uint64_t x = 7;
    int rc;
    close(go_wfd);                  /* so the parent's close is EOF */
    T_CHILD_EQ(t_attach(t_name, &p), 0);
    T_CHILD_EQ(mempool_chan_open(p, "kd", 0,
                                 bcast ? MEMPOOL_CHAN_BROADCAST : 0, &c), 0);
    if (bcast) {
        rc = mempool_chan_recv(c, &r, -1);
    } else {
        T_CHILD_EQ(mempool_put_ex(p, &x, sizeof(x), &rco, &r), 0);
        rc = mempool_chan_send(c, r, -1);
        T_CHILD_EQ(rc, -EPIPE);
        T_CHILD_EQ(mempool_unref(p, r), 0);     /* still ours: freed */
        T_CHILD_EQ(mempool_info_get(p, r, &(mempool_info){ 0 }), -ENOENT);
    }
    T_CHILD_EQ(t_send_u64(rep_fd, (uint64_t)(int64_t)rc), 0);
    T_CHILD_EQ(t_wait_fd(go_fd, T_WAIT_S), 0);    /* keep our slot till then */
    T_CHILD_EQ(mempool_chan_close(c), 0);
    T_CHILD_EQ(mempool_close(p), 0);
    return 0;
}

static int destroyer(void *arg)
{
    mempool *p = child_open();
    (void)arg;
    T_CHILD_EQ(mempool_chan_destroy(p, "kd"), 0);
    T_CHILD_EQ(mempool_close(p), 0);
    return 0;
}

static void wait_waiting(bool bcast)
{
    for (int k = 0; k < 10000; k++) {
        mempool_chan_info in = t_chan_info(t_pool, "kd", NULL);
        if ((bcast ? in.receivers_waiting : in.senders_waiting) == 1)
            return;
        t_sleep_ms(1);
    }
    ck_abort_msg("the blocked process never slept");
}

/* _i: point (2) x kind (queue, broadcast) x repair path (3). */
START_TEST(test_destroy_kill)
{
    static const char *const points[] = { "chan.destroying", "chan.closing" };
    const char *point = points[_i / (2 * NPATH)];
    bool bcast = (_i / NPATH) % 2;
    int path = _i % NPATH, wfds[2], dfds[2], go[2];
    uint64_t objects0 = t_stats(t_pool).objects, wid = 0, wrc = 0;
    mempool_chan *c, *c2;
    mempool_dref items[3];
    char what[160];
    pid_t w, d;
    double t0;

    snprintf(what, sizeof what, "%s, %s, %s", point,
             bcast ? "broadcast" : "queue", path_names[path]);
    ASSERT_RC(mempool_chan_open(t_pool, "kd", bcast ? 4 : 3,
                                MEMPOOL_CHAN_CREATE |
                                    (bcast ? MEMPOOL_CHAN_BROADCAST : 0),
                                &c), 0);
    for (int k = 0; k < 3; k++) {
        uint64_t x = (uint64_t)k;
        ASSERT_RC(mempool_put_ex(t_pool, &x, sizeof(x), &rco, &items[k]), 0);
        ASSERT_RC(mempool_chan_send(c, items[k], 0), 0);   /* ref moves */
    }
    t_pipe(wfds);
    t_pipe(go);
    rep_fd = wfds[1];
    go_fd = go[0];
    go_wfd = go[1];
    w = t_fork(blocked, bcast ? (void *)1 : NULL);
    close(wfds[1]);
    close(go[0]);
    wait_waiting(bcast);

    snprintf(fp_spec, sizeof fp_spec, "%s@1", point);
    t_pipe(dfds);
    rep_fd = dfds[1];
    d = t_fork(destroyer, NULL);
    close(dfds[1]);
    ASSERT_RC(t_recv_u64(dfds[0], &wid, T_WAIT_S), 0);
    close(dfds[0]);
    ck_assert_int_eq(t_wait(d, T_WAIT_S), 128 + SIGKILL);
    /* Half destroyed: gone for openers already. */
    ASSERT_RC(mempool_chan_open(t_pool, "kd", 0,
                                bcast ? MEMPOOL_CHAN_BROADCAST : 0, &c2),
              -ENOENT);
    t0 = t_now_s();
    repair(path, wid);
    /* The blocked process wakes with -EPIPE (its sender kept its ref). */
    ASSERT_RC(t_recv_u64(wfds[0], &wrc, 10.0), 0);
    close(wfds[0]);
    ck_assert_msg((int64_t)wrc == -EPIPE, "%s: the blocked call returned "
                  "%" PRId64, what, (int64_t)wrc);
    ck_assert_msg(t_now_s() - t0 < 10.0, "%s: woke %.2f s after the repair",
                  what, t_now_s() - t0);
    close(go[1]);
    t_wait_ok(w);
    mempool_reap(t_pool);        /* the next locker repairs only channels */
    /* The items' references went with the channel. */
    for (int k = 0; k < 3; k++)
        ck_assert_msg(t_refs(t_pool, items[k]) == -1, "%s: item %d leaked "
                      "(%ld references)", what, k, t_refs(t_pool, items[k]));
    ASSERT_RC(mempool_chan_send(c, items[0], 0), -EPIPE);
    ASSERT_RC(mempool_chan_close(c), 0);
    ASSERT_RC(mempool_chan_destroy(t_pool, "kd"), -ENOENT);
    ck_assert_uint_eq(t_stats(t_pool).objects, objects0);
    t_assert_healthy(t_pool);
    ring_all_free(what);
}
END_TEST

static Suite *hkill_suite(void)
{
    Suite *s = suite_create("handoff_kill");
    TCase *tc = t_tcase(s, "bcast_kill", 240);
    tcase_add_loop_test(tc, test_bcast_kill, 0, NALL);
    tc = t_tcase(s, "bcast_stop", 60);
    tcase_add_test(tc, test_bcast_stop);
    tc = t_tcase(s, "create_kill", 60);
    tcase_add_loop_test(tc, test_create_kill, 0, NPATH);
    tc = t_tcase(s, "destroy_kill", 60);
    tcase_add_loop_test(tc, test_destroy_kill, 0, 2 * 2 * NPATH);
    return s;
}

int main(void)
{
    return t_run(hkill_suite(), "hkill");
}
