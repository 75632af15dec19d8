/* SPDX-License-Identifier: MIT */
/*
 * crc32c_fold.c - crc32c of large buffers by carry-less multiplication
 * (VPCLMULQDQ on 256-bit registers), the fastest of crc32c.c's three ways
 * where the CPU has it (x86-64 with AVX2 + VPCLMULQDQ: Intel Ice Lake and
 * later, AMD Zen 3 and later). crc32c.c picks it at run time by cpuid.
 *
 * Why: the crc32 instruction handles 8 bytes per cycle at best (three
 * interleaved streams), about 16 GB/s on the 2-vCPU EPYC test VM, which
 * reads memory at ~40 GB/s; a spill file's checksum was a quarter of a
 * spill write and twice a plain read of the mapping. Folding multiplies
 * 16-byte blocks by constants and xors them into the blocks 128 bytes
 * further on, 128 bytes per round in four independent registers, and
 * runs at memory speed.
 *
 * The arithmetic (reflected crc; a 16-byte block X loaded little-endian
 * has byte 0 bit 0 as its highest coefficient, x^127): X followed F bits
 * later by Y is congruent (mod P) to X * x^F + Y. With X = H * x^64 + L,
 * H being the low quadword, X * x^F = H * x^(F+64) + L * x^F, and a
 * reflected carry-less product of H with the 32-bit reflected constant
 * c = x^m mod P, held in the low half of a quadword, is H * c * x^33 in
 * the 128-bit register's terms. So the fold constants are x^(F+64-33) and
 * x^(F-33) mod P (fold_key()). What is left after the last fold is one
 * block congruent to the whole input, and crc32 of its 16 bytes from zero
 * is the crc; bytes after the last whole block go through crc32 too.
 *
 * The running crc comes in pre-inverted (crc32c.c's convention) and is
 * xored into the first four bytes, which is what a crc register does.
 */
#include <pthread.h>
#include <string.h>

#include "crc32c.h"

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include <immintrin.h>

#define MP_CRC32C_POLY 0x82F63B78u

/* x^n mod P, reflected (bit k is the coefficient of x^(31-k)). */
static uint32_t xn_mod_p(unsigned n)
{
    uint32_t v = 0x80000000u;                 /* x^0 */

    while (n--)                               /* times x, mod P */
        v = (v >> 1) ^ (MP_CRC32C_POLY & (0u - (v & 1u)));
    return v;
}

/* The constants that fold a block F = 8 * @p bytes bits forward. */
typedef struct fold_key {
    uint64_t hi, lo;        /* for H (low quadword) and L (high one) */
} fold_key;

static fold_key key128, key32, key16;
static pthread_once_t keys_once = PTHREAD_ONCE_INIT;

static fold_key fold_key_of(unsigned bytes)
{
    fold_key k = { xn_mod_p(8 * bytes + 64 - 33), xn_mod_p(8 * bytes - 33) };
    return k;
}

static void keys_build(void)
{
    key128 = fold_key_of(128);
    key32 = fold_key_of(32);
    key16 = fold_key_of(16);
}

__attribute__((target("avx2,pclmul,vpclmulqdq")))
static __m256i fold256(__m256i x, __m256i k, __m256i next)
{
    __m256i h = _mm256_clmulepi64_epi128(x, k, 0x00);
    __m256i l = _mm256_clmulepi64_epi128(x, k, 0x11);

    return _mm256_xor_si256(_mm256_xor_si256(h, l), next);
}

__attribute__((target("pclmul,sse4.2")))
static __m128i fold128(__m128i x, __m128i k, __m128i next)
{
    __m128i h = _mm_clmulepi64_si128(x, k, 0x00);
    __m128i l = _mm_clmulepi64_si128(x, k, 0x11);

    return _mm_xor_si128(_mm_xor_si128(h, l), next);
}

__attribute__((target("avx2")))
static __m256i load256(const uint8_t *p)
{
    return _mm256_loadu_si256((const __m256i *)(const void *)p);
}

/* Fold @p len (a multiple of 128, at least 128) bytes at @p p, the first
 * four xored with @p crc, down to one 16-byte block. */
__attribute__((target("avx2,pclmul,vpclmulqdq")))
static __m128i fold_blocks(uint32_t crc, const uint8_t *p, size_t len)
{
    __m256i k = _mm256_set_epi64x((long long)key128.lo, (long long)key128.hi,
                                  (long long)key128.lo, (long long)key128.hi);
    __m256i x0 = _mm256_xor_si256(load256(p),
                                  _mm256_set_epi64x(0, 0, 0, (long long)crc));
    __m256i x1 = load256(p + 32), x2 = load256(p + 64), x3 = load256(p + 96);
    __m128i lo, hi;

    for (size_t i = 128; i < len; i += 128) {
        x0 = fold256(x0, k, load256(p + i));
        x1 = fold256(x1, k, load256(p + i + 32));
        x2 = fold256(x2, k, load256(p + i + 64));
        x3 = fold256(x3, k, load256(p + i + 96));
    }
    k = _mm256_set_epi64x((long long)key32.lo, (long long)key32.hi,
                          (long long)key32.lo, (long long)key32.hi);
    x1 = fold256(x0, k, x1);
    x2 = fold256(x1, k, x2);
    x3 = fold256(x2, k, x3);
    lo = _mm256_castsi256_si128(x3);
    hi = _mm256_extracti128_si256(x3, 1);
    return fold128(lo, _mm_set_epi64x((long long)key16.lo,
                                      (long long)key16.hi), hi);
}

/* crc32 of the 16 bytes of @p x from zero: the crc of all folded input. */
__attribute__((target("sse4.2")))
static uint32_t reduce(__m128i x)
{
    uint64_t c = _mm_crc32_u64(0, (uint64_t)_mm_cvtsi128_si64(x));

    return (uint32_t)_mm_crc32_u64(c, (uint64_t)_mm_extract_epi64(x, 1));
}

__attribute__((target("sse4.2")))
static uint32_t crc_tail(uint32_t crc, const uint8_t *p, size_t len)
{
    uint64_t c = crc;

    for (; len >= 8; p += 8, len -= 8) {
        uint64_t v;

        memcpy(&v, p, 8);
        c = _mm_crc32_u64(c, v);
    }
    for (; len; p++, len--)
        c = _mm_crc32_u8((uint32_t)c, *p);
    return (uint32_t)c;
}

uint32_t mempool__crc32c_fold_raw(uint32_t crc, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    size_t body = len & ~(size_t)127;
    __m128i x;

    if (body == 0)
        return crc_tail(crc, p, len);
    pthread_once(&keys_once, keys_build);
    x = fold_blocks(crc, p, body);
    p += body;
    len -= body;
    for (; len >= 16; p += 16, len -= 16)
        x = fold128(x, _mm_set_epi64x((long long)key16.lo,
                                      (long long)key16.hi),
                    _mm_loadu_si128((const __m128i *)(const void *)p));
    return crc_tail(reduce(x), p, len);
}

bool mempool__crc32c_fold_ok(void)
{
    __builtin_cpu_init();         /* needed if we run from a constructor */
    return __builtin_cpu_supports("sse4.2") &&
           __builtin_cpu_supports("pclmul") &&
           __builtin_cpu_supports("avx2") &&
           __builtin_cpu_supports("vpclmulqdq");
}

#else  /* not x86-64: never chosen */

uint32_t mempool__crc32c_fold_raw(uint32_t crc, const void *buf, size_t len)
{
    (void)buf;
    (void)len;
    return crc;
}

bool mempool__crc32c_fold_ok(void)
{
    return false;
}

#endif
