/* SPDX-License-Identifier: MIT */
/*
 * io.c - the front of the I/O engine (spill.h): the request queue, the
 * engine thread, the choice of backend, the failpoints, and the steps every
 * file takes whatever backend writes its bytes.
 *
 * Callers queue requests under a mutex and wait on a condition variable;
 * one thread per engine takes up to MP_IO_BATCH requests at a time and for
 * each batch:
 *   1. opens "<name>.tmp" in the request's directory (O_CREAT | O_EXCL |
 *      O_NOFOLLOW | O_CLOEXEC, mode 0600), with plain syscalls, and gives
 *      a payload of 1 MiB or more its blocks in one fallocate()
 *      (file_prealloc() says why);
 *   2. has the backend write the payload and then the 4096-byte header
 *      block (mempool__io_next() hands out the writes in that order,
 *      checksumming each chunk of the payload just before its first write
 *      and sealing the header, which holds every chunk crc, before it) -
 *      io_uring.c with several chunks and files in flight while the next
 *      chunk is checksummed, or io_pwrite.c, whose writer thread calls
 *      pwrite() for chunk k while this thread checksums chunk k+1;
 *   3. per file: fdatasync if durable, close, rename to "<name>", fsync the
 *      directory if durable. On any failure the temp file (or, if the
 *      directory fsync failed, the renamed file) is unlinked and
 *      req->result says why, so a failed request leaves nothing behind. A
 *      stale "<name>.tmp" that we did not create gives -EEXIST and is left
 *      alone (sweeping those is the cleanup code's job).
 *
 * Backend choice at mempool__io_open(): MP_IO_PWRITE, or MP_IO_AUTO with
 * the environment variable MEMPOOL_IO=pwrite, gives pwrite. Otherwise
 * io_uring is tried and any failure of io_uring_queue_init() (-EPERM under
 * seccomp or kernel.io_uring_disabled, -ENOSYS, -ENOMEM under a memlock
 * limit) or a kernel without IORING_OP_WRITE falls back to pwrite. If a
 * ring breaks later, the engine finishes with pwrite and stays there.
 * mempool__io_backend() names the backend in use. Other MEMPOOL_IO values
 * mean auto.
 *
 * Failpoints: "spill.chunk" and "spill.sealed" of failpoints.def (the crash
 * matrix kills there, between a file's writes). Besides, MEMPOOL_FAILPOINT
 * holds names separated by commas or spaces;
 * this engine obeys "io.write" (every write fails with -EIO after the
 * kernel did it), "io.nospc" (-ENOSPC; a large file's fallocate fails so
 * too, before any write), "io.short" (every write is capped at 4096
 * bytes, so the short-write continuation runs; the file is still
 * complete), "io.falloc" (fallocate is refused as by a file system
 * without it: the file is written without) and, beyond spill.h's list,
 * "io.ring" (io_uring_submit() fails in the second round of each batch,
 * so the switch to pwrite in the middle of a batch runs; every file is
 * still complete). Names of other
 * subsystems are ignored. Both variables are read once per engine, at open,
 * with secure_getenv().
 *
 * The engine thread (and the pwrite backend's writer thread) blocks every
 * signal. A forked child has no engine thread: it must not use its
 * parent's engine.
 */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "failpoint.h"
#include "io_impl.h"

enum { MP_BE_PWRITE = 0, MP_BE_URING = 1 };

struct mp_io {
    pthread_mutex_t mu;
    pthread_cond_t  work;      /* queue non-empty or stop */
    pthread_cond_t  done;      /* some requests finished */
    mp_io_req      *head, *tail;
    uint64_t        queued;    /* requests ever queued */
    uint64_t        finished;  /* requests ever finished (FIFO) */
    bool            stop;
    pthread_t       thread;
    int             backend;   /* MP_BE_*; read by others atomically */
    mp_uring       *uring;     /* only with MP_BE_URING */
    mp_pwriter     *pw;        /* pwrite's writer thread, started at its
                                  first batch (NULL: none, or it failed) */
    mp_io_tune      tune;
    mp_io_file      files[MP_IO_BATCH];
    mp_io_file     *batch[MP_IO_BATCH];
};

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

const void *mempool__io_ptr(const mp_io_file *f, uint64_t off)
{
    if (off < MP_FILE_HDR)
        return f->hdr + off;
    return (const uint8_t *)f->req->payload + (off - MP_FILE_HDR);
}

/* Checksum the next payload chunk (at f->crced) into the header. @return
 * 0 or the "spill.chunk" failpoint's error. */
static int chunk_crc(mp_io_file *f)
{
    uint64_t q = f->crced, rest = f->req->len - q, cb = 1ull << f->shift;
    size_t n = (size_t)(rest < cb ? rest : cb);

    mempool__file_chunk_crc(f->hdr, q >> f->shift,
                            mempool__crc32c(0, (const uint8_t *)
                                            f->req->payload + q, n));
    f->crced += n;
    return MP_FP(spill_chunk);
}

/*
 * Payload writes end at file offsets that are multiples of MP_IO_SEG
 * (2 MiB), not at chunk ends (which sit 4096 bytes past them): the page
 * cache then builds the file of 2 MiB folios, as for one big write(2), and
 * a reader's mmap maps them a PMD at a time. Writes that start at
 * 4096 + k MiB leave small folios behind and made a fresh reader's first
 * map up to 3x slower.
 */
const void *mempool__io_next(mp_io_file *f, uint64_t *off, size_t *seg,
                             int *err_out)
{
    uint64_t q = f->issued, len = f->req->len;
    int err = 0;

    if (q < len) {                      /* payload, checksummed ahead */
        uint64_t fo = MP_FILE_HDR + q;
        uint64_t end = (fo / MP_IO_SEG + 1) * MP_IO_SEG - MP_FILE_HDR;

        if (end > len)
            end = len;
        while (f->crced < end && !err)
            err = chunk_crc(f);
        *off = fo;
        *seg = (size_t)(end - q);
    } else {                            /* then the header block */
        if (q == len) {
            mempool__file_seal(f->hdr);
            err = MP_FP(spill_sealed);
        }
        *off = q - len;
        *seg = (size_t)(MP_FILE_HDR - *off);
    }
    if (err) {
        *err_out = err;
        return NULL;
    }
    f->issued += *seg;
    return mempool__io_ptr(f, *off);
}

/* ---- one file: open, then sync/rename/clean up ------------------------ */

/*
 * Give a large file all its blocks in one fallocate() before the first
 * write. Without it, ext4 (delayed allocation) reserves space, inserts a
 * delayed extent and charges the quota block by block as the writes come
 * in: 25-30 % of a 64 MiB write(2). Writes into the preallocated
 * (unwritten) extents skip all that, and a full disk is -ENOSPC before a
 * byte is copied. Nothing else changes: no sync (the file is still a
 * cache, as before), the same temp name and rename, and an unwritten
 * extent reads as zeros, so a temp file a kill leaves is as incomplete as
 * before (the reaper removes it). Small files keep delayed allocation:
 * there the extra call costs more than it saves, and a short-lived file
 * may never need blocks at all. A file system without fallocate
 * (-EOPNOTSUPP) or any other refusal but a full disk or quota: written as
 * before. The "io.nospc" failpoint fails it as a full disk would,
 * "io.falloc" as a file system without it. @return 0 or -ENOSPC/-EDQUOT.
 */
static int file_prealloc(const mp_io_file *f, const mp_io_tune *t)
{
    int err = 0;

    if (f->req->len < MP_IO_PREALLOC)
        return 0;
    if (t->fp & MP_FP_NOSPC)
        err = -ENOSPC;
    else if (t->fp & MP_FP_FALLOC)
        err = -EOPNOTSUPP;
    else if (fallocate(f->fd, 0, 0, (off_t)f->total) != 0)
        err = -errno;
    return err == -ENOSPC || err == -EDQUOT ? err : 0;
}

static void file_start(mp_io_file *f, mp_io_req *r, const mp_io_tune *t)
{
    f->req = r;
    f->fd = -1;
    f->err = 0;
    f->total = MP_FILE_HDR + r->len;
    f->issued = 0;
    f->inflight = 0;
    f->t0 = now_ns();
    memset(f->hdr, 0, sizeof f->hdr);
    memcpy(f->hdr, &r->hdr, sizeof r->hdr);
    f->shift = r->hdr.chunk_shift;
    f->crced = 0;
    f->anon = false;
    if (r->unique_tmp) {
        /* save_to_disk: nothing with a fixed name, so a save killed
         * midway cannot make later saves fail with -EEXIST. O_TMPFILE
         * leaves nothing at all; where the file system lacks it, a temp
         * name with our pid and random bits. */
        uint64_t rnd = now_ns() ^ ((uint64_t)(uintptr_t)f << 16);
        snprintf(f->tmp, sizeof f->tmp, ".mempool-save.%d-%016llx.tmp",
                 (int)getpid(), (unsigned long long)rnd);
        f->fd = openat(r->dirfd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC,
                       0600);
        f->anon = f->fd >= 0;
    } else {
        snprintf(f->tmp, sizeof f->tmp, "%s.tmp", r->name);
    }
    if (!f->anon)
        f->fd = openat(r->dirfd, f->tmp, O_WRONLY | O_CREAT | O_EXCL |
                       O_NOFOLLOW | O_CLOEXEC, 0600);
    if (f->fd < 0 || (r->mode && fchmod(f->fd, (mode_t)r->mode) < 0))
        f->err = -errno;
    else
        f->err = file_prealloc(f, t);
}

/* fsync the directory @p dirfd (AT_FDCWD and O_PATH descriptors too). */
static int dir_sync(int dirfd)
{
    int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int ret = 0;

    if (fd < 0)
        return -errno;
    if (fsync(fd) != 0)
        ret = -errno;
    close(fd);
    return ret;
}

static void file_finish(mp_io_file *f)
{
    mp_io_req *r = f->req;
    bool renamed = false;
    int err = f->err;

    if (f->fd >= 0) {
        if (err == 0 && r->durable && fdatasync(f->fd) != 0)
            err = -errno;
        if (err == 0 && f->anon) {
            char proc[40];
            snprintf(proc, sizeof proc, "/proc/self/fd/%d", f->fd);
            if (linkat(AT_FDCWD, proc, r->dirfd, f->tmp,
                       AT_SYMLINK_FOLLOW) != 0)
                err = -errno;
        }
        if (close(f->fd) != 0 && err == 0 && errno != EINTR)
            err = -errno;
        f->fd = -1;
        if (err == 0 && renameat(r->dirfd, f->tmp, r->dirfd, r->name) != 0)
            err = -errno;
        renamed = err == 0;
        if (err == 0 && r->durable)
            err = dir_sync(r->dirfd);
        if (err != 0)
            unlinkat(r->dirfd, renamed ? r->name : f->tmp, 0);
    }
    r->result = err;
    r->ns = now_ns() - f->t0;
}

/* ---- a batch ----------------------------------------------------------- */

static void batch_write(mp_io *io, unsigned n)
{
    int ret;

    if (__atomic_load_n(&io->backend, __ATOMIC_RELAXED) == MP_BE_URING) {
        ret = mempool__uring_write(io->uring, io->batch, n, &io->tune);
        if (ret == 0)
            return;
        /* The ring broke: finish unfinished files, and all later ones,
         * with pwrite (rewriting a file from the start, checksums and all,
         * is harmless). */
        mempool__uring_close(io->uring);
        io->uring = NULL;
        __atomic_store_n(&io->backend, MP_BE_PWRITE, __ATOMIC_RELAXED);
        for (unsigned i = 0; i < n; i++)
            io->batch[i]->issued = io->batch[i]->crced = 0;
    }
    if (!io->pw && mempool__pwriter_open(&io->pw, &io->tune) != 0)
        io->pw = NULL;               /* the engine thread writes itself */
    mempool__pwrite_write(io->pw, io->batch, n, &io->tune);
}

static void batch_run(mp_io *io, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        file_start(io->batch[i], io->batch[i]->req, &io->tune);
    batch_write(io, n);
    for (unsigned i = 0; i < n; i++)
        file_finish(io->batch[i]);
}

/* Take up to MP_IO_BATCH queued requests (mutex held). */
static unsigned batch_take(mp_io *io)
{
    unsigned n = 0;

    while (io->head && n < MP_IO_BATCH) {
        mp_io_req *r = io->head;

        io->head = r->next;
        r->next = NULL;
        io->batch[n] = &io->files[n];
        io->batch[n]->req = r;
        n++;
    }
    if (!io->head)
        io->tail = NULL;
    return n;
}

static void *io_thread(void *arg)
{
    mp_io *io = arg;

    pthread_mutex_lock(&io->mu);
    for (;;) {
        unsigned n;

        while (!io->head && !io->stop)
            pthread_cond_wait(&io->work, &io->mu);
        if (!io->head)
            break;                       /* stopping, queue empty */
        n = batch_take(io);
        pthread_mutex_unlock(&io->mu);
        batch_run(io, n);
        pthread_mutex_lock(&io->mu);
        for (unsigned i = 0; i < n; i++)
            io->batch[i]->req->done = 1;
        io->finished += n;
        pthread_cond_broadcast(&io->done);
    }
    pthread_mutex_unlock(&io->mu);
    return NULL;
}

/* ---- open / close ------------------------------------------------------ */

/* Is @p name (a comma/space separated list) naming @p what? */
static bool env_lists(const char *list, const char *what)
{
    size_t wl = strlen(what);

    while (list && *list) {
        size_t l;

        list += strspn(list, ", \t");
        l = strcspn(list, ", \t");
        if (l == wl && memcmp(list, what, wl) == 0)
            return true;
        list += l;
    }
    return false;
}

static void io_read_env(mp_io *io, int *mode)
{
    const char *fp = secure_getenv("MEMPOOL_FAILPOINT");
    const char *be = secure_getenv("MEMPOOL_IO");

    if (env_lists(fp, "io.write"))
        io->tune.fp |= MP_FP_WRITE;
    if (env_lists(fp, "io.nospc"))
        io->tune.fp |= MP_FP_NOSPC;
    if (env_lists(fp, "io.short"))
        io->tune.fp |= MP_FP_SHORT;
    if (env_lists(fp, "io.ring"))
        io->tune.fp |= MP_FP_RING;
    if (env_lists(fp, "io.falloc"))
        io->tune.fp |= MP_FP_FALLOC;
    if (be && strcmp(be, "pwrite") == 0)
        *mode = MP_IO_PWRITE;
}

/* Start the engine thread with every signal blocked. */
static int io_start_thread(mp_io *io)
{
    sigset_t all, old;
    int ret;

    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    ret = pthread_create(&io->thread, NULL, io_thread, io);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return -ret;
}

int mempool__io_open(mp_io **out, int mode)
{
    mp_io *io;
    int ret;

    if (!out || (mode != MP_IO_AUTO && mode != MP_IO_PWRITE))
        return -EINVAL;
    io = calloc(1, sizeof *io);
    if (!io)
        return -ENOMEM;
    io_read_env(io, &mode);
    io->backend = MP_BE_PWRITE;
    if (mode == MP_IO_AUTO && mempool__uring_open(&io->uring) == 0)
        io->backend = MP_BE_URING;
    ret = -pthread_mutex_init(&io->mu, NULL);
    if (ret)
        goto fail_mutex;
    ret = -pthread_cond_init(&io->work, NULL);
    if (ret)
        goto fail_work;
    ret = -pthread_cond_init(&io->done, NULL);
    if (ret)
        goto fail_done;
    ret = io_start_thread(io);
    if (ret)
        goto fail_thread;
    *out = io;
    return 0;

fail_thread:
    pthread_cond_destroy(&io->done);
fail_done:
    pthread_cond_destroy(&io->work);
fail_work:
    pthread_mutex_destroy(&io->mu);
fail_mutex:
    mempool__uring_close(io->uring);
    free(io);
    return ret;
}

void mempool__io_close(mp_io *io)
{
    if (!io)
        return;
    pthread_mutex_lock(&io->mu);
    io->stop = true;
    pthread_cond_signal(&io->work);
    pthread_mutex_unlock(&io->mu);
    pthread_join(io->thread, NULL);
    mempool__pwriter_close(io->pw);
    pthread_cond_destroy(&io->done);
    pthread_cond_destroy(&io->work);
    pthread_mutex_destroy(&io->mu);
    mempool__uring_close(io->uring);
    free(io);
}

const char *mempool__io_backend(const mp_io *io)
{
    if (io && __atomic_load_n(&io->backend, __ATOMIC_RELAXED) == MP_BE_URING)
        return "io_uring";
    return "pwrite";
}

unsigned long mempool__io_resubmits(const mp_io *io)
{
    return __atomic_load_n(&io->tune.resubmits, __ATOMIC_RELAXED);
}

/* ---- submit / wait ----------------------------------------------------- */

/* A final name: non-empty, no '/', not "." or "..", room for ".tmp". */
static bool name_ok(const char *name)
{
    size_t l;

    if (!name)
        return false;
    l = strlen(name);
    return l > 0 && l + 4 <= NAME_MAX && !strchr(name, '/') &&
           strcmp(name, ".") != 0 && strcmp(name, "..") != 0;
}

static bool req_ok(const mp_io_req *r)
{
    return r && name_ok(r->name) && (r->dirfd >= 0 || r->dirfd == AT_FDCWD) &&
           (r->payload || r->len == 0) &&
           r->hdr.version == MP_FILE_VERSION && r->hdr.len == r->len &&
           r->hdr.chunk_shift >= MP_FILE_CHUNK_SHIFT &&
           r->hdr.chunk_shift < 64 &&
           r->len <= (uint64_t)INT64_MAX - MP_FILE_HDR &&
           r->len <= (uint64_t)SIZE_MAX - MP_FILE_HDR;
}

int mempool__io_submit(mp_io *io, mp_io_req **reqs, unsigned n)
{
    if (!io || (n && !reqs))
        return -EINVAL;
    for (unsigned i = 0; i < n; i++)
        if (!req_ok(reqs[i]))
            return -EINVAL;
    pthread_mutex_lock(&io->mu);
    for (unsigned i = 0; i < n; i++) {
        mp_io_req *r = reqs[i];

        r->result = 0;
        r->ns = 0;
        r->done = 0;
        r->next = NULL;
        if (io->tail)
            io->tail->next = r;
        else
            io->head = r;
        io->tail = r;
    }
    io->queued += n;
    if (n)
        pthread_cond_signal(&io->work);
    pthread_mutex_unlock(&io->mu);
    return 0;
}

int mempool__io_wait(mp_io *io, mp_io_req **reqs, unsigned n)
{
    if (!io || (n && !reqs))
        return -EINVAL;
    pthread_mutex_lock(&io->mu);
    for (unsigned i = 0; i < n; i++)
        while (!reqs[i]->done)
            pthread_cond_wait(&io->done, &io->mu);
    pthread_mutex_unlock(&io->mu);
    return 0;
}

int mempool__io_drain(mp_io *io)
{
    uint64_t target;

    if (!io)
        return -EINVAL;
    pthread_mutex_lock(&io->mu);
    target = io->queued;
    while (io->finished < target)
        pthread_cond_wait(&io->done, &io->mu);
    pthread_mutex_unlock(&io->mu);
    return 0;
}
