/* SPDX-License-Identifier: MIT */
/*
 * error.c - mempool_strerror(): one table names every library code; -errno
 * values are described by the C library's thread-safe description table.
 */
#include <errno.h>
#include <string.h>

#include <mempool/mempool.h>

#define MEMPOOL_ERRORS(X)                                                     \
    X(MEMPOOL_EFORMAT, "pool was created by an incompatible mempool build")   \
    X(MEMPOOL_ECORRUPT, "pool or file failed validation (corrupt)")           \
    X(MEMPOOL_EFORKED, "handle used in a forked child; open the pool again")  \
    X(MEMPOOL_ENOTREADY, "pool creator died before the pool was ready")    \
    X(MEMPOOL_EUNSAFE, "spill directory is not the pool's own (symlink, "     \
                       "other owner, writable by others): not spilling")

const char *mempool_strerror(int err)
{
    switch (err) {
    case 0:
        return "success";
#define MEMPOOL_ERR_CASE(code, text) case code: return text;
    MEMPOOL_ERRORS(MEMPOOL_ERR_CASE)
#undef MEMPOOL_ERR_CASE
    case -ENOSPC:
        return "no space left (/dev/shm, object table or disk); in a "
               "container, raise --shm-size";
    default:
        break;
    }
    if (err < 0 && err > -4096) {
        const char *s = strerrordesc_np(-err);
        if (s)
            return s;
    }
    return "unknown error";
}
