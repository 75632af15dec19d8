/* SPDX-License-Identifier: MIT */
/*
 * helpers_base.c - clocks, rm -rf and the main() of white-box suites that
 * work in a directory of their own (see helpers_base.h for why these live
 * apart from helpers.c).
 */
#include "helpers_base.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

int t_run_in_dir(Suite *s, char *root, size_t len, const char *area)
{
    SRunner *sr = srunner_create(s);
    int failed;

    snprintf(root, len, "/tmp/mempool-check-%s-XXXXXX", area);
    if (!mkdtemp(root)) {
        fprintf(stderr, "SKIP: mkdtemp %s: %s\n", root, strerror(errno));
        srunner_free(sr);
        return 77;
    }
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    t_rm_tree(root);
    return failed ? 1 : 0;
}
