/* SPDX-License-Identifier: MIT */
/*
 * options.c - mempool_options: the defaults, and reading a caller's struct
 * by its size field so the struct can grow without breaking the ABI.
 *
 * A program built against an older header passes a shorter struct: the
 * library reads only the fields its size covers and takes the defaults for
 * the rest. A program built against a newer header passes a longer one: it
 * is accepted when every byte this library does not know is zero (a field
 * left at its default), the rule of the Linux clone3()/openat2() structs.
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "internal.h"

#define FIELD_END(f) (offsetof(mempool_options, f) + sizeof(((mempool_options *)0)->f))

/* Every size a caller may pass: the end of one of the fields, or the
 * whole struct (the last field may be followed by tail padding). */
static const size_t field_ends[] = {
    FIELD_END(flags),       FIELD_END(arena_bytes),  FIELD_END(max_memsize),
    FIELD_END(spill_dir),   FIELD_END(mode),         FIELD_END(reserved),
    FIELD_END(max_objects), FIELD_END(max_disksize), FIELD_END(policy),
    FIELD_END(io_mode),     FIELD_END(evict_wait_ms), FIELD_END(spiller),
    FIELD_END(huge),
    /* sizeof before max_refs (tail padding after huge) */
    offsetof(mempool_options, max_refs),
    FIELD_END(max_refs),
};

void mempool_options_init(mempool_options *o)
{
    if (!o)
        return;
    memset(o, 0, sizeof(*o));
    o->size = (uint32_t)sizeof(*o);
    o->arena_bytes = MEMPOOL_DEFAULT_ARENA_BYTES;
    o->spill_dir = ".mempool";
    o->mode = 0600;
    o->flags = MEMPOOL_OPEN_CREATE;
    o->policy = MEMPOOL_POLICY_LRU;
    o->io_mode = MEMPOOL_IO_AUTO;
    o->evict_wait_ms = 100;
    o->spiller = 1;
}

static int check_size(const mempool_options *o)
{
    if (o->size > sizeof(*o)) {
        const unsigned char *tail = (const unsigned char *)o + sizeof(*o);
        for (size_t i = 0; i < o->size - sizeof(*o); i++)
            if (tail[i])
                return -E2BIG;     /* a newer field this library ignores */
        return 0;
    }
    for (size_t i = 0; i < sizeof(field_ends) / sizeof(field_ends[0]); i++)
        if (o->size == field_ends[i])
            return 0;
    return -EINVAL;                /* 0 (not initialised) or mid-field */
}

static int check_values(const mempool_options *o)
{
    if (o->flags & ~(MEMPOOL_OPEN_CREATE | MEMPOOL_OPEN_EXCL |
                     MEMPOOL_OPEN_NOVERIFY | MEMPOOL_OPEN_OBSERVE |
                     MEMPOOL_OPEN_ANY_OWNER | MEMPOOL_OPEN_RESERVE |
                     MEMPOOL_OPEN_BACK_INLINE | MEMPOOL_OPEN_BACK_AHEAD))
        return -EINVAL;
    if ((o->flags & MEMPOOL_OPEN_BACK_INLINE) &&
        (o->flags & MEMPOOL_OPEN_BACK_AHEAD))
        return -EINVAL;
    if ((o->flags & MEMPOOL_OPEN_OBSERVE) && (o->flags & MEMPOOL_OPEN_CREATE))
        return -EINVAL;
    if (o->mode & ~0777u || o->policy > MEMPOOL_POLICY_MRU ||
        o->io_mode > MEMPOOL_IO_PWRITE || o->evict_wait_ms > 3600000u ||
        o->huge > MEMPOOL_HUGE_OFF ||
        o->reserved || o->max_refs > MEMPOOL_MAX_REFS)
        return -EINVAL;
    return 0;
}

int mempool__options_read(const mempool_options *in, mempool_options *out)
{
    int rc;
    mempool_options_init(out);
    if (!in)
        return 0;
    if ((rc = check_size(in)))
        return rc;
    memcpy(out, in, in->size < sizeof(*out) ? in->size : sizeof(*out));
    out->size = (uint32_t)sizeof(*out);
    return check_values(out);
}
