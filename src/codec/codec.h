/* SPDX-License-Identifier: MIT */
/*
 * codec.h - what the codec files share (internal): the 64-byte in-object
 * header, overflow-checked arithmetic and the built-in codecs' entry points.
 *
 * The layout itself is documented in include/mempool/mempool.h ("Encoded layout"),
 * where users and other languages read it. Here: the header as a struct,
 * and the rules every built-in follows.
 *
 *  - A built-in's size/encode/decode work on a whole object, header
 *    included, so a table can nest an ARRAY or STRINGS object as a column
 *    unchanged. User codecs work on the payload after the header; codec.c
 *    writes and checks that header for them.
 *  - Encoders write every byte of [0, len), padding included (zero): arena
 *    memory is reused and holds old bytes.
 *  - Decoders trust nothing: every offset and length is checked against
 *    the object's total length with overflow-checked arithmetic before a
 *    byte behind it is read. They fail with MEMPOOL_ECORRUPT (bad bytes),
 *    -ENOTSUP (a newer format version) or -EINVAL (misaligned input).
 *  - Decoding never allocates and never copies: the structs it fills point
 *    into the object.
 */
#ifndef MEMPOOL_CODEC_H
#define MEMPOOL_CODEC_H

#include <stdbool.h>
#include <stdint.h>

#include <mempool/mempool.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "mempool codecs are defined for little-endian hosts only"
#endif

#define MP_OBJ_MAGIC   0x4A424F4Du  /* the bytes "MOBJ" */
#define MP_OBJ_VERSION 1u
#define MP_OBJ_BOM     1u           /* little-endian */
#define MP_OBJ_HDR     64u
#define MP_OBJ_ALIGN   64u

/* The first 64 bytes of every typed object (never of a BYTES object). */
typedef struct mp_obj_header {
    uint32_t magic;
    uint16_t version;
    uint8_t  bom;
    uint8_t  hdr_units;      /* header size in 64-byte units */
    uint32_t type;
    uint32_t codec_version;
    uint64_t total;          /* object length, header included */
    uint64_t count;          /* elements or rows */
    uint32_t flags;
    uint32_t nsections;
    uint64_t f[3];           /* codec fields */
} mp_obj_header;

_Static_assert(sizeof(mp_obj_header) == 64, "object header is 64 bytes");

/* ---- arithmetic ------------------------------------------------------- */

static inline bool mp_add_ok(uint64_t a, uint64_t b, uint64_t *out)
{
    return !__builtin_add_overflow(a, b, out);
}

static inline bool mp_mul_ok(uint64_t a, uint64_t b, uint64_t *out)
{
    return !__builtin_mul_overflow(a, b, out);
}

/* Round @p x up to a multiple of 64; false on overflow. */
static inline bool mp_align_ok(uint64_t x, uint64_t *out)
{
    if (x > UINT64_MAX - (MP_OBJ_ALIGN - 1))
        return false;
    *out = (x + MP_OBJ_ALIGN - 1) & ~(uint64_t)(MP_OBJ_ALIGN - 1);
    return true;
}

/* Bytes of a bitmap of @p n bits. */
static inline uint64_t mp_bitmap_bytes(uint64_t n)
{
    return n / 8 + (n % 8 != 0);
}

/* ---- header (codec.c) ------------------------------------------------- */

/* Fill @p h with magic, version, byte order, one header unit and the
 * given fields; nsections, flags and f[] are the caller's. */
void mempool__hdr_init(mp_obj_header *h, uint32_t type, uint64_t total,
                       uint64_t count);

/* Read and check the header of the object at @p src (@p len bytes
 * available): length, magic, version, byte order, header size, type ==
 * @p type, total <= len. @return 0, MEMPOOL_ECORRUPT, -ENOTSUP (newer
 * format), -EINVAL (@p src not 64-byte aligned). */
int  mempool__hdr_read(const void *src, uint64_t len, uint32_t type,
                       mp_obj_header *h);

/* True if [off, off+len) is a valid section of @p h's object: 64-aligned,
 * after the header, inside the total length, no overflow. */
bool mempool__section_ok(const mp_obj_header *h, uint64_t off, uint64_t len);

/* True if the bits of a @p n-bit bitmap past bit n-1 are all zero. */
bool mempool__bitmap_tail_ok(const uint8_t *map, uint64_t n);

/* ---- built-ins: whole objects, header included ------------------------- */

int mempool__array_size(const mempool_array *a, uint64_t *len);
int mempool__array_encode(const mempool_array *a, void *dst, uint64_t len);
int mempool__array_decode(const void *src, uint64_t len, mempool_array *a);

/* @p full: check every offset and the validity bitmap (O(n)); without it
 * only the O(1) checks run (for a column of a table decoded before). */
int mempool__strings_size(const mempool_strings *s, uint64_t *len);
int mempool__strings_encode(const mempool_strings *s, void *dst,
                            uint64_t len);
int mempool__strings_decode(const void *src, uint64_t len, mempool_strings *s,
                            bool full);

int mempool__table_size(const mempool_table *t, uint64_t *len);
int mempool__table_encode(const mempool_table *t, void *dst, uint64_t len);
int mempool__table_decode(const void *src, uint64_t len, mempool_table *t);

/* Dispatch on a built-in type id (BYTES, ARRAY, STRINGS, TABLE).
 * @return as the codec, or -EINVAL for another type. */
int mempool__builtin_size(uint32_t type, const void *obj, uint64_t *len);
int mempool__builtin_encode(uint32_t type, const void *obj, void *dst,
                            uint64_t len);
int mempool__builtin_decode(uint32_t type, const void *src, uint64_t len,
                            void *obj);

#endif /* MEMPOOL_CODEC_H */
