/* SPDX-License-Identifier: MIT */
/*
 * layout.h - the structures that live in the shared arena, and why.
 *
 * Everything here is mapped by every process of a pool, possibly at
 * different addresses, so links are offsets or indices, never pointers.
 * Any word that is changed concurrently is one 64-bit atomic. Everything is
 * read as untrusted input: a bad value gives an error, never a crash.
 *
 * The arena, in order (offsets recorded in the header and recomputed on
 * attach, so a header that disagrees with itself is refused):
 *
 *   header        4 KiB    identity, layout, allocator lock and state
 *   slots         64 x 256 B   one per worker: liveness token, counters
 *   cells         64 x max_refs x 9 B  one pin/ref table per worker
 *   wcache        64 x 896 B   one allocator cache per worker (wcache.c)
 *   hand          20 KiB   handoff header: locks, futex words, counters,
 *                          broadcast subscribers per channel and worker
 *   boxwords      nbox x 8 B   pool-held items (names, channels, flight)
 *   boxes         nbox x 32 B  their payloads
 *   names         nnames x 320 B  the name directory (open addressing)
 *   chans         64 x 448 B   channel headers
 *   ring          nring x 8 B  channel ring slots, ranges per channel
 *   direct        64 x 16..1024 x 16 B  plain items in queue rings, one
 *                          block per worker (handoff/chan_direct.c)
 *   table         max_objects x 64 B   the object entries a DRef names
 *   pages         npages x 32 B   page descriptors (allocator)
 *   bitmap        npages bits     1 = page free (allocator)
 *   (gap)         < 2 MiB, never backed, so that the data starts on a
 *                 2 MiB chunk when that costs at most 1/8 of it (arena.c)
 *   data          npages x 4 KiB  object bytes, 64-byte aligned
 *
 * Liveness. A worker owns slot s while it holds an OFD write lock on byte
 * MP_LOCK_BASE + 1 + s of the pool's lock file (lockfile.c; session 11 and
 * before: of the shm object). The kernel drops the lock when the
 * process dies (and its forked children drop their copy at fork, see
 * worker.c), so "can I take that lock?" is an exact, PID-reuse-proof death
 * test. The reaper takes the dead slot's lock before touching what the slot
 * held, so two reapers never repair the same slot. Byte MP_LOCK_BASE is the
 * init lock (on the shm object), held by the creator until the pool is READY.
 *
 * Entry word (mp_entry.word), the one word every transition CASes:
 *
 *   63            32 31     24 23      16 15      8 7       0
 *   [ generation    | state   | who      | rc      | flags   ]
 *
 *   FREE      on the allocator's free list (gen already bumped)
 *   ALLOC     reserved by worker `who`, not yet visible
 *   LIVE      published; immutable bytes at off/len
 *   EVICTING  `who` is freeing the memory of an object with a clean file;
 *             readers wait for the verdict (back to LIVE, or SPILLED)
 *   SPILLED   bytes only in the spill file (F_ONDISK | F_NOMEM)
 *   DELETED   gets fail; bytes and file stay until no pin cell names it
 *   FREEING   being freed by the allocator-lock holder `who`
 *   RETIRED   generation exhausted; never reused
 *   CACHED    in worker `who`'s allocator cache (wcache.c) with a block of
 *             its size class still attached (off, len); gen already
 *             bumped; owns the block but is no object
 *
 *   rc        slot + 1 of a worker deciding whether a refcounted object
 *             lost its last reference (LIVE or SPILLED), else 0
 *   F_ONDISK  a complete file "<idx>-<gen>" holds the bytes
 *   F_WRITING `who` is writing that file ("<idx>-<gen>.tmp")
 *   F_NOMEM   the bytes are not in the arena
 *   F_MOVE    move_to_disk() asked while pinned: evict at last release
 *   F_RECHECK (only with rc) a reference changed during the check: the
 *             checker scans again before its verdict (object.c)
 *
 * Pins and references are not counted in the entry. Each worker records
 * them in its own cell table (pin.c), so the pins of a dead worker are known
 * exactly and dropped by clearing its table. "Is this entry pinned?" scans
 * one bucket of the tables of the attached workers its holders word names
 * (hazard-pointer style; pin.c).
 */
#ifndef MEMPOOL_LAYOUT_H
#define MEMPOOL_LAYOUT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <mempool/mempool.h>

#define MP_MAGIC          UINT64_C(0x314c4f4f504d454d) /* "MEMPOOL1" */
#define MP_FORMAT_VERSION 13u  /* 13: allocator caches by class share,
                                  deleters' stashes (wcache.c);
                                  12: direct ring items (chan_direct.c);
                                  11: data from a 2 MiB boundary (arena.c
                                  data_fit); 10: owed frees (header.owed);
                                  9: mp_entry.holders (pin.c); 8: the box
                                  sweep's hazard (box.c) */
#define MP_PAGE           4096u
#define MP_ALIGN          64u
#define MP_MIN_ARENA      MEMPOOL_MIN_ARENA_BYTES
#define MP_MAX_ARENA      MEMPOOL_MAX_ARENA_BYTES
#define MP_MAX_OBJECTS    MEMPOOL_MAX_OBJECTS
#define MP_WORKERS        MEMPOOL_MAX_WORKERS
#define MP_PATH_MAX       1024
#define MP_LOCK_SPILLER   (MP_LOCK_BASE - 1)

/* OFD lock bytes on the shm object (far past its end; locks are advisory). */
#define MP_LOCK_BASE      ((off_t)1 << 40)
#define MP_LOCK_INIT      MP_LOCK_BASE
#define MP_LOCK_SLOT(s)   (MP_LOCK_BASE + 1 + (off_t)(s))

/* header.dir_flags */
#define MP_DIR_MADE_BASE 0x1u  /* creation made <spill_dir>: destroy removes
                                  it when empty */

/* header.init_state */
enum { MP_INIT_BUILDING = 1, MP_INIT_READY = 2, MP_INIT_FAILED = 3 };

/* Entry states (bits 31..24 of the entry word). */
enum {
    MP_ST_FREE = 0, MP_ST_ALLOC = 1, MP_ST_LIVE = 2, MP_ST_DELETED = 3,
    MP_ST_FREEING = 4, MP_ST_RETIRED = 5, MP_ST_EVICTING = 6,
    MP_ST_SPILLED = 7, MP_ST_CACHED = 8
};
#define MP_F_ONDISK   0x01u
#define MP_F_WRITING  0x02u
#define MP_F_NOMEM    0x04u
#define MP_F_MOVE     0x08u
#define MP_F_RECHECK  0x10u

#define MP_W(gen, st, who, fl) \
    (((uint64_t)(gen) << 32) | ((uint64_t)(st) << 24) | \
     ((uint64_t)(who) << 16) | (uint64_t)(fl))
#define MP_W_GEN(w)   ((uint32_t)((w) >> 32))
#define MP_W_ST(w)    ((unsigned)(((w) >> 24) & 0xff))
#define MP_W_WHO(w)   ((unsigned)(((w) >> 16) & 0xff))
#define MP_W_RC(w)    ((unsigned)(((w) >> 8) & 0xff))
#define MP_W_FL(w)    ((unsigned)((w) & 0xff))
#define MP_W_SETST(w, st, who) \
    (((w) & ~UINT64_C(0xffff0000)) | ((uint64_t)(st) << 24) | \
     ((uint64_t)(who) << 16))
#define MP_W_SETRC(w, rc) (((w) & ~UINT64_C(0xff00)) | ((uint64_t)(rc) << 8))
#define MP_GEN_MAX    UINT32_C(0xfffffffe)

/* Small size classes (slab pages); larger objects take page runs. */
#define MP_NCLASS     6
#define MP_SMALL_MAX  2048u

/* Per-worker pin/ref cell table (pin.c), sized per pool by max_refs (a
 * power of two, MP_REFS_MIN .. MEMPOOL_MAX_REFS): max_refs / MP_CELL_BW
 * home buckets of MP_CELL_BW cells (one cache line), then max_refs /
 * MP_CELL_OVF_DIV overflow cells, also in buckets. */
#define MP_CELL_BW      8u
#define MP_CELL_OVF_DIV 8u
#define MP_REFS_MIN     1024u

typedef struct mp_header {
    uint64_t magic;            /* MP_MAGIC, written before the name exists */
    uint64_t format;           /* mempool__format_word(): version + sizes */
    uint64_t arena_bytes;      /* must equal the object's size */
    uint64_t max_objects;
    uint64_t uuid[2];
    uint32_t pool_tag;         /* high half of every DRef.gen; never 0 */
    _Atomic uint32_t init_state;
    int32_t  init_err;         /* why MP_INIT_FAILED */
    uint32_t mode;
    /* Layout: recomputed from arena_bytes/max_objects/max_refs on attach. */
    uint64_t slots_off, cells_off, table_off, pages_off, bitmap_off;
    uint64_t data_off, npages;
    uint64_t created_ns;
    char     name[MEMPOOL_NAME_MAX + 1];
    uint8_t  pad0[7];
    char     spill_dir[MP_PATH_MAX];  /* absolute: <spill_dir>/<name> */
    uint32_t policy;           /* MEMPOOL_POLICY_* */
    uint32_t high_pct, low_pct;/* arena watermarks for the spiller */
    uint32_t dir_flags;        /* MP_DIR_*: what creation made (spilldir.c) */
    uint64_t default_memsize;  /* max_memsize of workers that give none */

    /* Shared, changing. */
    _Atomic uint64_t active;   /* bit s: slot s holds state (alive or not yet reaped) */
    _Atomic uint64_t owed;     /* 1: a free gave up waiting for the
                                  allocator lock (a stopped holder): the
                                  next freer or allocator scans the table
                                  (entry.c, mempool__reclaim_owed) */
    _Atomic uint64_t reaped;   /* workers reaped since creation */
    _Atomic uint64_t hwm;      /* entries [0, hwm) have ever been used */
    _Atomic uint32_t spiller;  /* slot + 1 of the elected spiller, 0 none */
    uint32_t pad4;
    uint64_t wcache_off;       /* the per-worker allocator caches */
    uint64_t max_refs;         /* cells of each worker's home buckets (pin.c) */
    uint64_t pad1[1];

    /* Allocator: everything below is written only under alloc_lock. */
    pthread_mutex_t alloc_lock;     /* robust, process-shared */
    uint8_t  pad2[64 - sizeof(pthread_mutex_t) % 64];
    _Atomic uint32_t lock_holder;   /* slot + 1 of the holder (diagnostics) */
    uint32_t entry_free;            /* idx + 1 of first free entry, 0 = none */
    _Atomic uint64_t entries_used;  /* entries not FREE (read racily by stats) */
    _Atomic uint64_t used_bytes;    /* allocated to objects, rounding included */
    uint64_t rover;                 /* first-fit hint: no page below it
                                       is free (alloc.c) */
    uint32_t partial[MP_NCLASS];    /* page + 1 of first slab with room */
    _Atomic uint64_t rebuilds;      /* allocator rebuilds after a holder died */

    /* Observability (stats.c). A slot's event counters (MP_NCOUNTERS of
     * them, in MP_COUNTERS order) count for its current worker: claiming a slot
     * first adds the previous holder's counts here and zeroes them, so the
     * sum over slots plus `retired` is the total since creation. */
    _Atomic uint64_t retired[16];
    _Atomic uint64_t recovered_pins; /* pin cells dropped for a worker that
                                        died or closed without releasing */
    /* Charges of objects that belong to the pool (owner 0: their worker
     * closed or died); under alloc_lock like the slots' charges. */
    _Atomic uint64_t pool_objects, pool_resident, pool_disk;

    /* Handoff regions (src/core/box.c, src/handoff/), recomputed on attach
     * from arena_bytes like the rest of the layout. */
    uint64_t hand_off, boxw_off, boxes_off, names_off, chans_off, ring_off;
    uint32_t nbox, nnames, nring, nchans;
} mp_header;

/* One worker's slot. Lines by who writes them (issue 11: two writers must
 * share no line): line 0 is read by every worker (a pin scan reads
 * overflow_used/ovf_probe of each attached slot on every delete) and
 * written rarely; lines 1-3 hold what the worker itself writes on every
 * operation (its event counters) or what the allocator lock moves. */
#define MP_TAKING 4u             /* box_taking words per worker slot */
typedef struct mp_slot {
    /* Line 0: read by others, written at claim or rarely. */
    _Atomic uint64_t state;         /* 0 free, 1 in use (mirrors `active` bit) */
    uint64_t token;                 /* random per claim (diagnostics) */
    int32_t  pid;                   /* for display only; never a liveness test */
    _Atomic uint32_t io_backend;    /* our I/O engine: 0 none yet, 1
                                       io_uring, 2 pwrite (stats.c) */
    uint64_t claimed_ns;
    _Atomic uint64_t overflow_used; /* cells in use in the overflow region */
    _Atomic uint64_t ovf_probe;     /* overflow buckets a scan of our cells
                                       must look at past the first (pin.c) */
    _Atomic uint64_t max_memsize;   /* 0 = no limit */
    _Atomic uint64_t max_disksize;  /* 0 = no limit */
    /* Line 1: charges (the allocator lock's) and disk accounting. */
    _Atomic uint64_t resident_bytes;/* bytes of objects charged to this slot */
    _Atomic uint64_t objects;       /* objects charged to this slot */
    _Atomic uint64_t disk_bytes;    /* bytes of files of objects charged here */
    _Atomic uint64_t disk_pending;  /* bytes of files being written for
                                       objects charged here (disk limit) */
    /* Boxes (b + 1) this worker is taking out of their records: a sweep
     * frees none of them while we live (box_hazard.c). One per thread
     * of ours in such a window; zeroed by the reaper. */
    _Atomic uint64_t box_taking[MP_TAKING];
    /* Lines 2-3: event counters, the rows of MP_COUNTERS (counters.h), by
     * name; written by the worker itself. */
    _Atomic uint64_t sets, gets, deletes, releases, refs, unrefs, set_errors;
    _Atomic uint64_t spills, spill_bytes, spill_ns, spill_errors;
    _Atomic uint64_t restores, restore_bytes, destroys;
    _Atomic uint64_t corrupt_files; /* spill files our gets found corrupt */
    _Atomic uint64_t spill_refused; /* spills refused: unsafe directory */
} mp_slot;

typedef struct mp_entry {
    _Atomic uint64_t word;     /* gen | state | who | flags, see above */
    uint64_t off;              /* data offset of the block, 0 = none */
    uint64_t len;              /* object length in bytes */
    _Atomic uint64_t stamp;    /* recency ticket of the last set/get */
    uint32_t type;             /* codec type id */
    uint16_t owner;            /* charged slot + 1 */
    uint16_t setflags;         /* MEMPOOL_PUT_* */
    uint32_t next_free;        /* idx + 1, under the allocator lock */
    uint32_t pad;
    _Atomic uint32_t waiters;  /* mempool_get_wait() sleepers on the low
                                  half of word (handoff/wait.c) */
    uint32_t pad2;
    /* Bit s: worker slot s may hold a pin or reference cell of this
     * generation (set before the cell, zeroed when the entry is taken for
     * a new generation): the scans read only these slots' cells (pin.c). */
    _Atomic uint64_t holders;
} mp_entry;

/* A worker's allocator cache (wcache.c): entries in state CACHED(who =
 * the worker) with a block of one size class attached, so a small set and
 * a delete of its own small object take this worker's lock, not the pool's
 * allocator lock. Everything but the lock is derived: the entry table
 * (CACHED words) says what is cached, and the charges are recomputed from
 * the table whenever a holder died (`dirty`). The smallest class holds
 * MP_WC_MAX entries: a stream's producer runs up to a channel's capacity
 * ahead of its consumer, and with 128 its class emptied and filled
 * through the allocator lock on every swing (issue 12); the others 128
 * halved per class above 64 B, at least 16 (768 in all, as before:
 * 6 x 128). A refill of an empty class and a flush of a full one move
 * mp_wc_batch(c) entries per allocator-lock hold: half the class, at
 * least MP_WC_BATCH (wcache.c says why). */
#define MP_WC_MAX   512u       /* entries of the smallest class */
#define MP_WC_SLOTS 768u       /* entries of all classes */
#define MP_WC_BATCH 16u        /* moved per allocator-lock hold, at least */
#define MP_STASH_MAX   64u     /* a deleter's stash (handback.c): at most */
#define MP_STASH_BATCH 32u     /* handed back once this many of an owner wait */
#define MP_STASH_SLACK 8u      /* ... or the stash is this close to full */
typedef struct mp_wcache {
    pthread_mutex_t lock;      /* robust, process-shared; after alloc_lock */
    uint8_t  pad0[64 - sizeof(pthread_mutex_t) % 64];
    /* Written only by the holder of `lock`. */
    uint32_t dirty;            /* a holder died: repair before use */
    uint32_t n[MP_NCLASS];     /* cached entries per class */
    uint32_t pad1;
    /* The worker's charges moved by its cache (sets and deletes of its own
     * small objects); its slot's objects/resident_bytes hold the rest (the
     * allocator lock's). Owner's charge = the sum (modulo 2^64). */
    _Atomic uint64_t objects, resident;
    uint64_t pad2[2];
    uint32_t idx[MP_WC_SLOTS];  /* entry indices, class c's mp_wc_cap(c)
                                   from mp_wc_base(c) */
    /* The worker's stash (core/handback.c): other workers' small objects
     * it deleted, DELETED in the table, not yet handed back. Written by
     * the worker alone, without the lock, and only a hint: a reader that
     * wants exact figures reclaims what it names (mempool__entry_reclaim
     * acts on DELETED entries only, once each). Own lines: the worker
     * writes them on every such delete. */
    _Atomic uint32_t stash_n;
    uint32_t pad3[15];
    _Atomic uint32_t stash[MP_STASH_MAX];
} mp_wcache;

/* Class @p c's share of a cache's idx, and where it starts. */
static inline uint32_t mp_wc_cap(unsigned c)
{
    return c == 0 ? MP_WC_MAX : (256u >> c) < 16u ? 16u : 256u >> c;
}

/* Entries of class @p c a refill caches, and a flush of a full class
 * gives back, per allocator-lock hold: 256, 64, 32, then 16. */
static inline uint32_t mp_wc_batch(unsigned c)
{
    return mp_wc_cap(c) / 2u < MP_WC_BATCH ? MP_WC_BATCH : mp_wc_cap(c) / 2u;
}

static inline uint32_t mp_wc_base(unsigned c)
{
    static const uint16_t base[6] = { 0, 512, 640, 704, 736, 752 };
    return base[c];
}

/* Page descriptor kinds. */
enum { MP_PG_FREE = 0, MP_PG_SLAB = 1, MP_PG_HEAD = 2, MP_PG_TAIL = 3 };

typedef struct mp_page {
    uint64_t used;             /* SLAB: allocated-block bitmap */
    uint32_t prev, next;       /* SLAB: partial list links, page + 1 */
    uint32_t run;              /* HEAD: pages in the run */
    uint8_t  kind, cls, punched, pad0;
    uint64_t pad1;
} mp_page;

/* ---- handoff: pool-held items (box.c) ---------------------------------
 *
 * A box is one item the pool holds for a name, a channel ring slot or an
 * in-flight reference. Its word (boxwords[b], dense so reference checks
 * scan little) says which object it names and in which state:
 *
 *   63        33 32      17 16 15 14     8  7     6    0
 *   [ idx + 1   | gen & ffff | state | who    | REF  | nonce ]   0 = free
 *
 *   PREP(who)  being filled by worker `who`, not yet in its record
 *   HELD       committed: in its record (or, for flight, its own record)
 *   REF        it holds one pool-owned reference of a refcounted object
 *
 * Box b lives in bucket (idx % nbuckets) of 8 words or in the overflow
 * region, so "does the pool hold a reference to (idx, gen)?" scans one
 * cache line (plus the overflow region while it is in use).
 */
enum { MP_BOX_FREE = 0, MP_BOX_PREP = 1, MP_BOX_HELD = 2 };
enum { MP_BK_NONE = 0, MP_BK_NAME = 1, MP_BK_CHAN = 2, MP_BK_FLIGHT = 3 };
#define MP_BOX_W(idx, gen, st, who, ref, nonce) \
    (((uint64_t)((idx) + 1) << 33) | ((uint64_t)((gen) & 0xffffu) << 17) | \
     ((uint64_t)(st) << 15) | ((uint64_t)(who) << 8) | \
     ((uint64_t)((ref) ? 1 : 0) << 7) | (uint64_t)((nonce) & 0x7f))
#define MP_BOX_IDX1(w)  ((uint32_t)((w) >> 33))
#define MP_BOX_GEN16(w) ((uint32_t)(((w) >> 17) & 0xffff))
#define MP_BOX_ST(w)    ((unsigned)(((w) >> 15) & 3))
#define MP_BOX_WHO(w)   ((unsigned)(((w) >> 8) & 0x7f))
#define MP_BOX_REF(w)   ((unsigned)(((w) >> 7) & 1))
#define MP_BOX_KEY(w)   ((w) >> 17)         /* idx + gen16 */
#define MP_BOX_BW       8u
/* back word: kind << 56 | record index << 24 | ring slot (channel). */
#define MP_BACK(kind, rec, slot) \
    (((uint64_t)(kind) << 56) | ((uint64_t)(rec) << 24) | (uint64_t)(slot))
#define MP_BACK_KIND(b) ((unsigned)((b) >> 56))
#define MP_BACK_REC(b)  ((uint32_t)(((b) >> 24) & 0xffffffu))
#define MP_BACK_SLOT(b) ((uint32_t)((b) & 0xffffffu))

typedef struct mp_box {
    _Atomic uint64_t item;     /* idx << 32 | gen32 of the object */
    _Atomic uint64_t back;     /* MP_BACK(): the record that holds it */
    _Atomic uint64_t expire;   /* flight: CLOCK_MONOTONIC deadline ns, 0 never */
    uint64_t spare;
} mp_box;

/* Handoff header (whole pages at hand_off). */
typedef struct mp_hand {
    _Atomic uint32_t names_seq;     /* futex: bumped at every bind */
    _Atomic uint32_t nonce_next;    /* next block of box nonces (box.c) */
    _Atomic uint32_t names_lock;    /* slot + 1 of the name writer */
    _Atomic uint32_t dir_lock;      /* slot + 1 creating/destroying channels */
    _Atomic uint64_t ovf_used;      /* boxes in use in the overflow region */
    _Atomic uint64_t names_waiters; /* name_get sleepers (sleepers.h) */
    _Atomic uint64_t expire_ns;     /* last flight expiry sweep */
    _Atomic uint64_t flight_given, flight_taken, flight_expired;
    _Atomic uint64_t boxes_gc;      /* orphaned boxes freed by a sweep */
    _Atomic uint64_t get_waits;     /* get_wait calls that slept */
    _Atomic uint64_t sweeping;      /* bit s: worker s holds box hazards
                                       (a sweep, a flight take or expiry);
                                       claims keep no box its box_taking
                                       words name (box_hazard.c) */
    _Atomic uint64_t binder;        /* slot + 1 of the last name binder:
                                       name_get's spin peer (spin.h) */
    uint64_t spare[4];
    /* Broadcast subscribers (chan.c): [channel][worker slot] = gen16 << 16
     * | that worker's open subscriber handles of that incarnation. Written
     * by the worker (open, close) and zeroed by its reaper, so the sum over
     * slots of the words whose gen matches is exact once deaths are reaped. */
    _Atomic uint32_t subs[64][MP_WORKERS];
    /* Run words (handoff/spin.h): [worker slot] = CPU + 1 | asleep in a
     * handoff wait; written by that worker only, zeroed by its reaper. A
     * hint that decides whether a waiter spins before it sleeps. */
    _Atomic uint64_t run[MP_WORKERS];
} mp_hand;

/* A name record: word = state << 62 | version << 32 | box + 1. */
enum { MP_NM_FREE = 0, MP_NM_BOUND = 1, MP_NM_TOMB = 2 };
#define MP_NAME_MAX 255u
typedef struct mp_name {
    _Atomic uint64_t word;
    uint32_t hash;
    uint32_t len;
    char     name[MP_NAME_MAX + 1];
    uint64_t spare[6];
} mp_name;

/* A channel header: state word = gen << 32 | st << 24 | who << 16 | mode. */
enum { MP_CH_FREE = 0, MP_CH_CREATING = 1, MP_CH_OPEN = 2,
       MP_CH_DESTROYING = 3 };
#define MP_CHANS 64u
typedef struct mp_chan {
    /* read-mostly */
    _Atomic uint64_t state;
    uint32_t cap, start;            /* ring slots [start, start + cap) */
    _Atomic uint64_t dropped;
    _Atomic uint32_t subscribers;
    uint32_t namelen;
    uint64_t spare[4];
    /* the senders' line: what a send writes (a receiver only reads it) */
    _Atomic uint64_t tail;          /* next position to send */
    _Atomic uint64_t sent;
    _Atomic uint32_t recv_seq;      /* futex: receivers sleep on it */
    uint32_t recv_pad;
    _Atomic uint64_t recv_waiters;  /* its sleepers (handoff/sleepers.h) */
    _Atomic uint64_t sender;        /* slot + 1 of the last sender: a
                                       receiver's spin peer (spin.h) */
    _Atomic uint64_t send_gate;     /* a full channel's one spinning
                                       sender: until when (spin.h) */
    uint64_t spare2[2];
    /* the receivers' line */
    _Atomic uint64_t head;          /* next position to receive (queue) */
    _Atomic uint64_t received;
    _Atomic uint32_t send_seq;      /* futex: senders sleep on it */
    uint32_t send_pad;
    _Atomic uint64_t send_waiters;  /* its sleepers (handoff/sleepers.h) */
    _Atomic uint64_t receiver;      /* slot + 1 of the last receiver: a
                                       full channel's sender's spin peer */
    _Atomic uint64_t recv_gate;     /* the one spinning receiver: until
                                       when (spin.h) */
    uint64_t spare3[2];
    char     name[MP_NAME_MAX + 1];
} mp_chan;

/* Ring slot: pos (low 32 bits of the position) << 32 | FULL << 31 | box + 1.
 * Vyukov's bounded queue with the item and the turn in one word, so a
 * send or a receive is one CAS and a stopped process holds no slot. */
#define MP_RING_FULL   (UINT64_C(1) << 31)
#define MP_RING(pos, full, box1) \
    (((uint64_t)(uint32_t)(pos) << 32) | ((full) ? MP_RING_FULL : 0) | \
     (uint64_t)(box1))
#define MP_RING_POS(v)  ((uint32_t)((v) >> 32))
#define MP_RING_BOX1(v) ((uint32_t)((v) & 0x7fffffffu))
#define MP_RING_CLOSED UINT64_C(0xffffffff7fffffff)

/* A FULL queue slot whose low bits have MP_RING_DIRECT holds no box but a
 * direct item: record k of worker w's block (handoff/chan_direct.c), a
 * plain object's (idx, gen) and where it was sent (ring slot << 32 | the
 * low 32 bits of the position). Box numbers stay below 2^30. */
#define MP_DIRECT_KMAX  1024u
/* Records per worker: one per 256 KiB of arena, 16..1024 (1/256 of the
 * arena in all, 16 KiB for the smallest; 1 MiB from 256 MiB on). */
#define MP_DIRECT_K(arena) \
    ((arena) >> 18 < 16u ? 16u \
     : (arena) >> 18 > MP_DIRECT_KMAX ? MP_DIRECT_KMAX : (uint32_t)((arena) >> 18))
#define MP_RING_DIRECT  (UINT32_C(1) << 30)
#define MP_RING_D(w, k) (MP_RING_DIRECT | ((uint32_t)(w) << 16) | (uint32_t)(k))
#define MP_RING_IS_D(v) (((v) & MP_RING_FULL) && (v) != MP_RING_CLOSED && \
                         (MP_RING_BOX1(v) & MP_RING_DIRECT))
#define MP_RING_DW(v)   ((MP_RING_BOX1(v) >> 16) & 0x3fffu)
#define MP_RING_DK(v)   (MP_RING_BOX1(v) & 0xffffu)
typedef struct mp_direct {
    _Atomic uint64_t item;          /* idx << 32 | gen */
    _Atomic uint64_t where;         /* ring slot << 32 | position (low 32) */
} mp_direct;
/* The direct blocks follow the ring, aligned (arena.c). */
#define MP_DIRECT_OFF(ring_off, nring) \
    (((ring_off) + (uint64_t)(nring) * 8 + MP_ALIGN - 1) / MP_ALIGN * MP_ALIGN)

_Static_assert(sizeof(mp_hand) <= 8 * MP_PAGE, "handoff header: a few pages");
_Static_assert(sizeof(((mp_hand *)0)->subs) / sizeof(((mp_hand *)0)->subs[0])
               == MP_CHANS, "a subscriber row per channel");
_Static_assert(sizeof(mp_box) == 32, "mp_box is 32 bytes");
_Static_assert(sizeof(mp_name) == 320, "mp_name is 320 bytes");
_Static_assert(sizeof(mp_chan) == 448, "mp_chan is 448 bytes");
_Static_assert(offsetof(mp_chan, tail) % 64 == 0 &&
               offsetof(mp_chan, head) % 64 == 0, "sides on own lines");
_Static_assert(MP_WORKERS < 128, "box who fits 7 bits");

_Static_assert(sizeof(mp_slot) == 256, "mp_slot is 256 bytes");
_Static_assert(offsetof(mp_slot, max_disksize) < 64 &&
               offsetof(mp_slot, resident_bytes) == 64 &&
               offsetof(mp_slot, sets) == 128, "mp_slot lines");
_Static_assert(sizeof(mp_entry) == 64, "mp_entry is one cache line");
_Static_assert(sizeof(mp_page) == 32, "mp_page is 32 bytes");
_Static_assert(MP_NCLASS == 6 && MP_WC_SLOTS == 512u + 128u + 64u + 32u +
               16u + 16u && MP_STASH_MAX % 16 == 0,
               "the class shares fill idx; stash lines");
_Static_assert(sizeof(mp_wcache) % 64 == 0 &&
               offsetof(mp_wcache, dirty) % 64 == 0, "wcache lines");
_Static_assert(sizeof(mp_header) <= MP_PAGE, "header fits its page");
_Static_assert(offsetof(mp_entry, word) == 0, "entry word first");
_Static_assert(sizeof(_Atomic uint64_t) == 8, "64-bit atomics");
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "lock-free 64-bit atomics");
_Static_assert(MP_WORKERS <= 64, "active bitmap is one word");

#endif /* MEMPOOL_LAYOUT_H */
