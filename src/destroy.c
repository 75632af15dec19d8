/* SPDX-License-Identifier: MIT */
/*
 * destroy.c - mempool_destroy(): removing a pool, restartably, without
 * trusting anything the arena says. At the top of the library beside
 * pool.c, since it needs core (the header) and spill (the directory).
 *
 * 1. The object is renamed to a tombstone "mempool.<name>#destroy.<uuid>":
 *    the name is free at once (a new pool may be created), '#' keeps it out
 *    of every listing and of sweep_builds(), and handles still attached see
 *    their object unlinked from its name (they stop spilling, spill.c).
 * 2. The spill directory is proven and emptied (spill/spilldir.c): the
 *    path from the header is re-derived, walked without symlinks and must
 *    be owned by the object's owner and hold this pool's uuid marker;
 *    anything else is left untouched.
 * 3. The pool's lock file (same uuid: lockfile.c), then the tombstone, are
 *    unlinked last.
 * A destroy killed anywhere leaves a tombstone; the next destroy of the
 * name finishes every tombstone it finds (and answers 0, not -ENOENT).
 * Whatever sits at the name that is not a pool (a FIFO, a corrupt arena)
 * is opened O_NONBLOCK, never read, and removed the same way.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "spilldir.h"

#define MP_OPEN_ANY (O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY)

/* The header of regular file @p fd, if it has a pool's magic. */
static bool pool_header(int fd, struct stat *st, mp_header *h)
{
    return fstat(fd, st) == 0 && S_ISREG(st->st_mode) &&
           pread(fd, h, sizeof(*h), 0) == (ssize_t)sizeof(*h) &&
           h->magic == MP_MAGIC;
}

static int finish_tomb(int shm, const char *tomb, const char *name)
{
    struct stat st;
    mp_header h;
    int rc = 0, fd = openat(shm, tomb, MP_OPEN_ANY);
    if (fd >= 0 && pool_header(fd, &st, &h) &&
        memchr(h.spill_dir, '\0', sizeof(h.spill_dir)))
        rc = mempool__dir_remove(h.spill_dir, name, h.uuid, st.st_uid,
                                 st.st_mode & 0777,
                                 h.dir_flags & MP_DIR_MADE_BASE);
    if (fd >= 0)
        close(fd);
    if (rc == MEMPOOL_EUNSAFE)
        rc = 0;               /* not the pool's directory: never touched */
    /* The arena goes even if the directory could not be reached (its
     * memory is worth more than a retry); only a kill leaves the tomb.
     * Its lock file (lockfile.c) first: a kill between leaves the tomb,
     * and so a next destroy that finds it. */
    mempool__lock_unlink_tomb(shm, tomb, name);
    if (unlinkat(shm, tomb, 0) < 0 && errno != ENOENT && !rc)
        rc = -errno;
    return rc;
}

/* Rename the live object to its tombstone (name into @p tomb). */
static int bury(int shm, const char *name, char *tomb, size_t len)
{
    char live[MEMPOOL_NAME_MAX + 16];
    uint64_t id[2] = { 0, 0 };
    struct stat st;
    mp_header h;
    int fd;
    snprintf(live, sizeof(live), "mempool.%s", name);
    fd = openat(shm, live, MP_OPEN_ANY);
    if (fd < 0 && errno == ENOENT)
        return -ENOENT;
    if (fd >= 0 && pool_header(fd, &st, &h))
        memcpy(id, h.uuid, sizeof(id));
    else if (getrandom(id, sizeof(id), 0) != (ssize_t)sizeof(id))
        id[0] = (uint64_t)getpid();
    if (fd >= 0)
        close(fd);
    snprintf(tomb, len, "mempool.%s#destroy.%016llx%016llx", name,
             (unsigned long long)id[0], (unsigned long long)id[1]);
    return renameat(shm, live, shm, tomb) < 0 ? -errno : 0;
}

/* The tombstones a destroy finished, and the first error. */
struct tombs {
    const char *name;
    int found, rc;
};

/* Finish tombstone @p entry (a mempool__shm_each step). */
static int finish_one(int dir, const char *entry, const char *rest, void *arg)
{
    struct tombs *t = arg;
    int r = finish_tomb(dir, entry, t->name);
    (void)rest;
    t->found++;
    if (r && !t->rc)
        t->rc = r;
    return 0;
}

int mempool_destroy(const char *name)
{
    char prefix[MEMPOOL_NAME_MAX + 32], tomb[MEMPOOL_NAME_MAX + 64];
    struct tombs t = { .name = name };
    int shm, rc = mempool__name_ok(name);
    if (rc)
        return rc;
    if ((shm = open(MP_SHM_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        return -errno;
    rc = bury(shm, name, tomb, sizeof(tomb));
    close(shm);
    t.found = rc == 0;
    if (rc && rc != -ENOENT)
        return rc;
    /* Finish every tombstone of the name: ours and killed destroys'. */
    snprintf(prefix, sizeof(prefix), "mempool.%s#destroy.", name);
    (void)mempool__shm_each(prefix, finish_one, &t);
    return t.rc ? t.rc : t.found ? 0 : -ENOENT;
}
