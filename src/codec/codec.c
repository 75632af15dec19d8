/* SPDX-License-Identifier: MIT */
/*
 * codec.c - the codec layer: the per-handle registry of user codecs, the
 * 64-byte in-object header, and mempool_put_obj() / mempool_get_obj().
 *
 * set_obj asks the codec for the size, reserves exactly that in the arena,
 * encodes in place and publishes: one copy, no temporary buffer, and an
 * encoder error aborts the reservation so nothing is left behind. get_obj
 * is mempool_get() plus a decode of the pinned bytes; the decoded struct
 * points into them, so it lives exactly as long as the pin. Only the public
 * object API is used, so whatever mempool_get() maps (arena or spill file)
 * decodes the same way.
 *
 * The registry is a small array under a mutex, created on first
 * registration and published with a CAS on p->codecs; lookups copy the
 * codec out under the mutex and call it without the lock. Built-in types
 * never touch it.
 */
#include "internal.h"
#include "codec.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct mp_codecs {
    pthread_mutex_t lock;
    mempool_codec  *v;      /* names are our own copies */
    size_t          n, cap;
};

/* ---- the header ------------------------------------------------------- */

void mempool__hdr_init(mp_obj_header *h, uint32_t type, uint64_t total,
                       uint64_t count)
{
    memset(h, 0, sizeof *h);
    h->magic = MP_OBJ_MAGIC;
    h->version = MP_OBJ_VERSION;
    h->bom = MP_OBJ_BOM;
    h->hdr_units = 1;
    h->type = type;
    h->total = total;
    h->count = count;
}

int mempool__hdr_read(const void *src, uint64_t len, uint32_t type,
                      mp_obj_header *h)
{
    if (!src || ((uintptr_t)src & (MP_OBJ_ALIGN - 1)))
        return -EINVAL;
    if (len < MP_OBJ_HDR)
        return MEMPOOL_ECORRUPT;
    memcpy(h, src, sizeof *h);
    if (h->magic != MP_OBJ_MAGIC || h->version == 0 || h->bom != MP_OBJ_BOM)
        return MEMPOOL_ECORRUPT;
    if (h->version > MP_OBJ_VERSION)
        return -ENOTSUP;
    if (h->hdr_units == 0 || h->type != type || h->total > len ||
        h->total < (uint64_t)h->hdr_units * MP_OBJ_HDR)
        return MEMPOOL_ECORRUPT;
    return 0;
}

bool mempool__section_ok(const mp_obj_header *h, uint64_t off, uint64_t len)
{
    uint64_t end;

    return off % MP_OBJ_ALIGN == 0 &&
           off >= (uint64_t)h->hdr_units * MP_OBJ_HDR &&
           mp_add_ok(off, len, &end) && end <= h->total;
}

bool mempool__bitmap_tail_ok(const uint8_t *map, uint64_t n)
{
    return n % 8 == 0 || (map[n / 8] >> (n % 8)) == 0;
}

/* ---- built-in dispatch -------------------------------------------------- */

int mempool__builtin_size(uint32_t type, const void *obj, uint64_t *len)
{
    switch (type) {
    case MEMPOOL_TYPE_BYTES:
        *len = ((const mempool_bytes *)obj)->len;
        return 0;
    case MEMPOOL_TYPE_ARRAY:
        return mempool__array_size(obj, len);
    case MEMPOOL_TYPE_STRINGS:
        return mempool__strings_size(obj, len);
    case MEMPOOL_TYPE_TABLE:
        return mempool__table_size(obj, len);
    }
    return -EINVAL;
}

int mempool__builtin_encode(uint32_t type, const void *obj, void *dst,
                            uint64_t len)
{
    const mempool_bytes *b = obj;

    switch (type) {
    case MEMPOOL_TYPE_BYTES:
        if (b->len != len || (!b->data && len))
            return -EINVAL;
        if (len)
            memcpy(dst, b->data, len);
        return 0;
    case MEMPOOL_TYPE_ARRAY:
        return mempool__array_encode(obj, dst, len);
    case MEMPOOL_TYPE_STRINGS:
        return mempool__strings_encode(obj, dst, len);
    case MEMPOOL_TYPE_TABLE:
        return mempool__table_encode(obj, dst, len);
    }
    return -EINVAL;
}

int mempool__builtin_decode(uint32_t type, const void *src, uint64_t len,
                            void *obj)
{
    mempool_bytes *b = obj;

    switch (type) {
    case MEMPOOL_TYPE_BYTES:
        b->data = src;
        b->len = len;
        return 0;
    case MEMPOOL_TYPE_ARRAY:
        return mempool__array_decode(src, len, obj);
    case MEMPOOL_TYPE_STRINGS:
        return mempool__strings_decode(src, len, obj, true);
    case MEMPOOL_TYPE_TABLE:
        return mempool__table_decode(src, len, obj);
    }
    return -EINVAL;
}

static bool is_builtin(uint32_t type)
{
    return type <= MEMPOOL_TYPE_TABLE;
}

/* ---- the registry ------------------------------------------------------- */

/* The handle's registry, created on first use. NULL only on -ENOMEM. */
static struct mp_codecs *registry(mempool *p)
{
    struct mp_codecs *r = __atomic_load_n(&p->codecs, __ATOMIC_ACQUIRE);
    struct mp_codecs *none = NULL;

    if (r)
        return r;
    if (!(r = calloc(1, sizeof *r)))
        return NULL;
    if (pthread_mutex_init(&r->lock, NULL)) {
        free(r);
        return NULL;
    }
    if (__atomic_compare_exchange_n(&p->codecs, &none, r, false,
                                    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        return r;
    pthread_mutex_destroy(&r->lock);  /* another thread won the race */
    free(r);
    return none;
}

static mempool_codec *find_locked(struct mp_codecs *r, uint32_t type)
{
    for (size_t i = 0; i < r->n; i++)
        if (r->v[i].type == type)
            return &r->v[i];
    return NULL;
}

static int add_locked(struct mp_codecs *r, const mempool_codec *c)
{
    mempool_codec *v;
    char *name;

    if (find_locked(r, c->type))
        return -EEXIST;
    if (r->n == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 8;
        if (!(v = realloc(r->v, cap * sizeof *v)))
            return -ENOMEM;
        r->v = v;
        r->cap = cap;
    }
    if (!(name = strdup(c->name)))
        return -ENOMEM;
    r->v[r->n] = *c;
    r->v[r->n++].name = name;
    return 0;
}

int mempool_register_codec(mempool *p, const mempool_codec *c)
{
    struct mp_codecs *r;
    int rc;

    if (!p || !c)
        return -EINVAL;
    if ((rc = mempool_worker_id(p)) < 0)
        return rc;
    if (c->type < MEMPOOL_TYPE_USER || !c->name || !c->size || !c->encode ||
        !c->decode)
        return -EINVAL;
    if (!(r = registry(p)))
        return -ENOMEM;
    pthread_mutex_lock(&r->lock);
    rc = add_locked(r, c);
    pthread_mutex_unlock(&r->lock);
    return rc;
}

/* Copy the codec for user @p type out of @p p's registry.
 * @return 0 or -ENOTSUP (none registered). */
static int lookup(mempool *p, uint32_t type, mempool_codec *out)
{
    struct mp_codecs *r = p ? __atomic_load_n(&p->codecs, __ATOMIC_ACQUIRE)
                            : NULL;
    mempool_codec *c;
    int rc = -ENOTSUP;

    if (!r)
        return rc;
    pthread_mutex_lock(&r->lock);
    if ((c = find_locked(r, type))) {
        *out = *c;
        rc = 0;
    }
    pthread_mutex_unlock(&r->lock);
    return rc;
}

int mempool__codec_known(mempool *p, uint32_t type)
{
    mempool_codec c;
    return lookup(p, type, &c);
}

void mempool__codecs_free(mempool *p)
{
    struct mp_codecs *r;

    if (!p || !(r = p->codecs))
        return;
    for (size_t i = 0; i < r->n; i++)
        free((char *)r->v[i].name);
    free(r->v);
    pthread_mutex_destroy(&r->lock);
    free(r);
    p->codecs = NULL;
}

/* ---- encoding ------------------------------------------------------------- */

/* What set_obj runs: a built-in, or a user codec behind a header. */
typedef struct mp_enc {
    uint32_t      type;
    mempool_codec user;     /* valid when type is not built in */
    uint64_t      payload;  /* user payload bytes */
} mp_enc;

static int enc_size(mp_enc *e, const void *obj, uint64_t *len)
{
    int rc;

    if (is_builtin(e->type))
        return mempool__builtin_size(e->type, obj, len);
    if ((rc = e->user.size(obj, &e->payload)))
        return rc;
    if (!mp_add_ok(e->payload, MP_OBJ_HDR, len))
        return -E2BIG;
    return 0;
}

static int enc_write(const mp_enc *e, const void *obj, void *dst,
                     uint64_t len)
{
    mp_obj_header h;

    if (is_builtin(e->type))
        return mempool__builtin_encode(e->type, obj, dst, len);
    mempool__hdr_init(&h, e->type, len, 0);
    h.codec_version = e->user.version;
    h.nsections = 1;
    memcpy(dst, &h, sizeof h);
    return e->user.encode(obj, (uint8_t *)dst + MP_OBJ_HDR, e->payload);
}

static int enc_setup(mempool *p, uint32_t type, mp_enc *e)
{
    e->type = type;
    if (is_builtin(type))
        return 0;
    if (type < MEMPOOL_TYPE_USER)
        return -EINVAL;
    return lookup(p, type, &e->user);
}

int mempool_put_obj(mempool *p, uint32_t type, const void *obj,
                    const mempool_put_options *o, mempool_dref *out)
{
    mempool_put_options opt = {0};
    mempool_dref r;
    uint64_t len;
    void *buf;
    mp_enc e;
    int rc;

    if (!p || !obj || !out || (o && o->type && o->type != type))
        return -EINVAL;
    if ((rc = enc_setup(p, type, &e)) || (rc = enc_size(&e, obj, &len)))
        return rc;
    if (len > SIZE_MAX)
        return -E2BIG;
    if (o)
        opt = *o;
    opt.type = type;
    if ((rc = mempool_reserve(p, (size_t)len, &opt, &buf, &r)))
        return rc;
    if ((rc = enc_write(&e, obj, buf, len)) || (rc = mempool_publish(p, r))) {
        mempool_abort(p, r);
        return rc;
    }
    *out = r;
    return 0;
}

/* ---- decoding ------------------------------------------------------------- */

static int user_decode(mempool *p, uint32_t type, const void *src,
                       uint64_t len, void *obj)
{
    mempool_codec c;
    mp_obj_header h;
    uint64_t hdr;
    int rc;

    if (type < MEMPOOL_TYPE_USER)
        return -ENOTSUP;            /* a built-in of a newer release */
    if ((rc = lookup(p, type, &c)) ||
        (rc = mempool__hdr_read(src, len, type, &h)))
        return rc;
    if (h.codec_version > c.version)
        return -ENOTSUP;
    if (h.count || h.flags || h.f[0] || h.f[1] || h.f[2])
        return MEMPOOL_ECORRUPT;
    hdr = (uint64_t)h.hdr_units * MP_OBJ_HDR;
    return c.decode((const uint8_t *)src + hdr, h.total - hdr, obj);
}

int mempool_decode(mempool *p, uint32_t type, const void *src, size_t len,
                   void *obj)
{
    if (!obj || (!src && len))
        return -EINVAL;
    if (is_builtin(type))
        return mempool__builtin_decode(type, src, len, obj);
    return user_decode(p, type, src, len, obj);
}

int mempool_get_obj(mempool *p, mempool_dref r, uint32_t type, void *obj,
                    mempool_view *v)
{
    int rc;

    if (!v)
        return -EINVAL;
    memset(v, 0, sizeof *v);
    if (!p || !obj)
        return -EINVAL;
    if ((rc = mempool_get(p, r, v))) {
        memset(v, 0, sizeof *v);
        return rc;
    }
    if (v->type != type)
        rc = -EINVAL;
    else
        rc = mempool_decode(p, type, v->data, v->len, obj);
    if (rc) {
        mempool_release(p, v);
        memset(v, 0, sizeof *v);
    }
    return rc;
}
