/* SPDX-License-Identifier: MIT */
/*
 * spillfile.c - the spill file format of spill.h: filling a header, and
 * opening a file written by the I/O engine as a validated read-only mapping.
 *
 * Everything in a file is untrusted (another process, a crash, a full disk
 * or a person may have left it), so mempool__file_map() checks before it
 * maps: the file is opened with O_NOFOLLOW (a planted symlink at the final
 * name is refused) and O_NONBLOCK (a planted FIFO cannot block us), must be
 * a regular file, its header is read with pread() and its size taken with
 * fstat() before anything is mapped, so a truncated file is reported as
 * MEMPOOL_ECORRUPT and never touched past its end (no SIGBUS). Error
 * mapping, in one place:
 *
 *   missing file                          -ENOENT
 *   symlink at the name (ELOOP)           MEMPOOL_ECORRUPT
 *   not a regular file, size != 4096+len,
 *   magic, version, header size, chunk
 *   shift, header crc, uuid/index/
 *   generation, a chunk crc (with verify) MEMPOOL_ECORRUPT
 *   read error on the header              -EIO
 *   anything else from open/mmap          -errno (-EACCES, -EMFILE, ...)
 *
 * A payload is checked only with @p verify; without it a flipped payload
 * bit goes unnoticed (the header crc still covers every header field and
 * every chunk crc). With it, every chunk is checked while mapping, before
 * any byte is handed out: the first bad chunk makes the map fail, so a
 * reader never sees a byte that was not checked. An I/O error while a
 * mapped page is read back is a SIGBUS, as with any mapping; verify touches
 * every page while mapping, which is when a bad disk would show.
 * mempool__file_map_seen() lets the caller skip the payload check of a
 * file it checked whole before, named by its mp_file_id (mapcache.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <mempool/mempool.h>
#include "spill.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "spill files are little-endian; mempool runs on little-endian hosts"
#endif

_Static_assert(offsetof(mp_file_header, version) == 8, "layout");
_Static_assert(offsetof(mp_file_header, header_bytes) == 12, "layout");
_Static_assert(offsetof(mp_file_header, uuid) == 16, "layout");
_Static_assert(offsetof(mp_file_header, idx) == 32, "layout");
_Static_assert(offsetof(mp_file_header, gen) == 36, "layout");
_Static_assert(offsetof(mp_file_header, len) == 40, "layout");
_Static_assert(offsetof(mp_file_header, type) == 48, "layout");
_Static_assert(offsetof(mp_file_header, flags) == 52, "layout");
_Static_assert(offsetof(mp_file_header, payload_crc) == 56, "layout");
_Static_assert(offsetof(mp_file_header, chunk_shift) == 56, "layout");
_Static_assert(offsetof(mp_file_header, header_crc) == 60, "layout");

#define MP_HCRC_OFF offsetof(mp_file_header, header_crc)

static const uint8_t mp_zero[MP_FILE_HDR];
static const uint8_t mp_empty;   /* what an empty payload's data points at */

/* crc32c of a 4096-byte header block with its header_crc field as zero. */
static uint32_t header_crc(const uint8_t *blk)
{
    uint32_t crc = mempool__crc32c(0, blk, MP_HCRC_OFF);

    crc = mempool__crc32c(crc, mp_zero, 4);
    return mempool__crc32c(crc, blk + MP_HCRC_OFF + 4,
                           MP_FILE_HDR - MP_HCRC_OFF - 4);
}

/* The least shift >= MP_FILE_CHUNK_SHIFT that cuts @p len bytes into at
 * most MP_FILE_MAXCHUNKS chunks. */
static uint32_t chunk_shift(uint64_t len)
{
    uint32_t s = MP_FILE_CHUNK_SHIFT;

    while (len && s < 63 && (len - 1) >> s >= MP_FILE_MAXCHUNKS)
        s++;
    return s;
}

void mempool__file_header(mp_file_header *h, const uint64_t uuid[2],
                          uint32_t idx, uint32_t gen, uint32_t type,
                          uint32_t flags, uint64_t len)
{
    memset(h, 0, sizeof *h);
    memcpy(h->magic, MP_FILE_MAGIC, sizeof h->magic);
    h->version = MP_FILE_VERSION;
    h->header_bytes = MP_FILE_HDR;
    if (uuid) {
        h->uuid[0] = uuid[0];
        h->uuid[1] = uuid[1];
    }
    h->idx = idx;
    h->gen = gen;
    h->len = len;
    h->type = type;
    h->flags = flags;
    h->chunk_shift = chunk_shift(len);
}

uint64_t mempool__file_chunk_bytes(const mp_file_header *h)
{
    return 1ull << h->chunk_shift;
}

uint64_t mempool__file_chunks(const mp_file_header *h)
{
    return h->len ? ((h->len - 1) >> h->chunk_shift) + 1 : 0;
}

void mempool__file_chunk_crc(uint8_t *blk, uint64_t i, uint32_t crc)
{
    memcpy(blk + sizeof(mp_file_header) + 4 * i, &crc, 4);
}

void mempool__file_seal(uint8_t *blk)
{
    uint32_t crc;

    memset(blk + MP_HCRC_OFF, 0, 4);
    crc = header_crc(blk);
    memcpy(blk + MP_HCRC_OFF, &crc, 4);
}

void mempool__file_block(uint8_t *blk, const mp_file_header *h,
                         const void *payload)
{
    uint64_t n = mempool__file_chunks(h), cb = mempool__file_chunk_bytes(h);

    memset(blk, 0, MP_FILE_HDR);
    memcpy(blk, h, sizeof *h);
    for (uint64_t i = 0; i < n; i++) {
        uint64_t rest = h->len - i * cb;

        mempool__file_chunk_crc(blk, i, mempool__crc32c(0,
                                (const uint8_t *)payload + i * cb,
                                (size_t)(rest < cb ? rest : cb)));
    }
    mempool__file_seal(blk);
}

/* Open @p path for reading, never following a final symlink or blocking. */
static int file_open(int dirfd, const char *path)
{
    int fd = openat(dirfd, path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
                                 O_CLOEXEC | O_NOCTTY);

    if (fd >= 0)
        return fd;
    if (errno == ELOOP)
        return MEMPOOL_ECORRUPT;
    return -errno;
}

/* Read the 4096-byte header block; the file is known to be that long. */
static int file_read_header(int fd, uint8_t *blk)
{
    size_t got = 0;

    while (got < MP_FILE_HDR) {
        ssize_t r = pread(fd, blk + got, MP_FILE_HDR - got, (off_t)got);

        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -EIO;
        if (r == 0)
            return MEMPOOL_ECORRUPT;   /* shrank under us */
        got += (size_t)r;
    }
    return 0;
}

/* Is the header block after the chunk table all zero (as written)? */
static bool chunks_zero_after(const uint8_t *blk, const mp_file_header *h)
{
    size_t from = sizeof *h + 4 * (size_t)mempool__file_chunks(h);

    return memcmp(blk + from, mp_zero, MP_FILE_HDR - from) == 0;
}

/* Check a header block against the file size and the expected identity. */
static int file_check(const uint8_t *blk, off_t size, mp_file_header *h,
                      const uint64_t uuid[2], uint32_t idx, uint32_t gen)
{
    memcpy(h, blk, sizeof *h);
    if (memcmp(h->magic, MP_FILE_MAGIC, sizeof h->magic) != 0 ||
        (h->version != 1 && h->version != MP_FILE_VERSION) ||
        h->header_bytes != MP_FILE_HDR || h->header_crc != header_crc(blk))
        return MEMPOOL_ECORRUPT;
    if (h->version == 2 && (h->chunk_shift != chunk_shift(h->len) ||
                            !chunks_zero_after(blk, h)))
        return MEMPOOL_ECORRUPT;
    if (h->len > (uint64_t)SIZE_MAX - MP_FILE_HDR ||
        h->len > (uint64_t)INT64_MAX - MP_FILE_HDR ||
        (uint64_t)size != MP_FILE_HDR + h->len)
        return MEMPOOL_ECORRUPT;
    if (uuid && (h->uuid[0] != uuid[0] || h->uuid[1] != uuid[1] ||
                 h->idx != idx || h->gen != gen))
        return MEMPOOL_ECORRUPT;
    return 0;
}

/* Does every chunk of @p data match the crc table of header block @p blk
 * (v1: the whole payload its crc)? */
static bool payload_ok(const uint8_t *blk, const mp_file_header *h,
                       const uint8_t *data)
{
    uint64_t n, cb;

    if (h->version == 1)
        return mempool__crc32c(0, data, (size_t)h->len) == h->payload_crc;
    n = mempool__file_chunks(h);
    cb = mempool__file_chunk_bytes(h);
    for (uint64_t i = 0; i < n; i++) {
        uint64_t rest = h->len - i * cb;
        uint32_t want;

        memcpy(&want, blk + sizeof *h + 4 * i, 4);
        if (mempool__crc32c(0, data + i * cb,
                            (size_t)(rest < cb ? rest : cb)) != want)
            return false;
    }
    return true;
}

/* Map a checked file and, with @p check, check its payload. */
static int file_mmap(int fd, const uint8_t *blk, bool check,
                     mp_file_map *out)
{
    size_t maplen = MP_FILE_HDR + (size_t)out->hdr.len;
    void *map;

    if (out->hdr.len == 0) {
        out->data = &mp_empty;
        out->checked = check;
        return check && out->hdr.version == 1 && out->hdr.payload_crc != 0
                   ? MEMPOOL_ECORRUPT : 0;
    }
    /* MAP_POPULATE only when checking: the check reads every page anyway,
     * and populating at mmap reads a cold file faster than faulting
     * (MADV_POPULATE_READ measured 15 % slower with the cache dropped). */
    map = mmap(NULL, maplen, PROT_READ,
               MAP_SHARED | (check ? MAP_POPULATE : 0), fd, 0);
    if (map == MAP_FAILED)
        return -errno;
    out->data = (const uint8_t *)map + MP_FILE_HDR;
    if (check && !payload_ok(blk, &out->hdr, out->data)) {
        munmap(map, maplen);
        out->data = NULL;
        return MEMPOOL_ECORRUPT;
    }
    out->checked = check;
    out->map = map;
    out->maplen = maplen;
    return 0;
}

/* Is @p st's ctime MP_FILE_SETTLE_NS older than CLOCK_REALTIME now? */
static bool settled(const struct stat *st)
{
    struct timespec now;
    int64_t age;

    if (clock_gettime(CLOCK_REALTIME, &now) != 0)
        return false;
    age = ((int64_t)now.tv_sec - (int64_t)st->st_ctim.tv_sec) * 1000000000ll
          + ((int64_t)now.tv_nsec - (int64_t)st->st_ctim.tv_nsec);
    return age >= MP_FILE_SETTLE_NS;
}

static void file_id(const struct stat *st, const mp_file_header *h,
                    mp_file_id *id)
{
    memset(id, 0, sizeof *id);
    id->dev = (uint64_t)st->st_dev;
    id->ino = (uint64_t)st->st_ino;
    id->size = (uint64_t)st->st_size;
    id->mtime_s = (uint64_t)st->st_mtim.tv_sec;
    id->mtime_ns = (uint64_t)st->st_mtim.tv_nsec;
    id->ctime_s = (uint64_t)st->st_ctim.tv_sec;
    id->ctime_ns = (uint64_t)st->st_ctim.tv_nsec;
    id->header_crc = h->header_crc;
}

int mempool__file_map_seen(int dirfd, const char *path,
                           const uint64_t uuid[2], uint32_t idx,
                           uint32_t gen, bool verify, mp_file_seen_fn seen,
                           void *ctx, mp_file_map *out)
{
    uint8_t blk[MP_FILE_HDR];
    struct stat st;
    int fd, ret;

    if (!out)
        return -EINVAL;
    memset(out, 0, sizeof *out);
    if (!path || !*path)
        return -EINVAL;
    fd = file_open(dirfd, path);
    if (fd < 0)
        return fd;
    if (fstat(fd, &st) != 0)
        ret = -errno;
    else if (!S_ISREG(st.st_mode) || st.st_size < (off_t)MP_FILE_HDR)
        ret = MEMPOOL_ECORRUPT;
    else
        ret = file_read_header(fd, blk);
    if (ret == 0)
        ret = file_check(blk, st.st_size, &out->hdr, uuid, idx, gen);
    if (ret == 0) {
        /* The id is taken before the mapping: a change after it makes
         * the id stale, never a checked id of unchecked bytes. */
        file_id(&st, &out->hdr, &out->id);
        out->settled = settled(&st);
        ret = file_mmap(fd, blk, verify && !(seen && seen(ctx, &out->id)),
                        out);
    }
    close(fd);
    if (ret != 0) {
        memset(out, 0, sizeof *out);
        return ret;
    }
    out->len = out->hdr.len;
    out->type = out->hdr.type;
    return 0;
}

int mempool__file_map(int dirfd, const char *path, const uint64_t uuid[2],
                      uint32_t idx, uint32_t gen, bool verify,
                      mp_file_map *out)
{
    return mempool__file_map_seen(dirfd, path, uuid, idx, gen, verify, NULL,
                                  NULL, out);
}

void mempool__file_unmap(mp_file_map *m)
{
    if (!m)
        return;
    if (m->map)
        munmap(m->map, m->maplen);
    memset(m, 0, sizeof *m);
}
