/* SPDX-License-Identifier: MIT */
/*
 * commands.c - the small administrative subcommands of `mempool`: create,
 * destroy, info, put, get and rm. Each is a thin shell over one or two
 * library calls, so an operator (or a test script) can poke a pool by hand:
 *
 *   mempool create jobs --size 256M
 *   r=$(mempool put jobs data.bin)
 *   mempool get jobs "$r" | cmp - data.bin
 *   mempool rm jobs "$r"; mempool info jobs; mempool destroy jobs
 *
 * Every command but create attaches to an existing pool and never creates
 * one. Errors go to stderr with mempool_strerror()'s text; exit codes are
 * CLI_OK, CLI_FAIL and CLI_USAGE (cli.h).
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

/* Print @p usage to stdout and return true when any argument asks for help. */
static bool handled_help(int argc, char **argv, const char *usage)
{
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            fputs(usage, stdout);
            return true;
        }
    }
    return false;
}

/* Attach to the existing pool @p name as a new worker. */
static int attach(const char *cmd, const char *name, mempool **out)
{
    mempool_options o;
    mempool_options_init(&o);
    o.flags = 0; /* never create */
    int rc = mempool_open(name, &o, out);
    if (rc < 0) {
        char what[MEMPOOL_NAME_MAX + 16];
        snprintf(what, sizeof what, "pool '%s'", name);
        cli_error(cmd, rc, what);
    }
    return rc;
}

/* Parse a DRef argument; a malformed one is a usage error. */
static int parse_dref(const char *cmd, const char *s, mempool_dref *out)
{
    if (mempool_dref_parse(s, out) == 0)
        return CLI_OK;
    fprintf(stderr, "mempool %s: '%s' is not a DRef (want off:gen, 16 hex "
                    "digits each, as printed by 'mempool put')\n", cmd, s);
    return CLI_USAGE;
}

static const char create_usage[] =
    "Usage: mempool create NAME [--size BYTES]\n"
    "Create pool NAME with an arena of BYTES (suffixes K, M, G; default\n"
    "1G). Fails if the pool already exists.\n";

int cmd_create(int argc, char **argv)
{
    if (handled_help(argc, argv, create_usage))
        return CLI_OK;
    mempool_options o;
    mempool_options_init(&o);
    o.flags = MEMPOOL_OPEN_CREATE | MEMPOOL_OPEN_EXCL;
    const char *name = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--size") == 0 && i + 1 < argc) {
            if (cli_parse_size(argv[++i], &o.arena_bytes) < 0)
                return cli_usage_error("create", "bad --size");
        } else if (name == NULL && argv[i][0] != '-') {
            name = argv[i];
        } else {
            return cli_usage_error("create", "unexpected argument");
        }
    }
    if (name == NULL)
        return cli_usage_error("create", "missing pool NAME");
    mempool *p;
    int rc = mempool_open(name, &o, &p);
    if (rc < 0) {
        cli_error("create", rc, name);
        return CLI_FAIL;
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
    if (handled_help(argc, argv, destroy_usage))
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

static void print_stats(const char *name, const struct mempool_stats *s)
{
    char a[32], b[32];
    printf("pool        %s\n", name);
    printf("arena       %s (%" PRIu64 " bytes), %s for objects\n",
           cli_fmt_bytes(s->arena_bytes, a, sizeof a), s->arena_bytes,
           cli_fmt_bytes(s->data_bytes, b, sizeof b));
    printf("used        %s (%" PRIu64 " bytes)\n",
           cli_fmt_bytes(s->used_bytes, a, sizeof a), s->used_bytes);
    printf("free        %s\n", cli_fmt_bytes(s->free_bytes, a, sizeof a));
    printf("resident    %s in objects\n",
           cli_fmt_bytes(s->resident_bytes, a, sizeof a));
    printf("objects     %" PRIu64 " of %" PRIu64 "\n", s->objects,
           s->max_objects);
    printf("workers     %" PRIu32 " of %" PRIu32 " (counting this command)\n",
           s->workers, s->max_workers);
}

static const char info_usage[] =
    "Usage: mempool info NAME\n"
    "Print pool NAME's figures (mempool_stats) and check its invariants.\n"
    "Exits 1 if the check fails.\n";

int cmd_info(int argc, char **argv)
{
    if (handled_help(argc, argv, info_usage))
        return CLI_OK;
    if (argc != 2)
        return cli_usage_error("info", "want exactly one pool NAME");
    mempool *p;
    if (attach("info", argv[1], &p) < 0)
        return CLI_FAIL;
    struct mempool_stats s;
    memset(&s, 0, sizeof s);
    s.size = sizeof s;
    int rc = mempool_stats(p, &s);
    if (rc < 0) {
        cli_error("info", rc, "stats");
        mempool_close(p);
        return CLI_FAIL;
    }
    print_stats(argv[1], &s);
    char why[256] = "";
    rc = mempool_check(p, why, sizeof why);
    printf("check       %s%s%s\n", rc == 0 ? "ok" : mempool_strerror(rc),
           why[0] != '\0' ? ": " : "", why);
    mempool_close(p);
    return rc == 0 ? CLI_OK : CLI_FAIL;
}

/* Store a regular file of known size by reading it straight into a
 * reservation in the arena: no intermediate copy. */
static int put_regular(mempool *p, int fd, size_t len, mempool_dref *r)
{
    void *buf;
    int rc = mempool_reserve(p, len, NULL, &buf, r);
    if (rc < 0)
        return rc;
    rc = cli_read_all(fd, buf, len);
    if (rc < 0) {
        mempool_abort(p, *r);
        return rc == -EPIPE ? -EIO : rc; /* file shrank under us */
    }
    rc = mempool_publish(p, *r);
    if (rc < 0)
        mempool_abort(p, *r);
    return rc;
}

/* Store a stream of unknown length: read it all, then copy it in. */
static int put_stream(mempool *p, int fd, mempool_dref *r)
{
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (buf == NULL)
            return -ENOMEM;
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
        if (len == cap) {
            char *bigger = realloc(buf, cap *= 2);
            if (bigger == NULL)
                free(buf);
            buf = bigger;
        }
    }
    int rc = mempool_set(p, buf, len, r);
    free(buf);
    return rc;
}

static int put_fd(mempool *p, int fd, mempool_dref *r)
{
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
        return put_regular(p, fd, (size_t)st.st_size, r);
    return put_stream(p, fd, r);
}

static const char put_usage[] =
    "Usage: mempool put NAME FILE|-\n"
    "Store the bytes of FILE (or of stdin for '-') as a new object in pool\n"
    "NAME and print its DRef. The object stays until 'mempool rm'.\n";

int cmd_put(int argc, char **argv)
{
    if (handled_help(argc, argv, put_usage))
        return CLI_OK;
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
    int rc = attach("put", argv[1], &p);
    mempool_dref r;
    if (rc == 0) {
        rc = put_fd(p, fd, &r);
        if (rc < 0)
            cli_error("put", rc, path);
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
    "Usage: mempool get NAME DREF\n"
    "Write the bytes of object DREF in pool NAME to stdout.\n";

int cmd_get(int argc, char **argv)
{
    if (handled_help(argc, argv, get_usage))
        return CLI_OK;
    if (argc != 3)
        return cli_usage_error("get", "want a pool NAME and a DREF");
    mempool_dref r;
    if (parse_dref("get", argv[2], &r) != CLI_OK)
        return CLI_USAGE;
    mempool *p;
    if (attach("get", argv[1], &p) < 0)
        return CLI_FAIL;
    mempool_view v;
    int rc = mempool_get(p, r, &v);
    if (rc < 0) {
        cli_error("get", rc, argv[2]);
    } else {
        rc = cli_write_all(STDOUT_FILENO, v.data, v.len);
        if (rc < 0)
            cli_error("get", rc, "stdout");
        mempool_release(p, &v);
    }
    mempool_close(p);
    return rc < 0 ? CLI_FAIL : CLI_OK;
}

static const char rm_usage[] =
    "Usage: mempool rm NAME DREF\n"
    "Delete object DREF from pool NAME. Readers holding it keep their view\n"
    "until they release it.\n";

int cmd_rm(int argc, char **argv)
{
    if (handled_help(argc, argv, rm_usage))
        return CLI_OK;
    if (argc != 3)
        return cli_usage_error("rm", "want a pool NAME and a DREF");
    mempool_dref r;
    if (parse_dref("rm", argv[2], &r) != CLI_OK)
        return CLI_USAGE;
    mempool *p;
    if (attach("rm", argv[1], &p) < 0)
        return CLI_FAIL;
    int rc = mempool_delete(p, r);
    if (rc < 0)
        cli_error("rm", rc, argv[2]);
    mempool_close(p);
    return rc < 0 ? CLI_FAIL : CLI_OK;
}
