/* SPDX-License-Identifier: MIT */
/*
 * fuzz_dref.c - libFuzzer target: DRefs and object operations against a
 * live pool (docs/scenarios.md S46-S50).
 *
 * LLVMFuzzerInitialize creates one pool per process with two handles (two
 * workers) and a spill directory under /tmp, and sets the pre-made objects
 * of fuzz_params.h: small, large, empty, refcounted, spilled (move_to_disk),
 * copied (copy_to_disk), DESTROY_ON_EVICT and a typed array; plus a few
 * stale DRefs (objects set and deleted).
 *
 * Each input is a byte program (fuzz_params.h): get/release, info, delete,
 * ref/unref, reserve/publish/abort, set, move/copy/save_to_disk and
 * get_file, get_obj, text round trips and forged views, on DRefs that are
 * exact, bit-flipped, shifted, raw, parsed from (mutated) text, stale, or
 * edge cases. Nothing may crash or hang, and:
 *
 *   - a successful get/get_file returns bytes that can all be read, and a
 *     get that succeeds names a live object of this harness whose length
 *     and checksum are the ones it was set with (never a deleted, stale,
 *     reused or unpublished one);
 *   - the text form round-trips exactly;
 *   - after each input (every view released, reservations aborted,
 *     references dropped, this input's objects deleted, the pre-made ones
 *     recreated if the input deleted or moved them) the pool holds no pin
 *     and mempool_check() == 0.
 *
 * Any violation traps (__builtin_trap), so libFuzzer keeps the input.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mempool/mempool.h>
#include "fuzz_params.h"
#include "helpers_base.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NH        2            /* handles (workers) on the pool */
#define MAX_NEW   16           /* objects one input may create */
#define MAX_OBJ   (FD_NPRE + MAX_NEW)
#define MAX_HELD  32           /* views an input may keep */
#define MAX_STALE 32
#define MAX_LEN   9000u
#define NSPECIAL  16

#define FAIL(...) do { fprintf(stderr, "fuzz_dref: " __VA_ARGS__); \
                       fputc('\n', stderr); __builtin_trap(); } while (0)

typedef struct obj {
    mempool_dref r;
    uint64_t len, sum;         /* what a get must see */
    uint32_t flags, type;
    bool reserved;             /* reserved by handle `by`, not published */
    bool deleted;              /* this input deleted it: gets must fail */
    int  by;
    long refs[NH];             /* references this input took, per handle
                                  (for a reservation of its own: + 1) */
} obj;

static mempool *H[NH];
static char pool[64], spill_root[64], save_path[128];
static obj objs[MAX_OBJ];
static int nobj;
static mempool_dref stale[MAX_STALE], special[NSPECIAL];
static int nstale, stale_next;
static long stuck[NH];         /* reference cells nobody can drop */

static struct held {
    bool used;
    int h;
    mempool_view v;
} held[MAX_HELD];

static volatile uint8_t sink;

/* ---------------------------------------------------------------- input */

typedef struct rd {
    const uint8_t *p;
    size_t n;
} rd;

static uint8_t u8(rd *in)
{
    if (!in->n)
        return 0;
    in->n--;
    return *in->p++;
}

static uint16_t u16(rd *in)
{
    uint16_t a = u8(in);
    return (uint16_t)(a | (uint16_t)u8(in) << 8);
}

static uint32_t u32(rd *in)
{
    uint32_t a = u16(in);
    return a | (uint32_t)u16(in) << 16;
}

static uint64_t u64(rd *in)
{
    uint64_t a = u32(in);
    return a | (uint64_t)u32(in) << 32;
}

/* ----------------------------------------------------------------- data */

static uint64_t fnv(const void *p, uint64_t n)
{
    const uint8_t *b = p;
    uint64_t h = 1469598103934665603ull;
    uint8_t x = 0;

    for (uint64_t i = 0; i < n; i++) {
        h = (h ^ b[i]) * 1099511628211ull;
        x ^= b[i];
    }
    sink ^= x;                      /* every byte read */
    return h;
}

static void fill(uint8_t *b, uint64_t n, uint64_t seed)
{
    uint64_t s = seed * 0x9e3779b97f4a7c15ull | 1;

    for (uint64_t i = 0; i < n; i++) {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        b[i] = (uint8_t)(s * 0x2545f4914f6cdd1dull >> 56);
    }
}

/* The same object: entry and generation (the data hint ignored). */
static bool same(mempool_dref a, mempool_dref b)
{
    return mempool_dref_equal(a, b);
}

/* The same 128 bits (the text form's round trip). */
static bool same_bits(mempool_dref a, mempool_dref b)
{
    return a.off == b.off && a.gen == b.gen;
}

static obj *lookup(mempool_dref r)
{
    for (int k = 0; k < nobj; k++)
        if (same(objs[k].r, r))
            return &objs[k];
    return NULL;
}

static void stale_add(mempool_dref r)
{
    stale[stale_next] = r;
    stale_next = (stale_next + 1) % MAX_STALE;
    if (nstale < MAX_STALE)
        nstale++;
}

/* A successful get/get_obj/save returned view @p v for DRef @p r. */
static void check_view(mempool_dref r, const mempool_view *v)
{
    uint64_t sum;
    obj *o;

    if (!v->data)
        FAIL("get gave a NULL data pointer");
    sum = fnv(v->data, v->len);
    if (!(o = lookup(r)))
        FAIL("get succeeded for %016llx:%016llx, which names no live object",
             (unsigned long long)r.off, (unsigned long long)r.gen);
    if (o->reserved)
        FAIL("get succeeded on an unpublished reservation");
    if (o->deleted)
        FAIL("get succeeded on a deleted object");
    if (v->len != o->len || sum != o->sum)
        FAIL("object %d: got %llu bytes (sum %016llx), set %llu (%016llx)",
             (int)(o - objs), (unsigned long long)v->len,
             (unsigned long long)sum, (unsigned long long)o->len,
             (unsigned long long)o->sum);
}

/* ------------------------------------------------------ making objects */

/* Reserve (or set) an object of @p len bytes on handle @p h; 0 or -err. */
static int make(int h, uint64_t len, uint32_t flags, bool publish, obj *o)
{
    mempool_put_options so = { 0, 0, flags };
    void *buf;
    int rc;

    memset(o, 0, sizeof *o);
    if ((rc = mempool_reserve(H[h], len, &so, &buf, &o->r)))
        return rc;
    fill(buf, len, o->r.off ^ o->r.gen);
    o->len = len;
    o->sum = fnv(buf, len);
    o->flags = flags;
    o->by = h;
    o->reserved = true;
    if (publish) {
        if ((rc = mempool_publish(H[h], o->r)))
            FAIL("publish of a fresh reservation: %d", rc);
        o->reserved = false;
    }
    if (flags & MEMPOOL_PUT_REFCOUNTED)
        o->refs[h] = 1;             /* the reservation's reference */
    return 0;
}

static void make_pre(int k)
{
    static const uint64_t lens[FD_NPRE] = { 64, 5000, 0, 300, 3000, 1500,
                                            200, 0 };
    obj *o = &objs[k];
    int rc = 0;

    if (k == FD_PRE_ARRAY) {
        double d[100];
        mempool_array a;
        mempool_view v;

        memset(&a, 0, sizeof a);
        for (int i = 0; i < 100; i++)
            d[i] = i * 0.5;
        a.dtype = MEMPOOL_DTYPE_FLOAT64;
        a.ndim = 1;
        a.shape[0] = 100;
        a.data = d;
        memset(o, 0, sizeof *o);
        if ((rc = mempool_put_obj(H[0], MEMPOOL_TYPE_ARRAY, &a, NULL, &o->r)))
            FAIL("set_obj: %d", rc);
        if ((rc = mempool_get(H[0], o->r, &v)))
            FAIL("get of the array: %d", rc);
        o->len = v.len;
        o->sum = fnv(v.data, v.len);
        o->type = MEMPOOL_TYPE_ARRAY;
        mempool_release(H[0], &v);
        return;
    }
    rc = make(0, lens[k], k == FD_PRE_REFCOUNTED ? MEMPOOL_PUT_REFCOUNTED
                        : k == FD_PRE_DESTROY ? MEMPOOL_PUT_DESTROY_ON_EVICT
                                              : 0, true, o);
    if (rc)
        FAIL("pre-made object %d: %s", k, mempool_strerror(rc));
    o->refs[0] = 0;             /* the pre-made reference is not the input's */
    if (k == FD_PRE_SPILLED && (rc = mempool_move_to_disk(H[0], o->r, NULL)))
        FAIL("move_to_disk of the pre-made object: %s", mempool_strerror(rc));
    if (k == FD_PRE_COPIED && (rc = mempool_copy_to_disk(H[0], o->r, NULL)))
        FAIL("copy_to_disk of the pre-made object: %s", mempool_strerror(rc));
}

/* Is pre-made object @p k still what it should be? */
static bool pre_ok(int k)
{
    obj *o = &objs[k];
    mempool_info in;

    if (o->deleted || mempool_info_get(H[0], o->r, &in))
        return false;
    if (k == FD_PRE_REFCOUNTED && in.refs != 1)
        return false;
    if (k == FD_PRE_SPILLED)
        return in.state == MEMPOOL_STATE_DISK;
    return in.state & MEMPOOL_STATE_MEMORY;
}

/* Drop every reference of handle @p h on @p o; count the ones that cannot
 * be dropped any more (the object was deleted under them). */
static void drop_refs(int h, obj *o)
{
    while (o->refs[h] > 0) {
        int rc = mempool_unref(H[h], o->r);

        if (rc == -ENOENT) {
            stuck[h] += o->refs[h];
            break;
        }
        if (rc)
            break;
        o->refs[h]--;
    }
    o->refs[h] = 0;
}

/* -------------------------------------------------------------- sources */

static void specials(void)
{
    struct mempool_stats s;
    uint64_t tag = objs[0].r.gen & ~0xffffffffull, t = UINT64_MAX;
    int i = 0;

    for (int k = 0; k < nobj; k++)
        if ((objs[k].r.off & MEMPOOL_DREF_ENTRY_BITS) < t)
            t = objs[k].r.off & MEMPOOL_DREF_ENTRY_BITS; /* the table */
    if (mempool_stats_get(H[0], &s))
        FAIL("stats");
    special[i++] = (mempool_dref){ 0, 0 };
    special[i++] = (mempool_dref){ 0, tag | 1 };
    special[i++] = (mempool_dref){ t - 64, tag | 1 };
    special[i++] = (mempool_dref){ t, tag };
    special[i++] = (mempool_dref){ t, tag | 0xffffffffu };
    special[i++] = (mempool_dref){ t, tag | 0xfffffffeu };
    special[i++] = (mempool_dref){ t + s.max_objects * 64, tag | 1 };
    special[i++] = (mempool_dref){ t + s.max_objects * 64 - 64, tag | 1 };
    special[i++] = (mempool_dref){ t + 1, tag | 1 };
    special[i++] = (mempool_dref){ t + 32, tag | 1 };
    special[i++] = (mempool_dref){ UINT64_MAX, UINT64_MAX };
    special[i++] = (mempool_dref){ objs[0].r.off, (uint32_t)objs[0].r.gen };
    special[i++] = (mempool_dref){ objs[0].r.off, objs[0].r.gen ^ (1ull << 40) };
    special[i++] = (mempool_dref){ s.arena_bytes - 64, tag | 1 };
    special[i++] = (mempool_dref){ t - s.max_objects * 64, tag | 1 };
    special[i++] = (mempool_dref){ UINT64_MAX - 63, tag | 1 };
}

/* Read a DRef source; false when its text did not parse (op skipped). */
static bool source(rd *in, mempool_dref *r)
{
    char txt[48];
    uint8_t sel = u8(in), k, n;

    switch (sel & 7) {
    case FD_SRC_KNOWN:
        *r = objs[u8(in) % nobj].r;
        return true;
    case FD_SRC_GEN:
        *r = objs[u8(in) % nobj].r;
        r->gen ^= u32(in);
        return true;
    case FD_SRC_OFF:
        *r = objs[u8(in) % nobj].r;
        r->off += (uint64_t)(int64_t)(int16_t)u16(in);
        return true;
    case FD_SRC_RAW:
        r->off = u64(in);
        r->gen = u64(in);
        return true;
    case FD_SRC_TEXTMUT:
        k = u8(in);
        memset(txt, 0, sizeof txt);
        if (mempool_dref_format(objs[k % nobj].r, txt, sizeof txt) != 33)
            FAIL("dref_format did not write 33 characters");
        n = u8(in);
        txt[n % 36] = (char)u8(in);
        return mempool_dref_parse(txt, r) == 0;
    case FD_SRC_TEXT:
        n = u8(in) % 40;
        memset(txt, 0, sizeof txt);
        for (uint8_t i = 0; i < n; i++)
            txt[i] = (char)u8(in);
        return mempool_dref_parse(txt, r) == 0;
    case FD_SRC_STALE:
        *r = nstale ? stale[u8(in) % nstale] : objs[0].r;
        return true;
    default:
        *r = special[u8(in) % NSPECIAL];
        return true;
    }
}

/* ------------------------------------------------------------------ ops */

static void keep(int h, mempool_view *v)
{
    for (int i = 0; i < MAX_HELD; i++) {
        if (!held[i].used) {
            held[i].used = true;
            held[i].h = h;
            held[i].v = *v;
            return;
        }
    }
    if (mempool_release(H[h], v))
        FAIL("release of a fresh view failed");
}

static void op_release(rd *in, int h, unsigned extra)
{
    struct held *x = &held[u8(in) % MAX_HELD];
    mempool_view copy;
    int rc;

    (void)h;
    if (!x->used)
        return;
    copy = x->v;
    if (extra & 1) {
        rc = mempool_release(H[!x->h], &copy);
        if (rc == 0)
            FAIL("a view was released through the other handle");
        copy = x->v;
    }
    if ((rc = mempool_release(H[x->h], &x->v)))
        FAIL("release of a held view: %s", mempool_strerror(rc));
    x->used = false;
    if (extra & 2)
        (void)mempool_release(H[x->h], &copy);   /* stale copy: refused,
                                                    unless it is now some
                                                    other pin's cell */
}

static void get_file(int h, const mempool_fileref *f, mempool_dref r)
{
    mempool_view v;
    int rc = mempool_get_file(H[h], f, &v);

    if (rc)
        return;
    check_view(r, &v);
    if ((rc = mempool_release(H[h], &v)))
        FAIL("release of a get_file view: %s", mempool_strerror(rc));
}

static void op_new(rd *in, int h, unsigned extra, bool publish)
{
    uint64_t len = u16(in) % MAX_LEN;
    uint32_t flags = extra & 3;
    obj o;

    if (nobj >= MAX_OBJ)
        return;
    if (make(h, len, flags, publish, &o) == 0)
        objs[nobj++] = o;
}

static void op_get_obj(int h, unsigned extra, mempool_dref r)
{
    union {
        mempool_bytes b;
        mempool_array a;
        mempool_strings s;
        mempool_table t;
    } u;
    mempool_view v;
    uint32_t type = extra & 3;

    memset(&u, 0, sizeof u);
    if (mempool_get_obj(H[h], r, type, &u, &v))
        return;
    check_view(r, &v);
    if (type == MEMPOOL_TYPE_ARRAY)
        fnv(u.a.data, u.a.nbytes);
    if (mempool_release(H[h], &v))
        FAIL("release after get_obj");
}

static void op_forged(rd *in, int h)
{
    mempool_view v;

    v.data = (const void *)(uintptr_t)u64(in);
    v.len = u64(in);
    v.type = u32(in);
    v.flags = u32(in);
    for (int i = 0; i < 4; i++)
        v.priv[i] = u64(in);
    (void)mempool_release(H[h], &v);
}

static void run_op(rd *in)
{
    uint8_t b = u8(in);
    unsigned op = b & 15, h = (b >> 4) & 1, extra = b >> 5;
    mempool_fileref f;
    mempool_view v;
    mempool_info info;
    mempool_dref r, back;
    char txt[MEMPOOL_DREF_STRLEN];
    obj *o;
    int rc;

    switch (op) {
    case FD_OP_RELEASE:
        op_release(in, (int)h, extra);
        return;
    case FD_OP_RESERVE:
    case FD_OP_SET:
        op_new(in, (int)h, extra, op == FD_OP_SET);
        return;
    case FD_OP_FORGED:
        op_forged(in, (int)h);
        return;
    default:
        break;
    }
    if (!source(in, &r))
        return;
    o = lookup(r);
    switch (op) {
    case FD_OP_GET:
        if ((rc = mempool_get(H[h], r, &v)) == 0) {
            check_view(r, &v);
            keep((int)h, &v);
        }
        break;
    case FD_OP_INFO:
        if (mempool_info_get(H[h], r, &info) == 0) {
            if (!o || o->reserved || o->deleted)
                FAIL("info succeeded on an object that is not live");
            if (info.len != o->len)
                FAIL("info: len %llu, set %llu",
                     (unsigned long long)info.len, (unsigned long long)o->len);
        }
        break;
    case FD_OP_DELETE:
        if ((rc = mempool_delete(H[h], r)) == 0) {
            if (!o || o->reserved || o->deleted)
                FAIL("delete succeeded on an object that is not live");
            o->deleted = true;
        }
        break;
    case FD_OP_REF:
        if (mempool_ref(H[h], r) == 0) {
            if (!o || o->reserved || o->deleted)
                FAIL("ref succeeded on an object that is not live");
            o->refs[h]++;
        }
        break;
    case FD_OP_UNREF:
        if (mempool_unref(H[h], r) == 0) {
            if (!o)
                FAIL("unref succeeded on an unknown object");
            o->refs[h]--;       /* may go below 0: the pre-made reference */
        }
        break;
    case FD_OP_PUBLISH:
        if (mempool_publish(H[h], r) == 0) {
            if (!o || !o->reserved || o->by != (int)h)
                FAIL("publish succeeded on someone else's or no reservation");
            o->reserved = false;
        }
        break;
    case FD_OP_ABORT:
        if (mempool_abort(H[h], r) == 0) {
            if (!o || !o->reserved || o->by != (int)h)
                FAIL("abort succeeded on someone else's or no reservation");
            o->reserved = false;
            o->deleted = true;
            o->refs[h] = 0;     /* abort dropped the reservation's reference */
        }
        break;
    case FD_OP_MOVE:
    case FD_OP_COPY:
        memset(&f, 0, sizeof f);
        rc = op == FD_OP_MOVE ? mempool_move_to_disk(H[h], r, &f)
                              : mempool_copy_to_disk(H[h], r, &f);
        if (rc == 0 && (extra & 1))
            get_file((int)h, &f, r);
        break;
    case FD_OP_SAVE:
        if (mempool_save_to_disk(H[h], r, save_path, &f) == 0) {
            get_file((int)h, &f, r);
            unlink(save_path);
        }
        break;
    case FD_OP_GET_OBJ:
        op_get_obj((int)h, extra, r);
        break;
    case FD_OP_ROUNDTRIP:
        if (mempool_dref_format(r, txt, sizeof txt) != 33 ||
            mempool_dref_parse(txt, &back) || !same_bits(r, back))
            FAIL("DRef text round trip failed for %s", txt);
        if (mempool_dref_format(r, txt, sizeof txt - 1) != -ENOSPC)
            FAIL("dref_format into a short buffer did not fail");
        break;
    default:
        break;
    }
}

/* -------------------------------------------------------------- cleanup */

static void reopen(int h);

static void end_input(void)
{
    struct mempool_stats s;
    char why[256] = "";
    int rc;

    for (int i = 0; i < MAX_HELD; i++) {
        /* may fail: a forged or stale-copy release may have taken it */
        if (held[i].used)
            (void)mempool_release(H[held[i].h], &held[i].v);
        held[i].used = false;
    }
    for (int k = 0; k < nobj; k++) {
        obj *o = &objs[k];

        if (o->reserved && mempool_abort(H[o->by], o->r) == 0) {
            o->deleted = true;
            o->refs[o->by] = 0;
        }
        o->reserved = false;
        for (int h = 0; h < NH; h++)
            drop_refs(h, o);
        if (k >= FD_NPRE) {
            (void)mempool_delete(H[0], o->r);
            stale_add(o->r);
        }
    }
    nobj = FD_NPRE;
    /* References on refcounted objects deleted under them cannot be
     * dropped (unref: -ENOENT): they stay in the handle's cell table until
     * it closes, and enough of them make its gets and refs -ENOBUFS - a
     * library bug, reported. Reopen the handle before they fill it. */
    for (int h = 0; h < NH; h++)
        if (stuck[h] > 256)
            reopen(h);
    for (int k = 0; k < FD_NPRE; k++) {
        obj *o = &objs[k];

        if (pre_ok(k))
            continue;
        for (int h = 0; h < NH; h++)
            for (int i = 0; i < 1000 && mempool_unref(H[h], o->r) == 0; i++)
                ;
        (void)mempool_delete(H[0], o->r);
        stale_add(o->r);
        make_pre(k);
        if (!pre_ok(k))
            FAIL("pre-made object %d is not right after recreation", k);
    }
    for (int h = 0; h < NH; h++)
        mempool_flush(H[h]);
    if (mempool_stats_get(H[0], &s))
        FAIL("mempool_stats failed");
    if (s.pins != 0)
        FAIL("%llu pins left after every view was released",
             (unsigned long long)s.pins);
    if ((rc = mempool_check(H[0], why, sizeof why)))
        FAIL("mempool_check = %d (%s): %s", rc, mempool_strerror(rc), why);
}

/* ---------------------------------------------------------------- setup */

static void bye(void)
{
    for (int h = 0; h < NH; h++)
        if (H[h])
            mempool_close(H[h]);
    mempool_destroy(pool);
    t_rm_tree(spill_root);
}

static void open_handle(int h)
{
    mempool_options o;
    int rc;

    mempool_options_init(&o);
    o.arena_bytes = 16u << 20;
    o.spill_dir = spill_root;
    o.spiller = 0;               /* no background thread: reproducible */
    o.evict_wait_ms = 1;
    if ((rc = mempool_open(pool, &o, &H[h])))
        FAIL("mempool_open(%s): %s", pool, mempool_strerror(rc));
}

static void reopen(int h)
{
    mempool_close(H[h]);
    open_handle(h);
    stuck[h] = 0;
    if (h == 0)                  /* its reference went with the handle */
        objs[FD_PRE_REFCOUNTED].deleted = true;  /* recreated right after */
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    obj tmp;

    (void)argc;
    (void)argv;
    snprintf(pool, sizeof pool, "fuzz-dref-%d", (int)getpid());
    snprintf(spill_root, sizeof spill_root, "/tmp/fuzz-dref-%d.XXXXXX",
             (int)getpid());
    if (!mkdtemp(spill_root))
        FAIL("mkdtemp");
    snprintf(save_path, sizeof save_path, "%s/saved", spill_root);
    mempool_destroy(pool);
    for (int h = 0; h < NH; h++)
        open_handle(h);
    atexit(bye);
    for (int k = 0; k < FD_NPRE; k++)
        make_pre(k);
    nobj = FD_NPRE;
    for (int i = 0; i < 4; i++) {            /* a few stale DRefs */
        if (make(i & 1, 100, 0, true, &tmp))
            FAIL("set");
        mempool_delete(H[0], tmp.r);
        stale_add(tmp.r);
    }
    specials();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rd in = { data, size };
    int ops = 0;

    while (in.n && ops++ < 256)
        run_op(&in);
    end_input();
    return 0;
}
