/* SPDX-License-Identifier: MIT */
/*
 * pools.c - what `mempool ls`, `mempool info`, `mempool fsck` and
 * `mempool-top` share: attaching as an observer, finding every pool on the
 * host, printing that list as a table or JSON, and a progress line.
 *
 * Observers (MEMPOOL_OPEN_OBSERVE) take no worker slot, start no thread,
 * reap nothing and pin nothing, so listing or watching a pool never changes
 * it - also when all its workers were killed, which the list then shows.
 */
#include "cli.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

const char *cli_prog = "mempool";

/* Open the existing pool @p name with @p flags (never create, never stand
 * for spiller: a command is short-lived); report a failure as @p cmd. */
static int open_existing(const char *cmd, const char *name, uint32_t flags,
                         mempool **out)
{
    mempool_options o;
    int rc;
    mempool_options_init(&o);
    o.flags = flags;
    o.spiller = 0;
    rc = mempool_open(name, &o, out);
    if (rc < 0) {
        char what[MEMPOOL_NAME_MAX + 16];
        snprintf(what, sizeof what, "pool '%s'", name);
        cli_error(cmd, rc, what);
    }
    return rc;
}

int cli_observe(const char *cmd, const char *name, mempool **out)
{
    return open_existing(cmd, name, MEMPOOL_OPEN_OBSERVE, out);
}

bool cli_any_owner;

int cli_attach(const char *cmd, const char *name, mempool **out)
{
    return open_existing(cmd, name,
                         cli_any_owner ? MEMPOOL_OPEN_ANY_OWNER : 0, out);
}

int cli_take_any_owner(int argc, char **argv)
{
    int n = 1, i = 1;
    for (; i < argc && strcmp(argv[i], "--") != 0; i++) {
        if (strcmp(argv[i], "--any-owner") == 0)
            cli_any_owner = true;
        else
            argv[n++] = argv[i];
    }
    while (i < argc)
        argv[n++] = argv[i++];
    argv[n] = NULL;
    return n;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const struct cli_pool *)a)->name,
                  ((const struct cli_pool *)b)->name);
}

/* Observe one pool quietly: its figures, or why not. */
static void observe_one(struct cli_pool *cp, bool json)
{
    mempool_options o;
    mempool *p;
    mempool_options_init(&o);
    o.flags = MEMPOOL_OPEN_OBSERVE;
    cp->err = mempool_open(cp->name, &o, &p);
    if (cp->err)
        return;
    cp->err = mempool_stats_get(p, &cp->s);
    if (!cp->err && json) {
        int n = mempool_stats_json(p, &cp->json);
        cp->err = n < 0 ? n : 0;
    }
    mempool_close(p);
}

int cli_pools(struct cli_pool **out, bool json)
{
    static const char prefix[] = "mempool.";
    DIR *d = opendir("/dev/shm");
    struct cli_pool *v = NULL;
    struct dirent *de;
    int n = 0, cap = 0;

    *out = NULL;
    if (!d)
        return -errno;
    while ((de = readdir(d))) {
        const char *name = de->d_name + sizeof prefix - 1;
        if (strncmp(de->d_name, prefix, sizeof prefix - 1) != 0 ||
            strchr(name, '#') || strlen(name) > MEMPOOL_NAME_MAX ||
            *name == '\0')
            continue;                /* not a pool, or a private build */
        if (n == cap) {
            struct cli_pool *nv = realloc(v, (cap = cap ? cap * 2 : 16) *
                                                 sizeof *v);
            if (!nv) {
                cli_pools_free(v, n);
                closedir(d);
                return -ENOMEM;
            }
            v = nv;
        }
        memset(&v[n], 0, sizeof v[n]);
        snprintf(v[n].name, sizeof v[n].name, "%s", name);
        n++;
    }
    closedir(d);
    if (n)
        qsort(v, (size_t)n, sizeof *v, by_name);
    for (int i = 0; i < n; i++)
        observe_one(&v[i], json);
    *out = v;
    return n;
}

void cli_pools_free(struct cli_pool *v, int n)
{
    for (int i = 0; i < n && v; i++)
        free(v[i].json);
    free(v);
}

void cli_pools_print(FILE *f, const struct cli_pool *v, int n)
{
    char nm[4 * MEMPOOL_NAME_MAX + 8];
    int w = 4;
    for (int i = 0; i < n; i++)
        if ((int)strlen(cli_printable(v[i].name, nm, sizeof nm)) > w)
            w = (int)strlen(nm);
    fprintf(f, "%-*s %10s %10s %5s %9s %8s %5s %5s  %s\n", w, "NAME", "SIZE",
            "USED", "USE%", "OBJECTS", "ONDISK", "ALIVE", "DEAD", "STATUS");
    for (int i = 0; i < n; i++) {
        const struct mempool_stats *s = &v[i].s;
        char a[32], b[32];
        cli_printable(v[i].name, nm, sizeof nm);   /* planted names too */
        if (v[i].err) {
            fprintf(f, "%-*s %10s %10s %5s %9s %8s %5s %5s  %s\n", w,
                    nm, "-", "-", "-", "-", "-", "-", "-",
                    v[i].err == MEMPOOL_ENOTREADY
                        ? "not ready (being created, or its creator died)"
                        : mempool_strerror(v[i].err));
            continue;
        }
        fprintf(f, "%-*s %10s %10s %4.0f%% %9" PRIu64 " %8" PRIu64
                   " %5" PRIu32 " %5" PRIu32 "  %s\n",
                w, nm, cli_fmt_bytes(s->arena_bytes, a, sizeof a),
                cli_fmt_bytes(s->used_bytes, b, sizeof b),
                s->data_bytes ? 100.0 * (double)s->used_bytes /
                                    (double)s->data_bytes : 0.0,
                s->objects, s->disk_objects, s->workers_alive,
                s->workers_dead,
                s->workers_dead ? "dead workers (not reaped)"
                : s->workers    ? "ok" : "no workers attached");
    }
}

void cli_pools_json(FILE *f, const struct cli_pool *v, int n)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    fprintf(f, "{\"schema\":%d,\"time_ns\":%" PRIu64 ",\"pools\":[",
            MEMPOOL_STATS_SCHEMA,
            (uint64_t)ts.tv_sec * UINT64_C(1000000000) + (uint64_t)ts.tv_nsec);
    for (int i = 0; i < n; i++) {
        /* A pool's own document names it by a valid (plain) name; any
         * other entry's name is whatever its creator chose: escaped. */
        if (v[i].json) {
            fprintf(f, "%s%s", i ? "," : "", v[i].json);
        } else {
            fprintf(f, "%s{\"name\":", i ? "," : "");
            cli_json_string(f, v[i].name);
            fprintf(f, ",\"error\":");
            cli_json_string(f, mempool_strerror(v[i].err));
            fputc('}', f);
        }
    }
    fprintf(f, "]}\n");
}

/* ---- progress ----------------------------------------------------------- */

static uint64_t progress_last;
static bool progress_shown;

void cli_progress(const char *what, uint64_t done, uint64_t total)
{
    char a[32], b[32];
    uint64_t now = cli_now_ns();
    if (!isatty(STDERR_FILENO) ||
        (now - progress_last < 100000000ull && done < total))
        return;
    progress_last = now;
    progress_shown = true;
    fprintf(stderr, "\r%s %3.0f%% %s / %s\033[K", what,
            total ? 100.0 * (double)done / (double)total : 100.0,
            cli_fmt_bytes(done, a, sizeof a), cli_fmt_bytes(total, b, sizeof b));
    fflush(stderr);
}

void cli_progress_end(void)
{
    if (progress_shown)
        fprintf(stderr, "\r\033[K");
    progress_shown = false;
    progress_last = 0;
}
