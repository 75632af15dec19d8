/* SPDX-License-Identifier: MIT */
/*
 * victim.h - choosing which resident objects to spill (victim.c), in the
 * pool's policy order: least recently used first, or most recently used
 * first for MEMPOOL_POLICY_MRU. spill.c's room_pass() takes the list in
 * order, skips pinned objects, and hands the rest back.
 */
#ifndef MEMPOOL_VICTIM_H
#define MEMPOOL_VICTIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "internal.h"

/* Pools whose entries in use ([0, hwm)) are at most this many are scanned
 * whole: the choice is exact, as MemPool.jl's scenarios demand. Larger
 * pools are sampled (victim.c says how, and what it guarantees). */
#define MP_VICTIM_EXACT   4096u
/* Sampled choice: fresh candidates wanted per pass, and the random probes
 * allowed to find them; with fewer than SAMPLES / 4 found, the pass scans
 * every entry instead. A pass takes at most 1 in TAKE_DIV of its fresh
 * candidates (the best ones). KEEP: candidates listed by default. */
#define MP_VICTIM_SAMPLES 64u
#define MP_VICTIM_PROBES  1024u
#define MP_VICTIM_TAKE_DIV 8u
#define MP_VICTIM_KEEP    16u

typedef struct mp_victim {
    uint64_t key;        /* policy order: smaller spills first */
    uint64_t len;
    uint32_t idx, gen;
    bool     destroy;    /* MEMPOOL_PUT_DESTROY_ON_EVICT */
} mp_victim;

typedef struct mp_victims {
    mp_victim *v;        /* best first after mempool__victims_pick() */
    size_t     n, cap;
    uint64_t   total;    /* bytes of v[0..n) */
    uint64_t   need;     /* the bytes the pass must free */
    size_t     keep;     /* candidates wanted beyond covering need */
    size_t     dropped;  /* candidates seen but not in v: more exist */
    size_t     take;     /* take at most this many of v this pass */
    size_t     fresh;    /* candidates found by this pass's sampling */
    bool       exact;    /* v came from a scan of every entry */
} mp_victims;

/* Candidates of worker @p owner (-1: anyone's) whose bytes cover @p need
 * and that are at least @p keep many (when there are), best first.
 * 0, or -ENOMEM. Free with mempool__victims_done(). */
int  mempool__victims_pick(mempool *p, int owner, uint64_t need, size_t keep,
                           mp_victims *out);
/* The pass used v[0..used): keep the best of the rest for the next pass
 * (sampled choice only) and free the list. */
void mempool__victims_done(mempool *p, mp_victims *vs, size_t used);

#endif /* MEMPOOL_VICTIM_H */
