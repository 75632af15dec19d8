/* SPDX-License-Identifier: MIT */
/*
 * io_impl.h - what the I/O engine's files share and spill.h does not say:
 * the per-file write state, the two backends' entry points (io_uring.c,
 * io_pwrite.c, one backend per file like Redis's ae_*.c) and a few test
 * hooks. Only io.c, the backends and the white-box test
 * (tests/check_io.c) include it; the rest of the library uses spill.h.
 */
#ifndef MEMPOOL_IO_IMPL_H
#define MEMPOOL_IO_IMPL_H

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "spill.h"

#define MP_IO_SEG       (2u << 20)  /* payload writes end at multiples of
                                       this file offset (io.c) */
#define MP_IO_BATCH     64u         /* files one engine round handles */
#define MP_IO_SHORT_CAP 4096u       /* io.short: bytes per write at most */
#define MP_IO_PREALLOC  (1u << 20)  /* payloads this big get their blocks
                                       in one fallocate() first (io.c) */

/* Failpoints (MEMPOOL_FAILPOINT), read once per engine at open. */
enum {
    MP_FP_WRITE = 1u << 0, /* "io.write": every write completes with -EIO */
    MP_FP_NOSPC = 1u << 1, /* "io.nospc": every write (and fallocate)
                              gives -ENOSPC */
    MP_FP_SHORT = 1u << 2, /* "io.short": cap writes at MP_IO_SHORT_CAP */
    MP_FP_RING  = 1u << 3, /* "io.ring": the ring breaks (see io_uring.c) */
    MP_FP_FALLOC = 1u << 4, /* "io.falloc": no fallocate (io.c) */
};

/* Knobs and counters a backend sees; only the engine thread writes them. */
typedef struct mp_io_tune {
    unsigned      fp;        /* MP_FP_* */
    unsigned long resubmits; /* short writes continued (read atomically) */
} mp_io_tune;

/*
 * One request being written. io.c opens the temp file (fd >= 0, err 0) and
 * fills hdr; the backend takes writes from mempool__io_next() - the payload
 * chunk by chunk, each checksummed just before its first write, then the
 * sealed 4096-byte header block - and sets err on failure; io.c then syncs,
 * renames or unlinks.
 */
typedef struct mp_io_file {
    mp_io_req *req;
    int        fd;        /* the temp file, -1 if not open */
    int        err;       /* first error, 0 if none */
    uint64_t   total;     /* MP_FILE_HDR + req->len */
    uint64_t   issued;    /* bytes handed to writes so far, in issue
                             order (payload first, then the header) */
    uint64_t   shift;     /* log2 of the checksum chunk */
    uint64_t   crced;     /* payload bytes whose chunks are checksummed */
    unsigned   inflight;  /* io_uring: writes not yet completed */
    uint64_t   t0;        /* CLOCK_MONOTONIC ns at start */
    bool       anon;      /* unique_tmp: an O_TMPFILE, linked at finish */
    char       tmp[NAME_MAX + 1];
    uint8_t    hdr[MP_FILE_HDR];
} mp_io_file;

/* Address of file byte @p off of @p f (@p off below f->total). */
const void *mempool__io_ptr(const mp_io_file *f, uint64_t off);

/* The next write of @p f (f->issued below f->total): file offset *off and
 * length *seg, ending at the next multiple of MP_IO_SEG of the file (or the
 * payload's end). Every checksum chunk that starts before its end has its
 * crc32c computed first (and the "spill.chunk" failpoint runs after each);
 * when it is the header block, the header is sealed first
 * ("spill.sealed"). Advances f->issued. @return the buffer,
 * or NULL with *err set (a failpoint's error; the caller records it in
 * f->err). It never touches f->err, which a writer thread may set. */
const void *mempool__io_next(mp_io_file *f, uint64_t *off, size_t *seg,
                             int *err);

/* Apply the write failpoints to a write's result (bytes or -errno). */
static inline long mp_io_fault(const mp_io_tune *t, long res)
{
    if (res < 0 || !(t->fp & (MP_FP_WRITE | MP_FP_NOSPC)))
        return res;
    return (t->fp & MP_FP_WRITE) ? -EIO : -ENOSPC;
}

/* Bytes actually handed to one write of @p want (io.short caps it). */
static inline size_t mp_io_cap(const mp_io_tune *t, size_t want)
{
    if ((t->fp & MP_FP_SHORT) && want > MP_IO_SHORT_CAP)
        return MP_IO_SHORT_CAP;
    return want;
}

/* ---- io_pwrite.c ------------------------------------------------------ */

typedef struct mp_pwriter mp_pwriter;

/* Start the pwrite backend's writer thread (every signal blocked).
 * @return 0, -ENOMEM, or -errno of pthread_create. */
int  mempool__pwriter_open(mp_pwriter **out, mp_io_tune *t);
void mempool__pwriter_close(mp_pwriter *w);
/* Write every file of @p files whose fd is open and err 0 with pwrite():
 * checksums on this thread, writes on @p w's thread (or here too if @p w
 * is NULL); returns when every write is done. Sets err on failure. Never
 * fails as a whole. */
void mempool__pwrite_write(mp_pwriter *w, mp_io_file **files, unsigned n,
                           mp_io_tune *t);

/* ---- io_uring.c ------------------------------------------------------- */

typedef struct mp_uring mp_uring;

/* Set up a ring. @return 0, or -errno from io_uring_queue_init() (-EPERM
 * under seccomp or io_uring_disabled, -ENOSYS, -ENOMEM), -EOPNOTSUPP if the
 * kernel lacks IORING_OP_WRITE (< 5.6), -ENOMEM. */
int  mempool__uring_open(mp_uring **out);
/* Write the files as mempool__pwrite_write() does, many writes in flight.
 * @return 0; or -errno if the ring itself broke: then every write the
 * kernel accepted has completed, files whose err is still 0 are unfinished
 * and the caller must close the ring and write them another way. */
int  mempool__uring_write(mp_uring *u, mp_io_file **files, unsigned n,
                          mp_io_tune *t);
void mempool__uring_close(mp_uring *u);

/* ---- test hooks ------------------------------------------------------- */

/* Short writes the engine continued so far (io.short makes them). */
unsigned long mempool__io_resubmits(const mp_io *io);

#endif /* MEMPOOL_IO_IMPL_H */
