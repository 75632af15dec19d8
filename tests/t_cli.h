/* SPDX-License-Identifier: MIT */
/*
 * t_cli.h - running a command-line tool from a test: its exit status and
 * what it wrote to stdout and stderr, with a watchdog (test process only).
 */
#ifndef T_CLI_H
#define T_CLI_H

#include <stddef.h>

/** What a program run produced. */
struct t_cli_out {
    int    status;   /**< exit status, 128+signal, -1 hung */
    char  *out;      /**< stdout, NUL-terminated (up to cap - 1 bytes) */
    char  *err;      /**< stderr, NUL-terminated (up to 16 KiB) */
    size_t out_len;
    long   maxrss_kb;/**< the program's peak resident set */
};

/** Run @p argv (NULL-terminated) with @p in as stdin (NULL: /dev/null),
 *  keeping at most @p cap bytes of stdout. @return the exit status. */
int t_cli_run(struct t_cli_out *r, size_t cap, const char *in,
              char *const argv[]);
/** Free what t_cli_run() kept. */
void t_cli_free(struct t_cli_out *r);

#endif /* T_CLI_H */
