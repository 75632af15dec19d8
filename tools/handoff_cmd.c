/* SPDX-License-Identifier: MIT */
/*
 * handoff_cmd.c - `mempool name ...` and `mempool chan ...`: the handoff
 * primitives from the shell, so scripts can hand objects over.
 *
 *   mempool name put POOL NAME DREF [--replace]
 *   mempool name get POOL NAME [--timeout MS]      prints the DRef
 *   mempool name drop POOL NAME
 *   mempool name ls POOL                           NAME<TAB>DREF lines
 *   mempool chan ls POOL
 *   mempool chan send POOL CHAN DREF [--timeout MS] [--create CAP]
 *   mempool chan recv POOL CHAN [--timeout MS] [--ttl MS]
 *
 * A command is a process that exits right away, and a reference it holds
 * would die with it. So `chan recv` of a refcounted object gives its new
 * reference into flight (mempool_ref_give, --ttl, default 60 s) before it
 * prints the DRef, for the next program to mempool_ref_take(); and
 * `chan send` of a refcounted object first takes a reference in flight
 * (what such a recv, or a producer's mempool_ref_give, left) to send.
 * Timeouts: milliseconds, -1 waits forever (default), 0 does not wait;
 * running out exits 1 with "timed out".
 */
#include "cli.h"

#include <errno.h>
#include <string.h>


static void print_dref(mempool_dref r)
{
    char text[MEMPOOL_DREF_STRLEN];
    mempool_dref_format(r, text, sizeof text);
    printf("%s\n", text);
}

/* Options after the positional arguments: --timeout MS, --ttl MS,
 * --create CAP, --replace. Returns the count of positionals or -1. */
struct hopts {
    long timeout, ttl, create;
    bool replace;
};

static int usage_fail(const char *cmd, const char *msg)
{
    cli_usage_error(cmd, msg);
    return -1;
}

static int parse_opts(const char *cmd, int argc, char **argv,
                      struct hopts *o, char **pos, int maxpos)
{
    int n = 0;
    o->timeout = -1;
    o->ttl = 60000;
    o->create = 0;
    o->replace = false;
    for (int i = 0; i < argc; i++) {
        long *dst = NULL, lo = -1;
        if (!strcmp(argv[i], "--timeout"))
            dst = &o->timeout;
        else if (!strcmp(argv[i], "--ttl"))
            dst = &o->ttl;
        else if (!strcmp(argv[i], "--create"))
            dst = &o->create, lo = 1;
        else if (!strcmp(argv[i], "--replace"))
            o->replace = true;
        else if (argv[i][0] == '-' && argv[i][1] == '-')
            return usage_fail(cmd, "unknown option");
        else if (n < maxpos)
            pos[n++] = argv[i];
        else
            return usage_fail(cmd, "too many arguments");
        if (dst && (i + 1 >= argc ||
                    cli_parse_count(argv[++i], lo, 1L << 40, dst) < 0))
            return usage_fail(cmd, "bad number");
    }
    return n;
}


/* ---- names -------------------------------------------------------------- */

static const char name_usage[] =
    "Usage: mempool name put POOL NAME DREF [--replace]\n"
    "       mempool name get POOL NAME [--timeout MS]\n"
    "       mempool name drop POOL NAME\n"
    "       mempool name ls POOL\n"
    "The pool's name directory: bind NAME (1..255 bytes) to object DREF,\n"
    "look it up (waiting up to MS ms for it to be bound; -1 forever, the\n"
    "default), unbind it, list the bindings (NAME<TAB>DREF; bytes outside\n"
    "printable ASCII shown as \\xHH, a backslash as \\\\). A name bound to\n"
    "a refcounted object holds a reference of its own.\n"
    "Every form takes --any-owner:\n"
    CLI_ANY_OWNER_HELP;

/* Room for a name of MEMPOOL_HNAME_MAX bytes shown as \xHH each. */
#define SHOWN_NAME_MAX (4 * MEMPOOL_HNAME_MAX + 1)

/* Names and channel names are chosen by whoever uses the pool: printed
 * escaped (escape.c), so no name can add a line, a column or a terminal
 * escape sequence to a listing. */
static int print_name(const char *name, mempool_dref r, void *arg)
{
    char text[MEMPOOL_DREF_STRLEN], shown[SHOWN_NAME_MAX];
    (void)arg;
    mempool_dref_format(r, text, sizeof text);
    printf("%s\t%s\n", cli_printable(name, shown, sizeof shown), text);
    return 0;
}

/* The arguments `name SUB POOL ...` want: 0, or CLI_USAGE after saying why.
 * A put's DRef is parsed into *@p r. */
static int name_args(char **pos, int n, mempool_dref *r)
{
    if (!strcmp(pos[0], "put")) {
        if (n != 4)
            return cli_usage_error("name", "put wants POOL NAME DREF");
        return cli_parse_dref("name", pos[3], r) ? CLI_USAGE : 0;
    }
    if (!strcmp(pos[0], "get") || !strcmp(pos[0], "drop"))
        return n == 3 ? 0 : cli_usage_error("name", "want POOL NAME");
    if (!strcmp(pos[0], "ls"))
        return n == 2 ? 0 : cli_usage_error("name", "ls wants POOL");
    return cli_usage_error("name", "want put, get, drop or ls");
}

/* Run name subcommand @p sub on @p p: 0 or a -errno. */
static int name_run(mempool *p, const char *sub, const char *name,
                    mempool_dref r, const struct hopts *o)
{
    int rc;
    if (!strcmp(sub, "put"))
        return mempool_name_put(p, name, r,
                                o->replace ? MEMPOOL_NAME_REPLACE : 0);
    if (!strcmp(sub, "get")) {
        if ((rc = mempool_name_get(p, name, &r, o->timeout)) == 0)
            print_dref(r);
        return rc;
    }
    if (!strcmp(sub, "drop"))
        return mempool_name_drop(p, name);
    return mempool_name_list(p, print_name, NULL);
}

int cmd_name(int argc, char **argv)
{
    struct hopts o;
    char *pos[4] = { NULL };
    mempool_dref r = { 0, 0 };
    mempool *p;
    int n, rc;

    if (cli_help_asked(argc, argv, name_usage))
        return CLI_OK;
    n = parse_opts("name", argc - 1, argv + 1, &o, pos, 4);
    if (n < 0)
        return CLI_USAGE;
    if (n < 2)
        return cli_usage_error("name", "want put|get|drop|ls and a POOL");
    if ((rc = name_args(pos, n, &r)) != 0)
        return rc;
    if (cli_attach("name", pos[1], &p) < 0)
        return CLI_FAIL;
    rc = name_run(p, pos[0], n > 2 ? pos[2] : NULL, r, &o);
    if (rc < 0)
        cli_error("name", rc, n > 2 ? pos[2] : pos[1]);
    mempool_close(p);
    return rc < 0 ? CLI_FAIL : CLI_OK;
}

/* ---- channels ----------------------------------------------------------- */

static const char chan_usage[] =
    "Usage: mempool chan ls POOL\n"
    "       mempool chan send POOL CHAN DREF [--timeout MS] [--create CAP]\n"
    "       mempool chan recv POOL CHAN [--timeout MS] [--ttl MS]\n"
    "Channels of pool POOL: list them; send object DREF (creating a queue\n"
    "channel of CAP items if missing with --create); receive one and print\n"
    "its DRef. A refcounted item's reference is handed on through flight:\n"
    "recv gives it (mempool_ref_give, expiring after --ttl ms, default\n"
    "60000) and send takes one that is in flight to move it.\n"
    "Every form takes --any-owner:\n"
    CLI_ANY_OWNER_HELP;

static int print_chan(const mempool_chan_info *ci, void *arg)
{
    char shown[SHOWN_NAME_MAX];
    (void)arg;
    printf("%-24s %-9s %8u %8llu %8llu %8llu %8llu %4u/%-4u\n",
           cli_printable(ci->name, shown, sizeof shown),
           (ci->flags & MEMPOOL_CHAN_BROADCAST) ? "broadcast" : "queue",
           ci->capacity, (unsigned long long)ci->depth,
           (unsigned long long)ci->sent, (unsigned long long)ci->received,
           (unsigned long long)ci->dropped, ci->senders_waiting,
           ci->receivers_waiting);
    return 0;
}

static int chan_send(mempool *p, const char *name, mempool_dref r,
                     const struct hopts *o)
{
    mempool_chan *c;
    int rc = mempool_chan_open(p, name, (uint32_t)o->create,
                               o->create ? MEMPOOL_CHAN_CREATE : 0, &c);
    if (rc == -EINVAL && !o->create)
        rc = mempool_chan_open(p, name, 0, MEMPOOL_CHAN_BROADCAST, &c);
    if (rc < 0)
        return rc;
    rc = mempool_chan_send(c, r, o->timeout);
    if (rc == -EINVAL && mempool_ref_take(p, r) == 0) {
        /* refcounted: the reference in flight is the one to send */
        if ((rc = mempool_chan_send(c, r, o->timeout)) < 0) {
            mempool_ref_give(p, r, -1);   /* put it back */
        }
    }
    mempool_chan_close(c);
    return rc;
}

static int chan_recv(mempool *p, const char *name, const struct hopts *o)
{
    mempool_chan *c;
    mempool_dref r = { 0 };
    int rc = mempool_chan_open(p, name, 0, 0, &c);
    if (rc == -EINVAL)
        rc = mempool_chan_open(p, name, 0, MEMPOOL_CHAN_BROADCAST, &c);
    if (rc < 0)
        return rc;
    rc = mempool_chan_recv(c, &r, o->timeout);
    mempool_chan_close(c);
    if (rc < 0)
        return rc;
    /* Refcounted: keep the object alive after we exit. Plain: -EINVAL. */
    rc = mempool_ref_give(p, r, o->ttl);
    if (rc == -EINVAL)
        rc = 0;
    if (rc == 0)
        print_dref(r);
    return rc;
}

int cmd_chan(int argc, char **argv)
{
    struct hopts o;
    char *pos[4] = { NULL };
    mempool_dref r = { 0 };
    mempool *p;
    int n, rc = 0;

    if (cli_help_asked(argc, argv, chan_usage))
        return CLI_OK;
    n = parse_opts("chan", argc - 1, argv + 1, &o, pos, 4);
    if (n < 0)
        return CLI_USAGE;
    if (n < 2)
        return cli_usage_error("chan", "want ls|send|recv and a POOL");
    if (!strcmp(pos[0], "send")) {
        if (n != 4)
            return cli_usage_error("chan", "send wants POOL CHAN DREF");
        if (cli_parse_dref("chan", pos[3], &r))
            return CLI_USAGE;
    } else if (!strcmp(pos[0], "recv")) {
        if (n != 3)
            return cli_usage_error("chan", "recv wants POOL CHAN");
    } else if (!strcmp(pos[0], "ls")) {
        if (n != 2)
            return cli_usage_error("chan", "ls wants POOL");
    } else {
        return cli_usage_error("chan", "want ls, send or recv");
    }
    if (cli_attach("chan", pos[1], &p) < 0)
        return CLI_FAIL;
    if (!strcmp(pos[0], "send")) {
        rc = chan_send(p, pos[2], r, &o);
    } else if (!strcmp(pos[0], "recv")) {
        rc = chan_recv(p, pos[2], &o);
    } else {
        printf("%-24s %-9s %8s %8s %8s %8s %8s %9s\n", "CHANNEL", "MODE",
               "CAP", "DEPTH", "SENT", "RECEIVED", "DROPPED", "WAIT S/R");
        rc = mempool_chan_list(p, print_chan, NULL);
    }
    if (rc < 0)
        cli_error("chan", rc, n > 2 ? pos[2] : pos[1]);
    mempool_close(p);
    return rc < 0 ? CLI_FAIL : CLI_OK;
}
