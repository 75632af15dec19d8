/* SPDX-License-Identifier: MIT */
/*
 * fuzz_seeds.c - write the seed corpora of fuzz_dref, fuzz_attach and
 * fuzz_spillfile (formats in fuzz_params.h):
 *
 *   fuzz_seeds DIR     writes DIR/corpus-dref, DIR/corpus-attach and
 *                      DIR/corpus-spillfile (created if missing)
 *
 * tests/fuzz/run.sh runs it before every fuzzing session, so the seeds
 * always match the build (an arena header carries a format word that
 * changes with the layout); the committed copies under tests/fuzz/ are the
 * same seeds, and the regression inputs of the bugs found so far
 * (corpus-attach/regress-*, rebuilt here from their patches so that they
 * follow the layout). The corpus replay tests (ctest fuzz_*_corpus) run
 * over a fresh copy too. Rerun `fuzz_seeds tests/fuzz` after a layout
 * change.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz_attach_base.h"
#include "fuzz_params.h"
#include "layout.h"
#include "helpers_base.h"
#include <mempool/mempool.h>

static const char *outdir;
static int bad;

static void emit(const char *corpus, const char *name, const void *b,
                 size_t n)
{
    char path[4096];
    FILE *f;

    snprintf(path, sizeof path, "%s/%s", outdir, corpus);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/%s/%s", outdir, corpus, name);
    if (!(f = fopen(path, "wb")) || fwrite(b, 1, n, f) != n || fclose(f)) {
        perror(path);
        bad = 1;
    }
}

/* ---------------------------------------------------------------- dref */

#define OP(op, h, extra) ((uint8_t)((op) | (h) << 4 | (extra) << 5))
#define KNOWN(k) FD_SRC_KNOWN, (k)

static void dref_seeds(void)
{
    static const uint8_t get_all[] = {
        OP(FD_OP_GET, 0, 0), KNOWN(FD_PRE_SMALL),
        OP(FD_OP_GET, 1, 0), KNOWN(FD_PRE_LARGE),
        OP(FD_OP_GET, 0, 0), KNOWN(FD_PRE_EMPTY),
        OP(FD_OP_GET, 1, 0), KNOWN(FD_PRE_REFCOUNTED),
        OP(FD_OP_GET, 0, 0), KNOWN(FD_PRE_SPILLED),
        OP(FD_OP_GET, 1, 0), KNOWN(FD_PRE_COPIED),
        OP(FD_OP_GET, 0, 0), KNOWN(FD_PRE_DESTROY),
        OP(FD_OP_GET, 0, 0), KNOWN(FD_PRE_ARRAY),
        OP(FD_OP_RELEASE, 0, 0), 0, OP(FD_OP_RELEASE, 0, 1), 1,
        OP(FD_OP_RELEASE, 0, 2), 4,
    };
    static const uint8_t delete_pinned[] = {
        OP(FD_OP_GET, 0, 0), KNOWN(FD_PRE_LARGE),
        OP(FD_OP_DELETE, 1, 0), KNOWN(FD_PRE_LARGE),
        OP(FD_OP_GET, 1, 0), KNOWN(FD_PRE_LARGE),
        OP(FD_OP_DELETE, 0, 0), KNOWN(FD_PRE_LARGE),
        OP(FD_OP_INFO, 0, 0), KNOWN(FD_PRE_LARGE),
        OP(FD_OP_RELEASE, 0, 0), 0,
        OP(FD_OP_GET, 0, 0), FD_SRC_STALE, 0,
    };
    static const uint8_t refs[] = {
        OP(FD_OP_REF, 1, 0), KNOWN(FD_PRE_REFCOUNTED),
        OP(FD_OP_REF, 1, 0), KNOWN(FD_PRE_REFCOUNTED),
        OP(FD_OP_UNREF, 0, 0), KNOWN(FD_PRE_REFCOUNTED),
        OP(FD_OP_INFO, 1, 0), KNOWN(FD_PRE_REFCOUNTED),
        OP(FD_OP_UNREF, 1, 0), KNOWN(FD_PRE_REFCOUNTED),
        OP(FD_OP_REF, 0, 0), KNOWN(FD_PRE_SMALL),
        OP(FD_OP_UNREF, 1, 0), KNOWN(FD_PRE_REFCOUNTED),
        OP(FD_OP_GET, 0, 0), KNOWN(FD_PRE_REFCOUNTED),
    };
    static const uint8_t reserve[] = {
        OP(FD_OP_RESERVE, 0, 0), 0x10, 0x00,
        OP(FD_OP_RESERVE, 1, 1), 0x00, 0x10,
        OP(FD_OP_SET, 0, 2), 0x20, 0x01,
        OP(FD_OP_GET, 0, 0), KNOWN(FD_NPRE),
        OP(FD_OP_PUBLISH, 1, 0), KNOWN(FD_NPRE),
        OP(FD_OP_PUBLISH, 0, 0), KNOWN(FD_NPRE),
        OP(FD_OP_ABORT, 1, 0), KNOWN(FD_NPRE + 1),
        OP(FD_OP_REF, 0, 0), KNOWN(FD_NPRE + 1),
        OP(FD_OP_GET, 1, 0), KNOWN(FD_NPRE),
        OP(FD_OP_MOVE, 0, 1), KNOWN(FD_NPRE + 2),
        OP(FD_OP_GET, 1, 0), KNOWN(FD_NPRE + 2),
    };
    static const uint8_t disk[] = {
        OP(FD_OP_GET, 0, 0), KNOWN(FD_PRE_SMALL),
        OP(FD_OP_MOVE, 0, 1), KNOWN(FD_PRE_SMALL),
        OP(FD_OP_COPY, 1, 1), KNOWN(FD_PRE_LARGE),
        OP(FD_OP_MOVE, 1, 1), KNOWN(FD_PRE_SPILLED),
        OP(FD_OP_SAVE, 0, 0), KNOWN(FD_PRE_COPIED),
        OP(FD_OP_SAVE, 1, 0), KNOWN(FD_PRE_EMPTY),
        OP(FD_OP_RELEASE, 0, 0), 0,
        OP(FD_OP_GET, 1, 0), KNOWN(FD_PRE_SMALL),
        OP(FD_OP_GET_OBJ, 0, 1), KNOWN(FD_PRE_ARRAY),
        OP(FD_OP_GET_OBJ, 0, 0), KNOWN(FD_PRE_SPILLED),
    };
    static const uint8_t mutated[] = {
        OP(FD_OP_GET, 0, 0), FD_SRC_GEN, 0, 1, 0, 0, 0,
        OP(FD_OP_GET, 0, 0), FD_SRC_GEN, 1, 0, 0, 0, 0x80,
        OP(FD_OP_GET, 0, 0), FD_SRC_OFF, 1, 0x40, 0x00,
        OP(FD_OP_DELETE, 0, 0), FD_SRC_OFF, 2, 0xc0, 0xff,
        OP(FD_OP_INFO, 0, 0), FD_SRC_OFF, 3, 0x01, 0x00,
        OP(FD_OP_GET, 0, 0), FD_SRC_TEXTMUT, 0, 20, 'f',
        OP(FD_OP_GET, 0, 0), FD_SRC_TEXTMUT, 0, 16, '-',
        OP(FD_OP_GET, 1, 0), FD_SRC_RAW, 0, 0x10, 0, 0, 0, 0, 0, 0,
        1, 0, 0, 0, 0, 0, 0, 0,
        OP(FD_OP_ROUNDTRIP, 0, 0), FD_SRC_RAW, 1, 2, 3, 4, 5, 6, 7, 8,
        9, 10, 11, 12, 13, 14, 15, 16,
    };
    static const uint8_t text[] = {
        OP(FD_OP_GET, 0, 0), FD_SRC_TEXT, 33,
        '0', '0', '0', '0', '0', '0', '0', '0', '0', '0', '2', '0', '5', '0',
        '0', '0', ':', '0', '0', '0', '0', '0', '0', '0', '0', '0', '0', '0',
        '0', '0', '0', '0', '1',
        OP(FD_OP_INFO, 0, 0), FD_SRC_TEXT, 34,
        'F', 'F', 'F', 'F', 'F', 'F', 'F', 'F', 'F', 'F', 'F', 'F', 'F', 'F',
        'F', 'F', ':', 'f', 'f', 'f', 'f', 'f', 'f', 'f', 'f', 'f', 'f', 'f',
        'f', 'f', 'f', 'f', 'f', 'x',
    };
    static const uint8_t edges[] = {
        OP(FD_OP_GET, 0, 0), FD_SRC_SPECIAL, 0,
        OP(FD_OP_GET, 0, 0), FD_SRC_SPECIAL, 2,
        OP(FD_OP_DELETE, 0, 0), FD_SRC_SPECIAL, 4,
        OP(FD_OP_REF, 1, 0), FD_SRC_SPECIAL, 6,
        OP(FD_OP_UNREF, 1, 0), FD_SRC_SPECIAL, 7,
        OP(FD_OP_PUBLISH, 0, 0), FD_SRC_SPECIAL, 8,
        OP(FD_OP_ABORT, 0, 0), FD_SRC_SPECIAL, 9,
        OP(FD_OP_MOVE, 0, 0), FD_SRC_SPECIAL, 11,
        OP(FD_OP_COPY, 0, 0), FD_SRC_SPECIAL, 12,
        OP(FD_OP_SAVE, 0, 0), FD_SRC_SPECIAL, 13,
        OP(FD_OP_GET, 0, 0), FD_SRC_STALE, 1,
        OP(FD_OP_DELETE, 1, 0), FD_SRC_STALE, 2,
        OP(FD_OP_FORGED, 0, 0), 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14,
        15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31,
        32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48,
    };
    emit("corpus-dref", "get-all", get_all, sizeof get_all);
    emit("corpus-dref", "delete-pinned", delete_pinned, sizeof delete_pinned);
    emit("corpus-dref", "refs", refs, sizeof refs);
    emit("corpus-dref", "reserve", reserve, sizeof reserve);
    emit("corpus-dref", "disk", disk, sizeof disk);
    emit("corpus-dref", "mutated", mutated, sizeof mutated);
    emit("corpus-dref", "text", text, sizeof text);
    emit("corpus-dref", "edges", edges, sizeof edges);
}

/* -------------------------------------------------------------- attach */

/* Append a patch record (fuzz_params.h) to @p q; returns its end. */
static uint8_t *patch(uint8_t *q, unsigned reg, uint32_t off, const void *b,
                      uint8_t len)
{
    q[0] = (uint8_t)reg;
    memcpy(q + 1, &off, 4);
    q[5] = len;
    memcpy(q + 6, b, len);
    return q + 6 + len;
}

/* Entry index of the first entry of the image matching @p want (by length
 * and flags), or -1. */
static int find_entry(const fa_base *b, uint64_t len, uint16_t setflags)
{
    const mp_header *h = (const mp_header *)b->image;

    for (uint64_t i = 0; i < h->max_objects; i++) {
        mp_entry e;

        memcpy(&e, b->image + h->table_off + i * sizeof e, sizeof e);
        if (MP_W_ST(e.word) == MP_ST_LIVE && e.len == len &&
            e.setflags == setflags)
            return (int)i;
    }
    return -1;
}

/* The inputs of the bugs fuzz_attach found, rebuilt for this layout: each
 * passes with the harness's masking on, and crashes or hangs the library
 * with FUZZ_ATTACH_RAW=1 (see fuzz_attach.c and the report). */
static void attach_regressions(const fa_base *b)
{
    uint8_t in[FA_HDR_BYTES + 64], *q, v[16];
    int plain = find_entry(b, 100, 0);
    int rc = find_entry(b, 300, MEMPOOL_PUT_REFCOUNTED);
    uint32_t e;
    uint64_t x;

    if (plain < 0 || rc < 0) {
        fprintf(stderr, "fuzz_seeds: base image lacks its objects\n");
        bad = 1;
        return;
    }
    memcpy(in, b->image, FA_HDR_BYTES);
    /* a refcounted entry's rc byte names the image's other dead worker,
     * whose slot the reaper of slot 1 cannot take (reap_lock) */
    v[0] = 2;
    q = patch(in + FA_HDR_BYTES, FA_REG_TABLE,
              (uint32_t)(rc * sizeof(mp_entry) + 1), v, 1);
    emit("corpus-attach", "regress-rc-names-other-dead-worker", in,
         (size_t)(q - in));
    /* ... names a slot nobody uses */
    v[0] = 5;
    q = patch(in + FA_HDR_BYTES, FA_REG_TABLE,
              (uint32_t)(rc * sizeof(mp_entry) + 1), v, 1);
    emit("corpus-attach", "regress-rc-names-unused-slot", in,
         (size_t)(q - in));
    /* a LIVE entry made EVICTING by a slot nobody uses */
    v[0] = 5;
    v[1] = MP_ST_EVICTING;
    q = patch(in + FA_HDR_BYTES, FA_REG_TABLE,
              (uint32_t)(plain * sizeof(mp_entry) + 2), v, 2);
    emit("corpus-attach", "regress-evicting-who-unused-slot", in,
         (size_t)(q - in));
    /* a LIVE entry's length past the arena (spilling reads it all) */
    x = 0x7fff0000u;
    e = (uint32_t)(plain * sizeof(mp_entry) + offsetof(mp_entry, len));
    q = patch(in + FA_HDR_BYTES, FA_REG_TABLE, e, &x, 8);
    emit("corpus-attach", "regress-entry-len-past-arena", in,
         (size_t)(q - in));
    /* ... and its offset: base + off overflows */
    x = 0xfffffffffff00000ull;
    e = (uint32_t)(plain * sizeof(mp_entry) + offsetof(mp_entry, off));
    q = patch(in + FA_HDR_BYTES, FA_REG_TABLE, e, &x, 8);
    emit("corpus-attach", "regress-entry-off-overflow", in, (size_t)(q - in));
    /* the allocator mutex: a lock word naming no thread (hangs), and a
     * PI robust kind with it (glibc asserts) */
    x = 12345;
    memcpy(in + b->lock_off, &x, 4);
    emit("corpus-attach", "regress-alloc-lock-word", in, FA_HDR_BYTES);
    x = 0x30;                 /* PTHREAD_MUTEX_PRIO_INHERIT_NP | ROBUST */
    memcpy(in + b->lock_off + 16, &x, 4);
    emit("corpus-attach", "regress-alloc-lock-pi-kind", in, FA_HDR_BYTES);
}

static void attach_seeds(void)
{
    char root[] = "/tmp/fuzz-seeds.XXXXXX", name[64], shm[128];
    uint8_t page[FA_HDR_BYTES + 64];
    mempool_options o;
    fa_base b;
    mempool *p;
    int fd;

    if (!mkdtemp(root)) {
        perror("mkdtemp");
        bad = 1;
        return;
    }
    snprintf(name, sizeof name, "fuzz-seeds-%d", (int)getpid());
    if (fa_build_base(name, root, &b)) {
        bad = 1;
        goto out;
    }
    emit("corpus-attach", "base-header", b.image, FA_HDR_BYTES);
    /* the header plus two patches: an object's length in the table, and
     * the flags byte of another entry's word */
    memcpy(page, b.image, FA_HDR_BYTES);
    {
        uint8_t *q = page + FA_HDR_BYTES;
        uint32_t off = 64 + 16;          /* entry 1, field len */
        q[0] = FA_REG_TABLE;
        memcpy(q + 1, &off, 4);
        q[5] = 2;
        q[6] = 0xff;
        q[7] = 0x7f;
        off = 3 * 64;                    /* entry 3, flags byte of word */
        q[8] = FA_REG_TABLE;
        memcpy(q + 9, &off, 4);
        q[13] = 1;
        q[14] = 0x04;
        emit("corpus-attach", "base-header-patched", page, FA_HDR_BYTES + 15);
    }
    emit("corpus-attach", "base-first-half", b.image, FA_HDR_BYTES / 2);
    attach_regressions(&b);
    /* the header page of a fresh, empty pool of the same size */
    mempool_options_init(&o);
    o.arena_bytes = FA_ARENA_BYTES;
    o.max_objects = FA_MAX_OBJECTS;
    o.spill_dir = root;
    o.spiller = 0;
    o.flags = MEMPOOL_OPEN_CREATE | MEMPOOL_OPEN_EXCL;
    if (mempool_open(name, &o, &p) == 0) {
        snprintf(shm, sizeof shm, "/dev/shm/mempool.%s", name);
        fd = open(shm, O_RDONLY);
        if (fd >= 0 && pread(fd, page, FA_HDR_BYTES, 0) == FA_HDR_BYTES)
            emit("corpus-attach", "fresh-header", page, FA_HDR_BYTES);
        else
            bad = 1;
        if (fd >= 0)
            close(fd);
        mempool_close(p);
        mempool_destroy(name);
    } else {
        bad = 1;
    }
out:
    t_rm_tree(root);
}

/* ----------------------------------------------------------- spillfile */

static void spill_seed(mempool *p, const char *dir, const char *tag,
                       mempool_dref r, const uint8_t *flags, int nflags)
{
    char path[512], nm[64];
    mempool_fileref f;
    uint8_t *b;
    FILE *in;
    long n;
    int rc;

    snprintf(path, sizeof path, "%s/%s", dir, tag);
    if ((rc = mempool_save_to_disk(p, r, path, &f))) {
        fprintf(stderr, "save_to_disk: %s\n", mempool_strerror(rc));
        bad = 1;
        return;
    }
    if (!(in = fopen(path, "rb")) || fseek(in, 0, SEEK_END) ||
        (n = ftell(in)) < 0 || fseek(in, 0, SEEK_SET) ||
        !(b = malloc((size_t)n + 1)) ||
        fread(b + 1, 1, (size_t)n, in) != (size_t)n) {
        perror(path);
        bad = 1;
        if (in)
            fclose(in);
        return;
    }
    fclose(in);
    for (int i = 0; i < nflags; i++) {
        b[0] = flags[i];
        snprintf(nm, sizeof nm, "%s-%02x", tag, flags[i]);
        emit("corpus-spillfile", nm, b, (size_t)n + 1);
    }
    free(b);
}

static void spillfile_seeds(void)
{
    char root[] = "/tmp/fuzz-seeds.XXXXXX", name[64];
    uint8_t buf[5000];
    double d[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
    mempool_options o;
    mempool_array a;
    mempool_dref r;
    mempool *p;
    static const uint8_t all[] = { 0x00, FS_VERIFY | FS_IDENTITY,
                                   FS_VERIFY | FS_IDENTITY | FS_PUBLIC,
                                   0x3f, 0x3f | 0x40, 0x3f | 0x80 };
    static const uint8_t some[] = { FS_VERIFY | FS_IDENTITY | FS_PUBLIC,
                                    0x3f };

    if (!mkdtemp(root)) {
        perror("mkdtemp");
        bad = 1;
        return;
    }
    snprintf(name, sizeof name, "fuzz-seeds-sf-%d", (int)getpid());
    mempool_options_init(&o);
    o.arena_bytes = 4u << 20;
    o.spill_dir = root;
    o.spiller = 0;
    if (mempool_open(name, &o, &p)) {
        bad = 1;
        goto out;
    }
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (uint8_t)(i * 13 + 1);
    if (mempool_put(p, buf, 100, &r) == 0)
        spill_seed(p, root, "bytes100", r, all, (int)sizeof all);
    if (mempool_put(p, buf, 0, &r) == 0)
        spill_seed(p, root, "empty", r, some, (int)sizeof some);
    if (mempool_put(p, buf, 1, &r) == 0)
        spill_seed(p, root, "bytes1", r, some, (int)sizeof some);
    if (mempool_put(p, buf, 5000, &r) == 0)
        spill_seed(p, root, "bytes5000", r, some, 1);
    memset(&a, 0, sizeof a);
    a.dtype = MEMPOOL_DTYPE_FLOAT64;
    a.ndim = 1;
    a.shape[0] = 8;
    a.data = d;
    if (mempool_put_obj(p, MEMPOOL_TYPE_ARRAY, &a, NULL, &r) == 0)
        spill_seed(p, root, "array", r, some, (int)sizeof some);
    mempool_close(p);
    mempool_destroy(name);
out:
    t_rm_tree(root);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    outdir = argv[1];
    mkdir(outdir, 0755);
    dref_seeds();
    attach_seeds();
    spillfile_seeds();
    return bad;
}
