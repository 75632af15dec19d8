/* SPDX-License-Identifier: MIT */
/*
 * check_handoff_corrupt.c - damaged handoff state in the arena (a flipped
 * bit, a word another user of a shared pool wrote) gives error codes,
 * never a crash and never a hang.
 *
 * Each case builds a pool with a queue channel and a broadcast channel
 * holding refcounted items and a name bound to a refcounted object, then
 * damages one word: a bit of a channel header word (state, cap/start,
 * head, tail, name length), of a ring slot, of a name record (word,
 * hash/length), of a box word, or plants a whole word (garbage, a slot
 * far behind or ahead of the hints, a box index out of range, a lock
 * held by a slot that does not exist). A worker that opened its handles
 * before the damage and one that opens after it then run every handoff
 * call - open, send, recv (with and without timeouts), close, list, name
 * put/get/drop/list, create and destroy, fsck, the stats JSON - and must
 * finish well within a bound, with 0 or a negative code from each call,
 * and fsck must say 0 or MEMPOOL_ECORRUPT. One case has uid 65534 write
 * the damage into a pool made with mode 0666.
 */
#include "helpers.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "layout.h"             /* white box: the words we damage */

static const mempool_put_options rco = { 0, 0, MEMPOOL_PUT_REFCOUNTED };
static char pname[T_NAME_LEN];
static int rep_fd = -1, go_fd = -1, go_wfd = -1;

/* The arena of pname, mapped read-write. */
struct arena {
    uint8_t *base;
    size_t size;
    mp_header *h;
};

static void arena_map(struct arena *a)
{
    a->base = t_map_arena_rw(pname, &a->size);
    ck_assert(a->base != NULL);
    a->h = (mp_header *)(void *)a->base;
}

static mp_chan *chan_at(struct arena *a, uint32_t i)
{
    return (mp_chan *)(void *)(a->base + a->h->chans_off) + i;
}

static uint64_t *ring_at(struct arena *a, uint32_t j)
{
    return (uint64_t *)(void *)(a->base + a->h->ring_off) + j;
}

static mp_name *name_at(struct arena *a, uint32_t i)
{
    return (mp_name *)(void *)(a->base + a->h->names_off) + i;
}

/* The header of channel @p name (it must exist). */
static mp_chan *chan_named(struct arena *a, const char *name)
{
    for (uint32_t i = 0; i < MP_CHANS; i++) {
        mp_chan *c = chan_at(a, i);
        if (((atomic_load(&c->state) >> 24) & 0xff) == MP_CH_OPEN &&
            c->namelen == strlen(name) && !memcmp(c->name, name, c->namelen))
            return c;
    }
    ck_abort_msg("no channel %s", name);
    return NULL;
}

static mp_name *name_rec(struct arena *a, const char *name)
{
    for (uint32_t i = 0; i < a->h->nnames; i++) {
        mp_name *r = name_at(a, i);
        if ((atomic_load(&r->word) >> 62) == MP_NM_BOUND &&
            r->len == strlen(name) && !memcmp(r->name, name, r->len))
            return r;
    }
    ck_abort_msg("no name %s", name);
    return NULL;
}

/* ------------------------------------------------------------ the worker */

static int count_chan(const mempool_chan_info *ci, void *arg)
{
    (void)ci;
    ++*(int *)arg;
    return 0;
}

static int count_name(const char *name, mempool_dref r, void *arg)
{
    (void)name;
    (void)r;
    ++*(int *)arg;
    return 0;
}

#define OK_RC(call) \
    do { \
        int rc_ = (call); \
        T_CHILD_ASSERT(rc_ <= 0); \
    } while (0)

/* Send, receive, close: every answer 0 or an error. */
static void use_chan(mempool *p, mempool_chan *c, mempool_dref plain)
{
    mempool_dref out;
    int rc;
    OK_RC(mempool_chan_send(c, plain, 0));
    OK_RC(mempool_chan_send(c, plain, 5));
    for (int k = 0; k < 6; k++) {
        rc = mempool_chan_recv(c, &out, k % 2 ? 5 : 0);
        T_CHILD_ASSERT(rc <= 0);
        if (rc == 0)
            (void)mempool_unref(p, out);    /* plain: -EINVAL, fine */
    }
    OK_RC(mempool_chan_close(c));
}

static void use_all(mempool *p, mempool_chan *q, mempool_chan *b)
{
    mempool_chan *c;
    mempool_dref plain, rc1, out;
    char why[200];
    char *doc = NULL;
    int n = 0, rc;

    T_CHILD_EQ(mempool_put(p, "plain", 6, &plain), 0);
    T_CHILD_EQ(mempool_put_ex(p, "rc", 3, &rco, &rc1), 0);
    use_chan(p, q, plain);
    use_chan(p, b, plain);
    if (mempool_chan_open(p, "cz", 0, 0, &c) == 0)
        use_chan(p, c, plain);
    if (mempool_chan_open(p, "cb", 0, MEMPOOL_CHAN_BROADCAST, &c) == 0)
        use_chan(p, c, plain);
    T_CHILD_ASSERT(mempool_chan_list(p, count_chan, &n) >= 0);
    OK_RC(mempool_name_get(p, "nz", &out, 0));
    OK_RC(mempool_name_get(p, "nz", &out, 5));
    T_CHILD_ASSERT(mempool_name_list(p, count_name, &n) >= 0);
    OK_RC(mempool_name_put(p, "nz2", rc1, 0));
    OK_RC(mempool_name_put(p, "nz", rc1, MEMPOOL_NAME_REPLACE));
    OK_RC(mempool_name_drop(p, "nz"));
    OK_RC(mempool_ref_give(p, rc1, 10));
    OK_RC(mempool_ref_take(p, rc1));
    rc = mempool_chan_open(p, "new", 4, MEMPOOL_CHAN_CREATE, &c);
    T_CHILD_ASSERT(rc <= 0);
    if (rc == 0)
        use_chan(p, c, plain);
    OK_RC(mempool_chan_destroy(p, "new"));
    OK_RC(mempool_chan_destroy(p, "cz"));
    OK_RC(mempool_chan_destroy(p, "cb"));
    rc = mempool_check(p, why, sizeof why);
    T_CHILD_ASSERT(rc == 0 || rc == MEMPOOL_ECORRUPT);
    (void)mempool_stats_json(p, &doc);      /* a length or an error */
    free(doc);
    OK_RC(mempool_reap(p));
}

/* Open the handles, say so, wait for the damage, then use everything. */
static int worker(void *arg)
{
    mempool *p;
    mempool_chan *q, *b;
    (void)arg;
    close(go_wfd);
    T_CHILD_EQ(t_attach(pname, &p), 0);
    T_CHILD_EQ(mempool_chan_open(p, "cz", 0, 0, &q), 0);
    T_CHILD_EQ(mempool_chan_open(p, "cb", 0, MEMPOOL_CHAN_BROADCAST, &b), 0);
    T_CHILD_EQ(t_send_u64(rep_fd, 1), 0);
    T_CHILD_EQ(t_wait_fd(go_fd, T_WAIT_S), 0);
    use_all(p, q, b);
    T_CHILD_EQ(mempool_close(p), 0);
    return 0;
}

/* ------------------------------------------------------------ the cases */

typedef void (*damage_fn)(struct arena *a, int arg);

static void build(mempool **p, uint32_t mode)
{
    mempool_options o;
    mempool_chan *c;
    mempool_dref r;
    t_pool_name(pname, "hcorrupt");
    t_options(&o, T_ARENA_BYTES);
    o.mode = mode;
    ASSERT_RC(mempool_open(pname, &o, p), 0);
    ASSERT_RC(mempool_chan_open(*p, "cz", 4, MEMPOOL_CHAN_CREATE, &c), 0);
    for (uint64_t k = 0; k < 2; k++) {
        ASSERT_RC(mempool_put_ex(*p, &k, sizeof k, &rco, &r), 0);
        ASSERT_RC(mempool_chan_send(c, r, 0), 0);
    }
    ASSERT_RC(mempool_chan_close(c), 0);
    ASSERT_RC(mempool_chan_open(*p, "cb", 4, MEMPOOL_CHAN_CREATE |
                                MEMPOOL_CHAN_BROADCAST, &c), 0);
    for (uint64_t k = 0; k < 6; k++) {
        ASSERT_RC(mempool_put_ex(*p, &k, sizeof k, &rco, &r), 0);
        ASSERT_RC(mempool_chan_send(c, r, 0), 0);
    }
    ASSERT_RC(mempool_chan_close(c), 0);
    ASSERT_RC(mempool_put_ex(*p, "named", 6, &rco, &r), 0);
    ASSERT_RC(mempool_name_put(*p, "nz", r, 0), 0);
    ASSERT_RC(mempool_unref(*p, r), 0);
    t_assert_healthy(*p);
}

struct plant {
    damage_fn fn;
    int arg;
};

static int plant_as_nobody(void *v)
{
    struct plant *pl = v;
    struct arena a;
    if (t_become_nobody() != 0)
        return 40;
    arena_map(&a);
    pl->fn(&a, pl->arg);
    munmap(a.base, a.size);
    return 0;
}

/* Build, start the worker, damage (as uid 65534 if @p nobody), let it run;
 * it must end in time and well; then fsck and the JSON from here too. */
static void run_case(damage_fn fn, int arg, const char *what, bool nobody)
{
    mempool *p;
    struct arena a;
    char why[200];
    char *doc = NULL;
    int rep[2], go[2], st, rc;
    uint64_t one;
    double t0;
    pid_t w;

    build(&p, nobody ? 0666 : 0600);
    t_pipe(rep);
    t_pipe(go);
    rep_fd = rep[1];
    go_fd = go[0];
    go_wfd = go[1];
    w = t_fork(worker, NULL);
    close(rep[1]);
    close(go[0]);
    ASSERT_RC(t_recv_u64(rep[0], &one, T_WAIT_S), 0);
    close(rep[0]);
    if (nobody) {
        struct plant pl = { fn, arg };
        ck_assert_int_eq(t_wait(t_fork(plant_as_nobody, &pl), T_WAIT_S), 0);
    } else {
        arena_map(&a);
        fn(&a, arg);
        munmap(a.base, a.size);
    }
    t0 = t_now_s();
    close(go[1]);
    st = t_wait(w, 20.0);
    ck_assert_msg(st == 0, "%s: the worker %s (%d)", what,
                  st < 0 ? "hung" : st >= 128 ? "crashed" : "failed", st);
    ck_assert_msg(t_now_s() - t0 < 10.0, "%s: took %.1f s", what,
                  t_now_s() - t0);
    rc = mempool_check(p, why, sizeof why);
    ck_assert_msg(rc == 0 || rc == MEMPOOL_ECORRUPT, "%s: check %d", what,
                  rc);
    (void)mempool_stats_json(p, &doc);
    free(doc);
    ASSERT_RC(mempool_close(p), 0);
    ASSERT_RC(mempool_destroy(pname), 0);
}

/* Words of the queue channel "cz" (arg: which << 8 | bit). */
static void flip_cz(struct arena *a, int arg)
{
    mp_chan *c = chan_named(a, "cz");
    uint64_t bit = UINT64_C(1) << (arg & 63);
    switch (arg >> 8) {
    case 0: atomic_fetch_xor(&c->state, bit); break;
    case 1: { uint64_t *w = (uint64_t *)(void *)&c->cap; *w ^= bit; } break;
    case 2: atomic_fetch_xor(&c->head, bit); break;
    case 3: atomic_fetch_xor(&c->tail, bit); break;
    case 4: c->namelen ^= (uint32_t)bit; break;
    default: *ring_at(a, c->start + (uint32_t)((arg >> 8) - 5)) ^= bit; break;
    }
}

static void flip_cb(struct arena *a, int arg)
{
    mp_chan *c = chan_named(a, "cb");
    uint64_t bit = UINT64_C(1) << (arg & 63);
    switch (arg >> 8) {
    case 0: atomic_fetch_xor(&c->state, bit); break;
    case 1: { uint64_t *w = (uint64_t *)(void *)&c->cap; *w ^= bit; } break;
    case 2: atomic_fetch_xor(&c->tail, bit); break;
    default: *ring_at(a, c->start + (uint32_t)((arg >> 8) - 3)) ^= bit; break;
    }
}

static void flip_name(struct arena *a, int arg)
{
    mp_name *r = name_rec(a, "nz");
    uint64_t bit = UINT64_C(1) << (arg & 63);
    uint64_t *box = (uint64_t *)(void *)(a->base + a->h->boxw_off);
    switch (arg >> 8) {
    case 0: atomic_fetch_xor(&r->word, bit); break;
    case 1: { uint64_t *w = (uint64_t *)(void *)&r->hash; *w ^= bit; } break;
    default: box[(uint32_t)atomic_load(&r->word) - 1] ^= bit; break;
    }
}

static const int bits[] = { 0, 3, 8, 15, 16, 24, 31, 32, 47, 63 };
#define NBITS ((int)(sizeof bits / sizeof bits[0]))

START_TEST(test_flip_queue)
{
    char what[80];
    for (int word = 0; word < 9; word++)
        for (int k = 0; k < NBITS; k++) {
            if (word == 4 && bits[k] >= 32)
                continue;
            snprintf(what, sizeof what, "cz word %d bit %d", word, bits[k]);
            run_case(flip_cz, word << 8 | bits[k], what, false);
        }
}
END_TEST

START_TEST(test_flip_bcast)
{
    char what[80];
    for (int word = 0; word < 7; word++)
        for (int k = 0; k < NBITS; k++) {
            snprintf(what, sizeof what, "cb word %d bit %d", word, bits[k]);
            run_case(flip_cb, word << 8 | bits[k], what, false);
        }
}
END_TEST

START_TEST(test_flip_name)
{
    char what[80];
    for (int word = 0; word < 3; word++)
        for (int k = 0; k < NBITS; k++) {
            snprintf(what, sizeof what, "name word %d bit %d", word, bits[k]);
            run_case(flip_name, word << 8 | bits[k], what, false);
        }
}
END_TEST

/* Whole words planted. */
static void plant(struct arena *a, int arg)
{
    mp_chan *q = chan_named(a, "cz"), *b = chan_named(a, "cb");
    mp_hand *hd = (mp_hand *)(void *)(a->base + a->h->hand_off);
    uint64_t *slot = ring_at(a, q->start + (uint32_t)(atomic_load(&q->head) %
                                                       q->cap));
    switch (arg) {
    case 0: *slot = UINT64_C(0x0123456789abcdef); break;       /* garbage */
    case 1: *slot = MP_RING(atomic_load(&q->head) - 1000, 0, 0); break;
    case 2: *slot = MP_RING(atomic_load(&q->head) - 1000, 1, 3); break;
    case 3: *slot = MP_RING(atomic_load(&q->head) + 100000, 0, 0); break;
    case 4: *slot = MP_RING(atomic_load(&q->head), 1, 0x7ffffff0u); break;
    case 5: *slot = MP_RING(atomic_load(&q->head), 1, 1); break; /* another's */
    case 6: atomic_store(&q->head, atomic_load(&q->head) + (UINT64_C(1) << 40));
            break;
    case 7: atomic_store(&q->tail, atomic_load(&q->tail) - (UINT64_C(1) << 40));
            break;
    case 8: atomic_store(&b->tail, UINT64_MAX - 3); break;
    case 9: atomic_store(&hd->dir_lock, 200); break;
    case 10: atomic_store(&hd->names_lock, 200); break;
    case 11: q->cap = 0xffffffffu; break;
    case 12: q->start = a->h->nring; break;
    case 13: atomic_store(&q->state, UINT64_MAX); break;
    case 14: memset(name_rec(a, "nz")->name, 0xff, sizeof(mp_name) - 16); break;
    default:
        for (uint32_t j = 0; j < a->h->nring; j++)   /* the whole ring */
            *ring_at(a, j) = MP_RING(j * 7919u, j & 1, j);
        break;
    }
}
#define NPLANT 16

START_TEST(test_plant)
{
    char what[80];
    for (int k = 0; k < NPLANT; k++) {
        snprintf(what, sizeof what, "planted word %d", k);
        run_case(plant, k, what, false);
    }
}
END_TEST

/* Another user who may write the shared pool writes the damage. */
START_TEST(test_plant_other_user)
{
    if (geteuid() != 0) {
        fprintf(stderr, "SKIP: not root: cannot be uid 65534\n");
        return;
    }
    run_case(plant, 2, "uid 65534 planted a slot behind the head", true);
    run_case(flip_cz, 0 << 8 | 25, "uid 65534 flipped a state bit", true);
}
END_TEST

int main(void)
{
    const struct t_case cases[] = {
        { "flip", 240, false, {
              test_flip_queue, test_flip_bcast, test_flip_name } },
        { "plant", 120, false, { test_plant, test_plant_other_user } },
        { .name = NULL }
    };
    return t_main("hcorrupt", cases);
}
