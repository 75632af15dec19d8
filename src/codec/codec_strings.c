/* SPDX-License-Identifier: MIT */
/*
 * codec_strings.c - the built-in MEMPOOL_TYPE_STRINGS codec: arrays of byte
 * strings with 64-bit offsets and a validity bitmap.
 *
 * Why this shape: MemPool.jl stored a UInt32 length per string (4 GiB cap,
 * typemax as "undefined") and copied every string on read, which crashed
 * on million-row columns. Here the column is three flat sections - n+1 u64
 * offsets, an optional bitmap, one blob - so a read is a pointer per
 * section, an element is (blob + offsets[i], offsets[i+1] - offsets[i]),
 * strings keep NULs and any UTF-8, and "missing" is a bit, distinct from "".
 *
 * Decoding checks every offset once (from 0, non-decreasing, the last equal
 * to the blob length, missing elements empty): O(n) reads of the offsets,
 * none of the blob. A table that decoded a column once can ask for it again
 * without the scan (scan = false).
 */
#include "codec.h"

#include <errno.h>
#include <string.h>

/* Where the sections of an encoded column go. */
typedef struct layout {
    uint64_t off_bytes, blob_len, val_bytes;
    uint64_t off_off, val_off, blob_off, total;
} layout;

static int plan(const mempool_strings *s, layout *l)
{
    uint64_t end;

    if (!s || !s->offsets || s->n == UINT64_MAX)
        return -EINVAL;
    if (s->offsets[s->n] < s->offsets[0])
        return -EINVAL;
    l->blob_len = s->offsets[s->n] - s->offsets[0];
    if (l->blob_len && !s->blob)
        return -EINVAL;
    l->val_bytes = s->validity ? mp_bitmap_bytes(s->n) : 0;
    l->off_off = MP_OBJ_HDR;
    if (!mp_mul_ok(s->n + 1, 8, &l->off_bytes) ||
        !mp_add_ok(l->off_off, l->off_bytes, &end) ||
        !mp_align_ok(end, &l->val_off) ||
        !mp_add_ok(l->val_off, l->val_bytes, &end) ||
        !mp_align_ok(end, &l->blob_off) ||
        !mp_add_ok(l->blob_off, l->blob_len, &l->total))
        return -E2BIG;
    if (!s->validity) {
        l->blob_off = l->val_off;   /* no bitmap: the blob takes its place */
        l->val_off = 0;
    }
    return 0;
}

int mempool__strings_size(const mempool_strings *s, uint64_t *len)
{
    layout l;
    int rc = plan(s, &l);

    if (rc == 0)
        *len = l.total;
    return rc;
}

/* Write offsets rebased to 0, checking order and empty missing ranges. */
static int put_offsets(const mempool_strings *s, uint64_t *out)
{
    const uint64_t *in = s->offsets, base = in[0];

    out[0] = 0;
    for (uint64_t i = 0; i < s->n; i++) {
        if (in[i + 1] < in[i] ||
            (in[i + 1] != in[i] && mempool_strings_missing(s, i)))
            return -EINVAL;
        out[i + 1] = in[i + 1] - base;
    }
    return 0;
}

/* Zero [from, to) of @p d. */
static void pad(uint8_t *d, uint64_t from, uint64_t to)
{
    if (to > from)
        memset(d + from, 0, to - from);
}

int mempool__strings_encode(const mempool_strings *s, void *dst, uint64_t len)
{
    uint8_t *d = dst;
    mp_obj_header h;
    layout l;
    int rc;

    if ((rc = plan(s, &l)))
        return rc;
    if (l.total != len)
        return -EINVAL;
    if ((rc = put_offsets(s, (uint64_t *)(d + l.off_off))))
        return rc;
    mempool__hdr_init(&h, MEMPOOL_TYPE_STRINGS, len, s->n);
    h.nsections = s->validity ? 3 : 2;
    h.f[0] = l.off_off;
    h.f[1] = l.val_off;
    h.f[2] = l.blob_off;
    memcpy(d, &h, sizeof h);
    if (s->validity) {
        pad(d, l.off_off + l.off_bytes, l.val_off);
        memcpy(d + l.val_off, s->validity, l.val_bytes);
        if (s->n % 8)
            d[l.val_off + l.val_bytes - 1] &= (uint8_t)((1u << (s->n % 8)) - 1);
        pad(d, l.val_off + l.val_bytes, l.blob_off);
    } else {
        pad(d, l.off_off + l.off_bytes, l.blob_off);
    }
    if (l.blob_len)
        memcpy(d + l.blob_off, s->blob + s->offsets[0], l.blob_len);
    return 0;
}

/* The O(n) part of decoding: offsets from 0, non-decreasing, missing
 * elements empty, bitmap tail clear. */
static int scan(const mempool_strings *s)
{
    const uint64_t *o = s->offsets;

    if (o[0] != 0)
        return MEMPOOL_ECORRUPT;
    for (uint64_t i = 0; i < s->n; i++)
        if (o[i + 1] < o[i] ||
            (o[i + 1] != o[i] && mempool_strings_missing(s, i)))
            return MEMPOOL_ECORRUPT;
    if (s->validity && !mempool__bitmap_tail_ok(s->validity, s->n))
        return MEMPOOL_ECORRUPT;
    return 0;
}

int mempool__strings_decode(const void *src, uint64_t len, mempool_strings *s,
                            bool full)
{
    const uint8_t *b = src;
    uint64_t n, off_bytes, blob_len;
    mp_obj_header h;
    int rc;

    if ((rc = mempool__hdr_read(src, len, MEMPOOL_TYPE_STRINGS, &h)))
        return rc;
    n = h.count;
    if (h.flags || n == UINT64_MAX || !mp_mul_ok(n + 1, 8, &off_bytes) ||
        !mempool__section_ok(&h, h.f[0], off_bytes) ||
        (h.f[1] && !mempool__section_ok(&h, h.f[1], mp_bitmap_bytes(n))))
        return MEMPOOL_ECORRUPT;
    blob_len = ((const uint64_t *)(b + h.f[0]))[n];
    if (!mempool__section_ok(&h, h.f[2], blob_len))
        return MEMPOOL_ECORRUPT;
    s->n = n;
    s->offsets = (const uint64_t *)(b + h.f[0]);
    s->blob = b + h.f[2];
    s->validity = h.f[1] ? b + h.f[1] : NULL;
    if (full && (rc = scan(s))) {
        memset(s, 0, sizeof *s);
        return rc;
    }
    return 0;
}
