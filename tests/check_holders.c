/* SPDX-License-Identifier: MIT */
/*
 * check_holders.c - the entry's holders word (layout.h, pin.c): the worker
 * slots that may hold a pin or reference cell of an object's generation,
 * so "is it pinned / referenced anywhere?" reads only those workers' cells.
 *
 * word: a worker's bit is set by its first pin or reference and by nothing
 * else (a set, another worker's get do not set it); it is zero again when
 * the entry is taken for a new generation; an object another worker pins
 * survives a delete by a third with several workers attached, its pins
 * counted, and is freed at that release.
 *
 * storm: five processes share a board of objects whose bytes are a
 * pattern of their DRef; each gets (and checks the bytes while pinned),
 * deletes and replaces objects at random, references and unreferences
 * refcounted ones (the board's reference of those is in flight, taken by
 * whoever empties the cell). A scan that skipped a pinner's or a referrer's table
 * would free a held object: its entry and block are reused at once by the
 * others' sets, so its bytes change under the reader, or a reference
 * finds it gone. At the end: check clean, and after the board is emptied
 * the pool holds no object.
 */
#include "helpers.h"
#include "layout.h"                /* mp_entry: the holders word */

#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>



/* The arena, mapped read-only: the tests only look at holders words. */
struct arena {
    const uint8_t *base;
    size_t len;
};

/* The holders word of the entry @p r names (a DRef's off is its entry's). */
static uint64_t holders(const struct arena *a, mempool_dref r)
{
    uint64_t off = r.off & MEMPOOL_DREF_ENTRY_BITS;
    const mp_entry *e = (const mp_entry *)(const void *)(a->base + off);
    ck_assert_uint_lt(off + sizeof(mp_entry), a->len + 1);
    return atomic_load(&((mp_entry *)(uintptr_t)e)->holders);
}

static uint64_t bit_of(int wid)
{
    return UINT64_C(1) << (wid - 1);
}

START_TEST(test_holders_word)
{
    struct t_remote a, b, c;
    mempool *p;
    mempool_dref r, n = { 0, 0 };
    mempool_view v;
    struct arena ar;
    uint64_t objects;
    int wa, wb, wc, me;
    bool found = false;

    t_pool_name(t_name, "holders");
    ck_assert_int_eq(t_open(t_name, T_ARENA_BYTES, &p), 0);
    ar.base = t_map_arena(t_name, &ar.len);
    me = mempool_worker_id(p);
    t_remote_start(&a, t_name);
    t_remote_start(&b, t_name);
    t_remote_start(&c, t_name);
    wa = (int)t_remote_call(&a, T_R_WID, &r, 0);
    wb = (int)t_remote_call(&b, T_R_WID, &r, 0);
    wc = (int)t_remote_call(&c, T_R_WID, &r, 0);
    ck_assert(wa > 0 && wb > 0 && wc > 0 && me > 0);
    objects = t_stats(p).objects;

    ck_assert_int_eq(t_remote_call(&b, T_R_SET, &r, 64), 0);
    ck_assert_uint_eq(holders(&ar, r), 0);        /* a set pins nothing */
    ck_assert_int_eq(t_remote_call(&b, T_R_GET, &r, 2), 0);
    ck_assert_uint_eq(holders(&ar, r), bit_of(wb));
    ck_assert_int_eq(mempool_get(p, r, &v), 0);
    ck_assert_int_eq(mempool_release(p, &v), 0);
    ck_assert_uint_eq(holders(&ar, r), bit_of(wb) | bit_of(me));
    ck_assert_int_eq(t_pins(p, r), 2);

    /* A third worker deletes it: b's pins keep it, counted. */
    ck_assert_int_eq(t_remote_call(&c, T_R_DELETE, &r, 0), 0);
    ck_assert_int_eq(mempool_get(p, r, &v), -ENOENT);
    ck_assert_int_eq(t_remote_call(&b, T_R_VERIFY, &r, 0), 2);
    ck_assert_uint_eq(t_stats(p).objects, objects + 1);
    ck_assert_int_eq(t_remote_call(&b, T_R_RELEASE_ALL, &r, 0), 2);
    ck_assert_uint_eq(t_stats(p).objects, objects);

    /* The entry's next generation starts with no holders. b's release
     * freed b's own small object into b's allocator cache, which hands it
     * out again first (wcache.c). */
    for (int i = 0; i < 64 && !found; i++) {
        ck_assert_int_eq(t_remote_call(&b, T_R_SET, &n, 64), 0);
        found = n.off == r.off;
        if (!found)
            ck_assert_int_eq(mempool_delete(p, n), 0);
    }
    ck_assert_msg(found, "the freed entry was not reused within 64 sets");
    ck_assert_uint_ne(n.gen, r.gen);
    ck_assert_uint_eq(holders(&ar, n), 0);
    ck_assert_int_eq(t_remote_call(&c, T_R_GET, &n, 1), 0);
    ck_assert_uint_eq(holders(&ar, n), bit_of(wc));
    ck_assert_int_eq(t_remote_call(&c, T_R_RELEASE_ALL, &n, 0), 1);
    ck_assert_int_eq(mempool_delete(p, n), 0);

    /* A reference marks its holder too; a refcounted set marks its maker. */
    ck_assert_int_eq(t_remote_call(&a, T_R_SET_RC, &r, 64), 0);
    ck_assert_uint_eq(holders(&ar, r), bit_of(wa));
    ck_assert_int_eq(t_remote_call(&c, T_R_REF, &r, 1), 0);
    ck_assert_uint_eq(holders(&ar, r), bit_of(wa) | bit_of(wc));
    ck_assert_int_eq(t_remote_call(&a, T_R_UNREF, &r, 0), 0);
    ck_assert_uint_eq(t_stats(p).objects, objects + 1);  /* c holds it */
    ck_assert_int_eq(t_remote_call(&c, T_R_UNREF, &r, 0), 0);
    ck_assert_uint_eq(t_stats(p).objects, objects);

    ck_assert_int_eq(t_remote_quit(&a), 0);
    ck_assert_int_eq(t_remote_quit(&b), 0);
    ck_assert_int_eq(t_remote_quit(&c), 0);
    t_assert_healthy(p);
    munmap((void *)(uintptr_t)ar.base, ar.len);
    mempool_close(p);
    mempool_destroy(t_name);
}
END_TEST

/* ------------------------------------------------------------------ storm */

#define NPROC 5
#define NBOARD 64
/* Each process storms STORM_OPS operations and at least STORM_S seconds
 * after its attach. The count is what the asserts need (a storm that ran
 * at all): a time alone, counted from before a slow attach, can leave a
 * process on a loaded machine no operation at all. On a quiet machine 3 s
 * are ~270,000 operations a process (~200,000 ASan, ~60,000 TSan), so the
 * time decides there. The count is small because half the operations
 * yield the CPU (sched_yield), and at load ~45 a yield waits for many
 * others: 10,000 operations took one TSan process over 60 s there. */
#define STORM_S 3.0
#define STORM_OPS 1000

struct board {
    _Atomic uint64_t cell[NBOARD];   /* 1 + an index in refs, 0 = empty */
    _Atomic uint64_t next;
    struct t_note note;
    mempool_dref refs[1u << 20];
};

static struct board *bd;

static void bug(const char *what, long long rc)
{
    t_note_bug(&bd->note, what, rc);
}

/* Let go of board object @p v: delete it, or take the board's reference
 * of a refcounted one and drop it. */
static void drop(mempool *p, uint64_t v)
{
    mempool_dref r = bd->refs[v - 1];
    int rc = v % 4 ? mempool_delete(p, r) : mempool_ref_take(p, r);
    if (rc) {
        bug(v % 4 ? "delete of a board object" : "ref_take of a board object", rc);
        return;
    }
    if (v % 4 == 0 && (rc = mempool_unref(p, r)))
        bug("unref of a board object", rc);
}

/* A new object (refcounted every fourth) on empty cell @p j. */
static void give(mempool *p, unsigned j, uint64_t *rng)
{
    static const mempool_put_options rc_opt = {
        .flags = MEMPOOL_PUT_REFCOUNTED
    };
    uint64_t v = atomic_fetch_add(&bd->next, 1) + 1, z = 0;
    size_t len = 16 + t_rand(rng) % 200;
    char buf[256];
    int rc;
    if (v > sizeof bd->refs / sizeof bd->refs[0])
        return;
    t_fill(buf, len, v);
    rc = mempool_put_ex(p, buf, len, v % 4 ? NULL : &rc_opt, &bd->refs[v - 1]);
    /* The board's reference of a refcounted object is in flight: the
     * one who empties the cell takes it (any process). */
    if (rc == 0 && v % 4 == 0)
        rc = mempool_ref_give(p, bd->refs[v - 1], -1);
    if (rc) {
        bug("put", rc);
        return;
    }
    if (!atomic_compare_exchange_strong(&bd->cell[j], &z, v))
        drop(p, v);
}

/* Get cell @p j's object and check its bytes twice, the second time after
 * others had the chance to free and reuse it. */
static void look(mempool *p, uint64_t v)
{
    mempool_view view;
    int rc = mempool_get(p, bd->refs[v - 1], &view);
    if (rc == -ENOENT)
        return;                      /* deleted meanwhile */
    if (rc) {
        bug("get", rc);
        return;
    }
    if (!t_check_fill(view.data, view.len, v))
        bug("bytes of a pinned object", (long long)v);
    sched_yield();
    if (!t_check_fill(view.data, view.len, v))
        bug("bytes of a pinned object changed", (long long)v);
    if ((rc = mempool_release(p, &view)))
        bug("release", rc);
}

/* Take a reference on a refcounted cell's object while it may be
 * dropped (nobody deletes those): it must stay alive while we hold it. */
static void hold(mempool *p, uint64_t v)
{
    mempool_dref r = bd->refs[v - 1];
    mempool_view view;
    int rc = mempool_ref(p, r);
    if (rc == -ENOENT)
        return;
    if (rc) {
        bug("ref", rc);
        return;
    }
    sched_yield();
    if ((rc = mempool_get(p, r, &view))) {
        bug("get of a referenced object", rc);
    } else {
        if (!t_check_fill(view.data, view.len, v))
            bug("bytes of a referenced object", (long long)v);
        mempool_release(p, &view);
    }
    if ((rc = mempool_unref(p, r)))
        bug("unref", rc);
}

/* Empty cell @p j (value @p v) if we win it. */
static void take(mempool *p, unsigned j, uint64_t v)
{
    if (atomic_compare_exchange_strong(&bd->cell[j], &v, 0))
        drop(p, v);
}

static int stormer(void *arg)
{
    uint64_t rng = (uint64_t)(uintptr_t)arg * 7919 + 17;
    double end;
    mempool *p;
    T_CHILD_ASSERT(t_attach(t_name, &p) == 0);
    end = t_now_s() + STORM_S;
    for (unsigned long ops = 0;
         (ops < STORM_OPS || t_now_s() < end) &&
         !atomic_load(&bd->note.failed); ops++) {
        unsigned j = (unsigned)(t_rand(&rng) % NBOARD), op = t_rand(&rng) % 8;
        uint64_t v = atomic_load(&bd->cell[j]);
        if (!v)
            give(p, j, &rng);
        else if (op < 4)
            look(p, v);
        else if (op < 6 && v % 4 == 0)
            hold(p, v);
        else if (op < 7)
            take(p, j, v);
    }
    mempool_close(p);
    return 0;
}

START_TEST(test_holders_storm)
{
    pid_t k[NPROC];
    mempool *p;

    bd = t_shared_map(sizeof *bd);
    t_pool_name(t_name, "holders");
    ck_assert_int_eq(t_open(t_name, T_ARENA_BYTES, &p), 0);
    for (int i = 0; i < NPROC; i++)
        k[i] = t_fork(stormer, (void *)(uintptr_t)(i + 1));
    for (int i = 0; i < NPROC; i++)
        ck_assert_int_eq(t_wait(k[i], T_WAIT_S), 0);
    ck_assert_msg(!atomic_load(&bd->note.failed), "%s", bd->note.why);
    ck_assert_uint_gt(atomic_load(&bd->next), NBOARD);
    for (unsigned j = 0; j < NBOARD; j++) {
        uint64_t v = atomic_load(&bd->cell[j]);
        if (v)
            drop(p, v);
    }
    t_storm_end(p, &bd->note);
    munmap(bd, sizeof *bd);
}
END_TEST

int main(void)
{
    const struct t_case cases[] = {
        { "holders", 120, false, { test_holders_word, test_holders_storm } },
        { .name = NULL }
    };
    return t_main("holders", cases);
}
