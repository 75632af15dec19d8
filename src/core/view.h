/* SPDX-License-Identifier: MIT */
/*
 * view.h - what a mempool_view's priv words hold, and their MAC.
 *
 * priv[0] = entry idx + 1 | pin token << 32, priv[1] = generation |
 * mapping id << 32, priv[2] = the handle | the view's kind, priv[3] = a
 * MAC of the three, so that mempool_release() refuses a view that no get
 * of this handle made (uninitialised memory, a copy edited by the caller)
 * before it acts on any of it. The MAC is a keyless mix, not a secret:
 * it tells garbage from a view, not a forger from an owner (the pin cell
 * CAS refuses a view of someone else's pin anyway). An all-zero view
 * passes it, and is refused by priv[2], which must name the handle. One multiply and a
 * few adds: every get computes it and every release checks it, on the
 * short path too (get.c), where each instruction counts.
 */
#ifndef MEMPOOL_VIEW_H
#define MEMPOOL_VIEW_H

#include <stdint.h>

#define MP_VIEW_MEM  UINT64_C(0)       /* pin, in the arena */
#define MP_VIEW_DISK UINT64_C(1)       /* pin + file mapping */
/* MP_VIEW_FILE (2, internal.h): a get_file mapping only */

static inline uint64_t mp_view_mac(uint64_t a, uint64_t b, uint64_t c)
{
    return ((a + (b << 32 | b >> 32)) ^ c) * UINT64_C(0x9E3779B97F4A7C15);
}

#endif /* MEMPOOL_VIEW_H */
