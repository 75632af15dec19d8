/* SPDX-License-Identifier: MIT */
/*
 * cli.h - what the tool sources share: the subcommand entry points that
 * mempool.c dispatches to, and small helpers (error messages, size parsing
 * and printing, a checksum, whole-buffer I/O, a clock).
 *
 * The tools use only the public API in <mempool/mempool.h>; nothing here reaches
 * into the library. Exit codes follow one convention everywhere:
 * CLI_OK (0) success, CLI_FAIL (1) an operation failed, CLI_USAGE (2) the
 * command line was wrong.
 */
#ifndef MEMPOOL_CLI_H
#define MEMPOOL_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <mempool/mempool.h>

enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

/* Subcommands: each takes argv with argv[0] the subcommand's name and
 * returns an exit code. */
int cmd_create(int argc, char **argv);
int cmd_destroy(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_put(int argc, char **argv);
int cmd_get(int argc, char **argv);
int cmd_rm(int argc, char **argv);
int cmd_demo(int argc, char **argv);
int cmd_demo_consumer(int argc, char **argv);
int cmd_ls(int argc, char **argv);
int cmd_fsck(int argc, char **argv);
int cmd_name(int argc, char **argv);   /* handoff_cmd.c */
int cmd_chan(int argc, char **argv);

/** Print "mempool <cmd>: <what>: <mempool_strerror(err)>" to stderr. */
void cli_error(const char *cmd, int err, const char *what);

/** Print "mempool <cmd>: <msg>" and a hint at --help to stderr; returns
 *  CLI_USAGE so callers can `return cli_usage_error(...)`. */
int cli_usage_error(const char *cmd, const char *msg);

/** True when @p arg is "-h" or "--help". */
bool cli_is_help(const char *arg);

/** Print @p usage to stdout and return true when any argument asks for
 *  help. */
bool cli_help_asked(int argc, char **argv, const char *usage);

/** Parse DRef text for @p cmd; a malformed one is reported and is a usage
 *  error. @return CLI_OK or CLI_USAGE. */
int cli_parse_dref(const char *cmd, const char *s, mempool_dref *out);

/** Parse a byte count: digits with an optional K, M, G or T suffix (powers
 *  of 1024, "KiB"/"MB" spellings accepted). @return 0 or -EINVAL. */
int cli_parse_size(const char *s, uint64_t *out);

/** Parse a decimal count in [lo, hi]. @return 0 or -EINVAL. */
int cli_parse_count(const char *s, long lo, long hi, long *out);

/** Format @p n bytes as "512 B", "4.0 KiB", "1.50 GiB" into @p buf. */
const char *cli_fmt_bytes(uint64_t n, char *buf, size_t len);

/** A fast, order-sensitive 64-bit checksum of @p n bytes at @p p. */
uint64_t cli_checksum(const void *p, size_t n);

/** Write all @p n bytes, retrying on EINTR and short writes.
 *  @return 0 or -errno. */
int cli_write_all(int fd, const void *buf, size_t n);

/** Read exactly @p n bytes. @return 0, -EPIPE at end of file, or -errno. */
int cli_read_all(int fd, void *buf, size_t n);

/** CLOCK_MONOTONIC in nanoseconds. */
uint64_t cli_now_ns(void);

/* ---- pools.c: observing pools, listing them, progress ----------------- */

/** Attach to pool @p name as an observer (MEMPOOL_OPEN_OBSERVE): no slot,
 *  nothing changed. On failure prints "<prog> <cmd>: pool 'NAME': <error>"
 *  (prog is "mempool" unless @p cmd is NULL, then only the tool's name
 *  cli_prog). @return 0 or the error. */
int cli_observe(const char *cmd, const char *name, mempool **out);

/** Attach to the existing pool @p name as a worker (never creates, never
 *  stands for spiller; with MEMPOOL_OPEN_ANY_OWNER when cli_any_owner is
 *  set); failures are reported like cli_observe's.
 *  @return 0 or the error. */
int cli_attach(const char *cmd, const char *name, mempool **out);

/** --any-owner was given: cli_attach() passes MEMPOOL_OPEN_ANY_OWNER. */
#define CLI_ANY_OWNER_HELP \
    "  --any-owner     attach even to a pool another user owns (trust it\n" \
    "                  first: MEMPOOL_OPEN_ANY_OWNER; else -EPERM)\n"
extern bool cli_any_owner;

/** Remove every "--any-owner" from @p argv[1..argc) (up to a "--") and set
 *  cli_any_owner if there was one. @return the new argc. */
int cli_take_any_owner(int argc, char **argv);

/** The program name used in messages ("mempool", "mempool-top"). */
extern const char *cli_prog;

/** One pool found on the host. */
struct cli_pool {
    char   name[MEMPOOL_NAME_MAX + 1];
    int    err;                 /* 0, or why it could not be observed */
    struct mempool_stats s;     /* when err is 0 */
    char  *json;                /* mempool_stats_json(), when asked for */
};

/** Every pool in /dev/shm (names "mempool.NAME" without '#'), sorted by
 *  name, each observed once. With @p json, also its JSON document.
 *  @return the count (*out to cli_pools_free), or -errno. */
int  cli_pools(struct cli_pool **out, bool json);
void cli_pools_free(struct cli_pool *v, int n);
/** The table `mempool ls` prints. */
void cli_pools_print(FILE *f, const struct cli_pool *v, int n);
/** Write @p s as a JSON string: quotes, backslashes and every control
 *  character escaped, invalid UTF-8 replaced by U+FFFD (escape.c). */
void cli_json_string(FILE *f, const char *s);
/** @p s with every byte outside printable ASCII (and the backslash) shown
 *  as \xHH (\\), into @p buf; never a terminal escape. @return buf. */
const char *cli_printable(const char *s, char *buf, size_t len);
/** {"schema":2,"time_ns":..,"pools":[DOC | {"name":..,"error":..}, ...]} */
void cli_pools_json(FILE *f, const struct cli_pool *v, int n);

/** A progress line on stderr, only when stderr is a terminal: "@p what
 *  45% 120 MiB / 256 MiB", redrawn at most 10 times a second. */
void cli_progress(const char *what, uint64_t done, uint64_t total);
/** Erase the progress line (if one was drawn). */
void cli_progress_end(void);

#endif /* MEMPOOL_CLI_H */
