/* SPDX-License-Identifier: MIT */
/*
 * consumer.c - a program outside the tree, built against an installed
 * mempool (pkg-config, find_package, or the Debian dev package) by the
 * packaging lane of tools/quickstart. It uses a real pool: put, get,
 * compare, limits, figures, the DRef text form, the version checks; with
 * -DUSE_OLD_NAMES it calls the deprecated 0.1.0 names, which must still
 * link against the new library. Exit 0 and one "consumer: ok" line, or 1.
 *
 *   consumer POOL_NAME
 */
#include <mempool/mempool.h>

#include <stdio.h>
#include <string.h>

#define CHECK(e)                                                             \
    do {                                                                     \
        int rc_ = (e);                                                       \
        if (rc_ < 0) {                                                       \
            fprintf(stderr, "consumer: %s = %d (%s)\n", #e, rc_,             \
                    mempool_strerror(rc_));                                  \
            return 1;                                                        \
        }                                                                    \
    } while (0)

static int use(mempool *p)
{
    static const char msg[] = "hello from an installed libmempool";
    struct mempool_stats s;
    char txt[MEMPOOL_DREF_STRLEN];
    mempool_dref r, back;
    mempool_view v;
    uint64_t lim = 0;

#ifdef USE_OLD_NAMES
    CHECK(mempool_set(p, msg, sizeof msg, &r));
    CHECK(mempool_set_max_memsize(p, 1u << 20));
    CHECK(mempool_stats(p, &s));
#else
    CHECK(mempool_put(p, msg, sizeof msg, &r));
    CHECK(mempool_limit_set(p, MEMPOOL_LIMIT_MEMSIZE, 1u << 20));
    CHECK(mempool_stats_get(p, &s));
#endif
    CHECK(mempool_limit_get(p, MEMPOOL_LIMIT_MEMSIZE, &lim));
    CHECK(mempool_dref_format(r, txt, sizeof txt));
    CHECK(mempool_dref_parse(txt, &back));
    CHECK(mempool_get(p, back, &v));
    if (v.len != sizeof msg || memcmp(v.data, msg, sizeof msg) != 0 ||
        lim != 1u << 20 || s.objects < 1) {
        fprintf(stderr, "consumer: wrong bytes, limit or figures\n");
        return 1;
    }
    CHECK(mempool_release(p, &v));
    CHECK(mempool_delete(p, r));
    return 0;
}

int main(int argc, char **argv)
{
    mempool_options o;
    mempool *p;
    int bad;

    if (argc != 2)
        return 2;
    if (mempool_version_number() < MEMPOOL_VERSION_NUMBER / 100 * 100) {
        fprintf(stderr, "consumer: library %s older than header %s\n",
                mempool_version(), MEMPOOL_VERSION_STRING);
        return 1;
    }
    mempool_options_init(&o);
    o.arena_bytes = 16u << 20;
    o.flags = MEMPOOL_OPEN_CREATE | MEMPOOL_OPEN_EXCL;
    CHECK(mempool_open(argv[1], &o, &p));
    bad = use(p);
    CHECK(mempool_close(p));
    CHECK(mempool_destroy(argv[1]));
    if (bad)
        return 1;
    printf("consumer: ok (library %s, header %s)\n", mempool_version(),
           MEMPOOL_VERSION_STRING);
    return 0;
}
