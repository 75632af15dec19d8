/* SPDX-License-Identifier: MIT */
/*
 * demo_table.c - the table phase of `mempool demo`: typed objects through
 * the codec layer, handed from the producer to the consumers and read
 * zero-copy, from the arena or from a mapped spill file.
 *
 * The producer builds --tables tables (default 8) of a million rows each,
 * with two columns: "amount", int64, and "name", strings of two words from
 * a small UTF-8 vocabulary, about one in eight missing (which is not the
 * same as "": about one in 64 is a present empty string). Each table comes
 * from its own seed, into buffers reused from table to table, and is set
 * with mempool_put_obj(MEMPOOL_TYPE_TABLE), which encodes it straight into
 * the arena (one copy). A table is about 27 MB encoded, so the default
 * batch of eight passes the producer's max_memsize (128 MiB) and the later
 * sets spill the earlier tables to files. While building a table the
 * producer computes what a reader must find in it: the row count, the sum
 * of "amount", the bytes of the present names, how many names are missing,
 * and a checksum of the names' bytes in order.
 *
 * It then sends "T DREF" on the consumers' pipes, round-robin, as the bytes
 * phase does. A consumer sees the "T", mempool_get_obj()s the table (a view
 * whose columns point into the arena or into the mapped spill file: nothing
 * is copied or parsed into new memory), finds the columns by name, computes
 * the same figures straight from the view, releases it and answers
 * "INDEX T DREF M|D ROWS SUM BYTES MISSING CHECKSUM" (D: decoded from a
 * spill file). The producer compares the answer with its own figures and
 * deletes the table. Batches stay under the same flight budget as the bytes
 * phase (half the arena).
 */
#include "demo.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TABLE_ROWS   1000000u
#define NAME_MAX_LEN 32u /* two words of at most 15 bytes and a space */

/* What a reader must find in a table. */
struct agg {
    uint64_t rows;
    int64_t  sum;       /* of "amount" */
    uint64_t str_bytes; /* of the present names */
    uint64_t missing;   /* names missing (a present "" is not missing) */
    uint64_t str_sum;   /* cli_checksum of the names' bytes, in order */
};

/* ---- building tables (producer) ---------------------------------------- */

static const char *const words[16] = {
    "alder", "birch", "cedar", "elm", "fir", "hazel", "linden", "oak",
    "Ahorn", "Eiche", "érable", "châtaignier", "桜", "松", "ясень",
    "κέδρος",
};

/* One table's columns, rebuilt in place for each table. */
struct source {
    int64_t       *amount;
    uint64_t      *offsets;  /* TABLE_ROWS + 1 */
    uint8_t       *blob;     /* TABLE_ROWS * NAME_MAX_LEN */
    uint8_t       *validity; /* TABLE_ROWS / 8, rounded up */
    mempool_column cols[2];
    mempool_table  t;
};

static void source_free(struct source *s)
{
    free(s->amount);
    free(s->offsets);
    free(s->blob);
    free(s->validity);
}

static int source_alloc(struct source *s)
{
    s->amount = malloc(TABLE_ROWS * sizeof *s->amount);
    s->offsets = malloc((TABLE_ROWS + 1) * sizeof *s->offsets);
    s->blob = malloc(TABLE_ROWS * NAME_MAX_LEN);
    s->validity = malloc((TABLE_ROWS + 7) / 8);
    if (!s->amount || !s->offsets || !s->blob || !s->validity)
        return -ENOMEM;
    s->cols[0] = (mempool_column){
        .name = "amount", .type = MEMPOOL_TYPE_ARRAY,
        .array = {.dtype = MEMPOOL_DTYPE_INT64, .ndim = 1,
                  .shape = {TABLE_ROWS}, .data = s->amount}};
    s->cols[1] = (mempool_column){
        .name = "name", .type = MEMPOOL_TYPE_STRINGS,
        .strings = {TABLE_ROWS, s->offsets, s->blob, s->validity}};
    s->t = (mempool_table){.nrows = TABLE_ROWS, .ncols = 2, .cols = s->cols};
    return 0;
}

/* Write the name drawn by @p r at @p dst; @return its length. */
static uint64_t name_into(uint8_t *dst, uint64_t r)
{
    const char *a = words[r & 15], *b = words[(r >> 4) & 15];
    size_t la = strlen(a), lb = strlen(b);
    memcpy(dst, a, la);
    dst[la] = ' ';
    memcpy(dst + la + 1, b, lb);
    return la + 1 + lb;
}

/* Fill @p s with table @p k and compute what a reader must find in it. */
static void fill_table(struct source *s, long k, struct agg *e)
{
    uint64_t seed = 0x7ab1e5ull * (uint64_t)(k + 1), at = 0, sum = 0;
    memset(s->validity, 0, (TABLE_ROWS + 7) / 8);
    *e = (struct agg){.rows = TABLE_ROWS};
    s->offsets[0] = 0;
    for (uint64_t i = 0; i < TABLE_ROWS; i++) {
        uint64_t r = demo_splitmix64(&seed);
        unsigned kind = (unsigned)(r >> 32) & 63; /* < 8 missing, 8 "" */
        s->amount[i] = (int64_t)(r % 2000001) - 1000000;
        sum += (uint64_t)s->amount[i];
        if (kind < 8)
            e->missing++;
        else
            s->validity[i >> 3] |= (uint8_t)(1u << (i & 7));
        if (kind > 8)
            at += name_into(s->blob + at, r >> 40);
        s->offsets[i + 1] = at;
    }
    e->sum = (int64_t)sum;
    e->str_bytes = at;
    e->str_sum = cli_checksum(s->blob, at);
}

/* ---- reading tables (consumer) ----------------------------------------- */

/* The figures of a decoded table, read straight from the view. */
static void aggregate(const mempool_array *num, const mempool_strings *str,
                      struct agg *a)
{
    const int64_t *x = num->data;
    uint64_t sum = 0; /* wraps instead of overflowing, like the producer's */
    for (uint64_t i = 0; i < num->count; i++)
        sum += (uint64_t)x[i];
    a->sum = (int64_t)sum;
    for (uint64_t i = 0; i < str->n; i++) {
        uint64_t len;
        if (mempool_strings_at(str, i, &len) == NULL)
            a->missing++;
        else
            a->str_bytes += len;
    }
    a->str_sum = cli_checksum(str->blob, str->offsets[str->n]);
}

/* Decode table @p r zero-copy, aggregate it, release it; @p flags gets the
 * view's MEMPOOL_VIEW_* flags. */
static int read_table(mempool *p, mempool_dref r, struct agg *a,
                      uint32_t *flags)
{
    mempool_table t;
    mempool_view v;
    mempool_column num, str;
    int rc = mempool_get_obj(p, r, MEMPOOL_TYPE_TABLE, &t, &v);
    if (rc < 0)
        return rc;
    rc = mempool_table_find(&t, "amount", &num);
    if (rc == 0)
        rc = mempool_table_find(&t, "name", &str);
    if (rc == 0 && (num.type != MEMPOOL_TYPE_ARRAY ||
                    num.array.dtype != MEMPOOL_DTYPE_INT64 ||
                    str.type != MEMPOOL_TYPE_STRINGS))
        rc = -EPROTO; /* not a table this demo made */
    if (rc == 0) {
        *a = (struct agg){.rows = t.nrows};
        aggregate(&num.array, &str.strings, a);
        *flags = v.flags;
    }
    int rc2 = mempool_release(p, &v);
    return rc < 0 ? rc : rc2;
}

bool demo_table_consume(mempool *p, const char *line, char *report,
                        size_t len)
{
    char text[MEMPOOL_DREF_STRLEN + 1] = "-";
    mempool_dref r;
    struct agg a = {0};
    uint32_t flags = 0;
    int rc = sscanf(line, "T %33s", text) == 1 ? mempool_dref_parse(text, &r)
                                               : -EINVAL;
    if (rc == 0)
        rc = read_table(p, r, &a, &flags);
    if (rc < 0) {
        cli_error("demo-consumer", rc, text);
        snprintf(report, len, "BAD %s ?", text);
        return false;
    }
    snprintf(report, len, "T %s %c %" PRIu64 " %" PRId64 " %" PRIu64 " %"
             PRIu64 " %" PRIx64, text, (flags & MEMPOOL_VIEW_DISK) ? 'D' : 'M',
             a.rows, a.sum, a.str_bytes, a.missing, a.str_sum);
    return true;
}

/* ---- handing tables out (producer) ------------------------------------- */

struct sent_table {
    char       text[MEMPOOL_DREF_STRLEN];
    uint64_t   len;      /* encoded bytes */
    struct agg expect;
    int        consumer; /* -1: answered */
};

struct phase {
    struct source     src;
    struct sent_table f[DEMO_MAX_TABLES];
    int               n;            /* set, in this batch */
    uint64_t          flight_bytes; /* their encoded bytes */
};

/* Check one answer against the producer's figures, count it, delete the
 * table. */
static int take_answer(struct demo *d, struct phase *ph)
{
    char line[256], status[8], text[MEMPOOL_DREF_STRLEN + 1], where;
    int idx, pos = 0;
    int rc = demo_next_report(d, line, sizeof line);
    if (rc < 0)
        return rc;
    if (sscanf(line, "%d %7s %33s %c%n", &idx, status, text, &where,
               &pos) != 4 || idx < 1 || idx > d->nconsumers)
        return -EPROTO;
    struct sent_table *f = NULL;
    for (int i = 0; i < ph->n && f == NULL; i++)
        if (ph->f[i].consumer == idx - 1 && strcmp(ph->f[i].text, text) == 0)
            f = &ph->f[i];
    if (f == NULL)
        return -EPROTO;
    struct agg got = {0};
    bool ok = strcmp(status, "T") == 0 &&
              sscanf(line + pos, "%" SCNu64 " %" SCNd64 " %" SCNu64 " %"
                     SCNu64 " %" SCNx64, &got.rows, &got.sum, &got.str_bytes,
                     &got.missing, &got.str_sum) == 5 &&
              memcmp(&got, &f->expect, sizeof got) == 0;
    if (!ok)
        fprintf(stderr, "mempool demo: table %s: consumer %d answered "
                "\"%s\"; expected %" PRIu64 " rows, sum %" PRId64 ", %"
                PRIu64 " bytes, %" PRIu64 " missing, checksum %" PRIx64 "\n",
                text, idx, line, f->expect.rows, f->expect.sum,
                f->expect.str_bytes, f->expect.missing, f->expect.str_sum);
    d->t.verified += ok;
    d->t.bad += !ok;
    d->t.disk_views += where == 'D';
    d->t.sum += ok ? got.sum : 0;
    d->t.str_bytes += ok ? got.str_bytes : 0;
    d->t.missing += ok ? got.missing : 0;
    f->consumer = -1;
    mempool_dref r;
    rc = mempool_dref_parse(f->text, &r);
    return rc == 0 ? mempool_delete(d->p, r) : rc;
}

/* Send every table of the batch to its consumer, take every answer. */
static int hand_out(struct demo *d, struct phase *ph)
{
    int rc = 0;
    for (int i = 0; i < ph->n && rc == 0; i++) {
        mempool_dref r;
        rc = mempool_dref_parse(ph->f[i].text, &r);
        if (rc == 0)
            rc = demo_send(d, ph->f[i].consumer, r);
    }
    for (int left = ph->n; left > 0 && rc == 0; left--)
        rc = take_answer(d, ph);
    ph->n = 0;
    ph->flight_bytes = 0;
    return rc;
}

/* Build and set table @p k; if the arena is short, hand out the batch so
 * far first. */
static int set_table(struct demo *d, struct phase *ph, long k)
{
    struct agg e;
    mempool_dref r;
    mempool_info info = { 0 };
    fill_table(&ph->src, k, &e);
    int rc = mempool_put_obj(d->p, MEMPOOL_TYPE_TABLE, &ph->src.t, NULL, &r);
    if (rc == -ENOMEM && ph->n > 0) {
        rc = hand_out(d, ph);
        if (rc == 0)
            rc = mempool_put_obj(d->p, MEMPOOL_TYPE_TABLE, &ph->src.t, NULL,
                                 &r);
    }
    if (rc == 0)
        rc = mempool_info_get(d->p, r, &info);
    if (rc < 0)
        return rc;
    struct sent_table *f = &ph->f[ph->n++];
    mempool_dref_format(r, f->text, sizeof f->text);
    f->len = info.len;
    f->expect = e;
    f->consumer = (int)(k % d->nconsumers);
    ph->flight_bytes += info.len;
    d->t.set++;
    d->t.rows += e.rows;
    d->t.bytes += info.len;
    return 0;
}

int demo_tables_run(struct demo *d)
{
    if (d->t.want == 0)
        return 0;
    uint64_t t0 = cli_now_ns();
    struct phase *ph = calloc(1, sizeof *ph);
    int rc = ph == NULL ? -ENOMEM : source_alloc(&ph->src);
    for (long k = 0; k < d->t.want && rc == 0; k++) {
        rc = set_table(d, ph, k);
        uint64_t next = ph->n > 0 ? ph->f[ph->n - 1].len : 0;
        if (rc == 0 && (k + 1 == d->t.want ||
                        ph->flight_bytes + next > d->budget))
            rc = hand_out(d, ph);
    }
    if (ph != NULL)
        source_free(&ph->src);
    free(ph);
    d->t.secs = (double)(cli_now_ns() - t0) / 1e9;
    return rc;
}

/* ---- summary ----------------------------------------------------------- */

void demo_tables_print(const struct demo *d,
                       const struct mempool_stats *before,
                       const struct mempool_stats *after)
{
    const struct demo_tables *t = &d->t;
    char a[32], b[32], c[32];
    if (t->want == 0) {
        printf("  tables      none (--tables 0)\n");
        return;
    }
    printf("  tables      %ld of %ld set with set_obj (%u rows: int64 "
           "\"amount\", string \"name\"), %s, %" PRIu64 " spilled (%s)\n",
           t->set, t->want, TABLE_ROWS, cli_fmt_bytes(t->bytes, a, sizeof a),
           after->spills - before->spills,
           cli_fmt_bytes(after->spill_bytes - before->spill_bytes, b,
                         sizeof b));
    printf("  aggregated  %ld of %ld match (%" PRIu64 " decoded from spill "
           "files, all zero-copy): sum %" PRId64 ", %s of names, %" PRIu64
           " missing, %.2f s\n", t->verified, t->want, t->disk_views, t->sum,
           cli_fmt_bytes(t->str_bytes, c, sizeof c), t->missing, t->secs);
}
