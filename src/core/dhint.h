/* SPDX-License-Identifier: MIT */
/*
 * dhint.h - the data hint a DRef carries (issue 11 target 6,
 * docs/design.md "Random gets in large pools").
 *
 * A DRef names its entry by the entry's arena offset, which is 64-byte
 * aligned and below MEMPOOL_MAX_ARENA_BYTES (2^46): bits 6..45 of @c off.
 * The other 24 bits (0..5 and 46..63) carry where the object's data block
 * was when the DRef was minted: b = (block offset - data_off) / 64 + 1,
 * stored rotated left by 46 (b's bits 0..17 in 46..63, 18..23 in 0..5), so
 * one rotate and one mask read it back. b = 0: no hint (an empty object,
 * a block past the first GiB of the data region, a DRef made by hand).
 *
 * A hint is only ever compared, never read through: the short get
 * (get.c) takes the view's pointer from it only when the entry's own
 * offset, read after the pin, equals it. A stale hint (the object moved:
 * spilled and mapped back, its slot reused) or a forged one costs the
 * short get nothing but the speed-up. Everything that names an object -
 * mempool__entry_of(), mempool_dref_equal(), Python's ==/hash - masks the
 * hint away (MEMPOOL_DREF_ENTRY_BITS).
 */
#ifndef MEMPOOL_DHINT_H
#define MEMPOOL_DHINT_H

#include <stdint.h>

#include <mempool/mempool.h>

#define MP_DHINT_MAX UINT64_C(0xffffff)

/* The hint bits for a data block at arena offset @p off in a data region
 * starting at @p data_off; 0 when it cannot carry one. */
static inline uint64_t mp_dhint_make(uint64_t data_off, uint64_t off)
{
    uint64_t b;
    if (off < data_off || off % 64)
        return 0;
    b = (off - data_off) / 64 + 1;
    return b > MP_DHINT_MAX ? 0 : (b << 46 | b >> 18);
}

/* The hint of a DRef's @p off: b above, 0 = none. */
static inline uint64_t mp_dhint_block(uint64_t off)
{
    return (off << 18 | off >> 46) & MP_DHINT_MAX;
}

#endif /* MEMPOOL_DHINT_H */
