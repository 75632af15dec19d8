/* SPDX-License-Identifier: MIT */
/*
 * json.c - mempool_stats_json(): the figures of mempool_stats_get() and
 * mempool_worker_stats_get() as one JSON document, the twin of the structs.
 *
 * The document is built from the public structs only, so the two can never
 * disagree, and its layout (schema 1) is documented field by field in the
 * README's "Stats schema" section; a change that renames, removes or
 * re-types a field bumps MEMPOOL_STATS_SCHEMA, adding one does not.
 * Integers are written as raw decimal text, never through a double, so
 * 64-bit counters and nanosecond timestamps stay exact. The document is one
 * line (NDJSON-friendly) and is returned in memory from malloc(), whatever
 * allocator an application may have given cJSON.
 *
 * cJSON is used only in this file, and is not part of the public API.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "counters.h"
#include "internal.h"

/* Each adder leaves the object untouched on failure; the caller checks
 * the whole document once (ok flag) rather than every call. */
typedef struct jb {
    bool ok;
} jb;

static void add_u64(jb *b, cJSON *o, const char *k, uint64_t v)
{
    char num[24];
    snprintf(num, sizeof(num), "%" PRIu64, v);
    if (!cJSON_AddRawToObject(o, k, num))
        b->ok = false;
}

static void add_i64(jb *b, cJSON *o, const char *k, int64_t v)
{
    char num[24];
    snprintf(num, sizeof(num), "%" PRId64, v);
    if (!cJSON_AddRawToObject(o, k, num))
        b->ok = false;
}

static void add_str(jb *b, cJSON *o, const char *k, const char *v)
{
    if (!cJSON_AddStringToObject(o, k, v))
        b->ok = false;
}

static void add_bool(jb *b, cJSON *o, const char *k, bool v)
{
    if (!cJSON_AddBoolToObject(o, k, v))
        b->ok = false;
}

static cJSON *add_obj(jb *b, cJSON *o, const char *k)
{
    cJSON *c = cJSON_AddObjectToObject(o, k);
    if (!c)
        b->ok = false;
    return c ? c : o;       /* keep going; the document is dropped anyway */
}

static void handoff_json(jb *b, cJSON *root, const struct mempool_stats *s)
{
    cJSON *o = add_obj(b, root, "handoff");
    add_u64(b, o, "names", s->names);
    add_u64(b, o, "names_capacity", s->names_capacity);
    add_u64(b, o, "channels", s->channels);
    add_u64(b, o, "flight_refs", s->flight_refs);
    add_u64(b, o, "flight_given", s->flight_given);
    add_u64(b, o, "flight_taken", s->flight_taken);
    add_u64(b, o, "flight_expired", s->flight_expired);
    add_u64(b, o, "items_used", s->items_used);
    add_u64(b, o, "items_capacity", s->items_capacity);
    add_u64(b, o, "orphans_freed", s->orphans_freed);
    add_u64(b, o, "get_waits", s->get_waits);
}

struct chan_arr {
    jb *b;
    cJSON *arr;
};

static int chan_json(const mempool_chan_info *ci, void *arg)
{
    struct chan_arr *a = arg;
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddItemToArray(a->arr, o)) {
        cJSON_Delete(o);
        a->b->ok = false;
        return 0;
    }
    add_str(a->b, o, "name", ci->name);
    add_str(a->b, o, "mode", (ci->flags & MEMPOOL_CHAN_BROADCAST)
                                 ? "broadcast" : "queue");
    add_u64(a->b, o, "capacity", ci->capacity);
    add_u64(a->b, o, "depth", ci->depth);
    add_u64(a->b, o, "senders_waiting", ci->senders_waiting);
    add_u64(a->b, o, "receivers_waiting", ci->receivers_waiting);
    add_u64(a->b, o, "subscribers", ci->subscribers);
    add_u64(a->b, o, "sent", ci->sent);
    add_u64(a->b, o, "received", ci->received);
    add_u64(a->b, o, "dropped", ci->dropped);
    add_u64(a->b, o, "refs", ci->refs);
    return 0;
}

static int channels_json(mempool *p, jb *b, cJSON *root)
{
    struct chan_arr a = { b, cJSON_AddArrayToObject(root, "channels") };
    int rc;
    if (!a.arr) {
        b->ok = false;
        return 0;
    }
    rc = mempool_chan_list(p, chan_json, &a);
    return rc < 0 ? rc : 0;
}

static const char *state_name(uint32_t st)
{
    switch (st) {
    case MEMPOOL_WORKER_ALIVE: return "alive";
    case MEMPOOL_WORKER_DEAD:  return "dead";
    case MEMPOOL_WORKER_GONE:  return "gone";
    default:                   return "free";
    }
}

static void pool_json(jb *b, cJSON *root, const struct mempool_stats *s)
{
    char uuid[33];
    cJSON *pool = add_obj(b, root, "pool"), *o;

    snprintf(uuid, sizeof(uuid), "%016" PRIx64 "%016" PRIx64, s->uuid[0],
             s->uuid[1]);
    add_str(b, pool, "name", s->name);
    add_str(b, pool, "uuid", uuid);
    add_u64(b, pool, "created_ns", s->created_ns);
    add_str(b, pool, "policy", s->policy == MEMPOOL_POLICY_MRU ? "mru" : "lru");

    o = add_obj(b, pool, "arena");
    add_u64(b, o, "total_bytes", s->arena_bytes);
    add_u64(b, o, "data_bytes", s->data_bytes);
    add_u64(b, o, "used_bytes", s->used_bytes);
    add_u64(b, o, "free_bytes", s->free_bytes);
    add_u64(b, o, "largest_free_bytes", s->largest_free_bytes);

    o = add_obj(b, pool, "objects");
    add_u64(b, o, "used", s->objects);
    add_u64(b, o, "capacity", s->max_objects);
    add_u64(b, o, "max_refs", s->max_refs);
    add_u64(b, o, "in_memory", s->mem_objects);
    add_u64(b, o, "in_memory_bytes", s->resident_bytes);
    add_u64(b, o, "on_disk", s->disk_objects);
    add_u64(b, o, "on_disk_bytes", s->disk_bytes);
    add_u64(b, o, "disk_only", s->disk_only_objects);
    add_u64(b, o, "reserved", s->reserved_objects);
    add_u64(b, o, "deleted", s->deleted_objects);
    add_u64(b, o, "pinned", s->pinned_objects);
    add_u64(b, o, "pinned_bytes", s->pinned_bytes);
    add_u64(b, o, "pins", s->pins);

    o = add_obj(b, pool, "spill");
    add_str(b, o, "dir", s->spill_dir);
    add_u64(b, o, "disk_bytes", s->disk_bytes);
    add_u64(b, o, "fs_free_bytes", s->fs_free_bytes);
    add_u64(b, o, "fs_total_bytes", s->fs_total_bytes);
    add_str(b, o, "io_backend", s->pool_io_backend);
    add_i64(b, o, "spiller", s->spiller);
    add_bool(b, o, "spiller_alive", s->spiller_alive);

    o = add_obj(b, pool, "workers");
    add_u64(b, o, "attached", s->workers);
    add_u64(b, o, "alive", s->workers_alive);
    add_u64(b, o, "dead", s->workers_dead);
    add_u64(b, o, "max", s->max_workers);
}

static void totals_json(jb *b, cJSON *root, const struct mempool_stats *s)
{
    cJSON *o = add_obj(b, root, "totals");
#define ADD(name, ...) add_u64(b, o, #name, s->name);
    MP_COUNTERS(ADD)
    MP_POOL_COUNTERS(ADD)
#undef ADD
}

static void worker_json(jb *b, cJSON *arr, const struct mempool_worker_stats *w)
{
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddItemToArray(arr, o)) {
        cJSON_Delete(o);
        b->ok = false;
        return;
    }
    add_i64(b, o, "id", w->id);
    add_i64(b, o, "pid", w->pid);
    add_str(b, o, "state", state_name(w->state));
    add_bool(b, o, "alive", w->state == MEMPOOL_WORKER_ALIVE);
    add_bool(b, o, "spiller", w->spiller);
    add_u64(b, o, "attached_ns", w->attached_ns);
    add_u64(b, o, "resident_bytes", w->resident_bytes);
    add_u64(b, o, "max_memsize", w->max_memsize);
    add_u64(b, o, "disk_bytes", w->disk_bytes);
    add_u64(b, o, "max_disksize", w->max_disksize);
    add_u64(b, o, "objects", w->objects);
    add_u64(b, o, "pins", w->pins);
    add_u64(b, o, "pinned_objects", w->pinned_objects);
    add_u64(b, o, "pinned_bytes", w->pinned_bytes);
    add_u64(b, o, "references", w->references);
#define ADD(name, ...) add_u64(b, o, #name, w->name);
    MP_COUNTERS(ADD)
#undef ADD
    add_u64(b, o, "errors", w->errors);
    add_str(b, o, "io_backend", w->io_backend);
}

static int workers_json(mempool *p, jb *b, cJSON *root)
{
    cJSON *arr = cJSON_AddArrayToObject(root, "workers");
    if (!arr) {
        b->ok = false;
        return 0;
    }
    for (int id = 1; id <= MEMPOOL_MAX_WORKERS; id++) {
        struct mempool_worker_stats w;
        int rc = mempool_worker_stats_get(p, id, &w);
        if (rc)
            return rc;
        if (w.state != MEMPOOL_WORKER_FREE)
            worker_json(b, arr, &w);
    }
    return 0;
}

int mempool_stats_json(mempool *p, char **out)
{
    struct mempool_stats s;
    struct timespec ts;
    jb b = { true };
    cJSON *root;
    char *txt;
    int rc;

    if (!out)
        return -EINVAL;
    *out = NULL;
    if ((rc = mempool_stats_get(p, &s)))
        return rc;
    if (!(root = cJSON_CreateObject()))
        return -ENOMEM;
    clock_gettime(CLOCK_REALTIME, &ts);
    add_u64(&b, root, "schema", MEMPOOL_STATS_SCHEMA);
    add_str(&b, root, "version", mempool_version());
    add_u64(&b, root, "time_ns",
            (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec);
    pool_json(&b, root, &s);
    rc = workers_json(p, &b, root);
    totals_json(&b, root, &s);
    handoff_json(&b, root, &s);
    if (!rc)
        rc = channels_json(p, &b, root);
    txt = rc || !b.ok ? NULL : cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (rc)
        return rc;
    if (!txt)
        return -ENOMEM;
    *out = strdup(txt);         /* ours is malloc()ed, whatever cJSON's is */
    cJSON_free(txt);
    if (!*out)
        return -ENOMEM;
    return (int)strlen(*out);
}
