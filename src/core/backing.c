/* SPDX-License-Identifier: MIT */
/*
 * backing.c - giving arena data pages memory before the allocator hands
 * them out (issue 11 target 3: large objects without first-touch stalls).
 *
 * A new pool's data pages are holes in the shm object: creating one only
 * reserves its metadata, so opening stays fast and memory is committed as
 * the allocator first uses it. A page is given memory ("backed") before
 * anyone writes it - a slab page under the allocator lock (alloc.c
 * run_back()), a large block's pages by their owner right after the lock
 * is released (blockback.c); both also re-back pages mempool_trim()
 * punched - so a full tmpfs is an -ENOSPC from the set or reserve and never
 * a SIGBUS in a memcpy.
 *
 * Where a 2 MiB-aligned chunk of the object is to be backed whose pages
 * are all holes, the backer asks for one huge page (2 MiB folio):
 * fallocate() one page, then MADV_COLLAPSE the chunk (Linux 6.1; it works
 * on tmpfs even when /sys/kernel/mm/transparent_hugepage/shmem_enabled
 * says never - only "deny" refuses). The arena is mapped 2 MiB-aligned in
 * every process (arena.c), so each process then maps such a chunk with one
 * page-table entry on its first touch instead of 512 page faults: a fresh
 * process's large set or first read runs near memcpy speed (measured in
 * mempool-bench --section fresh). The price: memory is committed 2 MiB at
 * a time (at most one partly used chunk more than 4 KiB backing would
 * commit), and a later trim of part of a huge chunk has the kernel split
 * it (or, if it cannot, zero the range and keep the memory).
 *
 * A pool created with MEMPOOL_OPEN_RESERVE backs its whole data area the
 * same way before it is linked into place (mempool__back_all): the same
 * huge chunks, then 4 KiB pages for whatever was refused; its pages are
 * then flagged backed from the start, so no set ever backs anything.
 *
 * Anything the kernel refuses (no huge page free, an old kernel, the
 * option MEMPOOL_HUGE_OFF) falls back to fallocate() of the run's pages,
 * 4 KiB backing, as before. Both paths only add memory to the shm object,
 * never move bytes another process can see (MADV_COLLAPSE copies the
 * chunk's pages into the huge page with every mapping of them blocked,
 * which is how khugepaged treats any tmpfs file), so a process killed at
 * any instruction here leaves at worst a page backed that the allocator
 * still thinks is a hole, and it is backed again (a no-op) on next use.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>

#include "failpoint.h"
#include "internal.h"

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25     /* Linux 6.1 */
#endif

bool mempool__chunk_of(const mp_core *c, uint64_t k, uint64_t *first,
                       uint64_t *end)
{
    uint64_t off = c->data_off + k * MP_PAGE;
    uint64_t cs = off & ~(uint64_t)(MP_CHUNK - 1), ce = cs + MP_CHUNK;
    uint64_t data_end = c->data_off + c->npages * MP_PAGE;
    *first = cs >= c->data_off ? (cs - c->data_off) / MP_PAGE : 0;
    *end = ce <= data_end ? (ce - c->data_off) / MP_PAGE : c->npages;
    /* The first chunk may begin with metadata pages: collapsing copies
     * them into the huge page once (they are in use, never holes). */
    return ce <= c->size && ((uintptr_t)c->base & (MP_CHUNK - 1)) == 0;
}

int mempool__back_huge(const mp_core *c, uint64_t first, uint64_t n)
{
    uint64_t off = c->data_off + first * MP_PAGE;
    uint64_t cs = off & ~(uint64_t)(MP_CHUNK - 1);
    /* MADV_COLLAPSE refuses a range of holes only: give each chunk one
     * page. A fallocate() here, not a touch, so a full tmpfs is ENOSPC. */
    for (uint64_t i = 0; i < n; i++)
        if (fallocate(c->fd, 0, (off_t)(i ? cs + i * MP_CHUNK : off),
                      MP_PAGE) < 0)
            return -errno;
    if (madvise(c->base + cs, n * MP_CHUNK, MADV_COLLAPSE) < 0)
        return -errno;
    return 0;
}

int mempool__back_pages(const mp_core *c, uint64_t k, uint64_t n)
{
    int err = posix_fallocate(c->fd, (off_t)(c->data_off + k * MP_PAGE),
                              (off_t)(n * MP_PAGE));
    return err ? -err : 0;
}

int mempool__back_all(const mp_core *c, bool huge)
{
    uint64_t first, end;
    uint64_t cs = c->data_off & ~(uint64_t)(MP_CHUNK - 1);
    uint64_t n = (c->data_off + c->npages * MP_PAGE - cs) / MP_CHUNK;
    /* Whole chunks as huge pages where the kernel will; a refusal (or a
     * chunk it could not collapse) leaves holes that the 4 KiB pass below
     * fills. That pass is a no-op on pages already backed, and the one
     * that answers -ENOSPC for a /dev/shm that cannot hold the arena. */
    if (huge && n && mempool__chunk_of(c, 0, &first, &end) &&
        MP_FP(back_chunk) == 0)                  /* back.chunk: refused */
        (void)mempool__back_huge(c, 0, n);
    return mempool__back_pages(c, 0, c->npages);
}

void mempool__back_meta(int fd, uint8_t *base, uint64_t len)
{
    uint64_t n = len / MP_CHUNK;
    if (!n || ((uintptr_t)base & (MP_CHUNK - 1)) || MP_FP(back_chunk))
        return;                              /* back.chunk: refused */
    for (uint64_t i = 0; i < n; i++)
        if (fallocate(fd, 0, (off_t)(i * MP_CHUNK), MP_PAGE) < 0)
            return;
    (void)madvise(base, n * MP_CHUNK, MADV_COLLAPSE);
}
