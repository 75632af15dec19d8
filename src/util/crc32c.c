/* SPDX-License-Identifier: MIT */
/*
 * crc32c.c - CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the
 * checksum of spill file headers and payloads, and the choice between its
 * three ways of computing it:
 *
 *   fold    carry-less multiplication, 128 bytes a round (crc32c_fold.c):
 *           x86-64 with AVX2 + VPCLMULQDQ, buffers of MP_CRC_FOLD_MIN
 *           bytes or more (~40 GB/s, memory speed, on the EPYC test VM);
 *   sse4.2  the crc32 instruction, eight bytes at a time in three
 *           interleaved streams (~16 GB/s there); shorter buffers, and
 *           x86-64 CPUs without VPCLMULQDQ;
 *   table   slicing-by-8 (built once, under pthread_once): anything else.
 *
 * The choice is made once, at run time, by cpuid (__builtin_cpu_supports,
 * which also checks that the OS saves the AVX registers); the functions are
 * compiled with target attributes, so the rest of the library needs no
 * -msse4.2 and still runs on older CPUs. All three give the same result;
 * crc32c("123456789") is 0xE3069283 (tests/check_crc32c.c checks every way
 * against known vectors and against the table on odd lengths and offsets).
 *
 * The running value is pre- and post-inverted inside, so calls chain:
 * crc32c(crc32c(0, a), b) == crc32c(0, a || b).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "crc32c.h"

#if defined(__x86_64__)
#include <nmmintrin.h>
#define MP_CRC_HAVE_HW 1
#endif

#define MP_CRC32C_POLY 0x82F63B78u

static uint32_t crc_table[8][256];
static pthread_once_t crc_table_once = PTHREAD_ONCE_INIT;

static void crc_table_build(void)
{
    for (unsigned i = 0; i < 256; i++) {
        uint32_t c = i;

        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (MP_CRC32C_POLY & (0u - (c & 1u)));
        crc_table[0][i] = c;
    }
    for (unsigned i = 0; i < 256; i++)
        for (unsigned t = 1; t < 8; t++)
            crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^
                              crc_table[0][crc_table[t - 1][i] & 0xff];
}

/* Slicing-by-8 on an already inverted @p crc. */
static uint32_t crc_sw(uint32_t crc, const uint8_t *p, size_t len)
{
    pthread_once(&crc_table_once, crc_table_build);
    while (len && ((uintptr_t)p & 7)) {
        crc = (crc >> 8) ^ crc_table[0][(crc ^ *p++) & 0xff];
        len--;
    }
    while (len >= 8) {
        uint32_t lo, hi;

        memcpy(&lo, p, 4);           /* little-endian only (spill.h) */
        memcpy(&hi, p + 4, 4);
        lo ^= crc;
        crc = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^
              crc_table[5][(lo >> 16) & 0xff] ^ crc_table[4][lo >> 24] ^
              crc_table[3][hi & 0xff] ^ crc_table[2][(hi >> 8) & 0xff] ^
              crc_table[1][(hi >> 16) & 0xff] ^ crc_table[0][hi >> 24];
        p += 8;
        len -= 8;
    }
    while (len--)
        crc = (crc >> 8) ^ crc_table[0][(crc ^ *p++) & 0xff];
    return crc;
}

#ifdef MP_CRC_HAVE_HW
/* The SSE4.2 crc32 instruction on an already inverted @p crc, one stream. */
__attribute__((target("sse4.2")))
static uint32_t crc_hw1(uint32_t crc, const uint8_t *p, size_t len)
{
    uint64_t c = crc;

    while (len && ((uintptr_t)p & 7)) {
        c = _mm_crc32_u8((uint32_t)c, *p++);
        len--;
    }
    while (len >= 8) {
        uint64_t v;

        memcpy(&v, p, 8);
        c = _mm_crc32_u64(c, v);
        p += 8;
        len -= 8;
    }
    while (len--)
        c = _mm_crc32_u8((uint32_t)c, *p++);
    return (uint32_t)c;
}

/*
 * Three streams at once. The crc32 instruction has a latency of three
 * cycles and a throughput of one, so one stream uses a third of it. The
 * register update is linear: R(s, X||Y||Z) = S(S(R(s,X)) ^ R(0,Y)) ^ R(0,Z)
 * where S feeds CRC_B zero bytes. S is linear in its 32-bit input, so it is
 * four byte-indexed tables, built once from the images of the 32 unit
 * vectors.
 */
#define CRC_B 16384u

static uint32_t shift_tab[4][256];
static pthread_once_t shift_once = PTHREAD_ONCE_INIT;

static void shift_build(void)
{
    static const uint8_t zeros[CRC_B];
    uint32_t basis[32];
    for (unsigned i = 0; i < 32; i++)
        basis[i] = crc_hw1(1u << i, zeros, CRC_B);
    for (unsigned k = 0; k < 4; k++)
        for (unsigned b = 0; b < 256; b++) {
            uint32_t v = 0;
            for (unsigned bit = 0; bit < 8; bit++)
                if (b >> bit & 1)
                    v ^= basis[8 * k + bit];
            shift_tab[k][b] = v;
        }
}

static uint32_t shift(uint32_t v)
{
    return shift_tab[0][v & 0xff] ^ shift_tab[1][(v >> 8) & 0xff] ^
           shift_tab[2][(v >> 16) & 0xff] ^ shift_tab[3][v >> 24];
}

__attribute__((target("sse4.2")))
static uint32_t crc_hw(uint32_t crc, const uint8_t *p, size_t len)
{
    if (len >= 3 * CRC_B)
        pthread_once(&shift_once, shift_build);
    while (len >= 3 * CRC_B) {
        uint64_t a = crc, b = 0, c = 0;
        for (size_t i = 0; i < CRC_B; i += 8) {
            uint64_t x, y, z;
            memcpy(&x, p + i, 8);
            memcpy(&y, p + CRC_B + i, 8);
            memcpy(&z, p + 2 * CRC_B + i, 8);
            a = _mm_crc32_u64(a, x);
            b = _mm_crc32_u64(b, y);
            c = _mm_crc32_u64(c, z);
        }
        crc = shift(shift((uint32_t)a) ^ (uint32_t)b) ^ (uint32_t)c;
        p += 3 * CRC_B;
        len -= 3 * CRC_B;
    }
    return crc_hw1(crc, p, len);
}
#endif

/* MP_CRC_* of the fastest way this CPU has; found once. */
static int crc_best(void)
{
    static atomic_int best;   /* 0 unknown, else MP_CRC_* + 1 */
    int b = atomic_load_explicit(&best, memory_order_relaxed);

    if (b == 0) {
        b = MP_CRC_TABLE;
#ifdef MP_CRC_HAVE_HW
        __builtin_cpu_init();  /* needed if we run from a constructor */
        if (__builtin_cpu_supports("sse4.2"))
            b = mempool__crc32c_fold_ok() ? MP_CRC_FOLD : MP_CRC_SSE42;
#endif
        atomic_store_explicit(&best, b + 1, memory_order_relaxed);
        return b;
    }
    return b - 1;
}

bool mempool__crc32c_has(int way)
{
    return way >= MP_CRC_TABLE && way <= crc_best();
}

const char *mempool__crc32c_way(void)
{
    static const char *const names[] = { "table", "sse4.2", "vpclmulqdq" };

    return names[crc_best()];
}

/* @p crc already inverted. */
static uint32_t crc_by(int way, uint32_t crc, const uint8_t *p, size_t len)
{
#ifdef MP_CRC_HAVE_HW
    if (way == MP_CRC_FOLD && len >= MP_CRC_FOLD_MIN)
        return mempool__crc32c_fold_raw(crc, p, len);
    if (way >= MP_CRC_SSE42)
        return crc_hw(crc, p, len);
#else
    (void)way;
#endif
    return crc_sw(crc, p, len);
}

uint32_t mempool__crc32c_by(int way, uint32_t crc, const void *buf,
                            size_t len)
{
    if (!mempool__crc32c_has(way))
        way = MP_CRC_TABLE;
    return ~crc_by(way, ~crc, buf, len);
}

uint32_t mempool__crc32c_sw(uint32_t crc, const void *buf, size_t len)
{
    return ~crc_sw(~crc, buf, len);
}

uint32_t mempool__crc32c(uint32_t crc, const void *buf, size_t len)
{
    return ~crc_by(crc_best(), ~crc, buf, len);
}
