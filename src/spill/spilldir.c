/* SPDX-License-Identifier: MIT */
/*
 * spilldir.c - the pool's spill directory: made by the pool, found again
 * without following symlinks, proven to be this pool's, then used only
 * through a descriptor; and its removal by destroy and by the last handles
 * of a destroyed pool.
 *
 * Nothing on the path is trusted. The directory "<base>/<name>" (absolute,
 * fixed at creation in the header) is reached by a walk from "/" that opens
 * each component with openat(O_DIRECTORY | O_NOFOLLOW): a symlink anywhere
 * stops it. The creator makes missing components of <base> (0755, so the
 * users of a shared pool can pass) and then <name> itself, fresh: an
 * existing <name> is only reused after it was proven an earlier incarnation
 * of this pool (ours, with our marker) and emptied and removed; anything
 * else there (another user's directory, a symlink, a file) is left alone and
 * the pool does not spill. <name> gets the pool's owner, group and mode
 * (0600 -> 0700, 0660 -> 2770 with the pool's group and setgid so every
 * file inherits it, 0666 -> 0777), set with fchmod so the umask cannot
 * narrow it, and a marker file ".mempool-pool" holding the pool's uuid.
 *
 * Every handle opens the directory once, at attach, and accepts it only if
 * it is a directory owned by the pool's owner, writable by group/other no
 * more than the pool's mode allows, and holds a marker owned by the pool's
 * owner naming this pool's uuid. From then on the handle touches files only
 * through that descriptor (openat/unlinkat/renameat), so a handle of a
 * destroyed pool can never reach the files of a re-created pool of the same
 * name: that pool has a new directory (the old one was removed, or it had
 * to be removed before the new one was made). A handle whose directory
 * failed the check does not spill or read files: MEMPOOL_EUNSAFE, counted
 * in mempool_stats.spill_refused; its objects stay in memory.
 *
 * Removal (destroy, and close of a handle whose pool was destroyed): the
 * same walk and proof, then unlinkat of the names mempool writes ("N-N",
 * "N-N.tmp") and the marker, rmdir of <name> after checking the entry is
 * still the proven directory, and rmdir of <base> if the pool made it and it
 * is empty. Idempotent: every step may be repeated after a kill.
 */
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "failpoint.h"
#include "internal.h"
#include "spilldir.h"

#define MP_MARKER ".mempool-pool"
#define MP_DIRFL  (O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
/* Components on the way need only search permission (a 0711 parent). */
#define MP_PATHFL (O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)

mode_t mempool__dir_mode(mode_t pool)
{
    mode_t m = 0700 | (pool & 077) | ((pool & 044) >> 2);
    return (pool & 060) ? m | S_ISGID : m;   /* files inherit the group */
}

mode_t mempool__file_mode(mode_t pool)
{
    return 0600 | (pool & 044);
}

/* Split "<base>/<name>" of the header: the last component must be the
 * pool's name (re-derived, never taken on trust). */
static int split(const char *dir, const char *name, char *base, size_t len)
{
    size_t n = strlen(dir), k = strlen(name);
    if (dir[0] != '/' || n <= k + 1 || dir[n - k - 1] != '/' ||
        strcmp(dir + n - k, name) != 0 || n - k >= len)
        return MEMPOOL_EUNSAFE;
    memcpy(base, dir, n - k - 1);
    base[n - k - 1] = '\0';
    return 0;
}

/* Walk absolute @p path from "/" without following symlinks; with
 * @p create make missing components (0755). The last directory's fd into
 * *fd, its parent's into *up (or -1), and whether we made the last one. */
static int walk(const char *path, bool create, int *fd, int *up, bool *made)
{
    char buf[MP_PATH_MAX];
    int cur = open("/", MP_PATHFL), prev = -1;
    char *save = NULL, *c;
    *made = false;
    if (cur < 0)
        return -errno;
    snprintf(buf, sizeof(buf), "%s", path);
    for (c = strtok_r(buf, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
        int next = openat(cur, c, MP_PATHFL);
        *made = false;
        if (next < 0 && errno == ENOENT && create) {
            if (mkdirat(cur, c, 0755) == 0) {
                next = openat(cur, c, MP_DIRFL);  /* ours: may read it */
                if (next >= 0) {
                    *made = true;
                    (void)fchmod(next, 0755);     /* whatever the umask */
                }
            } else if (errno == EEXIST) {         /* made meanwhile */
                next = openat(cur, c, MP_PATHFL);
            }
        }
        if (next < 0) {
            int rc = errno == ELOOP || errno == ENOTDIR ? MEMPOOL_EUNSAFE
                                                        : -errno;
            close(cur);
            if (prev >= 0)
                close(prev);
            return rc;
        }
        if (prev >= 0)
            close(prev);
        prev = cur;
        cur = next;
    }
    *fd = cur;
    *up = prev;
    return 0;
}

static void marker_text(const uint64_t uuid[2], char *buf, size_t len)
{
    snprintf(buf, len, "mempool pool %016llx%016llx\n",
             (unsigned long long)uuid[0], (unsigned long long)uuid[1]);
}

/* The marker in @p dfd: 1 it names @p uuid and is a regular file of
 * @p uid not writable by others, 0 it is something else, -ENOENT none. */
static int marker_is(int dfd, uid_t uid, const uint64_t uuid[2])
{
    char want[64], got[64];
    struct stat st;
    ssize_t n;
    int fd = openat(dfd, MP_MARKER, O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
                                    O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return errno == ENOENT ? -ENOENT : 0;
    marker_text(uuid, want, sizeof(want));
    n = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == uid &&
                !(st.st_mode & 022)
            ? pread(fd, got, sizeof(got) - 1, 0) : -1;
    close(fd);
    return n == (ssize_t)strlen(want) && !memcmp(got, want, (size_t)n);
}

/* Is @p dfd the directory of the pool with @p uuid owned by @p uid? */
static int prove(int dfd, uid_t uid, mode_t pool_mode, const uint64_t uuid[2])
{
    struct stat st;
    if (fstat(dfd, &st) < 0)
        return -errno;
    if (!S_ISDIR(st.st_mode) || st.st_uid != uid ||
        (st.st_mode & 022 & ~mempool__dir_mode(pool_mode)))
        return MEMPOOL_EUNSAFE;
    return marker_is(dfd, uid, uuid) == 1 ? 0 : MEMPOOL_EUNSAFE;
}

static bool spill_name(const char *n)
{
    const char *s = n;
    if (*s < '0' || *s > '9')
        return false;
    while (*s >= '0' && *s <= '9')
        s++;
    if (*s++ != '-' || *s < '0' || *s > '9')
        return false;
    while (*s >= '0' && *s <= '9')
        s++;
    return *s == '\0' || strcmp(s, ".tmp") == 0;
}

int mempool__dir_wipe(int dfd)
{
    int fd = openat(dfd, ".", MP_DIRFL), left = 0, seen = 0;
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    struct dirent *de;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return -errno;
    }
    while ((de = readdir(d))) {
        if (!spill_name(de->d_name))
            continue;
        seen++;
        MP_FP(destroy_wipe);
        if (unlinkat(dfd, de->d_name, 0) < 0 && errno != ENOENT)
            left++;
    }
    closedir(d);
    return left ? -EBUSY : seen;
}

/* Remove entry @p name of @p up if it still is directory @p dfd. */
static int rmdir_same(int up, const char *name, int dfd)
{
    struct stat a, b;
    if (fstat(dfd, &a) < 0 ||
        fstatat(up, name, &b, AT_SYMLINK_NOFOLLOW) < 0)
        return -errno;
    if (a.st_ino != b.st_ino || a.st_dev != b.st_dev)
        return -ESTALE;
    return unlinkat(up, name, AT_REMOVEDIR) < 0 ? -errno : 0;
}

/* Empty the proven directory @p dfd and remove it from @p up. A file
 * written meanwhile by a handle of the pool makes rmdir fail: try again.
 * Entries mempool never writes (a user's own files) are kept, and with
 * them the directory: -ENOTEMPTY once no spill file is left. */
static int remove_dir(int up, const char *name, int dfd)
{
    int rc = 0;
    for (int i = 0; i < 4; i++) {
        int seen = mempool__dir_wipe(dfd);
        (void)unlinkat(dfd, MP_MARKER, 0);
        if ((rc = rmdir_same(up, name, dfd)) != -ENOTEMPTY || seen == 0)
            break;
    }
    return rc == -ENOENT ? 0 : rc;
}

/* The base directory, if the pool made it and it is empty now. */
static void remove_base(const char *base, int up_of_base, int base_fd)
{
    const char *leaf = strrchr(base, '/');
    if (leaf && leaf[1] && up_of_base >= 0)
        (void)rmdir_same(up_of_base, leaf + 1, base_fd);
}

/* An earlier incarnation's directory (or one the user made) at @p name
 * under @p bfd: used only if ours and not writable by others. It is
 * emptied of spill files and removed, so the new pool gets a new directory
 * that no handle of the old one holds; if the user keeps own files in it,
 * it stays (*dfd: handles of the old pool stop touching it once their pool
 * is gone, see spill.c). Anything else at the name is not touched. 0 with
 * *dfd -1 (nothing there now) or the kept directory, or an error. */
static int clear_old(int bfd, const char *name, mode_t pool_mode, int *dfd)
{
    struct stat st;
    int old, rc;
    *dfd = -1;
    if (fstatat(bfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
        return 0;
    old = openat(bfd, name, MP_DIRFL);
    rc = old < 0 || fstat(old, &st) < 0 || st.st_uid != geteuid() ||
                 (st.st_mode & 022 & ~mempool__dir_mode(pool_mode))
             ? MEMPOOL_EUNSAFE
             : remove_dir(bfd, name, old);
    if (rc == -ENOTEMPTY) {
        *dfd = old;                       /* the user's files stay */
        return 0;
    }
    if (old >= 0)
        close(old);
    return rc;
}

/* Give new directory @p dfd the pool's group and mode and its marker file
 * naming pool @p uuid. 0 or -errno. */
static int dir_finish(int dfd, const uint64_t uuid[2], mode_t pool_mode,
                      gid_t gid)
{
    char txt[64];
    int mfd, rc = 0;
    if ((pool_mode & 060) && fchown(dfd, (uid_t)-1, gid) < 0)
        return -errno;
    if (fchmod(dfd, mempool__dir_mode(pool_mode)) < 0)
        return -errno;
    mfd = openat(dfd, MP_MARKER, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
                                 O_CLOEXEC, 0600);
    if (mfd < 0)
        return -errno;
    marker_text(uuid, txt, sizeof(txt));
    if (write(mfd, txt, strlen(txt)) != (ssize_t)strlen(txt) ||
        fchmod(mfd, 0644) < 0)
        rc = errno ? -errno : -EIO;
    close(mfd);
    return rc;
}

int mempool__dir_make(const char *dir, const char *name, const uint64_t uuid[2],
                      mode_t pool_mode, gid_t gid, bool *made_base)
{
    char base[MP_PATH_MAX];
    int bfd, up, dfd, rc;
    if ((rc = split(dir, name, base, sizeof(base))) ||
        (rc = walk(base, true, &bfd, &up, made_base)))
        return rc;
    if (up >= 0)
        close(up);
    if ((rc = clear_old(bfd, name, pool_mode, &dfd)) == 0 && dfd < 0 &&
        mkdirat(bfd, name, 0700) < 0)
        rc = -errno;
    if (rc == 0 && dfd < 0 && (dfd = openat(bfd, name, MP_DIRFL)) < 0)
        rc = -errno;
    close(bfd);
    if (rc)
        return rc;
    rc = dir_finish(dfd, uuid, pool_mode, gid);
    close(dfd);
    return rc;
}

int mempool__dir_open(const char *dir, const char *name,
                      const uint64_t uuid[2], uid_t uid, mode_t pool_mode,
                      int *dfd_out, int *up_out)
{
    char base[MP_PATH_MAX];
    int bfd, up, dfd, rc;
    bool made;
    *dfd_out = *up_out = -1;
    if ((rc = split(dir, name, base, sizeof(base))) ||
        (rc = walk(base, false, &bfd, &up, &made)))
        return rc;
    if (up >= 0)
        close(up);
    dfd = openat(bfd, name, MP_DIRFL);
    if (dfd < 0) {
        rc = errno == ELOOP || errno == ENOTDIR ? MEMPOOL_EUNSAFE : -errno;
        close(bfd);
        return rc;
    }
    if ((rc = prove(dfd, uid, pool_mode, uuid))) {
        close(dfd);
        close(bfd);
        return rc;
    }
    *dfd_out = dfd;
    *up_out = bfd;
    return 0;
}

int mempool__dir_remove(const char *dir, const char *name,
                        const uint64_t uuid[2], uid_t uid, mode_t pool_mode,
                        bool made_base)
{
    char base[MP_PATH_MAX];
    int bfd, up, dfd, rc;
    bool made;
    if ((rc = split(dir, name, base, sizeof(base))) ||
        (rc = walk(base, false, &bfd, &up, &made)))
        return rc == -ENOENT ? 0 : rc;
    dfd = openat(bfd, name, MP_DIRFL);
    rc = dfd >= 0               ? prove(dfd, uid, pool_mode, uuid)
         : errno == ENOENT      ? 0
         : errno == ELOOP || errno == ENOTDIR ? MEMPOOL_EUNSAFE : -errno;
    if (dfd >= 0 && rc == 0)
        rc = remove_dir(bfd, name, dfd);
    if (rc == -ENOTEMPTY)
        rc = 0;                   /* only the user's own files are left */
    if (dfd >= 0)
        close(dfd);
    if (rc == 0 && made_base)
        remove_base(base, up, bfd);
    close(bfd);
    if (up >= 0)
        close(up);
    return rc;
}

void mempool__dir_release(int up, const char *name, int dfd, uid_t uid,
                          const uint64_t uuid[2])
{
    /* No marker: destroy took it, the files are still ours to remove.
     * Another one: a new incarnation reuses the directory: not ours. */
    if (marker_is(dfd, uid, uuid) != 0)
        (void)remove_dir(up, name, dfd);
}
