/* SPDX-License-Identifier: MIT */
/*
 * pool.c - opening, closing and destroying a pool: the top of the library,
 * the one file that wires the layers together.
 *
 * Every other file only calls down (util <- core <- spill <- codec <- obs,
 * checked by tests/check_layers.sh). Opening needs all of them at once:
 * core maps and validates the arena and claims a slot, spill binds the
 * spill directory and starts the spiller, and core must be able to ask
 * spill to unlink files or make room (a reap during the slot claim may
 * already do so). So this file lives above all layers, in src/ beside
 * the handle (internal.h), and hands core the spill layer's operations
 * (p->spill_ops) instead of letting core call up. mempool_destroy() is
 * in destroy.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"
#include "keeper.h"

/* The rest of mempool_open() for MEMPOOL_OPEN_OBSERVE: no slot, no spiller,
 * no reaping. Liveness is still read with F_OFD_GETLK on the lock file,
 * which any open file description may do without holding (or disturbing)
 * a lock. An observer the lock file's mode keeps out (it may only read the
 * pool: lockfile.c) keeps lfd -1 and cannot tell: every attached worker
 * looks alive to it (mempool__slot_alive). */
static int observe_open(mempool *p, mempool **out)
{
    int rc;
    p->lfd = mempool__lock_open(p->name, p->hv.uuid, p->owner_uid, O_RDONLY);
    if (p->lfd < 0)
        p->lfd = -1;
    p->slot = -1;
    if ((rc = mempool__spill_bind(p))) {
        if (p->lfd >= 0)
            close(p->lfd);
        mempool__spill_fini(p);
        munmap(p->base, p->size);
        close(p->fd);
        free(p);
        return rc;
    }
    mempool__bind(p);
    p->spill_ops = &mempool__spill_ops;
    p->hand_ops = &mempool__hand_ops;
    mempool__register(p);
    *out = p;
    return 0;
}

int mempool_open(const char *name, const mempool_options *o, mempool **out)
{
    char path[sizeof(MP_SHM_DIR) + MEMPOOL_NAME_MAX + 16];
    mempool_options opts;
    bool created = false;
    mempool *p;
    int rc;

    if (!out)
        return -EINVAL;
    *out = NULL;
    if ((rc = mempool__shm_path(name, path, sizeof(path))) ||
        (rc = mempool__options_read(o, &opts)))
        return rc;
    o = &opts;
    if (!(p = calloc(1, sizeof(*p))))
        return -ENOMEM;
    snprintf(p->name, sizeof(p->name), "%s", name);
    p->observer = o->flags & MEMPOOL_OPEN_OBSERVE;
    p->any_owner = o->flags & MEMPOOL_OPEN_ANY_OWNER;
    p->huge = o->huge == MEMPOOL_HUGE_AUTO;
    p->back_inline = o->flags & MEMPOOL_OPEN_BACK_INLINE;
    p->back_ahead = o->flags & MEMPOOL_OPEN_BACK_AHEAD;
    p->spill_ops = &mempool__spill_ops;   /* a creator makes the directory */
    if ((rc = mempool__arena_open(p, path, name, o, &created)))
        goto fail_free;
    if (p->observer)
        return observe_open(p, out);
    if ((p->lfd = mempool__lock_open(name, p->hv.uuid, p->owner_uid,
                                     O_RDWR)) < 0) {
        rc = p->lfd;
        munmap(p->base, p->size);
        close(p->fd);
        goto fail_free;
    }
    mempool__bind(p);
    p->spill_ops = &mempool__spill_ops;   /* before the claim, which reaps */
    p->type_known = mempool__codec_known;
    p->hand_ops = &mempool__hand_ops;
    mempool__register(p);
    if ((rc = mempool__spill_bind(p)) ||
        (rc = mempool__claim_slot(p)) < 0)
        goto fail_unmap;
    if ((rc = mempool__spill_init(p, o, created)))
        goto fail_slot;
    mempool_reap(p);
    if (o->spiller && (rc = mempool__spiller_start(p)))
        goto fail_spill;
    *out = p;
    return 0;
fail_spill:                         /* the slot first: a reap may unlink */
fail_slot:
    mempool__leave_slot(p);
fail_unmap:
    mempool__spill_fini(p);
    mempool__unregister(p);
    munmap(p->base, p->size);
    close(p->lfd);
    close(p->fd);
fail_free:
    free(p);
    return rc;
}

int mempool_close(mempool *p)
{
    int rc;
    if (!p || !mempool__registered(p))
        return -EINVAL;             /* NULL, or closed already */
    rc = mempool__handle_ok(p);
    if (rc == 0 && !p->observer) {
        mempool__spiller_stop(p);
        mempool__keep_stop(p);      /* before the slot it looks after */
        mempool__leave_slot(p);     /* drops our pins, refs, reservations */
        mempool__spill_close(p);    /* our files, if the pool was destroyed */
        mempool__spill_fini(p);     /* a forked child has no threads to stop */
    } else if (rc == 0) {
        mempool__spill_fini(p);     /* observers hold only the io_lock */
    } else {
        free(p->spill);             /* a forked child: the engine and its
                                       thread are the parent's */
        mempool__keep_stop(p);      /* the same: frees only the copy */
    }
    mempool__unregister(p);         /* in a forked child fd is already shut */
    mempool__codecs_free(p);
    munmap(p->base, p->size);
    if (rc == 0) {
        close(p->lfd);
        close(p->fd);
    }
    mempool__handle_retire(p);      /* poisoned, freed some closes later */
    return 0;
}
