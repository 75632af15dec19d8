/* SPDX-License-Identifier: MIT */
/*
 * codec_array.c - the built-in MEMPOOL_TYPE_ARRAY codec: n-dimensional
 * arrays of fixed-size elements (integers, floats, bytes-as-bools, packed
 * bits, and records of any size, 20 bytes or 0 included).
 *
 * Layout (see "Encoded layout" in mempool.h): the 64-byte header, the shape
 * as eight u64 at 64, the data at 128 (64-aligned, so float64 and SIMD
 * loads are aligned in the arena and in a mapped file). An array with no
 * data bytes has no data section and a data offset of 0: reading it maps
 * nothing. count and byte length are products of the shape, computed with
 * overflow checks on both sides, so a forged shape cannot make a reader
 * walk past the object.
 */
#include "codec.h"

#include <errno.h>
#include <string.h>

#define SHAPE_OFF 64u
#define DATA_OFF  128u

/* dtype numbers are stored in objects and files: they never change. */
_Static_assert(MEMPOOL_DTYPE_FLOAT64 == 10 && MEMPOOL_DTYPE_BOOL == 11 &&
               MEMPOOL_DTYPE_BITS == 12 && MEMPOOL_DTYPE_RECORD == 13,
               "dtype ids are part of the format");

/* Bytes per element of @p dtype; 0 for BITS and RECORD (given by the
 * caller), -1 for an unknown dtype. */
static int dtype_size(uint32_t dtype)
{
    static const signed char size[] = {
        [MEMPOOL_DTYPE_INT8] = 1,    [MEMPOOL_DTYPE_INT16] = 2,
        [MEMPOOL_DTYPE_INT32] = 4,   [MEMPOOL_DTYPE_INT64] = 8,
        [MEMPOOL_DTYPE_UINT8] = 1,   [MEMPOOL_DTYPE_UINT16] = 2,
        [MEMPOOL_DTYPE_UINT32] = 4,  [MEMPOOL_DTYPE_UINT64] = 8,
        [MEMPOOL_DTYPE_FLOAT32] = 4, [MEMPOOL_DTYPE_FLOAT64] = 8,
        [MEMPOOL_DTYPE_BOOL] = 1,    [MEMPOOL_DTYPE_BITS] = 0,
        [MEMPOOL_DTYPE_RECORD] = 0,
    };
    if (dtype == 0 || dtype >= sizeof size)
        return -1;
    return size[dtype];
}

/* Check dtype, ndim, element size and shape; compute the element size,
 * count and data bytes. @return 0 or -EINVAL (-E2BIG on overflow). */
static int geometry(uint32_t dtype, uint32_t ndim, const uint64_t *shape,
                    uint64_t elem, uint64_t *esz, uint64_t *count,
                    uint64_t *nbytes)
{
    int fixed = dtype_size(dtype);
    uint64_t n = 1;

    if (fixed < 0 || ndim > MEMPOOL_ARRAY_MAXDIM)
        return -EINVAL;
    if (dtype == MEMPOOL_DTYPE_BITS && elem != 0)
        return -EINVAL;
    if (dtype != MEMPOOL_DTYPE_RECORD && fixed > 0) {
        if (elem != 0 && elem != (uint64_t)fixed)
            return -EINVAL;
        elem = (uint64_t)fixed;
    }
    for (uint32_t i = 0; i < ndim; i++)
        if (!mp_mul_ok(n, shape[i], &n))
            return -E2BIG;
    if (dtype == MEMPOOL_DTYPE_BITS)
        *nbytes = mp_bitmap_bytes(n);
    else if (!mp_mul_ok(n, elem, nbytes))
        return -E2BIG;
    *esz = elem;
    *count = n;
    return 0;
}

int mempool__array_size(const mempool_array *a, uint64_t *len)
{
    uint64_t esz, count, nbytes;
    int rc;

    if (!a || (a->flags & ~MEMPOOL_ARRAY_COLMAJOR))
        return -EINVAL;
    if ((rc = geometry(a->dtype, a->ndim, a->shape, a->elem_size, &esz,
                       &count, &nbytes)))
        return rc;
    if (nbytes && !a->data)
        return -EINVAL;
    return mp_add_ok(DATA_OFF, nbytes, len) ? 0 : -E2BIG;
}

int mempool__array_encode(const mempool_array *a, void *dst, uint64_t len)
{
    uint64_t esz, count, nbytes, shape[MEMPOOL_ARRAY_MAXDIM] = {0};
    uint8_t *d = dst;
    mp_obj_header h;
    int rc;

    if ((rc = mempool__array_size(a, &h.total)))
        return rc;
    if (h.total != len)
        return -EINVAL;
    geometry(a->dtype, a->ndim, a->shape, a->elem_size, &esz, &count,
             &nbytes);
    mempool__hdr_init(&h, MEMPOOL_TYPE_ARRAY, len, count);
    h.flags = a->flags;
    h.nsections = nbytes ? 2 : 1;
    h.f[0] = (uint64_t)a->dtype | (uint64_t)a->ndim << 32;
    h.f[1] = esz;
    h.f[2] = nbytes ? DATA_OFF : 0;
    memcpy(d, &h, sizeof h);
    memcpy(shape, a->shape, a->ndim * sizeof shape[0]);
    memcpy(d + SHAPE_OFF, shape, sizeof shape);
    if (nbytes)
        memcpy(d + DATA_OFF, a->data, nbytes);
    if (a->dtype == MEMPOOL_DTYPE_BITS && count % 8)
        d[DATA_OFF + nbytes - 1] &= (uint8_t)((1u << (count % 8)) - 1);
    return 0;
}

int mempool__array_decode(const void *src, uint64_t len, mempool_array *a)
{
    const uint8_t *s = src;
    uint64_t shape[MEMPOOL_ARRAY_MAXDIM], esz, count, nbytes;
    uint32_t dtype, ndim;
    mp_obj_header h;
    int rc;

    if ((rc = mempool__hdr_read(src, len, MEMPOOL_TYPE_ARRAY, &h)))
        return rc;
    if ((h.flags & ~MEMPOOL_ARRAY_COLMAJOR) || h.hdr_units != 1 ||
        h.total < DATA_OFF)
        return MEMPOOL_ECORRUPT;
    dtype = (uint32_t)h.f[0];
    ndim = (uint32_t)(h.f[0] >> 32);
    memcpy(shape, s + SHAPE_OFF, sizeof shape);
    if (geometry(dtype, ndim, shape, h.f[1], &esz, &count, &nbytes) ||
        esz != h.f[1] || count != h.count)
        return MEMPOOL_ECORRUPT;
    for (uint32_t i = ndim; i < MEMPOOL_ARRAY_MAXDIM; i++)
        if (shape[i])
            return MEMPOOL_ECORRUPT;
    if (nbytes ? h.f[2] < DATA_OFF || !mempool__section_ok(&h, h.f[2], nbytes)
               : h.f[2] != 0)
        return MEMPOOL_ECORRUPT;
    if (dtype == MEMPOOL_DTYPE_BITS && nbytes &&
        !mempool__bitmap_tail_ok(s + h.f[2], count))
        return MEMPOOL_ECORRUPT;
    memset(a, 0, sizeof *a);
    a->dtype = dtype;
    a->ndim = ndim;
    memcpy(a->shape, shape, sizeof shape);
    a->elem_size = esz;
    a->flags = h.flags;
    a->data = s + (nbytes ? h.f[2] : DATA_OFF);
    a->count = count;
    a->nbytes = nbytes;
    return 0;
}
