/* SPDX-License-Identifier: MIT */
/*
 * io_uring.c - the io_uring I/O backend: the writes of a whole batch of
 * files in flight at once, MP_URING_DEPTH at most.
 *
 * Each file is cut into writes by mempool__io_next() - the payload in
 * 2 MiB writes, whose 1 MiB checksum chunks are checksummed just before the
 * write is queued, then the header block - and each write is one "op" (a
 * slot of u->ops, carried in the SQE's user data). A big write is submitted
 * at once, so the kernel (its io-wq workers: buffered writes to ext4 are
 * not done inline) copies write k while this thread checksums write k+1;
 * at most MP_URING_AHEAD bytes are in flight, so the bytes are still in
 * cache when the kernel copies them. A
 * completion shorter than asked is continued from where it stopped with a
 * new SQE for the same op; -EAGAIN/-EINTR are retried a bounded number of
 * times; any other error marks the file failed and no more of its writes
 * are issued (those in flight are still reaped: the caller's buffer must
 * outlive every write the kernel has). Deliberately plain: no SQPOLL, no
 * registered buffers (the payload may sit in the shm arena) and no linked
 * SQEs, so nothing depends on a recent kernel beyond IORING_OP_WRITE (5.6),
 * which mempool__uring_open() probes for.
 *
 * If io_uring_submit() keeps failing, mempool__uring_write() waits for the
 * writes the kernel accepted and gives up; io.c then closes the ring and
 * finishes the batch, and every later one, with pwrite(). The "io.ring"
 * failpoint makes that happen: in the second round of a batch it fails the
 * submit with -EIO without submitting, so SQEs the kernel never saw are
 * left in the ring as a real failure would leave them.
 */
#include <liburing.h>
#include <stdlib.h>
#include <time.h>

#include "io_impl.h"

#define MP_URING_DEPTH 64u    /* SQ entries: writes in flight at most */
#define MP_URING_TRIES 100u   /* -EAGAIN/-EINTR retries of one write */
#define MP_URING_STALL 1000u  /* 1 ms waits for a submit to get through */
#define MP_URING_AHEAD (4u << 20)   /* payload bytes in flight at most */
#define MP_URING_EAGER (256u << 10) /* submit a write this big at once */

typedef struct mp_uring_op {
    mp_io_file         *f;
    uint64_t            off;   /* file offset of the next byte to write */
    uint64_t            want;  /* bytes left of this write */
    uint64_t            len;   /* bytes of the whole write */
    unsigned            tries;
    struct mp_uring_op *next;  /* free list */
} mp_uring_op;

struct mp_uring {
    struct io_uring ring;
    mp_uring_op     ops[MP_URING_DEPTH];
    mp_uring_op    *free;
    unsigned        inflight;  /* ops taken from the free list */
    uint64_t        ahead;     /* bytes of the writes in flight */
};

/* -EOPNOTSUPP unless the kernel has IORING_OP_WRITE (no probe: < 5.6). */
static int uring_probe(struct io_uring *ring)
{
    struct io_uring_probe *p = io_uring_get_probe_ring(ring);
    int ok;

    if (!p)
        return -EOPNOTSUPP;
    ok = io_uring_opcode_supported(p, IORING_OP_WRITE);
    io_uring_free_probe(p);
    return ok ? 0 : -EOPNOTSUPP;
}

int mempool__uring_open(mp_uring **out)
{
    mp_uring *u = calloc(1, sizeof *u);
    int ret;

    if (!u)
        return -ENOMEM;
    ret = io_uring_queue_init(MP_URING_DEPTH, &u->ring, 0);
    if (ret < 0)
        goto fail_free;
    ret = uring_probe(&u->ring);
    if (ret < 0)
        goto fail_ring;
    for (unsigned i = 0; i < MP_URING_DEPTH; i++) {
        u->ops[i].next = u->free;
        u->free = &u->ops[i];
    }
    *out = u;
    return 0;

fail_ring:
    io_uring_queue_exit(&u->ring);
fail_free:
    free(u);
    return ret;
}

void mempool__uring_close(mp_uring *u)
{
    if (!u)
        return;
    io_uring_queue_exit(&u->ring);
    free(u);
}

static void op_release(mp_uring *u, mp_uring_op *op)
{
    op->f->inflight--;
    u->inflight--;
    u->ahead -= op->len;
    op->next = u->free;
    u->free = op;
}

/* Queue @p op's write. @return 0 or -EBUSY (no SQE: cannot happen while
 * ops <= SQ entries, but a file then fails rather than the process). */
static int op_prep(mp_uring *u, mp_uring_op *op, const mp_io_tune *t)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);

    if (!sqe)
        return -EBUSY;
    io_uring_prep_write(sqe, op->f->fd, mempool__io_ptr(op->f, op->off),
                        (unsigned)mp_io_cap(t, (size_t)op->want), op->off);
    io_uring_sqe_set_data(sqe, op);
    return 0;
}

static bool file_issuable(const mp_io_file *f)
{
    return f->fd >= 0 && f->err == 0 && f->issued < f->total;
}

/* Start writes for the files from *cur on while ops are free and fewer
 * than MP_URING_AHEAD bytes are in flight; each big one is submitted at
 * once, before the next chunk is checksummed. */
static void uring_fill(mp_uring *u, mp_io_file **files, unsigned n,
                       unsigned *cur, const mp_io_tune *t)
{
    while (u->free && (u->inflight == 0 || u->ahead < MP_URING_AHEAD)) {
        mp_io_file *f;
        mp_uring_op *op;
        uint64_t off;
        size_t seg;

        while (*cur < n && !file_issuable(files[*cur]))
            (*cur)++;
        if (*cur == n)
            return;
        f = files[*cur];
        if (!mempool__io_next(f, &off, &seg, &f->err))
            continue;                   /* failpoint: f->err is set */
        op = u->free;
        u->free = op->next;
        *op = (mp_uring_op){ .f = f, .off = off, .want = seg, .len = seg };
        f->inflight++;
        u->inflight++;
        u->ahead += seg;
        if (op_prep(u, op, t) != 0) {
            f->err = -EBUSY;
            op_release(u, op);
        } else if (seg >= MP_URING_EAGER) {
            (void)io_uring_submit(&u->ring); /* errors: the caller's submit */
        }
    }
}

/* Handle one completion: done, continue a short write, retry, or fail. */
static void op_complete(mp_uring *u, mp_uring_op *op, long res, mp_io_tune *t)
{
    mp_io_file *f = op->f;

    res = mp_io_fault(t, res);
    if (f->err == 0 && (res == -EAGAIN || res == -EINTR) &&
        ++op->tries < MP_URING_TRIES) {
        res = op_prep(u, op, t);
        if (res == 0)
            return;
    }
    if (f->err == 0 && res > 0 && (uint64_t)res < op->want) {
        op->off += (uint64_t)res;
        op->want -= (uint64_t)res;
        __atomic_fetch_add(&t->resubmits, 1, __ATOMIC_RELAXED);
        res = op_prep(u, op, t);
        if (res == 0)
            return;
    }
    if (res == 0 && op->want > 0)
        res = -EIO;                 /* no progress on a regular file */
    if (res < 0 && f->err == 0)
        f->err = (int)res;
    op_release(u, op);
}

/* Wait for one completion, then take every one that is ready. */
static int uring_reap(mp_uring *u, mp_io_tune *t)
{
    struct io_uring_cqe *cqe;
    int ret;

    do
        ret = io_uring_wait_cqe(&u->ring, &cqe);
    while (ret == -EINTR);
    while (ret == 0 && cqe) {
        mp_uring_op *op = io_uring_cqe_get_data(cqe);
        long res = cqe->res;

        io_uring_cqe_seen(&u->ring, cqe);
        op_complete(u, op, res, t);
        ret = io_uring_peek_cqe(&u->ring, &cqe);
    }
    return ret == -EAGAIN ? 0 : ret;
}

/* Give up on the ring: wait for every write the kernel accepted, drop the
 * rest (the caller closes the ring). If even waiting fails, fail the
 * files, since their buffers may still be in use. @return @p err. */
static int uring_abort(mp_uring *u, mp_io_file **files, unsigned n, int err)
{
    unsigned held = u->inflight - io_uring_sq_ready(&u->ring);

    while (held > 0) {
        struct io_uring_cqe *cqe;
        int ret = io_uring_wait_cqe(&u->ring, &cqe);

        if (ret == -EINTR)
            continue;
        if (ret < 0) {
            for (unsigned i = 0; i < n; i++)
                if (files[i]->err == 0)
                    files[i]->err = ret;
            return err;
        }
        held--;
        io_uring_cqe_seen(&u->ring, cqe);
    }
    return err;
}

static bool transient(int ret)
{
    return ret == -EINTR || ret == -EAGAIN || ret == -EBUSY;
}

int mempool__uring_write(mp_uring *u, mp_io_file **files, unsigned n,
                         mp_io_tune *t)
{
    static const struct timespec ms = { 0, 1000000 };
    unsigned cur = 0, stalls = 0, round = 0;
    int ret;

    for (;;) {
        uring_fill(u, files, n, &cur, t);
        if (u->inflight == 0)
            return 0;
        if ((t->fp & MP_FP_RING) && ++round == 2)
            ret = -EIO;
        else
            ret = io_uring_submit(&u->ring);
        if (ret < 0 && !transient(ret))
            return uring_abort(u, files, n, ret);
        if (u->inflight == io_uring_sq_ready(&u->ring)) {
            /* The kernel holds none of them: nothing to wait for. */
            if (++stalls > MP_URING_STALL)
                return uring_abort(u, files, n, ret < 0 ? ret : -EAGAIN);
            nanosleep(&ms, NULL);
            continue;
        }
        ret = uring_reap(u, t);
        if (ret < 0)
            return uring_abort(u, files, n, ret);
    }
}
