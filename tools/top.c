/* SPDX-License-Identifier: MIT */
/*
 * top.c - mempool-top: a live view of a pool, like top(1).
 *
 *   mempool-top [NAME] [-d SECONDS] [-n COUNT] [-s KEY] [-b]
 *   mempool-top NAME --json [--interval S --count K]     (NDJSON)
 *   mempool-top [NAME] --prometheus
 *
 * It attaches as an observer (MEMPOOL_OPEN_OBSERVE): no worker slot, no
 * lock a worker waits on, no pins, nothing written, so it can watch a pool
 * under load, or one whose workers were all killed (they show as DEAD; it
 * offers nothing destructive - `mempool fsck --repair` reaps).
 *
 * This file parses the command line and picks a mode: the live view
 * (top_screen.c), --json or --prometheus (top_export.c), or, without NAME,
 * the list of pools on the host (as `mempool ls`).
 */
#include "top.h"
#include "cli.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- command line ------------------------------------------------------- */

static const char usage[] =
    "Usage: mempool-top [NAME] [OPTIONS]\n"
    "Live view of pool NAME: arena and disk use, rates, one row per worker.\n"
    "Without NAME, list the pools on this host and exit.\n"
    "\n"
    "  -d, --interval SECONDS  refresh period (default 1; fractions allowed)\n"
    "  -n, --count K           stop after K frames or documents\n"
    "  -s, --sort KEY          id, pid, resident, pinned, objects, ops,\n"
    "                          spills or errors (default id)\n"
    "  -r, --reverse           reverse the sort order\n"
    "  -g, --gone              also show workers that closed or were reaped\n"
    "  -b, --batch             plain text frames, no terminal control\n"
    "      --json              print the mempool_stats_json() document and\n"
    "                          exit; with --interval or --count, one\n"
    "                          document per line (NDJSON)\n"
    "      --prometheus        print the Prometheus text format and exit\n"
    "  -h, --help, --version\n"
    "\n"
    "Keys: q quit, s/S next/previous sort key, r reverse, g gone workers,\n"
    "+/- slower/faster. It attaches as an observer: it takes no worker slot,\n"
    "no lock a worker waits on and no pins, and changes nothing.\n"
    "Exit status: 0 success, 1 failure, 2 usage error.\n";

static int usage_error(const char *msg)
{
    fprintf(stderr, "mempool-top: %s\nTry 'mempool-top --help'.\n", msg);
    return CLI_USAGE;
}

static bool is_opt(const char *a, const char *s, const char *l)
{
    return !strcmp(a, s) || !strcmp(a, l);
}

/* A flag (an option without a value) into @p o; false if @p a is none. */
static bool flag_option(struct opts *o, const char *a)
{
    if (is_opt(a, "-r", "--reverse"))
        o->reverse = true;
    else if (is_opt(a, "-g", "--gone"))
        o->show_gone = true;
    else if (is_opt(a, "-b", "--batch"))
        o->batch = true;
    else if (!strcmp(a, "--json"))
        o->json = true;
    else if (!strcmp(a, "--prometheus"))
        o->prom = true;
    else
        return false;
    return true;
}

static const char no_option[] = "unknown option or missing value";

/* Option @p a with value @p v into @p o: NULL, no_option if @p a is not
 * one, or what is wrong with the value. */
static const char *value_option(struct opts *o, const char *a, const char *v)
{
    char *end;
    int k;
    if (is_opt(a, "-d", "--interval")) {
        o->interval = strtod(v, &end);
        if (*end || !(o->interval >= 0.05 && o->interval <= 3600))
            return "--interval wants 0.05..3600 seconds";
        o->interval_set = true;
    } else if (is_opt(a, "-n", "--count")) {
        if (cli_parse_count(v, 1, 1000000000L, &o->count) < 0)
            return "--count wants a positive number";
        o->count_set = true;
    } else if (is_opt(a, "-s", "--sort")) {
        for (k = 0; k < K_N && strcmp(v, top_sort_names[k]) != 0; k++)
            ;
        if (k == K_N)
            return "unknown --sort key";
        o->sort = k;
    } else {
        return no_option;
    }
    return NULL;
}

static int parse(int argc, char **argv, struct opts *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *bad;
        if (flag_option(o, a))
            continue;
        if (a[0] != '-') {
            if (o->name)
                return usage_error("more than one pool NAME");
            o->name = a;
            continue;
        }
        bad = i + 1 < argc ? value_option(o, a, argv[i + 1]) : no_option;
        if (bad)
            return usage_error(bad);
        i++;
    }
    if (o->json && o->prom)
        return usage_error("--json and --prometheus exclude each other");
    return CLI_OK;
}

int main(int argc, char **argv)
{
    struct opts o = { .interval = 1.0 };
    mempool *p = NULL;
    int rc;

    cli_prog = "mempool-top";
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            fputs(usage, stdout);
            return CLI_OK;
        }
        if (!strcmp(argv[i], "--version")) {
            printf("mempool-top %s\n", mempool_version());
            return CLI_OK;
        }
    }
    if ((rc = parse(argc, argv, &o)) != CLI_OK)
        return rc;
    signal(SIGPIPE, SIG_IGN);
    if (o.name && cli_observe(NULL, o.name, &p) < 0)
        return CLI_FAIL;
    if (o.name)
        top_pool_watch(o.name);
    if (o.json) {
        rc = top_run_json(p, &o);
    } else if (o.prom) {
        rc = top_run_prom(p, &o);
    } else if (!o.name) {
        struct cli_pool *v;
        int n = cli_pools(&v, false);
        if (n < 0) {
            cli_error(NULL, n, "/dev/shm");
            return CLI_FAIL;
        }
        cli_pools_print(stdout, v, n);
        cli_pools_free(v, n);
        rc = 0;
    } else {
        bool tty = isatty(STDOUT_FILENO) && !o.batch;
        if (!tty && !o.count_set)
            o.count = 1;             /* a script gets one frame */
        rc = top_run_view(p, &o, tty);
    }
    if (p)
        mempool_close(p);
    return rc < 0 ? CLI_FAIL : CLI_OK;
}

