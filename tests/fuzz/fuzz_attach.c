/* SPDX-License-Identifier: MIT */
/*
 * fuzz_attach.c - libFuzzer target: attach to a mutated arena image
 * (docs/scenarios.md S3, S5, S51).
 *
 * LLVMFuzzerInitialize builds a real pool (fuzz_attach_base.c: objects in
 * every state, two workers holding pins and references), snapshots its shm
 * object and spill files, and destroys it. Each input (fuzz_params.h) is
 * laid over that image - the first FA_HDR_BYTES over the header, then
 * patches anywhere in the slots, pin cells, object table, page
 * descriptors, bitmap or data, or a new file size - and written as
 * /dev/shm/mempool.fuzz-attach-<pid>. The snapshot's spill files are
 * written again for the image's (possibly mutated) uuid, so spilled
 * objects can be mapped back.
 *
 * Then: mempool_open() with MEMPOOL_OPEN_OBSERVE (stats, worker stats,
 * JSON, info, check), and mempool_open() as a worker without CREATE
 * (which reaps the image's two dead workers), stats, check, a get (every
 * byte read) and get_obj of every entry the table names, reap, check;
 * copy_to_disk + get_file, move_to_disk + get of every entry; sets under
 * a small memory limit and one too big for the free pages (both spill);
 * trim; delete/unref of every entry; check; JSON; close. Errors are fine;
 * a crash, a sanitizer report, SIGBUS or a hang (libFuzzer -timeout) is a
 * library bug.
 *
 * Some bytes are not taken from the input as they are, because the library
 * trusts them by design (a mutation there is not a parsing bug) or because
 * a known bug would stop every fuzzing session at once (see the report):
 *   - spill_dir: the process would create directories and unlink
 *     "<n>-<n>" files wherever it points. Always pinned to a private
 *     directory of this process.
 *   - alloc_lock (the robust pthread mutex): a nonzero lock word naming a
 *     thread that does not exist blocks pthread_mutex_lock() forever, and
 *     a PI kind with such an owner makes glibc assert. Restored from the
 *     image.
 *   - the off/len of entries: spilling (copy/move_to_disk, sets that need
 *     room) checksums and writes e->len bytes at e->off without the bounds
 *     check a get makes, reading past the arena. A block outside the
 *     arena becomes off = len = 0.
 * FUZZ_ATTACH_RAW=1 in the environment lets every byte through, to
 * reproduce those: corpus-attach/regress-alloc-* and regress-entry-* are
 * the inputs that found them (they pass masked, and crash or hang with
 * FUZZ_ATTACH_RAW=1). The other regress-* inputs are hangs of waiters on a
 * dead or unused slot's rc/who bytes, fixed in the library and replayed
 * unmasked.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stddef.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz_attach_base.h"
#include "internal.h"
#include "spill.h"
#include "helpers_base.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FAIL(...) do { fprintf(stderr, "fuzz_attach: " __VA_ARGS__); \
                       fputc('\n', stderr); __builtin_trap(); } while (0)

static fa_base base;
static char name[64], shm_path[128], root[64], copy_dir[128];
static bool raw;                /* FUZZ_ATTACH_RAW=1: no masking */
static uint64_t *nonzero;      /* page numbers of the image that are not 0 */
static uint64_t nnonzero;
static volatile uint8_t sink;

static void touch(const void *p, uint64_t n)
{
    const uint8_t *b = p;
    uint8_t x = 0;

    for (uint64_t i = 0; i < n; i++)
        x ^= b[i];
    sink ^= x;
}

static void pwrite_all(int fd, const void *buf, uint64_t len, uint64_t off)
{
    const uint8_t *b = buf;

    while (len) {
        ssize_t n = pwrite(fd, b, len, (off_t)off);
        if (n <= 0)
            FAIL("pwrite: %s", strerror(errno));
        b += n;
        len -= (uint64_t)n;
        off += (uint64_t)n;
    }
}

/* The image's spill files, for the uuid the written header carries. */
static void write_files(const uint64_t uuid[2])
{
    DIR *d = opendir(copy_dir);
    struct dirent *de;

    if (d) {                          /* whatever the last run left */
        while ((de = readdir(d)))
            if (de->d_name[0] != '.')
                unlinkat(dirfd(d), de->d_name, 0);
        closedir(d);
    }
    for (int i = 0; i < base.nfiles; i++) {
        const fa_file *f = &base.files[i];
        uint8_t hdr[MP_FILE_HDR];
        mp_file_header h;
        char path[256];
        int fd;

        mempool__file_header(&h, uuid, f->idx, f->gen, f->type, 0, f->len);
        mempool__file_block(hdr, &h, f->payload);
        snprintf(path, sizeof path, "%s/%u-%u", copy_dir, f->idx, f->gen);
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0)
            FAIL("%s: %s", path, strerror(errno));
        pwrite_all(fd, hdr, sizeof hdr, 0);
        pwrite_all(fd, f->payload, f->len, sizeof hdr);
        close(fd);
    }
}

/* Mask the known bug in the entry table (see the top of the file): a
 * block outside the arena becomes off = len = 0. */
static void sanitize(int fd, uint64_t fsize)
{
    mp_header h;
    uint8_t e[sizeof(mp_entry)];

    if (pread(fd, &h, sizeof h, 0) != (ssize_t)sizeof h ||
        h.arena_bytes != fsize || h.max_objects > 4 * FA_MAX_OBJECTS ||
        h.table_off > fsize ||
        h.max_objects * sizeof(mp_entry) > fsize - h.table_off)
        return;                       /* attach refuses it anyway */
    for (uint64_t i = 0; i < h.max_objects; i++) {
        uint64_t at = h.table_off + i * sizeof(mp_entry), off, len;

        if (pread(fd, e, sizeof e, (off_t)at) != (ssize_t)sizeof e)
            return;
        memcpy(&off, e + offsetof(mp_entry, off), 8);
        memcpy(&len, e + offsetof(mp_entry, len), 8);
        if ((off ? off : h.data_off) > fsize ||
            len > fsize - (off ? off : h.data_off)) {
            off = len = 0;
            pwrite_all(fd, &off, 8, at + offsetof(mp_entry, off));
            pwrite_all(fd, &len, 8, at + offsetof(mp_entry, len));
        }
    }
}

/* Write the mutated image; returns false if there is nothing to attach. */
static bool write_image(const uint8_t *data, size_t size)
{
    uint8_t hdr[FA_HDR_BYTES];
    uint64_t fsize = base.size;
    size_t n = size < FA_HDR_BYTES ? size : FA_HDR_BYTES;
    mp_header h;
    int fd;

    memcpy(hdr, base.image, FA_HDR_BYTES);
    memcpy(hdr, data, n);
    data += n;
    size -= n;
    memcpy(hdr + base.spill_dir_off, copy_dir, strlen(copy_dir) + 1);
    if (!raw)
        memcpy(hdr + base.lock_off, base.image + base.lock_off,
               base.lock_len);
    unlink(shm_path);
    fd = open(shm_path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        FAIL("%s: %s", shm_path, strerror(errno));
    if (ftruncate(fd, (off_t)base.size) != 0)
        FAIL("ftruncate: %s", strerror(errno));
    for (uint64_t i = 0; i < nnonzero; i++)
        pwrite_all(fd, base.image + nonzero[i] * MP_PAGE, MP_PAGE,
                   nonzero[i] * MP_PAGE);
    pwrite_all(fd, hdr, FA_HDR_BYTES, 0);
    /* patches: region, offset, length, bytes */
    while (size >= 6) {
        unsigned reg = data[0] % (FA_NREG + 1), len = data[5];
        uint32_t off;

        memcpy(&off, data + 1, 4);
        data += 6;
        size -= 6;
        if (reg == FA_NREG) {           /* the file's size */
            fsize = off % (2 * base.size);
            continue;
        }
        if (len > size)
            len = (unsigned)size;
        off %= base.reg_len[reg];
        if (len > base.reg_len[reg] - off)
            len = (unsigned)(base.reg_len[reg] - off);
        if (reg == FA_REG_HEADER) {     /* keep the pinned fields */
            for (unsigned i = 0; i < len; i++) {
                uint64_t at = off + i;
                bool pinned =
                    (at >= base.spill_dir_off &&
                     at < base.spill_dir_off + base.spill_dir_len) ||
                    (!raw && at >= base.lock_off &&
                     at < base.lock_off + base.lock_len);
                if (!pinned)
                    hdr[at] = data[i];
            }
            pwrite_all(fd, hdr, FA_HDR_BYTES, 0);
        } else if (len) {
            pwrite_all(fd, data, len, base.reg_off[reg] + off);
        }
        data += len;
        size -= len;
    }
    if (fsize != base.size && ftruncate(fd, (off_t)fsize) != 0)
        FAIL("ftruncate: %s", strerror(errno));
    if (!raw)
        sanitize(fd, fsize);
    close(fd);
    memcpy(&h, hdr, sizeof h);
    write_files(h.uuid);
    return true;
}

static void observe(void)
{
    mempool_options o;
    struct mempool_stats s;
    struct mempool_worker_stats ws;
    mempool_info in;
    mempool *p;
    char *json = NULL;

    mempool_options_init(&o);
    o.flags = MEMPOOL_OPEN_OBSERVE;
    if (mempool_open(name, &o, &p))
        return;
    mempool_stats_get(p, &s);
    for (int w = 1; w <= MEMPOOL_MAX_WORKERS; w++)
        mempool_worker_stats_get(p, w, &ws);
    if (mempool_stats_json(p, &json) >= 0)
        free(json);
    for (uint64_t i = 0; i < p->ntab && i < 8; i++) {
        mempool_dref r = { p->h->table_off + i * sizeof(mp_entry),
                           p->tag | MP_W_GEN(atomic_load(&p->tab[i].word)) };
        mempool_info_get(p, r, &in);
    }
    mempool_check(p, NULL, 0);
    mempool_close(p);
}

static void get_all(mempool *p)
{
    for (uint64_t i = 0; i < p->ntab; i++) {
        uint64_t w = atomic_load(&p->tab[i].word);
        mempool_dref r = { p->h->table_off + i * sizeof(mp_entry),
                           p->tag | MP_W_GEN(w) };
        mempool_view v;
        mempool_array a;
        mempool_info in;

        mempool_info_get(p, r, &in);
        if (mempool_get(p, r, &v) == 0) {
            touch(v.data, v.len);
            if (mempool_release(p, &v))
                FAIL("release of a fresh view failed");
        }
        if (mempool_get_obj(p, r, MEMPOOL_TYPE_ARRAY, &a, &v) == 0) {
            touch(a.data, a.nbytes);
            if (mempool_release(p, &v))
                FAIL("release of a fresh view failed");
        }
    }
}

/* Give every entry a file, move it out of memory, read it back. */
static void disk_ops(mempool *p)
{
    for (uint64_t i = 0; i < p->ntab; i++) {
        uint64_t w = atomic_load(&p->tab[i].word);
        mempool_dref r = { p->h->table_off + i * sizeof(mp_entry),
                           p->tag | MP_W_GEN(w) };
        mempool_fileref f;
        mempool_view v;

        if (mempool_copy_to_disk(p, r, &f) == 0 &&
            mempool_get_file(p, &f, &v) == 0) {
            touch(v.data, v.len);
            if (mempool_release(p, &v))
                FAIL("release of a get_file view failed");
        }
        mempool_move_to_disk(p, r, NULL);
        if (mempool_get(p, r, &v) == 0) {
            touch(v.data, v.len);
            if (mempool_release(p, &v))
                FAIL("release of a fresh view failed");
        }
    }
}

/* Sets that need room: under a small limit of our own, and one too big
 * for the free pages, which spills anyone's objects. */
static void pressure(mempool *p)
{
    static uint8_t big[FA_ARENA_BYTES];
    struct mempool_stats s;
    mempool_dref r;

    if (mempool_stats_get(p, &s))
        return;
    mempool_limit_set(p, MEMPOOL_LIMIT_MEMSIZE, 8192);
    for (int i = 0; i < 4; i++)
        if (mempool_put(p, big, 3000, &r) == 0 && i & 1)
            mempool_delete(p, r);
    mempool_limit_set(p, MEMPOOL_LIMIT_MEMSIZE, 0);
    if (s.data_bytes <= sizeof big &&
        mempool_put(p, big, s.data_bytes - 3 * 4096, &r) == 0)
        mempool_delete(p, r);
    mempool_trim(p);
}

static void delete_all(mempool *p)
{
    for (uint64_t i = 0; i < p->ntab; i++) {
        uint64_t w = atomic_load(&p->tab[i].word);
        mempool_dref r = { p->h->table_off + i * sizeof(mp_entry),
                           p->tag | MP_W_GEN(w) };

        if (i % 3 == 0)
            mempool_unref(p, r);
        else
            mempool_delete(p, r);
    }
}

static void attach(void)
{
    mempool_options o;
    struct mempool_stats s;
    mempool *p;
    char why[256], *json;

    mempool_options_init(&o);
    o.flags = 0;                      /* attach only */
    o.spiller = 0;
    o.evict_wait_ms = 1;
    if (mempool_open(name, &o, &p))
        return;
    mempool_stats_get(p, &s);
    mempool_check(p, why, sizeof why);
    get_all(p);
    mempool_reap(p);
    mempool_check(p, why, sizeof why);
    disk_ops(p);
    pressure(p);
    delete_all(p);
    mempool_check(p, why, sizeof why);
    if (mempool_stats_json(p, &json) >= 0)
        free(json);
    mempool_close(p);
}

static void bye(void)
{
    unlink(shm_path);
    t_rm_tree(root);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char base_name[64];
    const char *e = getenv("FUZZ_ATTACH_RAW");

    (void)argc;
    (void)argv;
    raw = e && *e == '1';
    snprintf(root, sizeof root, "/tmp/fuzz-attach-%d.XXXXXX", (int)getpid());
    if (!mkdtemp(root))
        FAIL("mkdtemp");
    snprintf(copy_dir, sizeof copy_dir, "%s/copy", root);
    if (mkdir(copy_dir, 0700) != 0)
        FAIL("mkdir %s", copy_dir);
    snprintf(base_name, sizeof base_name, "fuzz-attach-base-%d", (int)getpid());
    snprintf(name, sizeof name, "fuzz-attach-%d", (int)getpid());
    snprintf(shm_path, sizeof shm_path, "/dev/shm/mempool.%s", name);
    atexit(bye);
    if (fa_build_base(base_name, root, &base))
        FAIL("could not build the base image");
    nonzero = calloc(base.size / MP_PAGE, sizeof *nonzero);
    for (uint64_t pg = 0; nonzero && pg < base.size / MP_PAGE; pg++) {
        const uint8_t *b = base.image + pg * MP_PAGE;
        for (unsigned i = 0; i < MP_PAGE; i++) {
            if (b[i]) {
                nonzero[nnonzero++] = pg;
                break;
            }
        }
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!write_image(data, size))
        return 0;
    observe();
    attach();
    unlink(shm_path);
    return 0;
}
