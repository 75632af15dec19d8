/* SPDX-License-Identifier: MIT */
/*
 * lockfile.c - the pool's lock file /dev/shm/mempool.<name>#lock.<uuid>,
 * which carries the OFD locks workers hold: each slot's (liveness and
 * reaping, worker.c) and the spiller's (spiller.c).
 *
 * Why not on the shm object, as up to session 11: whoever may open a file
 * for reading may take OFD read locks on any of its bytes, and a read lock
 * keeps every write lock out. A user given read access to observe a pool
 * (mode 0644) could so keep new workers out (-EUSERS) and keep a dead
 * worker's slot from ever being reaped (check_review12 reader_lock). The
 * lock file grants only the pool's writers: read-write to each class the
 * pool's mode lets write, nothing to the others, so a reader cannot open
 * it. (A writer may lock it, but a writer may damage the whole arena
 * anyway: README "Security model".)
 *
 * The creator makes it before linking the pool, so every attacher, and an
 * attacher finishing a dead creator's build, finds it. It is named by the
 * pool's random uuid, so nobody can make it first, and must be owned by
 * the pool's owner (or root, who made the pool before a chown). destroy
 * removes it beside the tombstone of the same uuid (destroy.c); one left
 * by a creator killed before linking goes at the next create of the name
 * (mempool__lock_sweep). The mode is fixed at creation: a chmod of the
 * pool later does not change who may be a worker.
 *
 * The init lock stays on the shm object: an attacher needs it before it
 * has read the uuid, and waits for it a bounded time (arena.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#define LOCK_TAG "#lock."

/* "mempool.<name>#lock.<uuid as 32 hex digits>", relative to MP_SHM_DIR;
 * the tombstone of the same pool is "...#destroy.<the same digits>". */
static void lock_name(char *out, size_t len, const char *name,
                      const uint64_t uuid[2])
{
    snprintf(out, len, "mempool.%s" LOCK_TAG "%016llx%016llx", name,
             (unsigned long long)uuid[0], (unsigned long long)uuid[1]);
}

/* Read-write for the owner and for each class the pool lets write. */
static mode_t lock_mode(mode_t pool)
{
    return 0600 | ((pool & 0020) ? 0060 : 0) | ((pool & 0002) ? 0006 : 0);
}

int mempool__lock_create(const char *name, const uint64_t uuid[2],
                         mode_t pool_mode)
{
    char path[sizeof(MP_SHM_DIR) + MEMPOOL_NAME_MAX + 64];
    size_t n = (size_t)snprintf(path, sizeof(path), MP_SHM_DIR "/");
    int fd, rc = 0;
    lock_name(path + n, sizeof(path) - n, name, uuid);
    fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    if (fchmod(fd, lock_mode(pool_mode)) < 0) {
        rc = -errno;
        unlink(path);
    }
    close(fd);
    return rc;
}

void mempool__lock_unlink(const char *name, const uint64_t uuid[2])
{
    char path[sizeof(MP_SHM_DIR) + MEMPOOL_NAME_MAX + 64];
    size_t n = (size_t)snprintf(path, sizeof(path), MP_SHM_DIR "/");
    lock_name(path + n, sizeof(path) - n, name, uuid);
    unlink(path);
}

int mempool__lock_open(const char *name, const uint64_t uuid[2], uid_t owner,
                       int flags)
{
    char path[sizeof(MP_SHM_DIR) + MEMPOOL_NAME_MAX + 64];
    size_t n = (size_t)snprintf(path, sizeof(path), MP_SHM_DIR "/");
    struct stat st;
    int fd;
    lock_name(path + n, sizeof(path) - n, name, uuid);
    fd = open(path, flags | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0)
        return errno == ELOOP ? MEMPOOL_ECORRUPT : -errno;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
        (st.st_uid != owner && st.st_uid != 0)) {
        close(fd);
        return MEMPOOL_ECORRUPT;
    }
    return fd;
}

/* A build file of the pool whose uuid[1] ends in the digits at @p arg. */
static int is_build(int dir, const char *entry, const char *rest, void *arg)
{
    size_t l = strlen(rest);
    (void)dir;
    (void)entry;
    return l >= 9 && strcmp(rest + l - 9, arg) == 0;
}

/* Is lock file @p de (of pool @p name, uuid digits @p hex) still some
 * pool's? Its build file first, then the public pool: a creator unlinks
 * its build file only after linking, so a lock whose build file is gone
 * and whose uuid is not the public pool's is a dead creator's. */
static bool lock_in_use(int dir, const char *name, const char *hex)
{
    char pre[MEMPOOL_NAME_MAX + 32], tail[16];
    bool used;
    mp_header h;
    int fd;
    snprintf(pre, sizeof(pre), "mempool.%s#init.", name);
    snprintf(tail, sizeof(tail), ".%.8s", hex + 24);  /* uuid[1]'s low half */
    if (mempool__shm_each(pre, is_build, tail))
        return true;                  /* found, or cannot tell: keep it */
    snprintf(pre, sizeof(pre), "mempool.%s", name);
    fd = openat(dir, pre, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return errno != ENOENT;
    used = false;
    if (pread(fd, &h, sizeof(h), 0) == (ssize_t)sizeof(h) &&
        h.magic == MP_MAGIC) {
        char now[40];
        snprintf(now, sizeof(now), "%016llx%016llx",
                 (unsigned long long)h.uuid[0], (unsigned long long)h.uuid[1]);
        used = strcmp(now, hex) == 0;
    }
    close(fd);
    return used;
}

/* Unlink lock file @p entry of pool @p arg (its uuid digits @p rest) if
 * no pool is its. Only our own regular files: root never sweeps another
 * user's. */
static int sweep_lock(int dir, const char *entry, const char *rest, void *arg)
{
    struct stat st;
    if (strlen(rest) == 32 &&
        fstatat(dir, entry, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
        S_ISREG(st.st_mode) && st.st_uid == geteuid() &&
        !lock_in_use(dir, arg, rest))
        unlinkat(dir, entry, 0);
    return 0;
}

void mempool__lock_sweep(const char *name)
{
    char pre[MEMPOOL_NAME_MAX + 32];
    snprintf(pre, sizeof(pre), "mempool.%s" LOCK_TAG, name);
    (void)mempool__shm_each(pre, sweep_lock, (void *)name);
}

void mempool__lock_unlink_tomb(int dir, const char *tomb, const char *name)
{
    char lk[MEMPOOL_NAME_MAX + 64];
    size_t n = strlen("mempool.") + strlen(name) + strlen("#destroy.");
    if (strlen(tomb) <= n)
        return;
    snprintf(lk, sizeof(lk), "mempool.%s" LOCK_TAG "%s", name, tomb + n);
    unlinkat(dir, lk, 0);
}
