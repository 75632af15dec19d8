/* SPDX-License-Identifier: MIT */
/*
 * keeper.h - the handle's keeper thread: it looks, every
 * MP_KEEP_TICK_MS, at the writers that this process's get_wait sleepers
 * wait for, and wakes the sleepers of a writer that died; and it looks
 * again for this process's channel and name_get sleepers every
 * MP_SL_LOOK_NS; so that those sleep without a timer (keeper.c has the
 * design and the figures).
 */
#ifndef MEMPOOL_KEEPER_H
#define MEMPOOL_KEEPER_H

#include <stdatomic.h>
#include <stdint.h>

#include "internal.h"

#define MP_KEEP_TICK_MS  50u    /* a dead writer is noticed within this */
#define MP_KEEP_N        64u    /* sleepers it watches at once */
#define MP_KEEP_IDLE     20u    /* empty ticks before it sleeps untimed */

/* A get_wait sleeper on generation @p gen of entry @p idx, written by
 * worker slot @p who - 1, asks the keeper to watch its writer (starting
 * the keeper the first time). Its place in the keeper (sleep without a
 * cap; the keeper wakes it if the writer dies or the entry's generation
 * moves on), or NULL: no keeper (it could not start, a
 * forked or observer handle, all MP_KEEP_N places taken): sleep with the
 * cap as before. */
_Atomic uint64_t *mempool__keep_enter(mempool *p, uint32_t idx, uint32_t gen,
                                      unsigned who);

/* A handoff sleeper with neither deadline nor cap of its own (a channel's
 * or the names' futex @p word, its sleepers word @p sl: sleepers.h) asks
 * the keeper to look again for it at @p by (CLOCK_MONOTONIC ns): the
 * keeper then bumps the word and wakes its counted sleepers, as a destroy
 * does (mp_wake). Its place (sleep untimed: MP_SL_UNCAPPED), or NULL: no
 * keeper, all places taken (sleep with the cap as before). */
_Atomic uint64_t *mempool__keep_look(mempool *p, _Atomic uint32_t *word,
                                     _Atomic uint64_t *sl, uint64_t by);

/* The sleeper is awake again: give its @p place back (NULL: none). Inline
 * and a release store, not a call and a seq_cst exchange: it lies on the
 * wake-up path, and only the taking of a place pairs with the keeper's
 * idle flag (keeper.c); a place freed late costs at most a spurious wake
 * of a sleeper that has moved on, which re-checks its word. */
static inline void mempool__keep_leave(_Atomic uint64_t *place)
{
    if (place)
        atomic_store_explicit(place, 0, memory_order_release);
}

/* mempool_close(): stop and free the keeper (in the process that started
 * it: a forked child only frees its copy). */
void mempool__keep_stop(mempool *p);

#endif /* MEMPOOL_KEEPER_H */
