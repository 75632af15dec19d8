/* SPDX-License-Identifier: MIT */
/*
 * bench_codec.c - what the codec layer costs next to the obvious
 * alternative, sending the same bytes through a pipe or a file.
 *
 * Objects: a 1,000,000-element string column (0..23 bytes each, NULs and
 * UTF-8 inside, every 10th missing) and a 1,000,000-row table (int64,
 * float64, bits, 20-byte records and that string column).
 *
 *   set_obj   mempool_set_obj(): reserve, encode in place, publish
 *   get_obj   mempool_get_obj(): pin + decode, which checks every string
 *             offset (O(rows)) but copies nothing; then release
 *   pipe      write() the encoded bytes into a pipe from a thread, read()
 *             them into a fresh malloc'd buffer (what a receiver without
 *             shared memory does before it can even parse)
 *   file      write() them to a file in /tmp, read() them back into a fresh
 *             malloc'd buffer (page cache; no fsync)
 *
 * Median of REPS runs, warm: the arena is filled and emptied once first,
 * and each object is set once untimed. Public API only; build with
 *   cc -O2 -Iinclude tools/bench_codec.c -Lbuild -lmempool -lpthread
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mempool.h"

#define ROWS 1000000u
#define REPS 9

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v)
{
    qsort(v, REPS, sizeof *v, cmp);
    return v[REPS / 2];
}

/* ---- data -------------------------------------------------------------- */

static uint64_t *offs;
static uint8_t *blob, *valid;

static void make_column(mempool_strings *s)
{
    static const char pieces[] = "ab\0c\xc3\xa9\xe2\x82\xac-xyz0123456789";
    uint64_t x = 88172645463325252ull, at = 0;

    offs = malloc((ROWS + 1) * 8);
    blob = malloc(ROWS * 24);
    valid = calloc(ROWS / 8 + 1, 1);
    offs[0] = 0;
    for (uint64_t i = 0; i < ROWS; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        uint64_t len = i % 10 == 9 ? 0 : x % 24;
        for (uint64_t k = 0; k < len; k++)
            blob[at++] = (uint8_t)pieces[((x >> 8) + k) % (sizeof pieces - 1)];
        if (i % 10 != 9)
            valid[i / 8] |= (uint8_t)(1u << (i % 8));
        offs[i + 1] = at;
    }
    *s = (mempool_strings){ROWS, offs, blob, valid};
}

static mempool_array arr(uint32_t dtype, const void *data, uint64_t esz)
{
    mempool_array a = {0};
    a.dtype = dtype;
    a.ndim = 1;
    a.shape[0] = ROWS;
    a.data = data;
    a.elem_size = esz;
    return a;
}

static void make_table(mempool_table *t, mempool_column *c,
                       const mempool_strings *s)
{
    int64_t *id = malloc(ROWS * 8);
    double *price = malloc(ROWS * 8);
    uint8_t *flag = calloc(ROWS / 8 + 1, 1), *rec = malloc(ROWS * 20);

    for (uint64_t i = 0; i < ROWS; i++) {
        id[i] = (int64_t)i;
        price[i] = (double)i * 0.25;
        flag[i / 8] |= (uint8_t)((i % 3 == 0) << (i % 8));
    }
    memset(rec, 0x5a, ROWS * 20);
    memset(c, 0, 5 * sizeof *c);
    c[0] = (mempool_column){.name = "id", .type = MEMPOOL_TYPE_ARRAY};
    c[0].array = arr(MEMPOOL_DTYPE_INT64, id, 0);
    c[1] = (mempool_column){.name = "price", .type = MEMPOOL_TYPE_ARRAY};
    c[1].array = arr(MEMPOOL_DTYPE_FLOAT64, price, 0);
    c[2] = (mempool_column){.name = "flag", .type = MEMPOOL_TYPE_ARRAY};
    c[2].array = arr(MEMPOOL_DTYPE_BITS, flag, 0);
    c[3] = (mempool_column){.name = "rec", .type = MEMPOOL_TYPE_ARRAY};
    c[3].array = arr(MEMPOOL_DTYPE_RECORD, rec, 20);
    c[4] = (mempool_column){.name = "name", .type = MEMPOOL_TYPE_STRINGS};
    c[4].strings = *s;
    *t = (mempool_table){ROWS, 5, c, NULL, 0};
}

/* ---- baselines ------------------------------------------------------------ */

typedef struct wjob { int fd; const uint8_t *src; uint64_t len; } wjob;

static void *writer(void *arg)
{
    wjob *j = arg;
    for (uint64_t at = 0; at < j->len;) {
        ssize_t n = write(j->fd, j->src + at, j->len - at);
        if (n <= 0)
            break;
        at += (uint64_t)n;
    }
    close(j->fd);
    return NULL;
}

static int read_all(int fd, uint8_t *dst, uint64_t len)
{
    for (uint64_t at = 0; at < len;) {
        ssize_t n = read(fd, dst + at, len - at);
        if (n <= 0)
            return -1;
        at += (uint64_t)n;
    }
    return 0;
}

static double pipe_once(const uint8_t *src, uint64_t len)
{
    int fds[2];
    pthread_t th;
    wjob j;
    double t0 = now(), t;
    uint8_t *dst = malloc(len);

    if (pipe(fds))
        return -1;
    fcntl(fds[1], F_SETPIPE_SZ, 1 << 20);
    j = (wjob){fds[1], src, len};
    pthread_create(&th, NULL, writer, &j);
    if (read_all(fds[0], dst, len))
        fprintf(stderr, "pipe: short read\n");
    t = now() - t0;
    pthread_join(th, NULL);
    close(fds[0]);
    free(dst);
    return t;
}

static double file_once(const uint8_t *src, uint64_t len)
{
    char path[] = "/tmp/bench_codec.XXXXXX";
    int fd = mkstemp(path);
    double t0 = now(), t;
    uint8_t *dst;
    wjob j = {dup(fd), src, len};

    writer(&j);
    dst = malloc(len);
    lseek(fd, 0, SEEK_SET);
    if (read_all(fd, dst, len))
        fprintf(stderr, "file: short read\n");
    t = now() - t0;
    close(fd);
    unlink(path);
    free(dst);
    return t;
}

/* ---- the runs -------------------------------------------------------------- */

static void row(const char *what, double s, uint64_t bytes)
{
    printf("| %-22s | %8.2f ms | %6.2f GB/s |\n", what, s * 1e3,
           (double)bytes / s / 1e9);
}

static int bench(mempool *p, const char *name, uint32_t type, const void *obj)
{
    double set[REPS], get[REPS], pip[REPS], fil[REPS], t0;
    union { mempool_strings s; mempool_table t; } out;
    mempool_info info;
    mempool_dref r;
    mempool_view v;
    uint8_t *copy;
    int rc;

    /* warm-up: fault the arena pages in once */
    if ((rc = mempool_set_obj(p, type, obj, NULL, &r)) ||
        (rc = mempool_info_get(p, r, &info)) ||
        (rc = mempool_get(p, r, &v)))
        return fprintf(stderr, "%s: %s\n", name, mempool_strerror(rc)), 1;
    copy = malloc(info.len);
    memcpy(copy, v.data, info.len);
    mempool_release(p, &v);
    mempool_delete(p, r);
    for (int i = 0; i < REPS; i++) {
        t0 = now();
        rc = mempool_set_obj(p, type, obj, NULL, &r);
        set[i] = now() - t0;
        t0 = now();
        rc |= mempool_get_obj(p, r, type, &out, &v);
        get[i] = now() - t0;
        rc |= mempool_release(p, &v) | mempool_delete(p, r);
        if (rc)
            return fprintf(stderr, "%s: %s\n", name, mempool_strerror(rc)), 1;
        pip[i] = pipe_once(copy, info.len);
        fil[i] = file_once(copy, info.len);
    }
    printf("\n%s: %.1f MB encoded\n\n", name, (double)info.len / 1e6);
    printf("| %-22s | %11s | %11s |\n", "operation", "median", "rate");
    printf("|------------------------|-------------|-------------|\n");
    double ms = median(set), mg = median(get);
    row("set_obj", ms, info.len);
    row("get_obj (+validate)", mg, info.len);
    row("set_obj + get_obj", ms + mg, info.len);
    row("pipe write+read", median(pip), info.len);
    row("file write+read", median(fil), info.len);
    free(copy);
    return 0;
}

/* Fill and empty the arena once, as mempool-bench does, so set_obj is
 * timed warm: tmpfs page allocation and our page-table entries are paid
 * before the first timed run, wherever the allocator puts an object. */
static int prefault(mempool *p)
{
    struct mempool_stats st;
    mempool_dref r;
    void *buf;
    int rc;

    if ((rc = mempool_stats(p, &st)))
        return rc;
    if ((rc = mempool_reserve(p, st.free_bytes - (1u << 20), NULL, &buf, &r)))
        return rc;
    memset(buf, 0, st.free_bytes - (1u << 20));
    return mempool_abort(p, r);
}

int main(void)
{
    mempool_options o;
    mempool_strings s;
    mempool_table t;
    mempool_column c[5];
    char name[64];
    mempool *p;
    int rc, bad;

    snprintf(name, sizeof name, "bench-codec-%d", (int)getpid());
    mempool_options_init(&o);
    o.arena_bytes = 1ull << 30;
    o.spill_dir = "/tmp";
    if ((rc = mempool_open(name, &o, &p)))
        return fprintf(stderr, "open: %s\n", mempool_strerror(rc)), 1;
    if ((rc = prefault(p)))
        return fprintf(stderr, "prefault: %s\n", mempool_strerror(rc)), 1;
    make_column(&s);
    make_table(&t, c, &s);
    bad = bench(p, "1M-element string column", MEMPOOL_TYPE_STRINGS, &s);
    bad |= bench(p, "1M-row table (i64, f64, bits, rec20, string)",
                 MEMPOOL_TYPE_TABLE, &t);
    mempool_close(p);
    mempool_destroy(name);
    return bad;
}
