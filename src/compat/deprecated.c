/* SPDX-License-Identifier: MIT */
/*
 * deprecated.c - the names the API had in 0.1.0 before it was made
 * consistent (object operations are verbs on the pool, families are
 * mempool_<noun>_<verb>). Each is a real exported function that calls the
 * new one, so programs built against the old names keep linking and
 * running against this libmempool.so.0 (the version script lists them).
 * Removed in the release after next; the header marks them deprecated.
 */
#include <mempool/mempool.h>

int mempool_set(mempool *p, const void *data, size_t len, mempool_dref *out)
{
    return mempool_put(p, data, len, out);
}

int mempool_set_ex(mempool *p, const void *data, size_t len,
                   const mempool_put_options *o, mempool_dref *out)
{
    return mempool_put_ex(p, data, len, o, out);
}

int mempool_set_obj(mempool *p, uint32_t type, const void *obj,
                    const mempool_put_options *o, mempool_dref *out)
{
    return mempool_put_obj(p, type, obj, o, out);
}

int mempool_set_max_memsize(mempool *p, uint64_t bytes)
{
    return mempool_limit_set(p, MEMPOOL_LIMIT_MEMSIZE, bytes);
}

int mempool_set_max_disksize(mempool *p, uint64_t bytes)
{
    return mempool_limit_set(p, MEMPOOL_LIMIT_DISKSIZE, bytes);
}

int mempool_stats(mempool *p, struct mempool_stats *s)
{
    return mempool_stats_get(p, s);
}

int mempool_worker_stats(mempool *p, int worker,
                         struct mempool_worker_stats *out)
{
    return mempool_worker_stats_get(p, worker, out);
}
