/* SPDX-License-Identifier: MIT */
/*
 * check_review7.c - a hostile review of session 7's landings: the data
 * hint in a DRef (src/core/dhint.h) and the direct records of queue
 * channels (src/handoff/chan_direct.c).
 *
 *   hint everywhere  every call that takes a DRef, given one whose hint
 *             names another object's block (or garbage, or nothing),
 *             acts on the object its entry bits name, never the hinted
 *             one: get, get_wait, info, share, get_obj, ref/unref, give/
 *             take, name_put, chan_send, copy/move to disk, delete.
 *   direct damage   a queue ring's direct item whose record was damaged
 *             (item idx out of range, a generation of 0, where naming
 *             another slot) or whose slot word names a record that does
 *             not exist (worker 63 of none, k past ndirect), and a direct
 *             word planted into a broadcast ring: receives answer 0 or an
 *             error, never crash, and mempool_check says
 *             MEMPOOL_ECORRUPT where the damage is visible.
 *   other user      in a root pool of mode 0666, uid 65534 sends plain
 *             items (direct records of its worker slot), then plants a
 *             direct word naming a record nobody wrote at the tail, sets
 *             every worker's run word to "awake on CPU 0" and dies by
 *             SIGKILL: root receives every item once, in order, with its
 *             bytes; then the planted word gives MEMPOOL_ECORRUPT (never
 *             an item), an empty wait ends on time, fsck says so.
 */
#include "helpers.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "layout.h"             /* white box: the words we damage */

#define ENTRY MEMPOOL_DREF_ENTRY_BITS

static const mempool_put_options rco = { 0, 0, MEMPOOL_PUT_REFCOUNTED };

static mempool_dref with_hint(mempool_dref r, uint64_t hint)
{
    r.off = (r.off & ENTRY) | (hint & ~ENTRY);
    return r;
}

/* The view of @p r must be @p len bytes of @p c. */
static void view_is(const mempool_view *v, int c, size_t len)
{
    ck_assert_uint_eq(v->len, len);
    for (size_t i = 0; i < len; i++)
        ck_assert_int_eq(((const unsigned char *)v->data)[i], c);
}

static void get_is(mempool *p, mempool_dref r, int c, size_t len)
{
    mempool_view v;
    ASSERT_RC(mempool_get(p, r, &v), 0);
    view_is(&v, c, len);
    ASSERT_RC(mempool_release(p, &v), 0);
    ASSERT_RC(mempool_get_wait(p, r, &v, 0), 0);
    view_is(&v, c, len);
    ASSERT_RC(mempool_release(p, &v), 0);
}

START_TEST(test_hint_everywhere)
{
    enum { N = 6 };
    mempool_dref r[N], rc1, out;
    mempool_info in;
    mempool_chan *ch;
    unsigned char buf[300];
    uint64_t share;
    /* The hints a caller may pass: each other object's, garbage, none. */
    uint64_t forged[N + 2];

    for (int i = 0; i < N; i++) {
        memset(buf, 'a' + i, sizeof buf);
        ASSERT_RC(mempool_put(t_pool, buf, (size_t)(64 + 40 * i), &r[i]), 0);
        forged[i] = r[i].off;
    }
    forged[N] = ~ENTRY;
    forged[N + 1] = 0;
    memset(buf, 'z', sizeof buf);
    ASSERT_RC(mempool_put_ex(t_pool, buf, 128, &rco, &rc1), 0);

    for (int i = 0; i < N; i++)
        for (int h = 0; h < N + 2; h++) {
            mempool_dref f = with_hint(r[i], forged[h]);
            size_t len = (size_t)(64 + 40 * i);
            get_is(t_pool, f, 'a' + i, len);
            ASSERT_RC(mempool_info_get(t_pool, f, &in), 0);
            ck_assert_uint_eq(in.len, len);
        }
    /* the refcounted one through every reference call, hint of r[0] */
    {
        mempool_dref f = with_hint(rc1, r[0].off);
        get_is(t_pool, f, 'z', 128);
        ASSERT_RC(mempool_ref(t_pool, f), 0);
        ck_assert_int_eq(t_refs(t_pool, rc1), 2);
        ASSERT_RC(mempool_unref(t_pool, f), 0);
        ASSERT_RC(mempool_share_get(t_pool, f, &share), 0);
        ASSERT_RC(mempool_ref(t_pool, rc1), 0);
        ASSERT_RC(mempool_ref_give(t_pool, f, 10000), 0);
        ASSERT_RC(mempool_ref_take(t_pool, with_hint(rc1, ~ENTRY)), 0);
        ASSERT_RC(mempool_unref(t_pool, rc1), 0);
        ck_assert_int_eq(t_refs(t_pool, rc1), 1);
    }
    /* names and channels: the object named, not the hinted */
    ASSERT_RC(mempool_name_put(t_pool, "r7-hint", with_hint(r[1], r[2].off),
                               0), 0);
    ASSERT_RC(mempool_name_get(t_pool, "r7-hint", &out, 0), 0);
    ck_assert(mempool_dref_equal(out, r[1]));
    get_is(t_pool, out, 'b', 104);
    ASSERT_RC(mempool_name_drop(t_pool, "r7-hint"), 0);
    ASSERT_RC(mempool_chan_open(t_pool, "r7-q", 8, MEMPOOL_CHAN_CREATE, &ch),
              0);
    ASSERT_RC(mempool_chan_send(ch, with_hint(r[3], r[4].off), 0), 0);
    ASSERT_RC(mempool_chan_send(ch, with_hint(rc1, r[4].off), 0), 0);
    ASSERT_RC(mempool_chan_recv(ch, &out, 0), 0);
    ck_assert(mempool_dref_equal(out, r[3]));
    get_is(t_pool, out, 'd', 184);
    ASSERT_RC(mempool_chan_recv(ch, &out, 0), 0);
    ck_assert(mempool_dref_equal(out, rc1));
    /* the send moved our reference to the receiver: drop it */
    ASSERT_RC(mempool_unref(t_pool, out), 0);
    ASSERT_RC(mempool_chan_close(ch), 0);
    /* to disk and back through a hint of another object: its own bytes */
    ASSERT_RC(mempool_copy_to_disk(t_pool, with_hint(r[4], r[5].off), NULL),
              0);
    ASSERT_RC(mempool_move_to_disk(t_pool, with_hint(r[5], r[4].off), NULL),
              0);
    for (int h = 0; h < N + 2; h++) {
        get_is(t_pool, with_hint(r[5], forged[h]), 'f', 264);
        get_is(t_pool, with_hint(r[4], forged[h]), 'e', 224);
    }
    /* delete through a forged hint deletes the named object only */
    ASSERT_RC(mempool_delete(t_pool, with_hint(r[0], r[1].off)), 0);
    ASSERT_RC(mempool_get(t_pool, with_hint(r[0], r[0].off),
                          &(mempool_view){ 0 }), -ENOENT);
    get_is(t_pool, with_hint(r[1], r[0].off), 'b', 104);
    /* the hint bits alone name nothing */
    ASSERT_RC(mempool_get(t_pool, (mempool_dref){ r[1].off & ~ENTRY, r[1].gen },
                          &(mempool_view){ 0 }), -EINVAL);
    for (int i = 1; i < N; i++)
        ASSERT_RC(mempool_delete(t_pool, r[i]), 0);
    ASSERT_RC(mempool_get(t_pool, rc1, &(mempool_view){ 0 }), -ENOENT);
    t_assert_healthy(t_pool);
}
END_TEST

/* ------------------------------------------------- direct record damage */

struct arena {
    uint8_t *base;
    size_t size;
    mp_header *h;
};

static void arena_map(struct arena *a, const char *name)
{
    a->base = t_map_arena_rw(name, &a->size);
    ck_assert(a->base != NULL);
    a->h = (mp_header *)(void *)a->base;
}

static mp_chan *chan_named(struct arena *a, const char *name)
{
    mp_chan *cs = (mp_chan *)(void *)(a->base + a->h->chans_off);
    for (uint32_t i = 0; i < MP_CHANS; i++)
        if (((atomic_load(&cs[i].state) >> 24) & 0xff) == MP_CH_OPEN &&
            cs[i].namelen == strlen(name) &&
            !memcmp(cs[i].name, name, cs[i].namelen))
            return &cs[i];
    ck_abort_msg("no channel %s", name);
    return NULL;
}

static _Atomic uint64_t *ring_at(struct arena *a, uint32_t j)
{
    return (_Atomic uint64_t *)(void *)(a->base + a->h->ring_off) + j;
}

static mp_direct *direct_at(struct arena *a, uint32_t w, uint32_t k)
{
    mp_direct *d = (mp_direct *)(void *)(a->base +
                                         MP_DIRECT_OFF(a->h->ring_off,
                                                       a->h->nring));
    return d + (size_t)w * MP_DIRECT_K(a->h->arena_bytes) + k;
}

enum dmg { D_IDX, D_GEN0, D_WHERE, D_WORKER, D_K, D_BCAST, D_COUNT };

/* One damage @p how to the first item of a queue channel holding two
 * plain direct items; then every call answers, fsck says so. */
static void direct_damage(int how)
{
    struct arena a;
    mempool_chan *q, *b;
    mempool_dref r[2], out;
    mempool_view v;
    char why[256];
    unsigned char buf[64];
    mp_chan *h;
    _Atomic uint64_t *s;
    uint64_t w0;
    int rc;

    memset(buf, 0x5a, sizeof buf);
    for (int i = 0; i < 2; i++)
        ASSERT_RC(mempool_put(t_pool, buf, sizeof buf, &r[i]), 0);
    ASSERT_RC(mempool_chan_open(t_pool, "r7-dq", 4, MEMPOOL_CHAN_CREATE, &q),
              0);
    ASSERT_RC(mempool_chan_open(t_pool, "r7-db", 4,
                                MEMPOOL_CHAN_CREATE | MEMPOOL_CHAN_BROADCAST,
                                &b), 0);
    for (int i = 0; i < 2; i++)
        ASSERT_RC(mempool_chan_send(q, r[i], 0), 0);
    arena_map(&a, t_name);
    h = chan_named(&a, "r7-dq");
    s = ring_at(&a, h->start);
    w0 = atomic_load(s);
    ck_assert_msg(MP_RING_IS_D(w0), "a plain item is direct: %llx",
                  (unsigned long long)w0);
    {
        mp_direct *d = direct_at(&a, MP_RING_DW(w0), MP_RING_DK(w0));
        switch (how) {
        case D_IDX:
            atomic_store(&d->item, UINT64_C(0xffffffff00000001));
            break;
        case D_GEN0:
            atomic_store(&d->item, atomic_load(&d->item) & ~0xffffffffull);
            break;
        case D_WHERE:
            atomic_store(&d->where, atomic_load(&d->where) + (1ull << 32));
            break;
        case D_WORKER:
            atomic_store(s, (w0 & ~UINT64_C(0x7fffffff)) | MP_RING_D(63, 3));
            break;
        case D_K:
            atomic_store(s, (w0 & ~UINT64_C(0x7fffffff)) |
                                MP_RING_D(MP_RING_DW(w0), 0xffffu));
            break;
        case D_BCAST: {
            mempool_dref x;
            mp_chan *hb = chan_named(&a, "r7-db");
            ASSERT_RC(mempool_chan_send(b, r[0], 0), 0);
            _Atomic uint64_t *sb = ring_at(&a, hb->start);
            uint64_t vb = atomic_load(sb);
            atomic_store(sb, (vb & ~UINT64_C(0x7fffffff)) | (w0 & 0x7fffffff));
            /* the receiver opened before the send: it reads slot 0 */
            (void)x;
            break;
        }
        }
    }
    rc = mempool_check(t_pool, why, sizeof why);
    ck_assert_msg(rc == MEMPOOL_ECORRUPT, "fsck %d (%s), damage %d", rc,
                      why, how);
    /* every receive answers: an item (checked below) or an error */
    for (int i = 0; i < 3; i++) {
        rc = mempool_chan_recv(how == D_BCAST ? b : q, &out, 0);
        ck_assert_msg(rc <= 0, "recv %d", rc);
        /* never a DRef that names nothing as a success */
        ck_assert_msg(rc != 0 || (uint32_t)out.gen != 0,
                      "damage %d: recv gave a DRef of generation 0", how);
        if (rc == 0 && mempool_get(t_pool, out, &v) == 0) {
            view_is(&v, 0x5a, 64);
            mempool_release(t_pool, &v);
        }
    }
    (void)mempool_chan_close(q);
    (void)mempool_chan_close(b);
    (void)mempool_chan_destroy(t_pool, "r7-dq");
    (void)mempool_chan_destroy(t_pool, "r7-db");
    munmap(a.base, a.size);
}

START_TEST(test_direct_damage)
{
    direct_damage(_i);
}
END_TEST


/* ------------------------------------------------------- another user */

#define XN 20

static int other_sender(void *arg)
{
    mempool_options o;
    mempool *p;
    mempool_chan *c;
    struct arena a;
    unsigned char buf[200];
    (void)arg;

    T_CHILD_ASSERT(t_become_nobody() == 0);
    t_options(&o, T_ARENA_BYTES);
    o.spill_dir = "/tmp";
    o.flags = 0;
    T_CHILD_EQ(mempool_open(t_name, &o, &p), 0);
    T_CHILD_EQ(mempool_chan_open(p, "r7-u", 0, 0, &c), 0);
    for (int i = 0; i < XN; i++) {
        mempool_dref r;
        t_fill(buf, sizeof buf, (uint64_t)i + 1);
        T_CHILD_EQ(mempool_put(p, buf, sizeof buf, &r), 0);
        T_CHILD_EQ(mempool_chan_send(c, r, 1000), 0);
    }
    /* the damage, written as this user through its own mapping */
    a.base = t_map_arena_rw(t_name, &a.size);
    T_CHILD_ASSERT(a.base != NULL);
    a.h = (mp_header *)(void *)a.base;
    {
        mp_hand *hd = (mp_hand *)(void *)(a.base + a.h->hand_off);
        mp_chan *h = NULL, *cs = (mp_chan *)(void *)(a.base +
                                                     a.h->chans_off);
        for (uint32_t i = 0; i < MP_CHANS && !h; i++)
            if (cs[i].namelen == 4 && !memcmp(cs[i].name, "r7-u", 4))
                h = &cs[i];
        T_CHILD_ASSERT(h != NULL);
        uint64_t t = atomic_load(&h->tail);   /* positions start anywhere */
        atomic_store(ring_at(&a, h->start + (uint32_t)(t % h->cap)),
                     MP_RING(t, 1, MP_RING_D(62, 7)));
        for (int w = 0; w < MP_WORKERS; w++)
            atomic_store(&hd->run[w], 1);
    }
    raise(SIGKILL);
    return 1;
}

START_TEST(test_other_user)
{
    mempool_chan *c;
    mempool_dref r;
    mempool_view v;
    struct timespec t0, t1;
    char why[256];
    int rc;
    pid_t pid;

    if (!t_fixture_shared("uid 65534's direct record"))
        return;
    ASSERT_RC(mempool_chan_open(t_pool, "r7-u", 64, MEMPOOL_CHAN_CREATE, &c),
              0);
    pid = t_fork(other_sender, NULL);
    rc = t_wait(pid, T_WAIT_S);
    ck_assert_msg(rc == 128 + SIGKILL,
                  "the other user's child ended with %d", rc);
    for (int i = 0; i < XN; i++) {
        ASSERT_RC(mempool_chan_recv(c, &r, 5000), 0);
        ASSERT_RC(mempool_get(t_pool, r, &v), 0);
        ck_assert_uint_eq(v.len, 200);
        ck_assert_msg(t_check_fill(v.data, 200, (uint64_t)i + 1),
                      "item %d has another's bytes", i);
        ASSERT_RC(mempool_release(t_pool, &v), 0);
    }
    rc = mempool_chan_recv(c, &r, 0);
    ck_assert_msg(rc == MEMPOOL_ECORRUPT, "the planted word: recv %d", rc);
    ck_assert_int_eq(mempool_check(t_pool, why, sizeof why),
                     MEMPOOL_ECORRUPT);
    /* an empty wait beside hostile run words ends on time */
    ASSERT_RC(mempool_chan_destroy(t_pool, "r7-u"), 0);
    (void)mempool_chan_close(c);
    ASSERT_RC(mempool_chan_open(t_pool, "r7-u2", 8, MEMPOOL_CHAN_CREATE, &c),
              0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    ASSERT_RC(mempool_chan_recv(c, &r, 200), -ETIMEDOUT);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    ck_assert_msg(t1.tv_sec - t0.tv_sec < 30, "a 200 ms wait took %ld s",
                  (long)(t1.tv_sec - t0.tv_sec));
    ASSERT_RC(mempool_chan_close(c), 0);
}
END_TEST

int main(void)
{
    const struct t_case cases[] = {
        { "review7", 120, true,
          { test_hint_everywhere, test_direct_damage, test_other_user } },
        { .name = NULL }
    };
    const struct t_loop loops[] = {
        { test_direct_damage, D_COUNT },
        { NULL, 0 }
    };
    return t_main_loops("review7", cases, loops);
}
