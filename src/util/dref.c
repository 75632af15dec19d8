/* SPDX-License-Identifier: MIT */
/*
 * dref.c - the text form of a DRef: "<16 hex digits>:<16 hex digits>"
 * (entry offset, generation), lowercase on output, exact on input, so it
 * can travel through argv, environment variables, files and shells. Parsing
 * accepts exactly that form (lowercase), so every DRef has one spelling;
 * all 128 bits travel, the data hint in off's spare bits included.
 * mempool_dref_equal(): what names an object, the hint masked away.
 */
#include <errno.h>
#include <stdio.h>

#include <mempool/mempool.h>

int mempool_dref_format(mempool_dref r, char *buf, size_t len)
{
    if (!buf)
        return -EINVAL;
    if (len < MEMPOOL_DREF_STRLEN)
        return -ENOSPC;
    return snprintf(buf, len, "%016llx:%016llx", (unsigned long long)r.off,
                    (unsigned long long)r.gen);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

static int parse_hex16(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    for (int i = 0; i < 16; i++) {
        int d = hexval(s[i]);
        if (d < 0)
            return -EINVAL;
        v = (v << 4) | (uint64_t)d;
    }
    *out = v;
    return 0;
}

int mempool_dref_parse(const char *s, mempool_dref *out)
{
    mempool_dref r;
    if (!s || !out)
        return -EINVAL;
    for (int i = 0; i < 33; i++)        /* no NUL inside the fixed form */
        if (s[i] == '\0')
            return -EINVAL;
    if (s[16] != ':' || s[33] != '\0')
        return -EINVAL;
    if (parse_hex16(s, &r.off) || parse_hex16(s + 17, &r.gen))
        return -EINVAL;
    *out = r;
    return 0;
}

int mempool_dref_equal(mempool_dref a, mempool_dref b)
{
    return ((a.off ^ b.off) & MEMPOOL_DREF_ENTRY_BITS) == 0 && a.gen == b.gen;
}
