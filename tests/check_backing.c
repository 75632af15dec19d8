/* SPDX-License-Identifier: MIT */
/*
 * check_backing.c - how arena pages get memory (src/core/backing.c, issue 11
 * target 3): a new pool's data pages are holes until the allocator first
 * hands them out; with MEMPOOL_HUGE_AUTO a 2 MiB chunk that is all holes
 * gets one huge page, mapped by one page-table entry in every process;
 * MEMPOOL_HUGE_OFF and every refusal fall back to 4 KiB pages; a failure
 * to back memory is a clean -ENOSPC with nothing leaked.
 *
 *   lazy       a new pool's data pages are holes; a put backs what it uses
 *   reserve    MEMPOOL_OPEN_RESERVE: the whole arena backed at open (huge
 *              chunks where the kernel can, PMD-mapped in a fresh reader;
 *              4 KiB with MEMPOOL_HUGE_OFF); a 6 MiB put backs nothing more
 *   huge       AUTO on a kernel that can (probed: MADV_COLLAPSE on a tmpfs
 *              file, else skipped with a note): the chunks of a 6 MiB object
 *              are huge pages, PMD-mapped in a fresh process that reads it
 *   off        MEMPOOL_HUGE_OFF: same puts, no huge page anywhere
 *   trim       a trimmed huge chunk gives its memory back and is backed
 *              again by the next put; bytes and fsck stay right
 *   option     bad values of mempool_options.huge are -EINVAL
 *   refused    (failpoints) back.chunk=enospc: the huge page is refused,
 *              the put falls back to 4 KiB pages and succeeds
 *   nospace    (failpoints) back.pages=enospc: a put and a reserve fail
 *              with -ENOSPC, nothing is charged or leaked; another process
 *              (no failpoint) then puts into the same pages
 *   reserve_flags (failpoints) back.block/back.pages=enospc: puts into a
 *              reserved pool still succeed (its pages are flagged backed)
 */
#include "helpers.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif

#define MiB (1ull << 20)

static int open_pool(const char *name, uint64_t arena, uint32_t huge,
                     uint32_t flags, mempool **p)
{
    mempool_options o;
    t_options(&o, arena);
    o.flags |= flags;
    o.huge = huge;
    return mempool_open(name, &o, p);
}

START_TEST(test_lazy)
{
    char name[T_NAME_LEN];
    mempool *p;
    uint64_t before, after;

    t_pool_name(name, "backing");
    ASSERT_RC(open_pool(name, 64 * MiB, MEMPOOL_HUGE_AUTO, 0, &p), 0);
    before = t_shm_bytes(name);
    ck_assert_uint_lt(before, 32 * MiB);       /* metadata only */
    mempool_dref r = t_put_fill(p, 8 * MiB, 1);
    after = t_shm_bytes(name);
    /* Its first pages may lie in the metadata's last chunk, backed at
     * open, and a last sliver of under 512 KiB takes 4 KiB pages. */
    ck_assert_uint_ge(after + 2 * MiB, before + 8 * MiB);
    ck_assert_uint_le(after, before + 8 * MiB + 4 * MiB); /* chunk slack */
    t_expect_fill(p, r, 8 * MiB, 1);
    t_assert_healthy(p);
    ASSERT_RC(mempool_close(p), 0);
    ASSERT_RC(mempool_destroy(name), 0);
}
END_TEST

struct reader {
    const char *name;
    mempool_dref r;
    size_t len;
    uint64_t seed;
    bool want_pmd;
};

/* A fresh process: attach, read the object, report its PMD mappings. */
static int reader_child(void *arg)
{
    struct reader *a = arg;
    mempool_view v;
    mempool *p;
    T_CHILD_EQ(t_attach(a->name, &p), 0);
    T_CHILD_EQ(mempool_get(p, a->r, &v), 0);
    T_CHILD_ASSERT(v.len == a->len && t_check_fill(v.data, a->len, a->seed));
    if (a->want_pmd)
        T_CHILD_ASSERT(t_pmd_mapped(a->name) >= 4 * MiB);
    else
        T_CHILD_EQ(t_pmd_mapped(a->name), 0);
    T_CHILD_EQ(mempool_release(p, &v), 0);
    T_CHILD_EQ(mempool_close(p), 0);
    return 0;
}

static void huge_case(uint32_t mode)
{
    char name[T_NAME_LEN];
    mempool *p;
    bool want = mode == MEMPOOL_HUGE_AUTO;

    if (want && !t_huge_possible()) {
        fprintf(stderr, "check_backing: no MADV_COLLAPSE on tmpfs here: "
                "huge case skipped (the fallback cases still run)\n");
        return;
    }
    t_pool_name(name, "backing");
    ASSERT_RC(open_pool(name, 64 * MiB, mode, 0, &p), 0);
    mempool_dref r = t_put_fill(p, 6 * MiB, 3);
    struct reader a = { name, r, 6 * MiB, 3, want };
    t_wait_ok(t_fork(reader_child, &a));
    /* a small object after it, in chunks already backed */
    mempool_dref s = t_put_fill(p, 100, 4);
    t_expect_fill(p, s, 100, 4);
    t_expect_fill(p, r, 6 * MiB, 3);
    t_assert_healthy(p);
    ASSERT_RC(mempool_close(p), 0);
    ASSERT_RC(mempool_destroy(name), 0);
}

START_TEST(test_huge)
{
    huge_case(MEMPOOL_HUGE_AUTO);
}
END_TEST

START_TEST(test_off)
{
    huge_case(MEMPOOL_HUGE_OFF);
}
END_TEST

/* MEMPOOL_OPEN_RESERVE: every data page is backed at open - whole chunks
 * as huge pages where allowed (@p mode AUTO on a kernel that can), so a
 * fresh process maps a large object by PMDs - and flagged backed, so a
 * large set into it backs nothing more. */
static void reserve_case(uint32_t mode)
{
    char name[T_NAME_LEN];
    struct mempool_stats s;
    mempool *p;
    uint64_t held;
    bool want = mode == MEMPOOL_HUGE_AUTO && t_huge_possible();

    t_pool_name(name, "backing");
    ASSERT_RC(open_pool(name, 32 * MiB, mode, MEMPOOL_OPEN_RESERVE, &p), 0);
    s = t_stats(p);
    held = t_shm_bytes(name);
    ck_assert_uint_ge(held, s.data_bytes);
    mempool_dref r = t_put_fill(p, 6 * MiB, 2);
    ck_assert_uint_eq(t_shm_bytes(name), held);        /* nothing more */
    t_expect_fill(p, r, 6 * MiB, 2);
    struct reader a = { name, r, 6 * MiB, 2, want };
    t_wait_ok(t_fork(reader_child, &a));
    t_assert_healthy(p);
    ASSERT_RC(mempool_close(p), 0);
    ASSERT_RC(mempool_destroy(name), 0);
}

START_TEST(test_reserve)
{
    reserve_case(MEMPOOL_HUGE_AUTO);
}
END_TEST

START_TEST(test_reserve_off)
{
    reserve_case(MEMPOOL_HUGE_OFF);
}
END_TEST

START_TEST(test_trim)
{
    char name[T_NAME_LEN];
    struct mempool_stats s0, s1;
    mempool *p;
    uint64_t full, trimmed;

    t_pool_name(name, "backing");
    ASSERT_RC(open_pool(name, 64 * MiB, MEMPOOL_HUGE_AUTO, 0, &p), 0);
    s0 = t_stats(p);
    mempool_dref r = t_put_fill(p, 16 * MiB, 5);
    full = t_shm_bytes(name);
    ASSERT_RC(mempool_delete(p, r), 0);
    ck_assert_int_ge(mempool_trim(p), (int64_t)(14 * MiB));
    trimmed = t_shm_bytes(name);
    ck_assert_uint_le(trimmed + 14 * MiB, full);   /* memory given back */
    r = t_put_fill(p, 16 * MiB, 6);                  /* backed again */
    ck_assert_uint_ge(t_shm_bytes(name), trimmed + 16 * MiB);
    t_expect_fill(p, r, 16 * MiB, 6);
    ASSERT_RC(mempool_delete(p, r), 0);
    s1 = t_stats(p);
    ck_assert_uint_eq(s1.used_bytes, s0.used_bytes);
    ck_assert_uint_eq(s1.objects, s0.objects);
    t_assert_healthy(p);
    ASSERT_RC(mempool_close(p), 0);
    ASSERT_RC(mempool_destroy(name), 0);
}
END_TEST

START_TEST(test_option)
{
    char name[T_NAME_LEN];
    mempool *p = NULL;
    mempool_options o;

    t_pool_name(name, "backing");
    ASSERT_RC(open_pool(name, 32 * MiB, 2, 0, &p), -EINVAL);
    ASSERT_RC(open_pool(name, 32 * MiB, ~0u, 0, &p), -EINVAL);
    ck_assert_ptr_null(p);
    mempool_options_init(&o);
    ck_assert_uint_eq(o.huge, MEMPOOL_HUGE_AUTO);
}
END_TEST

#ifdef T_FAILPOINTS
struct fp_case {
    const char *name, *spec;
};

/* Huge page refused at every chunk: 4 KiB pages, the put succeeds. */
static int refused_child(void *arg)
{
    const struct fp_case *c = arg;
    mempool *p;
    setenv("MEMPOOL_FAILPOINT", c->spec, 1);
    T_CHILD_EQ(open_pool(c->name, 64 * MiB, MEMPOOL_HUGE_AUTO, 0, &p), 0);
    void *buf = malloc(6 * MiB);
    mempool_dref r;
    mempool_view v;
    T_CHILD_ASSERT(buf != NULL);
    t_fill(buf, 6 * MiB, 7);
    T_CHILD_EQ(mempool_put(p, buf, 6 * MiB, &r), 0);
    T_CHILD_EQ(mempool_get(p, r, &v), 0);
    T_CHILD_ASSERT(t_check_fill(v.data, 6 * MiB, 7));
    T_CHILD_EQ(t_pmd_mapped(c->name), 0);
    T_CHILD_EQ(mempool_release(p, &v), 0);
    T_CHILD_EQ(mempool_check(p, NULL, 0), 0);
    T_CHILD_EQ(mempool_close(p), 0);
    free(buf);
    return 0;
}

START_TEST(test_refused)
{
    char name[T_NAME_LEN];
    struct fp_case c = { name, "back.chunk=enospc" };
    t_pool_name(name, "backing");
    t_wait_ok(t_fork(refused_child, &c));
    ASSERT_RC(mempool_destroy(name), 0);
}
END_TEST

/* Backing fails: the put and a reserve are -ENOSPC, nothing is charged
 * or leaked. */
static int nospace_child(void *arg)
{
    const struct fp_case *c = arg;
    struct mempool_stats s0, s1;
    mempool *p;
    void *buf = malloc(3 * MiB), *w;
    mempool_dref r;

    setenv("MEMPOOL_FAILPOINT", c->spec, 1);
    T_CHILD_ASSERT(buf != NULL);
    t_fill(buf, 3 * MiB, 8);
    T_CHILD_EQ(open_pool(c->name, 64 * MiB, MEMPOOL_HUGE_AUTO, 0, &p), 0);
    T_CHILD_EQ(mempool_stats_get(p, &s0), 0);
    T_CHILD_EQ(mempool_put(p, buf, 3 * MiB, &r), -ENOSPC);
    T_CHILD_EQ(mempool_reserve(p, 3 * MiB, NULL, &w, &r), -ENOSPC);
    T_CHILD_EQ(mempool_stats_get(p, &s1), 0);
    T_CHILD_EQ(s1.objects, s0.objects);
    T_CHILD_EQ(s1.used_bytes, s0.used_bytes);
    T_CHILD_EQ(mempool_check(p, NULL, 0), 0);
    T_CHILD_EQ(mempool_close(p), 0);
    free(buf);
    return 0;
}

START_TEST(test_nospace)
{
    char name[T_NAME_LEN];
    /* huge refused everywhere, so 4 KiB backing runs, and fails */
    struct fp_case c = { name, "back.chunk=enospc,back.pages=enospc" };
    mempool *p;
    t_pool_name(name, "backing");
    t_wait_ok(t_fork(nospace_child, &c));
    /* without the failpoint the same pages are backed by the next put */
    ASSERT_RC(t_attach(name, &p), 0);
    t_assert_healthy(p);
    ck_assert_uint_eq(t_stats(p).objects, 0);
    mempool_dref r = t_put_fill(p, 3 * MiB, 9);
    t_expect_fill(p, r, 3 * MiB, 9);
    t_assert_healthy(p);
    ASSERT_RC(mempool_close(p), 0);
    ASSERT_RC(mempool_destroy(name), 0);
}
END_TEST
#endif

#ifdef T_FAILPOINTS
/* Every backing fails in this process, yet its puts into a reserved pool
 * succeed: the pool's pages were flagged backed at open, so no set asks
 * for memory (a lazy pool fails the same put: test_nospace). */
static int reserved_child(void *arg)
{
    const struct fp_case *c = arg;
    mempool *p;
    void *buf = malloc(8 * MiB);
    mempool_dref r, s;

    setenv("MEMPOOL_FAILPOINT", c->spec, 1);
    T_CHILD_ASSERT(buf != NULL);
    t_fill(buf, 8 * MiB, 10);
    T_CHILD_EQ(t_attach(c->name, &p), 0);
    T_CHILD_EQ(mempool_put(p, buf, 8 * MiB, &r), 0);
    T_CHILD_EQ(mempool_put(p, buf, 100, &s), 0);     /* a slab page */
    T_CHILD_EQ(mempool_check(p, NULL, 0), 0);
    T_CHILD_EQ(mempool_close(p), 0);
    free(buf);
    return 0;
}

START_TEST(test_reserve_flags)
{
    char name[T_NAME_LEN];
    struct fp_case c = { name, "back.block=enospc,back.pages=enospc" };
    mempool *p;
    t_pool_name(name, "backing");
    ASSERT_RC(open_pool(name, 32 * MiB, MEMPOOL_HUGE_AUTO,
                        MEMPOOL_OPEN_RESERVE, &p), 0);
    uint64_t held = t_shm_bytes(name);
    t_wait_ok(t_fork(reserved_child, &c));
    ck_assert_uint_eq(t_shm_bytes(name), held);
    ck_assert_uint_eq(t_stats(p).objects, 2);
    t_assert_healthy(p);
    ASSERT_RC(mempool_close(p), 0);
    ASSERT_RC(mempool_destroy(name), 0);
}
END_TEST
#endif

int main(void)
{
    const struct t_case cases[] = {
        { "backing", 60, false, {
              test_lazy, test_reserve, test_reserve_off, test_huge, test_off,
              test_trim, test_option,
#ifdef T_FAILPOINTS
              test_refused, test_nospace, test_reserve_flags,
#endif
          } },
        { .name = NULL }
    };
    return t_main("backing", cases);
}
