/* SPDX-License-Identifier: MIT */
/*
 * bench_spill_util.c - samples, medians, progress lines and stats for the
 * spill section's measurements (a leaf: it calls nothing of theirs).
 */
#include "bench_spill.h"
#include "cli.h"

#include <stdio.h>
#include <string.h>

void smp_add(struct samples *s, double v)
{
    if (s->n < (int)(sizeof s->v / sizeof s->v[0]))
        s->v[s->n++] = v;
}

/* A file of @p bytes written in @p ns: one GB/s sample. */
void smp_add_rate(struct samples *s, uint64_t bytes, uint64_t ns)
{
    smp_add(s, (double)bytes / (double)(ns ? ns : 1));
    s->bytes += bytes;
    s->ns += ns;
}

double smp_med(const struct samples *s)
{
    double v[sizeof s->v / sizeof s->v[0]];
    memcpy(v, s->v, (size_t)s->n * sizeof *v);
    return bench_median(v, s->n);
}

void spill_progress(const char *what)
{
    fprintf(stderr, "mempool-bench: spill: %s ...\n", what);
}

int spill_stats(mempool *p, struct mempool_stats *st)
{
    memset(st, 0, sizeof *st);
    st->size = sizeof *st;
    return mempool_stats_get(p, st);
}

/* Remember what backend handle @p i ran, once it has written. */
void spill_note_backend(struct spill *s, int i)
{
    struct mempool_stats st;
    if (s->backend[i][0] == '\0' && spill_stats(s->h[i], &st) == 0)
        snprintf(s->backend[i], sizeof s->backend[i], "%s", st.io_backend);
}
