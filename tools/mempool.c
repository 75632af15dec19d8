/* SPDX-License-Identifier: MIT */
/*
 * mempool.c - entry point of the `mempool` command: finds the subcommand in
 * one table and hands it the rest of the command line.
 *
 *   mempool create NAME [--size BYTES]   mempool put NAME FILE|-
 *   mempool destroy NAME                 mempool get NAME DREF
 *   mempool ls [--json]                  mempool rm NAME DREF
 *   mempool info NAME [--json]           mempool fsck NAME [--repair]
 *   mempool demo [--consumers N] [--pool NAME]
 *   mempool name put|get|drop|ls ...     mempool chan ls|send|recv ...
 *
 * The live view of a pool is a separate program, mempool-top (top.c).
 *
 * The table is the single list of subcommands, so the help text and the
 * dispatch cannot drift apart. Hidden entries (no summary) are internal, such
 * as the consumer side of the demo, which the demo starts by re-executing
 * this binary.
 */
#include "cli.h"

#include <stdio.h>
#include <string.h>

struct subcommand {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary; /* NULL: hidden */
    bool attaches;       /* attaches as a worker: takes --any-owner */
};

static const struct subcommand commands[] = {
    {"create", cmd_create, "create a pool (--size BYTES, default 1 GiB)",
     false},
    {"destroy", cmd_destroy, "remove a pool", false},
    {"ls", cmd_ls, "list the pools on this host", false},
    {"info", cmd_info, "print a pool's figures and workers", false},
    {"put", cmd_put, "store a file (or stdin) and print its DRef", true},
    {"get", cmd_get, "write an object's bytes to stdout", true},
    {"rm", cmd_rm, "delete an object", true},
    {"fsck", cmd_fsck, "check a pool's invariants (--repair: reap dead)",
     false},
    {"name", cmd_name, "bind, look up, drop, list names (put|get|drop|ls)",
     true},
    {"chan", cmd_chan, "list channels, send or receive a DRef (ls|send|recv)",
     true},
    {"demo", cmd_demo, "run a producer and consumer processes, verify all",
     false},
    {"demo-consumer", cmd_demo_consumer, NULL, false},
};

static void print_help(FILE *f)
{
    fprintf(f, "Usage: mempool COMMAND [ARGS...]\n"
               "Share objects between processes through one shm arena.\n\n"
               "Commands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (commands[i].summary != NULL)
            fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nRun 'mempool COMMAND --help' for a command's arguments, "
               "'man mempool' for more.\n"
               "Watch a pool live with mempool-top.\n"
               "put, get, rm, name and chan take --any-owner: attach to a "
               "pool another user\n"
               "owns (MEMPOOL_OPEN_ANY_OWNER; without it, -EPERM).\n"
               "Exit status: 0 success, 1 failure, 2 usage error.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        print_help(stderr);
        return CLI_USAGE;
    }
    if (cli_is_help(argv[1])) {
        print_help(stdout);
        return CLI_OK;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("mempool %s\n", mempool_version());
        return CLI_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(argv[1], commands[i].name) != 0)
            continue;
        if (commands[i].attaches)
            argc = cli_take_any_owner(argc - 1, argv + 1) + 1;
        return commands[i].run(argc - 1, argv + 1);
    }
    fprintf(stderr, "mempool: unknown command '%s'\n", argv[1]);
    fprintf(stderr, "Try 'mempool --help'.\n");
    return CLI_USAGE;
}
