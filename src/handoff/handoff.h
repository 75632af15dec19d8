/* SPDX-License-Identifier: MIT */
/*
 * handoff.h - what the handoff files (wait, names, flight, chan) share:
 * the owner locks of the name directory and the channel directory, and
 * the futex word helpers.
 */
#ifndef MEMPOOL_HANDOFF_H
#define MEMPOOL_HANDOFF_H

#include "futex.h"
#include "entry.h"
#include "internal.h"

/* Owner lock: a word holding slot + 1 of its holder. A holder that is
 * not alive is replaced (return 1: the caller repairs what it left);
 * a live holder is waited for. 0 when taken normally. */
int  mempool__olock(mempool *p, _Atomic uint32_t *l);
void mempool__ounlock(mempool *p, _Atomic uint32_t *l);

/* After a change a sleeper may wait for: if anyone sleeps, bump the futex
 * word and wake. Without sleepers nothing is written: a sleeper counts
 * itself (seq_cst) before it reads the word and re-checks, so either we
 * see its count here, after our seq_cst change, or its re-check sees the
 * change (Dekker); and a bump after its read of the word makes its
 * FUTEX_WAIT return at once. */
static inline void mp_signal(_Atomic uint32_t *word, _Atomic uint32_t *waiters,
                             int n)
{
    if (atomic_load(waiters)) {
        atomic_fetch_add(word, 1);
        mp_futex_wake(word, n);
    }
}

/* 1..255 bytes, any byte but NUL; its length or -EINVAL. */
int mempool__hname_len(const char *name);
uint32_t mempool__hname_hash(const char *name, size_t len);

/* Names (names.c): stats and fsck. */
uint64_t mempool__names_count(mempool *p);
int  mempool__names_verify(mempool *p, char *why, size_t whylen);

/* Flight (flight.c): stats. */
uint64_t mempool__flight_count(mempool *p);

/* Channels (chan.c): the reaper's part. */
void mempool__chan_reap(mempool *p, int d);
int  mempool__chan_verify(mempool *p, char *why, size_t whylen);

#endif /* MEMPOOL_HANDOFF_H */
