/* SPDX-License-Identifier: MIT */
/*
 * top_export.c - mempool-top's machine-readable output: --json (the
 * mempool_stats_json() document, or NDJSON with --interval/--count) and
 * --prometheus (the text format; the counter families come from the
 * library's one counter list, src/core/counters.h).
 */
#include "top.h"
#include "cli.h"
#include "counters.h"    /* src/core: the counter list */

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- JSON and Prometheus ------------------------------------------------ */

/* --json: one document, or with --interval/--count one per line. */
int top_run_json(mempool *p, const struct opts *o)
{
    long n = o->count ? o->count : (o->interval_set ? 0 : 1);
    for (long i = 0; !top_quit && (n == 0 || i < n); i++) {
        if (i)
            top_sleep_s(o->interval);
        if (p && top_pool_removed(o->name)) {
            fprintf(stderr, "%s: pool '%s' was destroyed\n", cli_prog,
                    o->name);
            return -ENOENT;
        }
        if (p) {
            char *doc;
            int rc = mempool_stats_json(p, &doc);
            if (rc < 0) {
                cli_error(NULL, rc, "stats");
                return rc;
            }
            printf("%s\n", doc);
            free(doc);
        } else {
            struct cli_pool *v;
            int k = cli_pools(&v, true);
            if (k < 0) {
                cli_error(NULL, k, "/dev/shm");
                return k;
            }
            cli_pools_json(stdout, v, k);
            cli_pools_free(v, k);
        }
        if (fflush(stdout) != 0)
            return -EPIPE;
    }
    return 0;
}

#define PS(f) offsetof(struct mempool_stats, f), \
              sizeof(((struct mempool_stats *)0)->f)
#define PW(f) offsetof(struct mempool_worker_stats, f), \
              sizeof(((struct mempool_worker_stats *)0)->f)

struct fam {
    const char *name, *type, *help;
    size_t off, size;
    double scale;      /* 0: print the integer */
};

static const struct fam pool_fams[] = {
    {"mempool_arena_bytes", "gauge", "Size of the pool's shm object.",
     PS(arena_bytes), 0},
    {"mempool_arena_data_bytes", "gauge", "Bytes of the arena usable for "
     "objects.", PS(data_bytes), 0},
    {"mempool_arena_used_bytes", "gauge", "Arena bytes allocated to objects.",
     PS(used_bytes), 0},
    {"mempool_arena_free_bytes", "gauge", "Arena bytes free.",
     PS(free_bytes), 0},
    {"mempool_arena_largest_free_bytes", "gauge", "Longest run of free "
     "pages.", PS(largest_free_bytes), 0},
    {"mempool_objects", "gauge", "Object table entries in use.",
     PS(objects), 0},
    {"mempool_objects_capacity", "gauge", "Object table capacity.",
     PS(max_objects), 0},
    {"mempool_objects_in_memory", "gauge", "Objects whose bytes are in the "
     "arena.", PS(mem_objects), 0},
    {"mempool_objects_in_memory_bytes", "gauge", "Bytes of objects in the "
     "arena.", PS(resident_bytes), 0},
    {"mempool_objects_on_disk", "gauge", "Objects with a spill file.",
     PS(disk_objects), 0},
    {"mempool_objects_on_disk_bytes", "gauge", "Bytes of objects in spill "
     "files.", PS(disk_bytes), 0},
    {"mempool_objects_pinned", "gauge", "Distinct objects pinned.",
     PS(pinned_objects), 0},
    {"mempool_objects_pinned_bytes", "gauge", "Bytes of pinned objects.",
     PS(pinned_bytes), 0},
    {"mempool_pins", "gauge", "Pins held by all workers.", PS(pins), 0},
    {"mempool_spill_fs_free_bytes", "gauge", "Free space of the spill "
     "directory's file system.", PS(fs_free_bytes), 0},
    {"mempool_spill_fs_size_bytes", "gauge", "Size of the spill directory's "
     "file system.", PS(fs_total_bytes), 0},
    {"mempool_workers_attached", "gauge", "Workers attached (alive or dead "
     "and not reaped).", PS(workers), 0},
    {"mempool_workers_alive", "gauge", "Workers alive.", PS(workers_alive), 0},
    {"mempool_workers_dead", "gauge", "Workers dead and not reaped yet.",
     PS(workers_dead), 0},
    /* the counters: one row each in src/core/counters.h */
#define FAM(name, prom, div, help)                                         \
    {"mempool_" #prom "_total", "counter", help, PS(name),                \
     (div) == 1 ? 0 : 1.0 / (div)},
    MP_COUNTERS(FAM)
#undef FAM
#define FAM(name, field, help)                                              \
    {"mempool_" #name "_total", "counter", help, PS(name), 0},
    MP_POOL_COUNTERS(FAM)
#undef FAM
};

static const struct fam worker_fams[] = {
    {"mempool_worker_resident_bytes", "gauge", "Bytes of the worker's "
     "objects in the arena.", PW(resident_bytes), 0},
    {"mempool_worker_max_memsize_bytes", "gauge", "The worker's memory "
     "limit (0: none).", PW(max_memsize), 0},
    {"mempool_worker_disk_bytes", "gauge", "Bytes of the worker's objects "
     "in spill files.", PW(disk_bytes), 0},
    {"mempool_worker_pinned_bytes", "gauge", "Bytes of objects the worker "
     "pins.", PW(pinned_bytes), 0},
    {"mempool_worker_objects", "gauge", "Objects charged to the worker.",
     PW(objects), 0},
#define FAM(name, prom, div, help)                                         \
    {"mempool_worker_" #prom "_total", "counter", help, PW(name),         \
     (div) == 1 ? 0 : 1.0 / (div)},
    MP_COUNTERS(FAM)
#undef FAM
    {"mempool_worker_errors_total", "counter", "The worker's failed sets, "
     "failed spills and corrupt files met.", PW(errors), 0},
};

static void prom_value(const void *base, const struct fam *f)
{
    const char *p = (const char *)base + f->off;
    uint64_t v;
    if (f->size == 4) {
        uint32_t v32;
        memcpy(&v32, p, 4);
        v = v32;
    } else {
        memcpy(&v, p, 8);
    }
    if (f->scale)
        printf("%.9f\n", (double)v * f->scale);
    else
        printf("%" PRIu64 "\n", v);
}

static void prom_print(const struct snap *v, int n)
{
    printf("# HELP mempool_info The pool's identity (value always 1).\n"
           "# TYPE mempool_info gauge\n");
    for (int i = 0; i < n; i++)
        printf("mempool_info{pool=\"%s\",uuid=\"%016" PRIx64 "%016" PRIx64
               "\",io_backend=\"%s\",version=\"%s\"} 1\n", v[i].s.name,
               v[i].s.uuid[0], v[i].s.uuid[1], v[i].s.pool_io_backend,
               mempool_version());
    for (size_t f = 0; f < sizeof pool_fams / sizeof pool_fams[0]; f++) {
        printf("# HELP %s %s\n# TYPE %s %s\n", pool_fams[f].name,
               pool_fams[f].help, pool_fams[f].name, pool_fams[f].type);
        for (int i = 0; i < n; i++) {
            printf("%s{pool=\"%s\"} ", pool_fams[f].name, v[i].s.name);
            prom_value(&v[i].s, &pool_fams[f]);
        }
    }
    printf("# HELP mempool_worker_alive 1 if the worker is alive, 0 if it "
           "died and was not reaped yet.\n# TYPE mempool_worker_alive gauge\n");
    for (int i = 0; i < n; i++)
        for (int k = 0; k < v[i].nw; k++)
            if (v[i].w[k].state != MEMPOOL_WORKER_GONE)
                printf("mempool_worker_alive{pool=\"%s\",worker=\"%d\","
                       "pid=\"%d\"} %d\n", v[i].s.name, v[i].w[k].id,
                       v[i].w[k].pid,
                       v[i].w[k].state == MEMPOOL_WORKER_ALIVE);
    for (size_t f = 0; f < sizeof worker_fams / sizeof worker_fams[0]; f++) {
        printf("# HELP %s %s\n# TYPE %s %s\n", worker_fams[f].name,
               worker_fams[f].help, worker_fams[f].name, worker_fams[f].type);
        for (int i = 0; i < n; i++)
            for (int k = 0; k < v[i].nw; k++) {
                if (v[i].w[k].state == MEMPOOL_WORKER_GONE)
                    continue;
                printf("%s{pool=\"%s\",worker=\"%d\"} ", worker_fams[f].name,
                       v[i].s.name, v[i].w[k].id);
                prom_value(&v[i].w[k], &worker_fams[f]);
            }
    }
}

/* --prometheus: NAME's figures, or every pool's. */
/* Snapshots of every observable pool on this host into a new *out (one
 * each; a pool that cannot be observed is left out): how many, or -errno. */
static int take_all(struct snap **out)
{
    struct cli_pool *pl;
    int np = cli_pools(&pl, false), k = 0;
    struct snap *v = np > 0 ? calloc((size_t)np, sizeof *v) : NULL;
    for (int i = 0; i < np && v; i++) {
        mempool_options opt;
        mempool *q;
        mempool_options_init(&opt);
        opt.flags = MEMPOOL_OPEN_OBSERVE;
        if (pl[i].err || mempool_open(pl[i].name, &opt, &q))
            continue;                   /* not observable: left out */
        if (top_take(q, &v[k]) == 0)
            k++;
        mempool_close(q);
    }
    if (np > 0)
        cli_pools_free(pl, np);
    *out = v;
    return np < 0 ? np : k;
}

/* One snapshot of pool @p p into a new *out: 1, or -errno. */
static int take_one(mempool *p, struct snap **out)
{
    int rc;
    if (!(*out = calloc(1, sizeof **out)))
        return -ENOMEM;
    rc = top_take(p, *out);
    return rc ? rc : 1;
}

int top_run_prom(mempool *p, const struct opts *o)
{
    long n = o->count ? o->count : 1;
    for (long it = 0; !top_quit && it < n; it++) {
        struct snap *v = NULL;
        int k;
        if (it)
            top_sleep_s(o->interval);
        k = p ? take_one(p, &v) : take_all(&v);
        if (k < 0) {
            free(v);
            cli_error(NULL, k, p ? "stats" : "/dev/shm");
            return k;
        }
        prom_print(v, k);
        free(v);
        if (fflush(stdout) != 0)
            return -EPIPE;
    }
    return 0;
}
