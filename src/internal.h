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

#include "core.h"
#include "layout.h"
#include <mempool/mempool.h>

#define MP_SHM_DIR "/dev/shm"

/* What core needs from the spill layer above it. core/ never names a
 * spill/ function: pool.c points p->spill_ops at spill's table
 * (mempool__spill_ops) before anything can reap, so calls only go down. */
typedef struct mp_spill_ops {
    int  (*make_room)(mempool *p, int owner, uint64_t need, bool wait);
    int  (*evict)(mempool *p, uint32_t idx, uint32_t gen);
    void (*unlink_files)(mempool *p, uint32_t idx, uint32_t gen);
    void (*maps_sweep)(mempool *p);
    int  (*map_entry)(mempool *p, uint32_t idx, uint32_t gen, uint64_t *id,
                      const uint8_t **data);
    int  (*map_put)(mempool *p, uint64_t id);
    /* (idx, gen)'s file exists and passes every check (payload crc too):
     * 0, -ENOENT, MEMPOOL_ECORRUPT, or another -errno (cannot tell). */
    int  (*file_verify)(mempool *p, uint32_t idx, uint32_t gen);
    /* a new pool's spill directory (spilldir.h), made by its creator */
    int  (*make_dir)(const char *dir, const char *name, const uint64_t uuid[2],
                     mode_t pool_mode, gid_t gid, bool *made_base);
} mp_spill_ops;

/* What core needs from the handoff layer (src/handoff/) above it, the same
 * way: pool.c points p->hand_ops at mempool__hand_ops. */
typedef struct mp_hand_ops {
    /* reaper: finish the channel creation or destruction dead worker d was
     * doing, free its directory locks (before the box sweep) */
    void (*reap)(mempool *p, int d);
    /* fsck: names and channel slots agree with their boxes */
    int  (*verify)(mempool *p, char *why, size_t whylen);
} mp_hand_ops;

/* Small objects of other workers this handle deleted, not yet handed back
 * to their owners' caches (core/handback.c). In the arena they are DELETED
 * (still charged to their owners) and listed, as a hint, in our cache's
 * stash (layout.h mp_wcache). */
typedef struct mp_stash {
    _Atomic bool busy;           /* a thread of this handle is in it */
    uint32_t n;
    uint16_t owner[MP_STASH_MAX];    /* owner slot of each */
    uint8_t  per[MP_WORKERS];        /* entries of each owner slot */
    uint32_t idx[MP_STASH_MAX];
    uint64_t w[MP_STASH_MAX];        /* its DELETED word */
} mp_stash;

/* One process's handle on a pool: one worker. */
struct mempool {
    union {
        mp_core core;          /* what lower layers are handed */
        struct {
            MP_CORE_FIELDS
        };
    };
    char          name[MEMPOOL_NAME_MAX + 1];
    mp_hand      *hand;        /* handoff regions (box.c, src/handoff/) */
    _Atomic uint64_t *boxw;
    mp_box       *boxes;
    mp_name      *names;
    mp_chan      *chans;
    _Atomic uint64_t *ring;
    mp_direct    *direct;      /* MP_WORKERS x ndirect (chan_direct.c) */
    uint32_t      nbox, nnames, nring, ndirect;
    _Atomic uint32_t dnext;    /* this handle's next direct record, and */
    _Atomic uint8_t dbusy[MP_DIRECT_KMAX];   /* which its threads fill now */
    _Atomic uint64_t box_nonce; /* this handle's block of box nonces:
                                   base << 32 | left (box.c) */
    _Atomic uint32_t hazards;  /* this handle's threads holding a box
                                  hazard, | 1 << 31 while the last one
                                  clears our hand->sweeping bit (box.c) */
    /* The header as validated at attach (or built at creation): bind
     * reads the geometry from this copy, never from the live header,
     * which another user of a shared (0666) pool could rewrite between
     * the check and the bind. */
    mp_header     hv;
    uint64_t      forkgen;     /* process fork generation at open */
    /* The short get and release paths' copies (get.c), set when the slot
     * is claimed: fastgen is forkgen while this handle is an open
     * worker's, else 0 (the fork generation starts at 1). */
    uint64_t      fastgen;
    _Atomic uint64_t *own_cells; /* our slot's pin/ref cell table */
    mp_slot      *own_slot;    /* our slot (its event counters) */
    uint64_t      own_bit;     /* 1 << slot (entries' holders words) */
    uint64_t      data_span;   /* size - data_off: offsets of blocks */
    mp_stash      stash;       /* others' objects we deleted (handback.c) */
    int         (*type_known)(mempool *p, uint32_t type); /* codec layer */
    bool          closed;      /* set by mempool_close(): the handle is kept
                                  (poisoned) a while, see worker.c */
    pthread_mutex_t reap_lock; /* one reaper per handle at a time */
    _Atomic uint64_t populated[64]; /* arena chunks this handle has
                                       prefaulted (object.c populate) */
    bool          huge;        /* back whole free chunks with huge pages
                                  (backing.c); only under the alloc lock */
    bool          back_inline; /* MEMPOOL_OPEN_BACK_INLINE: a large put backs
                                  its block without a helper (backahead.c) */
    bool          back_ahead;  /* MEMPOOL_OPEN_BACK_AHEAD: with a helper even
                                  when no CPU looks free */
    struct mempool *next;      /* process-wide handle list (fork handling) */
    struct mp_codecs *codecs;  /* codecs registered through this handle */
    const mp_spill_ops *spill_ops; /* the layer above core (pool.c) */
    const mp_hand_ops *hand_ops;   /* handoff/, above core (pool.c) */
    /* the spill layer's state (spillstate.h; an incomplete type here, so
     * core cannot name its fields): made by mempool__spill_bind */
    struct mp_spill_state *spill;
    /* the handoff sleeps' keeper thread (handoff/keeper.c): started by
     * the first get_wait, channel or name_get sleep; keep_st 0 none,
     * 1 starting, 2 running (keep set), 3 failed */
    struct mp_keeper *keep;
    _Atomic uint32_t keep_st;
    uint32_t      evict_wait_ms; /* bound of a wait for a peer or for room
                                    (worker.c, object.c, spill.c) */
    /* Our cache lock's last wait ran out (wcache.c own_lock): a stopped
     * peer holds it; our sets and deletes only try it until it is free. */
    _Atomic bool  wc_stuck;
    /* MEMPOOL_OPEN_OBSERVE: no slot (slot -1), no spiller, no reaping;
     * every call that would change the pool answers -EPERM. */
    bool          observer;
    bool          readonly;    /* observer mapped PROT_READ (no write
                                  permission on the shm object) */
    bool          any_owner;   /* MEMPOOL_OPEN_ANY_OWNER */
    uid_t         owner_uid;   /* owner, group and mode of the shm object */
    gid_t         owner_gid;
    uint32_t      pool_mode;
};

/* Hand back everything this handle stashed (core/handback.c): into the
 * owners' caches, or freed. */
void mempool__handback_flush(mempool *p);
/* Before a reading of the pool's figures (@p wait false: the allocator
 * lock only tried, nothing waited for) or short of room (@p wait): free
 * what every worker's stash names, then flush ours, so every delete that
 * returned counts. */
void mempool__handback_collect(mempool *p, bool wait);

/* 0, or -EPERM on an observer handle, or as mempool__handle_ok(). For every
 * call that changes the pool or takes pins. */
int  mempool__handle_ok(const mempool *p);
static inline int mempool__writer_ok(const mempool *p)
{
    int rc = mempool__handle_ok(p);
    return rc ? rc : p->observer ? -EPERM : 0;
}
/* This process's fork generation (worker.c): a handle opened before the
 * last fork is the parent's (MEMPOOL_EFORKED). */
extern _Atomic uint64_t mempool__fork_gen;
/* mempool__writer_ok() would return 0 for handle @p p (not NULL): the
 * same test, one compare, for the short get and release paths (get.c). */
static inline bool mempool__writer_fast(const mempool *p)
{
    return MP_LIKELY(p->fastgen == atomic_load_explicit(&mempool__fork_gen,
                                                        memory_order_relaxed));
}

/* ---- options.c: the caller's options by their size field ------------- */
/* Defaults, then the fields @p in's size covers; NULL gives the defaults.
 * 0, -EINVAL (bad size or value), -E2BIG (unknown non-zero fields). */
int  mempool__options_read(const mempool_options *in, mempool_options *out);

/* ---- arena.c: names, layout, create / attach -------------------------- */
int  mempool__name_ok(const char *name);
int  mempool__shm_path(const char *name, char *buf, size_t len);
struct stat;
/* Open the shm object @p path (O_RDWR or O_RDONLY in @p flags) without
 * following a symlink or blocking; fd, MEMPOOL_ECORRUPT for anything but a
 * regular file, or -errno. */
int  mempool__shm_open(const char *path, int flags, struct stat *st);
int  mempool__layout(uint64_t arena, uint64_t max_objects, uint64_t max_refs,
                     mp_header *out);
uint64_t mempool__format_word(void);
void mempool__bind(mempool *p);   /* set p->slots, p->tab, ... from p->h */
int  mempool__arena_open(mempool *p, const char *path, const char *name,
                         const mempool_options *o, bool *created);
/* The lock file of the slot and spiller locks (lockfile.c). */
int  mempool__lock_create(const char *name, const uint64_t uuid[2],
                          mode_t pool_mode);
void mempool__lock_unlink(const char *name, const uint64_t uuid[2]);
int  mempool__lock_open(const char *name, const uint64_t uuid[2],
                        uid_t owner, int flags);
void mempool__lock_sweep(const char *name);
void mempool__lock_unlink_tomb(int dir, const char *tomb, const char *name);
/* Call @p fn for each entry of MP_SHM_DIR whose name starts with
 * @p prefix (with the directory's fd, the name, and what follows the
 * prefix) until it returns non-zero, which is returned (shmdir.c); 0
 * after the last, -errno if the directory cannot be read. */
int  mempool__shm_each(const char *prefix,
                       int (*fn)(int dir, const char *entry, const char *rest,
                                 void *arg),
                       void *arg);

/* ---- worker.c: slots, liveness, reaping, fork ------------------------- */
int  mempool__handle_ok(const mempool *p);       /* 0 or -EINVAL/EFORKED */
int  mempool__claim_slot(mempool *p);
void mempool__leave_slot(mempool *p);
int  mempool__reap_slot(mempool *p, int slot);   /* 1 reaped, 0 alive */
void mempool__register(mempool *p);
void mempool__unregister(mempool *p);
/* Is @p p an open handle of this process? Reads only the registry. */
bool mempool__registered(const mempool *p);
/* Poison closed handle @p p and keep its memory a while (quarantine). */
void mempool__handle_retire(mempool *p);
/* A bounded wait for another worker's step on one entry: spin briefly,
 * then sleep with exponential backoff (1 us .. 1 ms) until the deadline
 * mempool__wait_bound_ns() after the first sleep. */
typedef struct mp_wait {
    unsigned spins;
    uint64_t deadline;
} mp_wait;
/* 0: look again; -EAGAIN: the wait's bound passed (the peer is stopped or
 * very slow). Reaps @p who and repairs the entry if it is dead. */
int  mempool__wait_who(mempool *p, unsigned who, uint32_t idx, mp_wait *wt);
uint64_t mempool__wait_bound_ns(const mempool *p);
uint64_t mempool__now_ns(void);

/* ---- backing.c: memory for data pages before they are handed out ------ */
#define MP_CHUNK (2u << 20)      /* a huge page: 2 MiB of the shm object */
/* The 2 MiB chunk holding data page @p k: its data pages [*first, *end);
 * true if it can be one huge page (inside the object, the mapping 2 MiB
 * aligned; the first chunk may begin with metadata). */
bool mempool__chunk_of(const mp_core *c, uint64_t k, uint64_t *first,
                       uint64_t *end);
/* Back @p n consecutive chunks, the first holding data page @p first,
 * with one huge page each (one call); 0 or -errno (-EINVAL: the kernel
 * cannot; any error: some may be done, the rest are still holes). */
int  mempool__back_huge(const mp_core *c, uint64_t first, uint64_t n);
/* A new pool's metadata [0, @p len) of the object @p fd mapped at @p base:
 * its whole chunks as huge pages, if the kernel will (no error: the
 * caller's posix_fallocate() reserves what is left). */
void mempool__back_meta(int fd, uint8_t *base, uint64_t len);
/* fallocate() data pages [k, k + n): 0 or -errno (-ENOSPC). */
int  mempool__back_pages(const mp_core *c, uint64_t k, uint64_t n);
/* MEMPOOL_OPEN_RESERVE: back every data page, whole chunks as huge pages
 * while @p huge (refusals fall back to 4 KiB); 0 or -errno (-ENOSPC). */
int  mempool__back_all(const mp_core *c, bool huge);
/* blockback.c: back the pages [pg, pg + n) of a block the caller owns
 * (its ALLOC entry names it) that are still flagged as holes, without
 * the allocator lock; huge pages while *@p huge. 0 or -ENOSPC (the pages
 * keep their flags; the caller frees the block). */
int  mempool__block_back(mp_core *c, bool *huge, uint64_t pg, uint64_t n);
/* The same for pages [pg, end) of such a block, without the back.block
 * point: what each step of a pipelined fill (backahead.c) backs. */
int  mempool__range_back(const mp_core *c, bool *huge, uint64_t pg,
                         uint64_t end);
/* Are data pages [a, z) (at most one chunk) all in the shm object?
 * (mincore; page @p probe, in [a, z), asked alone first.) */
bool mempool__resident(const mp_core *c, uint64_t a, uint64_t z,
                       uint64_t probe);
/* backahead.c: a put of @p len bytes from @p src into the block of data
 * pages [pg, pg + n) at @p dst (ours, ALLOC, some pages still flagged as
 * holes): back it a chunk at a time, each before it is copied into, the
 * rest on a helper thread started for the call.
 * 0 or -ENOSPC (the caller gives the reservation back). */
int  mempool__fill(mp_core *c, bool *huge, uint64_t pg, uint64_t n,
                   void *dst, const void *src, size_t len);
/* Is a CPU free for such a helper now (this thread may run on two or
 * more, and fewer tasks are runnable than there are CPUs)? */
bool mempool__spare_cpu(void);
/* Are data pages [pg, end) all backed (no punched flag)? */
bool mempool__all_backed(const mp_core *c, uint64_t pg, uint64_t end);
/* The 4 KiB pass of both paths: fallocate() each stretch of flagged pages
 * in [pg, end), clearing their flags; 0 or -ENOSPC. */
int  mempool__back_stretches(const mp_core *c, uint64_t pg, uint64_t end);

/* ---- alloc.c: blocks and entries, under the robust allocator lock ----- */
/* -EAGAIN after the peer wait bound (a stopped holder, or a live TID
 * planted in the word: no wait on this lock is without a bound) */
int  mempool__lock(mempool *p);
/* For a step that can be owed (a free): one try once frees are owed, and
 * header.owed raised when it fails (entry.c, "owed frees"). */
int  mempool__lock_or_owe(mempool *p);
/* The allocator lock, one try (a short spin): 0 or -EAGAIN, for readers
 * that must not wait for a stopped holder. */
int  mempool__lock_try(mempool *p);
void mempool__unlock(mempool *p);
int  mempool__alloc(mempool *p, uint64_t len, uint32_t *idx);  /* locked */
bool mempool__free(mempool *p, uint32_t idx, uint64_t w);      /* locked */
void mempool__charge(mempool *p, uint32_t idx);                /* locked */
void mempool__charge_ondisk(mempool *p, uint32_t idx, uint64_t w,
                            uint64_t nw);                 /* locked */
void mempool__evict_locked(mempool *p, uint32_t idx, uint64_t w);
bool mempool__disown(mempool *p, int d);   /* false: left owed */
bool mempool__slot_holds(mempool *p, int d); /* charges, cache: racy */
uint64_t mempool__block_bytes(uint64_t len);
/* @p owner's limit passed by @p len more bytes: by how much, else 0. */
uint64_t mempool__over_limit(mempool *p, int owner, uint64_t len);
/* Slot @p s's charges (the allocator lock's part plus its cache's). */
void mempool__charged(mempool *p, int s, uint64_t *objects,
                      uint64_t *resident);
/* Entries and block bytes held in workers' caches (no objects). */
void mempool__cached(mempool *p, uint64_t *entries, uint64_t *bytes);
void mempool__alloc_init(mempool *p, bool holes);
int  mempool__alloc_verify(mempool *p, char *why, size_t whylen); /* locked */
int64_t mempool__trim_locked(mempool *p);

/* ---- entry.c: the entry word's composite steps (entry.h) -------------- */
/* These take the handle: they wait for and reap peers (mempool__wait_who)
 * or reach the layers above through p->spill_ops / p->hand_ops. */
int  mempool__entry_delete(mempool *p, uint32_t idx, uint32_t gen);
void mempool__entry_reclaim(mempool *p, uint32_t idx);
/* A free that waited out the allocator lock is owed: the next freer or
 * allocator pays it (mempool__reclaim_owed: DELETED entries, dead
 * workers' reservations). */
void mempool__owe(mempool *p);
void mempool__reclaim_owed(mempool *p);
/* Give up the charges of slots left while frees were owed (worker.c). */
void mempool__settle_left(mempool *p);
void mempool__entry_after_unpin(mempool *p, uint32_t idx);
void mempool__unpin(mempool *p, uint32_t idx, uint32_t gen, uint64_t tok);
void mempool__entry_refcheck(mempool *p, uint32_t idx, uint32_t gen);
/* Take back the reference cell we added for (idx, gen), found dead. Cells
 * keep 16 bits of the generation: if the entry has come round to one with
 * the same 16 bits meanwhile, a check of that object may have counted our
 * cell (and a bump of it by another thread of ours: pin.c) - check it
 * again, or it outlives its last reference (check_ref_gen16). */
void mempool__ref_undo(mempool *p, uint32_t idx, uint32_t gen);
bool mempool__entry_refcheck_drop(mempool *p, uint32_t idx, uint32_t gen,
                                  bool (*drop)(mempool *, void *), void *arg);
void mempool__entry_repair(mempool *p, int d, uint32_t idx);

/* ---- box*.c: items the pool holds (names, channel slots, flight) ------- */
int  mempool__box_claim(mempool *p, uint32_t idx, uint32_t gen, bool ref,
                        uint64_t back, uint32_t *b);     /* PREP(us) */
void mempool__box_commit(mempool *p, uint32_t b);        /* PREP -> HELD */
bool mempool__box_drop(mempool *p, uint32_t b, uint64_t w); /* free + check */
bool mempool__box_take(mempool *p, uint32_t b, uint64_t w); /* free, no check */
void mempool__box_drop_out(mempool *p, uint32_t b);  /* ours: PREP/HELD */
/* Box @p b is being taken out of its record by us (box_hazard.c,
 * "taking"): announce it before the record's CAS, withdraw after freeing
 * it. */
int mempool__box_announce(mempool *p, uint32_t b);
void mempool__box_reannounce(mempool *p, int k, uint32_t b);
void mempool__box_unannounce(mempool *p, int k);
int  mempool__box_find(mempool *p, uint32_t idx, uint32_t gen,
                       bool (*fn)(mempool *, uint32_t, uint64_t, void *),
                       void *arg);
bool mempool__box_held(mempool *p, uint32_t idx, uint32_t gen);
uint32_t mempool__box_count(mempool *p, uint32_t idx, uint32_t gen);
bool mempool__box_referenced(mempool *p, uint32_t b, uint64_t w);
uint64_t mempool__box_sweep(mempool *p, int dead);  /* box_sweep.c */
/* A stale box word made safe (box_hazard.c, "hazards"): between enter and
 * exit no claim keeps a box we announce, so a word read after the
 * announcement names the box we judged until we free it (the sweep,
 * flight take and expiry). Any thread; they nest. */
void mempool__hazard_enter(mempool *p);
void mempool__hazard_exit(mempool *p);
uint64_t mempool__flight_expire(mempool *p, bool force);  /* box_expire.c */
/* Is box @p b (word @p w) a HELD reference in flight due at @p now? */
bool mempool__flight_due(mempool *p, uint32_t b, uint64_t w, uint64_t now);
int  mempool__box_verify(mempool *p, char *why, size_t whylen); /* fsck */
void mempool__box_reap(mempool *p, int d);  /* sweep, locks, TTLs */
/* entry_wake.c: wake get_wait sleepers of entry @p idx. */
void mempool__entry_wake(mempool *p, uint32_t idx);
/* The same after a publish, then yield the CPU to a sleeper it woke (at
 * most once, off for a while after a late yield: entry_wake.c). */
void mempool__entry_wake_published(mempool *p, uint32_t idx);

/* ---- object.c: shared helpers used by the reaper and spill code -------- */
int  mempool__entry_of(const mempool *p, mempool_dref r, uint32_t *idx,
                       uint32_t *gen);
int  mempool__get(mempool *p, mempool_dref r, mempool_view *v, bool recency);
/* A get of (idx, gen), a DRef that passed mempool__get_entry(). */
int  mempool__get_at(mempool *p, uint32_t idx, uint32_t gen, mempool_view *v,
                     bool recency);
/* The rest of a get once our pin @p tok on (idx, gen) is in its cell
 * (after get.pinned): re-read the word, wait out an eviction, build the
 * view; on any failure the pin is dropped again. */
int  mempool__get_pinned(mempool *p, uint32_t idx, uint32_t gen, uint64_t tok,
                         mempool_view *v, bool recency);
/* mempool_release() of every kind of view (get.c takes the common one). */
int  mempool__release(mempool *p, mempool_view *v);
/* The checks every get starts with; 0 with (idx, gen) of @p r. */
int  mempool__get_entry(mempool *p, mempool_dref r, const mempool_view *v,
                        uint32_t *idx, uint32_t *gen);
mempool_dref mempool__dref_of(const mempool *p, uint32_t idx, uint32_t gen);
int  mempool__ref_settle(mempool *p, uint32_t idx, uint32_t gen);
#define MP_VIEW_FILE UINT64_C(2)   /* view kind: a get_file mapping only */
void mempool__view_seal(mempool_view *v, const mempool *p, uint64_t a,
                        uint64_t b, uint64_t kind);

/* ---- spill.c: clean copies, eviction, making room ---------------------- */
extern const mp_spill_ops mempool__spill_ops;   /* for pool.c */
extern const mp_hand_ops mempool__hand_ops;     /* handoff/, for pool.c */
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
void mempool__spill_close(mempool *p);  /* close: files of a destroyed pool */
int  mempool__spill_dirfd(mempool *p);  /* the proven directory, or error */

/* ---- mapcache.c: read-back mappings ------------------------------------ */
int  mempool__map_entry(mempool *p, uint32_t idx, uint32_t gen, uint64_t *id,
                        const uint8_t **data);
int  mempool__map_file(mempool *p, const char *path, uint64_t *id,
                       const uint8_t **data, uint64_t *len, uint32_t *type);
int  mempool__map_put(mempool *p, uint64_t id);   /* by mapping id */
void mempool__maps_free(mempool *p);
void mempool__maps_sweep(mempool *p);

/* ---- spiller.c: the pool's elected background spiller ----------------- */
int  mempool__spiller_start(mempool *p);
void mempool__spiller_stop(mempool *p);

/* ---- codec.c ---------------------------------------------------------- */
void mempool__codecs_free(mempool *p);  /* at close; NULL-safe */
/* 0 if user type @p type has a codec registered through @p p, else
 * -ENOTSUP. core calls it through p->type_known (pool.c installs it). */
int  mempool__codec_known(mempool *p, uint32_t type);

static inline mp_entry *mp_entry_at(mempool *p, uint32_t idx)
{
    return mp_core_entry(&p->core, idx);
}

static inline uint32_t mp_entry_idx(mempool *p, const mp_entry *e)
{
    return (uint32_t)(e - p->tab);
}

#endif /* MEMPOOL_INTERNAL_H */
