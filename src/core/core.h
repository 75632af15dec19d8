/* SPDX-License-Identifier: MIT */
/*
 * core.h - the narrow view of a pool (mp_core) and the functions of the
 * lowest core layers that work on it: pin and reference cells (pin.c),
 * slot liveness and event counters (worker.c), entry addressing.
 *
 * This header does not include internal.h, and the files that include only
 * it (pin.c, the entry word functions of entry.h) cannot see the handle:
 * struct mempool stays incomplete there, so they cannot reach the spill
 * engine, the handoff regions or the codecs even by mistake. The handle
 * (internal.h) embeds an mp_core and hands &p->core down.
 * tests/check_layers.sh keeps it so.
 */
#ifndef MEMPOOL_CORE_H
#define MEMPOOL_CORE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "layout.h"

#define MP_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define MP_LIKELY(x)   __builtin_expect(!!(x), 1)

/* Entry fields that a stale reader may look at while the allocator lock
 * holder rewrites them: relaxed atomics, so the race is defined (and the
 * reader re-checks the generation afterwards). */
#define MP_LD(x)    __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define MP_ST(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)

static inline void mp_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Ask for the line at @p a for writing (x86's PREFETCHW; a hint that
 * neither faults nor waits): a line another CPU wrote last comes over
 * while we do something else, instead of stalling the store that needs it. */
static inline void mp_prefetch_w(const void *a)
{
#if defined(__x86_64__) || defined(__i386__)
    __asm__ __volatile__("prefetchw %0" : : "m"(*(const char *)a));
#else
    __builtin_prefetch(a, 1, 3);
#endif
}

/* The narrow view of a pool that the lowest layers of core/ (allocator,
 * pin and reference cells, entries, slots) work on: the mapping and the
 * header values validated once at attach - nothing of the layers above
 * (spilling, handoff, codecs). A function that takes an mp_core cannot
 * reach the spill engine or the handoff regions, by its signature.
 *
 * The fields are listed once, in MP_CORE_FIELDS, and the handle
 * (internal.h) holds them in a union of the tagged mp_core and an untagged
 * twin of it, so the rest of the library keeps writing p->tab while a lower
 * layer is handed &p->core (C11 6.5.2.3: the two are one common initial
 * sequence). */
#define MP_CORE_FIELDS                                                       \
    int           fd;          /* the shm object, as mapped */              \
    int           lfd;         /* a second open file description of it,     \
                                  never mapped: it carries our slot locks   \
                                  (worker.c) */                             \
    uint8_t      *base;        /* the mapping */                            \
    uint64_t      size;                                                     \
    mp_header    *h;                                                        \
    mp_slot      *slots;                                                    \
    _Atomic uint64_t *cells;   /* MP_WORKERS * cell_per */                  \
    mp_wcache    *wcs;         /* MP_WORKERS allocator caches (wcache.c) */ \
    mp_entry     *tab;                                                      \
    mp_page      *pages;                                                    \
    _Atomic uint64_t *bitmap;                                               \
    uint64_t      ntab;        /* copies of header values, validated once */ \
    uint64_t      data_off, npages, tag;                                    \
    int           slot;        /* our slot, 0-based; -1 for an observer */  \
    uint32_t      cell_per;    /* cells per worker table (pin.c) */         \
    uint32_t      cell_mask;   /* home buckets - 1 */                       \
    uint32_t      ovf_base;    /* first overflow cell of a table */         \
    uint32_t      ovf_mask;    /* overflow buckets - 1 */                   \
    uint32_t      ovf_shift;   /* 32 - log2(overflow buckets) */

typedef struct mp_core {
    MP_CORE_FIELDS
} mp_core;

/* Entry @p idx of the object table (the caller checked idx < ntab). */
static inline mp_entry *mp_core_entry(const mp_core *c, uint32_t idx)
{
    return &c->tab[idx];
}

/* ---- pin.c: per-worker pin and reference cells ------------------------ */
enum { MP_PIN = 0, MP_REF = 1 };
int  mempool__pin(mp_core *c, uint32_t idx, uint32_t gen, uint64_t *tok);
int  mempool__unpin_cell(mp_core *c, uint32_t idx, uint32_t gen,
                         uint64_t tok);
int  mempool__ref_add(mp_core *c, uint32_t idx, uint32_t gen);
int  mempool__ref_sub(mp_core *c, uint32_t idx, uint32_t gen);
uint32_t mempool__cell_count(const mp_core *c, int kind, uint32_t idx,
                             uint32_t gen, bool any);
/* What a dropped cell held: @p kind MP_PIN (one pin) or MP_REF on (idx,
 * gen), gen being the entry's current generation. */
typedef void mp_cell_release(void *arg, uint32_t idx, uint32_t gen,
                             int kind);
/* Reaper: empty slot @p d's cells, count the pins among them in
 * recovered_pins, and call @p release for each one that names an entry
 * still of its generation (the reaper's step above core's cells: reclaim,
 * evict, refcount check - worker.c). */
void mempool__cells_drop(mp_core *c, int d, mp_cell_release *release,
                         void *arg);
/* References on (idx, gen) held by the workers of slots below @p me, by
 * slot @p me, and by all workers (mempool_share_get()). */
void mempool__ref_split(const mp_core *c, uint32_t idx, uint32_t gen, int me,
                        uint32_t *below, uint32_t *mine, uint32_t *all);
/* Empty every worker's reference cells of (idx, gen): the entry is being
 * freed. Returns how many cells were emptied. */
unsigned mempool__refs_forget(mp_core *c, uint32_t idx, uint32_t gen);
/* Cells of attached workers naming a free entry or another generation (a
 * leak, or a pinner/referrer between its two steps); *first = slot << 32 |
 * cell of the first one. */
uint64_t mempool__cells_stale(const mp_core *c, uint64_t *first);
/* Cells of an object's current generation whose worker's bit is missing
 * from the entry's holders word (scans would skip them; fsck). */
uint64_t mempool__cells_unmarked(const mp_core *c, uint64_t *first);

/* ---- worker.c: slot liveness and counters ------------------------------ */
/* Does a live process hold slot @p slot (its OFD lock)? Ours always is;
 * true also when it cannot tell. */
bool mempool__slot_alive(const mp_core *c, int slot);
/* Event counter @p k (MP_COUNTERS order, counters.h) of slot @p s. */
_Atomic uint64_t *mempool__counter(mp_slot *s, int k);

#endif /* MEMPOOL_CORE_H */
