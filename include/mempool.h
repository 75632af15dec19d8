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
 *   mempool_set(p, buf, len, &r);              // copy bytes in, get a DRef
 *   // ... send r (16 plain bytes) to another process by any channel ...
 *   mempool_view v;
 *   mempool_get(p, r, &v);                     // zero-copy pointer, pinned
 *   use(v.data, v.len);
 *   mempool_release(p, &v);                    // unpin
 *   mempool_delete(p, r);
 *   mempool_close(p);
 *
 * Conventions
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

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define MEMPOOL_API __attribute__((visibility("default")))
#else
#define MEMPOOL_API
#endif

#define MEMPOOL_VERSION_MAJOR 0
#define MEMPOOL_VERSION_MINOR 1
#define MEMPOOL_VERSION_PATCH 0

/** @brief The library's version as "MAJOR.MINOR.PATCH". */
MEMPOOL_API const char *mempool_version(void);

/* ------------------------------------------------------------------------ */
/* Errors                                                                    */
/* ------------------------------------------------------------------------ */

/** Library-specific error codes. All are below -4095 so that no value is
 *  ambiguous with a -errno. */
#define MEMPOOL_EFORMAT  (-4201) /**< shm object has another layout or version */
#define MEMPOOL_ECORRUPT (-4202) /**< shared state or a file failed validation */
#define MEMPOOL_EFORKED  (-4203) /**< handle used in a child after fork() */
#define MEMPOOL_ENOTREADY (-4204) /**< pool creator died before it was ready */

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

/** Default arena size when creating: 1 GiB. */
#define MEMPOOL_DEFAULT_ARENA_BYTES (1ull << 30)
/** Most workers (attached handles) a pool serves at once. */
#define MEMPOOL_MAX_WORKERS 64
/** Longest pool name, not counting the terminating NUL. */
#define MEMPOOL_NAME_MAX 200

typedef struct mempool_options {
    uint64_t    arena_bytes;  /**< shared memory to reserve when creating;
                                   default MEMPOOL_DEFAULT_ARENA_BYTES, at
                                   least 1 MiB; ignored when attaching */
    uint64_t    max_memsize;  /**< this worker's resident limit; 0 = none
                                   (enforced by the spilling layer) */
    const char *spill_dir;    /**< default ".mempool" */
    uint32_t    mode;         /**< permission bits of the shm object, 0600 */
    uint32_t    flags;        /**< MEMPOOL_OPEN_* ; default CREATE */
    uint64_t    max_objects;  /**< object table capacity when creating;
                                   0 = arena_bytes / 4096, at least 1024 */
} mempool_options;

/** @brief Fill @p o with the defaults: 1 GiB arena, no limit, ".mempool",
 *  mode 0600, MEMPOOL_OPEN_CREATE. */
MEMPOOL_API void mempool_options_init(mempool_options *o);

/**
 * @brief Open pool @p name, creating it when allowed, and claim a worker slot.
 *
 * The pool lives in the shm object "/dev/shm/mempool.<name>". Creation is
 * race-free: the arena is built under a private name and linked into place
 * only when its header is complete, so no process ever sees a half-built
 * pool; of many racing creators exactly one wins and the others attach. The
 * whole arena is reserved with posix_fallocate() before the pool is marked
 * ready, so a /dev/shm that is too small fails here, never with SIGBUS later.
 * Opening also reaps any dead worker it finds.
 *
 * @param[in]  name  1..MEMPOOL_NAME_MAX characters from [A-Za-z0-9._-],
 *                   not starting with '.'
 * @param[in]  o     options, or NULL for mempool_options_init()'s defaults
 * @param[out] out   the new handle
 * @return 0, or
 *   -EINVAL   bad name or option;
 *   -ENOENT   the pool does not exist and CREATE was not given;
 *   -EEXIST   CREATE|EXCL and the pool exists;
 *   -ENOSPC   /dev/shm cannot hold the arena (in a container, raise
 *             --shm-size);
 *   -EACCES   the shm object's permissions do not allow it;
 *   -EUSERS   all MEMPOOL_MAX_WORKERS slots are held by live workers;
 *   MEMPOOL_EFORMAT  the object was made by an incompatible build;
 *   MEMPOOL_ECORRUPT bad magic, size not matching the header, bad layout;
 *   MEMPOOL_ENOTREADY the creator died before finishing and the pool could
 *             not be completed;
 *   -ENOMEM, or another -errno from the system.
 */
MEMPOOL_API int mempool_open(const char *name, const mempool_options *o,
                             mempool **out);

/** @brief Release this worker's pins, references and reservations, give up
 *  its slot, unmap and free the handle. Objects stay. In a forked child it
 *  only frees the child's memory. @return 0, or -EINVAL for NULL. */
MEMPOOL_API int mempool_close(mempool *p);

/** @brief Remove pool @p name: its shm object (and spill directory). Attached
 *  processes keep working on their mapping until they close.
 *  @return 0, -ENOENT if there is no such pool, -EINVAL for a bad name. */
MEMPOOL_API int mempool_destroy(const char *name);

/** @brief This worker's number, 1..MEMPOOL_MAX_WORKERS; stable while the
 *  handle is open. @return the id, or -EINVAL / MEMPOOL_EFORKED. */
MEMPOOL_API int mempool_worker_id(const mempool *p);

/** @brief Reap every dead worker now: drop its pins and references, free its
 *  unpublished reservations, finish or undo what it was doing.
 *  @return the number of workers reaped, or a negative error. */
MEMPOOL_API int mempool_reap(mempool *p);

/* ------------------------------------------------------------------------ */
/* Objects                                                                   */
/* ------------------------------------------------------------------------ */

/**
 * A reference to an object: 16 plain bytes that any process attached to the
 * same pool can use. @c off is the arena offset of the object's table entry;
 * @c gen is the entry's generation (low 32 bits) and a tag of the pool
 * (high 32 bits), so a DRef from a deleted object, a reused slot or another
 * pool is recognised. Copy it freely; it carries no reference count.
 */
typedef struct mempool_dref { uint64_t off, gen; } mempool_dref;

/** mempool_set_options.flags */
#define MEMPOOL_SET_REFCOUNTED      0x1u /**< deleted at the last unref */
#define MEMPOOL_SET_DESTROY_ON_EVICT 0x2u /**< dropped, not spilled, on eviction */

typedef struct mempool_set_options {
    int      owner;  /**< worker charged for the object; 0 = the caller */
    uint32_t type;   /**< codec type id; 0 = plain bytes */
    uint32_t flags;  /**< MEMPOOL_SET_* */
} mempool_set_options;

/** @brief Copy @p len bytes (0 allowed) into the pool as a new immutable
 *  object owned by the caller. Same as mempool_set_ex() with NULL options. */
MEMPOOL_API int mempool_set(mempool *p, const void *data, size_t len,
                            mempool_dref *out);

/**
 * @brief Copy @p len bytes into the pool as a new immutable object.
 * @param[in]  o    owner, type, flags; NULL for defaults
 * @param[out] out  the object's DRef
 * @return 0, or
 *   -EINVAL  NULL argument (data may be NULL when len is 0), unknown flag;
 *   -ESRCH   @c o->owner is not an attached worker;
 *   -ENOMEM  the arena has no room (after reaping dead workers);
 *   -ENOSPC  the object table is full, or /dev/shm could not back memory
 *            returned earlier by mempool_trim();
 *   -E2BIG   @p len is larger than the arena.
 * Nothing is left behind on failure.
 */
MEMPOOL_API int mempool_set_ex(mempool *p, const void *data, size_t len,
                               const mempool_set_options *o,
                               mempool_dref *out);

/**
 * @brief Reserve @p len bytes for a new object to be written in place.
 *
 * @p *buf points at the object's bytes inside the arena, 64-byte aligned.
 * Write them, then mempool_publish() the DRef. Until then nobody can get the
 * object (-ENOENT). mempool_abort(), mempool_close() or this process's death
 * returns the memory. Errors as mempool_set_ex().
 */
MEMPOOL_API int mempool_reserve(mempool *p, size_t len,
                                const mempool_set_options *o, void **buf,
                                mempool_dref *out);

/** @brief Make a reserved object visible and immutable.
 *  @return 0; -EINVAL malformed DRef or not reserved by this worker;
 *  -ENOENT stale DRef. */
MEMPOOL_API int mempool_publish(mempool *p, mempool_dref r);

/** @brief Drop an unpublished reservation and free its memory.
 *  @return 0, or as mempool_publish(). */
MEMPOOL_API int mempool_abort(mempool *p, mempool_dref r);

/** mempool_view.flags */
#define MEMPOOL_VIEW_MEMORY 0x1u /**< data points into the shared arena */
#define MEMPOOL_VIEW_DISK   0x2u /**< data points into a mapped file */

/** A pinned, read-only window on an object's bytes. */
typedef struct mempool_view {
    const void *data;    /**< the bytes; never NULL after a successful get */
    uint64_t    len;
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
 *   pool) or NULL argument; -ENOENT deleted, never published, or stale;
 *   -ENOBUFS this worker holds too many distinct pins at once.
 */
MEMPOOL_API int mempool_get(mempool *p, mempool_dref r, mempool_view *v);

/** @brief Unpin a view from mempool_get() and clear it. If the object was
 *  deleted and this was its last pin, its memory is freed.
 *  @return 0, or -EINVAL if @p v is not a live pin of this worker (already
 *  released, zeroed, forged). Counts never underflow. */
MEMPOOL_API int mempool_release(mempool *p, mempool_view *v);

/** @brief Delete object @p r: new gets return -ENOENT at once; its memory is
 *  freed when the last pin is released (now, if none).
 *  @return 0, -ENOENT already deleted / stale / unpublished, -EINVAL
 *  malformed. */
MEMPOOL_API int mempool_delete(mempool *p, mempool_dref r);

/** @brief Add one reference to a refcounted object, attributed to this
 *  worker. @return 0, -ENOENT gone, -EINVAL malformed or not refcounted. */
MEMPOOL_API int mempool_ref(mempool *p, mempool_dref r);

/** @brief Drop one of this worker's references; the last reference in the
 *  pool deletes the object. References also go when their worker dies.
 *  @return 0, -ENOENT gone, -EINVAL this worker holds no reference or the
 *  object is not refcounted. */
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

/** @brief Describe object @p r. @return 0, -ENOENT, -EINVAL. */
MEMPOOL_API int mempool_info_get(mempool *p, mempool_dref r,
                                 mempool_info *out);

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
/* Arena maintenance and figures                                             */
/* ------------------------------------------------------------------------ */

/** Pool-wide figures (a first cut; the observability layer extends it). */
struct mempool_stats {
    uint32_t size;            /**< sizeof(struct mempool_stats) */
    uint32_t version;         /**< 1 */
    uint64_t arena_bytes;     /**< size of the shm object */
    uint64_t data_bytes;      /**< of which usable for objects */
    uint64_t used_bytes;      /**< allocated to objects, rounding included */
    uint64_t free_bytes;      /**< data_bytes - used_bytes */
    uint64_t objects;         /**< table entries in use (any state) */
    uint64_t max_objects;     /**< table capacity */
    uint64_t resident_bytes;  /**< sum of lengths of objects in memory */
    uint32_t workers;         /**< workers attached now */
    uint32_t max_workers;
};

/** @brief Read pool figures without taking locks or pins.
 *  @return 0, -EINVAL. */
MEMPOOL_API int mempool_stats(mempool *p, struct mempool_stats *s);

/** @brief Check the pool's invariants: every data byte free or owned by one
 *  table entry, allocator state agrees with the table, counters agree with
 *  the objects, no dead worker holds anything. Writes a one-line reason to
 *  @p why (may be NULL). Briefly holds the allocator lock.
 *  @return 0 healthy, MEMPOOL_ECORRUPT with a reason, or another error. */
MEMPOOL_API int mempool_check(mempool *p, char *why, size_t whylen);

/** @brief Return the memory of free data pages to the kernel
 *  (fallocate PUNCH_HOLE). Freed pages are otherwise kept for reuse.
 *  @return bytes returned, or a negative error. */
MEMPOOL_API int64_t mempool_trim(mempool *p);

#ifdef __cplusplus
}
#endif
#endif /* MEMPOOL_H */
