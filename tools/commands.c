/* SPDX-License-Identifier: MIT */
/*
 * commands.c - the administrative subcommands of `mempool`: create,
 * destroy, ls, info, put, get, rm and fsck. Each is a thin shell over one or
 * two library calls, so an operator (or a test script) can poke a pool by
 * hand:
 *
 *   mempool create jobs --size 256M
 *   r=$(mempool put jobs data.bin)
 *   mempool get jobs "$r" | cmp - data.bin
 *   mempool rm jobs "$r"; mempool info jobs; mempool fsck jobs
 *   mempool destroy jobs
 *
 * Every command but create attaches to an existing pool and never creates
 * one. ls, info and fsck attach as observers (MEMPOOL_OPEN_OBSERVE): they
 * take no worker slot and change nothing; only `fsck --repair` attaches as
 * a worker, which reaps dead workers. Errors go to stderr with
 * mempool_strerror()'s text and the name of what failed; exit codes are
 * CLI_OK, CLI_FAIL and CLI_USAGE (cli.h). put and get of large objects show
 * a progress line when stderr is a terminal, and nothing otherwise.
 */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>


static const char create_usage[] =
    "Usage: mempool create NAME [--size BYTES] [--max-memsize BYTES]\n"
    "                           [--max-objects N] [--max-refs N]\n"
    "                           [--spill-dir DIR] [--mru]\n"
    "Create pool NAME with an arena of BYTES (suffixes K, M, G; default\n"
    "1G). Fails if the pool already exists.\n"
    "  --max-memsize BYTES  default memory limit of each worker that\n"
    "                   attaches without one of its own (default none)\n"
    "  --max-objects N  object table capacity (default BYTES / 4096)\n"
    "  --max-refs N     pins and references one worker can hold at once\n"
    "                   (default max-objects / 4, 4096 to 65536)\n"
    "  --spill-dir DIR  spill files go to DIR/NAME (default ./.mempool);\n"
    "                   fixed for the pool's life\n"
    "  --mru            evict the most recently used first (default LRU)\n"
    "A worker may still set its own limit when it attaches.\n";

/* Option argv[*i] of `mempool create` into @p o, its value consumed too:
 * NULL, or what is wrong with it. */
static const char *create_option(int argc, char **argv, int *i,
                                 mempool_options *o)
{
    const char *opt = argv[*i], *v;
    long n;
    if (strcmp(opt, "--mru") == 0) {
        o->policy = MEMPOOL_POLICY_MRU;
        return NULL;
    }
    if (*i + 1 >= argc)
        return "unexpected argument";
    v = argv[++*i];
    if (strcmp(opt, "--size") == 0)
        return cli_parse_size(v, &o->arena_bytes) < 0 ? "bad --size" : NULL;
    if (strcmp(opt, "--max-memsize") == 0)
        return cli_parse_size(v, &o->max_memsize) < 0 ? "bad --max-memsize"
                                                       : NULL;
    if (strcmp(opt, "--max-objects") == 0) {
        if (cli_parse_count(v, 1, 2147483646L, &n) < 0)
            return "bad --max-objects";
        o->max_objects = (uint64_t)n;
        return NULL;
    }
    if (strcmp(opt, "--max-refs") == 0) {
        if (cli_parse_count(v, 1, (long)MEMPOOL_MAX_REFS, &n) < 0)
            return "bad --max-refs";
        o->max_refs = (uint64_t)n;
        return NULL;
    }
    if (strcmp(opt, "--spill-dir") == 0) {
        o->spill_dir = v;
        return NULL;
    }
    return "unexpected argument";
}

int cmd_create(int argc, char **argv)
{
    if (cli_help_asked(argc, argv, create_usage))
        return CLI_OK;
    mempool_options o;
    mempool_options_init(&o);
    o.flags = MEMPOOL_OPEN_CREATE | MEMPOOL_OPEN_EXCL;
    const char *name = NULL;
    for (int i = 1; i < argc; i++) {
        const char *bad = NULL;
        if (argv[i][0] == '-')
            bad = create_option(argc, argv, &i, &o);
        else if (name == NULL)
            name = argv[i];
        else
            bad = "unexpected argument";
        if (bad)
            return cli_usage_error("create", bad);
    }
    if (name == NULL)
        return cli_usage_error("create", "missing pool NAME");
    o.spiller = 0;
    mempool *p;
    int rc = mempool_open(name, &o, &p);
    if (rc < 0) {
        char what[MEMPOOL_NAME_MAX + 16];
        snprintf(what, sizeof what, "pool '%s'", name);
        cli_error("create", rc, what);
        return rc == -EINVAL ? CLI_USAGE : CLI_FAIL;
    }
    mempool_close(p);
    return CLI_OK;
}

static const char destroy_usage[] =
    "Usage: mempool destroy NAME\n"
    "Remove pool NAME. Processes still attached keep their mapping until\n"
    "they close it.\n";

int cmd_destroy(int argc, char **argv)
{
    if (cli_help_asked(argc, argv, destroy_usage))
        return CLI_OK;
    if (argc != 2)
        return cli_usage_error("destroy", "want exactly one pool NAME");
    int rc = mempool_destroy(argv[1]);
    if (rc < 0) {
        cli_error("destroy", rc, argv[1]);
        return CLI_FAIL;
    }
    return CLI_OK;
}

static const char *state_name(uint32_t st)
{
    return st == MEMPOOL_WORKER_ALIVE ? "alive"
           : st == MEMPOOL_WORKER_DEAD ? "DEAD"
           : st == MEMPOOL_WORKER_GONE ? "gone" : "free";
}

static void print_stats(const struct mempool_stats *s)
{
    char a[32], b[32], c[32];
    printf("pool        %s (uuid %016" PRIx64 "%016" PRIx64 ", %s)\n", s->name,
           s->uuid[0], s->uuid[1],
           s->policy == MEMPOOL_POLICY_MRU ? "MRU" : "LRU");
    printf("arena       %s (%" PRIu64 " bytes), %s for objects\n",
           cli_fmt_bytes(s->arena_bytes, a, sizeof a), s->arena_bytes,
           cli_fmt_bytes(s->data_bytes, b, sizeof b));
    printf("used        %s (%" PRIu64 " bytes), free %s, largest free %s\n",
           cli_fmt_bytes(s->used_bytes, a, sizeof a), s->used_bytes,
           cli_fmt_bytes(s->free_bytes, b, sizeof b),
           cli_fmt_bytes(s->largest_free_bytes, c, sizeof c));
    printf("objects     %" PRIu64 " of %" PRIu64 ": %" PRIu64 " in memory (%s), "
           "%" PRIu64 " on disk (%s), %" PRIu64 " pinned (%s)\n",
           s->objects, s->max_objects, s->mem_objects,
           cli_fmt_bytes(s->resident_bytes, a, sizeof a), s->disk_objects,
           cli_fmt_bytes(s->disk_bytes, b, sizeof b), s->pinned_objects,
           cli_fmt_bytes(s->pinned_bytes, c, sizeof c));
    printf("spill dir   %s (%s free of %s), io %s, spiller %s\n",
           s->spill_dir, cli_fmt_bytes(s->fs_free_bytes, a, sizeof a),
           cli_fmt_bytes(s->fs_total_bytes, b, sizeof b),
           s->pool_io_backend[0] ? s->pool_io_backend : "none yet",
           s->spiller == 0 ? "none" : s->spiller_alive ? "alive" : "dead");
    printf("workers     %" PRIu32 " attached: %" PRIu32 " alive, %" PRIu32
           " dead (not reaped)\n", s->workers, s->workers_alive,
           s->workers_dead);
    printf("totals      %" PRIu64 " sets, %" PRIu64 " gets, %" PRIu64
           " deletes; %" PRIu64 " spilled (%s), %" PRIu64 " restored\n",
           s->sets, s->gets, s->deletes, s->spills,
           cli_fmt_bytes(s->spill_bytes, a, sizeof a), s->restores);
    printf("events      %" PRIu64 " workers reaped, %" PRIu64 " pins recovered"
           ", %" PRIu64 " failed spills, %" PRIu64 " failed sets, %" PRIu64
           " corrupt files\n", s->reaped_workers, s->recovered_pins,
           s->spill_errors, s->set_errors, s->corrupt_files);
}

static void print_workers(mempool *p)
{
    bool header = false;
    for (int id = 1; id <= MEMPOOL_MAX_WORKERS; id++) {
        struct mempool_worker_stats w;
        char a[32], b[32], c[32];
        if (mempool_worker_stats_get(p, id, &w) < 0 ||
            w.state == MEMPOOL_WORKER_FREE)
            continue;
        if (!header)
            printf("\n%3s %8s %-5s %10s %10s %10s %8s %9s %9s %7s %5s\n",
                   "ID", "PID", "STATE", "RESIDENT", "LIMIT", "PINNED",
                   "OBJECTS", "SETS", "GETS", "SPILLS", "ERRS");
        header = true;
        char pid[16] = "-";
        if (w.pid > 0)
            snprintf(pid, sizeof pid, "%d", w.pid);
        printf("%3d %8s %-5s %10s %10s %10s %8" PRIu64 " %9" PRIu64
               " %9" PRIu64 " %7" PRIu64 " %5" PRIu64 "%s\n",
               w.id, pid, state_name(w.state),
               cli_fmt_bytes(w.resident_bytes, a, sizeof a),
               w.max_memsize ? cli_fmt_bytes(w.max_memsize, b, sizeof b)
                             : "none",
               cli_fmt_bytes(w.pinned_bytes, c, sizeof c), w.objects, w.sets,
               w.gets, w.spills, w.errors, w.spiller ? "  (spiller)" : "");
    }
}

static const char info_usage[] =
    "Usage: mempool info NAME [--json]\n"
    "Print pool NAME's figures and one line per worker, read as an observer:\n"
    "no worker slot is taken and nothing in the pool changes, so it is safe\n"
    "on a busy pool or one whose workers were killed. --json prints the\n"
    "mempool_stats_json() document instead (README \"Stats schema\").\n"
    "Use 'mempool fsck NAME' to check the pool's invariants.\n";

int cmd_info(int argc, char **argv)
{
    if (cli_help_asked(argc, argv, info_usage))
        return CLI_OK;
    bool json = false;
    const char *name = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = true;
        else if (name == NULL && argv[i][0] != '-')
            name = argv[i];
        else
            return cli_usage_error("info", "unexpected argument");
    }
    if (name == NULL)
        return cli_usage_error("info", "missing pool NAME");
    mempool *p;
    if (cli_observe("info", name, &p) < 0)
        return CLI_FAIL;
    struct mempool_stats s;
    char *doc = NULL;
    int rc = json ? mempool_stats_json(p, &doc) : mempool_stats_get(p, &s);
    if (rc < 0) {
        cli_error("info", rc, "stats");
    } else if (json) {
        printf("%s\n", doc);
        free(doc);
    } else {
        print_stats(&s);
        print_workers(p);
    }
    mempool_close(p);
    return rc < 0 ? CLI_FAIL : CLI_OK;
}

static const char ls_usage[] =
    "Usage: mempool ls [--json]\n"
    "List the pools on this host (/dev/shm/mempool.*) with their size, use,\n"
    "objects and attached workers, alive or dead. Read as an observer:\n"
    "nothing is changed. --json prints one document with each pool's\n"
    "mempool_stats_json().\n";

int cmd_ls(int argc, char **argv)
{
    if (cli_help_asked(argc, argv, ls_usage))
        return CLI_OK;
    bool json = argc == 2 && strcmp(argv[1], "--json") == 0;
    if (argc > 2 || (argc == 2 && !json))
        return cli_usage_error("ls", "unexpected argument");
    struct cli_pool *v;
    int n = cli_pools(&v, json);
    if (n < 0) {
        cli_error("ls", n, "/dev/shm");
        return CLI_FAIL;
    }
    if (json)
        cli_pools_json(stdout, v, n);
    else
        cli_pools_print(stdout, v, n);
    cli_pools_free(v, n);
    return CLI_OK;
}

static const char fsck_usage[] =
    "Usage: mempool fsck NAME [--repair]\n"
    "Check pool NAME's invariants (mempool_check): every byte of the arena is\n"
    "free, owned by a live object or in flight for a live worker; the\n"
    "allocator's pages, bitmap and lists and every worker's counters agree\n"
    "with the object table; no dead worker still holds pins or memory.\n"
    "Attaches as an observer and changes nothing, except what any worker\n"
    "does when it finds the allocator lock's holder dead: rebuild the\n"
    "allocator state from the table. The check holds the allocator lock\n"
    "while it scans (sets wait; gets do not).\n"
    "Every spill file is read and its checksums verified.\n"
    "  --repair  attach as a worker and reap dead workers (drop their pins\n"
    "            and references, free their reservations), drop objects\n"
    "            whose only copy (a spill file) is missing or damaged and\n"
    "            forget damaged clean copies (counted), then check again\n"
    "Exit status: 0 healthy (or repaired), 1 problems remain or the check\n"
    "failed, 2 usage error.\n";

/* mempool_check() through a handle; prints the verdict. */
static int fsck_check(mempool *p, const char *name)
{
    char why[512] = "";
    int rc = mempool_check(p, why, sizeof why);
    if (rc == 0)
        printf("%s: ok\n", name);
    else if (rc == MEMPOOL_ECORRUPT)
        printf("%s: problem: %s\n", name, why[0] ? why : "(no detail)");
    else if (rc == -EAGAIN && why[0])
        printf("%s: not checked: %s\n", name, why);   /* a stopped worker */
    else
        cli_error("fsck", rc, "check");
    return rc;
}

static int fsck_repair(const char *name)
{
    mempool_options o;
    mempool_options_init(&o);
    o.flags = 0;        /* never create */
    o.spiller = 0;
    mempool *p;
    struct mempool_stats before, after;
    mempool *q;
    if (cli_observe("fsck", name, &q) < 0)
        return CLI_FAIL;
    int rc = mempool_stats_get(q, &before);
    mempool_close(q);
    if (rc == 0 && (rc = mempool_open(name, &o, &p)) == 0) {
        uint64_t dropped = 0, forgotten = 0;
        /* opening reaped already; repair catches late ones */
        rc = mempool_repair(p, &dropped, &forgotten);
        if (rc == 0)
            rc = mempool_stats_get(p, &after);
        if (rc == 0)
            printf("%s: repair: reaped %" PRIu64 " dead worker(s), dropped "
                   "%" PRIu64 " object(s) whose only copy (a spill file) "
                   "was missing or damaged, forgot %" PRIu64 " damaged "
                   "clean copies\n", name,
                   after.reaped_workers - before.reaped_workers, dropped,
                   forgotten);
        if (rc == 0)
            rc = fsck_check(p, name);
        mempool_close(p);
        if (rc == MEMPOOL_ECORRUPT)
            fprintf(stderr, "mempool fsck: %s: the problem above is not one "
                            "reaping can repair\n", name);
        return rc == 0 ? CLI_OK : CLI_FAIL;
    }
    char what[MEMPOOL_NAME_MAX + 16];
    snprintf(what, sizeof what, "pool '%s'", name);
    cli_error("fsck", rc, what);
    return CLI_FAIL;
}

int cmd_fsck(int argc, char **argv)
{
    if (cli_help_asked(argc, argv, fsck_usage))
        return CLI_OK;
    bool repair = false;
    const char *name = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--repair") == 0)
            repair = true;
        else if (name == NULL && argv[i][0] != '-')
            name = argv[i];
        else
            return cli_usage_error("fsck", "unexpected argument");
    }
    if (name == NULL)
        return cli_usage_error("fsck", "missing pool NAME");
    mempool *p;
    if (cli_observe("fsck", name, &p) < 0)
        return CLI_FAIL;
    int rc = fsck_check(p, name);
    mempool_close(p);
    if (rc == 0)
        return CLI_OK;
    if (rc == MEMPOOL_ECORRUPT && repair)
        return fsck_repair(name);
    if (rc == MEMPOOL_ECORRUPT)
        fprintf(stderr, "mempool fsck: %s: problems found; nothing was "
                        "changed (--repair reaps dead workers and drops "
                        "objects whose spill file is lost)\n", name);
    return CLI_FAIL;
}

/* Progress lines are drawn between chunks of this size. */
#define CHUNK ((size_t)8 << 20)

/* Store a regular file of known size by reading it straight into a
 * reservation in the arena: no intermediate copy. */
static int put_regular(mempool *p, int fd, size_t len, mempool_dref *r)
{
    char *buf;
    int rc = mempool_reserve(p, len, NULL, (void **)&buf, r);
    if (rc < 0)
        return rc;
    for (size_t done = 0, n; rc == 0 && done < len; done += n) {
        n = len - done < CHUNK ? len - done : CHUNK;
        rc = cli_read_all(fd, buf + done, n);
        cli_progress("put", done + n, len);
    }
    cli_progress_end();
    if (rc < 0) {
        mempool_abort(p, *r);
        return rc == -EPIPE ? -EIO : rc; /* file shrank under us */
    }
    rc = mempool_publish(p, *r);
    if (rc < 0)
        mempool_abort(p, *r);
    return rc;
}

/* The most one object of this worker can hold: the pool's data space, or
 * the worker's memory limit if lower (a bigger set fails with -E2BIG). */
static size_t put_bound(mempool *p)
{
    struct mempool_stats s;
    struct mempool_worker_stats w;
    uint64_t bound = UINT64_MAX;
    if (mempool_stats_get(p, &s) == 0)
        bound = s.data_bytes;
    if (mempool_worker_stats_get(p, mempool_worker_id(p), &w) == 0 &&
        w.max_memsize && w.max_memsize < bound)
        bound = w.max_memsize;
    return bound < SIZE_MAX ? (size_t)bound : SIZE_MAX - 1;
}

/* Store a stream of unknown length (a pipe, a device, a /proc file): read
 * it all, then copy it in. Reading stops with -EFBIG as soon as the input
 * passes what the pool could hold, so an endless input (/dev/zero) costs
 * at most that much memory and ends at once. */
static int put_stream(mempool *p, int fd, mempool_dref *r)
{
    size_t bound = put_bound(p), cap = 1 << 16, len = 0;
    char *buf;
    if (cap > bound + 1)
        cap = bound + 1;
    if (!(buf = malloc(cap)))
        return -ENOMEM;
    for (;;) {
        ssize_t n = read(fd, buf + len, cap - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int err = -errno;
            free(buf);
            return err;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len > bound) {
            free(buf);
            return -EFBIG;
        }
        if (len == cap) {
            size_t ncap = cap > (bound + 1) / 2 ? bound + 1 : cap * 2;
            char *bigger = realloc(buf, ncap);
            if (bigger == NULL) {
                free(buf);
                return -ENOMEM;
            }
            buf = bigger;
            cap = ncap;
        }
    }
    int rc = mempool_put(p, buf, len, r);
    free(buf);
    return rc;
}

static int put_fd(mempool *p, int fd, mempool_dref *r)
{
    struct stat st;
    /* A regular file that says it is empty may not be (/proc, /sys):
     * read those as streams. */
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0)
        return put_regular(p, fd, (size_t)st.st_size, r);
    return put_stream(p, fd, r);
}

static const char put_usage[] =
    "Usage: mempool put NAME FILE|- [--name OBJNAME] [--any-owner]\n"
    "Store the bytes of FILE (or of stdin for '-') as a new object in pool\n"
    "NAME and print its DRef. The object stays until 'mempool rm'. Input\n"
    "larger than one object of the pool can be is refused as soon as that\n"
    "is known (an endless stream ends at once, memory stays bounded).\n"
    "  --name OBJNAME  also bind OBJNAME to it in the pool's name directory\n"
    "                  (fails, storing nothing, if OBJNAME is bound)\n"
    CLI_ANY_OWNER_HELP;

int cmd_put(int argc, char **argv)
{
    if (cli_help_asked(argc, argv, put_usage))
        return CLI_OK;
    const char *name = NULL;
    if (argc == 5 && strcmp(argv[3], "--name") == 0) {
        name = argv[4];          /* mempool put POOL FILE --name NAME */
        argc = 3;
    }
    if (argc != 3)
        return cli_usage_error("put", "want a pool NAME and a FILE (or -)");
    const char *path = argv[2];
    int fd = strcmp(path, "-") == 0 ? STDIN_FILENO
                                    : open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        cli_error("put", -errno, path);
        return CLI_FAIL;
    }
    mempool *p;
    int rc = cli_attach("put", argv[1], &p);
    mempool_dref r = { 0 };
    if (rc == 0) {
        rc = put_fd(p, fd, &r);
        if (rc == -EFBIG)
            fprintf(stderr, "%s put: %s: the input is larger than one "
                    "object of this pool can be (%zu bytes); stopped "
                    "reading\n", cli_prog, path, put_bound(p));
        else if (rc < 0)
            cli_error("put", rc, path);
        if (rc == 0 && name && (rc = mempool_name_put(p, name, r, 0)) < 0) {
            cli_error("put", rc, name);
            mempool_delete(p, r);
        }
        mempool_close(p);
    }
    if (fd != STDIN_FILENO)
        close(fd);
    if (rc < 0)
        return CLI_FAIL;
    char text[MEMPOOL_DREF_STRLEN];
    mempool_dref_format(r, text, sizeof text);
    printf("%s\n", text);
    return CLI_OK;
}

static const char get_usage[] =
    "Usage: mempool get NAME DREF [--any-owner] [> FILE]\n"
    "Write the bytes of object DREF in pool NAME to stdout (zero-copy from\n"
    "the arena or its spill file).\n"
    CLI_ANY_OWNER_HELP;

int cmd_get(int argc, char **argv)
{
    if (cli_help_asked(argc, argv, get_usage))
        return CLI_OK;
    if (argc != 3)
        return cli_usage_error("get", "want a pool NAME and a DREF");
    mempool_dref r = { 0 };
    if (cli_parse_dref("get", argv[2], &r) != CLI_OK)
        return CLI_USAGE;
    mempool *p;
    if (cli_attach("get", argv[1], &p) < 0)
        return CLI_FAIL;
    mempool_view v;
    int rc = mempool_get(p, r, &v);
    if (rc < 0) {
        cli_error("get", rc, argv[2]);
    } else {
        const char *b = v.data;
        for (size_t done = 0, n; rc == 0 && done < v.len; done += n) {
            n = v.len - done < CHUNK ? v.len - done : CHUNK;
            rc = cli_write_all(STDOUT_FILENO, b + done, n);
            cli_progress("get", done + n, v.len);
        }
        cli_progress_end();
        if (rc < 0)
            cli_error("get", rc, "stdout");
        mempool_release(p, &v);
    }
    mempool_close(p);
    return rc < 0 ? CLI_FAIL : CLI_OK;
}

static const char rm_usage[] =
    "Usage: mempool rm NAME DREF [--any-owner]\n"
    "Delete object DREF from pool NAME. Readers holding it keep their view\n"
    "until they release it.\n"
    CLI_ANY_OWNER_HELP;

int cmd_rm(int argc, char **argv)
{
    if (cli_help_asked(argc, argv, rm_usage))
        return CLI_OK;
    if (argc != 3)
        return cli_usage_error("rm", "want a pool NAME and a DREF");
    mempool_dref r = { 0 };
    if (cli_parse_dref("rm", argv[2], &r) != CLI_OK)
        return CLI_USAGE;
    mempool *p;
    if (cli_attach("rm", argv[1], &p) < 0)
        return CLI_FAIL;
    int rc = mempool_delete(p, r);
    if (rc < 0)
        cli_error("rm", rc, argv[2]);
    mempool_close(p);
    return rc < 0 ? CLI_FAIL : CLI_OK;
}
