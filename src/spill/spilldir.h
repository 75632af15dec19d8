/* SPDX-License-Identifier: MIT */
/*
 * spilldir.h - the pool's spill directory (spilldir.c): making it at
 * creation, opening and proving it at attach, removing it at destroy.
 * Paths come from the header and are re-derived and checked; everything
 * after the open goes through the returned descriptor.
 */
#ifndef MEMPOOL_SPILLDIR_H
#define MEMPOOL_SPILLDIR_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* Directory and file modes for a pool whose shm object has mode @p pool. */
mode_t mempool__dir_mode(mode_t pool);
mode_t mempool__file_mode(mode_t pool);

/* Make "<base>/<name>" (@p dir, absolute) for a new pool: missing parts of
 * <base> 0755 (*made_base: the last one was made here), <name> fresh with
 * the pool's mode and group and a uuid marker. An earlier incarnation's
 * directory (ours) is emptied and replaced. 0, MEMPOOL_EUNSAFE (something
 * not ours is in the way: a symlink, another user's directory), -errno. */
int  mempool__dir_make(const char *dir, const char *name,
                       const uint64_t uuid[2], mode_t pool_mode, gid_t gid,
                       bool *made_base);
/* Open and prove the directory of the pool (@p uuid, owner @p uid): the
 * directory's fd and its parent's. 0, MEMPOOL_EUNSAFE, -errno. */
int  mempool__dir_open(const char *dir, const char *name,
                       const uint64_t uuid[2], uid_t uid, mode_t pool_mode,
                       int *dfd, int *up);
/* Destroy's part: prove, empty and remove the directory (and <base> when
 * @p made_base and empty). 0 also when it is already gone. */
int  mempool__dir_remove(const char *dir, const char *name,
                         const uint64_t uuid[2], uid_t uid, mode_t pool_mode,
                         bool made_base);
/* A handle of a destroyed pool at close: empty and remove its proven
 * directory @p dfd, entry @p name of @p up. */
void mempool__dir_release(int up, const char *name, int dfd, uid_t uid,
                          const uint64_t uuid[2]);
/* Unlink the spill files ("N-N", "N-N.tmp") in @p dfd; -EBUSY if some
 * could not be removed. */
int  mempool__dir_wipe(int dfd);

#endif /* MEMPOOL_SPILLDIR_H */
