/* SPDX-License-Identifier: MIT */
/*
 * spill.h - spill files and the I/O engine that writes them (internal).
 *
 * File format (spill files, copy/move_to_disk files and save_to_disk files
 * are the same): a 4096-byte header, then the object's bytes, so the payload
 * is page-aligned and can be mapped on its own (offset 4096) read-only.
 *
 *   off  size  field
 *     0     8  magic "MPSPILL1"
 *     8     4  format version (2; version 1 files are still read)
 *    12     4  header bytes (4096)
 *    16    16  pool uuid (the pool that wrote it)
 *    32     4  entry index
 *    36     4  entry generation
 *    40     8  payload length
 *    48     4  type id
 *    52     4  flags (MP_FILE_SAVED for save_to_disk files)
 *    56     4  v2: chunk shift s (20..63): the payload is checksummed in
 *              chunks of 2^s bytes, the last one shorter; s is the least
 *              >= 20 that needs at most MP_FILE_MAXCHUNKS chunks
 *              v1: crc32c of the whole payload
 *    60     4  crc32c of bytes 0..4095 with this field zero
 *    64  4*n   v2: crc32c of each chunk, n = ceil(length / 2^s) <= 1008
 *   ...        zero
 *
 * All integers little-endian (the only byte order mempool runs on; a file
 * with another version is refused, never swapped). Version 2 lets the
 * writer checksum a chunk and write it at once,
 * while the chunk is still in cache, instead of reading the whole object
 * once for its crc before the first write; the header block, which holds
 * every chunk crc, is written last (the file only gets its final name after
 * every write completed, so the order is invisible). A reader checks every
 * chunk against its crc (see mempool__file_map).
 *
 * The I/O engine. Each handle owns one engine with one thread. It writes
 * files through io_uring when the kernel allows it, and with pwrite() when
 * io_uring_queue_init() fails (seccomp, kernel.io_uring_disabled, memlock)
 * or when forced. Both produce identical files: checksum the payload chunk
 * by chunk, writing each chunk to "<name>.tmp" as soon as its crc is known
 * (the kernel's io-wq, or the pwrite backend's writer thread, copies it
 * while the engine checksums the next),
 * then the sealed header block, optionally fdatasync, rename to "<name>",
 * optionally fsync the directory. Short writes are resubmitted. A failed
 * request leaves no file and no temp file behind.
 */
#ifndef MEMPOOL_SPILL_H
#define MEMPOOL_SPILL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crc32c.h"

#define MP_FILE_MAGIC   "MPSPILL1"
#define MP_FILE_VERSION 2u          /* written; 1 is still read */
#define MP_FILE_HDR     4096u
#define MP_FILE_SAVED   0x1u
#define MP_FILE_CHUNK_SHIFT 20u     /* 1 MiB chunks, unless too many */
#define MP_FILE_MAXCHUNKS ((MP_FILE_HDR - 64u) / 4u)   /* 1008 */

typedef struct mp_file_header {
    char     magic[8];
    uint32_t version;
    uint32_t header_bytes;
    uint64_t uuid[2];
    uint32_t idx;
    uint32_t gen;
    uint64_t len;
    uint32_t type;
    uint32_t flags;
    union {
        uint32_t chunk_shift;             /* v2: log2 of chunk bytes */
        uint32_t payload_crc;             /* v1: crc32c of the payload */
    };
    uint32_t header_crc;
} mp_file_header;                         /* first 64 bytes of the 4 KiB */

_Static_assert(sizeof(mp_file_header) == 64, "file header prefix is 64 B");


/* Fill a version 2 header for a payload of @p len bytes: identity and
 * chunk shift, no checksums yet (the writer adds them chunk by chunk). */
void mempool__file_header(mp_file_header *h, const uint64_t uuid[2],
                          uint32_t idx, uint32_t gen, uint32_t type,
                          uint32_t flags, uint64_t len);
/* Bytes per checksum chunk and number of chunks of a v2 header. */
uint64_t mempool__file_chunk_bytes(const mp_file_header *h);
uint64_t mempool__file_chunks(const mp_file_header *h);
/* Record the crc32c of chunk @p i in header block @p blk. */
void mempool__file_chunk_crc(uint8_t *blk, uint64_t i, uint32_t crc);
/* Compute the header crc of block @p blk (every chunk crc recorded). */
void mempool__file_seal(uint8_t *blk);
/* Build a complete header block (4096 bytes) for @p h and @p payload in
 * one go: every chunk crc and the header crc (tests and tools). */
void mempool__file_block(uint8_t *blk, const mp_file_header *h,
                         const void *payload);

/* What a file was when it was mapped: fstat's identity and times and its
 * header crc. Equal ids mean no write, truncate, rename over, chmod or
 * xattr change happened in between (each sets ctime), within the limits
 * design.md gives ("What a reader is guaranteed"). Plain uint64_t fields,
 * no padding: compared with memcmp. */
typedef struct mp_file_id {
    uint64_t dev, ino, size;
    uint64_t mtime_s, mtime_ns, ctime_s, ctime_ns;
    uint64_t header_crc;
} mp_file_id;

/* A validated, read-only mapping of a file written by the engine. */
typedef struct mp_file_map {
    void          *map;      /* mapping of the whole file (NULL if len 0) */
    size_t         maplen;
    const uint8_t *data;     /* payload */
    uint64_t       len;
    uint32_t       type;
    bool           checked;  /* every payload chunk was checked by this map */
    bool           settled;  /* ctime was MP_FILE_SETTLE_NS old at fstat */
    mp_file_id     id;
    mp_file_header hdr;
} mp_file_map;

/* A verdict is kept only for a file whose ctime was this much older than
 * the clock when it was checked: with coarse (per tick, up to 10 ms)
 * timestamps, a change after that fstat then gets a later ctime. */
#define MP_FILE_SETTLE_NS 20000000ll

/* Was a file with this id checked whole before (mapcache.c's verdicts)? */
typedef bool (*mp_file_seen_fn)(void *ctx, const mp_file_id *id);

/*
 * Open and map @p path (relative to @p dirfd, or absolute with AT_FDCWD)
 * read-only after checking: regular file, not a symlink (O_NOFOLLOW), size
 * == 4096 + len, magic, version, header crc, and - if @p uuid is non-NULL -
 * the pool uuid, index and generation; with @p verify, every chunk's crc
 * (v1 files: the whole payload's), touching every page at map time, so a
 * view handed out never shows a byte that was not checked.
 * Returns 0, -ENOENT (missing), -EIO (read error), MEMPOOL_ECORRUPT (any
 * mismatch: truncated, bit flip, foreign or stale). Never SIGBUS on a file
 * that is not changed while mapped.
 */
int  mempool__file_map(int dirfd, const char *path, const uint64_t uuid[2],
                       uint32_t idx, uint32_t gen, bool verify,
                       mp_file_map *out);
/* mempool__file_map() whose @p verify skips the payload check of a file
 * @p seen (if non-NULL) says was checked whole already, with this very id
 * (out->checked is then false). */
int  mempool__file_map_seen(int dirfd, const char *path,
                            const uint64_t uuid[2], uint32_t idx,
                            uint32_t gen, bool verify, mp_file_seen_fn seen,
                            void *ctx, mp_file_map *out);
void mempool__file_unmap(mp_file_map *m);

/* ---- the I/O engine --------------------------------------------------- */

typedef struct mp_io mp_io;

enum { MP_IO_AUTO = 0, MP_IO_PWRITE = 1 };   /* mempool__io_open() mode */

typedef struct mp_io_req {
    int         dirfd;        /* directory the file goes in */
    const char *name;         /* final name inside dirfd (no '/') */
    const void *payload;      /* object bytes (arena or a mapping) */
    uint64_t    len;
    mp_file_header hdr;       /* written as the first 64 of 4096 bytes */
    bool        durable;      /* fdatasync the file and fsync the dir */
    uint32_t    mode;         /* fchmod the file to this (0: leave 0600);
                                 the umask cannot narrow it */
    bool        unique_tmp;   /* write an O_TMPFILE (else a temp name only
                                 this request uses), never "<name>.tmp":
                                 a writer killed midway blocks nobody */
    /* filled by the engine */
    int         result;       /* 0 or -errno (-ENOSPC, -EIO, ...) */
    uint64_t    ns;           /* time spent writing */
    /* private to the engine */
    struct mp_io_req *next;
    int         done;
} mp_io_req;

/* Start an engine and its thread. @p mode MP_IO_AUTO tries io_uring first.
 * Returns 0 or -errno. */
int  mempool__io_open(mp_io **out, int mode);
/* "io_uring" or "pwrite": the backend actually in use. */
const char *mempool__io_backend(const mp_io *io);
/* Queue @p n requests; they are written concurrently where the backend can.
 * Returns 0 or -errno (nothing queued). */
int  mempool__io_submit(mp_io *io, mp_io_req **reqs, unsigned n);
/* Wait until every one of @p reqs is done; returns 0 (check each result). */
int  mempool__io_wait(mp_io *io, mp_io_req **reqs, unsigned n);
/* Wait for everything queued so far. */
int  mempool__io_drain(mp_io *io);
/* Stop the thread (after finishing queued work) and free the engine. */
void mempool__io_close(mp_io *io);

/* Failpoint hook for tests: when the environment variable
 * MEMPOOL_FAILPOINT names "io.write" (fail with -EIO), "io.nospc" (-ENOSPC,
 * from the preallocation of a large file too), "io.short" (cap every write
 * at 4096 bytes) or "io.falloc" (no preallocation, as on a file system
 * without fallocate), the engine obeys. Read once per engine at open. */

#endif /* MEMPOOL_SPILL_H */
