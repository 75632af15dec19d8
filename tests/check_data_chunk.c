/* SPDX-License-Identifier: MIT */
/*
 * check_data_chunk.c - where a pool's data region starts, and what a new
 * pool has backed before its first set (issue 11 target 3; arena.c
 * data_fit, mempool__alloc_init).
 *
 *   layout     the data starts on a 2 MiB chunk boundary wherever that
 *              costs at most 1/8 of the data pages (from 16 MiB arenas
 *              with today's metadata); where it does not (small arenas)
 *              it starts right after the metadata, as before
 *   first      with huge pages (AUTO, a kernel that can): a new pool's
 *              first data chunk is backed at creation, so a 1 MiB set
 *              backs nothing more (before: it spilled past the
 *              metadata's chunk and backed 112 KiB there), and a fresh
 *              reader maps it by a PMD
 *   gap        with MEMPOOL_HUGE_OFF creation backs the metadata and the
 *              first data page only: the gap before the data is never
 *              backed
 *
 * INTERNAL: it reads the header (layout.h).
 */
#include "helpers.h"

#include <stdlib.h>

#include "internal.h"

#define MiB (1ull << 20)

/* The data pages of @p arena if the data started right after the
 * metadata: what the layout gives up by aligning it. */
static uint64_t unaligned_pages(const mp_header *h)
{
    uint64_t end = h->bitmap_off + (h->npages + 63) / 64 * 8;
    end = (end + MP_PAGE - 1) / MP_PAGE * MP_PAGE;
    return (h->arena_bytes - end) / MP_PAGE;
}

static int open_new(const char *name, uint64_t arena, uint32_t huge,
                    mempool **p)
{
    mempool_options o;
    t_options(&o, arena);
    o.huge = huge;
    return mempool_open(name, &o, p);
}

START_TEST(test_layout)
{
    static const uint64_t mib[] = { 3, 4, 8, 12, 16, 18, 34, 144, 1024 };
    char name[T_NAME_LEN];
    for (size_t i = 0; i < sizeof mib / sizeof mib[0]; i++) {
        mempool *p;
        t_pool_name(name, "chunk");
        ASSERT_RC(open_new(name, mib[i] * MiB, MEMPOOL_HUGE_OFF, &p), 0);
        const mp_header *h = p->h;
        uint64_t gap = h->data_off - (h->bitmap_off + (h->npages + 63) / 64 *
                                      8);
        ck_assert_uint_le(h->data_off + h->npages * MP_PAGE, mib[i] * MiB);
        if (h->data_off % MP_CHUNK == 0) {
            ck_assert_uint_lt(gap, MP_CHUNK);
            ck_assert_uint_ge(h->npages, unaligned_pages(h) -
                              unaligned_pages(h) / 8);
        } else {
            ck_assert_uint_lt(gap, MP_PAGE);       /* as before */
            ck_assert_uint_lt(mib[i], 16);
        }
        ASSERT_RC(mempool_close(p), 0);
        ASSERT_RC(mempool_destroy(name), 0);
    }
}
END_TEST

struct reader {
    const char *name;
    mempool_dref r;
};

/* A fresh process reads the 1 MiB object: one PMD maps it. */
static int reader_child(void *arg)
{
    struct reader *a = arg;
    mempool_view v;
    mempool *p;
    T_CHILD_EQ(t_attach(a->name, &p), 0);
    T_CHILD_EQ(mempool_get(p, a->r, &v), 0);
    T_CHILD_ASSERT(v.len == MiB && t_check_fill(v.data, MiB, 5));
    T_CHILD_ASSERT(t_pmd_mapped(a->name) >= 2 * MiB);
    T_CHILD_EQ(mempool_release(p, &v), 0);
    T_CHILD_EQ(mempool_close(p), 0);
    return 0;
}

START_TEST(test_first)
{
    char name[T_NAME_LEN];
    mempool *p;
    mempool_dref r;
    uint64_t held;
    void *buf = malloc(MiB);

    if (!t_huge_possible()) {
        fprintf(stderr, "check_data_chunk: no MADV_COLLAPSE on tmpfs here: "
                "first case skipped\n");
        free(buf);
        return;
    }
    ck_assert_ptr_nonnull(buf);
    t_pool_name(name, "chunk");
    ASSERT_RC(open_new(name, 18 * MiB, MEMPOOL_HUGE_AUTO, &p), 0);
    ck_assert_uint_eq(p->h->data_off % MP_CHUNK, 0);
    held = t_shm_bytes(name);
    ck_assert_uint_ge(held, p->h->data_off + MP_CHUNK - MP_CHUNK / 2);
    t_fill(buf, MiB, 5);
    ASSERT_RC(mempool_put(p, buf, MiB, &r), 0);
    ck_assert_msg(t_shm_bytes(name) == held, "a new pool's first 1 MiB set "
                  "backed %llu bytes more",
                  (unsigned long long)(t_shm_bytes(name) - held));
    struct reader a = { name, r };
    t_wait_ok(t_fork(reader_child, &a));
    ASSERT_RC(mempool_delete(p, r), 0);
    t_assert_healthy(p);
    free(buf);
    ASSERT_RC(mempool_close(p), 0);
    ASSERT_RC(mempool_destroy(name), 0);
}
END_TEST

START_TEST(test_gap)
{
    char name[T_NAME_LEN];
    mempool *p;
    mempool_dref r;
    uint64_t meta;

    t_pool_name(name, "chunk");
    ASSERT_RC(open_new(name, 18 * MiB, MEMPOOL_HUGE_OFF, &p), 0);
    meta = p->h->bitmap_off + (p->h->npages + 63) / 64 * 8;
    meta = (meta + MP_PAGE - 1) / MP_PAGE * MP_PAGE;
    ck_assert_uint_gt(p->h->data_off - meta, 64 * 1024);
    ck_assert_uint_le(t_shm_bytes(name), meta + MP_PAGE); /* + page 0 */
    ASSERT_RC(mempool_put(p, "x", 1, &r), 0);
    ASSERT_RC(mempool_delete(p, r), 0);
    t_assert_healthy(p);
    ASSERT_RC(mempool_close(p), 0);
    ASSERT_RC(mempool_destroy(name), 0);
}
END_TEST

int main(void)
{
    const struct t_case cases[] = {
        { "data_chunk", 60, true, { test_layout, test_first, test_gap } },
        { .name = NULL }
    };
    return t_main("data_chunk", cases);
}
