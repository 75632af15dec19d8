/* SPDX-License-Identifier: MIT */
/*
 * io_pwrite.c - the portable I/O backend: each file written with pwrite()
 * in the order mempool__io_next() gives - a checksum chunk of the payload,
 * the next chunk, ..., then the header block. It is the reference the
 * io_uring backend must match byte for byte, and the one used where
 * io_uring is refused (Docker's seccomp profile, kernel.io_uring_disabled,
 * old kernels) or forced with MEMPOOL_IO=pwrite.
 *
 * The engine thread (io.c) checksums each write's chunks; the pwrite()
 * calls run on a writer thread of this backend, fed through a queue of
 * MP_PW_DEPTH writes, so the kernel copies write k while the engine
 * checksums write k+1 - what io_uring's io-wq workers do for the other
 * backend. The engine
 * waits for the queue to drain before it returns a batch, so every write
 * has completed before io.c renames a file, and a payload is never used
 * after its request completed. Where the writer thread cannot be started
 * (mempool__pwriter_open failed: no memory, no threads), the engine makes
 * the same calls itself, one after the other.
 */
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "io_impl.h"

#define MP_PW_DEPTH 4u           /* chunks queued ahead of the writer */

typedef struct mp_pw_job {
    mp_io_file    *f;
    const uint8_t *buf;
    size_t         len;
    uint64_t       off;
} mp_pw_job;

struct mp_pwriter {
    pthread_mutex_t mu;
    pthread_cond_t  more;        /* a job was queued, or stop */
    pthread_cond_t  room;        /* a job finished */
    mp_pw_job       q[MP_PW_DEPTH];
    unsigned        head, n;     /* ring: n jobs from head; the one at
                                    head is being written while busy */
    bool            busy, stop;
    mp_io_tune     *t;
    pthread_t       th;
};

/* Write @p len bytes of @p buf at file offset @p off of @p f, continuing
 * short writes. @return 0 or -errno. */
static int pwrite_seg(mp_io_file *f, const uint8_t *buf, size_t len,
                      uint64_t off, mp_io_tune *t)
{
    unsigned again = 0;

    while (len > 0) {
        long r = (long)pwrite(f->fd, buf, mp_io_cap(t, len), (off_t)off);

        if (r < 0 && (errno == EINTR || errno == EAGAIN) && ++again < 100)
            continue;
        r = mp_io_fault(t, r < 0 ? -errno : r);
        if (r < 0)
            return (int)r;
        if (r == 0)
            return -EIO;          /* no progress on a regular file */
        if ((size_t)r < len)
            __atomic_fetch_add(&t->resubmits, 1, __ATOMIC_RELAXED);
        buf += r;
        off += (uint64_t)r;
        len -= (size_t)r;
    }
    return 0;
}

/* ---- the writer thread ------------------------------------------------ */

static void *pw_main(void *arg)
{
    mp_pwriter *w = arg;

    pthread_mutex_lock(&w->mu);
    for (;;) {
        mp_pw_job j;
        int err;

        while (w->n == 0 && !w->stop)
            pthread_cond_wait(&w->more, &w->mu);
        if (w->n == 0)
            break;
        j = w->q[w->head];
        w->busy = true;
        /* While the writer runs, f->err is only set under mu, so a
         * file that failed gets no more writes. */
        err = j.f->err;
        pthread_mutex_unlock(&w->mu);
        if (err == 0)
            err = pwrite_seg(j.f, j.buf, j.len, j.off, w->t);
        pthread_mutex_lock(&w->mu);
        if (err && j.f->err == 0)
            j.f->err = err;
        w->busy = false;
        w->head = (w->head + 1) % MP_PW_DEPTH;
        w->n--;
        pthread_cond_broadcast(&w->room);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

int mempool__pwriter_open(mp_pwriter **out, mp_io_tune *t)
{
    mp_pwriter *w = calloc(1, sizeof *w);
    sigset_t all, old;
    int ret;

    if (!w)
        return -ENOMEM;
    w->t = t;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->more, NULL);
    pthread_cond_init(&w->room, NULL);
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    ret = -pthread_create(&w->th, NULL, pw_main, w);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (ret) {
        pthread_cond_destroy(&w->room);
        pthread_cond_destroy(&w->more);
        pthread_mutex_destroy(&w->mu);
        free(w);
        return ret;
    }
    *out = w;
    return 0;
}

void mempool__pwriter_close(mp_pwriter *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    w->stop = true;
    pthread_cond_signal(&w->more);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->th, NULL);
    pthread_cond_destroy(&w->room);
    pthread_cond_destroy(&w->more);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

/* Queue one write, waiting for room. */
static void pw_queue(mp_pwriter *w, mp_io_file *f, const void *buf,
                     size_t len, uint64_t off)
{
    pthread_mutex_lock(&w->mu);
    while (w->n == MP_PW_DEPTH)
        pthread_cond_wait(&w->room, &w->mu);
    w->q[(w->head + w->n) % MP_PW_DEPTH] =
        (mp_pw_job){ .f = f, .buf = buf, .len = len, .off = off };
    w->n++;
    pthread_cond_signal(&w->more);
    pthread_mutex_unlock(&w->mu);
}

/* Wait until every queued write is done. */
static void pw_drain(mp_pwriter *w)
{
    pthread_mutex_lock(&w->mu);
    while (w->n > 0)
        pthread_cond_wait(&w->room, &w->mu);
    pthread_mutex_unlock(&w->mu);
}

/* f->err, read under the writer's lock (it sets it there). */
static int pw_err(mp_pwriter *w, mp_io_file *f)
{
    int err;

    pthread_mutex_lock(&w->mu);
    err = f->err;
    pthread_mutex_unlock(&w->mu);
    return err;
}

/* ---- a batch ---------------------------------------------------------- */

/* Write all of @p f on this thread. @return 0 or -errno. */
static int pwrite_file(mp_io_file *f, mp_io_tune *t)
{
    while (f->issued < f->total) {
        uint64_t off;
        size_t seg;
        int err = 0;
        const void *buf = mempool__io_next(f, &off, &seg, &err);

        if (buf)
            err = pwrite_seg(f, buf, seg, off, t);
        if (err)
            return err;
    }
    return 0;
}

/* Checksum @p f here, have the writer write it. Sets f->err on failure. */
static void queue_file(mp_pwriter *w, mp_io_file *f)
{
    while (f->issued < f->total && pw_err(w, f) == 0) {
        uint64_t off;
        size_t seg;
        int err = 0;
        const void *buf = mempool__io_next(f, &off, &seg, &err);

        if (!buf) {
            pthread_mutex_lock(&w->mu);
            if (f->err == 0)
                f->err = err;
            pthread_mutex_unlock(&w->mu);
            return;
        }
        pw_queue(w, f, buf, seg, off);
    }
}

void mempool__pwrite_write(mp_pwriter *w, mp_io_file **files, unsigned n,
                           mp_io_tune *t)
{
    for (unsigned i = 0; i < n; i++) {
        if (files[i]->fd < 0 || files[i]->err != 0)
            continue;
        if (w)
            queue_file(w, files[i]);
        else
            files[i]->err = pwrite_file(files[i], t);
    }
    if (w)
        pw_drain(w);
}
