/* SPDX-License-Identifier: MIT */
/*
 * keeper.h - the handle's keeper thread: it looks, every
 * MP_KEEP_TICK_MS, at the writers that this process's get_wait sleepers
 * wait for, and wakes the sleepers of a writer that died, so that those
 * sleep without a timer (keeper.c has the design and the figures).
 */
#ifndef MEMPOOL_KEEPER_H
#define MEMPOOL_KEEPER_H

#include <stdint.h>

#include "internal.h"

#define MP_KEEP_TICK_MS  50u    /* a dead writer is noticed within this */
#define MP_KEEP_N        64u    /* sleepers it watches at once */
#define MP_KEEP_IDLE     20u    /* empty ticks before it sleeps untimed */

/* A get_wait sleeper on entry @p idx, written by worker slot @p who - 1,
 * asks the keeper to watch its writer (starting the keeper the first
 * time). Its ticket (>= 0: sleep without a cap; the keeper wakes it if
 * the writer dies), or -1: no keeper (it could not start, a forked or
 * observer handle, all MP_KEEP_N places taken): sleep with the cap as
 * before. */
int  mempool__keep_enter(mempool *p, uint32_t idx, unsigned who);

/* The sleeper is awake again: give its place back (@p ticket < 0: none). */
void mempool__keep_leave(mempool *p, int ticket);

/* mempool_close(): stop and free the keeper (in the process that started
 * it: a forked child only frees its copy). */
void mempool__keep_stop(mempool *p);

#endif /* MEMPOOL_KEEPER_H */
