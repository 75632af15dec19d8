/* SPDX-License-Identifier: MIT */
/*
 * io_pwrite.c - the portable I/O backend: each file written in order with
 * pwrite(), the header block in one call and the payload in calls of at
 * most MP_IO_CHUNK bytes. It is the reference the io_uring backend must
 * match byte for byte, and the one used where io_uring is refused (Docker's
 * seccomp profile, kernel.io_uring_disabled, old kernels) or forced with
 * MEMPOOL_IO=pwrite. Runs on the engine thread (io.c).
 */
#include <unistd.h>

#include "io_impl.h"

/* Write all of @p f. @return 0 or -errno. */
static int pwrite_file(mp_io_file *f, mp_io_tune *t)
{
    uint64_t off = 0;
    unsigned again = 0;

    while (off < f->total) {
        size_t want;
        const void *buf = mempool__io_ptr(f, off, &want);
        long r = (long)pwrite(f->fd, buf, mp_io_cap(t, want), (off_t)off);

        if (r < 0 && (errno == EINTR || errno == EAGAIN) && ++again < 100)
            continue;
        r = mp_io_fault(t, r < 0 ? -errno : r);
        if (r < 0)
            return (int)r;
        if (r == 0)
            return -EIO;          /* no progress on a regular file */
        if ((size_t)r < want)
            __atomic_fetch_add(&t->resubmits, 1, __ATOMIC_RELAXED);
        off += (uint64_t)r;
    }
    return 0;
}

void mempool__pwrite_write(mp_io_file **files, unsigned n, mp_io_tune *t)
{
    for (unsigned i = 0; i < n; i++)
        if (files[i]->fd >= 0 && files[i]->err == 0)
            files[i]->err = pwrite_file(files[i], t);
}
