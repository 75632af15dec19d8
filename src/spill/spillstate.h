/* SPDX-License-Identifier: MIT */
/*
 * spillstate.h - what one handle keeps for the spill layer: the spill
 * directory (opened and proven once, spilldir.c), the I/O engine that
 * writes files (io.c), the read-back mappings (mapcache.c), the
 * background spiller (spiller.c) and the candidates victim.c keeps.
 *
 * The handle (internal.h) holds only a pointer to it, to a type that is
 * incomplete there: core/ cannot name these fields, so it reaches them only
 * through the operations pool.c wires into p->spill_ops. mempool__spill_bind
 * makes it, mempool__spill_fini frees it (spill.c).
 */
#ifndef MEMPOOL_SPILLSTATE_H
#define MEMPOOL_SPILLSTATE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "layout.h"

struct mp_spill_state {
    pthread_mutex_t io_lock;   /* guards the lazy start of io and dirfd */
    struct mp_io *io;          /* this handle's I/O engine, or NULL */
    int           dirfd;       /* the pool's spill directory, opened and
                                  proven once at attach (spilldir.c), or -1 */
    int           updfd;       /* its parent, for removal after destroy */
    int           dir_err;     /* why dirfd is -1: MEMPOOL_EUNSAFE, -errno */
    uint32_t      file_mode;   /* spill file mode, from the pool's mode */
    char          spill_dir[MP_PATH_MAX];
    uint32_t      io_mode;     /* MEMPOOL_IO_* */
    bool          verify;      /* check payload crc when mapping a file */
    struct mp_mapcache *maps;
    struct mp_spiller *spiller;
    /* victim.c: entry indices of the best candidates left over by the
     * last sampled pass, offered again first by the next one */
    struct mp_victim_keep {
        _Atomic uint32_t busy;  /* a pass holds them (try-lock, no wait) */
        uint32_t n;
        uint32_t idx[16];
    } vkeep;
};

#endif /* MEMPOOL_SPILLSTATE_H */
