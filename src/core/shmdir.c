/* SPDX-License-Identifier: MIT */
/*
 * shmdir.c - walking MP_SHM_DIR for the files of one pool name. A pool
 * is more than its shm object: a creator's private build file
 * ("mempool.<name>#init.<pid>.<uuid digits>", arena.c), the slot locks'
 * file ("#lock.<uuid>", lockfile.c) and a destroy's tombstone
 * ("#destroy.<uuid>", destroy.c). Each is found, and a dead process's
 * swept, by a walk over the names with its prefix: this one walk.
 */
#include <dirent.h>
#include <errno.h>
#include <string.h>

#include "internal.h"

int mempool__shm_each(const char *prefix,
                      int (*fn)(int dir, const char *entry, const char *rest,
                                void *arg),
                      void *arg)
{
    size_t n = strlen(prefix);
    DIR *d = opendir(MP_SHM_DIR);   /* its own position: walks may nest */
    struct dirent *de;
    int rc = 0;
    if (!d)
        return -errno;
    while (!rc && (de = readdir(d)))
        if (strncmp(de->d_name, prefix, n) == 0)
            rc = fn(dirfd(d), de->d_name, de->d_name + n, arg);
    closedir(d);
    return rc;
}
