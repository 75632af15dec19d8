/* SPDX-License-Identifier: MIT */
/*
 * fuzz_spillfile.c - libFuzzer target: spill and saved files mapped back
 * (docs/scenarios.md S40-S43).
 *
 * Input (fuzz_params.h): one FLAGS byte, then the file's bytes. The flags
 * can make the harness repair what random bytes rarely get right - the
 * header crc, the payload crc, the size (4096 + the header's length) - so
 * mutations reach the checks behind them; choose verify, the identity the
 * caller expects (the header's own uuid/idx/gen, or another), and what the
 * name is: the file, a symlink to it, a FIFO or a directory.
 *
 * The file is mapped with the internal mempool__file_map() (src/spill.h)
 * and, with FS_PUBLIC, through mempool_get_file() on a pool of this
 * process. A successful map must describe the file (size 4096 + len, the
 * header's type) and every byte of its payload is read; a symlink or
 * anything but a regular file must be refused; with verify, every chunk crc
 * (v1: the payload crc) must match. Errors are fine; a crash, SIGBUS, a hang (on the FIFO) or a
 * broken promise traps.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mempool/mempool.h>
#include "spill.h"
#include "fuzz_params.h"
#include "helpers_base.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FAIL(...) do { fprintf(stderr, "fuzz_spillfile: " __VA_ARGS__); \
                       fputc('\n', stderr); __builtin_trap(); } while (0)

static char root[64], file[128], name[128], pool[64];
static mempool *P;
static volatile uint8_t sink;

static void touch(const void *p, uint64_t n)
{
    const uint8_t *b = p;
    uint8_t x = 0;

    for (uint64_t i = 0; i < n; i++)
        x ^= b[i];
    sink ^= x;
}

static void write_file(const char *path, const uint8_t *b, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

    if (fd < 0)
        FAIL("%s: %s", path, strerror(errno));
    while (n) {
        ssize_t w = write(fd, b, n);
        if (w <= 0)
            FAIL("write: %s", strerror(errno));
        b += w;
        n -= (size_t)w;
    }
    close(fd);
}

/* Chunk crcs of a v2 header (whose shift is sane), or the v1 payload crc,
 * made right for the payload that follows the header block. */
static void fix_payload_crc(uint8_t *b, const mp_file_header *h)
{
    if (h->version == 2 && h->chunk_shift >= 20 && h->chunk_shift < 64) {
        uint64_t cb = 1ull << h->chunk_shift;

        for (uint64_t i = 0; i * cb < h->len && 64 + 4 * i < MP_FILE_HDR;
             i++) {
            uint64_t rest = h->len - i * cb;
            uint32_t c = mempool__crc32c(0, b + MP_FILE_HDR + i * cb,
                                         (size_t)(rest < cb ? rest : cb));
            memcpy(b + 64 + 4 * i, &c, 4);
        }
    } else {
        uint32_t c = mempool__crc32c(0, b + MP_FILE_HDR, (size_t)h->len);
        memcpy(b + offsetof(mp_file_header, payload_crc), &c, 4);
    }
}

/* Does the payload of file @p b match its crcs, by the format's rules
 * (written here again, independently of spillfile.c)? */
static bool payload_matches(const uint8_t *b, const mp_file_header *h)
{
    if (h->version == 1)
        return mempool__crc32c(0, b + MP_FILE_HDR, (size_t)h->len) ==
               h->payload_crc;
    if (h->chunk_shift < 20 || h->chunk_shift > 63)
        return false;
    for (uint64_t i = 0, cb = 1ull << h->chunk_shift; i * cb < h->len; i++) {
        uint64_t rest = h->len - i * cb;
        uint32_t want;

        if (64 + 4 * i >= MP_FILE_HDR)
            return false;
        memcpy(&want, b + 64 + 4 * i, 4);
        if (mempool__crc32c(0, b + MP_FILE_HDR + i * cb,
                            (size_t)(rest < cb ? rest : cb)) != want)
            return false;
    }
    return true;
}

/* The file the flags ask for, built from @p in (may grow or shrink). */
static uint8_t *build(unsigned flags, const uint8_t *in, size_t n,
                      size_t *out_n)
{
    size_t len = n;
    uint8_t *b;
    mp_file_header h;

    if ((flags & FS_FIX_SIZE) && n >= sizeof h) {
        memcpy(&h, in, sizeof h);
        if (h.len <= (1u << 20))       /* realistic: up to 1 MiB payload */
            len = MP_FILE_HDR + (size_t)h.len;
    }
    b = calloc(1, len ? len : 1);
    if (!b)
        FAIL("calloc");
    memcpy(b, in, n < len ? n : len);
    if (len >= MP_FILE_HDR) {
        memcpy(&h, b, sizeof h);
        if ((flags & FS_FIX_PCRC) && h.len == len - MP_FILE_HDR)
            fix_payload_crc(b, &h);
        if (flags & FS_FIX_HCRC) {
            uint32_t z = 0, c;
            memcpy(b + offsetof(mp_file_header, header_crc), &z, 4);
            c = mempool__crc32c(0, b, MP_FILE_HDR);
            memcpy(b + offsetof(mp_file_header, header_crc), &c, 4);
        }
    }
    *out_n = len;
    return b;
}

/* Check and read a successful mapping of the @p n byte file @p b. */
static void check_map(unsigned flags, const mp_file_map *m, const uint8_t *b,
                      size_t n, bool verify)
{
    mp_file_header h;

    if (FS_KIND(flags) != 0)
        FAIL("kind %u (symlink/fifo/dir) was mapped", FS_KIND(flags));
    if (n < MP_FILE_HDR)
        FAIL("a %zu byte file was mapped", n);
    memcpy(&h, b, sizeof h);
    if (m->len != h.len || n != MP_FILE_HDR + h.len || m->type != h.type)
        FAIL("mapping says len %llu type %u; file is %zu bytes, header len "
             "%llu type %u", (unsigned long long)m->len, m->type, n,
             (unsigned long long)h.len, h.type);
    if (!m->data)
        FAIL("NULL data");
    touch(m->data, m->len);
    if (m->len && memcmp(m->data, b + MP_FILE_HDR, m->len))
        FAIL("payload differs from the file");
    if (verify && !payload_matches(b, &h))
        FAIL("verify passed a payload with a wrong crc");
}

static void try_public(unsigned flags, const uint8_t *b, size_t n)
{
    mempool_fileref f;
    mempool_view v;
    mp_file_header h;
    int rc;

    memset(&f, 0, sizeof f);
    snprintf(f.path, sizeof f.path, "%s", name);
    if ((rc = mempool_get_file(P, &f, &v)))
        return;
    if (FS_KIND(flags) != 0 || n < MP_FILE_HDR)
        FAIL("get_file mapped kind %u, %zu bytes", FS_KIND(flags), n);
    memcpy(&h, b, sizeof h);
    if (v.len != h.len || v.type != h.type || !(v.flags & MEMPOOL_VIEW_DISK))
        FAIL("get_file view disagrees with the file");
    touch(v.data, v.len);
    if (!payload_matches(b, &h))
        FAIL("get_file (which verifies) passed a wrong payload crc");
    if ((rc = mempool_release(P, &v)))
        FAIL("release of a get_file view: %s", mempool_strerror(rc));
}

static void bye(void)
{
    if (P)
        mempool_close(P);
    mempool_destroy(pool);
    t_rm_tree(root);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    mempool_options o;
    int rc;

    (void)argc;
    (void)argv;
    snprintf(root, sizeof root, "/tmp/fuzz-spillfile-%d.XXXXXX",
             (int)getpid());
    if (!mkdtemp(root))
        FAIL("mkdtemp");
    snprintf(file, sizeof file, "%s/file", root);
    snprintf(name, sizeof name, "%s/name", root);
    snprintf(pool, sizeof pool, "fuzz-spillfile-%d", (int)getpid());
    atexit(bye);
    mempool_options_init(&o);
    o.arena_bytes = 4u << 20;
    o.spill_dir = root;
    o.spiller = 0;
    if ((rc = mempool_open(pool, &o, &P)))
        FAIL("mempool_open: %s", mempool_strerror(rc));
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned flags;
    size_t n;
    uint8_t *b;
    mp_file_map m;
    mp_file_header h;
    uint64_t other[2] = { 1, 2 };
    const uint64_t *uuid = NULL;
    uint32_t idx = 0, gen = 0;
    bool verify;
    int rc;

    if (size < 1)
        return 0;
    flags = data[0];
    verify = flags & FS_VERIFY;
    b = build(flags, data + 1, size - 1, &n);
    unlink(name);
    rmdir(name);
    write_file(file, b, n);
    switch (FS_KIND(flags)) {
    case 0:
        if (rename(file, name) != 0)
            FAIL("rename: %s", strerror(errno));
        break;
    case 1:
        if (symlink(file, name) != 0)
            FAIL("symlink: %s", strerror(errno));
        break;
    case 2:
        if (mkfifo(name, 0600) != 0)
            FAIL("mkfifo: %s", strerror(errno));
        break;
    default:
        if (mkdir(name, 0700) != 0)
            FAIL("mkdir: %s", strerror(errno));
        break;
    }
    if (flags & FS_IDENTITY) {
        memset(&h, 0, sizeof h);
        memcpy(&h, b, n < sizeof h ? n : sizeof h);
        uuid = h.uuid;
        idx = h.idx;
        gen = h.gen;
    } else if (n >= 40) {
        uuid = other;              /* a file of another pool: refused... */
        idx = (uint32_t)n;         /* ...unless the input wrote these */
        gen = 7;
    }
    rc = mempool__file_map(AT_FDCWD, name, uuid, idx, gen, verify, &m);
    if (rc == 0) {
        check_map(flags, &m, b, n, verify);
        if (uuid && (memcmp(m.hdr.uuid, uuid, 16) || m.hdr.idx != idx ||
                     m.hdr.gen != gen))
            FAIL("identity check passed a file of another object");
        mempool__file_unmap(&m);
    } else if (rc > 0 || (rc > -4096 && rc < -200) ||
               (rc < -4096 && rc != MEMPOOL_ECORRUPT)) {
        FAIL("unexpected error %d", rc);
    }
    if (flags & FS_PUBLIC)
        try_public(flags, b, n);
    free(b);
    return 0;
}
