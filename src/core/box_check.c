/* SPDX-License-Identifier: MIT */
/*
 * box_check.c - mempool_check()'s verdict on the box table: every held
 * box names an object entry, sits in its bucket (or the counted
 * overflow) and is held by a record; a box that looks orphaned is blamed
 * only if it stays one and no live worker announces it.
 */
#include <stdio.h>
#include <time.h>

#include "box.h"
#include "entry.h"
#include "internal.h"

/* fsck: an orphan is a failure only if it stays one and no live worker
 * announces it (a live receiver frees the box it took once it runs). */
static bool still_orphan(mempool *p, uint32_t b, uint64_t w)
{
    int8_t memo[MP_WORKERS];
    for (int i = 0; i < MP_WORKERS; i++)
        memo[i] = -1;
    for (int i = 0; i < 3; i++) {
        nanosleep(&(struct timespec){ 0, 2000000 }, NULL);
        if (atomic_load(&p->boxw[b]) != w ||
            mempool__box_referenced(p, b, w) ||
            mempool__box_announced(p, b, -1, memo, NULL))
            return false;
    }
    return true;
}

/* What is wrong with held box @p b (word @p w, item @p item), or NULL;
 * @p b's word is re-read before a verdict, so a box that moved meanwhile
 * is not blamed. */
static const char *box_fault(mempool *p, uint32_t b, uint64_t w,
                             uint64_t item)
{
    uint32_t idx = (uint32_t)(item >> 32);
    bool held = MP_BOX_ST(w) == MP_BOX_HELD;
    const mp_entry *e;
    if (MP_BOX_IDX1(w) == 0 || MP_BOX_IDX1(w) - 1 >= p->ntab ||
        (held && idx + 1 != MP_BOX_IDX1(w)))
        return atomic_load(&p->boxw[b]) == w ? "names no object entry"
                                              : NULL;
    if (b < ovf_base(p) && idx % nbuckets(p) != b / MP_BOX_BW &&
        atomic_load(&p->boxw[b]) == w)
        return "is outside its bucket";
    if (!held)
        return NULL;
    if (!mempool__box_referenced(p, b, w) && still_orphan(p, b, w))
        return "is held by no record";
    e = mp_entry_at(p, idx);
    if (MP_BOX_REF(w) && mp_entry_alive(mp_entry_word(e), (uint32_t)item) &&
        !(MP_LD(e->setflags) & MEMPOOL_PUT_REFCOUNTED))
        return "holds a reference to a plain object";
    return NULL;
}

int mempool__box_verify(mempool *p, char *why, size_t whylen)
{
    uint64_t ovf = 0;
    for (uint32_t b = 0; b < p->nbox; b++) {
        uint64_t w = atomic_load(&p->boxw[b]), item;
        const char *fault;
        if (!w)
            continue;
        if (b >= ovf_base(p))
            ovf++;
        item = atomic_load(&p->boxes[b].item);
        if ((fault = box_fault(p, b, w, item))) {
            snprintf(why, whylen, "box %u (entry %u) %s", b,
                     (unsigned)(item >> 32), fault);
            return MEMPOOL_ECORRUPT;
        }
    }
    if (ovf > atomic_load(&p->hand->ovf_used)) {
        snprintf(why, whylen, "%llu overflow boxes, count says %llu",
                 (unsigned long long)ovf,
                 (unsigned long long)atomic_load(&p->hand->ovf_used));
        return MEMPOOL_ECORRUPT;
    }
    return 0;
}
