/* SPDX-License-Identifier: MIT */
/*
 * spill/files.c - spill files through the API: move/copy/save_to_disk and
 * get_file (B8-B12, D19-D20), destroy, pinned moves (G39), recency,
 * typed objects, empty and large objects, many mappings, stale files, bad
 * files and DRefs, options and the I/O backend.
 */
#include "fixture.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/*
 * B8 [15] as far as spilling goes, B9 [16], B11 [18], B12 [19]: W1 moves
 * W2's object to disk; everyone reads it; save_to_disk + get_file from W3
 * (a forked child); delete removes the spill file but not the saved one;
 * destroy removes the spill directory and never the saved file.
 */
static int b9_child(void *arg)
{
    const char *path = arg;         /* the saved file */
    mempool *p = child_open(sp.name, 0, MEMPOOL_IO_AUTO, 0, 0);
    mempool_fileref f;
    mempool_view v;
    int64_t want[2] = { 1, 2 };

    T_CHILD_ASSERT(p != NULL);
    memset(&f, 0, sizeof f);
    snprintf(f.path, sizeof f.path, "%s", path);
    T_CHILD_EQ(mempool_get_file(p, &f, &v), 0);
    T_CHILD_EQ(v.len, 16);
    T_CHILD_EQ(v.flags, V_DISK);
    T_CHILD_ASSERT(memcmp(v.data, want, 16) == 0);
    T_CHILD_EQ(mempool_release(p, &v), 0);
    T_CHILD_EQ(mempool_release(p, &v), -EINVAL);
    T_CHILD_EQ(mempool_close(p), 0);
    return 0;
}

START_TEST(test_b9_move_save_destroy)
{
    unsigned io = (unsigned)_i;
    mempool *p1 = sp_create(SMALL_ARENA, 0, MEMPOOL_POLICY_LRU, io);
    mempool *p2 = sp_attach(0, io);
    int w2 = mempool_worker_id(p2);
    mempool_fileref f, f2, fs;
    mempool_dref r;
    struct mempool_stats s;
    struct stat st;
    mempool_view v;
    unsigned char *file;
    size_t flen;
    char b9_path[600];

    r = set_i64(p1, w2, 2, 0);
    ck_assert_uint_eq(t_stats(p1).resident_bytes, 16);
    ck_assert(!exists(sp.pdir) || dir_files(sp.pdir, NULL) == 0);
    /* W1 (not the owner) moves it */
    ASSERT_RC(mempool_move_to_disk(p1, r, &f), 0);
    check_fileref(&f, 16);
    ASSERT_STATE(p1, r, ST_DISK);
    s = t_stats(p1);
    ck_assert_uint_eq(s.resident_bytes, 0);
    ck_assert_uint_eq(s.disk_bytes, 16);
    ck_assert_uint_eq(s.spills, 1);
    ASSERT_BACKEND(p1, io);
    /* the file format: magic, then the payload at 4096 */
    file = slurp(f.path, &flen);
    ck_assert_uint_eq(flen, FILE_HDR + 16);
    ck_assert_mem_eq(file, "MPSPILL1", 8);
    {
        int64_t want[2] = { 1, 2 };

        ck_assert_mem_eq(file + FILE_HDR, want, 16);
    }
    free(file);
    expect_i64(p1, r, 2, V_DISK);
    expect_i64(p2, r, 2, V_DISK);
    /* idempotent: same file, no second write */
    ASSERT_RC(mempool_move_to_disk(p2, r, &f2), 0);
    ck_assert_str_eq(f2.path, f.path);
    ck_assert_uint_eq(t_stats(p1).spills, 1);
    /* save_to_disk: the caller's durable file; W3 maps it */
    snprintf(b9_path, sizeof b9_path, "%s/saved.bin", sp.dir);
    ASSERT_RC(mempool_save_to_disk(p1, r, b9_path, &fs), 0);
    ck_assert_str_eq(fs.path, b9_path);
    ck_assert_uint_eq(fs.len, 16);
    ASSERT_STATE(p1, r, ST_DISK);
    t_wait_ok(t_fork(b9_child, b9_path));
    ASSERT_RC(mempool_get_file(p1, &fs, &v), 0);
    ck_assert_uint_eq(v.flags, V_DISK);
    ck_assert_uint_eq(v.len, 16);
    ASSERT_RC(mempool_release(p1, &v), 0);
    ASSERT_RC(mempool_release(p1, &v), -EINVAL);
    /* get_file of the spill file itself */
    ASSERT_RC(mempool_get_file(p2, &f, &v), 0);
    ck_assert_uint_eq(v.len, 16);
    ASSERT_RC(mempool_release(p2, &v), 0);
    /* delete: spill file gone, saved file kept, W2 at 0 */
    ASSERT_RC(mempool_delete(p1, r), 0);
    ck_assert_msg(!exists(f.path), "%s survived delete", f.path);
    ck_assert(exists(b9_path));
    s = t_stats(p1);
    ck_assert_uint_eq(s.resident_bytes, 0);
    ck_assert_uint_eq(s.disk_bytes, 0);
    ck_assert_uint_eq(s.objects, 0);
    ASSERT_RC(mempool_delete(p2, r), -ENOENT);
    ASSERT_RC(mempool_move_to_disk(p1, r, NULL), -ENOENT);
    ASSERT_RC(mempool_copy_to_disk(p1, r, NULL), -ENOENT);
    ASSERT_RC(mempool_save_to_disk(p1, r, b9_path, NULL), -ENOENT);
    t_assert_healthy(p1);
    /* B12: another spilled object; destroy removes the directory */
    r = set_i64(p1, w2, 2, 0);
    ASSERT_RC(mempool_move_to_disk(p1, r, &f), 0);
    st = stat_of(b9_path);
    sp_close(p2);
    sp_close(p1);
    ASSERT_RC(mempool_destroy(sp.name), 0);
    ck_assert_msg(!exists(sp.pdir), "%s survived destroy", sp.pdir);
    /* B11: the saved file is intact */
    {
        struct stat st2 = stat_of(b9_path);
        int64_t want[2] = { 1, 2 };

        ck_assert(same_file(&st, &st2));
        file = slurp(b9_path, &flen);
        ck_assert_uint_eq(flen, FILE_HDR + 16);
        ck_assert_mem_eq(file + FILE_HDR, want, 16);
        free(file);
    }
}
END_TEST

/* A saved file inside the pool's own directory survives delete and
 * destroy (only names mempool writes are removed). */
START_TEST(test_save_in_pool_dir)
{
    mempool *p = sp_create(SMALL_ARENA, 0, MEMPOOL_POLICY_LRU,
                           MEMPOOL_IO_AUTO);
    mempool_dref r = set_bytes(p, 0, 3000, 5, 0);
    char path[700];

    ASSERT_RC(mempool_copy_to_disk(p, r, NULL), 0);   /* creates the dir */
    snprintf(path, sizeof path, "%s/user.bin", sp.pdir);
    ASSERT_RC(mempool_save_to_disk(p, r, path, NULL), 0);
    ASSERT_RC(mempool_delete(p, r), 0);
    ck_assert(exists(path));
    ASSERT_FILES(sp.pdir, 0, 0);
    t_assert_healthy(p);
    sp_close(p);
    ASSERT_RC(mempool_destroy(sp.name), 0);
    ck_assert_msg(exists(path), "destroy removed the user's %s", path);
}
END_TEST

/* ========================================= D. move, copy, save, files */

/*
 * D19 [36], D20 [#39]: copy_to_disk keeps the object resident and charged
 * and served from the arena; move_to_disk then frees it without a second
 * write (same inode and mtime); both are idempotent; delete removes the
 * file. A clean copy is later evicted without a write too.
 */
START_TEST(test_d19_copy_then_move)
{
    unsigned io = (unsigned)_i;
    mempool *p = sp_create(SMALL_ARENA, 0, MEMPOOL_POLICY_LRU, io);
    mempool_fileref f1, f2, f3;
    struct stat st1, st2;
    struct mempool_stats s;
    mempool_dref r, c, d;

    r = set_i64(p, 0, 3, 0);
    ASSERT_RC(mempool_copy_to_disk(p, r, &f1), 0);
    check_fileref(&f1, 24);
    ASSERT_STATE(p, r, ST_BOTH);
    s = t_stats(p);
    ck_assert_uint_eq(s.resident_bytes, 24);
    ck_assert_uint_eq(s.disk_bytes, 24);
    ck_assert_uint_eq(s.spills, 1);
    expect_i64(p, r, 3, V_MEM);
    st1 = stat_of(f1.path);
    /* copy again: nothing written */
    ASSERT_RC(mempool_copy_to_disk(p, r, &f2), 0);
    ck_assert_str_eq(f2.path, f1.path);
    ck_assert_uint_eq(t_stats(p).spills, 1);
    /* a moment later (so a rewrite would show in mtime), move */
    usleep(20000);
    ASSERT_RC(mempool_move_to_disk(p, r, &f2), 0);
    ck_assert_str_eq(f2.path, f1.path);
    st2 = stat_of(f2.path);
    ck_assert_msg(same_file(&st1, &st2), "move_to_disk rewrote the clean "
                  "copy (inode %lu -> %lu)", (unsigned long)st1.st_ino,
                  (unsigned long)st2.st_ino);
    ASSERT_STATE(p, r, ST_DISK);
    s = t_stats(p);
    ck_assert_uint_eq(s.resident_bytes, 0);
    ck_assert_uint_eq(s.disk_bytes, 24);
    ck_assert_uint_eq(s.spills, 1);
    expect_i64(p, r, 3, V_DISK);
    /* D20: move twice (and copy of a spilled object) = 0, one write */
    ASSERT_RC(mempool_move_to_disk(p, r, &f3), 0);
    ck_assert_str_eq(f3.path, f1.path);
    ASSERT_RC(mempool_copy_to_disk(p, r, &f3), 0);
    ck_assert_str_eq(f3.path, f1.path);
    st2 = stat_of(f1.path);
    ck_assert(same_file(&st1, &st2));
    ck_assert_uint_eq(t_stats(p).spills, 1);
    ASSERT_STATE(p, r, ST_DISK);
    /* delete removes the file */
    ASSERT_RC(mempool_delete(p, r), 0);
    ck_assert(!exists(f1.path));
    ck_assert_uint_eq(t_stats(p).disk_bytes, 0);
    ASSERT_FILES(sp.pdir, 0, 0);
    /* a clean copy is evicted without a write */
    ASSERT_RC(mempool_limit_set(p, MEMPOOL_LIMIT_MEMSIZE, 40), 0);
    c = set_i64(p, 0, 3, 0);
    ASSERT_RC(mempool_copy_to_disk(p, c, &f1), 0);
    st1 = stat_of(f1.path);
    ck_assert_uint_eq(t_stats(p).spills, 2);
    usleep(20000);
    d = set_i64(p, 0, 3, 0);              /* 48 > 40: c goes */
    ASSERT_STATE(p, c, ST_DISK);
    ASSERT_STATE(p, d, ST_MEM);
    st2 = stat_of(f1.path);
    ck_assert(same_file(&st1, &st2));
    s = t_stats(p);
    ck_assert_uint_eq(s.spills, 2);
    ck_assert_uint_eq(s.resident_bytes, 24);
    ck_assert_uint_eq(s.disk_bytes, 24);
    expect_i64(p, c, 3, V_DISK);
    ASSERT_RC(mempool_flush(p), 0);
    ASSERT_FILES(sp.pdir, 1, 0);
    t_assert_healthy(p);
}
END_TEST

/*
 * DESTROY_ON_EVICT (2.9): eviction deletes instead of writing, and also
 * removes a clean copy; an explicit move_to_disk still writes.
 */
START_TEST(test_destroy_on_evict)
{
    unsigned io = (unsigned)_i;
    mempool *p = sp_create(SMALL_ARENA, 64, MEMPOOL_POLICY_LRU, io);
    mempool_fileref f;
    mempool_dref a, b, c, d;
    mempool_view v;

    /* explicit move writes */
    a = set_i64(p, 0, 4, MEMPOOL_PUT_DESTROY_ON_EVICT);
    ASSERT_RC(mempool_move_to_disk(p, a, &f), 0);
    check_fileref(&f, 32);
    ASSERT_STATE(p, a, ST_DISK);
    expect_i64(p, a, 4, V_DISK);
    ck_assert_uint_eq(t_stats(p).spills, 1);
    /* eviction of a plain one-memory object: destroyed, nothing written */
    b = set_i64(p, 0, 4, MEMPOOL_PUT_DESTROY_ON_EVICT);   /* 32 */
    c = set_i64(p, 0, 4, 0);                              /* 64 */
    d = set_i64(p, 0, 4, 0);                              /* b goes */
    ASSERT_RC(mempool_get(p, b, &v), -ENOENT);
    ASSERT_STATE(p, b, ST_GONE);
    ASSERT_STATE(p, c, ST_MEM);
    ASSERT_STATE(p, d, ST_MEM);
    ck_assert_uint_eq(t_stats(p).spills, 1);
    ASSERT_FILES(sp.pdir, 1, 0);
    ASSERT_RC(mempool_delete(p, c), 0);
    /* with a clean copy: destroyed too, and its file removed */
    b = set_i64(p, 0, 4, MEMPOOL_PUT_DESTROY_ON_EVICT);   /* d, b: 64 */
    ASSERT_RC(mempool_copy_to_disk(p, b, &f), 0);
    ck_assert(exists(f.path));
    ASSERT_RC(mempool_delete(p, d), 0);
    expect_i64(p, b, 4, V_MEM);
    d = set_i64(p, 0, 4, 0);
    c = set_i64(p, 0, 4, 0);                              /* b goes */
    ASSERT_STATE(p, b, ST_GONE);
    ck_assert_msg(!exists(f.path), "destroyed object's file %s kept",
                  f.path);
    ck_assert_uint_eq(t_stats(p).resident_bytes, 64);
    ck_assert_uint_eq(t_stats(p).disk_bytes, 32);   /* a */
    ASSERT_FILES(sp.pdir, 1, 0);
    t_assert_healthy(p);
}
END_TEST

/*
 * G39 [69b, 69d]: move_to_disk of a pinned object writes now and frees at
 * the last release; the held view stays valid meanwhile. A get of a
 * spilled object pins its mapping.
 */
START_TEST(test_g39_pinned_move)
{
    unsigned io = (unsigned)_i;
    mempool *p = sp_create(SMALL_ARENA, 0, MEMPOOL_POLICY_LRU, io);
    mempool_dref r1, r2;
    mempool_view v1, v2, v3;
    mempool_fileref f;
    int64_t want[4] = { 1, 2, 3, 4 };

    /* with a clean file already */
    r1 = set_i64(p, 0, 4, 0);
    ASSERT_RC(mempool_copy_to_disk(p, r1, NULL), 0);
    ASSERT_RC(mempool_get(p, r1, &v1), 0);
    ck_assert_uint_eq(v1.flags, V_MEM);
    ASSERT_RC(mempool_move_to_disk(p, r1, &f), 0);
    check_fileref(&f, 32);
    ck_assert_mem_eq(v1.data, want, 32);
    ck_assert(state_of(p, r1) & ST_MEM);
    ck_assert_uint_eq(t_stats(p).resident_bytes, 32);
    /* without a file: written now */
    r2 = set_i64(p, 0, 4, 0);
    ASSERT_RC(mempool_get(p, r2, &v2), 0);
    ASSERT_RC(mempool_move_to_disk(p, r2, &f), 0);
    check_fileref(&f, 32);
    ck_assert(state_of(p, r2) & ST_MEM);
    ck_assert_uint_eq(t_stats(p).resident_bytes, 64);
    ck_assert_uint_eq(t_stats(p).disk_bytes, 64);
    ck_assert_mem_eq(v2.data, want, 32);
    /* the last release frees */
    ASSERT_RC(mempool_release(p, &v1), 0);
    ASSERT_STATE(p, r1, ST_DISK);
    ck_assert_uint_eq(t_stats(p).resident_bytes, 32);
    ck_assert_mem_eq(v2.data, want, 32);
    ASSERT_RC(mempool_release(p, &v2), 0);
    ASSERT_STATE(p, r2, ST_DISK);
    ck_assert_uint_eq(t_stats(p).resident_bytes, 0);
    /* 69d: a get of a spilled object pins a mapping */
    ASSERT_RC(mempool_get(p, r2, &v3), 0);
    ck_assert_uint_eq(v3.flags, V_DISK);
    ck_assert_int_eq(t_pins(p, r2), 1);
    ck_assert(!t_in_pool_mapping(sp.name, v3.data, 32));
    ck_assert_mem_eq(v3.data, want, 32);
    ASSERT_RC(mempool_release(p, &v3), 0);
    ck_assert_int_eq(t_pins(p, r2), 0);
    ASSERT_RC(mempool_release(p, &v3), -EINVAL);
    t_assert_healthy(p);
}
END_TEST

/* G39c for a spilled object: delete while its mapping is pinned; the view
 * keeps reading; the file and the entry go at the last release. */
START_TEST(test_pinned_spilled_delete)
{
    unsigned io = (unsigned)_i;
    mempool *p = sp_create(SMALL_ARENA, 0, MEMPOOL_POLICY_LRU, io);
    mempool *q = sp_attach(0, io);
    mempool_dref r = set_bytes(p, 0, 200000, 9, 0);
    mempool_fileref f;
    mempool_view v, w;

    ASSERT_RC(mempool_move_to_disk(p, r, &f), 0);
    ASSERT_RC(mempool_get(q, r, &v), 0);
    ASSERT_RC(mempool_get(p, r, &w), 0);
    ck_assert_uint_eq(v.flags, V_DISK);
    ck_assert_int_eq(t_pins(p, r), 2);
    ASSERT_RC(mempool_delete(p, r), 0);
    ASSERT_RC(mempool_get(p, r, &(mempool_view){ 0 }), -ENOENT);
    ASSERT_RC(mempool_get(q, r, &(mempool_view){ 0 }), -ENOENT);
    ck_assert(sp_check(v.data, 200000, 9));
    ASSERT_RC(mempool_release(p, &w), 0);
    ck_assert(sp_check(v.data, 200000, 9));
    ASSERT_RC(mempool_release(q, &v), 0);
    ck_assert_msg(!exists(f.path), "%s survived delete + last release",
                  f.path);
    ck_assert_uint_eq(t_stats(p).objects, 0);
    ck_assert_uint_eq(t_stats(p).disk_bytes, 0);
    t_assert_healthy(p);
}
END_TEST

/*
 * 2.7: save_to_disk changes nothing about the object or its recency: under
 * LRU, a saved object is still the first victim.
 */
START_TEST(test_save_keeps_recency)
{
    mempool *p = sp_create(SMALL_ARENA, 48, MEMPOOL_POLICY_LRU,
                           MEMPOOL_IO_AUTO);
    mempool_dref a, b, c, d;
    mempool_fileref fs;
    mempool_view v;
    char path[600];
    uint64_t spills;

    a = set_i64(p, 0, 2, 0);
    b = set_i64(p, 0, 2, 0);
    c = set_i64(p, 0, 2, 0);
    snprintf(path, sizeof path, "%s/a.saved", sp.dir);
    spills = t_stats(p).spills;
    ASSERT_RC(mempool_save_to_disk(p, a, path, &fs), 0);
    ASSERT_STATE(p, a, ST_MEM);           /* no spill file, no DISK bit */
    ck_assert_uint_eq(t_stats(p).spills, spills);
    ck_assert_uint_eq(t_stats(p).disk_bytes, 0);
    ASSERT_FILES(sp.pdir, 0, 0);
    d = set_i64(p, 0, 2, 0);              /* 64 > 48: the LRU goes */
    ck_assert_msg(state_of(p, a) == ST_DISK && state_of(p, b) == ST_MEM,
                  "save_to_disk touched recency: a %#x, b %#x (want a "
                  "spilled, b resident)", state_of(p, a), state_of(p, b));
    ASSERT_STATE(p, c, ST_MEM);
    ASSERT_STATE(p, d, ST_MEM);
    /* the saved file maps with the object's bytes */
    ASSERT_RC(mempool_get_file(p, &fs, &v), 0);
    ck_assert_uint_eq(v.len, 16);
    ASSERT_RC(mempool_release(p, &v), 0);
    /* saving a spilled object works from its file */
    snprintf(path, sizeof path, "%s/a2.saved", sp.dir);
    ASSERT_RC(mempool_save_to_disk(p, a, path, &fs), 0);
    ASSERT_STATE(p, a, ST_DISK);
    ASSERT_RC(mempool_get_file(p, &fs, &v), 0);
    {
        int64_t want[2] = { 1, 2 };

        ck_assert_uint_eq(v.len, 16);
        ck_assert_mem_eq(v.data, want, 16);
    }
    ASSERT_RC(mempool_release(p, &v), 0);
    /* bad paths */
    ASSERT_RC(mempool_save_to_disk(p, a, "", NULL), -EINVAL);
    ASSERT_RC(mempool_save_to_disk(p, a, NULL, NULL), -EINVAL);
    snprintf(path, sizeof path, "%s/", sp.dir);
    ASSERT_RC(mempool_save_to_disk(p, a, path, NULL), -EINVAL);
    snprintf(path, sizeof path, "%s/no/such/dir/x", sp.dir);
    ASSERT_RC(mempool_save_to_disk(p, a, path, NULL), -ENOENT);
    t_assert_healthy(p);
}
END_TEST

/* Typed objects keep their type through a spill file and a saved file and
 * decode as views into the mapping (64-byte aligned). */
START_TEST(test_typed_spill)
{
    mempool *p = sp_create(SMALL_ARENA, 0, MEMPOOL_POLICY_LRU,
                           MEMPOOL_IO_AUTO);
    double vals[10];
    mempool_array a, out;
    mempool_dref r;
    mempool_view v;
    mempool_info in;
    mempool_fileref fs;
    char path[600];

    for (int i = 0; i < 10; i++)
        vals[i] = 0.5 * i - 1.25;
    memset(&a, 0, sizeof a);
    a.dtype = MEMPOOL_DTYPE_FLOAT64;
    a.ndim = 1;
    a.shape[0] = 10;
    a.data = vals;
    ASSERT_RC(mempool_put_obj(p, MEMPOOL_TYPE_ARRAY, &a, NULL, &r), 0);
    ASSERT_RC(mempool_move_to_disk(p, r, NULL), 0);
    ASSERT_RC(mempool_info_get(p, r, &in), 0);
    ck_assert_uint_eq(in.type, MEMPOOL_TYPE_ARRAY);
    ck_assert_uint_eq(in.state, ST_DISK);
    memset(&out, 0, sizeof out);
    ASSERT_RC(mempool_get_obj(p, r, MEMPOOL_TYPE_ARRAY, &out, &v), 0);
    ck_assert_uint_eq(v.flags, V_DISK);
    ck_assert_uint_eq(v.type, MEMPOOL_TYPE_ARRAY);
    ck_assert_uint_eq(out.count, 10);
    ck_assert_uint_eq(out.dtype, MEMPOOL_DTYPE_FLOAT64);
    ck_assert_uint_eq((uintptr_t)v.data % 64, 0);
    ck_assert_uint_eq((uintptr_t)out.data % 64, 0);
    ck_assert((const char *)out.data >= (const char *)v.data &&
              (const char *)out.data + out.nbytes <=
                  (const char *)v.data + v.len);
    ck_assert_mem_eq(out.data, vals, sizeof vals);
    ASSERT_RC(mempool_release(p, &v), 0);
    /* a saved copy, mapped with get_file, decodes the same */
    snprintf(path, sizeof path, "%s/arr.saved", sp.dir);
    ASSERT_RC(mempool_save_to_disk(p, r, path, &fs), 0);
    ASSERT_RC(mempool_get_file(p, &fs, &v), 0);
    ck_assert_uint_eq(v.type, MEMPOOL_TYPE_ARRAY);
    memset(&out, 0, sizeof out);
    ASSERT_RC(mempool_decode(p, v.type, v.data, v.len, &out), 0);
    ck_assert_uint_eq(out.count, 10);
    ck_assert_mem_eq(out.data, vals, sizeof vals);
    ASSERT_RC(mempool_release(p, &v), 0);
    t_assert_healthy(p);
}
END_TEST

/* Empty objects and one larger than an engine write chunk (16 MiB). */
START_TEST(test_zero_and_big)
{
    unsigned io = (unsigned)_i;
    const size_t big = 20 * MiB + 3;
    mempool *p = sp_create(64 * MiB, 0, MEMPOOL_POLICY_LRU, io);
    mempool_fileref f;
    mempool_dref z, b, c;
    mempool_view v;

    ASSERT_RC(mempool_put(p, NULL, 0, &z), 0);
    ASSERT_RC(mempool_move_to_disk(p, z, &f), 0);
    check_fileref(&f, 0);
    ASSERT_STATE(p, z, ST_DISK);
    ASSERT_RC(mempool_get(p, z, &v), 0);
    ck_assert_ptr_nonnull(v.data);
    ck_assert_uint_eq(v.len, 0);
    ck_assert_uint_eq(v.flags, V_DISK);
    ASSERT_RC(mempool_release(p, &v), 0);
    b = set_bytes(p, 0, big, 77, 0);
    ASSERT_RC(mempool_move_to_disk(p, b, &f), 0);
    check_fileref(&f, big);
    expect_bytes(p, b, big, 77, V_DISK);
    /* evicted by the limit rather than moved */
    ASSERT_RC(mempool_limit_set(p, MEMPOOL_LIMIT_MEMSIZE, big + 100), 0);
    c = set_bytes(p, 0, big, 78, 0);
    ck_assert_uint_eq(t_stats(p).resident_bytes, big);
    b = set_bytes(p, 0, 200, 79, 0);
    ASSERT_STATE(p, c, ST_DISK);
    expect_bytes(p, c, big, 78, V_DISK);
    expect_bytes(p, b, 200, 79, V_MEM);
    ASSERT_BACKEND(p, io);
    ASSERT_FILES(sp.pdir, 3, 0);
    t_assert_healthy(p);
}
END_TEST

/* Many spilled objects mapped at once, more than the idle mapping cache
 * keeps; every view stays right while the others come and go. */
START_TEST(test_many_mappings)
{
    enum { N = 48 };
    mempool *p = sp_create(SMALL_ARENA, 0, MEMPOOL_POLICY_LRU,
                           MEMPOOL_IO_AUTO);
    mempool_dref r[N];
    mempool_view v[N];
    int i;

    for (i = 0; i < N; i++) {
        r[i] = set_bytes(p, 0, 5000 + (size_t)i, 100 + (uint64_t)i, 0);
        ASSERT_RC(mempool_move_to_disk(p, r[i], NULL), 0);
    }
    for (int round = 0; round < 2; round++) {
        for (i = 0; i < N; i++) {
            ASSERT_RC(mempool_get(p, r[i], &v[i]), 0);
            ck_assert_uint_eq(v[i].flags, V_DISK);
        }
        for (i = 0; i < N; i++)
            ck_assert(sp_check(v[i].data, 5000 + (size_t)i,
                               100 + (uint64_t)i));
        for (i = 0; i < N; i += 2)
            ASSERT_RC(mempool_release(p, &v[i]), 0);
        for (i = 1; i < N; i += 2)
            ck_assert(sp_check(v[i].data, 5000 + (size_t)i,
                               100 + (uint64_t)i));
        for (i = 1; i < N; i += 2)
            ASSERT_RC(mempool_release(p, &v[i]), 0);
    }
    ck_assert_uint_eq(t_stats(p).restores, 2 * N);
    for (i = 0; i < N; i++)
        ASSERT_RC(mempool_delete(p, r[i]), 0);
    ASSERT_FILES(sp.pdir, 0, 0);
    t_assert_healthy(p);
}
END_TEST

/* Creating a pool wipes stale spill files in its directory (only names
 * mempool writes); attaching does not; destroy removes the directory. */
START_TEST(test_stale_files_wiped)
{
    char path[700];
    mempool *p, *q;
    mempool_dref r;
    mempool_fileref f;

    ck_assert_int_eq(mkdir(sp.pdir, 0700), 0);
    snprintf(path, sizeof path, "%s/12-3", sp.pdir);
    spit(path, "junk", 4);
    snprintf(path, sizeof path, "%s/7-1.tmp", sp.pdir);
    spit(path, "junk", 4);
    snprintf(path, sizeof path, "%s/keep.txt", sp.pdir);
    spit(path, "mine", 4);
    p = sp_create(SMALL_ARENA, 0, MEMPOOL_POLICY_LRU, MEMPOOL_IO_AUTO);
    ASSERT_FILES(sp.pdir, 0, 0);
    ck_assert(exists(path));
    r = set_bytes(p, 0, 1000, 3, 0);
    ASSERT_RC(mempool_move_to_disk(p, r, &f), 0);
    snprintf(path, sizeof path, "%s/99-9", sp.pdir);
    spit(path, "junk", 4);
    q = sp_attach(0, MEMPOOL_IO_AUTO);
    ck_assert(exists(path));
    expect_bytes(q, r, 1000, 3, V_DISK);
    unlink(path);
    snprintf(path, sizeof path, "%s/keep.txt", sp.pdir);
    unlink(path);
    t_assert_healthy(q);
    sp_close(q);
    sp_close(p);
    ASSERT_RC(mempool_destroy(sp.name), 0);
    ck_assert(!exists(sp.pdir));
}
END_TEST

/* get_file and the DRef checks on spilled objects (F37). */
START_TEST(test_bad_files_and_drefs)
{
    mempool *p = sp_create(SMALL_ARENA, 0, MEMPOOL_POLICY_LRU,
                           MEMPOOL_IO_AUTO);
    mempool_dref r = set_bytes(p, 0, 4000, 8, 0), bad;
    mempool_fileref f;
    mempool_view v;
    char junk[5000];

    ASSERT_RC(mempool_move_to_disk(p, r, NULL), 0);
    memset(&f, 0, sizeof f);
    ASSERT_RC(mempool_get_file(p, NULL, &v), -EINVAL);
    ASSERT_RC(mempool_get_file(p, &f, &v), -EINVAL);
    snprintf(f.path, sizeof f.path, "%s/nothing", sp.dir);
    ASSERT_RC(mempool_get_file(p, &f, &v), -ENOENT);
    snprintf(f.path, sizeof f.path, "%s", sp.dir);
    ASSERT_RC(mempool_get_file(p, &f, &v), MEMPOOL_ECORRUPT);
    memset(junk, 'x', sizeof junk);
    snprintf(f.path, sizeof f.path, "%s/junk", sp.dir);
    spit(f.path, junk, sizeof junk);
    ASSERT_RC(mempool_get_file(p, &f, &v), MEMPOOL_ECORRUPT);
    spit(f.path, junk, 10);
    ASSERT_RC(mempool_get_file(p, &f, &v), MEMPOOL_ECORRUPT);
    /* forged DRefs of a spilled object */
    bad = r;
    bad.gen += 1;
    ASSERT_RC(mempool_get(p, bad, &v), -ENOENT);
    ASSERT_RC(mempool_move_to_disk(p, bad, NULL), -ENOENT);
    bad = r;
    bad.gen += 2;
    ASSERT_RC(mempool_copy_to_disk(p, bad, NULL), -ENOENT);
    bad = r;
    bad.off += UINT64_C(1) << 45;           /* past the table */
    ASSERT_RC(mempool_get(p, bad, &v), -EINVAL);
    ASSERT_RC(mempool_move_to_disk(p, bad, NULL), -EINVAL);
    bad = r;
    bad.gen ^= UINT64_C(1) << 40;          /* another pool's tag */
    ASSERT_RC(mempool_get(p, bad, &v), -EINVAL);
    expect_bytes(p, r, 4000, 8, V_DISK);
    ASSERT_STATE(p, r, ST_DISK);
    ASSERT_RC(mempool_flush(p), 0);
    t_assert_healthy(p);
}
END_TEST

/* Options: policy and io_mode are checked; a handle reports no backend
 * before its first write; MEMPOOL_IO=pwrite forces pwrite. */
static int env_pwrite_child(void *arg)
{
    mempool *p;
    mempool_dref r;
    struct mempool_stats s;
    static char buf[3000];

    (void)arg;
    setenv("MEMPOOL_IO", "pwrite", 1);
    p = child_open(sp.name, 0, MEMPOOL_IO_AUTO, 0, 0);
    T_CHILD_ASSERT(p != NULL);
    T_CHILD_EQ(mempool_stats_get(p, &s), 0);
    T_CHILD_ASSERT(s.io_backend[0] == '\0');
    T_CHILD_EQ(mempool_put(p, buf, sizeof buf, &r), 0);
    T_CHILD_EQ(mempool_move_to_disk(p, r, NULL), 0);
    T_CHILD_EQ(mempool_stats_get(p, &s), 0);
    T_CHILD_ASSERT(strcmp(s.io_backend, "pwrite") == 0);
    T_CHILD_EQ(mempool_delete(p, r), 0);
    mempool_close(p);
    return 0;
}

START_TEST(test_options_and_backend)
{
    mempool_options o;
    mempool *p = NULL;
    mempool_dref r;

    sp_opts(&o, SMALL_ARENA, 0, 2, MEMPOOL_IO_AUTO);
    ASSERT_RC(mempool_open(sp.name, &o, &p), -EINVAL);
    sp_opts(&o, SMALL_ARENA, 0, MEMPOOL_POLICY_LRU, 2);
    ASSERT_RC(mempool_open(sp.name, &o, &p), -EINVAL);
    p = sp_create(SMALL_ARENA, 0, MEMPOOL_POLICY_MRU, MEMPOOL_IO_AUTO);
    ck_assert_str_eq(t_stats(p).io_backend, "");
    ASSERT_RC(mempool_flush(p), 0);          /* nothing queued yet */
    r = set_bytes(p, 0, 100, 1, 0);
    ASSERT_RC(mempool_copy_to_disk(p, r, NULL), 0);
    ASSERT_BACKEND(p, MEMPOOL_IO_AUTO);
    ASSERT_RC(mempool_flush(p), 0);
    t_wait_ok(t_fork(env_pwrite_child, NULL));
    ASSERT_RC(mempool_limit_set(NULL, MEMPOOL_LIMIT_MEMSIZE, 1), -EINVAL);
    ASSERT_RC(mempool_limit_set(NULL, MEMPOOL_LIMIT_DISKSIZE, 1), -EINVAL);
    ASSERT_RC(mempool_flush(NULL), -EINVAL);
    t_assert_healthy(p);
}
END_TEST

void spill_files_tests(Suite *s)
{
    TCase *tc;

    tc = sp_tcase(s, "files", 60);
    tcase_add_loop_test(tc, test_b9_move_save_destroy, 0, 2);
    tcase_add_test(tc, test_save_in_pool_dir);
    tcase_add_loop_test(tc, test_d19_copy_then_move, 0, 2);
    tcase_add_loop_test(tc, test_destroy_on_evict, 0, 2);
    tcase_add_loop_test(tc, test_g39_pinned_move, 0, 2);
    tcase_add_loop_test(tc, test_pinned_spilled_delete, 0, 2);
    tcase_add_test(tc, test_save_keeps_recency);
    tcase_add_test(tc, test_typed_spill);
    tcase_add_loop_test(tc, test_zero_and_big, 0, 2);
    tcase_add_test(tc, test_many_mappings);
    tcase_add_test(tc, test_stale_files_wiped);
    tcase_add_test(tc, test_bad_files_and_drefs);
    tcase_add_test(tc, test_options_and_backend);
}
