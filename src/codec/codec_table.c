/* SPDX-License-Identifier: MIT */
/*
 * codec_table.c - the built-in MEMPOOL_TYPE_TABLE codec: named columns of
 * equal length, each a 1-d ARRAY or a STRINGS object.
 *
 * A table is a directory plus whole column objects. Each column is encoded
 * exactly as it would be on its own (its own header, offsets relative to
 * its own first byte, 64-aligned), so the column codecs are reused as they
 * are and a column could be cut out and stored alone. Names live in the
 * object, each followed by a 0 byte, so a decoded name is a C string that
 * points into the object.
 *
 * Nesting is bounded by construction: a column must be an ARRAY or STRINGS
 * object, never a table. Decoding a table checks the directory, every name
 * and every column fully (so a million-row string column costs one pass
 * over its offsets), and returns only counts plus the object; columns are
 * then fetched in O(1) by index or name without repeating the scans.
 */
#include "codec.h"

#include <errno.h>
#include <string.h>

#define DIR_ENTRY 32u   /* name offset, name length, column offset, length */

/* ---- encoding ------------------------------------------------------------- */

/* Column @p i of a table being encoded: from cols, or from a decoded
 * table's object (re-encoding a decoded table copies it). */
static int col_in(const mempool_table *t, uint64_t i, mempool_column *c)
{
    if (t->cols) {
        *c = t->cols[i];
        return c->name ? 0 : -EINVAL;
    }
    return mempool_table_column(t, i, c);
}

/* Size of column @p c, checking its type and length against @p rows. */
static int col_size(const mempool_column *c, uint64_t rows, uint64_t *len)
{
    if (c->type == MEMPOOL_TYPE_ARRAY) {
        if (c->array.ndim != 1 || c->array.shape[0] != rows)
            return -EINVAL;
        return mempool__array_size(&c->array, len);
    }
    if (c->type == MEMPOOL_TYPE_STRINGS) {
        if (c->strings.n != rows)
            return -EINVAL;
        return mempool__strings_size(&c->strings, len);
    }
    return -EINVAL;
}

/* Where the directory, names and columns start, and the total length. */
static int plan(const mempool_table *t, uint64_t *names_off,
                uint64_t *cols_off, uint64_t *total)
{
    uint64_t dir, names = 0, end, clen;
    mempool_column c;
    int rc;

    if (!t || (t->ncols && !t->cols && !t->obj))
        return -EINVAL;
    if (!mp_mul_ok(t->ncols, DIR_ENTRY, &dir) ||
        !mp_add_ok(MP_OBJ_HDR, dir, names_off))
        return -E2BIG;
    for (uint64_t i = 0; i < t->ncols; i++) {
        if ((rc = col_in(t, i, &c)))
            return rc;
        if (!mp_add_ok(names, strlen(c.name) + 1, &names))
            return -E2BIG;
    }
    if (!mp_add_ok(*names_off, names, &end) || !mp_align_ok(end, cols_off))
        return -E2BIG;
    end = *cols_off;
    for (uint64_t i = 0; i < t->ncols; i++) {
        if ((rc = col_in(t, i, &c)) || (rc = col_size(&c, t->nrows, &clen)))
            return rc;
        if (!mp_align_ok(end, &end) || !mp_add_ok(end, clen, &end))
            return -E2BIG;
    }
    *total = end;
    return 0;
}

int mempool__table_size(const mempool_table *t, uint64_t *len)
{
    uint64_t names_off, cols_off;

    return plan(t, &names_off, &cols_off, len);
}

/* Write column @p c at @p *at (64-aligned, zero padding before it), its
 * directory entry at @p e, and advance @p *at past it. */
static int put_col(uint8_t *d, const mempool_column *c, uint64_t rows,
                   uint64_t *e, uint64_t *at)
{
    uint64_t start, clen;
    int rc;

    if ((rc = col_size(c, rows, &clen)))
        return rc;
    if (!mp_align_ok(*at, &start))       /* plan() proved it cannot */
        return -E2BIG;
    memset(d + *at, 0, start - *at);
    e[2] = start;
    e[3] = clen;
    if (c->type == MEMPOOL_TYPE_ARRAY)
        rc = mempool__array_encode(&c->array, d + start, clen);
    else
        rc = mempool__strings_encode(&c->strings, d + start, clen);
    *at = start + clen;
    return rc;
}

int mempool__table_encode(const mempool_table *t, void *dst, uint64_t len)
{
    uint64_t names_off, cols_off, total, at, *dir;
    uint8_t *d = dst;
    mempool_column c;
    mp_obj_header h;
    int rc;

    if ((rc = plan(t, &names_off, &cols_off, &total)))
        return rc;
    if (total != len)
        return -EINVAL;
    mempool__hdr_init(&h, MEMPOOL_TYPE_TABLE, len, t->nrows);
    h.nsections = (uint32_t)(t->ncols > UINT32_MAX - 2 ? UINT32_MAX
                                                       : t->ncols + 2);
    h.f[0] = t->ncols;
    h.f[1] = MP_OBJ_HDR;
    memcpy(d, &h, sizeof h);
    dir = (uint64_t *)(d + MP_OBJ_HDR);
    at = names_off;
    for (uint64_t i = 0; i < t->ncols; i++) {
        uint64_t n;
        col_in(t, i, &c);                /* plan() checked every column */
        n = strlen(c.name);
        dir[4 * i] = at;
        dir[4 * i + 1] = n;
        memcpy(d + at, c.name, n + 1);
        at += n + 1;
    }
    for (uint64_t i = 0; i < t->ncols; i++) {
        col_in(t, i, &c);
        if ((rc = put_col(d, &c, t->nrows, &dir[4 * i], &at)))
            return rc;
    }
    memset(d + at, 0, len - at);         /* nothing, but keep it exact */
    return 0;
}

/* ---- decoding ------------------------------------------------------------- */

/* Decode entry @p i of the table whose checked header is @p h at @p b.
 * @p full: run the columns' O(n) checks too. */
static int col_at(const mp_obj_header *h, const uint8_t *b, uint64_t i,
                  bool full, mempool_column *c)
{
    const uint64_t *e = (const uint64_t *)(b + h->f[1]) + 4 * i;
    uint64_t name_end;
    int rc;

    memset(c, 0, sizeof *c);
    if (e[0] < (uint64_t)h->hdr_units * MP_OBJ_HDR ||
        !mp_add_ok(e[0], e[1], &name_end) ||
        name_end >= h->total || b[name_end] != 0 ||
        !mempool__section_ok(h, e[2], e[3]) || e[3] < MP_OBJ_HDR)
        return MEMPOOL_ECORRUPT;
    c->name = (const char *)b + e[0];
    c->name_len = e[1];
    memcpy(&c->type, b + e[2] + 8, sizeof c->type);
    if (c->type == MEMPOOL_TYPE_ARRAY) {
        rc = mempool__array_decode(b + e[2], e[3], &c->array);
        if (!rc && (c->array.ndim != 1 || c->array.shape[0] != h->count))
            rc = MEMPOOL_ECORRUPT;
    } else if (c->type == MEMPOOL_TYPE_STRINGS) {
        rc = mempool__strings_decode(b + e[2], e[3], &c->strings, full);
        if (!rc && c->strings.n != h->count)
            rc = MEMPOOL_ECORRUPT;
    } else {
        rc = MEMPOOL_ECORRUPT;           /* nesting stops at one level */
    }
    return rc;
}

/* Check the table header at @p src and its directory. */
static int table_hdr(const void *src, uint64_t len, mp_obj_header *h)
{
    uint64_t dir;
    int rc;

    if ((rc = mempool__hdr_read(src, len, MEMPOOL_TYPE_TABLE, h)))
        return rc;
    if (h->flags || h->f[2] || !mp_mul_ok(h->f[0], DIR_ENTRY, &dir) ||
        !mempool__section_ok(h, h->f[1], dir))
        return MEMPOOL_ECORRUPT;
    return 0;
}

/* Columns must come in order without overlapping, so a forged directory
 * cannot make a decode scan the same bytes once per column. */
int mempool__table_decode(const void *src, uint64_t len, mempool_table *t)
{
    const uint64_t *e;
    uint64_t next = 0;
    mempool_column c;
    mp_obj_header h;
    int rc;

    if ((rc = table_hdr(src, len, &h)))
        return rc;
    e = (const uint64_t *)((const uint8_t *)src + h.f[1]);
    for (uint64_t i = 0; i < h.f[0]; i++, e += 4) {
        if (e[2] < next)
            return MEMPOOL_ECORRUPT;
        if ((rc = col_at(&h, src, i, true, &c)))
            return rc;
        next = e[2] + e[3];              /* col_at() checked: no overflow */
    }
    memset(t, 0, sizeof *t);
    t->nrows = h.count;
    t->ncols = h.f[0];
    t->obj = src;
    t->obj_len = h.total;
    return 0;
}

int mempool_table_column(const mempool_table *t, uint64_t i,
                         mempool_column *out)
{
    mp_obj_header h;
    int rc;

    if (!t || !out || i >= t->ncols)
        return -EINVAL;
    if (t->cols) {
        *out = t->cols[i];
        out->name_len = out->name ? strlen(out->name) : 0;
        return 0;
    }
    if ((rc = table_hdr(t->obj, t->obj_len, &h)))
        return rc;
    if (h.f[0] != t->ncols || h.count != t->nrows)
        return -EINVAL;
    return col_at(&h, t->obj, i, false, out);
}

int mempool_table_find(const mempool_table *t, const char *name,
                       mempool_column *out)
{
    mempool_column c;
    size_t n;
    int rc;

    if (!t || !name || !out)
        return -EINVAL;
    n = strlen(name);
    for (uint64_t i = 0; i < t->ncols; i++) {
        if ((rc = mempool_table_column(t, i, &c)))
            return rc;
        if (c.name && c.name_len == n && memcmp(c.name, name, n) == 0) {
            *out = c;
            return 0;
        }
    }
    return -ENOENT;
}
