/* SPDX-License-Identifier: MIT */
/*
 * check_limits.c - the documented limits and the handle's end (issue 15
 * item 13): the arena's real minimum (MEMPOOL_MIN_ARENA_BYTES) and maximum
 * (MEMPOOL_MAX_ARENA_BYTES) and the object table's (MEMPOOL_MAX_OBJECTS)
 * are exactly what open accepts; mempool_put_ex() and mempool_reserve()
 * refuse the type ids mempool_put_obj() refuses (reserved ids: -EINVAL; a
 * user type with no codec registered through the handle: -ENOTSUP); a
 * second mempool_close() of a pointer, or a call on it after close,
 * answers -EINVAL instead of touching freed memory.
 */
#include "helpers.h"

#include <errno.h>
#include <string.h>

static int try_arena(uint64_t arena, uint64_t max_objects)
{
    char name[T_NAME_LEN];
    mempool_options o;
    mempool *p;
    int rc;

    t_pool_name(name, "limits");
    t_options(&o, arena);
    o.max_objects = max_objects;
    o.flags |= MEMPOOL_OPEN_EXCL;
    rc = mempool_open(name, &o, &p);
    if (rc == 0) {
        char buf[100000];
        mempool_dref r;
        mempool_view v;
        memset(buf, 7, sizeof buf);
        /* the smallest pool holds a 100 KB object */
        ASSERT_RC(mempool_put(p, buf, sizeof buf, &r), 0);
        ASSERT_RC(mempool_get(p, r, &v), 0);
        ck_assert(memcmp(v.data, buf, sizeof buf) == 0);
        ASSERT_RC(mempool_release(p, &v), 0);
        t_assert_healthy(p);
        ASSERT_RC(mempool_close(p), 0);
        ASSERT_RC(mempool_destroy(name), 0);
    }
    return rc;
}

START_TEST(test_arena_limits)
{
    ASSERT_RC(try_arena(MEMPOOL_MIN_ARENA_BYTES, 0), 0);
    ASSERT_RC(try_arena(MEMPOOL_MIN_ARENA_BYTES - 4096, 0), -EINVAL);
    ASSERT_RC(try_arena(1u << 20, 0), -EINVAL);
    ASSERT_RC(try_arena(2u << 20, 0), -EINVAL);
    /* refused before anything is reserved: no 64 TiB is ever allocated */
    ASSERT_RC(try_arena(MEMPOOL_MAX_ARENA_BYTES + 4096, 0), -EINVAL);
    ASSERT_RC(try_arena(MEMPOOL_MAX_ARENA_BYTES, MEMPOOL_MAX_OBJECTS + 1),
              -EINVAL);
    /* a table that leaves no data pages */
    ASSERT_RC(try_arena(MEMPOOL_MIN_ARENA_BYTES, 1u << 20), -EINVAL);
    ASSERT_RC(try_arena(MEMPOOL_MIN_ARENA_BYTES, 2048), 0);
}
END_TEST

static int enc_size(const void *obj, size_t *len)
{
    (void)obj;
    *len = 8;
    return 0;
}

static int enc(const void *obj, void *dst, size_t len)
{
    memcpy(dst, obj, len);
    return 0;
}

static int dec(const void *src, size_t len, void *obj)
{
    memcpy(obj, src, len);
    return 0;
}

START_TEST(test_put_type_ids)
{
    const uint64_t x = 42;
    mempool_codec c = { MEMPOOL_TYPE_USER + 1, "limits", enc_size, enc, dec,
                        1 };
    mempool_put_options o = { 0, 0, 0 };
    mempool_dref r;
    void *buf;

    for (uint32_t t = MEMPOOL_TYPE_BYTES; t <= MEMPOOL_TYPE_TABLE; t++) {
        o.type = t;                       /* built-in ids: as put_obj */
        ASSERT_RC(mempool_put_ex(t_pool, &x, sizeof x, &o, &r), 0);
        ASSERT_RC(mempool_delete(t_pool, r), 0);
    }
    const uint32_t reserved[] = { MEMPOOL_TYPE_TABLE + 1, 0x100,
                                  MEMPOOL_TYPE_USER - 1 };
    for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++) {
        o.type = reserved[i];
        ASSERT_RC(mempool_put_ex(t_pool, &x, sizeof x, &o, &r), -EINVAL);
        ASSERT_RC(mempool_reserve(t_pool, 8, &o, &buf, &r), -EINVAL);
        ASSERT_RC(mempool_put_obj(t_pool, reserved[i], &x, &o, &r),
                  -EINVAL);
    }
    o.type = MEMPOOL_TYPE_USER + 1;       /* not registered (yet) */
    ASSERT_RC(mempool_put_ex(t_pool, &x, sizeof x, &o, &r), -ENOTSUP);
    ASSERT_RC(mempool_reserve(t_pool, 8, &o, &buf, &r), -ENOTSUP);
    ASSERT_RC(mempool_put_obj(t_pool, o.type, &x, &o, &r), -ENOTSUP);
    ASSERT_RC(mempool_register_codec(t_pool, &c), 0);
    ASSERT_RC(mempool_put_ex(t_pool, &x, sizeof x, &o, &r), 0);
    ASSERT_RC(mempool_delete(t_pool, r), 0);
    ASSERT_RC(mempool_put_obj(t_pool, o.type, &x, &o, &r), 0);
    ASSERT_RC(mempool_delete(t_pool, r), 0);
    ck_assert_uint_eq(t_stats(t_pool).objects, 0);
    t_assert_healthy(t_pool);
}
END_TEST

START_TEST(test_double_close)
{
    struct mempool_stats s;
    mempool_dref r;
    mempool_view v;
    mempool *q;
    uint64_t x = 1;

    ASSERT_RC(mempool_put(t_pool, &x, sizeof x, &r), 0);
    ASSERT_RC(t_attach(t_name, &q), 0);
    ASSERT_RC(mempool_close(q), 0);
    ASSERT_RC(mempool_close(q), -EINVAL);       /* was a crash */
    ASSERT_RC(mempool_get(q, r, &v), -EINVAL);
    ASSERT_RC(mempool_put(q, &x, sizeof x, &r), -EINVAL);
    ASSERT_RC(mempool_stats_get(q, &s), -EINVAL);
    ASSERT_RC(mempool_close(q), -EINVAL);
    /* the pool and the other handle are unaffected */
    ASSERT_RC(mempool_get(t_pool, r, &v), 0);
    ASSERT_RC(mempool_release(t_pool, &v), 0);
    ck_assert_uint_eq(t_stats(t_pool).workers, 1);
    t_assert_healthy(t_pool);
}
END_TEST

int main(void)
{
    const struct t_case cases[] = {
        { "arena", 60, false, { test_arena_limits } },
        { "handle", 60, true, { test_put_type_ids, test_double_close } },
        { .name = NULL }
    };
    return t_main("limits", cases);
}
