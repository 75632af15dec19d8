/* SPDX-License-Identifier: MIT */
/*
 * entry_wake.c - the waking side of mempool_get_wait(): its sleepers
 * (handoff/wait.c) sleep on the low half of an entry's word, and core
 * wakes them after a change that ends the wait (a publish, a delete, a
 * reservation gone). Here, in core, because those changes are core's.
 */
#include <limits.h>

#include "futex.h"
#include "internal.h"

/* get_wait sleepers of entry @p idx (handoff/wait.c) sleep on the low half
 * of its word: wake them after a change that ends the wait. */
void mempool__entry_wake(mempool *p, uint32_t idx)
{
    mp_entry *e = mp_entry_at(p, idx);
    /* seq_cst after the caller's seq_cst CAS of the word: either we see
     * the sleeper's count or it sees the new word (Dekker). */
    if (atomic_load(&e->waiters))
        mp_futex_wake(mp_word_low(&e->word), INT_MAX);
}
