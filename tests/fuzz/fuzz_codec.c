/* SPDX-License-Identifier: MIT */
/*
 * fuzz_codec.c - libFuzzer target for the built-in codec decoders.
 *
 * Input: one selector byte (ARRAY, STRINGS or TABLE by value mod 3), then
 * the object's bytes, copied into a 64-byte aligned buffer of exactly that
 * size so ASan sees any read past the end. A decode must fail cleanly or
 * give a view whose every byte can be read; a decoded object must encode
 * again, and that encoding must decode and re-encode to the same bytes
 * (the canonical form is a fixed point). Any other outcome traps.
 *
 * Built by tests/fuzz/CMakeLists.txt (-DMEMPOOL_FUZZ=ON, CC=clang) with
 * the library sources compiled in, so internal entry points are reachable.
 * tests/fuzz/run.sh SECONDS builds and runs it over tests/fuzz/corpus/.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef union any {
    mempool_array   a;
    mempool_strings s;
    mempool_table   t;
} any;

static volatile uint8_t sink;

static void touch(const void *p, uint64_t len)
{
    const uint8_t *b = p;
    uint8_t x = 0;

    for (uint64_t i = 0; i < len; i++)
        x ^= b[i];
    sink ^= x;
}

static void walk_strings(const mempool_strings *s)
{
    for (uint64_t i = 0; i < s->n; i++) {
        uint64_t len;
        const uint8_t *e = mempool_strings_at(s, i, &len);
        if (e)
            touch(e, len);
    }
}

static void walk(uint32_t type, const any *o)
{
    mempool_column c;

    if (type == MEMPOOL_TYPE_ARRAY) {
        touch(o->a.data, o->a.nbytes);
    } else if (type == MEMPOOL_TYPE_STRINGS) {
        walk_strings(&o->s);
    } else {
        for (uint64_t i = 0; i < o->t.ncols; i++) {
            if (mempool_table_column(&o->t, i, &c))
                __builtin_trap();       /* decoded once: must stay valid */
            touch(c.name, c.name_len + 1);
            walk(c.type, (const any *)&c.array);
        }
    }
}

/* Encode @p o into a fresh aligned buffer. */
static uint8_t *encode(uint32_t type, const any *o, uint64_t *len)
{
    void *buf = NULL;

    if (mempool__builtin_size(type, o, len) || *len > (64u << 20) ||
        posix_memalign(&buf, 64, *len ? *len : 64))
        __builtin_trap();
    if (mempool__builtin_encode(type, o, buf, *len))
        __builtin_trap();
    return buf;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint32_t types[] = {MEMPOOL_TYPE_ARRAY, MEMPOOL_TYPE_STRINGS,
                                     MEMPOOL_TYPE_TABLE};
    uint64_t len1, len2;
    uint8_t *in = NULL, *e1, *e2;
    uint32_t type;
    any o, o1;
    int rc;

    if (size < 1)
        return 0;
    type = types[data[0] % 3];
    if (posix_memalign((void **)&in, 64, size - 1 ? size - 1 : 1))
        return 0;
    memcpy(in, data + 1, size - 1);
    rc = mempool__builtin_decode(type, in, size - 1, &o);
    if (rc != 0) {
        if (rc != MEMPOOL_ECORRUPT && rc != -ENOTSUP)
            __builtin_trap();
        free(in);
        return 0;
    }
    walk(type, &o);
    e1 = encode(type, &o, &len1);
    if (mempool__builtin_decode(type, e1, len1, &o1))
        __builtin_trap();
    walk(type, &o1);
    e2 = encode(type, &o1, &len2);
    if (len1 != len2 || memcmp(e1, e2, len1) != 0)
        __builtin_trap();
    free(e2);
    free(e1);
    free(in);
    return 0;
}
