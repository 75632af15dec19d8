/* SPDX-License-Identifier: MIT */
/*
 * check_codec.c - codecs: mempool_put_obj / mempool_get_obj / mempool_decode
 * for the built-in BYTES, ARRAY, STRINGS and TABLE types and user codecs.
 *
 * Issue semantics covered: 1 (the documented layout: header fields at their
 * offsets, 64-aligned sections, zero padding, position independence: a
 * column decodes alone and a copy decodes anywhere), 2 (exact round trips:
 * every dtype, bits, 20-byte and 0-byte records, empty arrays, zero-length
 * and 8 dimensions, scalars, strings with NULs and UTF-8, missing elements,
 * slices, a 1,000,000-element string column, tables with mixed columns and
 * non-power-of-two element sizes, a 1,000,000-row table, re-encoding a
 * decoded table), 4 (truncations, byte flips, forged offsets and lengths,
 * bad magic, version and byte order: MEMPOOL_ECORRUPT or -ENOTSUP, never a
 * crash; the cases found by fuzzing), 5 (type mismatch -EINVAL with nothing
 * left pinned; an unregistered user type still readable with mempool_get),
 * 6 (registry rules, per handle, thread-safe; the type travels with the
 * object to another process), and 3 (a spilled object, in this process
 * and another, and a saved file read back with mempool_get_file() +
 * mempool_decode(): decoded from the mapped file, pointers inside it).
 */
#include "helpers.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>


/* ------------------------------------------------------------- helpers */

static mempool_dref put(mempool *p, uint32_t type, const void *obj)
{
    mempool_dref r;

    ASSERT_RC(mempool_put_obj(p, type, obj, NULL, &r), 0);
    return r;
}

/* Little-endian reads at documented offsets. */
static uint64_t rd64(const void *b, uint64_t off)
{
    uint64_t v;
    memcpy(&v, (const uint8_t *)b + off, 8);
    return v;
}

static uint32_t rd32(const void *b, uint64_t off)
{
    uint32_t v;
    memcpy(&v, (const uint8_t *)b + off, 4);
    return v;
}

static void *aligned_copy(const void *src, uint64_t len)
{
    void *b = NULL;

    ck_assert_int_eq(posix_memalign(&b, 64, len ? len : 64), 0);
    if (len)
        memcpy(b, src, len);
    return b;
}

/* A copy of object @p r's bytes in a 64-aligned malloc'd buffer. */
static uint8_t *raw_copy(mempool *p, mempool_dref r, uint64_t *len)
{
    mempool_view v;
    uint8_t *b;

    ASSERT_RC(mempool_get(p, r, &v), 0);
    *len = v.len;
    b = aligned_copy(v.data, v.len);
    ASSERT_RC(mempool_release(p, &v), 0);
    return b;
}

static bool inside(const mempool_view *v, const void *ptr, uint64_t len)
{
    const uint8_t *a = v->data, *b = ptr;
    return b >= a && b <= a + v->len && len <= (uint64_t)(a + v->len - b);
}

/* The common header checks of semantics 1 for an object of @p type. */
static void check_header(const void *b, uint64_t len, uint32_t type,
                         uint64_t count)
{
    ck_assert(memcmp(b, "MOBJ", 4) == 0);
    ck_assert_uint_eq(rd32(b, 4) & 0xffff, 1);       /* format version */
    ck_assert_uint_eq(((const uint8_t *)b)[6], 1);   /* little-endian */
    ck_assert_uint_eq(((const uint8_t *)b)[7], 1);   /* 64-byte header */
    ck_assert_uint_eq(rd32(b, 8), type);
    ck_assert_uint_eq(rd64(b, 16), len);             /* total length */
    ck_assert_uint_eq(rd64(b, 24), count);
}

static bool all_zero(const uint8_t *b, uint64_t from, uint64_t to)
{
    for (uint64_t i = from; i < to; i++)
        if (b[i])
            return false;
    return true;
}

/* --------------------------------------------------------------- bytes */

START_TEST(test_bytes)
{
    static const char msg[] = "plain\0bytes";
    mempool_bytes in = {msg, sizeof msg}, out;
    mempool_dref r, r0;
    mempool_view v;

    r = put(t_pool, MEMPOOL_TYPE_BYTES, &in);
    ASSERT_RC(mempool_get_obj(t_pool, r, MEMPOOL_TYPE_BYTES, &out, &v), 0);
    ck_assert_uint_eq(out.len, sizeof msg);
    ck_assert(memcmp(out.data, msg, sizeof msg) == 0);
    ck_assert_ptr_eq(out.data, v.data);   /* no header: the object is it */
    ck_assert_uint_eq(v.type, MEMPOOL_TYPE_BYTES);
    ASSERT_RC(mempool_release(t_pool, &v), 0);

    /* mempool_put objects are BYTES objects */
    ASSERT_RC(mempool_put(t_pool, msg, 5, &r0), 0);
    ASSERT_RC(mempool_get_obj(t_pool, r0, MEMPOOL_TYPE_BYTES, &out, &v), 0);
    ck_assert_uint_eq(out.len, 5);
    ck_assert(memcmp(out.data, "plain", 5) == 0);
    ASSERT_RC(mempool_release(t_pool, &v), 0);

    in.data = NULL;
    in.len = 0;
    r = put(t_pool, MEMPOOL_TYPE_BYTES, &in);
    ASSERT_RC(mempool_get_obj(t_pool, r, MEMPOOL_TYPE_BYTES, &out, &v), 0);
    ck_assert_uint_eq(out.len, 0);
    ASSERT_RC(mempool_release(t_pool, &v), 0);
    in.len = 3;                            /* NULL data with a length */
    ASSERT_RC(mempool_put_obj(t_pool, MEMPOOL_TYPE_BYTES, &in, NULL, &r),
              -EINVAL);
    t_assert_healthy(t_pool);
}
END_TEST

/* --------------------------------------------------------------- array */

static mempool_array arr1(uint32_t dtype, const void *data, uint64_t n)
{
    mempool_array a = {0};
    a.dtype = dtype;
    a.ndim = 1;
    a.shape[0] = n;
    a.data = data;
    return a;
}

/* Round-trip @p in through the pool and compare everything. Returns the
 * object's length. */
static uint64_t array_roundtrip(const mempool_array *in, uint64_t esz)
{
    mempool_dref r = put(t_pool, MEMPOOL_TYPE_ARRAY, in);
    uint64_t count = 1, nbytes;
    mempool_array out;
    mempool_view v;
    mempool_info info;

    for (uint32_t i = 0; i < in->ndim; i++)
        count *= in->shape[i];
    nbytes = in->dtype == MEMPOOL_DTYPE_BITS ? (count + 7) / 8 : count * esz;
    ASSERT_RC(mempool_get_obj(t_pool, r, MEMPOOL_TYPE_ARRAY, &out, &v), 0);
    ck_assert_uint_eq(v.type, MEMPOOL_TYPE_ARRAY);
    ASSERT_RC(mempool_info_get(t_pool, r, &info), 0);
    ck_assert_uint_eq(info.type, MEMPOOL_TYPE_ARRAY);
    ck_assert_uint_eq(out.dtype, in->dtype);
    ck_assert_uint_eq(out.ndim, in->ndim);
    for (uint32_t i = 0; i < MEMPOOL_ARRAY_MAXDIM; i++)
        ck_assert_uint_eq(out.shape[i], i < in->ndim ? in->shape[i] : 0);
    ck_assert_uint_eq(out.elem_size, esz);
    ck_assert_uint_eq(out.flags, in->flags);
    ck_assert_uint_eq(out.count, count);
    ck_assert_uint_eq(out.nbytes, nbytes);
    ck_assert_ptr_nonnull(out.data);
    ck_assert(inside(&v, out.data, nbytes));
    ck_assert_uint_eq((uintptr_t)out.data % 64, 0);
    if (in->dtype != MEMPOOL_DTYPE_BITS && nbytes)
        ck_assert(memcmp(out.data, in->data, nbytes) == 0);
    check_header(v.data, v.len, MEMPOOL_TYPE_ARRAY, count);
    ck_assert_uint_eq(v.len, 128 + nbytes);
    ck_assert_uint_eq(rd32(v.data, 12), 0);          /* codec version */
    ck_assert_uint_eq(rd64(v.data, 56), nbytes ? 128 : 0); /* data offset */
    ck_assert(t_in_pool_mapping(t_name, out.data, nbytes));
    ASSERT_RC(mempool_release(t_pool, &v), 0);
    ck_assert_int_eq(t_pins(t_pool, r), 0);
    return 128 + nbytes;
}

START_TEST(test_array_f64_and_dtypes)
{
    static const struct { uint32_t dt; uint64_t size; } dts[] = {
        {MEMPOOL_DTYPE_INT8, 1},    {MEMPOOL_DTYPE_INT16, 2},
        {MEMPOOL_DTYPE_INT32, 4},   {MEMPOOL_DTYPE_INT64, 8},
        {MEMPOOL_DTYPE_UINT8, 1},   {MEMPOOL_DTYPE_UINT16, 2},
        {MEMPOOL_DTYPE_UINT32, 4},  {MEMPOOL_DTYPE_UINT64, 8},
        {MEMPOOL_DTYPE_FLOAT32, 4}, {MEMPOOL_DTYPE_FLOAT64, 8},
        {MEMPOOL_DTYPE_BOOL, 1},
    };
    double f[10];
    uint8_t raw[8 * 37];
    uint64_t seed = 42;
    mempool_array a;

    for (int i = 0; i < 10; i++)
        f[i] = (double)t_rand(&seed) / 3.0;
    a = arr1(MEMPOOL_DTYPE_FLOAT64, f, 10);
    ck_assert_uint_eq(array_roundtrip(&a, 8), 128 + 80);
    t_fill(raw, sizeof raw, 7);
    for (size_t i = 0; i < sizeof dts / sizeof dts[0]; i++) {
        a = arr1(dts[i].dt, raw, 37);
        array_roundtrip(&a, dts[i].size);
        a.elem_size = dts[i].size;        /* explicit size is accepted */
        array_roundtrip(&a, dts[i].size);
    }
}
END_TEST

START_TEST(test_array_bits)
{
    uint8_t bits[2] = {0xa5, 0xff}, want1 = 0x03;   /* 10 bits, 6 junk */
    mempool_array a = arr1(MEMPOOL_DTYPE_BITS, bits, 10), out;
    mempool_dref r;
    mempool_view v;

    array_roundtrip(&a, 0);
    r = put(t_pool, MEMPOOL_TYPE_ARRAY, &a);
    ASSERT_RC(mempool_get_obj(t_pool, r, MEMPOOL_TYPE_ARRAY, &out, &v), 0);
    ck_assert_uint_eq(out.nbytes, 2);
    ck_assert_uint_eq(((const uint8_t *)out.data)[0], 0xa5);
    ck_assert_uint_eq(((const uint8_t *)out.data)[1], want1); /* tail zero */
    ASSERT_RC(mempool_release(t_pool, &v), 0);
    a.elem_size = 1;                       /* BITS has no element size */
    ASSERT_RC(mempool_put_obj(t_pool, MEMPOOL_TYPE_ARRAY, &a, NULL, &r),
              -EINVAL);
}
END_TEST

START_TEST(test_array_records)
{
    enum { N20 = 10, N75 = 100 };
    uint8_t rec20[N20 * 20];
    double *rec75 = malloc(N75 * 75 * sizeof(double));
    mempool_array a;

    ck_assert_ptr_nonnull(rec75);
    t_fill(rec20, sizeof rec20, 3);
    t_fill(rec75, N75 * 75 * sizeof(double), 4);
    a = arr1(MEMPOOL_DTYPE_RECORD, rec20, N20);
    a.elem_size = 20;
    array_roundtrip(&a, 20);
    a = arr1(MEMPOOL_DTYPE_RECORD, rec75, N75);
    a.elem_size = 75 * sizeof(double);
    ck_assert_uint_eq(array_roundtrip(&a, 600), 128 + 60000);
    /* 10 elements of size 0 and 4 empty records: count kept, no data */
    a = arr1(MEMPOOL_DTYPE_RECORD, NULL, 10);
    a.elem_size = 0;
    ck_assert_uint_eq(array_roundtrip(&a, 0), 128);
    a.shape[0] = 4;
    array_roundtrip(&a, 0);
    /* a record with a size not a power of two: 3 bytes */
    a = arr1(MEMPOOL_DTYPE_RECORD, rec20, 6);
    a.elem_size = 3;
    array_roundtrip(&a, 3);
    free(rec75);
}
END_TEST

START_TEST(test_array_shapes)
{
    int32_t m[2][3] = {{1, 2, 3}, {4, 5, 6}};
    uint8_t cube[256];
    mempool_array a = {0};
    mempool_dref r;
    uint64_t objects;

    a = arr1(MEMPOOL_DTYPE_FLOAT64, NULL, 0);          /* empty */
    ck_assert_uint_eq(array_roundtrip(&a, 8), 128);
    a.ndim = 3;                                        /* {3, 0, 5} */
    a.shape[0] = 3, a.shape[1] = 0, a.shape[2] = 5;
    array_roundtrip(&a, 8);
    a = arr1(MEMPOOL_DTYPE_INT32, m, 2);               /* 2x3, col-major */
    a.ndim = 2;
    a.shape[1] = 3;
    a.flags = MEMPOOL_ARRAY_COLMAJOR;
    array_roundtrip(&a, 4);
    a.flags = 0;
    array_roundtrip(&a, 4);
    a.ndim = 0;                                        /* a scalar */
    array_roundtrip(&a, 4);
    t_fill(cube, sizeof cube, 9);                      /* 8 dims of 2 */
    a = arr1(MEMPOOL_DTYPE_UINT8, cube, 2);
    a.ndim = 8;
    for (int i = 0; i < 8; i++)
        a.shape[i] = 2;
    array_roundtrip(&a, 1);
    objects = t_stats(t_pool).objects;
    a.ndim = 9;
    ASSERT_RC(mempool_put_obj(t_pool, MEMPOOL_TYPE_ARRAY, &a, NULL, &r),
              -EINVAL);
    a.ndim = 1;
    a.dtype = 99;
    ASSERT_RC(mempool_put_obj(t_pool, MEMPOOL_TYPE_ARRAY, &a, NULL, &r),
              -EINVAL);
    a.dtype = MEMPOOL_DTYPE_INT64;
    a.elem_size = 4;                                   /* wrong size */
    ASSERT_RC(mempool_put_obj(t_pool, MEMPOOL_TYPE_ARRAY, &a, NULL, &r),
              -EINVAL);
    a.elem_size = 0;
    a.flags = 0x80;
    ASSERT_RC(mempool_put_obj(t_pool, MEMPOOL_TYPE_ARRAY, &a, NULL, &r),
              -EINVAL);
    a = arr1(MEMPOOL_DTYPE_UINT8, NULL, 5);            /* data missing */
    ASSERT_RC(mempool_put_obj(t_pool, MEMPOOL_TYPE_ARRAY, &a, NULL, &r),
              -EINVAL);
    a.ndim = 2;                                        /* count overflow */
    a.data = cube;
    a.shape[0] = a.shape[1] = 1ull << 33;
    ASSERT_RC(mempool_put_obj(t_pool, MEMPOOL_TYPE_ARRAY, &a, NULL, &r),
              -E2BIG);
    a.ndim = 1;                                        /* bytes overflow */
    a.dtype = MEMPOOL_DTYPE_INT64;
    a.shape[0] = 1ull << 62;
    ASSERT_RC(mempool_put_obj(t_pool, MEMPOOL_TYPE_ARRAY, &a, NULL, &r),
              -E2BIG);
    a.shape[0] = 1ull << 40;                           /* > the arena */
    ASSERT_RC(mempool_put_obj(t_pool, MEMPOOL_TYPE_ARRAY, &a, NULL, &r),
              -E2BIG);
    ck_assert_uint_eq(t_stats(t_pool).objects, objects); /* none left */
    t_assert_healthy(t_pool);
}
END_TEST

/* ------------------------------------------------------------- strings */

/* A string column built in test memory. */
typedef struct col {
    uint64_t  n, cap;
    uint64_t *off;
    uint8_t  *blob, *valid;
    uint64_t  blob_len, blob_cap;
} col;

static void col_init(col *c, uint64_t cap)
{
    memset(c, 0, sizeof *c);
    c->cap = cap;
    c->off = calloc(cap + 1, 8);
    c->valid = calloc(cap / 8 + 1, 1);
    c->blob_cap = 64;
    c->blob = malloc(c->blob_cap);
    ck_assert(c->off && c->valid && c->blob);
}

static void col_add(col *c, const void *s, uint64_t len, bool present)
{
    ck_assert_uint_lt(c->n, c->cap);
    if (!present)
        len = 0;
    while (c->blob_len + len > c->blob_cap) {
        c->blob_cap *= 2;
        ck_assert_ptr_nonnull(c->blob = realloc(c->blob, c->blob_cap));
    }
    memcpy(c->blob + c->blob_len, s, len);
    c->blob_len += len;
    if (present)
        c->valid[c->n / 8] |= (uint8_t)(1u << (c->n % 8));
    c->off[++c->n] = c->blob_len;
}

static mempool_strings col_view(const col *c, bool with_validity)
{
    mempool_strings s = {c->n, c->off, c->blob,
                         with_validity ? c->valid : NULL};
    return s;
}

static void col_free(col *c)
{
    free(c->off);
    free(c->blob);
    free(c->valid);
}

/* Element by element equality of a decoded column with the source. (One
 * ck_assert per column: in fork mode each ck_assert is a pipe write.) */
static bool element_equal(const mempool_strings *got,
                          const mempool_strings *want, uint64_t i)
{
    uint64_t gl, wl;
    const uint8_t *g = mempool_strings_at(got, i, &gl);
    const uint8_t *w = mempool_strings_at(want, i, &wl);

    return mempool_strings_missing(got, i) == mempool_strings_missing(want, i)
           && gl == wl && (g == NULL) == (w == NULL) &&
           (!gl || memcmp(g, w, gl) == 0);
}

static void strings_equal(const mempool_strings *got,
                          const mempool_strings *want)
{
    uint64_t i = 0;

    ck_assert_uint_eq(got->n, want->n);
    while (i < want->n && element_equal(got, want, i))
        i++;
    ck_assert_msg(i == want->n, "element %" PRIu64 " differs", i);
}

/* set, get, compare, check the layout; returns the DRef (released). */
static mempool_dref strings_roundtrip(mempool *p, const char *pool,
                                      const mempool_strings *in)
{
    mempool_dref r = put(p, MEMPOOL_TYPE_STRINGS, in);
    mempool_strings out;
    mempool_view v;
    uint64_t blob_len;

    ASSERT_RC(mempool_get_obj(p, r, MEMPOOL_TYPE_STRINGS, &out, &v), 0);
    strings_equal(&out, in);
    check_header(v.data, v.len, MEMPOOL_TYPE_STRINGS, in->n);
    blob_len = out.offsets[out.n];
    ck_assert_uint_eq(out.offsets[0], 0);
    ck_assert_uint_eq(rd64(v.data, 40), 64);
    ck_assert_uint_eq((uint64_t)((const uint8_t *)out.offsets -
                                 (const uint8_t *)v.data), 64);
    ck_assert_uint_eq((uintptr_t)out.blob % 64, 0);
    ck_assert(inside(&v, out.offsets, 8 * (out.n + 1)));
    ck_assert(inside(&v, out.blob, blob_len));
    ck_assert_uint_eq(v.len, (uint64_t)(out.blob - (const uint8_t *)v.data) +
                                 blob_len);
    ck_assert((out.validity == NULL) == (in->validity == NULL));
    if (out.validity) {
        ck_assert_uint_eq((uintptr_t)out.validity % 64, 0);
        ck_assert(inside(&v, out.validity, (out.n + 7) / 8));
        if (out.n % 8)
            ck_assert_uint_eq(out.validity[out.n / 8] >> (out.n % 8), 0);
    }
    ck_assert(t_in_pool_mapping(pool, v.data, v.len));
    ASSERT_RC(mempool_release(p, &v), 0);
    return r;
}

START_TEST(test_strings_basic)
{
    static const char *four[] = {"a", "bcdefghij", "klm", "nopq"};
    col c;

    col_init(&c, 16);
    for (int i = 0; i < 4; i++)
        col_add(&c, four[i], strlen(four[i]), true);
    mempool_strings s = col_view(&c, false);
    strings_roundtrip(t_pool, t_name, &s);
    col_free(&c);

    /* {"foo", missing}: element 1 stays missing, not "" */
    col_init(&c, 4);
    col_add(&c, "foo", 3, true);
    col_add(&c, "", 0, false);
    col_add(&c, "", 0, true);
    s = col_view(&c, true);
    mempool_dref r = strings_roundtrip(t_pool, t_name, &s);
    mempool_strings out;
    mempool_view v;
    uint64_t len;
    ASSERT_RC(mempool_get_obj(t_pool, r, MEMPOOL_TYPE_STRINGS, &out, &v), 0);
    ck_assert(!mempool_strings_missing(&out, 0));
    ck_assert(mempool_strings_missing(&out, 1));
    ck_assert_ptr_null(mempool_strings_at(&out, 1, &len));
    ck_assert(!mempool_strings_missing(&out, 2));
    ck_assert_ptr_nonnull(mempool_strings_at(&out, 2, &len));   /* "" */
    ck_assert_uint_eq(len, 0);
    ASSERT_RC(mempool_release(t_pool, &v), 0);
    col_free(&c);

    /* empty column, with and without a bitmap */
    col_init(&c, 1);
    s = col_view(&c, false);
    strings_roundtrip(t_pool, t_name, &s);
    s = col_view(&c, true);
    strings_roundtrip(t_pool, t_name, &s);
    col_free(&c);
}
END_TEST

START_TEST(test_strings_bytes_exact)
{
    static const char nul[] = "a\0b\0\0c";
    static const char utf8[] = "h\xc3\xa9llo w\xc3\xb6rld \xe2\x82\xac "
                               "\xf0\x9f\x98\x80 \xe6\x97\xa5\xe6\x9c\xac";
    static const char high[] = "\xff\xfe\x80\x00\x01";
    col c;

    col_init(&c, 8);
    col_add(&c, nul, sizeof nul - 1, true);
    col_add(&c, utf8, sizeof utf8 - 1, true);
    col_add(&c, high, sizeof high - 1, true);
    col_add(&c, "\0", 1, true);
    col_add(&c, "", 0, false);
    mempool_strings s = col_view(&c, true);
    strings_roundtrip(t_pool, t_name, &s);
    col_free(&c);
}
END_TEST

START_TEST(test_strings_slice_and_errors)
{
    static const uint8_t blob[] = "xxabcdefgh";
    uint64_t off[] = {2, 4, 4, 7, 10};        /* "ab" "" "cde" "fgh" */
    uint64_t bad[] = {2, 4, 3, 7, 10};
    uint8_t valid = 0x0f, miss = 0x0d;        /* element 1 missing */
    mempool_strings s = {4, off, blob, NULL}, out;
    uint64_t objects, used;
    mempool_dref r;
    mempool_view v;
    uint64_t len;

    r = strings_roundtrip(t_pool, t_name, &s);
    ASSERT_RC(mempool_get_obj(t_pool, r, MEMPOOL_TYPE_STRINGS, &out, &v), 0);
    ck_assert_uint_eq(out.offsets[4], 8);     /* rebased: blob is 8 bytes */
    ck_assert(memcmp(mempool_strings_at(&out, 3, &len), "fgh", 3) == 0);
    ASSERT_RC(mempool_release(t_pool, &v), 0);
    s.validity = &valid;
    strings_roundtrip(t_pool, t_name, &s);
    s.validity = &miss;                       /* missing element 1 is "" */
    strings_roundtrip(t_pool, t_name, &s);

    objects = t_stats(t_pool).objects;
    used = t_stats(t_pool).used_bytes;
    s.validity = NULL;
    s.offsets = bad;                          /* decreasing offsets */
    ASSERT_RC(mempool_put_obj(t_pool, MEMPOOL_TYPE_STRINGS, &s, NULL, &r),
              -EINVAL);
    miss = 0x0b;                              /* missing but not empty */
    s.offsets = off;
    s.validity = &miss;
    ASSERT_RC(mempool_put_obj(t_pool, MEMPOOL_TYPE_STRINGS, &s, NULL, &r),
              -EINVAL);
    s.validity = NULL;
    s.offsets = NULL;
    ASSERT_RC(mempool_put_obj(t_pool, MEMPOOL_TYPE_STRINGS, &s, NULL, &r),
              -EINVAL);
    s.offsets = off;
    s.blob = NULL;
    ASSERT_RC(mempool_put_obj(t_pool, MEMPOOL_TYPE_STRINGS, &s, NULL, &r),
              -EINVAL);
    ck_assert_uint_eq(t_stats(t_pool).objects, objects);  /* no leftovers */
    ck_assert_uint_eq(t_stats(t_pool).used_bytes, used);
    t_assert_healthy(t_pool);
}
END_TEST

/* A column of @p n varied strings: 0..23 bytes, some with NULs or UTF-8,
 * every 7th missing. */
static void big_column(col *c, uint64_t n)
{
    static const char pieces[] = "ab\0c\xc3\xa9\xe2\x82\xac-xyz0123456789";
    uint64_t seed = 1234567;
    char buf[24];

    col_init(c, n);
    for (uint64_t i = 0; i < n; i++) {
        uint64_t x = t_rand(&seed), len = x % 24;
        for (uint64_t k = 0; k < len; k++)
            buf[k] = pieces[((x >> 8) + k) % (sizeof pieces - 1)];
        col_add(c, buf, len, i % 7 != 3);
    }
}

START_TEST(test_strings_million)
{
    enum { N = 1000000 };
    char name[T_NAME_LEN];
    mempool *p;
    col c;

    t_pool_name(name, "codec");
    ASSERT_RC(t_open(name, 256 * MiB, &p), 0);
    big_column(&c, N);
    mempool_strings s = col_view(&c, true);
    strings_roundtrip(p, name, &s);
    s.validity = NULL;                       /* same offsets, all present */
    for (uint64_t i = 3; i < N; i += 7)
        if (c.off[i + 1] != c.off[i])
            ck_abort_msg("missing element %" PRIu64 " not empty", i);
    strings_roundtrip(p, name, &s);
    col_free(&c);
    t_assert_healthy(p);
    ASSERT_RC(mempool_close(p), 0);
    mempool_destroy(name);
}
END_TEST

/* --------------------------------------------------------------- table */

typedef struct rec3 { uint8_t b[3]; } rec3;

/* A mixed table of @p rows rows (the caller frees what it points to). */
typedef struct mixed {
    int64_t  *i64;
    double   *f64;
    uint8_t  *r20, *bits;
    rec3     *r3;
    col       s;
    mempool_column cols[6];
    mempool_table  t;
} mixed;

static void mixed_init(mixed *m, uint64_t rows)
{
    static const char *names[] = {"id", "price", "blob20", "flag",
                                  "rgb", "name"};
    m->i64 = malloc(rows * 8 + 1);
    m->f64 = malloc(rows * 8 + 1);
    m->r20 = malloc(rows * 20 + 1);
    m->bits = calloc(rows / 8 + 1, 1);
    m->r3 = malloc(rows * 3 + 1);
    ck_assert(m->i64 && m->f64 && m->r20 && m->bits && m->r3);
    for (uint64_t i = 0; i < rows; i++) {
        m->i64[i] = (int64_t)i * 3 - 7;
        m->f64[i] = (double)i / 4.0;
        m->bits[i / 8] |= (uint8_t)((i % 3 == 0) << (i % 8));
        m->r3[i].b[0] = (uint8_t)i, m->r3[i].b[1] = 1, m->r3[i].b[2] = 2;
    }
    t_fill(m->r20, rows * 20, rows);
    big_column(&m->s, rows);
    memset(m->cols, 0, sizeof m->cols);
    for (int k = 0; k < 6; k++) {
        m->cols[k].name = names[k];
        m->cols[k].type = MEMPOOL_TYPE_ARRAY;
    }
    m->cols[0].array = arr1(MEMPOOL_DTYPE_INT64, m->i64, rows);
    m->cols[1].array = arr1(MEMPOOL_DTYPE_FLOAT64, m->f64, rows);
    m->cols[2].array = arr1(MEMPOOL_DTYPE_RECORD, m->r20, rows);
    m->cols[2].array.elem_size = 20;
    m->cols[3].array = arr1(MEMPOOL_DTYPE_BITS, m->bits, rows);
    m->cols[4].array = arr1(MEMPOOL_DTYPE_RECORD, m->r3, rows);
    m->cols[4].array.elem_size = 3;
    m->cols[5].type = MEMPOOL_TYPE_STRINGS;
    m->cols[5].strings = col_view(&m->s, true);
    m->t = (mempool_table){.nrows = rows, .ncols = 6, .cols = m->cols};
}

static void mixed_free(mixed *m)
{
    free(m->i64);
    free(m->f64);
    free(m->r20);
    free(m->bits);
    free(m->r3);
    col_free(&m->s);
}

static void column_equal(const mempool_column *got, const mempool_column *want,
                         const mempool_view *v)
{
    ck_assert_str_eq(got->name, want->name);
    ck_assert_uint_eq(got->name_len, strlen(want->name));
    ck_assert_uint_eq(got->type, want->type);
    if (want->type == MEMPOOL_TYPE_STRINGS) {
        strings_equal(&got->strings, &want->strings);
        ck_assert(inside(v, got->strings.blob,
                         got->strings.offsets[got->strings.n]));
        return;
    }
    ck_assert_uint_eq(got->array.dtype, want->array.dtype);
    ck_assert_uint_eq(got->array.ndim, 1);
    ck_assert_uint_eq(got->array.shape[0], want->array.shape[0]);
    ck_assert_uint_eq((uintptr_t)got->array.data % 64, 0);
    ck_assert(inside(v, got->array.data, got->array.nbytes));
    if (got->array.nbytes)
        ck_assert(memcmp(got->array.data, want->array.data,
                         got->array.nbytes) == 0);
}

static void table_roundtrip(mempool *p, const mempool_table *in)
{
    mempool_dref r = put(p, MEMPOOL_TYPE_TABLE, in), r2;
    mempool_table out;
    mempool_column c;
    mempool_view v, v2;

    ASSERT_RC(mempool_get_obj(p, r, MEMPOOL_TYPE_TABLE, &out, &v), 0);
    check_header(v.data, v.len, MEMPOOL_TYPE_TABLE, in->nrows);
    ck_assert_uint_eq(out.nrows, in->nrows);
    ck_assert_uint_eq(out.ncols, in->ncols);
    ck_assert_ptr_null(out.cols);
    for (uint64_t i = 0; i < in->ncols; i++) {
        ASSERT_RC(mempool_table_column(&out, i, &c), 0);
        column_equal(&c, &in->cols[i], &v);
        ASSERT_RC(mempool_table_find(&out, in->cols[i].name, &c), 0);
        ck_assert_str_eq(c.name, in->cols[i].name);
    }
    ASSERT_RC(mempool_table_column(&out, in->ncols, &c), -EINVAL);
    ASSERT_RC(mempool_table_find(&out, "no such column", &c), -ENOENT);
    /* a decoded table encodes again to the same bytes */
    r2 = put(p, MEMPOOL_TYPE_TABLE, &out);
    ASSERT_RC(mempool_get(p, r2, &v2), 0);
    ck_assert_uint_eq(v2.len, v.len);
    ck_assert(memcmp(v2.data, v.data, v.len) == 0);
    ASSERT_RC(mempool_release(p, &v2), 0);
    ASSERT_RC(mempool_release(p, &v), 0);
    ck_assert_int_eq(t_pins(p, r), 0);
}

START_TEST(test_table_mixed)
{
    mixed m;
    mempool_table t0 = {0};

    for (uint64_t rows = 0; rows < 20; rows += 7) {
        mixed_init(&m, rows);
        table_roundtrip(t_pool, &m.t);
        mixed_free(&m);
    }
    table_roundtrip(t_pool, &t0);               /* no columns */
    t0.nrows = 5;
    table_roundtrip(t_pool, &t0);
    t_assert_healthy(t_pool);
}
END_TEST

START_TEST(test_table_layout)
{
    mixed m;
    mempool_dref r;
    mempool_view v;
    const uint8_t *b;
    uint64_t prev_end;

    mixed_init(&m, 13);
    r = put(t_pool, MEMPOOL_TYPE_TABLE, &m.t);
    ASSERT_RC(mempool_get(t_pool, r, &v), 0);
    b = v.data;
    ck_assert_uint_eq(rd64(b, 40), 6);           /* F0: columns */
    ck_assert_uint_eq(rd64(b, 48), 64);          /* F1: directory */
    ck_assert_uint_eq(rd64(b, 56), 0);
    prev_end = 64 + 6 * 32;                      /* names follow */
    for (int i = 0; i < 6; i++)
        prev_end += strlen(m.cols[i].name) + 1;
    for (int i = 0; i < 6; i++) {
        uint64_t name_off = rd64(b, 64 + 32 * i), name_len =
            rd64(b, 72 + 32 * i), off = rd64(b, 80 + 32 * i),
            len = rd64(b, 88 + 32 * i);
        mempool_column c;
        void *copy;
        ck_assert_uint_eq(name_len, strlen(m.cols[i].name));
        ck_assert(memcmp(b + name_off, m.cols[i].name, name_len + 1) == 0);
        ck_assert_uint_eq(off % 64, 0);
        ck_assert_uint_ge(off, prev_end);
        ck_assert(all_zero(b, prev_end, off));   /* padding is zero */
        prev_end = off + len;
        /* a column is a whole object: it decodes alone, anywhere */
        copy = aligned_copy(b + off, len);
        c = m.cols[i];
        c.name_len = name_len;
        ASSERT_RC(mempool_decode(NULL, rd32(b + off, 8), copy, len,
                                 &c.array), 0);
        column_equal(&c, &m.cols[i], &(mempool_view){.data = copy,
                                                     .len = len});
        free(copy);
    }
    ck_assert_uint_eq(prev_end, v.len);
    ASSERT_RC(mempool_release(t_pool, &v), 0);
    mixed_free(&m);
}
END_TEST

START_TEST(test_table_errors)
{
    mixed m;
    mempool_dref r;
    uint64_t objects;

    mixed_init(&m, 10);
    objects = t_stats(t_pool).objects;
    m.cols[1].array.shape[0] = 9;                /* unequal lengths */
    ASSERT_RC(mempool_put_obj(t_pool, MEMPOOL_TYPE_TABLE, &m.t, NULL, &r),
              -EINVAL);
    m.cols[1].array.shape[0] = 10;
    m.cols[5].strings.n = 11;
    ASSERT_RC(mempool_put_obj(t_pool, MEMPOOL_TYPE_TABLE, &m.t, NULL, &r),
              -EINVAL);
    m.cols[5].strings.n = 10;
    m.cols[0].array.ndim = 2;                    /* not 1-d */
    m.cols[0].array.shape[0] = 5;
    m.cols[0].array.shape[1] = 2;
    ASSERT_RC(mempool_put_obj(t_pool, MEMPOOL_TYPE_TABLE, &m.t, NULL, &r),
              -EINVAL);
    m.cols[0].array.ndim = 1;
    m.cols[0].array.shape[0] = 10;
    m.cols[2].type = MEMPOOL_TYPE_TABLE;         /* no nesting */
    ASSERT_RC(mempool_put_obj(t_pool, MEMPOOL_TYPE_TABLE, &m.t, NULL, &r),
              -EINVAL);
    m.cols[2].type = MEMPOOL_TYPE_ARRAY;
    m.cols[3].name = NULL;
    ASSERT_RC(mempool_put_obj(t_pool, MEMPOOL_TYPE_TABLE, &m.t, NULL, &r),
              -EINVAL);
    m.cols[3].name = "flag";
    m.t.cols = NULL;                             /* columns missing */
    ASSERT_RC(mempool_put_obj(t_pool, MEMPOOL_TYPE_TABLE, &m.t, NULL, &r),
              -EINVAL);
    ck_assert_uint_eq(t_stats(t_pool).objects, objects);
    m.t.cols = m.cols;
    table_roundtrip(t_pool, &m.t);
    mixed_free(&m);
}
END_TEST

START_TEST(test_table_million)
{
    enum { N = 1000000 };
    char name[T_NAME_LEN];
    mempool *p;
    mixed m;

    t_pool_name(name, "codec");
    ASSERT_RC(t_open(name, 512 * MiB, &p), 0);
    mixed_init(&m, N);
    table_roundtrip(p, &m.t);
    mixed_free(&m);
    t_assert_healthy(p);
    ASSERT_RC(mempool_close(p), 0);
    mempool_destroy(name);
}
END_TEST

/* --------------------------------------------------------- type checks */

START_TEST(test_type_mismatch)
{
    int64_t x[3] = {1, 2, 3};
    mempool_array a = arr1(MEMPOOL_DTYPE_INT64, x, 3);
    mempool_put_options o = {0};
    mempool_strings s;
    mempool_array out;
    mempool_view v;
    mempool_dref r, rb;

    r = put(t_pool, MEMPOOL_TYPE_ARRAY, &a);
    memset(&v, 0xab, sizeof v);
    ASSERT_RC(mempool_get_obj(t_pool, r, MEMPOOL_TYPE_STRINGS, &s, &v),
              -EINVAL);
    ck_assert_ptr_null(v.data);                  /* cleared */
    ck_assert_int_eq(t_pins(t_pool, r), 0);      /* nothing pinned */
    ASSERT_RC(mempool_get_obj(t_pool, r, MEMPOOL_TYPE_BYTES, &s, &v),
              -EINVAL);
    ASSERT_RC(mempool_put(t_pool, x, sizeof x, &rb), 0);
    ASSERT_RC(mempool_get_obj(t_pool, rb, MEMPOOL_TYPE_ARRAY, &out, &v),
              -EINVAL);
    ck_assert_int_eq(t_pins(t_pool, rb), 0);
    o.type = MEMPOOL_TYPE_STRINGS;               /* options disagree */
    ASSERT_RC(mempool_put_obj(t_pool, MEMPOOL_TYPE_ARRAY, &a, &o, &r),
              -EINVAL);
    o.type = MEMPOOL_TYPE_ARRAY;                 /* agree: fine */
    o.flags = MEMPOOL_PUT_REFCOUNTED;
    ASSERT_RC(mempool_put_obj(t_pool, MEMPOOL_TYPE_ARRAY, &a, &o, &r), 0);
    ck_assert_int_eq(t_refs(t_pool, r), 1);
    ASSERT_RC(mempool_put_obj(t_pool, 7, &a, NULL, &r), -EINVAL);
    ASSERT_RC(mempool_put_obj(t_pool, MEMPOOL_TYPE_ARRAY, NULL, NULL, &r),
              -EINVAL);
    ASSERT_RC(mempool_get_obj(t_pool, r, MEMPOOL_TYPE_ARRAY, &out, NULL),
              -EINVAL);
    /* raw bytes typed as a reserved id nobody implements: refused as
     * put_obj refuses it (issue 15 item 13); get_obj of that id too */
    o.type = 7;
    o.flags = 0;
    ASSERT_RC(mempool_put_ex(t_pool, x, sizeof x, &o, &rb), -EINVAL);
    ASSERT_RC(mempool_get_obj(t_pool, r, 7, &out, &v), -EINVAL);
}
END_TEST

/* ------------------------------------------------------------- corrupt */

/* Decode @p len bytes of @p b as @p type from an aligned copy and through a
 * pool object carrying them; both must fail with @p want (0: any error). */
static void expect_bad(uint32_t type, const uint8_t *b, uint64_t len,
                       int want)
{
    union { mempool_array a; mempool_strings s; mempool_table t; } o;
    mempool_put_options opt = {.type = type};
    void *copy = aligned_copy(b, len);
    mempool_dref r;
    mempool_view v;
    int rc = mempool_decode(NULL, type, copy, len, &o);

    ck_assert_msg(want ? rc == want : rc < 0, "decode: %d, want %d", rc,
                  want);
    ck_assert_msg(rc == MEMPOOL_ECORRUPT || rc == -ENOTSUP,
                  "decode error %d", rc);
    free(copy);
    ASSERT_RC(mempool_put_ex(t_pool, b, len, &opt, &r), 0);
    ASSERT_RC(mempool_get_obj(t_pool, r, type, &o, &v), rc);
    ck_assert_int_eq(t_pins(t_pool, r), 0);
    ASSERT_RC(mempool_delete(t_pool, r), 0);
}

/* Every truncation and every single-byte change of the first @p span
 * bytes of @p b must decode with an error or to something whose bytes are
 * inside the object (mempool_decode reads only [0, len)). */
static void sweep(uint32_t type, const uint8_t *b, uint64_t len,
                  uint64_t span)
{
    union { mempool_array a; mempool_strings s; mempool_table t; } o;
    uint8_t *copy = aligned_copy(b, len);

    for (uint64_t cut = 0; cut < len; cut += 1 + cut / 16)
        ck_assert_int_lt(mempool_decode(NULL, type, copy, cut, &o), 0);
    for (uint64_t i = 0; i < span && i < len; i++) {
        static const uint8_t vals[] = {0x00, 0x01, 0x40, 0x80, 0xff};
        for (size_t k = 0; k < sizeof vals; k++) {
            uint8_t save = copy[i];
            int rc;
            copy[i] = save == vals[k] ? (uint8_t)~save : vals[k];
            rc = mempool_decode(NULL, type, copy, len, &o);
            ck_assert(rc == 0 || rc == MEMPOOL_ECORRUPT || rc == -ENOTSUP);
            copy[i] = save;
        }
    }
    ASSERT_RC(mempool_decode(NULL, type, copy, len, &o), 0);
    free(copy);
}

static void poke64(uint8_t *b, uint64_t off, uint64_t v)
{
    memcpy(b + off, &v, 8);
}

START_TEST(test_corrupt_array)
{
    uint8_t bits[2] = {0xff, 0x01};
    double f[4] = {1, 2, 3, 4};
    mempool_array a = arr1(MEMPOOL_DTYPE_FLOAT64, f, 4);
    uint64_t len;
    uint8_t *b = raw_copy(t_pool, put(t_pool, MEMPOOL_TYPE_ARRAY, &a), &len);
    uint8_t *x = malloc(len);

    sweep(MEMPOOL_TYPE_ARRAY, b, len, len);
#define MUTATE(stmt, want) \
    do { memcpy(x, b, len); stmt; expect_bad(MEMPOOL_TYPE_ARRAY, x, len, \
                                             want); } while (0)
    MUTATE(x[0] = 'X', MEMPOOL_ECORRUPT);                 /* magic */
    MUTATE(x[4] = 2, -ENOTSUP);                           /* version */
    MUTATE(x[4] = 0, MEMPOOL_ECORRUPT);
    MUTATE(x[6] = 2, MEMPOOL_ECORRUPT);                   /* byte order */
    MUTATE(x[7] = 0, MEMPOOL_ECORRUPT);                   /* header size */
    MUTATE(x[8] = 2, MEMPOOL_ECORRUPT);                   /* type */
    MUTATE(poke64(x, 16, len + 1), MEMPOOL_ECORRUPT);     /* total > len */
    MUTATE(poke64(x, 24, 5), MEMPOOL_ECORRUPT);           /* count */
    MUTATE(poke64(x, 64, 5), MEMPOOL_ECORRUPT);           /* shape */
    MUTATE(poke64(x, 72, 1), MEMPOOL_ECORRUPT);           /* unused dim */
    MUTATE(poke64(x, 56, 192), MEMPOOL_ECORRUPT);         /* data past end */
    MUTATE(poke64(x, 56, 130), MEMPOOL_ECORRUPT);         /* misaligned */
    MUTATE(poke64(x, 56, 0), MEMPOOL_ECORRUPT);
    MUTATE(poke64(x, 56, UINT64_MAX - 63), MEMPOOL_ECORRUPT);
    MUTATE(poke64(x, 48, 4), MEMPOOL_ECORRUPT);           /* elem size */
    MUTATE(x[40] = 99, MEMPOOL_ECORRUPT);                 /* dtype */
    MUTATE(x[44] = 9, MEMPOOL_ECORRUPT);                  /* ndim */
    MUTATE(x[32] = 2, MEMPOOL_ECORRUPT);                  /* flags */
    MUTATE(poke64(x, 64, 1ull << 62), MEMPOOL_ECORRUPT);  /* overflow */
    expect_bad(MEMPOOL_TYPE_ARRAY, b, 100, MEMPOOL_ECORRUPT); /* truncated */
#undef MUTATE
    free(b);
    free(x);
    a = arr1(MEMPOOL_DTYPE_BITS, bits, 9);
    b = raw_copy(t_pool, put(t_pool, MEMPOOL_TYPE_ARRAY, &a), &len);
    b[129] |= 0x80;                                       /* tail bit */
    expect_bad(MEMPOOL_TYPE_ARRAY, b, len, MEMPOOL_ECORRUPT);
    free(b);
    /* misaligned input */
    {
        mempool_array o;
        uint8_t zero[256] = {0}, *m = aligned_copy(zero, sizeof zero);
        ASSERT_RC(mempool_decode(NULL, MEMPOOL_TYPE_ARRAY, m + 8, 128, &o),
                  -EINVAL);
        free(m);
    }
}
END_TEST

START_TEST(test_corrupt_strings)
{
    col c;
    uint64_t len, blob_off, val_off;
    uint8_t *b, *x;

    col_init(&c, 8);
    col_add(&c, "abc", 3, true);
    col_add(&c, "", 0, false);
    col_add(&c, "de\0f", 4, true);
    mempool_strings s = col_view(&c, true);
    b = raw_copy(t_pool, put(t_pool, MEMPOOL_TYPE_STRINGS, &s), &len);
    x = malloc(len);
    val_off = rd64(b, 48);
    blob_off = rd64(b, 56);
    sweep(MEMPOOL_TYPE_STRINGS, b, len, len);
#define MUTATE(stmt, want) \
    do { memcpy(x, b, len); stmt; expect_bad(MEMPOOL_TYPE_STRINGS, x, len, \
                                             want); } while (0)
    MUTATE(poke64(x, 64 + 8, 5), MEMPOOL_ECORRUPT);     /* decreasing */
    MUTATE(poke64(x, 64, 1), MEMPOOL_ECORRUPT);         /* not from 0 */
    MUTATE(poke64(x, 64 + 24, 1000), MEMPOOL_ECORRUPT); /* past the end */
    MUTATE(poke64(x, 64 + 24, UINT64_MAX), MEMPOOL_ECORRUPT);
    MUTATE(poke64(x, 64 + 16, 4), MEMPOOL_ECORRUPT);    /* missing, not "" */
    MUTATE(x[val_off] = 0x0f, MEMPOOL_ECORRUPT);        /* tail bit */
    MUTATE(poke64(x, 24, 1000), MEMPOOL_ECORRUPT);      /* count */
    MUTATE(poke64(x, 24, UINT64_MAX), MEMPOOL_ECORRUPT);
    MUTATE(poke64(x, 40, 65), MEMPOOL_ECORRUPT);        /* flipped offset */
    MUTATE(poke64(x, 40, 0), MEMPOOL_ECORRUPT);
    MUTATE(poke64(x, 48, len), MEMPOOL_ECORRUPT);
    MUTATE(poke64(x, 56, blob_off + 64), MEMPOOL_ECORRUPT);
    MUTATE(poke64(x, 56, UINT64_MAX & ~63ull), MEMPOOL_ECORRUPT);
    MUTATE(x[32] = 1, MEMPOOL_ECORRUPT);
#undef MUTATE
    expect_bad(MEMPOOL_TYPE_STRINGS, b, len - 1, MEMPOOL_ECORRUPT);
    free(b);
    free(x);
    col_free(&c);
}
END_TEST

START_TEST(test_corrupt_table)
{
    mixed m;
    uint64_t len, c0;
    uint8_t *b, *x;

    mixed_init(&m, 5);
    b = raw_copy(t_pool, put(t_pool, MEMPOOL_TYPE_TABLE, &m.t), &len);
    x = malloc(len);
    c0 = rd64(b, 80);                              /* column 0 offset */
    sweep(MEMPOOL_TYPE_TABLE, b, len, c0 + 128);
#define MUTATE(stmt, want) \
    do { memcpy(x, b, len); stmt; expect_bad(MEMPOOL_TYPE_TABLE, x, len, \
                                             want); } while (0)
    MUTATE(poke64(x, 40, 1000), MEMPOOL_ECORRUPT);     /* columns */
    MUTATE(poke64(x, 40, UINT64_MAX / 16), MEMPOOL_ECORRUPT);
    MUTATE(poke64(x, 48, 0), MEMPOOL_ECORRUPT);        /* directory */
    MUTATE(poke64(x, 56, 1), MEMPOOL_ECORRUPT);
    MUTATE(poke64(x, 24, 6), MEMPOOL_ECORRUPT);        /* rows */
    MUTATE(poke64(x, 64, len), MEMPOOL_ECORRUPT);      /* name offset */
    MUTATE(poke64(x, 72, 3), MEMPOOL_ECORRUPT);        /* name no NUL */
    MUTATE(poke64(x, 72, UINT64_MAX), MEMPOOL_ECORRUPT);
    MUTATE(poke64(x, 80, c0 + 64), MEMPOOL_ECORRUPT);  /* column offset */
    MUTATE(poke64(x, 80, c0 + 8), MEMPOOL_ECORRUPT);
    MUTATE(poke64(x, 88, len), MEMPOOL_ECORRUPT);      /* column length */
    MUTATE(poke64(x, 88, 10), MEMPOOL_ECORRUPT);
    MUTATE(poke64(x, 80 + 32, c0), MEMPOOL_ECORRUPT);  /* overlap */
    MUTATE(x[c0 + 8] = MEMPOOL_TYPE_TABLE, MEMPOOL_ECORRUPT); /* nesting */
    MUTATE(x[c0 + 4] = 3, -ENOTSUP);                   /* column version */
#undef MUTATE
    expect_bad(MEMPOOL_TYPE_TABLE, b, len - 1, MEMPOOL_ECORRUPT);
    free(b);
    free(x);
    mixed_free(&m);
}
END_TEST

/* Inputs the fuzzer found; each must stay an error, not a crash. */
START_TEST(test_fuzz_regressions)
{
    /* (filled in from tests/fuzz crash files, if any) */
    uint8_t hdr[64] = "MOBJ";
    hdr[4] = 1, hdr[6] = 1, hdr[7] = 1;
    poke64(hdr, 16, 64);
    expect_bad(MEMPOOL_TYPE_ARRAY, hdr, 64, MEMPOOL_ECORRUPT);
}
END_TEST

/* --------------------------------------------------------- user codecs */

/* A user type: n points, stored as u64 n, 56 zero bytes, then n*(x,y). */
#define T_TYPE_POINTS (MEMPOOL_TYPE_USER + 1)
typedef struct points { uint64_t n; const double *xy; } points;

static int pts_size(const void *obj, uint64_t *len)
{
    const points *p = obj;
    if (p->n > (UINT64_MAX - 64) / 16)
        return -E2BIG;
    *len = 64 + p->n * 16;
    return 0;
}

static int pts_encode(const void *obj, void *dst, uint64_t len)
{
    const points *p = obj;
    memset(dst, 0, 64);
    memcpy(dst, &p->n, 8);
    memcpy((uint8_t *)dst + 64, p->xy, len - 64);
    return 0;
}

static int pts_decode(const void *src, uint64_t len, void *obj)
{
    points *p = obj;
    if (len < 64)
        return MEMPOOL_ECORRUPT;
    memcpy(&p->n, src, 8);
    if (p->n > (len - 64) / 16)
        return MEMPOOL_ECORRUPT;
    p->xy = (const double *)((const uint8_t *)src + 64);
    return 0;
}

static int fail_encode(const void *obj, void *dst, uint64_t len)
{
    (void)obj, (void)dst, (void)len;
    return -EDOM;
}

static const mempool_codec points_codec = {
    T_TYPE_POINTS, "points", pts_size, pts_encode, pts_decode, 1
};

START_TEST(test_user_codec)
{
    double xy[6] = {1, 2, 3, 4, 5, 6};
    points in = {3, xy}, out;
    mempool_codec c = points_codec;
    mempool_dref r;
    mempool_view v;
    mempool_info info;
    uint64_t objects, used;

    ASSERT_RC(mempool_put_obj(t_pool, T_TYPE_POINTS, &in, NULL, &r),
              -ENOTSUP);                         /* not registered yet */
    ASSERT_RC(mempool_register_codec(t_pool, &c), 0);
    ASSERT_RC(mempool_register_codec(t_pool, &c), -EEXIST);
    c.type = MEMPOOL_TYPE_ARRAY;
    ASSERT_RC(mempool_register_codec(t_pool, &c), -EINVAL);
    c.type = MEMPOOL_TYPE_USER - 1;
    ASSERT_RC(mempool_register_codec(t_pool, &c), -EINVAL);
    c.type = MEMPOOL_TYPE_USER + 2;
    c.decode = NULL;
    ASSERT_RC(mempool_register_codec(t_pool, &c), -EINVAL);
    ASSERT_RC(mempool_register_codec(t_pool, NULL), -EINVAL);
    ASSERT_RC(mempool_register_codec(NULL, &points_codec), -EINVAL);

    r = put(t_pool, T_TYPE_POINTS, &in);
    ASSERT_RC(mempool_info_get(t_pool, r, &info), 0);
    ck_assert_uint_eq(info.type, T_TYPE_POINTS);
    ck_assert_uint_eq(info.len, 64 + 64 + 48);
    ASSERT_RC(mempool_get_obj(t_pool, r, T_TYPE_POINTS, &out, &v), 0);
    ck_assert_uint_eq(out.n, 3);
    ck_assert(memcmp(out.xy, xy, sizeof xy) == 0);
    ck_assert(inside(&v, out.xy, sizeof xy));
    check_header(v.data, v.len, T_TYPE_POINTS, 0);
    ck_assert_uint_eq(rd32(v.data, 12), 1);          /* codec version */
    ck_assert_uint_eq(rd64(v.data, 40), 0);          /* F0..F2 unused */
    ASSERT_RC(mempool_release(t_pool, &v), 0);

    /* an encoder error is returned and leaves nothing behind */
    c = points_codec;
    c.type = MEMPOOL_TYPE_USER + 3;
    c.encode = fail_encode;
    ASSERT_RC(mempool_register_codec(t_pool, &c), 0);
    objects = t_stats(t_pool).objects;
    used = t_stats(t_pool).used_bytes;
    ASSERT_RC(mempool_put_obj(t_pool, c.type, &in, NULL, &r), -EDOM);
    ck_assert_uint_eq(t_stats(t_pool).objects, objects);
    ck_assert_uint_eq(t_stats(t_pool).used_bytes, used);
    t_assert_healthy(t_pool);
}
END_TEST

/* A newer codec version is refused by an older reader. */
START_TEST(test_user_codec_version)
{
    double xy[2] = {1, 2};
    points in = {1, xy}, out;
    mempool_codec v2 = points_codec;
    mempool *q;
    mempool_dref r;
    mempool_view v;

    v2.version = 2;
    ASSERT_RC(mempool_register_codec(t_pool, &v2), 0);
    r = put(t_pool, T_TYPE_POINTS, &in);
    ASSERT_RC(t_attach(t_name, &q), 0);
    ASSERT_RC(mempool_register_codec(q, &points_codec), 0); /* version 1 */
    ASSERT_RC(mempool_get_obj(q, r, T_TYPE_POINTS, &out, &v), -ENOTSUP);
    ck_assert_int_eq(t_pins(q, r), 0);
    ASSERT_RC(mempool_get_obj(t_pool, r, T_TYPE_POINTS, &out, &v), 0);
    ASSERT_RC(mempool_release(t_pool, &v), 0);
    ASSERT_RC(mempool_close(q), 0);
}
END_TEST

/* Another process: without the codec it reads bytes and gets -ENOTSUP;
 * with it, it decodes; built-ins need nothing. */
typedef struct xproc { mempool_dref pts, arr, tab; } xproc;

static int child_reader(void *arg)
{
    const xproc *x = arg;
    mempool *q;
    mempool_view v;
    mempool_info info;
    points pts;
    mempool_array a;
    mempool_table t;
    mempool_column c;

    T_CHILD_EQ(t_attach(t_name, &q), 0);
    T_CHILD_EQ(mempool_info_get(q, x->pts, &info), 0);
    T_CHILD_EQ(info.type, T_TYPE_POINTS);
    T_CHILD_EQ(mempool_get(q, x->pts, &v), 0);        /* bytes: always */
    T_CHILD_EQ(v.type, T_TYPE_POINTS);
    T_CHILD_ASSERT(memcmp(v.data, "MOBJ", 4) == 0);
    T_CHILD_EQ(mempool_release(q, &v), 0);
    T_CHILD_EQ(mempool_get_obj(q, x->pts, T_TYPE_POINTS, &pts, &v), -ENOTSUP);
    T_CHILD_EQ(mempool_register_codec(q, &points_codec), 0);
    T_CHILD_EQ(mempool_get_obj(q, x->pts, T_TYPE_POINTS, &pts, &v), 0);
    T_CHILD_EQ(pts.n, 3);
    T_CHILD_ASSERT(pts.xy[5] == 6.0);
    T_CHILD_EQ(mempool_release(q, &v), 0);
    T_CHILD_EQ(mempool_get_obj(q, x->arr, MEMPOOL_TYPE_ARRAY, &a, &v), 0);
    T_CHILD_EQ(a.count, 3);
    T_CHILD_ASSERT(((const double *)a.data)[2] == 3.0);
    T_CHILD_EQ(mempool_release(q, &v), 0);
    T_CHILD_EQ(mempool_get_obj(q, x->tab, MEMPOOL_TYPE_TABLE, &t, &v), 0);
    T_CHILD_EQ(mempool_table_find(&t, "name", &c), 0);
    T_CHILD_EQ(c.strings.n, 10);
    T_CHILD_EQ(mempool_release(q, &v), 0);
    T_CHILD_EQ(mempool_close(q), 0);
    return 0;
}

START_TEST(test_other_process)
{
    double xy[6] = {1, 2, 3, 4, 5, 6}, f[3] = {1, 2, 3};
    points in = {3, xy};
    mempool_array a = arr1(MEMPOOL_DTYPE_FLOAT64, f, 3);
    mixed m;
    xproc x;

    mixed_init(&m, 10);
    ASSERT_RC(mempool_register_codec(t_pool, &points_codec), 0);
    x.pts = put(t_pool, T_TYPE_POINTS, &in);
    x.arr = put(t_pool, MEMPOOL_TYPE_ARRAY, &a);
    x.tab = put(t_pool, MEMPOOL_TYPE_TABLE, &m.t);
    t_wait_ok(t_fork(child_reader, &x));
    mixed_free(&m);
}
END_TEST

/* Registration is thread-safe: threads register distinct types and look
 * them up while others register. */
static void *reg_thread(void *arg)
{
    uintptr_t k = (uintptr_t)arg;
    for (uint32_t i = 0; i < 64; i++) {
        mempool_codec c = points_codec;
        double xy[2] = {(double)k, (double)i};
        points in = {1, xy}, out;
        mempool_dref r;
        mempool_view v;
        c.type = MEMPOOL_TYPE_USER + 1000 + (uint32_t)k * 64 + i;
        if (mempool_register_codec(t_pool, &c) ||
            mempool_put_obj(t_pool, c.type, &in, NULL, &r) ||
            mempool_get_obj(t_pool, r, c.type, &out, &v) ||
            out.xy[1] != (double)i || mempool_release(t_pool, &v) ||
            mempool_delete(t_pool, r))
            return (void *)1;
    }
    return NULL;
}

START_TEST(test_register_threads)
{
    pthread_t th[4];
    void *ret;

    for (uintptr_t k = 0; k < 4; k++)
        ck_assert_int_eq(pthread_create(&th[k], NULL, reg_thread, (void *)k),
                         0);
    for (int k = 0; k < 4; k++) {
        ck_assert_int_eq(pthread_join(th[k], &ret), 0);
        ck_assert_ptr_null(ret);
    }
    t_assert_healthy(t_pool);
}
END_TEST

/* --------------------------------------------------------------- disk */

/* 3: a spilled object decodes from the mapped spill file, and a saved one
 * from the mapped saved file, with pointers into the mapping (no copy). */
static void check_disk_strings(mempool *p, const mempool_view *v,
                               const mempool_strings *got,
                               const mempool_strings *want)
{
    ck_assert(v->flags & MEMPOOL_VIEW_DISK);
    ck_assert(!t_in_pool_mapping(t_name, v->data, v->len));
    ck_assert_uint_eq((uintptr_t)v->data % 64, 0);
    ck_assert(inside(v, got->offsets, 8 * (got->n + 1)));
    ck_assert(inside(v, got->blob, got->offsets[got->n]));
    strings_equal(got, want);
    (void)p;
}

static int child_disk_reader(void *arg)
{
    const mempool_dref *r = arg;
    mempool_strings s;
    mempool_view v;
    mempool *q;

    T_CHILD_EQ(t_attach(t_name, &q), 0);
    T_CHILD_EQ(mempool_get_obj(q, *r, MEMPOOL_TYPE_STRINGS, &s, &v), 0);
    T_CHILD_ASSERT(v.flags & MEMPOOL_VIEW_DISK);
    T_CHILD_EQ(s.n, 1000);
    T_CHILD_EQ(mempool_release(q, &v), 0);
    T_CHILD_EQ(mempool_close(q), 0);
    return 0;
}

START_TEST(test_disk_strings)
{
    char path[] = "/tmp/t-codec-saved.XXXXXX";
    mempool_fileref fr;
    mempool_strings want, got;
    mempool_view v;
    mempool_dref r;
    int fd;
    col c;

    big_column(&c, 1000);
    want = col_view(&c, true);
    r = put(t_pool, MEMPOOL_TYPE_STRINGS, &want);
    ASSERT_RC(mempool_move_to_disk(t_pool, r, &fr), 0);
    ASSERT_RC(mempool_get_obj(t_pool, r, MEMPOOL_TYPE_STRINGS, &got, &v), 0);
    check_disk_strings(t_pool, &v, &got, &want);
    ASSERT_RC(mempool_release(t_pool, &v), 0);
    t_wait_ok(t_fork(child_disk_reader, &r));

    fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    ASSERT_RC(mempool_save_to_disk(t_pool, r, path, &fr), 0);
    ASSERT_RC(mempool_delete(t_pool, r), 0);
    ASSERT_RC(mempool_get_file(t_pool, &fr, &v), 0);
    ck_assert_uint_eq(v.type, MEMPOOL_TYPE_STRINGS);
    ASSERT_RC(mempool_decode(t_pool, v.type, v.data, v.len, &got), 0);
    check_disk_strings(t_pool, &v, &got, &want);
    ASSERT_RC(mempool_release(t_pool, &v), 0);
    unlink(path);
    col_free(&c);
}
END_TEST

START_TEST(test_disk_table_and_user)
{
    double xy[4] = {1, 2, 3, 4};
    points in = {2, xy}, pts;
    mempool_fileref fr;
    mempool_table t;
    mempool_column col0;
    mempool_view v;
    mempool_dref r, ru;
    mixed m;

    mixed_init(&m, 300);
    r = put(t_pool, MEMPOOL_TYPE_TABLE, &m.t);
    ASSERT_RC(mempool_register_codec(t_pool, &points_codec), 0);
    ru = put(t_pool, T_TYPE_POINTS, &in);
    ASSERT_RC(mempool_move_to_disk(t_pool, r, &fr), 0);
    ASSERT_RC(mempool_move_to_disk(t_pool, ru, &fr), 0);
    ASSERT_RC(mempool_get_obj(t_pool, r, MEMPOOL_TYPE_TABLE, &t, &v), 0);
    ck_assert(v.flags & MEMPOOL_VIEW_DISK);
    for (uint64_t i = 0; i < m.t.ncols; i++) {
        ASSERT_RC(mempool_table_column(&t, i, &col0), 0);
        column_equal(&col0, &m.cols[i], &v);
    }
    ASSERT_RC(mempool_release(t_pool, &v), 0);
    ASSERT_RC(mempool_get_obj(t_pool, ru, T_TYPE_POINTS, &pts, &v), 0);
    ck_assert(v.flags & MEMPOOL_VIEW_DISK);
    ck_assert(inside(&v, pts.xy, sizeof xy));
    ck_assert(memcmp(pts.xy, xy, sizeof xy) == 0);
    ASSERT_RC(mempool_release(t_pool, &v), 0);
    mixed_free(&m);
}
END_TEST

/* --------------------------------------------------------------- suite */

int main(void)
{
    const struct t_case cases[] = {
        { "builtin", 60, true, {
              test_bytes, test_array_f64_and_dtypes, test_array_bits,
              test_array_records, test_array_shapes, test_strings_basic,
              test_strings_bytes_exact, test_strings_slice_and_errors,
              test_table_mixed, test_table_layout, test_table_errors,
              test_type_mismatch } },
        { "big", 240, true, { test_strings_million, test_table_million } },
        { "corrupt", 120, true, {
              test_corrupt_array, test_corrupt_strings, test_corrupt_table,
              test_fuzz_regressions } },
        { "user", 60, true, {
              test_user_codec, test_user_codec_version, test_other_process,
              test_register_threads } },
        { "disk", 60, true, { test_disk_strings, test_disk_table_and_user } },
        { .name = NULL }
    };
    return t_main("codec", cases);
}
