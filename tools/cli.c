/* SPDX-License-Identifier: MIT */
/*
 * cli.c - helpers shared by the `mempool` command and `mempool-bench`:
 * uniform error and usage messages, byte-count parsing and printing, a
 * checksum fast enough to verify 64 MiB objects without dominating a demo,
 * whole-buffer pipe I/O and a monotonic clock.
 *
 * Kept apart from the commands so that each command file holds only its own
 * logic, and so the benchmark can reuse the same helpers without pulling in
 * the subcommands.
 */
#include "cli.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

void cli_error(const char *cmd, int err, const char *what)
{
    if (cmd)
        fprintf(stderr, "%s %s: %s: %s\n", cli_prog, cmd, what,
                mempool_strerror(err));
    else
        fprintf(stderr, "%s: %s: %s\n", cli_prog, what,
                mempool_strerror(err));
}

int cli_usage_error(const char *cmd, const char *msg)
{
    fprintf(stderr, "mempool %s: %s\n", cmd, msg);
    fprintf(stderr, "Try 'mempool %s --help'.\n", cmd);
    return CLI_USAGE;
}

bool cli_is_help(const char *arg)
{
    return strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0;
}

bool cli_help_asked(int argc, char **argv, const char *usage)
{
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            fputs(usage, stdout);
            return true;
        }
    }
    return false;
}

int cli_parse_dref(const char *cmd, const char *s, mempool_dref *out)
{
    if (mempool_dref_parse(s, out) == 0)
        return CLI_OK;
    fprintf(stderr, "mempool %s: '%s' is not a DRef (want off:gen, 16 hex "
                    "digits each, as printed by 'mempool put')\n", cmd, s);
    return CLI_USAGE;
}

/* The multiplier a size suffix stands for, or 0 for an unknown suffix. */
static uint64_t suffix_scale(const char *s)
{
    static const struct { const char *name; unsigned shift; } units[] = {
        {"", 0},   {"B", 0},   {"K", 10},   {"KB", 10},  {"KiB", 10},
        {"M", 20}, {"MB", 20}, {"MiB", 20}, {"G", 30},   {"GB", 30},
        {"GiB", 30}, {"T", 40}, {"TB", 40}, {"TiB", 40},
    };
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (strcasecmp(s, units[i].name) == 0)
            return 1ull << units[i].shift;
    return 0;
}

int cli_parse_size(const char *s, uint64_t *out)
{
    if (s == NULL || *s < '0' || *s > '9')
        return -EINVAL;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    uint64_t scale = suffix_scale(end);
    if (errno != 0 || scale == 0 || v > UINT64_MAX / scale)
        return -EINVAL;
    *out = (uint64_t)v * scale;
    return 0;
}

int cli_parse_count(const char *s, long lo, long hi, long *out)
{
    if (s == NULL || *s < '0' || *s > '9')
        return -EINVAL;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < lo || v > hi)
        return -EINVAL;
    *out = v;
    return 0;
}

const char *cli_fmt_bytes(uint64_t n, char *buf, size_t len)
{
    static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)n;
    unsigned u = 0;
    while (v >= 1024.0 && u + 1 < sizeof unit / sizeof unit[0]) {
        v /= 1024.0;
        u++;
    }
    if (u == 0)
        snprintf(buf, len, "%" PRIu64 " B", n);
    else
        snprintf(buf, len, "%.*f %s", v < 10.0 ? 2 : 1, v, unit[u]);
    return buf;
}

static inline uint64_t rotl64(uint64_t x, unsigned r)
{
    return (x << r) | (x >> (64 - r));
}

static inline uint64_t mix_round(uint64_t acc, uint64_t w)
{
    return rotl64(acc + w * 0xc2b2ae3d27d4eb4full, 31) * 0x9e3779b185ebca87ull;
}

/* Four independent lanes over 32-byte stripes keep the multiplier busy, so
 * this runs at several GB/s; the tail and the length are folded in last. */
uint64_t cli_checksum(const void *p, size_t n)
{
    const unsigned char *b = p;
    uint64_t lane[4] = {1, 2, 3, 4};
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        for (int k = 0; k < 4; k++) {
            uint64_t w;
            memcpy(&w, b + i + 8 * k, sizeof w);
            lane[k] = mix_round(lane[k], w);
        }
    }
    uint64_t h = (uint64_t)n;
    for (int k = 0; k < 4; k++)
        h = mix_round(h, lane[k]);
    for (; i < n; i++)
        h = mix_round(h, b[i]);
    return h ^ (h >> 29);
}

int cli_write_all(int fd, const void *buf, size_t n)
{
    const char *c = buf;
    while (n > 0) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

int cli_read_all(int fd, void *buf, size_t n)
{
    char *c = buf;
    while (n > 0) {
        ssize_t r = read(fd, c, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        if (r == 0)
            return -EPIPE;
        c += r;
        n -= (size_t)r;
    }
    return 0;
}

uint64_t cli_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
