/* SPDX-License-Identifier: MIT */
/*
 * internal.h - the per-process handle and the functions the library's files
 * share. Internal non-static symbols carry the mempool__ prefix so they
 * cannot clash with a user's even in a static archive.
 */
#ifndef MEMPOOL_INTERNAL_H
#define MEMPOOL_INTERNAL_H

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <pthread.h>
#include <sys/types.h>

#include "layout.h"
#include <mempool/mempool.h>

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

/* One process's handle on a pool: one worker. */
struct mempool {
    char          name[MEMPOOL_NAME_MAX + 1];
    int           fd;          /* the shm object, as mapped */
    int           lfd;         /* a second open file description of it that
                                  is never mapped: it carries our locks */
    uint8_t      *base;        /* the mapping */
    uint64_t      size;
    mp_header    *h;
    mp_slot      *slots;
    _Atomic uint64_t *cells;   /* MP_WORKERS * MP_CELLS */
    mp_entry     *tab;
    mp_page      *pages;
    _Atomic uint64_t *bitmap;
    mp_hand      *hand;        /* handoff regions (box.c, src/handoff/) */
    _Atomic uint64_t *boxw;
    mp_box       *boxes;
    mp_name      *names;
    mp_chan      *chans;
    _Atomic uint64_t *ring;
    uint32_t      nbox, nnames, nring;
    uint64_t      ntab;        /* copies of header values, validated once */
    uint64_t      data_off, npages, tag;
    int           slot;        /* our slot, 0-based */
    uint64_t      forkgen;     /* process fork generation at open */
    pthread_mutex_t reap_lock; /* one reaper per handle at a time */
    struct mempool *next;      /* process-wide handle list (fork handling) */
    struct mp_codecs *codecs;  /* codecs registered through this handle */
    /* spilling (spill.c, mapcache.c, spiller.c) */
    pthread_mutex_t io_lock;   /* guards the lazy start of io and dirfd */
    struct mp_io *io;          /* this handle's I/O engine, or NULL */
    int           dirfd;       /* the pool's spill directory, or -1 */
    char          spill_dir[MP_PATH_MAX];
    uint32_t      io_mode;     /* MEMPOOL_IO_* */
    uint32_t      evict_wait_ms;
    bool          verify;      /* check payload crc when mapping a file */
    struct mp_mapcache *maps;
    struct mp_spiller *spiller;
    /* MEMPOOL_OPEN_OBSERVE: no slot (slot -1), no spiller, no reaping;
     * every call that would change the pool answers -EPERM. */
    bool          observer;
    bool          readonly;    /* observer mapped PROT_READ (no write
                                  permission on the shm object) */
};

/* 0, or -EPERM on an observer handle, or as mempool__handle_ok(). For every
 * call that changes the pool or takes pins. */
int  mempool__handle_ok(const mempool *p);
static inline int mempool__writer_ok(const mempool *p)
{
    int rc = mempool__handle_ok(p);
    return rc ? rc : p->observer ? -EPERM : 0;
}

/* ---- arena.c: names, layout, create / attach -------------------------- */
int  mempool__name_ok(const char *name);
int  mempool__shm_path(const char *name, char *buf, size_t len);
int  mempool__layout(uint64_t arena, uint64_t max_objects, mp_header *out);
uint64_t mempool__format_word(void);
void mempool__bind(mempool *p);   /* set p->slots, p->tab, ... from p->h */

/* ---- worker.c: slots, liveness, reaping, fork ------------------------- */
int  mempool__handle_ok(const mempool *p);       /* 0 or -EINVAL/EFORKED */
int  mempool__claim_slot(mempool *p);
void mempool__leave_slot(mempool *p);
bool mempool__slot_alive(mempool *p, int slot);
int  mempool__reap_slot(mempool *p, int slot);   /* 1 reaped, 0 alive */
void mempool__register(mempool *p);
void mempool__unregister(mempool *p);
void mempool__wait_who(mempool *p, unsigned who, uint32_t idx,
                       unsigned *spins);
void mempool__repair_entry(mempool *p, int d, uint32_t i);
uint64_t mempool__now_ns(void);

/* ---- alloc.c: blocks and entries, under the robust allocator lock ----- */
int  mempool__lock(mempool *p);
void mempool__unlock(mempool *p);
int  mempool__alloc(mempool *p, uint64_t len, uint32_t *idx);  /* locked */
void mempool__free(mempool *p, uint32_t idx);                  /* locked */
void mempool__charge(mempool *p, uint32_t idx);                /* locked */
bool mempool__mark_ondisk(mempool *p, uint32_t idx, uint64_t w, uint64_t nw);
void mempool__evict_locked(mempool *p, uint32_t idx, uint64_t w);
void mempool__disown(mempool *p, int d);
uint64_t mempool__block_bytes(uint64_t len);
void mempool__alloc_init(mempool *p);
int  mempool__alloc_verify(mempool *p, char *why, size_t whylen); /* locked */
int64_t mempool__trim_locked(mempool *p);

/* ---- pin.c: per-worker pin and reference cells ------------------------ */
enum { MP_PIN = 0, MP_REF = 1 };
int  mempool__pin(mempool *p, uint32_t idx, uint32_t gen, uint64_t *tok);
int  mempool__unpin_cell(mempool *p, uint32_t idx, uint32_t gen, uint64_t tok);
int  mempool__ref_add(mempool *p, uint32_t idx, uint32_t gen);
int  mempool__ref_sub(mempool *p, uint32_t idx, uint32_t gen);
uint32_t mempool__cell_count(mempool *p, int kind, uint32_t idx, uint32_t gen,
                             bool any);
void mempool__cells_drop(mempool *p, int slot); /* reaper: clear and repair */

/* ---- box.c: items the pool holds (names, channel slots, flight) -------- */
int  mempool__box_claim(mempool *p, uint32_t idx, uint32_t gen, bool ref,
                        uint64_t back, uint32_t *b);     /* PREP(us) */
void mempool__box_commit(mempool *p, uint32_t b);        /* PREP -> HELD */
bool mempool__box_drop(mempool *p, uint32_t b, uint64_t w); /* free + check */
bool mempool__box_take(mempool *p, uint32_t b, uint64_t w); /* free, no check */
int  mempool__box_find(mempool *p, uint32_t idx, uint32_t gen,
                       bool (*fn)(mempool *, uint32_t, uint64_t, void *),
                       void *arg);
bool mempool__box_held(mempool *p, uint32_t idx, uint32_t gen);
uint32_t mempool__box_count(mempool *p, uint32_t idx, uint32_t gen);
bool mempool__box_referenced(mempool *p, uint32_t b, uint64_t w);
uint64_t mempool__box_sweep(mempool *p, int dead);  /* free orphans */
uint64_t mempool__flight_expire(mempool *p, bool force);
int  mempool__box_verify(mempool *p, char *why, size_t whylen);
void mempool__hand_reap(mempool *p, int d);   /* handoff part of a reap */
void mempool__entry_wake(mempool *p, uint32_t idx);   /* wait.c */

/* ---- object.c: shared helpers used by the reaper and spill code -------- */
void mempool__try_reclaim(mempool *p, uint32_t idx);
void mempool__refcheck(mempool *p, uint32_t idx, uint32_t gen);
int  mempool__entry_of(const mempool *p, mempool_dref r, uint32_t *idx,
                       uint32_t *gen);
void mempool__unpin(mempool *p, uint32_t idx, uint32_t gen, uint64_t tok);
void mempool__after_unpin(mempool *p, uint32_t idx);
int  mempool__get(mempool *p, mempool_dref r, mempool_view *v, bool recency);
mempool_dref mempool__dref_of(const mempool *p, uint32_t idx, uint32_t gen);
bool mempool__alive(uint64_t w, uint32_t gen);
int  mempool__ref_settle(mempool *p, uint32_t idx, uint32_t gen);

/* ---- spill.c: clean copies, eviction, making room ---------------------- */
int  mempool__spill_bind(mempool *p);
int  mempool__io_get(mempool *p);
int  mempool__spill_init(mempool *p, const mempool_options *o, bool created);
void mempool__spill_fini(mempool *p);
int  mempool__write_clean(mempool *p, const uint32_t *idx, unsigned n,
                          int *res);       /* give entries a file */
int  mempool__evict(mempool *p, uint32_t idx, uint32_t gen);
int  mempool__make_room(mempool *p, int owner, uint64_t need, bool wait);
void mempool__unlink_files(mempool *p, uint32_t idx, uint32_t gen);
int  mempool__file_path(mempool *p, uint32_t idx, uint32_t gen, char *buf,
                        size_t len);
void mempool__reap_spill(mempool *p, int d, uint32_t idx, uint64_t w);
int  mempool__spill_dir_path(const char *name, char *buf, size_t len);
void mempool__spill_destroy(const char *dir);

/* ---- mapcache.c: read-back mappings ------------------------------------ */
struct mp_mapping;
int  mempool__map_entry(mempool *p, uint32_t idx, uint32_t gen,
                        struct mp_mapping **out, const uint8_t **data);
int  mempool__map_file(mempool *p, const char *path, struct mp_mapping **out,
                       const uint8_t **data, uint64_t *len, uint32_t *type);
int  mempool__map_put(mempool *p, uint64_t id);   /* by mapping id */
uint64_t mempool__map_id(const struct mp_mapping *m);
void mempool__maps_free(mempool *p);
void mempool__maps_sweep(mempool *p);

/* ---- spiller.c: the pool's elected background spiller ----------------- */
int  mempool__spiller_start(mempool *p);
void mempool__spiller_stop(mempool *p);

/* ---- stats.c: hooks that keep the figures ----------------------------- */
void mempool__stats_retire(mempool *p, int slot); /* at claim: fold, zero */
void mempool__stats_note_io(mempool *p);          /* engine started */

/* ---- codec.c ---------------------------------------------------------- */
void mempool__codecs_free(mempool *p);  /* at close; NULL-safe */

static inline mp_entry *mp_entry_at(mempool *p, uint32_t idx)
{
    return &p->tab[idx];
}

static inline uint32_t mp_entry_idx(mempool *p, const mp_entry *e)
{
    return (uint32_t)(e - p->tab);
}

#endif /* MEMPOOL_INTERNAL_H */
