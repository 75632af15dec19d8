/* SPDX-License-Identifier: MIT */
/*
 * t_peer.c - an unrelated program the tests exec(), so that two processes
 * sharing a pool share nothing else: no inherited mapping, handle or memory.
 * It links only libmempool and uses only the public API.
 *
 *   t_peer get <name> <dref> <len> <fnv1a-hex>
 *       attach (no CREATE), get the object, check it lies in memory, has
 *       <len> bytes and that FNV-1a-64 of them is <fnv1a-hex>; release.
 *   t_peer set <name> <len> <seed>
 *       attach, set <len> bytes of a pattern derived from <seed>, print the
 *       DRef text and the pattern's FNV-1a-64 ("<dref> <hex>\n") on stdout,
 *       close (the object must outlive this process).
 *
 * Exit status: 0 ok, 1 mismatch, 2 usage, 3 open failed, 4 get/set failed.
 * The spill directory comes from $T_PEER_SPILL_DIR when set.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mempool/mempool.h>

static uint64_t fnv1a(const void *buf, size_t len)
{
    const unsigned char *b = buf;
    uint64_t h = 0xcbf29ce484222325ull;

    for (size_t i = 0; i < len; i++) {
        h ^= b[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static int attach(const char *name, mempool **p)
{
    mempool_options o;
    const char *spill = getenv("T_PEER_SPILL_DIR");
    int rc;

    mempool_options_init(&o);
    o.flags = 0;
    if (spill && *spill)
        o.spill_dir = spill;
    rc = mempool_open(name, &o, p);
    if (rc != 0)
        fprintf(stderr, "t_peer: open %s: %s\n", name, mempool_strerror(rc));
    return rc;
}

static int do_get(char **argv)
{
    mempool *p;
    mempool_dref r;
    mempool_view v;
    uint64_t len = strtoull(argv[4], NULL, 10);
    uint64_t want = strtoull(argv[5], NULL, 16);
    int rc, bad = 0;

    if (mempool_dref_parse(argv[3], &r) != 0) {
        fprintf(stderr, "t_peer: bad dref '%s'\n", argv[3]);
        return 2;
    }
    if (attach(argv[2], &p) != 0)
        return 3;
    rc = mempool_get(p, r, &v);
    if (rc != 0) {
        fprintf(stderr, "t_peer: get: %s\n", mempool_strerror(rc));
        mempool_close(p);
        return 4;
    }
    if (!v.data || v.len != len || !(v.flags & MEMPOOL_VIEW_MEMORY) ||
        fnv1a(v.data, v.len) != want) {
        fprintf(stderr, "t_peer: mismatch: len %" PRIu64 " (want %" PRIu64
                "), flags %u, fnv %016" PRIx64 " (want %016" PRIx64 ")\n",
                v.len, len, v.flags, v.data ? fnv1a(v.data, v.len) : 0, want);
        bad = 1;
    }
    if (mempool_release(p, &v) != 0)
        bad = 1;
    mempool_close(p);
    return bad;
}

static int do_set(char **argv)
{
    mempool *p;
    mempool_dref r;
    size_t len = (size_t)strtoull(argv[3], NULL, 10);
    uint64_t s = strtoull(argv[4], NULL, 10) | 1;
    unsigned char *buf = malloc(len ? len : 1);
    char text[MEMPOOL_DREF_STRLEN];
    int rc;

    if (!buf)
        return 4;
    for (size_t i = 0; i < len; i++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        buf[i] = (unsigned char)s;
    }
    if (attach(argv[2], &p) != 0) {
        free(buf);
        return 3;
    }
    rc = mempool_put(p, buf, len, &r);
    if (rc != 0 || mempool_dref_format(r, text, sizeof text) != 33) {
        fprintf(stderr, "t_peer: set: %s\n", mempool_strerror(rc));
        free(buf);
        mempool_close(p);
        return 4;
    }
    printf("%s %016" PRIx64 "\n", text, fnv1a(buf, len));
    fflush(stdout);
    free(buf);
    return mempool_close(p) == 0 ? 0 : 4;
}

int main(int argc, char **argv)
{
    if (argc == 6 && strcmp(argv[1], "get") == 0)
        return do_get(argv);
    if (argc == 5 && strcmp(argv[1], "set") == 0)
        return do_set(argv);
    fprintf(stderr, "usage: t_peer get <name> <dref> <len> <fnv1a-hex>\n"
                    "       t_peer set <name> <len> <seed>\n");
    return 2;
}
