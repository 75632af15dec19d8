/* SPDX-License-Identifier: MIT */
/*
 * crc32c.c - CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the
 * checksum of spill file headers and payloads.
 *
 * On x86-64 CPUs with SSE4.2 the crc32 instruction does the work, eight
 * bytes at a time (the function is compiled with target("sse4.2"), so the
 * rest of the library needs no -msse4.2 and still runs on older CPUs).
 * Elsewhere a slicing-by-8 table (built once, under pthread_once) is used.
 * Both give the same result; crc32c("123456789") is 0xE3069283.
 *
 * The running value is pre- and post-inverted inside, so calls chain:
 * crc32c(crc32c(0, a), b) == crc32c(0, a || b).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "io_impl.h"

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
/* The SSE4.2 crc32 instruction on an already inverted @p crc. */
__attribute__((target("sse4.2")))
static uint32_t crc_hw(uint32_t crc, const uint8_t *p, size_t len)
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
#endif

bool mempool__crc32c_hw(void)
{
#ifdef MP_CRC_HAVE_HW
    static atomic_int state; /* 0 unknown, 1 yes, 2 no */
    int s = atomic_load_explicit(&state, memory_order_relaxed);

    if (s == 0) {
        __builtin_cpu_init();  /* needed if we run from a constructor */
        s = __builtin_cpu_supports("sse4.2") ? 1 : 2;
        atomic_store_explicit(&state, s, memory_order_relaxed);
    }
    return s == 1;
#else
    return false;
#endif
}

uint32_t mempool__crc32c_sw(uint32_t crc, const void *buf, size_t len)
{
    return ~crc_sw(~crc, buf, len);
}

uint32_t mempool__crc32c(uint32_t crc, const void *buf, size_t len)
{
#ifdef MP_CRC_HAVE_HW
    if (mempool__crc32c_hw())
        return ~crc_hw(~crc, buf, len);
#endif
    return ~crc_sw(~crc, buf, len);
}
