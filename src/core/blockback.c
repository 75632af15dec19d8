/* SPDX-License-Identifier: MIT */
/*
 * blockback.c - backing a reserved block's pages outside the allocator
 * lock (issue 11 target 3).
 *
 * The allocator hands out the run of a large block while its pages may
 * still be holes (a new arena's, or ones mempool_trim() punched): their
 * page descriptors keep the punched flag, which is the crash-safe record
 * that they may be holes. The new owner - its ALLOC entry names the block,
 * so no other process frees, reuses or trims these pages meanwhile - backs
 * them here after the lock is released and before it writes a byte. Other
 * processes' allocations no longer queue behind the zeroing and huge-page
 * collapse of someone's large block (0.1-1.3 ms per 2 MiB on this VM, with
 * outliers of a second when the host has to fault fresh memory in).
 *
 * A page's flag is cleared only after the page is known to be backed
 * (fallocate() or MADV_COLLAPSE returned, or mincore() finds it in the shm
 * object), and only for the block's own pages, so a flag never says
 * "backed" of a hole:
 *   - a kill at any instruction leaves flags set on pages that may be
 *     backed already; whoever gets them next backs them again (a no-op).
 *     Reaping frees the block with its flags, and rebuild() keeps the flags
 *     of allocated pages;
 *   - a 2 MiB chunk shared with neighbouring pages is collapsed whole (a
 *     collapse keeps every byte, as khugepaged may do to any tmpfs page at
 *     any time), but only our pages' flags are cleared; the next owner of
 *     the neighbours finds them resident (mincore) and clears its own
 *     without backing anything.
 * The locked path (run_back() in alloc.c, for slab pages) may clear the
 * same flags after backing a whole chunk - also only of pages it has just
 * backed - so both sides use relaxed atomic loads and stores on them.
 */
#include <errno.h>
#include <sys/mman.h>

#include "failpoint.h"
#include "internal.h"

/* Are data pages [a, z) all flagged as maybe-holes? */
static bool own_punched(const mp_core *c, uint64_t a, uint64_t z)
{
    for (uint64_t k = a; k < z; k++)
        if (!MP_LD(c->pages[k].punched))
            return false;
    return true;
}

/* Data pages [a, z) are backed: say so. */
static void own_clear(const mp_core *c, uint64_t a, uint64_t z)
{
    for (uint64_t k = a; k < z; k++)
        MP_ST(c->pages[k].punched, 0);
}

/* Are data pages [a, z) (at most one chunk) all in the shm object? For a
 * shared file mapping mincore() answers from the page cache, whether or
 * not this process has mapped the pages. Page @p probe alone first (a
 * whole chunk costs ~30 us to ask): the caller knows which page is the
 * likeliest hole. */
bool mempool__resident(const mp_core *c, uint64_t a, uint64_t z,
                       uint64_t probe)
{
    unsigned char v[MP_CHUNK / MP_PAGE];
    uint8_t *s = c->base + c->data_off + a * MP_PAGE;
    if (z - a > sizeof v || probe < a || probe >= z ||
        mincore(s + (probe - a) * MP_PAGE, MP_PAGE, v) < 0 || !(v[0] & 1) ||
        mincore(s, (z - a) * MP_PAGE, v) < 0)
        return false;
    for (uint64_t i = 0; i < z - a; i++)
        if (!(v[i] & 1))
            return false;
    return true;
}

/* Collapse @p n adjacent chunks, the first holding our page @p f, our
 * pages of them being [f, z): huge pages, flags cleared. On failure the
 * flags stay and the 4 KiB pass backs the pages; -EINVAL means this
 * kernel cannot, and the handle stops asking. */
static void span_collapse(const mp_core *c, bool *huge, uint64_t f,
                          uint64_t z, uint64_t n)
{
    int rc = mempool__back_huge(c, f, n);
    if (rc == 0)
        own_clear(c, f, z);
    else if (rc == -EINVAL)
        MP_ST(*huge, false);
}

/* A share of a chunk smaller than this (a quarter of it) is backed with
 * 4 KiB pages, not by zeroing the whole chunk into a huge page: a block
 * whose first or last few pages spill into a new chunk (a new pool's
 * first 1 MiB object once the metadata ends just short of a chunk
 * boundary: 112 KiB over it) paid a collapse, its drain of every CPU's
 * page lists and 2 MiB of zeroing, ~250 us for a 1 MiB put, 2.5x its
 * copy. A later owner of a larger share still collapses the chunk (the
 * kernel copies these pages into the huge page); until then a reader
 * maps the sliver by 4 KiB pages. */
#define COLLAPSE_MIN_PAGES (MP_CHUNK / MP_PAGE / 4)

/* Does our share [a, z) of a chunk want a collapse? Already resident
 * pages (a neighbour's collapse, a trim that punched nothing here) are
 * just marked backed. */
static bool wants_collapse(const mp_core *c, uint64_t a, uint64_t z)
{
    uint64_t ca, cz;
    if (!own_punched(c, a, z))
        return false;                     /* partly backed: 4 KiB pass */
    if (mempool__resident(c, a, z, a)) {   /* new memory: the first page */
        own_clear(c, a, z);
        return false;
    }
    if (z - a < COLLAPSE_MIN_PAGES)
        return false;                     /* a sliver: 4 KiB pass */
    return mempool__chunk_of(c, a, &ca, &cz);
}

/* The huge pass over our pages [pg, end): one collapse per stretch of
 * adjacent chunks that want one. */
static void huge_pass(const mp_core *c, bool *huge, uint64_t pg,
                      uint64_t end)
{
    uint64_t f = 0, fz = 0, n = 0, a = pg, ca, cz;
    while (a < end) {
        (void)mempool__chunk_of(c, a, &ca, &cz);
        uint64_t z = cz < end ? cz : end;
        bool want = MP_LD(*huge) && wants_collapse(c, a, z);
        if (want && n) {
            fz = z;                             /* extends the stretch */
            n++;
        } else {
            if (n)
                span_collapse(c, huge, f, fz, n);
            f = a;
            fz = z;
            n = want;
        }
        a = z;
    }
    if (n)
        span_collapse(c, huge, f, fz, n);
}

bool mempool__all_backed(const mp_core *c, uint64_t pg, uint64_t end)
{
    for (uint64_t k = pg; k < end; k++)
        if (MP_LD(c->pages[k].punched))
            return false;
    return true;
}

int mempool__block_back(mp_core *c, bool *huge, uint64_t pg, uint64_t n)
{
    uint64_t end = pg + n;
    int rc;
    if (n == 0 || end > c->npages)
        return n ? -EINVAL : 0;
    if (mempool__all_backed(c, pg, end))
        return 0;                         /* the common case */
    if ((rc = MP_FP(back_block)))
        return rc;                        /* back.block=enospc */
    return mempool__range_back(c, huge, pg, end);
}

int mempool__range_back(const mp_core *c, bool *huge, uint64_t pg,
                        uint64_t end)
{
    if (mempool__all_backed(c, pg, end))
        return 0;
    if (MP_FP(back_chunk) == 0)
        huge_pass(c, huge, pg, end);
    return mempool__back_stretches(c, pg, end);
}

int mempool__back_stretches(const mp_core *c, uint64_t pg, uint64_t end)
{
    for (uint64_t i = pg, j; i < end; i = j) {
        j = i + 1;
        if (!MP_LD(c->pages[i].punched))
            continue;
        while (j < end && MP_LD(c->pages[j].punched))
            j++;
        if (MP_FP(back_pages) || mempool__back_pages(c, i, j - i))
            return -ENOSPC;
        own_clear(c, i, j);
    }
    return 0;
}
