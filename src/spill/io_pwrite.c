/* SPDX-License-Identifier: MIT */
/*
 * io_pwrite.c - the portable I/O backend: each file written with pwrite()
 * in the order mempool__io_next() gives - a checksum chunk of the payload
 * (crc32c, then at once its write, while it is still in cache), the next
 * chunk, ..., then the header block. It is the reference the io_uring backend must
 * match byte for byte, and the one used where io_uring is refused (Docker's
 * seccomp profile, kernel.io_uring_disabled, old kernels) or forced with
 * MEMPOOL_IO=pwrite. Runs on the engine thread (io.c).
 */
#include <unistd.h>

#include "io_impl.h"

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

/* Write all of @p f. @return 0 or -errno. */
static int pwrite_file(mp_io_file *f, mp_io_tune *t)
{
    while (f->issued < f->total) {
        uint64_t off;
        size_t seg;
        const void *buf = mempool__io_next(f, &off, &seg);
        int err = buf ? pwrite_seg(f, buf, seg, off, t) : f->err;

        if (err)
            return err;
    }
    return 0;
}

void mempool__pwrite_write(mp_io_file **files, unsigned n, mp_io_tune *t)
{
    for (unsigned i = 0; i < n; i++)
        if (files[i]->fd >= 0 && files[i]->err == 0)
            files[i]->err = pwrite_file(files[i], t);
}
