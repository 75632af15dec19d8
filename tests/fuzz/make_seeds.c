/* SPDX-License-Identifier: MIT */
/*
 * make_seeds.c - write the fuzz seed corpus: one file per sample object,
 * a selector byte (0 ARRAY, 1 STRINGS, 2 TABLE; see fuzz_codec.c) followed
 * by the object's bytes as mempool_put_obj() stored them. Uses only the
 * public API. Rerun it when the layout changes:
 *
 *   fuzz_codec_seeds tests/fuzz/corpus
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mempool/mempool.h>

static mempool *pool;
static const char *outdir;

static int emit(const char *name, uint32_t type, const void *obj)
{
    char path[4096];
    uint8_t sel = (uint8_t)(type - 1);
    mempool_dref r;
    mempool_view v;
    FILE *f;
    int rc;

    if ((rc = mempool_put_obj(pool, type, obj, NULL, &r)) ||
        (rc = mempool_get(pool, r, &v)))
        return fprintf(stderr, "%s: %s\n", name, mempool_strerror(rc)), 1;
    snprintf(path, sizeof path, "%s/%s", outdir, name);
    if (!(f = fopen(path, "wb")) || fwrite(&sel, 1, 1, f) != 1 ||
        fwrite(v.data, 1, v.len, f) != v.len || fclose(f))
        return perror(path), 1;
    mempool_release(pool, &v);
    return 0;
}

static mempool_array arr(uint32_t dtype, const void *data, uint64_t n)
{
    mempool_array a = {0};
    a.dtype = dtype;
    a.ndim = 1;
    a.shape[0] = n;
    a.data = data;
    return a;
}

static int arrays(void)
{
    double f[10] = {1.5, -2, 3, 4, 5, 6, 7, 8, 9, 10};
    uint8_t bits[2] = {0xa5, 0x02}, rec[200];
    int32_t m[6] = {1, 2, 3, 4, 5, 6};
    mempool_array a = arr(MEMPOOL_DTYPE_FLOAT64, f, 10);
    int bad = emit("array-f64", MEMPOOL_TYPE_ARRAY, &a);

    a = arr(MEMPOOL_DTYPE_BITS, bits, 10);
    bad |= emit("array-bits", MEMPOOL_TYPE_ARRAY, &a);
    memset(rec, 0x5a, sizeof rec);
    a = arr(MEMPOOL_DTYPE_RECORD, rec, 10);
    a.elem_size = 20;
    bad |= emit("array-rec20", MEMPOOL_TYPE_ARRAY, &a);
    a = arr(MEMPOOL_DTYPE_FLOAT64, NULL, 0);
    bad |= emit("array-empty", MEMPOOL_TYPE_ARRAY, &a);
    a.ndim = 3, a.shape[0] = 3, a.shape[2] = 5;
    bad |= emit("array-zero-dim", MEMPOOL_TYPE_ARRAY, &a);
    a = arr(MEMPOOL_DTYPE_INT32, m, 2);
    a.ndim = 2, a.shape[1] = 3, a.flags = MEMPOOL_ARRAY_COLMAJOR;
    bad |= emit("array-2d-colmajor", MEMPOOL_TYPE_ARRAY, &a);
    a.ndim = 0;
    bad |= emit("array-scalar", MEMPOOL_TYPE_ARRAY, &a);
    return bad;
}

static int strings(void)
{
    static const uint8_t blob[] = "abcbcdefghij\0k\xc3\xa9\xe2\x82\xac";
    uint64_t off[6] = {0, 1, 3, 3, 12, 20};
    uint8_t valid = 0x1b;                       /* element 2 missing */
    mempool_strings s = {5, off, blob, NULL};
    int bad = emit("strings-plain", MEMPOOL_TYPE_STRINGS, &s);

    s.validity = &valid;
    bad |= emit("strings-missing", MEMPOOL_TYPE_STRINGS, &s);
    s.n = 0;
    bad |= emit("strings-empty", MEMPOOL_TYPE_STRINGS, &s);
    return bad;
}

static int tables(void)
{
    static const uint8_t blob[] = "onetwothree";
    uint64_t off[4] = {0, 3, 6, 11}, id[3] = {1, 2, 3};
    uint8_t bits = 0x05, rgb[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, valid = 0x05;
    mempool_column c[4] = {{0}};
    mempool_table t = {3, 4, c, NULL, 0};
    int bad;

    c[0].name = "id", c[0].type = MEMPOOL_TYPE_ARRAY;
    c[0].array = arr(MEMPOOL_DTYPE_UINT64, id, 3);
    c[1].name = "flag", c[1].type = MEMPOOL_TYPE_ARRAY;
    c[1].array = arr(MEMPOOL_DTYPE_BITS, &bits, 3);
    c[2].name = "rgb", c[2].type = MEMPOOL_TYPE_ARRAY;
    c[2].array = arr(MEMPOOL_DTYPE_RECORD, rgb, 3);
    c[2].array.elem_size = 3;
    c[3].name = "name", c[3].type = MEMPOOL_TYPE_STRINGS;
    c[3].strings = (mempool_strings){3, off, blob, &valid};
    off[2] = 3;                                 /* element 1 missing */
    bad = emit("table-mixed", MEMPOOL_TYPE_TABLE, &t);
    t.ncols = 0;
    bad |= emit("table-empty", MEMPOOL_TYPE_TABLE, &t);
    return bad;
}

int main(int argc, char **argv)
{
    mempool_options o;
    char name[64];
    int bad, rc;

    if (argc != 2)
        return fprintf(stderr, "usage: %s DIR\n", argv[0]), 2;
    outdir = argv[1];
    snprintf(name, sizeof name, "fuzz-seeds-%d", (int)getpid());
    mempool_options_init(&o);
    o.arena_bytes = 16u << 20;
    o.spill_dir = "/tmp";
    if ((rc = mempool_open(name, &o, &pool)))
        return fprintf(stderr, "open: %s\n", mempool_strerror(rc)), 1;
    bad = arrays() | strings() | tables();
    mempool_close(pool);
    mempool_destroy(name);
    return bad;
}
