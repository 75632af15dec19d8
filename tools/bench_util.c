/* SPDX-License-Identifier: MIT */
/*
 * bench_util.c - number formatting and medians for every section of
 * mempool-bench (a leaf: the sections and the children call it, it calls
 * none of them).
 */
#include "bench.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double bench_median(double *v, int n)
{
    if (n <= 0)
        return NAN;
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

const char *bench_fmt_ns(double ns, char *buf, size_t len)
{
    if (ns < 10)
        snprintf(buf, len, "%.1f ns", ns);
    else if (ns < 1e3)
        snprintf(buf, len, "%.0f ns", ns);
    else if (ns < 1e6)
        snprintf(buf, len, "%.*f µs", ns < 1e4 ? 2 : 1, ns / 1e3);
    else
        snprintf(buf, len, "%.*f ms", ns < 1e7 ? 2 : 1, ns / 1e6);
    return buf;
}

const char *bench_fmt_rate(double r, char *buf, size_t len)
{
    static const char *const prefix[] = {"", " k", " M", " G"};
    int u = 0;
    if (r <= 0 || isnan(r)) {
        snprintf(buf, len, "–");
        return buf;
    }
    while (r >= 1000 && u < 3) {
        r /= 1000;
        u++;
    }
    if (r < 1)
        snprintf(buf, len, "%.2g", r);
    else
        snprintf(buf, len, "%.*f%s", r < 10 ? 2 : r < 100 ? 1 : 0, r,
                 prefix[u]);
    return buf;
}
