/* SPDX-License-Identifier: MIT */
/*
 * mempool.h - share objects between processes on one host through one POSIX
 * shared-memory arena.
 *
 * This header is the whole public API and reads as the manual.
 *
 *   mempool *p;
 *   mempool_open("jobs", NULL, &p);            // create or attach
 *   mempool_dref r;
 *   mempool_put(p, buf, len, &r);              // copy bytes in, get a DRef
 *   // ... send r (16 plain bytes) to another process by any channel ...
 *   mempool_view v;
 *   mempool_get(p, r, &v);                     // zero-copy pointer, pinned
 *   use(v.data, v.len);
 *   mempool_release(p, &v);                    // unpin
 *   mempool_delete(p, r);
 *   mempool_close(p);
 *
 * Conventions
 *   - Names: object operations are verbs on the pool (mempool_put,
 *     mempool_get, mempool_delete); families are mempool_<noun>_<verb>
 *     (mempool_limit_set, mempool_stats_get, mempool_dref_parse).
 *   - Lengths of memory in the caller's address space are size_t;
 *     pool-wide quantities (arena size, limits, figures) are uint64_t.
 *   - Every function that can fail returns int: 0 (or a count) on success, a
 *     negative error code on failure. Errors are -errno values where one fits
 *     (-EINVAL, -ENOENT, -ENOMEM, -ENOSPC, ...) and MEMPOOL_E* codes, all
 *     below -4095, for library-only cases. mempool_strerror() names each one.
 *     errno is never the channel for an error; nothing is printed; the library
 *     never aborts on a caller's mistake or on corrupt shared state.
 *   - A failed call changes nothing visible unless its documentation says so.
 *   - Thread safety: one handle may be used by many threads at once.
 *     Process safety: any number of processes may open the same pool; each
 *     handle is one *worker* with its own slot. A handle must not be used in a
 *     child created by fork() (calls return MEMPOOL_EFORKED); the child opens
 *     its own.
 *   - Crash safety: a process killed at any instruction leaves the pool usable.
 *     Its pins, references and unpublished reservations are dropped when its
 *     worker is reaped: by the next mempool_open() of the pool, by
 *     mempool_reap(), or by any operation that finds it has to wait on it.
 *     Objects it published stay until deleted.
 */
#ifndef MEMPOOL_H
#define MEMPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <mempool/version.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define MEMPOOL_API __attribute__((visibility("default")))
#else
#define MEMPOOL_API
#endif

/* Marks a name kept for one release after it was renamed (the "Deprecated
 * names" section at the end). Define MEMPOOL_NO_DEPRECATED_WARNINGS to
 * silence the warnings while moving to the new names. */
#if defined(__GNUC__) && !defined(MEMPOOL_NO_DEPRECATED_WARNINGS)
#define MEMPOOL_DEPRECATED(msg) __attribute__((deprecated(msg)))
#else
#define MEMPOOL_DEPRECATED(msg)
#endif

/** @brief The version of the library in use (which may be newer than the
 *  headers a program was built with: compare with MEMPOOL_VERSION_STRING).
 *  @return "MAJOR.MINOR.PATCH", a static string. */
MEMPOOL_API const char *mempool_version(void);

/** @brief The library's version as a number, for comparisons at run time.
 *  @return MAJOR * 10000 + MINOR * 100 + PATCH (MEMPOOL_VERSION_NUMBER of
 *  the library's build). */
MEMPOOL_API unsigned mempool_version_number(void);

/* ------------------------------------------------------------------------ */
/* Errors                                                                    */
/* ------------------------------------------------------------------------ */

/** Library-specific error codes. All are below -4095 so that no value is
 *  ambiguous with a -errno. */
#define MEMPOOL_EFORMAT  (-4201) /**< shm object has another layout or version */
#define MEMPOOL_ECORRUPT (-4202) /**< shared state or a file failed validation */
#define MEMPOOL_EFORKED  (-4203) /**< handle used in a child after fork() */
#define MEMPOOL_ENOTREADY (-4204) /**< pool creator died before it was ready */
#define MEMPOOL_EUNSAFE  (-4205) /**< the spill directory failed its check
        (a symlink on the path, another owner, writable by others, not this
        pool's uuid marker): this handle neither writes nor reads spill
        files; its objects stay in memory (README "Security model") */

/** @brief A static, human-readable description of @p err (0, -errno or
 *  MEMPOOL_E*). Never NULL; unknown codes give "unknown error". */
MEMPOOL_API const char *mempool_strerror(int err);

/* ------------------------------------------------------------------------ */
/* Opening a pool                                                            */
/* ------------------------------------------------------------------------ */

/** One process's handle on a pool: a worker. Opaque. */
typedef struct mempool mempool;

/** mempool_options.flags */
#define MEMPOOL_OPEN_CREATE 0x1u /**< create the pool if it does not exist */
#define MEMPOOL_OPEN_EXCL   0x2u /**< with CREATE: fail with -EEXIST if it exists */
#define MEMPOOL_OPEN_NOVERIFY 0x4u /**< map spill files without checking the
                                        payload's chunk crcs (header still
                                        checked); see "Memory limit,
                                        spilling and files" */
#define MEMPOOL_OPEN_OBSERVE 0x8u  /**< attach as an observer, not a worker:
        no slot, no spiller thread, no reaping, not counted in
        mempool_stats.workers. Reads figures (mempool_stats_get(),
        mempool_worker_stats_get(), mempool_stats_json(), mempool_info_get(),
        mempool_check()); every call that would change the pool or pin an
        object returns -EPERM. Never creates (with CREATE: -EINVAL); a pool
        still being built is MEMPOOL_ENOTREADY. Needs only read permission
        on the shm object (mempool_check() then returns -EACCES).
        mempool_worker_id() returns 0. For monitors such as mempool-top.
        An observer may observe a pool of any owner. */
#define MEMPOOL_OPEN_ANY_OWNER 0x10u /**< attach even to a pool whose shm
        object belongs to another user than this process's effective uid
        or root. Without it such an open answers -EPERM: anyone can create
        /dev/shm/mempool.<name> first, and attaching to a pool hands its
        owner every object stored there (the rule sshd applies to its
        files). Pools of root or of the caller need no flag. Give it only
        to share a pool between users on purpose (see the README's
        "Security model"). */
#define MEMPOOL_OPEN_RESERVE 0x20u /**< when creating: give the whole
        arena memory now, so a /dev/shm that cannot hold it fails this open
        with -ENOSPC and no later put can. Pages get memory as the
        allocator would give them (see MEMPOOL_HUGE_AUTO): whole 2 MiB
        chunks as huge pages where the kernel allows (4 KiB pages where it
        refuses, or with MEMPOOL_HUGE_OFF), and no set ever backs a page
        again. The trade-off: opening costs the kernel zeroing the whole
        arena (~60-150 ms per GiB on a small VM, more where the host must
        first find the memory, against a few ms), in exchange for a fresh
        process's large sets at memcpy speed (a lazy pool's
        first set into new memory pays that zeroing, ~0.85-0.95x memcpy,
        unless a second CPU takes it: MEMPOOL_OPEN_BACK_INLINE).
        Without it (the default) data pages get memory when first used:
        memory is committed as it is used, and a put that needs new memory
        from a full /dev/shm fails with -ENOSPC. Ignored when attaching. */
#define MEMPOOL_OPEN_BACK_INLINE 0x40u /**< this handle's large puts back
        new memory in the calling thread only. By default a put of at least
        4 MiB whose block still has pages without memory (a new pool's, or
        trimmed ones) starts a helper thread for the length of the call
        when a CPU is free for it (the thread may run on two or more CPUs
        and fewer tasks are runnable than there are CPUs, /proc/loadavg):
        the kernel's zeroing of the block's chunks then runs on that CPU
        while the caller copies into the chunks already backed, so a fresh
        process's 64 MiB set into a new pool costs about the copy instead
        of zeroing + copy (see "Large puts into new memory" in
        docs/design.md for the figures). The CPU time stays that of zeroing
        + copy (plus ~50 us to start the thread); the thread is joined
        before the put returns and blocks every signal; where it cannot be
        created the put backs inline. Take this flag where a put must use
        one CPU only. Not with MEMPOOL_OPEN_BACK_AHEAD (-EINVAL). With or
        without it, such a put (>= 4 MiB into new memory; any put of
        >= 32 MiB) copies with streaming stores on x86-64: reading each
        line of new (just zeroed) or cold memory before overwriting it
        made the copy up to twice as slow; the trade-off is that the
        object's bytes are not in the CPU cache when the put returns. */
#define MEMPOOL_OPEN_BACK_AHEAD 0x80u /**< this handle's large puts into new
        memory start the helper thread (see MEMPOOL_OPEN_BACK_INLINE) even
        when no CPU looks free. On a busy machine that is slower than
        backing inline (the caller waits for a helper that waits for a
        CPU); for measurements and tests of the helper. */

/** Default arena size when creating: 1 GiB. */
#define MEMPOOL_DEFAULT_ARENA_BYTES (1ull << 30)
/** Most workers (attached handles) a pool serves at once. */
#define MEMPOOL_MAX_WORKERS 64
/** Smallest arena (mempool_options.arena_bytes): 3 MiB. Every pool carries
 *  metadata before its data pages - 64 worker slots with their pin and
 *  reference tables (9 B x max_refs each), the handoff regions and the
 *  object table: about 2.6 MiB for the smallest pools (max_refs 4096), so
 *  smaller arenas are refused (-EINVAL). From about 16 MiB the data pages
 *  start on the next 2 MiB boundary (a gap of under 2 MiB, never backed,
 *  at most 1/8 of the data): see mempool_stats.data_bytes. */
#define MEMPOOL_MIN_ARENA_BYTES (3ull << 20)
/** Largest arena: 64 TiB (offsets and page numbers stay well inside their
 *  fields; -EINVAL above). */
#define MEMPOOL_MAX_ARENA_BYTES (1ull << 46)
/** Largest object table (mempool_options.max_objects): 2^31 - 2 entries. */
#define MEMPOOL_MAX_OBJECTS ((1ull << 31) - 2)
/** Largest per-worker reference table (mempool_options.max_refs): 2^24. */
#define MEMPOOL_MAX_REFS (1ull << 24)
/** Longest pool name, not counting the terminating NUL. */
#define MEMPOOL_NAME_MAX 200
/** Longest time (ms) a call waits for another worker's step on the same
 *  object - an eviction (get, delete), a spill write (move/copy_to_disk) -
 *  or for the pool's allocator lock (sets, frees, check, trim), or the
 *  pool's evict_wait_ms if that is longer. The wait sleeps (no busy
 *  spinning), so a peer stopped by SIGSTOP, a debugger or a frozen cgroup
 *  costs the caller no CPU; past the bound the call answers -EAGAIN and
 *  changed nothing (a free answers 0 and leaves the memory to the next
 *  process that frees or allocates: mempool_delete()). A dead peer's step
 *  is undone at once instead. */
#define MEMPOOL_PEER_WAIT_MS 5000

/**
 * Options of mempool_open(). Always start from mempool_options_init(),
 * which sets @c size: the library reads only the fields that @c size
 * covers and takes mempool_options_init()'s defaults for the rest, so a
 * program built against an older, shorter struct keeps working when fields
 * are added at the end, and a newer, longer struct is accepted by an older
 * library as long as the fields it does not know are zero.
 */
typedef struct mempool_options {
    uint32_t    size;         /**< sizeof(mempool_options) of the caller's
                                   header; set by mempool_options_init() */
    uint32_t    flags;        /**< MEMPOOL_OPEN_* ; default CREATE */
    uint64_t    arena_bytes;  /**< shared memory to reserve when creating;
                                   default MEMPOOL_DEFAULT_ARENA_BYTES;
                                   rounded up to a multiple of 4096, then
                                   MEMPOOL_MIN_ARENA_BYTES to
                                   MEMPOOL_MAX_ARENA_BYTES (else -EINVAL);
                                   ignored when attaching */
    uint64_t    max_memsize;  /**< this worker's resident limit; 0 = the
                                   pool's default, which is the creator's
                                   max_memsize (none if it gave 0); change
                                   it with mempool_limit_set()
                                   (enforced by the spilling layer) */
    const char *spill_dir;    /**< default ".mempool" */
    uint32_t    mode;         /**< permission bits of the shm object, 0600 */
    uint32_t    reserved;     /**< 0 */
    uint64_t    max_objects;  /**< object table capacity when creating;
                                   0 = arena_bytes / 4096, at least 1024;
                                   at most MEMPOOL_MAX_OBJECTS, and the
                                   table (64 B per object) must leave the
                                   arena at least 4 data pages (else
                                   -EINVAL) */
    uint64_t    max_disksize; /**< this worker's limit on bytes in spill
                                   files; 0 = none */
    uint32_t    policy;       /**< MEMPOOL_POLICY_LRU (default) or _MRU;
                                   fixed by the creator */
    uint32_t    io_mode;      /**< MEMPOOL_IO_AUTO (io_uring, else pwrite)
                                   or MEMPOOL_IO_PWRITE */
    uint32_t    evict_wait_ms;/**< how long a set waits for pinned victims
                                   before -ENOMEM; default 100 */
    uint32_t    spiller;      /**< 1 (default): take part in the election
                                   of the pool's background spiller */
    uint32_t    huge;         /**< MEMPOOL_HUGE_AUTO (default) or
                                   MEMPOOL_HUGE_OFF: how this handle backs
                                   arena memory it is the first to use */
    uint64_t    max_refs;     /**< when creating: how many pins and
                                   references each worker can hold at once
                                   (one per distinct refcounted object it
                                   holds references to, one per view it
                                   holds). 0 = max_objects / 4 rounded up to
                                   a power of two, 4096 to 65536 (a 1 GiB
                                   arena gets 65536); else rounded up to a
                                   power of two, 1024 to MEMPOOL_MAX_REFS
                                   (else -EINVAL). Costs 9 B per unit per
                                   worker slot, in the arena: 64 x 9 B x
                                   max_refs (36 MiB at 65536), which must
                                   leave the arena 4 data pages (else
                                   -EINVAL). Past the limit a get, ref or
                                   refcounted put answers -ENOBUFS and
                                   changes nothing. Objects are placed by
                                   their index, so an unlucky set may meet
                                   the limit a little early; the table has
                                   1/8 spare cells for that. Ignored when
                                   attaching. */
} mempool_options;

/** Huge pages (mempool_options.huge). A new pool's data pages are holes
 *  until the allocator first hands them out; whoever does gives them memory
 *  then (a full /dev/shm is -ENOSPC from that put, never a SIGBUS).
 *  MEMPOOL_HUGE_AUTO: a 2 MiB-aligned chunk of the arena that is all holes
 *  gets one 2 MiB huge page (MADV_COLLAPSE, Linux 6.1; on tmpfs it works
 *  unless /sys/kernel/mm/transparent_hugepage/shmem_enabled is "deny"), and
 *  every process maps such a chunk with one page-table entry: a process's
 *  first write or read of a large object costs 1 fault per 2 MiB instead of
 *  512 (issue 11: a fresh process's 64 MiB set near memcpy speed). Where
 *  the kernel refuses (no free huge page, an older kernel), 4 KiB pages,
 *  silently. The cost: memory is committed 2 MiB at a time (at most one
 *  partly used chunk beyond what 4 KiB pages would commit), a chunk is
 *  zeroed in one go (0.1-1 ms) by the put that first reaches it,
 *  and mempool_trim() of part of a huge chunk frees its pages only where
 *  the kernel can split it (else it zeroes them and keeps the memory).
 *  MEMPOOL_HUGE_OFF: 4 KiB pages only (the 0.1 behaviour, minus the
 *  reservation of the whole arena at creation). Per handle: it decides how
 *  the chunks this handle's allocations first reach are backed. */
#define MEMPOOL_HUGE_AUTO 0u
#define MEMPOOL_HUGE_OFF  1u

/** Eviction policies (mempool_options.policy). MRU evicts the most recently
 *  used resident object other than the newcomer, as MemPool.jl's newer
 *  allocator does.
 *  Recency (a set or get marks an object used) is exact within one thread:
 *  of two objects a thread touched, the later one counts as more recent.
 *  Between threads or processes it is exact to the resolution of
 *  CLOCK_MONOTONIC_COARSE (clock_getres(); 4 ms at HZ=250, 1 ms at
 *  HZ=1000): touches closer together than that may be ordered either way.
 *  The price of this resolution is that repeated gets of an object write
 *  its shared recency stamp at most once per clock tick. */
#define MEMPOOL_POLICY_LRU 0u
#define MEMPOOL_POLICY_MRU 1u
/** I/O backends (mempool_options.io_mode). */
#define MEMPOOL_IO_AUTO   0u
#define MEMPOOL_IO_PWRITE 1u

/** @brief Fill @p o with the defaults: @c size = sizeof(mempool_options),
 *  1 GiB arena, no limits, ".mempool", mode 0600, MEMPOOL_OPEN_CREATE, LRU,
 *  io_uring if allowed, 100 ms eviction wait, spiller election on.
 *  Does nothing for NULL. */
MEMPOOL_API void mempool_options_init(mempool_options *o);

/**
 * @brief Open pool @p name, creating it when allowed, and claim a worker slot.
 *
 * The pool lives in the shm object "/dev/shm/mempool.<name>". Creation is
 * race-free: the arena is built under a private name and linked into place
 * only when its header is complete, so no process ever sees a half-built
 * pool; of many racing creators exactly one wins and the others attach. The
 * metadata is reserved with posix_fallocate() before the pool is marked
 * ready; data pages get memory when the allocator first hands them out
 * (the first 2 MiB of them at creation where the data starts on a 2 MiB
 * boundary; all at once here with MEMPOOL_OPEN_RESERVE), so an arena
 * larger than the free space of /dev/shm fails here, and a /dev/shm that
 * fills up later fails a put with -ENOSPC, never anything with SIGBUS.
 * Opening also reaps any dead worker it finds.
 *
 * @param[in]  name  1..MEMPOOL_NAME_MAX characters from [A-Za-z0-9._-],
 *                   not starting with '.'
 * @param[in]  o     options, or NULL for mempool_options_init()'s defaults
 * @param[out] out   the new handle
 * @return 0, or
 *   -EINVAL   bad name or option; @c o->size is not the end of a field
 *             (0: the options were not initialised);
 *   -E2BIG    @c o->size is larger than this library's mempool_options
 *             and a field it does not know is not zero;
 *   -ENOENT   the pool does not exist and CREATE was not given;
 *   -EEXIST   CREATE|EXCL and the pool exists;
 *   -ENOSPC   /dev/shm cannot hold the arena (in a container, raise
 *             --shm-size);
 *   -EACCES   the shm object's permissions do not allow it;
 *   -EPERM    the shm object belongs to another user than the caller's
 *             effective uid or root and MEMPOOL_OPEN_ANY_OWNER was not
 *             given (a name squatted by another user, or a shared pool
 *             that needs the flag);
 *   -EUSERS   all MEMPOOL_MAX_WORKERS slots are held by live workers;
 *   MEMPOOL_EFORMAT  the object was made by an incompatible build;
 *   MEMPOOL_ECORRUPT bad magic, size not matching the header, bad layout,
 *             or the name is not a regular file (a FIFO, a symlink, ...);
 *   MEMPOOL_ENOTREADY the creator died before finishing and the pool could
 *             not be completed;
 *   -ENAMETOOLONG the absolute spill directory is longer than 1023 bytes;
 *   -EIO      the new arena could not be written;
 *   -EAGAIN   getrandom() could not give the new pool's uuid yet (early
 *             boot); or the pool is not READY (its creator died or is
 *             stopped after linking it) and its init lock stayed held past
 *             MEMPOOL_PEER_WAIT_MS - by a stopped process, or by anyone
 *             who may open the pool (a reader too) - nothing changed: retry;
 *   -ENOMEM, or another -errno of the system calls it makes (shm_open,
 *             ftruncate, posix_fallocate, mmap, mkdir, fcntl).
 */
MEMPOOL_API int mempool_open(const char *name, const mempool_options *o,
                             mempool **out);

/** @brief Release this worker's pins, references and reservations, give up
 *  its slot, unmap and free the handle. Objects stay. In a forked child it
 *  only frees the child's memory. A closed handle is poisoned, not freed at
 *  once: a second mempool_close() of the same pointer, or any other call
 *  on it, answers -EINVAL as long as fewer than 64 other handles of this
 *  process were closed since (after that the pointer is freed memory, as
 *  after free()). As with free(), no other thread of this process may be
 *  inside a call on @p, or make one, once close has begun: a thread
 *  sleeping in mempool_get_wait(), mempool_name_get() or a channel call on
 *  it must have returned first (give it a timeout, or wake it).
 *  @return 0, or -EINVAL for NULL or a closed handle. */
MEMPOOL_API int mempool_close(mempool *p);

/** @brief Remove pool @p name: its shm object and its spill directory.
 *  Attached processes keep working on their mapping until they close, but
 *  objects that were only on disk are gone for them too (-ENOENT), and
 *  their spills fail; files of the destroyed pool still in its directory
 *  are removed at their close. Restartable: the object is first renamed to
 *  a tombstone "mempool.<name>#destroy.<uuid>" (the name is free at once),
 *  the directory is removed, the tombstone last; a destroy killed midway is
 *  finished by the next destroy of the name. The spill path in the header
 *  is never followed on trust (README "Security model"): only a directory
 *  proven to be this pool's is emptied (of the names mempool writes) and
 *  removed, with the base directory if the pool made it and it is empty.
 *  Whatever else sits at the name (a FIFO, a corrupt arena) is removed.
 *  @return 0 (also when only a killed destroy's leftovers were finished),
 *  -ENOENT if there is no such pool and nothing left of one, -EINVAL for
 *  a bad name, -EPERM/-EACCES if the caller may not remove the name (sticky
 *  /dev/shm: another user's pool), -ENAMETOOLONG, or another -errno of
 *  open/rename/unlink/rmdir. */
MEMPOOL_API int mempool_destroy(const char *name);

/** @brief This worker's number, 1..MEMPOOL_MAX_WORKERS; stable while the
 *  handle is open. @return the id, or -EINVAL / MEMPOOL_EFORKED. */
MEMPOOL_API int mempool_worker_id(const mempool *p);

/** @brief Reap every dead worker now: drop its pins and references, free its
 *  unpublished reservations, finish or undo what it was doing. Frees left
 *  owed by a stall of the allocator lock (a holder stopped inside it) are
 *  paid too, once the lock is free (one try: no wait for a stopped holder).
 *  @return the number of workers reaped (0 or more), or -EINVAL (NULL),
 *  -EPERM (observer handle), MEMPOOL_EFORKED. */
MEMPOOL_API int mempool_reap(mempool *p);

/* ------------------------------------------------------------------------ */
/* Objects                                                                   */
/* ------------------------------------------------------------------------ */

/**
 * A reference to an object: 16 plain bytes that any process attached to the
 * same pool can use. @c off is the arena offset of the object's table entry
 * in its bits 6..45 (MEMPOOL_DREF_ENTRY_BITS); @c gen is the entry's
 * generation (low 32 bits) and a tag of the pool (high 32 bits), so a DRef
 * from a deleted object, a reused slot or another pool is recognised. Copy
 * it freely; it carries no reference count.
 *
 * The other 24 bits of @c off (0..5 and 46..63) are a data hint: where the
 * object's bytes were when the library made this DRef (put, reserve, a name
 * or channel lookup), so that a get in a large pool can start loading the
 * data before the entry arrives (issue 11, docs/design.md "Random gets in
 * large pools"). The hint is only ever compared with the entry, never read
 * through: a stale one (the object was spilled and mapped back, moved, its
 * slot reused) or one a caller forged or zeroed changes no result, only the
 * speed. So two DRefs of one object may differ in these bits: compare DRefs
 * with mempool_dref_equal() (or (off & MEMPOOL_DREF_ENTRY_BITS, gen)), not
 * memcmp. The text form carries all 128 bits.
 */
typedef struct mempool_dref { uint64_t off, gen; } mempool_dref;

/** The bits of mempool_dref.off that name the entry (the rest: the hint). */
#define MEMPOOL_DREF_ENTRY_BITS ((uint64_t)0x00003fffffffffc0u)

/** @brief Whether @p a and @p b name the same object: entry offset and
 *  generation with the pool's tag compared, data hints ignored.
 *  @return 1 if they do, else 0. */
MEMPOOL_API int mempool_dref_equal(mempool_dref a, mempool_dref b);

/** mempool_put_options.flags */
#define MEMPOOL_PUT_REFCOUNTED      0x1u /**< deleted at the last unref */
#define MEMPOOL_PUT_DESTROY_ON_EVICT 0x2u /**< dropped, not spilled, on eviction */

/** Options of mempool_put_ex(), mempool_reserve(), mempool_put_obj(). */
typedef struct mempool_put_options {
    int      owner;  /**< worker charged for the object; 0 = the caller */
    uint32_t type;   /**< codec type id; 0 = plain bytes */
    uint32_t flags;  /**< MEMPOOL_PUT_* */
} mempool_put_options;

/** @brief Copy @p len bytes (0 allowed) into the pool as a new immutable
 *  object owned by the caller. Same as mempool_put_ex() with NULL options.
 *  @return as mempool_put_ex(). */
MEMPOOL_API int mempool_put(mempool *p, const void *data, size_t len,
                            mempool_dref *out);

/**
 * @brief Copy @p len bytes into the pool as a new immutable object.
 * @param[in]  o    owner, type, flags; NULL for defaults
 * @param[out] out  the object's DRef
 * @return 0, or
 *   -EINVAL  NULL argument (data may be NULL when len is 0), unknown flag,
 *            or @c o->type is a reserved id (between MEMPOOL_TYPE_TABLE
 *            and MEMPOOL_TYPE_USER);
 *   -ENOTSUP @c o->type is a user type with no codec registered through
 *            this handle (as mempool_put_obj());
 *   -ESRCH   @c o->owner is not an attached worker;
 *   -ENOMEM  the arena has no room (after reaping dead workers);
 *   -ENOSPC  the object table is full, /dev/shm could not back memory
 *            returned earlier by mempool_trim(), or making room needed a
 *            spill that the disk (or the owner's disk limit) refused;
 *   -E2BIG   @p len is larger than the arena or the owner's memory limit;
 *   -ENOBUFS MEMPOOL_PUT_REFCOUNTED and this worker's reference table is
 *            full (mempool_options.max_refs); nothing was stored;
 *   -EAGAIN  another worker holds the pool's allocator lock and did
 *            not let go within MEMPOOL_PEER_WAIT_MS (it is stopped inside
 *            an allocation or a free); or this worker has a memory limit
 *            and another worker stopped while freeing an object of ours
 *            holds this worker's allocator cache lock (the limit is exact
 *            only under it; without a limit the put goes around the cache,
 *            after one short wait per stop); nothing was stored: retry
 *            later;
 *   -EPERM   observer handle (MEMPOOL_OPEN_OBSERVE);
 *   MEMPOOL_EFORKED  handle used in a forked child;
 *   MEMPOOL_ECORRUPT the allocator's shared state failed validation;
 *   MEMPOOL_EUNSAFE  room had to be made by spilling and this handle's
 *            spill directory failed its check (README "Security model");
 *   -EIO, or another -errno of the spill directory or file (open, write)
 *            when room had to be made by spilling.
 * Nothing is left behind on failure.
 */
MEMPOOL_API int mempool_put_ex(mempool *p, const void *data, size_t len,
                               const mempool_put_options *o,
                               mempool_dref *out);

/**
 * @brief Reserve @p len bytes for a new object to be written in place.
 *
 * @p *buf points at the object's bytes inside the arena, 64-byte aligned.
 * Write them, then mempool_publish() the DRef. Until then nobody can get the
 * object (-ENOENT). mempool_abort(), mempool_close() or this process's death
 * returns the memory. @return as mempool_put_ex().
 */
MEMPOOL_API int mempool_reserve(mempool *p, size_t len,
                                const mempool_put_options *o, void **buf,
                                mempool_dref *out);

/** @brief Make a reserved object visible and immutable.
 *
 *  A publish that wakes mempool_get_wait() sleepers then yields the CPU
 *  once (sched_yield()), so a sleeper woken onto this CPU runs now rather
 *  than when this thread next blocks. A yield that comes back after more
 *  than 50 us (someone else had the CPU) stops this thread's publish yields
 *  for 4 ms, doubling up to 1 s. A publish nobody waits for never yields.
 *  @return 0; -EINVAL malformed DRef or not reserved by this worker;
 *  -ENOENT stale DRef; -EPERM observer handle; MEMPOOL_EFORKED. */
MEMPOOL_API int mempool_publish(mempool *p, mempool_dref r);

/** @brief Drop an unpublished reservation and free its memory.
 *  @return 0, or as mempool_publish(); MEMPOOL_ECORRUPT (the allocator's
 *  shared state failed validation); -EAGAIN (another worker held the
 *  allocator lock past MEMPOOL_PEER_WAIT_MS: it is stopped; nothing
 *  changed, the reservation is still ours: retry). */
MEMPOOL_API int mempool_abort(mempool *p, mempool_dref r);

/** mempool_view.flags */
#define MEMPOOL_VIEW_MEMORY 0x1u /**< data points into the shared arena */
#define MEMPOOL_VIEW_DISK   0x2u /**< data points into a mapped file */

/** A pinned, read-only window on an object's bytes. */
typedef struct mempool_view {
    const void *data;    /**< the bytes; never NULL after a successful get */
    size_t      len;
    uint32_t    type;
    uint32_t    flags;   /**< MEMPOOL_VIEW_* */
    uint64_t    priv[4]; /**< the pin; do not touch */
} mempool_view;

/**
 * @brief Pin object @p r and point @p v at its bytes, without copying.
 *
 * The bytes stay valid and unchanged until mempool_release(), even if the
 * object is deleted meanwhile. Each get is its own pin. Marks the object
 * most recently used. O(1), no locks.
 * @return 0, or -EINVAL malformed DRef (out of the table, misaligned, wrong
 *   pool) or NULL argument; -ENOENT deleted, never published, or stale (or
 *   its spill file is missing; or the pool was destroyed and the object
 *   was only on disk); -ENOBUFS this worker holds too many
 *   pins and references at once (mempool_options.max_refs); -EAGAIN another worker was evicting the object
 *   and did not finish within MEMPOOL_PEER_WAIT_MS (it is stopped);
 *   nothing was pinned; -EPERM observer handle; MEMPOOL_EFORKED.
 *   For a spilled object also: MEMPOOL_ECORRUPT (the file failed its header
 *   or crc check; so does a damaged entry in the arena), MEMPOOL_EUNSAFE
 *   (this handle's spill directory failed its check), -EIO, -ENOMEM,
 *   -ENAMETOOLONG, or another -errno of open/mmap (-EMFILE, -EACCES, ...).
 */
MEMPOOL_API int mempool_get(mempool *p, mempool_dref r, mempool_view *v);

/** @brief Unpin a view from mempool_get() and clear it. If the object was
 *  deleted and this was its last pin, its memory is freed.
 *  @return 0, or -EINVAL if @p v is not a live pin of this worker (already
 *  released, zeroed, forged), -EPERM (observer handle), MEMPOOL_EFORKED.
 *  Counts never underflow. */
MEMPOOL_API int mempool_release(mempool *p, mempool_view *v);

/** @brief Start loading what gets of the objects @p refs[0..n) will touch
 *  (each one's table entry, then the first line of its bytes), so that the
 *  memory latency of many gets overlaps. A get pins with a locked
 *  instruction that waits for earlier loads, so in a pool larger than the
 *  CPU caches successive random gets cannot overlap their misses by
 *  themselves (mempool-bench --section scale). Call it with the next 8 to
 *  32 DRefs, then get them. A hint: it pins nothing and changes nothing; a
 *  DRef that is not one of this pool's entries is skipped; an object
 *  deleted or spilled meanwhile is reported by its get as usual. Works on
 *  observer handles.
 *  @return 0, -EINVAL (@p p NULL or closed, or @p refs NULL with @p n > 0),
 *  MEMPOOL_EFORKED. */
MEMPOOL_API int mempool_prefetch(mempool *p, const mempool_dref *refs,
                                 size_t n);

/** @brief Delete object @p r: new gets return -ENOENT at once; its memory is
 *  freed when the last pin is released (now, if none). If another worker
 *  holds the pool's allocator lock past MEMPOOL_PEER_WAIT_MS (it is
 *  stopped), the delete still answers 0 after that wait and the memory is
 *  freed by the next process that frees or allocates once the lock is free
 *  (the same for the last release and the last unref).
 *  @return 0, -ENOENT already deleted / stale / unpublished, -EINVAL
 *  malformed, -EAGAIN another worker was evicting the object and did not
 *  finish within MEMPOOL_PEER_WAIT_MS (nothing changed: retry later),
 *  -EPERM observer handle, MEMPOOL_EFORKED. */
MEMPOOL_API int mempool_delete(mempool *p, mempool_dref r);

/** @brief Add one reference to a refcounted object, attributed to this
 *  worker. Never waits for another worker (a refcount check in progress is
 *  made to look again). @return 0, -ENOENT gone, -EINVAL malformed or not
 *  refcounted, -ENOBUFS this worker holds too many distinct pins and
 *  references at once (mempool_options.max_refs; nothing changed), -EPERM observer handle, MEMPOOL_EFORKED. */
MEMPOOL_API int mempool_ref(mempool *p, mempool_dref r);

/** @brief Drop one of this worker's references; the last reference in the
 *  pool deletes the object. References also go when their worker dies,
 *  and when the object is deleted and freed. Never waits for another
 *  worker: if one is checking the object's references (or evicting it),
 *  that worker gives the verdict after its step.
 *  @return 0, -ENOENT gone (also after deletion: the reference went with
 *  the object), -EINVAL this worker holds no reference or the object is
 *  not refcounted, -EPERM observer handle, MEMPOOL_EFORKED. */
MEMPOOL_API int mempool_unref(mempool *p, mempool_dref r);

/** mempool_info.state bits */
#define MEMPOOL_STATE_MEMORY 0x1u /**< bytes are in the arena */
#define MEMPOOL_STATE_DISK   0x2u /**< bytes are in a file */

typedef struct mempool_info {
    uint64_t len;
    int      owner;   /**< charged worker */
    uint32_t type;
    uint32_t state;   /**< MEMPOOL_STATE_* bits */
    uint32_t pins;    /**< pins held by all workers */
    uint32_t refs;    /**< references held by all workers (refcounted) */
} mempool_info;

/** @brief Describe object @p r.
 *  @return 0, -ENOENT, -EINVAL, MEMPOOL_EFORKED. */
MEMPOOL_API int mempool_info_get(mempool *p, mempool_dref r,
                                 mempool_info *out);

/** @brief This worker's share of refcounted object @p r's bytes, for
 *  accounting shared objects once (the Dask integration charges each
 *  holder its share): len x (references this worker holds) / (all
 *  references), rounded so that while the references do not change the
 *  shares of all holders add up to exactly len - workers in id order take
 *  the rounding, and the references the pool itself holds (names, channel
 *  items, references in flight) form a share no worker gets. 0 for a
 *  worker that holds none, and on an observer handle.
 *  @return 0, -ENOENT (gone), -EINVAL (malformed DRef, NULL @p bytes, or
 *  not refcounted), MEMPOOL_EFORKED. */
MEMPOOL_API int mempool_share_get(mempool *p, mempool_dref r,
                                  uint64_t *bytes);

/** Characters mempool_dref_format() needs, NUL included. */
#define MEMPOOL_DREF_STRLEN 34

/** @brief Write @p r as 32 lowercase hex digits plus ':' ("off:gen").
 *  @return the length written (33), or -ENOSPC if @p len is too small,
 *  -EINVAL for NULL. */
MEMPOOL_API int mempool_dref_format(mempool_dref r, char *buf, size_t len);

/** @brief Parse the text form of mempool_dref_format().
 *  @return 0, or -EINVAL if @p s is not exactly that form. */
MEMPOOL_API int mempool_dref_parse(const char *s, mempool_dref *out);

/* ------------------------------------------------------------------------ */
/* Handoff: waiting, names, references in flight, channels                   */
/* ------------------------------------------------------------------------ */
/*
 * Zero-copy handoff between processes with no side channel: a consumer can
 * wait for an object to be published, find it by name, or receive its DRef
 * through a channel; and a refcounted object's reference can travel with
 * it, so the object neither dies in transit nor leaks when nobody takes it.
 *
 * Timeouts are milliseconds: < 0 waits forever, 0 does not wait (a call
 * that would have to wait returns -ETIMEDOUT at once), > 0 waits at most
 * that long and then returns -ETIMEDOUT. Signals do not interrupt a wait
 * (EINTR is retried); every wait ends early with the error its function
 * documents when its object, name or channel goes away. Waiting sleeps on
 * futexes in the shared arena, without a timer of its own when the call
 * has no timeout: the first sleep on a handle starts a small thread of the
 * library (the keeper, signals blocked, stopped by mempool_close()) that
 * wakes get_wait sleepers whose writer died and makes the channel and
 * name_get sleepers look again every 5 s (a sender killed between its
 * send and its wake-up leaves an item nobody else would wake them for).
 * A request/response (a thread that sent or
 * bound a name, now waiting on something else) first watches the word
 * while its peer (the channel's last sender or receiver, the last name
 * binder, the writer) runs on another CPU: at most 10 us (30 us when its
 * send woke that peer; less after spins that went unanswered; one waiter
 * per channel side), never while the peer shares its CPU or sleeps.
 * Streams spin less: a producer blocked on a full channel does not spin; a
 * receive-only consumer of plain objects watches the ring at most 1.5 us
 * while its last sender runs on another CPU, and while that sender runs on
 * the consumer's own CPU it first naps 50 us (a sleep no send wakes: the
 * sender goes on and the consumer then finds a batch, instead of
 * preempting the sender for one item), so an item sent during the nap
 * waits for its end. A call that makes progress (publish, name_put, send,
 * recv) enters the kernel to wake someone only when someone sleeps.
 *
 * References the pool holds for names, channel items and references in
 * flight belong to no worker: they survive the death of any process, and
 * are counted by mempool_info_get().refs. A process killed at any
 * instruction inside one of these calls leaves its operation done or not
 * done, with every reference accounted exactly once (reaped as usual:
 * by the next mempool_open(), mempool_reap(), or a waiter that notices).
 * Thread safety: every function may be called from any thread of a handle;
 * a channel handle may be shared by threads too. Process safety: any
 * number of processes may use the same names and channels. Handles (pool
 * and channel) are per process: in a child created by fork() they answer
 * MEMPOOL_EFORKED.
 */

/**
 * @brief Wait for reserved object @p r to be published, then pin it as
 * mempool_get() does (Plasma's create / seal / get).
 *
 * An object that is already published is returned at once. While it is
 * reserved (mempool_reserve() called, mempool_publish() not yet), the call
 * sleeps until it is published, or until the reservation goes away.
 * A sleep has no timer of its own: the handle's keeper thread (above)
 * looks every 50 ms at the writers of the handle's sleepers and wakes
 * those whose writer died.
 * @param[out] v  the pinned view; release it with mempool_release()
 * @return 0 (published and pinned), or
 *   -ENOENT     never reserved, or the reservation was aborted, its writer
 *               died (the waiter notices within 50 ms and reaps it), the
 *               object was deleted, or the DRef is stale;
 *   -ETIMEDOUT  still reserved after @p timeout_ms (at once when 0);
 *   -EINVAL     malformed DRef or NULL @p v;
 *   -ENOBUFS    this worker holds too many pins;
 *   -EPERM      observer handle; MEMPOOL_EFORKED;
 *   MEMPOOL_ECORRUPT the object's entry says it is reserved by no worker
 *               that can exist (damaged: its writer's death would never
 *               be seen);
 *   or as mempool_get() (MEMPOOL_ECORRUPT for a damaged spill file).
 */
MEMPOOL_API int mempool_get_wait(mempool *p, mempool_dref r, mempool_view *v,
                                 int64_t timeout_ms);

/** mempool_name_put() flags: bind even if the name is bound (the old
 *  binding's reference is dropped). */
#define MEMPOOL_NAME_REPLACE 0x1u
/** Longest name of a name binding or a channel, in bytes. */
#define MEMPOOL_HNAME_MAX 255

/**
 * @brief Bind @p name to object @p r in the pool-wide directory.
 *
 * Names are 1..MEMPOOL_HNAME_MAX bytes, any byte but NUL. A name bound to
 * a REFCOUNTED object holds one reference of its own (the object lives
 * while the name does; the caller keeps its own references); dropping or
 * replacing the name drops it, which deletes the object if it was the
 * last. A name bound to a plain object lasts while the object does: once
 * it is deleted the name reads as unbound. No worker owns a name: names
 * survive their creator. Wakes mempool_name_get() callers waiting for it.
 * @return 0, or
 *   -EEXIST  @p name is bound to a live object and REPLACE was not given;
 *   -ENOENT  @p r is not a live object (deleted, unpublished, stale);
 *   -EINVAL  bad name (empty, longer than 255 bytes, NULL), unknown flag,
 *            malformed DRef;
 *   -ENOSPC  the directory (nnames records: 4096 in a 1 GiB arena, 256 in
 *            small ones) or the pool's item table is full;
 *   -EAGAIN  another process holds the directory lock and did not let go
 *            within MEMPOOL_PEER_WAIT_MS (it is stopped); nothing changed;
 *   -EPERM   observer handle; MEMPOOL_EFORKED; MEMPOOL_ECORRUPT.
 * Process safety: binders of one name are serialised by a directory lock
 * that a dead holder loses at once; a binder stopped (SIGSTOP) while
 * holding it for its few instructions delays other binders and droppers
 * (never readers: get, list, stats) by at most MEMPOOL_PEER_WAIT_MS (or
 * the pool's evict_wait_ms if longer), then they answer -EAGAIN. A
 * stopped holder keeps the lock: it may continue at any moment.
 */
MEMPOOL_API int mempool_name_put(mempool *p, const char *name, mempool_dref r,
                                 unsigned flags);

/**
 * @brief Look up @p name; wait up to @p timeout_ms for it to be bound.
 * Lock-free (no writes) when the name is bound; works on an observer
 * handle then.
 * @param[out] out  the bound DRef (the caller gets no reference: take one
 *                  with mempool_ref() if the object must outlive the name)
 * @return 0, or
 *   -ETIMEDOUT  not bound (or bound to a deleted object) within the
 *               timeout (at once when 0);
 *   -EINVAL     bad name, NULL @p out;
 *   -EPERM      observer handle asked to wait; MEMPOOL_EFORKED.
 */
MEMPOOL_API int mempool_name_get(mempool *p, const char *name,
                                 mempool_dref *out, int64_t timeout_ms);

/** @brief Unbind @p name, dropping the reference it held (which deletes a
 *  refcounted object if it was the last).
 *  @return 0, -ENOENT (not bound, or bound to an object that was deleted:
 *  the stale binding is removed), -EINVAL (bad name), -EAGAIN (the
 *  directory lock's holder is stopped: as mempool_name_put(); nothing
 *  changed), -EPERM (observer), MEMPOOL_EFORKED, MEMPOOL_ECORRUPT. */
MEMPOOL_API int mempool_name_drop(mempool *p, const char *name);

/** @brief Call @p fn for every name bound to a live object, in directory
 *  order, with the name (NUL-terminated, valid during the call) and its
 *  DRef. Names bound or dropped meanwhile may or may not be listed.
 *  @return 0 after the last, the first non-zero value @p fn returned
 *  (which stops the listing), -EINVAL (NULL @p fn), MEMPOOL_EFORKED.
 *  Works on an observer handle. */
MEMPOOL_API int mempool_name_list(mempool *p,
                                  int (*fn)(const char *name, mempool_dref r,
                                            void *arg),
                                  void *arg);

/**
 * @brief Move one of the caller's references of REFCOUNTED object @p r
 * into flight: the caller no longer holds it, no worker does, and the
 * object stays alive until some process takes it (mempool_ref_take()).
 * The giver may close or die right after this returns.
 * @param ttl_ms  drop the reference if nobody takes it within this long
 *                (< 0: never expires); dropping it deletes the object if
 *                it was the last reference. Expired references are
 *                dropped by the next give or take (at most every 10 ms),
 *                the spiller's tick, mempool_reap() or mempool_check().
 * @return 0, or -ENOENT (not a live object), -EINVAL (plain object, the
 *   caller holds no reference, malformed DRef), -ENOSPC (the pool's item
 *   table is full), -EPERM (observer), MEMPOOL_EFORKED.
 */
MEMPOOL_API int mempool_ref_give(mempool *p, mempool_dref r, int64_t ttl_ms);

/** @brief Move one in-flight reference of @p r to the caller (as if it had
 *  called mempool_ref()). @return 0, -ENOENT (none is in flight, or it
 *  expired), -EINVAL (malformed DRef), -ENOBUFS (this worker holds too
 *  many distinct references), -EPERM (observer), MEMPOOL_EFORKED. */
MEMPOOL_API int mempool_ref_take(mempool *p, mempool_dref r);

/** A channel handle: one process's (one thread's or many threads') end of a
 *  named channel. Opaque; per process. */
typedef struct mempool_chan mempool_chan;
/** mempool_chan_open() flags */
#define MEMPOOL_CHAN_CREATE    0x1u /**< create if missing (capacity used only then) */
#define MEMPOOL_CHAN_BROADCAST 0x2u /**< every receiver gets every item sent after it opened */

/**
 * @brief Open channel @p name, creating it with room for @p capacity items
 * if it is missing and CREATE is given.
 *
 * Queue mode (default): a bounded multi-producer multi-consumer FIFO; each
 * item is received exactly once, in send order per producer. Broadcast
 * mode (MEMPOOL_CHAN_BROADCAST, fixed at creation and required to open):
 * each handle is a subscriber reading every item sent after it opened.
 * Channels live until mempool_chan_destroy() (or mempool_destroy() of the
 * pool), whoever created them. At most 64 channels per pool; their
 * capacities share the pool's ring (16384 slots in a 1 GiB arena, 1024 in
 * small ones).
 * @param[out] out  the handle; mempool_chan_close() it
 * @return 0, or
 *   -ENOENT   missing and CREATE not given;
 *   -EINVAL   bad name, unknown flag, NULL @p out, capacity 0 or larger
 *             than the ring when creating, or BROADCAST not matching the
 *             channel's mode;
 *   -ENOSPC   64 channels exist, or no contiguous room in the ring, or
 *             this process has 65535 handles of the broadcast channel;
 *   -EAGAIN   creating: another process holds the channel directory lock
 *             and did not let go within MEMPOOL_PEER_WAIT_MS (or the
 *             pool's evict_wait_ms if longer): it is stopped inside
 *             mempool_chan_open() or mempool_chan_destroy(); nothing
 *             changed. Opening an existing channel takes no lock;
 *   -ENOMEM; -EPERM (observer); MEMPOOL_EFORKED; MEMPOOL_ECORRUPT.
 */
MEMPOOL_API int mempool_chan_open(mempool *p, const char *name,
                                  uint32_t capacity, unsigned flags,
                                  mempool_chan **out);

/**
 * @brief Send @p r. Queue mode: wait while the channel is full. Broadcast:
 * never waits; subscribers that fall a ring behind lose their oldest items.
 *
 * References travel with the item: for a REFCOUNTED object, one of the
 * caller's references moves into the channel (the sender may unref, close
 * or die right after this returns; the object lives), and the receiver
 * gets it. A plain object's DRef travels as is (it may be deleted before
 * it is received; the receiver's get then says -ENOENT).
 * Lock-free: one CAS commits the item; a stopped or killed process never
 * holds a slot. A sender waiting on a full channel is woken when receivers
 * have made room for a batch (a quarter of the capacity, at most 256
 * items; one sender per batch of receives; like a pipe, which wakes its
 * writer a page at a time), and otherwise finds a free slot within 2 ms.
 * @return 0, or
 *   -ETIMEDOUT  still full after @p timeout_ms (at once when 0);
 *   -EPIPE      the channel was destroyed (also while waiting);
 *   -ENOENT     @p r is not a live object;
 *   -EINVAL     NULL handle, malformed DRef, refcounted object of which the
 *               caller holds no reference;
 *   -ENOSPC     the pool's item table is full;
 *   -EPERM (observer), MEMPOOL_EFORKED;
 *   MEMPOOL_ECORRUPT  the channel's ring is damaged (queue mode).
 * On any error the item is not sent and the caller keeps its reference.
 */
MEMPOOL_API int mempool_chan_send(mempool_chan *c, mempool_dref r,
                                  int64_t timeout_ms);

/**
 * @brief Receive the next item into @p out; wait while there is none.
 *
 * For a refcounted object the caller now holds one reference (release it
 * with mempool_unref()); for a plain object it holds nothing. Broadcast:
 * if this subscriber fell more than a ring behind, the call returns
 * -EOVERFLOW once (the lost items are added to the channel's "dropped"
 * figure), and the next call continues with the oldest item still there;
 * a position a sender took but did not write within 20 ms (a stopped or
 * dead sender) is skipped the same way.
 * @return 0, or
 *   -ETIMEDOUT  nothing within @p timeout_ms (at once when 0);
 *   -EPIPE      the channel was destroyed (also while waiting);
 *   -EOVERFLOW  broadcast only: items were lost, see above;
 *   -EINVAL     NULL argument;
 *   -ENOBUFS    this worker holds too many distinct references;
 *   -EPERM (observer), MEMPOOL_EFORKED, MEMPOOL_ECORRUPT.
 */
MEMPOOL_API int mempool_chan_recv(mempool_chan *c, mempool_dref *out,
                                  int64_t timeout_ms);

/** @brief Free the handle (the channel and its items stay). Also frees a
 *  handle inherited by a forked child. @return 0, -EINVAL (NULL). */
MEMPOOL_API int mempool_chan_close(mempool_chan *c);

/** @brief Destroy channel @p name: waiters in send and recv return -EPIPE,
 *  later calls on its handles return -EPIPE, and the references of items
 *  still in it are dropped (deleting objects that had no other).
 *  @return 0, -ENOENT (no such channel), -EINVAL (bad name), -EAGAIN (the
 *  channel directory lock's holder is stopped: as mempool_chan_open();
 *  nothing changed), -EPERM (observer), MEMPOOL_EFORKED, MEMPOOL_ECORRUPT. */
MEMPOOL_API int mempool_chan_destroy(mempool *p, const char *name);

/** One channel's figures (mempool_chan_list()). */
typedef struct mempool_chan_info {
    char     name[MEMPOOL_HNAME_MAX + 1]; /**< NUL-terminated */
    uint32_t flags;              /**< MEMPOOL_CHAN_BROADCAST or 0 */
    uint32_t capacity;           /**< ring slots */
    uint64_t depth;              /**< items in the ring now */
    uint32_t senders_waiting;    /**< sleeping in send now */
    uint32_t receivers_waiting;  /**< sleeping in recv now */
    uint32_t subscribers;        /**< broadcast: open handles, exactly (a
                                      killed process's count until it is
                                      reaped; closed ones never) */
    uint32_t reserved;
    uint64_t sent, received;     /**< totals since creation */
    uint64_t dropped;            /**< broadcast: items subscribers lost */
    uint64_t refs;               /**< references the ring holds now */
} mempool_chan_info;

/** @brief Call @p fn for every channel. @return 0, the first non-zero
 *  value of @p fn, -EINVAL, MEMPOOL_EFORKED. Works on observers. */
MEMPOOL_API int mempool_chan_list(mempool *p,
                                  int (*fn)(const mempool_chan_info *ci,
                                            void *arg),
                                  void *arg);

/* ------------------------------------------------------------------------ */
/* Memory limit, spilling and files                                          */
/* ------------------------------------------------------------------------ */
/*
 * Each worker may have a memory limit (max_memsize): the bytes of objects
 * charged to it that are in the arena. A set that would pass the owner's
 * limit first spills the owner's least recently used unpinned objects
 * (MRU: most recently used) to files "<idx>-<gen>" in the pool's spill
 * directory, <spill_dir>/<pool name>/, an absolute path fixed when the pool
 * is created. A file is complete (written to "*.tmp" and renamed) before the
 * object's memory is freed, so nothing is ever lost. When the arena itself
 * runs short, objects of any worker are spilled the same way, and the
 * pool's elected background spiller (one process at a time, re-elected when
 * it dies) keeps arena usage below a high watermark so sets rarely wait.
 *
 * A get of a spilled object, from any process, maps its file read-only and
 * returns a view into the mapping (MEMPOOL_VIEW_DISK): no copy, no arena
 * memory. The object stays on disk (it is not copied back); the get marks
 * it most recently used. An object whose file exists is "clean": evicting it
 * again frees memory without writing.
 *
 * Files are written by the handle's I/O thread with io_uring, or with
 * pwrite() where io_uring is unavailable (seccomp, kernel.io_uring_disabled,
 * RLIMIT_MEMLOCK) or when MEMPOOL_IO_PWRITE / env MEMPOOL_IO=pwrite asks.
 * Spill files are a cache: not fsynced. save_to_disk() files are durable.
 *
 * Every file has a 4096-byte header (magic "MPSPILL1", version 2, pool
 * uuid, entry, generation, length, type, the crc32c of each 1 MiB chunk of
 * the payload - larger chunks past 1008 MiB - and of the header) followed
 * by the payload, page-aligned. The writer checksums a chunk and writes it
 * at once, the header last. Version 1 files (one crc of the whole payload)
 * are still read. A missing, truncated, foreign or corrupted file makes get
 * return -ENOENT (missing) or MEMPOOL_ECORRUPT, never SIGBUS.
 *
 * What a reader is guaranteed: unless the handle was opened with
 * MEMPOOL_OPEN_NOVERIFY, a handle checks every chunk of a file against its
 * crc when it first maps the file, before the get returns, so a view never
 * shows a byte that was not checked since it was read from the file; one
 * bad chunk makes the get MEMPOOL_ECORRUPT (counted in corrupt_files). The
 * handle keeps the mapping (see mempool_get), and later gets of it are not
 * checked again; it also remembers the last 64 files it checked whole (by
 * inode, size, mtime and ctime), so mapping one again (mempool_get_file()
 * after a release) skips the check unless the file changed since.
 * This costs one extra pass over the object at first map (a
 * fresh process reading a spilled 64 MiB object all through takes 2-3x as
 * long as a plain mmap read: the README's performance section).
 * With MEMPOOL_OPEN_NOVERIFY only the header (which holds every chunk crc)
 * is checked; mempool_check() and `mempool fsck` check every chunk anyway.
 */

/** Where an object's bytes are on disk. */
typedef struct mempool_fileref {
    char     path[4096];   /**< absolute path of the file */
    uint64_t len;          /**< payload bytes */
} mempool_fileref;

/** Limits of mempool_limit_set() / mempool_limit_get(). */
#define MEMPOOL_LIMIT_MEMSIZE  1u /**< bytes of this worker's objects in the
                                       arena (mempool_options.max_memsize) */
#define MEMPOOL_LIMIT_DISKSIZE 2u /**< bytes in spill files of objects it
                                       owns (mempool_options.max_disksize) */

/** @brief Set this worker's limit @p which (MEMPOOL_LIMIT_*) to @p bytes;
 *  0 = none. A memory limit takes effect at the next put (objects are not
 *  spilled just because the limit dropped); a spill that would pass the
 *  disk limit fails with -ENOSPC.
 *  @return 0, -EINVAL (NULL, unknown @p which), -EPERM (observer handle),
 *  MEMPOOL_EFORKED. */
MEMPOOL_API int mempool_limit_set(mempool *p, unsigned which, uint64_t bytes);

/** @brief Read this worker's limit @p which (MEMPOOL_LIMIT_*) into
 *  @p *bytes (0 = none). @return 0, or as mempool_limit_set(). */
MEMPOOL_API int mempool_limit_get(mempool *p, unsigned which, uint64_t *bytes);

/**
 * @brief Write @p r to its spill file (if it has none) and free its memory;
 *  it stops counting against its owner's max_memsize. Idempotent: a second
 *  call, or a call on a spilled object, returns 0 and the same file. If the
 *  object is pinned, the memory is freed at the last release.
 * @param[out] out  the file (may be NULL)
 * @return 0, -ENOENT, -EINVAL, -ENOSPC (disk full or disk limit), -EIO,
 *  -ENOBUFS (this worker's pin table is full), -ENOMEM, -ENAMETOOLONG,
 *  -EAGAIN another worker writing or evicting the object did not finish,
 *  or held the allocator lock, past MEMPOOL_PEER_WAIT_MS (it is stopped),
 *  -EPERM (observer handle),
 *  MEMPOOL_EFORKED, MEMPOOL_ECORRUPT (damaged entry or file),
 *  MEMPOOL_EUNSAFE (this handle's spill directory failed its check: see
 *  the README's "Security model"; counted in mempool_stats.spill_refused),
 *  or another -errno of the spill directory or file (open, write,
 *  rename); on error the object stays in memory, readable and charged.
 */
MEMPOOL_API int mempool_move_to_disk(mempool *p, mempool_dref r,
                                     mempool_fileref *out);

/** @brief Write @p r's spill file and keep it in memory (still charged,
 *  still served from the arena; a later eviction need not write).
 *  Idempotent. @return as mempool_move_to_disk(). */
MEMPOOL_API int mempool_copy_to_disk(mempool *p, mempool_dref r,
                                     mempool_fileref *out);

/** @brief Write @p r durably (write an unnamed O_TMPFILE in @p path's
 *  directory - where the file system lacks it, a temp name unique to this
 *  call - fdatasync, link and rename it over @p path, fsync the directory)
 *  in the file format above; a save killed midway never blocks a later
 *  one. Changes nothing
 *  about the object or its recency; the file is the caller's: delete,
 *  eviction and destroy never touch it.
 *  @return 0, -ENOENT, -EINVAL, -ENOSPC, -EIO, -ENOBUFS (pin table full),
 *  -EAGAIN (another worker evicting the object did not finish within
 *  MEMPOOL_PEER_WAIT_MS), -ENOMEM, -ENAMETOOLONG, -EPERM (observer handle),
 *  MEMPOOL_EFORKED,
 *  MEMPOOL_ECORRUPT (a spilled source failed its checks), or another -errno
 *  of open/write/fdatasync/rename. */
MEMPOOL_API int mempool_save_to_disk(mempool *p, mempool_dref r,
                                     const char *path, mempool_fileref *out);

/** @brief Map a file written by move/copy/save_to_disk read-only and pin it
 *  as a view (MEMPOOL_VIEW_DISK) until mempool_release().
 *  @return 0, -ENOENT, -EINVAL, MEMPOOL_ECORRUPT, -EIO, -ENOMEM,
 *  -EPERM (observer handle), MEMPOOL_EFORKED, or another -errno of
 *  open/mmap. */
MEMPOOL_API int mempool_get_file(mempool *p, const mempool_fileref *f,
                                 mempool_view *v);

/** @brief Wait until every spill this handle queued has completed.
 *  @return 0, -EINVAL (NULL), MEMPOOL_EFORKED. */
MEMPOOL_API int mempool_flush(mempool *p);

/* ------------------------------------------------------------------------ */
/* Codecs: typed objects                                                     */
/* ------------------------------------------------------------------------ */

/*
 * A codec turns a structured value into one run of position-independent
 * bytes and back: the mmwrite/mmread idea. mempool_put_obj() encodes
 * straight into a reservation in the arena (one copy, no temporary buffer);
 * mempool_get_obj() pins the object and decodes a *view*: a struct whose
 * pointers point into the object's bytes (in the arena, or in a mapped spill
 * or saved file), valid until mempool_release() of the view. Nothing is
 * parsed into new memory and nothing is copied.
 *
 * The type id travels with the object (mempool_put_options.type,
 * mempool_view.type, mempool_info.type, and inside the bytes). Built-in
 * types work without registration. A user codec is registered per handle
 * and is needed only by the processes that encode or decode its type; any
 * process can still read the object's bytes with mempool_get().
 *
 * Encoded layout, format version 1
 * --------------------------------
 * The same bytes are the object in the arena, the payload of a spill file
 * and of a save_to_disk file, so a reader in any language that can map them
 * can decode them without mempool. All integers are little-endian. Every
 * offset is a u64 counted from the object's first byte, which is 64-byte
 * aligned wherever mempool puts it. Every section starts at a multiple of 64
 * from the object's start; padding bytes are zero.
 *
 * MEMPOOL_TYPE_BYTES objects have no header: the object is the bytes.
 * Every other object starts with this 64-byte header:
 *
 *    off size  field
 *      0    4  magic 0x4A424F4D (the bytes "MOBJ")
 *      4    2  format version: 1 (a newer one is refused with -ENOTSUP)
 *      6    1  byte order: 1 = little-endian (anything else is corrupt)
 *      7    1  header size in 64-byte units, H >= 1 (1 in version 1)
 *      8    4  type id (MEMPOOL_TYPE_*)
 *     12    4  codec version (0 for built-ins; mempool_codec.version)
 *     16    8  total length L of the object, header included; L <= the
 *              stored length (the rest, if any, is ignored)
 *     24    8  count: elements (ARRAY, STRINGS), rows (TABLE), 0 (user)
 *     32    4  flags, per type (unknown bits are corrupt)
 *     36    4  section count (informative)
 *     40   24  codec fields F0 F1 F2, three u64
 *
 * A section [off, off+len) must satisfy: off % 64 == 0, off >= 64*H,
 * off + len <= L, with no overflow. A reader checks every one.
 *
 * ARRAY (type 1), an n-dimensional array of fixed-size elements
 *   F0 bytes 40..43 dtype (MEMPOOL_DTYPE_*), bytes 44..47 ndim (0..8);
 *   F1 element size in bytes (the dtype's size; any value, 0 included, for
 *   RECORD; 0 for BITS); F2 data offset (0 when the data is empty).
 *   Bytes 64..127: shape, eight u64, unused dimensions 0.
 *   count = product of the shape (1 when ndim is 0), no overflow.
 *   Data: count * element size bytes, or ceil(count / 8) for BITS (element
 *   i is bit i % 8 of byte i / 8, LSB first; trailing bits zero), in a
 *   section at the data offset (>= 128). flags bit 0: column-major.
 *   Writers put the data at 128; L = 128 + data bytes (128 when empty).
 *   dtype: 1 int8, 2 int16, 3 int32, 4 int64, 5 uint8, 6 uint16, 7 uint32,
 *   8 uint64, 9 float32, 10 float64 (IEEE 754), 11 bool (one byte), 12
 *   bits, 13 record.
 *
 * STRINGS (type 2), an array of byte strings, some possibly missing
 *   F0 offsets offset; F1 validity offset (0 = none: all present);
 *   F2 blob offset. flags 0.
 *   Offsets: count + 1 u64; offsets[0] = 0, non-decreasing; element i is
 *   blob bytes [offsets[i], offsets[i+1]); offsets[count] is the blob
 *   length. Strings are exact byte runs, not NUL-terminated (NULs and any
 *   UTF-8 are kept). Validity: ceil(count / 8) bytes, bit i (LSB first)
 *   set = element i present; a missing element has an empty range (and is
 *   not ""), trailing bits zero. Writers put offsets at 64, then validity,
 *   then the blob, each 64-aligned.
 *
 * TABLE (type 3), named columns of equal length
 *   count = rows. F0 column count C; F1 directory offset; F2 = 0. flags 0.
 *   Directory: C entries of four u64: name offset, name length (bytes, not
 *   counting the 0 byte that must follow the name), column offset, column
 *   length. Each column is a complete ARRAY (ndim 1, shape[0] = rows) or
 *   STRINGS (count = rows) object, header included, 64-aligned, whose own
 *   offsets count from the column's first byte. Nesting stops there.
 *   Columns lie in directory order without overlapping (so checking them
 *   all costs one pass over the object). Writers put the directory at 64,
 *   then the names, then the columns.
 *
 * User codecs (type >= MEMPOOL_TYPE_USER): the header with count, flags,
 *   F0..F2 zero and one section, then the codec's own bytes from offset
 *   64*H to L, which mempool_codec.encode wrote and .decode reads.
 */

/** Type ids. 0..0xffff are reserved for built-ins. */
#define MEMPOOL_TYPE_BYTES   0u       /**< plain bytes: mempool_bytes */
#define MEMPOOL_TYPE_ARRAY   1u       /**< n-d array: mempool_array */
#define MEMPOOL_TYPE_STRINGS 2u       /**< string array: mempool_strings */
#define MEMPOOL_TYPE_TABLE   3u       /**< named columns: mempool_table */
#define MEMPOOL_TYPE_USER    0x10000u /**< first id for user codecs */

/** Plain bytes (MEMPOOL_TYPE_BYTES): what mempool_put() stores. */
typedef struct mempool_bytes {
    const void *data;  /**< may be NULL when len is 0 */
    size_t      len;
} mempool_bytes;

/** Element types of MEMPOOL_TYPE_ARRAY. */
enum mempool_dtype {
    MEMPOOL_DTYPE_INT8 = 1, MEMPOOL_DTYPE_INT16, MEMPOOL_DTYPE_INT32,
    MEMPOOL_DTYPE_INT64, MEMPOOL_DTYPE_UINT8, MEMPOOL_DTYPE_UINT16,
    MEMPOOL_DTYPE_UINT32, MEMPOOL_DTYPE_UINT64, MEMPOOL_DTYPE_FLOAT32,
    MEMPOOL_DTYPE_FLOAT64,
    MEMPOOL_DTYPE_BOOL,    /**< one byte per element, 0 or 1 (not checked:
                                read them as uint8_t) */
    MEMPOOL_DTYPE_BITS,    /**< booleans packed 8 per byte, LSB first */
    MEMPOOL_DTYPE_RECORD   /**< fixed records of elem_size bytes */
};

#define MEMPOOL_ARRAY_MAXDIM   8
#define MEMPOOL_ARRAY_COLMAJOR 0x1u  /**< mempool_array.flags */

/** An n-d array (MEMPOOL_TYPE_ARRAY). To encode, fill dtype, ndim, shape,
 *  flags, data (and elem_size for RECORD); decoding fills every field. */
typedef struct mempool_array {
    uint32_t    dtype;      /**< MEMPOOL_DTYPE_* */
    uint32_t    ndim;       /**< 0..MEMPOOL_ARRAY_MAXDIM; 0 is a scalar */
    uint64_t    shape[MEMPOOL_ARRAY_MAXDIM]; /**< the first ndim are used */
    uint64_t    elem_size;  /**< bytes per element: required for RECORD
                                 (0 allowed); 0 or the dtype's size for
                                 the others; 0 for BITS */
    uint32_t    flags;      /**< MEMPOOL_ARRAY_COLMAJOR or 0 */
    uint32_t    reserved;   /**< 0 */
    const void *data;       /**< the elements, 64-byte aligned when decoded;
                                 NULL allowed when nbytes is 0 */
    uint64_t    count;      /**< out: product of the shape */
    uint64_t    nbytes;     /**< out: bytes of data */
} mempool_array;

/**
 * An array of byte strings (MEMPOOL_TYPE_STRINGS). Element i is
 * blob[offsets[i] .. offsets[i+1]) unless it is missing. To encode, point
 * the fields at your own column: offsets[0] may be non-zero (a slice),
 * offsets must not decrease, missing elements need empty ranges. Decoded,
 * offsets[0] is 0 and every pointer is into the object.
 */
typedef struct mempool_strings {
    uint64_t        n;         /**< elements */
    const uint64_t *offsets;   /**< n + 1 offsets into blob */
    const uint8_t  *blob;      /**< the bytes of all elements */
    const uint8_t  *validity;  /**< bit i (LSB first) set = element i
                                    present; NULL = all present */
} mempool_strings;

/** True if element @p i (< s->n) is missing (which is not ""). */
static inline bool mempool_strings_missing(const mempool_strings *s,
                                           uint64_t i)
{
    return s->validity && !((s->validity[i >> 3] >> (i & 7)) & 1u);
}

/** Element @p i (< s->n): its bytes, and its length in @p *len. NULL (and
 *  length 0) when it is missing; never NULL for a present "" after a
 *  decode. Not NUL-terminated. */
static inline const uint8_t *mempool_strings_at(const mempool_strings *s,
                                                uint64_t i, uint64_t *len)
{
    if (mempool_strings_missing(s, i)) {
        *len = 0;
        return NULL;
    }
    *len = s->offsets[i + 1] - s->offsets[i];
    return s->blob + s->offsets[i];
}

/* C11 anonymous union; __extension__ keeps -std=c99 -pedantic users quiet. */
#if defined(__GNUC__) && !defined(__cplusplus)
#define MEMPOOL_ANON_UNION __extension__
#else
#define MEMPOOL_ANON_UNION
#endif

/** One column of a table. */
typedef struct mempool_column {
    const char *name;      /**< encode: a C string; decoded: points into the
                                object, NUL-terminated */
    uint64_t    name_len;  /**< out: bytes before the NUL */
    uint32_t    type;      /**< MEMPOOL_TYPE_ARRAY (ndim 1) or _STRINGS */
    uint32_t    reserved;  /**< 0 */
    MEMPOOL_ANON_UNION union {
        mempool_array   array;    /**< when type is MEMPOOL_TYPE_ARRAY */
        mempool_strings strings;  /**< when type is MEMPOOL_TYPE_STRINGS */
    };
} mempool_column;

/**
 * A table (MEMPOOL_TYPE_TABLE): @c ncols named columns of @c nrows rows
 * each. To encode, set nrows, ncols and cols (an ARRAY column is 1-d with
 * shape[0] == nrows; a STRINGS column has n == nrows). Decoding sets cols to
 * NULL and obj/obj_len to the object: read columns with
 * mempool_table_column() or mempool_table_find(). A decoded table can be
 * encoded again as it is (a copy).
 */
typedef struct mempool_table {
    uint64_t              nrows;
    uint64_t              ncols;
    const mempool_column *cols;     /**< encode: ncols columns */
    const void           *obj;      /**< decoded: the object's bytes */
    size_t                obj_len;  /**< decoded: their length */
} mempool_table;

/** @brief Column @p i of a decoded (or to-be-encoded) table, as a view into
 *  the object. O(1): the checks of every offset ran in the decode.
 *  @return 0, -EINVAL (NULL, @p i >= ncols), MEMPOOL_ECORRUPT, and for a
 *  table that was not decoded, the column's own checks: -ENOTSUP (newer
 *  format), -E2BIG (sizes overflow). */
MEMPOOL_API int mempool_table_column(const mempool_table *t, uint64_t i,
                                     mempool_column *out);

/** @brief The first column named @p name (compared as a C string).
 *  @return 0, -ENOENT (no such column), or as mempool_table_column(). */
MEMPOOL_API int mempool_table_find(const mempool_table *t, const char *name,
                                   mempool_column *out);

/**
 * A user codec. @c size says how many bytes @c encode will write for @p obj;
 * @c encode writes exactly @p len bytes (padding included: the memory holds
 * old bytes) at @p dst, 64-byte aligned, with no pointers, only offsets from
 * @p dst; @c decode fills @p obj with a view into @p src (@p len bytes,
 * 64-byte aligned) and must check every offset and length against @p len.
 * Each returns 0 or a negative error, which the call that ran it returns.
 * The library writes and checks the 64-byte header around these bytes.
 */
typedef struct mempool_codec {
    uint32_t    type;        /**< >= MEMPOOL_TYPE_USER */
    const char *name;        /**< copied at registration */
    int (*size)(const void *obj, size_t *len);
    int (*encode)(const void *obj, void *dst, size_t len);
    int (*decode)(const void *src, size_t len, void *obj);
    uint32_t    version;     /**< stored in each object; an object with a
                                  higher version is refused (-ENOTSUP) */
} mempool_codec;

/**
 * @brief Register codec @p c with handle @p p (a copy; @p c may go away).
 * Thread-safe. A codec stays registered until the handle is closed.
 * @return 0, or -EINVAL (NULL field, type below MEMPOOL_TYPE_USER),
 *   -EEXIST (type already registered with this handle), -ENOMEM,
 *   MEMPOOL_EFORKED.
 */
MEMPOOL_API int mempool_register_codec(mempool *p, const mempool_codec *c);

/**
 * @brief Encode @p obj as a new object of type @p type, straight into the
 * arena: reserve the size, encode in place, publish.
 * @param[in]  type  MEMPOOL_TYPE_* or a registered user type
 * @param[in]  obj   a mempool_bytes, mempool_array, mempool_strings,
 *                   mempool_table, or the user codec's struct
 * @param[in]  o     owner and flags; @c o->type must be 0 or @p type; NULL
 *                   for defaults
 * @return 0, or -EINVAL (NULL argument, malformed @p obj: unknown dtype,
 *   more than 8 dimensions, decreasing offsets, unequal column lengths, ...;
 *   a reserved type id that is not built in), -ENOTSUP (user type not
 *   registered with @p p), -E2BIG (size overflows or exceeds the arena),
 *   the user encoder's error, or as mempool_reserve(). Nothing is left
 *   behind on failure.
 */
MEMPOOL_API int mempool_put_obj(mempool *p, uint32_t type, const void *obj,
                                const mempool_put_options *o,
                                mempool_dref *out);

/**
 * @brief Pin object @p r and decode it as @p type into @p obj, a view into
 * the object's bytes (arena or mapped file; no copy). The pointers in
 * @p obj are valid until mempool_release(p, v).
 * @param[out] obj  the struct for @p type (see mempool_put_obj())
 * @param[out] v    the pin; release it when done with @p obj
 * @return 0, or as mempool_get(); -EINVAL (NULL argument, or the object's
 *   type is not @p type); -ENOTSUP (user type not registered with @p p, or
 *   the object was written by a newer format or codec version);
 *   MEMPOOL_ECORRUPT (the bytes failed validation); -E2BIG (sizes
 *   overflow); the user decoder's error. On failure nothing stays pinned
 *   and @p v is cleared.
 */
MEMPOOL_API int mempool_get_obj(mempool *p, mempool_dref r, uint32_t type,
                                void *obj, mempool_view *v);

/**
 * @brief Decode @p len bytes at @p src (64-byte aligned) as @p type into
 * @p obj: for bytes pinned some other way, such as a view from
 * mempool_get() or mempool_get_file() (decode v.data, v.len as v.type), or
 * a file mapped by hand at its 4096-byte payload offset. The pointers in
 * @p obj point into @p src. @p p may be NULL for built-in types.
 * @return 0, -EINVAL (NULL argument, @p src not 64-byte aligned),
 *   -ENOTSUP (newer format or codec version, user type not registered),
 *   -E2BIG (sizes overflow), MEMPOOL_ECORRUPT (the bytes failed
 *   validation), or the user decoder's error.
 */
MEMPOOL_API int mempool_decode(mempool *p, uint32_t type, const void *src,
                               size_t len, void *obj);

/* ------------------------------------------------------------------------ */
/* Arena maintenance and figures                                             */
/* ------------------------------------------------------------------------ */

/** Pool-wide figures (a first cut; the observability layer extends it). */
struct mempool_stats {
    uint32_t size;            /**< sizeof(struct mempool_stats) */
    uint32_t version;         /**< 1 */
    uint64_t arena_bytes;     /**< size of the shm object */
    uint64_t data_bytes;      /**< of which usable for objects */
    uint64_t used_bytes;      /**< allocated to objects, rounding included */
    uint64_t free_bytes;      /**< data_bytes - used_bytes (blocks in
                                   workers' allocator caches count as
                                   free) */
    uint64_t objects;         /**< table entries in use (any state) */
    uint64_t max_objects;     /**< table capacity */
    uint64_t resident_bytes;  /**< sum of lengths of objects in memory */
    uint32_t workers;         /**< workers attached now */
    uint32_t max_workers;
    uint64_t disk_bytes;      /**< bytes in spill files of live objects */
    uint64_t spills;          /**< files written since creation */
    uint64_t spill_bytes;
    uint64_t restores;        /**< gets served from a file */
    uint64_t spill_errors;    /**< failed file writes */
    int32_t  spiller;         /**< worker id of the elected spiller, 0 none */
    char     io_backend[12];  /**< this handle's: "io_uring", "pwrite", or
                                   "" before its first write */
    /* The observability layer's figures (README "Stats schema" gives the
     * JSON twin of each). Totals are since the pool was created. */
    char     name[MEMPOOL_NAME_MAX + 1]; /**< the pool's name */
    uint64_t uuid[2];         /**< random at creation */
    uint64_t created_ns;      /**< CLOCK_REALTIME at creation, ns */
    uint32_t policy;          /**< MEMPOOL_POLICY_* */
    uint32_t spiller_alive;   /**< 1 if worker @c spiller is alive */
    uint64_t largest_free_bytes; /**< longest run of free data pages */
    uint64_t mem_objects;     /**< objects whose bytes are in the arena */
    uint64_t disk_objects;    /**< objects with a complete spill file */
    uint64_t disk_only_objects; /**< of those, not in the arena (spilled) */
    uint64_t reserved_objects;/**< reserved, not yet published (in flight) */
    uint64_t deleted_objects; /**< deleted, memory held by a pin */
    uint64_t pins;            /**< pins held, all workers */
    uint64_t pinned_objects;  /**< distinct objects pinned by any worker */
    uint64_t pinned_bytes;    /**< their bytes */
    char     spill_dir[1024]; /**< absolute: <spill_dir>/<name> */
    uint64_t fs_free_bytes;   /**< statvfs of the spill directory (or its
                                   nearest existing parent): available */
    uint64_t fs_total_bytes;  /**< ... and total */
    uint32_t workers_alive;   /**< of @c workers, alive */
    uint32_t workers_dead;    /**< of @c workers, dead, not yet reaped */
    uint64_t sets, gets, deletes, releases;  /**< totals */
    uint64_t spill_ns;        /**< time spent writing spill files */
    uint64_t restore_bytes;   /**< bytes of gets served from files */
    uint64_t destroys;        /**< DESTROY_ON_EVICT objects dropped */
    uint64_t set_errors;      /**< sets that failed for lack of room */
    uint64_t corrupt_files;   /**< spill files gets found corrupt */
    uint64_t reaped_workers;  /**< dead workers reaped */
    uint64_t recovered_pins;  /**< pins dropped for workers that died (or
                                   closed) without releasing them */
    uint64_t rebuilds;        /**< allocator rebuilds after a lock holder
                                   died */
    char     pool_io_backend[12]; /**< the pool's: this handle's, else the
                                   spiller's, else any attached worker's;
                                   "" while none has written a file */
    uint64_t refs, unrefs;    /**< totals of mempool_ref(), mempool_unref() */
    /* Handoff (names, references in flight, channels). */
    uint64_t names;           /**< names bound to a live object */
    uint64_t names_capacity;  /**< name directory records */
    uint64_t flight_refs;     /**< references in flight now */
    uint64_t flight_given, flight_taken, flight_expired; /**< totals */
    uint64_t channels;        /**< channels that exist */
    uint64_t items_used;      /**< pool-held items (bindings, channel items,
                                   references in flight) */
    uint64_t items_capacity;  /**< their table's size */
    uint64_t orphans_freed;   /**< items left by dead workers and freed */
    uint64_t get_waits;       /**< mempool_get_wait() calls that slept */
    uint64_t spill_refused;   /**< objects not spilled because a worker's
                                   spill directory failed its check
                                   (MEMPOOL_EUNSAFE) or could not be
                                   opened; they stayed in memory */
    uint64_t max_refs;        /**< pins and references one worker can hold
                                   (the creator's mempool_options.max_refs,
                                   rounded) */
};

/**
 * @brief Read pool figures without disturbing the workers: no pins, and no
 * lock a worker could wait on but one. A worker's handle first hands back
 * the small objects other workers deleted that wait in deleters' stashes
 * (at most 64 per deleting worker), so every delete that returned is
 * counted: each owner's cache lock is tried once, then the allocator lock
 * (tried once for other workers' stashes - a stopped holder leaves those
 * objects counted a while longer - and for the handle's own stash taken as
 * for a free, see MEMPOOL_PEER_WAIT_MS). An observer handle skips that
 * (its figures may still count those objects). Each value is read on its
 * own and may be a moment apart from the others (mempool_check() gives the
 * consistent, locked view). Scans the table up to its high-water mark, the
 * pin tables of attached workers and the free-page bitmap: milliseconds on
 * a large pool, so call it about once a second, not per operation. Works
 * on an observer handle (MEMPOOL_OPEN_OBSERVE).
 * @return 0, -EINVAL (NULL), -ENOMEM (for the table of pinned objects),
 * MEMPOOL_EFORKED.
 */
MEMPOOL_API int mempool_stats_get(mempool *p, struct mempool_stats *s);

/** mempool_worker_stats.state */
#define MEMPOOL_WORKER_FREE  0u /**< slot never used since creation */
#define MEMPOOL_WORKER_ALIVE 1u /**< attached and alive */
#define MEMPOOL_WORKER_DEAD  2u /**< died; not reaped yet (its pins and
                                     reservations still hold memory) */
#define MEMPOOL_WORKER_GONE  3u /**< closed or reaped; figures are its last */

/** One worker's figures. Event counters (sets .. corrupt_files) count since
 *  the worker attached; resident, disk and objects are what is charged to
 *  its id (objects outlive their owner and stay charged to its id). */
struct mempool_worker_stats {
    uint32_t size;            /**< sizeof(struct mempool_worker_stats) */
    uint32_t version;         /**< 1 */
    int32_t  id;              /**< 1..MEMPOOL_MAX_WORKERS */
    int32_t  pid;             /**< recorded at attach; display only */
    uint32_t state;           /**< MEMPOOL_WORKER_* */
    uint32_t spiller;         /**< 1 if it is the elected spiller */
    uint64_t attached_ns;     /**< CLOCK_MONOTONIC at attach */
    uint64_t resident_bytes;  /**< bytes of its objects in the arena */
    uint64_t max_memsize;     /**< its limit; 0 = none */
    uint64_t disk_bytes;      /**< bytes of its objects' spill files */
    uint64_t max_disksize;    /**< 0 = none */
    uint64_t objects;         /**< objects charged to it */
    uint64_t pins;            /**< pins it holds */
    uint64_t pinned_objects;  /**< distinct objects it pins */
    uint64_t pinned_bytes;    /**< their bytes */
    uint64_t references;      /**< references it holds (refcounted) */
    uint64_t sets, gets, deletes, releases, refs, unrefs;
    uint64_t spills;          /**< spill files it wrote */
    uint64_t spill_bytes, spill_ns;
    uint64_t restores;        /**< its gets served from a file */
    uint64_t restore_bytes;
    uint64_t destroys;        /**< DESTROY_ON_EVICT victims it dropped */
    uint64_t errors;          /**< set_errors + spill_errors + corrupt_files */
    uint64_t set_errors;      /**< its sets that failed for lack of room */
    uint64_t spill_errors;    /**< its failed file writes */
    uint64_t corrupt_files;   /**< corrupt files its gets met */
    char     io_backend[12];  /**< its engine, or "" */
    uint64_t spill_refused;   /**< objects it did not spill: its spill
                                   directory failed its check */
};

/** @brief Figures of worker @p worker (1..MEMPOOL_MAX_WORKERS), read as
 *  mempool_stats_get() reads (the same hand-back of stashed deletes first,
 *  then no locks, no pins; liveness by F_OFD_GETLK).
 *  A FREE slot gives zeros with state MEMPOOL_WORKER_FREE.
 *  @return 0, -EINVAL (NULL, @p worker out of range), -ENOMEM,
 *  MEMPOOL_EFORKED. */
MEMPOOL_API int mempool_worker_stats_get(mempool *p, int worker,
                                         struct mempool_worker_stats *out);

/** Version of the document mempool_stats_json() writes ("schema"); 2 gave
 *  each counter one name everywhere (README "Stats schema" lists the
 *  renames from 1); 3 added "handoff" and "channels". */
#define MEMPOOL_STATS_SCHEMA 3

/**
 * @brief The figures of mempool_stats_get() and of every non-FREE worker's
 * mempool_worker_stats_get() as one JSON document on one line, with a
 * "schema" version (MEMPOOL_STATS_SCHEMA); README "Stats schema" documents
 * every field. Integers are exact (up to 2^64-1).
 * @param[out] out  a NUL-terminated string; the caller free()s it
 * @return the document's length in bytes, or -EINVAL, -ENOMEM,
 *   MEMPOOL_EFORKED.
 */
MEMPOOL_API int mempool_stats_json(mempool *p, char **out);

/** @brief Check the pool's invariants: every data byte free or owned by one
 *  table entry, allocator state agrees with the table, counters agree with
 *  the objects, no dead worker holds anything, no pin or reference cell
 *  names a freed object, and every object's spill file (its only copy, or
 *  a clean copy) exists and passes its checks, payload checksum included
 *  (files this caller may not read are skipped). Writes a one-line reason
 *  to @p why (may be NULL). Briefly holds the allocator lock and every
 *  worker's allocator cache lock; reads every spill file. Safe on a live
 *  pool: what workers are doing meanwhile is not reported.
 *  @return 0 healthy, MEMPOOL_ECORRUPT with a reason, -EINVAL (NULL),
 *  -EACCES (a read-only observer cannot take the allocator lock), -ENOMEM,
 *  -EAGAIN (a worker held the allocator lock or its allocator cache's lock
 *  for more than MEMPOOL_PEER_WAIT_MS: it is stopped; the pool was not
 *  checked, @p why names the cache's worker; retry later),
 *  MEMPOOL_EFORKED. */
MEMPOOL_API int mempool_check(mempool *p, char *why, size_t whylen);

/** @brief Repair what mempool_check() finds and a worker can fix: reap dead
 *  workers, drop every object whose only copy - its spill file - is
 *  missing or damaged (its bytes are lost; its DRefs answer -ENOENT from
 *  then on), and forget damaged clean copies of objects still in memory (a
 *  later eviction writes a new file). Counts go to @p dropped and
 *  @p forgotten (either may be NULL).
 *  @return 0, -EPERM on an observer handle, MEMPOOL_EFORKED, -EINVAL,
 *  MEMPOOL_ECORRUPT (the allocator's shared state failed validation). */
MEMPOOL_API int mempool_repair(mempool *p, uint64_t *dropped,
                               uint64_t *forgotten);

/** @brief Return the memory of free data pages to the kernel
 *  (fallocate PUNCH_HOLE). Freed pages are otherwise kept for reuse. The
 *  free entries and blocks the caller's allocator cache keeps, and those of
 *  dead workers not yet reaped, are given back first (other live workers
 *  keep theirs).
 *  @return bytes returned (0 or more), -EINVAL (NULL), -EPERM (observer
 *  handle), MEMPOOL_EFORKED, MEMPOOL_ECORRUPT (the allocator's shared
 *  state failed validation), -EAGAIN (another worker held the allocator
 *  lock past MEMPOOL_PEER_WAIT_MS: it is stopped; nothing returned), or
 *  the -errno of fallocate. */
MEMPOOL_API int64_t mempool_trim(mempool *p);

/* ------------------------------------------------------------------------ */
/* Deprecated names (0.1.0), removed in the release after next               */
/* ------------------------------------------------------------------------ */
/*
 * The API names were made consistent: object operations are verbs on the
 * pool (mempool_put, mempool_get, mempool_delete), families are
 * mempool_<noun>_<verb> (mempool_limit_set, mempool_stats_get). The old
 * names still compile (with a deprecation warning) and programs built
 * against them still link: the library exports them as before.
 */
#define MEMPOOL_SET_REFCOUNTED       MEMPOOL_PUT_REFCOUNTED
#define MEMPOOL_SET_DESTROY_ON_EVICT MEMPOOL_PUT_DESTROY_ON_EVICT
typedef mempool_put_options mempool_set_options
    MEMPOOL_DEPRECATED("use mempool_put_options");

/** @brief Deprecated name of mempool_put(). @return as mempool_put(). */
MEMPOOL_API int mempool_set(mempool *p, const void *data, size_t len,
                            mempool_dref *out)
    MEMPOOL_DEPRECATED("use mempool_put");
/** @brief Deprecated name of mempool_put_ex(). @return as mempool_put_ex(). */
MEMPOOL_API int mempool_set_ex(mempool *p, const void *data, size_t len,
                               const mempool_put_options *o,
                               mempool_dref *out)
    MEMPOOL_DEPRECATED("use mempool_put_ex");
/** @brief Deprecated name of mempool_put_obj().
 *  @return as mempool_put_obj(). */
MEMPOOL_API int mempool_set_obj(mempool *p, uint32_t type, const void *obj,
                                const mempool_put_options *o,
                                mempool_dref *out)
    MEMPOOL_DEPRECATED("use mempool_put_obj");
/** @brief Deprecated: mempool_limit_set(p, MEMPOOL_LIMIT_MEMSIZE, bytes).
 *  @return as mempool_limit_set(). */
MEMPOOL_API int mempool_set_max_memsize(mempool *p, uint64_t bytes)
    MEMPOOL_DEPRECATED("use mempool_limit_set(p, MEMPOOL_LIMIT_MEMSIZE, n)");
/** @brief Deprecated: mempool_limit_set(p, MEMPOOL_LIMIT_DISKSIZE, bytes).
 *  @return as mempool_limit_set(). */
MEMPOOL_API int mempool_set_max_disksize(mempool *p, uint64_t bytes)
    MEMPOOL_DEPRECATED("use mempool_limit_set(p, MEMPOOL_LIMIT_DISKSIZE, n)");
/** @brief Deprecated name of mempool_stats_get().
 *  @return as mempool_stats_get(). */
MEMPOOL_API int mempool_stats(mempool *p, struct mempool_stats *s)
    MEMPOOL_DEPRECATED("use mempool_stats_get");
/** @brief Deprecated name of mempool_worker_stats_get().
 *  @return as mempool_worker_stats_get(). */
MEMPOOL_API int mempool_worker_stats(mempool *p, int worker,
                                     struct mempool_worker_stats *out)
    MEMPOOL_DEPRECATED("use mempool_worker_stats_get");

#ifdef __cplusplus
}
#endif
#endif /* MEMPOOL_H */
