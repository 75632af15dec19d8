/* SPDX-License-Identifier: MIT */
/*
 * fuzz_attach_base.h - the real arena image that fuzz_attach mutates, built
 * the same way by the target and by the seed generator (fuzz_seeds.c), so
 * the committed seeds are header pages of exactly that image.
 */
#ifndef MEMPOOL_FUZZ_ATTACH_BASE_H
#define MEMPOOL_FUZZ_ATTACH_BASE_H

#include <stdint.h>

#include "fuzz_params.h"

#define FA_MAX_FILES 8

typedef struct fa_file {
    uint32_t idx, gen, type;
    uint64_t len;
    uint8_t *payload;          /* the spill file's bytes after its header */
} fa_file;

typedef struct fa_base {
    uint8_t *image;            /* the whole shm object */
    uint64_t size;
    uint64_t reg_off[FA_NREG], reg_len[FA_NREG];   /* FA_REG_* regions */
    uint64_t spill_dir_off;    /* offsetof the header's spill_dir field */
    uint64_t spill_dir_len;
    uint64_t lock_off, lock_len;  /* the allocator mutex in the header */
    fa_file  files[FA_MAX_FILES]; /* the spill files of its objects */
    int      nfiles;
} fa_base;

/*
 * Build a pool @p name (FA_ARENA_BYTES, FA_MAX_OBJECTS, spill files under
 * @p spill_root) holding objects in every state - in memory, empty, page
 * run, refcounted with a reference, spilled, copied to disk, deleted but
 * pinned, reserved and unpublished, typed, freed - held by two workers,
 * snapshot its shm object and spill files into @p out, then close and
 * destroy it. Returns 0 or a negative error (printed).
 */
int fa_build_base(const char *name, const char *spill_root, fa_base *out);

#endif /* MEMPOOL_FUZZ_ATTACH_BASE_H */
