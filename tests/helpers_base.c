/* SPDX-License-Identifier: MIT */
/*
 * helpers_base.c - clocks and rm -rf for the test suites (see
 * helpers_base.h for why these live apart from helpers.c).
 */
#include "helpers_base.h"

#include <ftw.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>

void t_sleep_ms(int ms)
{
    nanosleep(&(struct timespec){ ms / 1000, (ms % 1000) * 1000000L }, NULL);
}

double t_now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

uint64_t t_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int rm_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

void t_rm_tree(const char *path)
{
    /* FTW_DEPTH: children before their directory; FTW_PHYS: a symlink is
     * removed, never followed. */
    nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}
