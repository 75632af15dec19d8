/* SPDX-License-Identifier: MIT */
/*
 * fuzz_attach_base.c - build and snapshot the arena image fuzz_attach
 * mutates (see fuzz_attach_base.h). Public API for the objects; layout.h
 * only for the offsets of the regions and header fields.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz_attach_base.h"
#include "layout.h"
#include <mempool/mempool.h>

#define SAY(...) (fprintf(stderr, "fuzz_attach_base: " __VA_ARGS__), \
                  fputc('\n', stderr))

static int set_bytes(mempool *p, size_t len, uint32_t flags, int seed,
                     mempool_dref *r)
{
    mempool_put_options so = { 0, 0, flags };
    uint8_t *buf = malloc(len ? len : 1);
    int rc;

    if (!buf)
        return -ENOMEM;
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)(seed * 31 + i * 7 + (i >> 8));
    rc = mempool_put_ex(p, buf, len, &so, r);
    free(buf);
    return rc;
}

static int read_all(const char *path, uint8_t **out, uint64_t *len)
{
    struct stat st;
    uint8_t *b;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    uint64_t got = 0;

    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) != 0 || !(b = malloc(st.st_size ? st.st_size : 1))) {
        close(fd);
        return -ENOMEM;
    }
    while (got < (uint64_t)st.st_size) {
        ssize_t n = pread(fd, b + got, st.st_size - got, (off_t)got);
        if (n <= 0)
            break;
        got += (uint64_t)n;
    }
    close(fd);
    if (got != (uint64_t)st.st_size) {
        free(b);
        return -EIO;
    }
    *out = b;
    *len = got;
    return 0;
}

/* Keep the spill files of the pool (names "<idx>-<gen>"). */
static int snap_files(const char *dir, fa_base *out)
{
    DIR *d = opendir(dir);
    struct dirent *de;

    if (!d)
        return -errno;
    while ((de = readdir(d)) && out->nfiles < FA_MAX_FILES) {
        char path[2048];
        unsigned idx, gen;
        char tail;
        uint8_t *b;
        uint64_t n;
        fa_file *f = &out->files[out->nfiles];

        if (sscanf(de->d_name, "%u-%u%c", &idx, &gen, &tail) != 2)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        if (read_all(path, &b, &n) || n < 4096) {
            closedir(d);
            return -EIO;
        }
        f->idx = idx;
        f->gen = gen;
        memcpy(&f->type, b + 48, 4);
        f->len = n - 4096;
        f->payload = malloc(f->len ? f->len : 1);
        if (!f->payload) {
            free(b);
            closedir(d);
            return -ENOMEM;
        }
        memcpy(f->payload, b + 4096, f->len);
        free(b);
        out->nfiles++;
    }
    closedir(d);
    return 0;
}

static void regions(fa_base *out)
{
    mp_header h;

    memcpy(&h, out->image, sizeof h);
    out->reg_off[FA_REG_HEADER] = 0;
    out->reg_len[FA_REG_HEADER] = MP_PAGE;
    out->reg_off[FA_REG_SLOTS] = h.slots_off;
    out->reg_len[FA_REG_SLOTS] = (uint64_t)MP_WORKERS * sizeof(mp_slot);
    out->reg_off[FA_REG_CELLS] = h.cells_off;
    out->reg_len[FA_REG_CELLS] = (uint64_t)MP_WORKERS *
        (h.max_refs + h.max_refs / MP_CELL_OVF_DIV) * 8;
    out->reg_off[FA_REG_TABLE] = h.table_off;
    out->reg_len[FA_REG_TABLE] = h.max_objects * sizeof(mp_entry);
    out->reg_off[FA_REG_PAGES] = h.pages_off;
    out->reg_len[FA_REG_PAGES] = h.npages * sizeof(mp_page);
    out->reg_off[FA_REG_BITMAP] = h.bitmap_off;
    out->reg_len[FA_REG_BITMAP] = (h.npages + 63) / 64 * 8;
    out->reg_off[FA_REG_DATA] = h.data_off;
    out->reg_len[FA_REG_DATA] = h.arena_bytes - h.data_off;
    out->spill_dir_off = offsetof(mp_header, spill_dir);
    out->spill_dir_len = MP_PATH_MAX;
    out->lock_off = offsetof(mp_header, alloc_lock);
    out->lock_len = sizeof(pthread_mutex_t);
}

int fa_build_base(const char *name, const char *spill_root, fa_base *out)
{
    mempool_options o;
    mempool *a = NULL, *b = NULL;
    mempool_dref r, pinned;
    mempool_view va, vg;
    struct mempool_stats st;
    mempool_array arr;
    double dv[16];
    char shm[512];
    void *buf;
    int rc;

    memset(out, 0, sizeof *out);
    mempool_destroy(name);
    mempool_options_init(&o);
    o.arena_bytes = FA_ARENA_BYTES;
    o.max_objects = FA_MAX_OBJECTS;
    o.spill_dir = spill_root;
    o.spiller = 0;
    o.evict_wait_ms = 1;
    o.flags = MEMPOOL_OPEN_CREATE | MEMPOOL_OPEN_EXCL;
    if ((rc = mempool_open(name, &o, &a))) {
        SAY("create %s: %s", name, mempool_strerror(rc));
        return rc;
    }
    o.flags = 0;
    if ((rc = mempool_open(name, &o, &b)))
        goto fail;
    /* in memory: small, page run, empty */
    if ((rc = set_bytes(a, 100, 0, 1, &r)) ||
        (rc = mempool_get(b, r, &va)) ||            /* pinned by worker 2 */
        (rc = set_bytes(a, 5000, 0, 2, &r)) ||
        (rc = set_bytes(b, 0, 0, 3, &r)))
        goto fail;
    /* refcounted, one reference held by each worker */
    if ((rc = set_bytes(a, 300, MEMPOOL_PUT_REFCOUNTED, 4, &r)) ||
        (rc = mempool_ref(b, r)))
        goto fail;
    /* spilled, and copied to disk */
    if ((rc = set_bytes(a, 3000, 0, 5, &r)) ||
        (rc = mempool_move_to_disk(a, r, NULL)) ||
        (rc = set_bytes(b, 200, MEMPOOL_PUT_DESTROY_ON_EVICT, 6, &r)) ||
        (rc = mempool_copy_to_disk(b, r, NULL)))
        goto fail;
    /* deleted while pinned, and deleted (freed, generation 2) */
    if ((rc = set_bytes(a, 150, 0, 7, &pinned)) ||
        (rc = mempool_get(a, pinned, &vg)) ||
        (rc = mempool_delete(b, pinned)) ||
        (rc = set_bytes(a, 64, 0, 8, &r)) ||
        (rc = mempool_delete(a, r)))
        goto fail;
    /* a typed object, and an unpublished reservation */
    memset(&arr, 0, sizeof arr);
    for (int i = 0; i < 16; i++)
        dv[i] = i;
    arr.dtype = MEMPOOL_DTYPE_FLOAT64;
    arr.ndim = 1;
    arr.shape[0] = 16;
    arr.data = dv;
    if ((rc = mempool_put_obj(b, MEMPOOL_TYPE_ARRAY, &arr, NULL, &r)) ||
        (rc = mempool_reserve(a, 400, NULL, &buf, &r)))
        goto fail;
    memset(buf, 0x42, 200);
    if ((rc = mempool_flush(a)) || (rc = mempool_flush(b)) ||
        (rc = mempool_stats_get(a, &st)))
        goto fail;
    snprintf(shm, sizeof shm, "/dev/shm/mempool.%s", name);
    if ((rc = read_all(shm, &out->image, &out->size)) ||
        (rc = snap_files(st.spill_dir, out)))
        goto fail;
    regions(out);
    mempool_close(b);
    mempool_close(a);
    mempool_destroy(name);
    return 0;
fail:
    SAY("building the image: %s", mempool_strerror(rc));
    if (b)
        mempool_close(b);
    mempool_close(a);
    mempool_destroy(name);
    return rc ? rc : -EIO;
}
