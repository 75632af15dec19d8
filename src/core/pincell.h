/* SPDX-License-Identifier: MIT */
/*
 * pincell.h - the format of a pin/reference cell (pin.c explains the
 * tables), and the pin nonce.
 *
 * Shared by pin.c and the short get and release paths (get.c), which
 * take and empty a cell of the entry's home bucket inline (issue 11
 * target 6: a get+release short enough for successive random gets to
 * overlap their cache misses). Everything else about cells - overflow
 * buckets, references, scans, the reaper - is pin.c's.
 */
#ifndef MEMPOOL_PINCELL_H
#define MEMPOOL_PINCELL_H

#include "core.h"
#include "thread.h"

#define CELL_KEY(kind, idx, gen) \
    (((uint64_t)(kind) << 63) | ((uint64_t)((idx) + 1) << 32) | \
     ((uint64_t)((gen) & 0xffffu) << 16))
#define CELL_KEYMASK (~(uint64_t)0xffff)
#define CELL_COUNT(v) ((uint32_t)((v) & 0xffff))

/* A new pin nonce of this thread (never 0): one counter for every pin the
 * thread makes, by either path, so that a stale copy of a released view
 * does not match the next pin of the same cell. */
static inline uint16_t mp_pin_nonce(struct mp_thread *t)
{
    uint16_t n = ++t->pin_nonce;
    return n ? n : ++t->pin_nonce;
}

/* Worker @p slot's cell table. */
static inline _Atomic uint64_t *mp_cell_table(const mp_core *c, int slot)
{
    return c->cells + (uint64_t)slot * c->cell_per;
}

/* Position of entry @p idx's home bucket in a table. */
static inline unsigned mp_cell_home(const mp_core *c, uint32_t idx)
{
    return (idx & c->cell_mask) * MP_CELL_BW;
}

#endif /* MEMPOOL_PINCELL_H */
