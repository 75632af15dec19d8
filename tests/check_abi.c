/* SPDX-License-Identifier: MIT */
/*
 * check_abi.c - the parts of the ABI meant to let the library grow under a
 * stable SONAME: mempool_options read by its size field (an old, shorter
 * struct from an older header; a newer, longer one; a struct that was never
 * initialised), the version the library reports against the generated
 * <mempool/version.h>, and the deprecated 0.1.0 names reaching the new
 * functions. The exported symbol list is check_exports.cmake's.
 */
#include "helpers.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

/* The first struct of a program built against a header that knew only the
 * fields up to max_memsize (the spill_dir, mode, ... that follow came later):
 * it stands in front of bytes the library must not read. */
struct old_options {
    uint32_t size, flags;
    uint64_t arena_bytes, max_memsize;
    unsigned char after[sizeof(mempool_options)]; /* garbage after the end */
};

START_TEST(test_old_size_struct)
{
    char name[T_NAME_LEN];
    struct old_options old;
    struct mempool_stats s;
    mempool *p = NULL;
    int rc;

    t_pool_name(name, "abi");
    memset(&old, 0xff, sizeof old);   /* would be an invalid policy, mode, ... */
    old.size = (uint32_t)offsetof(struct old_options, after);
    ck_assert_uint_eq(old.size, offsetof(mempool_options, spill_dir));
    old.flags = MEMPOOL_OPEN_CREATE | MEMPOOL_OPEN_EXCL;
    old.arena_bytes = T_ARENA_BYTES;
    old.max_memsize = 0;
    rc = mempool_open(name, (const mempool_options *)(const void *)&old, &p);
    ck_assert_msg(rc == 0, "open with an old-size struct: %d (%s)", rc,
                  mempool_strerror(rc));
    ck_assert_int_eq(mempool_stats_get(p, &s), 0);
    ck_assert_uint_eq(s.arena_bytes, T_ARENA_BYTES);
    ck_assert_uint_eq(s.policy, MEMPOOL_POLICY_LRU);   /* the default */
    /* The default spill_dir ".mempool" (relative to the cwd), not a pointer
     * read from the garbage after the struct. */
    ck_assert_ptr_nonnull(strstr(s.spill_dir, "/.mempool/"));
    ck_assert_int_eq(mempool_close(p), 0);
    ck_assert_int_eq(mempool_destroy(name), 0);
}
END_TEST

/* A struct from a newer header: longer, the unknown tail zero (accepted)
 * or not (-E2BIG: a request this library cannot honour). */
START_TEST(test_newer_size_struct)
{
    struct {
        mempool_options o;
        uint64_t newer[2];
    } big;
    char name[T_NAME_LEN];
    mempool *p = NULL;

    t_pool_name(name, "abi");
    memset(&big, 0, sizeof big);
    t_options(&big.o, T_ARENA_BYTES);
    big.o.size = (uint32_t)sizeof big;
    big.newer[1] = 1;
    ck_assert_int_eq(mempool_open(name, &big.o, &p), -E2BIG);
    ck_assert_ptr_null(p);
    big.newer[1] = 0;
    ck_assert_int_eq(mempool_open(name, &big.o, &p), 0);
    ck_assert_int_eq(mempool_close(p), 0);
    ck_assert_int_eq(mempool_destroy(name), 0);
}
END_TEST

START_TEST(test_bad_sizes)
{
    char name[T_NAME_LEN];
    mempool_options o;
    mempool *p = NULL;
    static const uint32_t bad[] = {0, 1, 4, 12, 20, 33};

    t_pool_name(name, "abi");
    mempool_options_init(&o);
    ck_assert_uint_eq(o.size, sizeof o);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mempool_options_init(&o);
        o.arena_bytes = T_ARENA_BYTES;
        o.size = bad[i];
        ck_assert_msg(mempool_open(name, &o, &p) == -EINVAL,
                      "size %u accepted", bad[i]);
        ck_assert_ptr_null(p);
    }
    mempool_options_init(&o);
    o.reserved = 1;
    ck_assert_int_eq(mempool_open(name, &o, &p), -EINVAL);
}
END_TEST

START_TEST(test_version)
{
    char v[32];

    snprintf(v, sizeof v, "%d.%d.%d", MEMPOOL_VERSION_MAJOR,
             MEMPOOL_VERSION_MINOR, MEMPOOL_VERSION_PATCH);
    ck_assert_str_eq(MEMPOOL_VERSION_STRING, v);
    ck_assert_str_eq(mempool_version(), v);
    ck_assert_uint_eq(mempool_version_number(), MEMPOOL_VERSION_NUMBER);
    ck_assert_uint_eq(MEMPOOL_VERSION_NUMBER,
                      MEMPOOL_VERSION_MAJOR * 10000u +
                      MEMPOOL_VERSION_MINOR * 100u + MEMPOOL_VERSION_PATCH);
}
END_TEST

/* The 0.1.0 names (deprecated, still exported) reach the new functions. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
START_TEST(test_deprecated_names)
{
    static const char msg[] = "old names";
    mempool_set_options o = {0, 0, MEMPOOL_SET_REFCOUNTED};
    struct mempool_worker_stats w;
    struct mempool_stats s;
    mempool_bytes b = {msg, sizeof msg};
    mempool_dref r1, r2, r3;
    mempool_view v;
    uint64_t lim;

    ck_assert_int_eq(mempool_set(t_pool, msg, sizeof msg, &r1), 0);
    ck_assert_int_eq(mempool_set_ex(t_pool, msg, sizeof msg, &o, &r2), 0);
    ck_assert_int_eq(mempool_set_obj(t_pool, MEMPOOL_TYPE_BYTES, &b, NULL,
                                     &r3), 0);
    ck_assert_int_eq(mempool_get(t_pool, r3, &v), 0);
    ck_assert_uint_eq(v.len, sizeof msg);
    ck_assert_int_eq(memcmp(v.data, msg, sizeof msg), 0);
    ck_assert_int_eq(mempool_release(t_pool, &v), 0);
    ck_assert_int_eq(mempool_set_max_memsize(t_pool, 12345), 0);
    ck_assert_int_eq(mempool_limit_get(t_pool, MEMPOOL_LIMIT_MEMSIZE, &lim), 0);
    ck_assert_uint_eq(lim, 12345);
    ck_assert_int_eq(mempool_set_max_disksize(t_pool, 678), 0);
    ck_assert_int_eq(mempool_limit_get(t_pool, MEMPOOL_LIMIT_DISKSIZE, &lim), 0);
    ck_assert_uint_eq(lim, 678);
    ck_assert_int_eq(mempool_limit_set(t_pool, 3, 1), -EINVAL);
    ck_assert_int_eq(mempool_stats(t_pool, &s), 0);
    ck_assert_uint_eq(s.objects, 3);
    ck_assert_int_eq(mempool_worker_stats(t_pool, mempool_worker_id(t_pool),
                                          &w), 0);
    ck_assert_uint_eq(w.max_memsize, 12345);
    ck_assert_int_eq(mempool_unref(t_pool, r2), 0);   /* it was refcounted */
    ck_assert_int_eq(mempool_delete(t_pool, r1), 0);
    ck_assert_int_eq(mempool_delete(t_pool, r3), 0);
}
END_TEST
#pragma GCC diagnostic pop

int main(void)
{
    const struct t_case cases[] = {
        { "abi", 60, true, {
              test_old_size_struct, test_newer_size_struct, test_bad_sizes,
              test_version } },
        { "names", 60, true, { test_deprecated_names } },
        { .name = NULL }
    };
    return t_main("abi", cases);
}
