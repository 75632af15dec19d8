/* SPDX-License-Identifier: MIT */
/*
 * check_stats.c - the observability layer: mempool_stats_get(),
 * mempool_worker_stats_get(), mempool_stats_json() and observer handles
 * (MEMPOOL_OPEN_OBSERVE).
 *
 * The JSON document must parse, carry "schema": MEMPOOL_STATS_SCHEMA, and have exactly the
 * fields README.md's "Stats schema" section documents (the test reads the
 * README, so code and documentation cannot drift). A scripted workload -
 * set N, spill M, delete K, pin, kill one worker, reap - must be described
 * exactly. Observers must refuse every call that changes the pool, take no
 * slot, and read a pool under load, one whose workers all died, and (with
 * read permission only) a pool through a read-only mapping.
 */
#include "helpers.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* ---- JSON helpers ------------------------------------------------------- */

static cJSON *parse(const char *txt)
{
    const char *end = NULL;
    cJSON *d = cJSON_ParseWithLengthOpts(txt, strlen(txt) + 1, &end, true);
    ck_assert_msg(d != NULL, "JSON does not parse near: %.60s",
                  end ? end : "?");
    return d;
}

static cJSON *doc_of(mempool *p)
{
    char *txt = NULL;
    int n = mempool_stats_json(p, &txt);
    cJSON *d;
    ck_assert_msg(n > 0, "mempool_stats_json = %d (%s)", n,
                  mempool_strerror(n));
    ck_assert_uint_eq(strlen(txt), (size_t)n);
    ck_assert_ptr_null(strchr(txt, '\n'));      /* one line: NDJSON */
    d = parse(txt);
    free(txt);
    return d;
}

/* The item at dotted @p path ("pool.arena.used_bytes"), or NULL. */
static cJSON *at(cJSON *o, const char *path)
{
    char buf[128], *save = NULL;
    snprintf(buf, sizeof buf, "%s", path);
    for (char *k = strtok_r(buf, ".", &save); k && o;
         k = strtok_r(NULL, ".", &save))
        o = cJSON_GetObjectItemCaseSensitive(o, k);
    return o;
}

static uint64_t num(cJSON *o, const char *path)
{
    cJSON *n = at(o, path);
    ck_assert_msg(cJSON_IsNumber(n), "%s is not a number", path);
    return (uint64_t)n->valuedouble;
}

static cJSON *worker(cJSON *d, int id)
{
    cJSON *w;
    cJSON_ArrayForEach(w, cJSON_GetObjectItemCaseSensitive(d, "workers"))
        if ((int)num(w, "id") == id)
            return w;
    return NULL;
}

static const char *str(cJSON *o, const char *path)
{
    cJSON *s = at(o, path);
    ck_assert_msg(cJSON_IsString(s), "%s is not a string", path);
    return s->valuestring;
}

#define ASSERT_NUM(o, path, want) \
    ck_assert_msg(num((o), (path)) == (uint64_t)(want), \
                  "%s = %" PRIu64 ", want %" PRIu64, (path), num((o), (path)), \
                  (uint64_t)(want))

/* ---- the README's schema ------------------------------------------------ */

struct field {
    char path[96];
    char type;   /* i integer, s string, b boolean, o object, a array */
};

/* Fields listed in README.md "## Stats schema": lines "| `path` | type |". */
static int readme_fields(struct field *f, int max)
{
    FILE *rf = fopen(MEMPOOL_SOURCE_DIR "/README.md", "r");
    char line[512];
    bool in = false;
    int n = 0;
    ck_assert_msg(rf != NULL, "cannot open README.md");
    while (fgets(line, sizeof line, rf)) {
        char *a, *b, *t;
        if (!strncmp(line, "## ", 3)) {
            in = !strncmp(line, "## Stats schema", 15);
            continue;
        }
        if (!in || strncmp(line, "| `", 3) || n == max)
            continue;
        a = line + 3;
        if (!(b = strchr(a, '`')))
            continue;
        *b = '\0';
        t = strchr(b + 1, '|');
        ck_assert_msg(t != NULL, "README row for %s has no type", a);
        while (*++t == ' ')
            ;
        if (strlen(a) >= sizeof f[n].path)
            continue;
        memcpy(f[n].path, a, strlen(a) + 1);
        f[n].type = *t;
        n++;
    }
    fclose(rf);
    return n;
}

static bool type_ok(cJSON *x, char t)
{
    switch (t) {
    case 'i': return cJSON_IsNumber(x) && x->valuedouble >= 0;
    case 's': return cJSON_IsString(x);
    case 'b': return cJSON_IsBool(x);
    case 'o': return cJSON_IsObject(x);
    case 'a': return cJSON_IsArray(x);
    default:  return false;
    }
}

/* Every field of @p o (prefix @p pre) must be documented. */
static void all_documented(cJSON *o, const char *pre, const struct field *f,
                           int n)
{
    cJSON *c;
    cJSON_ArrayForEach(c, o) {
        char path[96];
        bool found = false;
        snprintf(path, sizeof path, "%s%s%s", pre, *pre ? "." : "",
                 c->string);
        for (int i = 0; i < n && !found; i++)
            found = !strcmp(f[i].path, path);
        ck_assert_msg(found, "field %s is not documented in README.md", path);
        if (cJSON_IsObject(c))
            all_documented(c, path, f, n);
    }
}

/* Arrays of objects documented as "<name>[].<field>" rows. */
static const char *const arrays[] = { "workers", "channels" };

static int array_of(const char *path)
{
    for (int a = 0; a < 2; a++) {
        size_t n = strlen(arrays[a]);
        if (!strncmp(path, arrays[a], n) && !strncmp(path + n, "[].", 3))
            return a;
    }
    return -1;
}

static void assert_schema(cJSON *d)
{
    struct field f[200];
    int n = readme_fields(f, 200);
    cJSON *w;
    ck_assert_int_gt(n, 50);
    ASSERT_NUM(d, "schema", MEMPOOL_STATS_SCHEMA);
    for (int i = 0; i < n; i++) {
        int a = array_of(f[i].path);
        if (a >= 0) {
            const char *rest = f[i].path + strlen(arrays[a]) + 3;
            cJSON_ArrayForEach(w, cJSON_GetObjectItem(d, arrays[a])) {
                cJSON *x = at(w, rest);
                ck_assert_msg(x && type_ok(x, f[i].type), "%s missing or "
                              "not of type %c", f[i].path, f[i].type);
            }
            continue;
        }
        ck_assert_msg(type_ok(at(d, f[i].path), f[i].type),
                      "%s missing or not of type %c", f[i].path, f[i].type);
    }
    all_documented(d, "", f, n);
    for (int a = 0; a < 2; a++) {
        cJSON_ArrayForEach(w, cJSON_GetObjectItem(d, arrays[a])) {
            cJSON *c;
            cJSON_ArrayForEach(c, w) {
                char path[96];
                bool found = false;
                snprintf(path, sizeof path, "%s[].%s", arrays[a], c->string);
                for (int i = 0; i < n && !found; i++)
                    found = !strcmp(f[i].path, path);
                ck_assert_msg(found, "field %s is not documented", path);
            }
        }
    }
}

/* ---- tests -------------------------------------------------------------- */

/* The document parses, has schema 1 and exactly the documented fields,
 * and says what the structs say. */
START_TEST(test_json_schema)
{
    struct mempool_stats s;
    mempool_dref r;
    mempool_view v;
    cJSON *d;
    char buf[5000];

    t_fill(buf, sizeof buf, 1);
    ASSERT_RC(mempool_put(t_pool, buf, sizeof buf, &r), 0);
    ASSERT_RC(mempool_get(t_pool, r, &v), 0);
    d = doc_of(t_pool);
    assert_schema(d);
    ASSERT_RC(mempool_stats_get(t_pool, &s), 0);
    ck_assert_str_eq(str(d, "pool.name"), t_name);
    ck_assert_str_eq(str(d, "version"), mempool_version());
    ck_assert_uint_eq(strlen(str(d, "pool.uuid")), 32);
    ASSERT_NUM(d, "pool.arena.total_bytes", s.arena_bytes);
    ASSERT_NUM(d, "pool.arena.used_bytes", s.used_bytes);
    ASSERT_NUM(d, "pool.objects.capacity", s.max_objects);
    ASSERT_NUM(d, "pool.objects.used", 1);
    ASSERT_NUM(d, "pool.objects.pinned", 1);
    ASSERT_NUM(d, "pool.objects.pinned_bytes", sizeof buf);
    ASSERT_NUM(d, "pool.workers.attached", 1);
    ck_assert_str_eq(str(d, "pool.spill.dir"), s.spill_dir);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(d, "workers")), 1);
    ASSERT_NUM(worker(d, mempool_worker_id(t_pool)), "pins", 1);
    cJSON_Delete(d);
    ASSERT_RC(mempool_release(t_pool, &v), 0);
    ASSERT_RC(mempool_stats_json(t_pool, NULL), -EINVAL);
    ASSERT_RC(mempool_stats_json(NULL, &(char *){ NULL }), -EINVAL);
}
END_TEST

/* Set N (8, limit 5): spill M = 3; delete K = 2; read one spilled back;
 * W2 sets one and pins it 3 times; kill W2; reap; a new worker takes W2's
 * slot. The document says exactly that at every step. */
START_TEST(test_scripted_workload)
{
    enum { N = 8, LIM = 5, SZ = 10000, M = N - LIM };
    mempool_dref r[N], r2;
    struct t_remote w2, w3;
    char buf[SZ];
    mempool_view v;
    mempool *obs;
    int me = mempool_worker_id(t_pool), id2;
    cJSON *d, *w;

    ASSERT_RC(mempool_limit_set(t_pool, MEMPOOL_LIMIT_MEMSIZE, LIM * SZ), 0);
    for (int i = 0; i < N; i++) {
        t_fill(buf, SZ, (uint64_t)i);
        ASSERT_RC(mempool_put(t_pool, buf, SZ, &r[i]), 0);
    }
    ASSERT_RC(mempool_delete(t_pool, r[0]), 0);       /* spilled */
    ASSERT_RC(mempool_delete(t_pool, r[N - 1]), 0);   /* resident */
    ASSERT_RC(mempool_get(t_pool, r[1], &v), 0);      /* spilled: restore */
    ck_assert_uint_eq(v.flags, MEMPOOL_VIEW_DISK);
    ASSERT_RC(mempool_release(t_pool, &v), 0);

    t_remote_start(&w2, t_name);
    id2 = (int)t_remote_call(&w2, T_R_WID, NULL, 0);
    ASSERT_RC(t_remote_call(&w2, T_R_SET, &r2, 3000), 0);
    ASSERT_RC(t_remote_call(&w2, T_R_GET, &r2, 3), 0);

    obs = t_observe(t_name);
    d = doc_of(obs);
    assert_schema(d);
    ASSERT_NUM(d, "pool.workers.attached", 2);        /* not the observer */
    ASSERT_NUM(d, "pool.workers.alive", 2);
    ASSERT_NUM(d, "pool.objects.used", N - 2 + 1);
    ASSERT_NUM(d, "pool.objects.in_memory", LIM - 1 + 1);
    ASSERT_NUM(d, "pool.objects.in_memory_bytes", (LIM - 1) * SZ + 3000);
    ASSERT_NUM(d, "pool.objects.on_disk", M - 1);
    ASSERT_NUM(d, "pool.objects.disk_only", M - 1);
    ASSERT_NUM(d, "pool.objects.on_disk_bytes", (M - 1) * SZ);
    ASSERT_NUM(d, "pool.objects.pinned", 1);
    ASSERT_NUM(d, "pool.objects.pinned_bytes", 3000);
    ASSERT_NUM(d, "pool.objects.pins", 3);
    ASSERT_NUM(d, "pool.spill.disk_bytes", (M - 1) * SZ);
    ck_assert_str_ne(str(d, "pool.spill.io_backend"), "");
    ASSERT_NUM(d, "totals.sets", N + 1);
    ASSERT_NUM(d, "totals.gets", 1 + 3);
    ASSERT_NUM(d, "totals.deletes", 2);
    ASSERT_NUM(d, "totals.spills", M);
    ASSERT_NUM(d, "totals.spill_bytes", M * SZ);
    ASSERT_NUM(d, "totals.restores", 1);
    ASSERT_NUM(d, "totals.restore_bytes", SZ);
    ASSERT_NUM(d, "totals.reaped_workers", 0);
    w = worker(d, me);
    ck_assert_ptr_nonnull(w);
    ck_assert_str_eq(str(w, "state"), "alive");
    ASSERT_NUM(w, "pid", getpid());
    ASSERT_NUM(w, "sets", N);
    ASSERT_NUM(w, "deletes", 2);
    ASSERT_NUM(w, "gets", 1);
    ASSERT_NUM(w, "spills", M);
    ASSERT_NUM(w, "spill_bytes", M * SZ);
    ASSERT_NUM(w, "restores", 1);
    ASSERT_NUM(w, "objects", N - 2);
    ASSERT_NUM(w, "resident_bytes", (LIM - 1) * SZ);
    ASSERT_NUM(w, "max_memsize", LIM * SZ);
    ASSERT_NUM(w, "disk_bytes", (M - 1) * SZ);
    ASSERT_NUM(w, "errors", 0);
    w = worker(d, id2);
    ck_assert_ptr_nonnull(w);
    ck_assert_str_eq(str(w, "state"), "alive");
    ASSERT_NUM(w, "pid", w2.pid);
    ASSERT_NUM(w, "sets", 1);
    ASSERT_NUM(w, "gets", 3);
    ASSERT_NUM(w, "pins", 3);
    ASSERT_NUM(w, "pinned_objects", 1);
    ASSERT_NUM(w, "pinned_bytes", 3000);
    ASSERT_NUM(w, "objects", 1);
    cJSON_Delete(d);

    /* kill W2: dead, not reaped; its pins still count */
    t_remote_kill(&w2);
    d = doc_of(obs);
    ASSERT_NUM(d, "pool.workers.attached", 2);
    ASSERT_NUM(d, "pool.workers.alive", 1);
    ASSERT_NUM(d, "pool.workers.dead", 1);
    ASSERT_NUM(d, "pool.objects.pins", 3);
    w = worker(d, id2);
    ck_assert_str_eq(str(w, "state"), "dead");
    ck_assert(cJSON_IsFalse(cJSON_GetObjectItem(w, "alive")));
    cJSON_Delete(d);
    ASSERT_RC(mempool_check(obs, NULL, 0), MEMPOOL_ECORRUPT);

    /* reap: gone, its 3 pins recovered, totals unchanged */
    ASSERT_RC(mempool_reap(t_pool), 1);
    d = doc_of(obs);
    ASSERT_NUM(d, "pool.workers.attached", 1);
    ASSERT_NUM(d, "pool.workers.dead", 0);
    ASSERT_NUM(d, "pool.objects.pins", 0);
    ASSERT_NUM(d, "totals.reaped_workers", 1);
    ASSERT_NUM(d, "totals.recovered_pins", 3);
    ASSERT_NUM(d, "totals.sets", N + 1);
    ASSERT_NUM(d, "totals.gets", 4);
    ck_assert_str_eq(str(worker(d, id2), "state"), "gone");
    cJSON_Delete(d);

    /* a new worker claims the slot: its counters start at 0, totals stay */
    t_remote_start(&w3, t_name);
    ASSERT_RC(t_remote_call(&w3, T_R_WID, NULL, 0), id2);
    d = doc_of(obs);
    w = worker(d, id2);
    ck_assert_str_eq(str(w, "state"), "alive");
    ASSERT_NUM(w, "sets", 0);
    ASSERT_NUM(w, "gets", 0);
    ASSERT_NUM(w, "objects", 0);      /* W2's object is the pool's now */
    ASSERT_NUM(d, "pool.objects.used", N - 2 + 1);
    ASSERT_NUM(d, "totals.sets", N + 1);
    ASSERT_NUM(d, "totals.gets", 4);
    cJSON_Delete(d);
    ck_assert_int_eq(t_remote_quit(&w3), 0);
    ASSERT_RC(mempool_check(obs, NULL, 0), 0);
    ASSERT_RC(mempool_close(obs), 0);
    t_assert_healthy(t_pool);
}
END_TEST

/* The structs agree with the document; worker ids out of range. */
START_TEST(test_struct_api)
{
    struct mempool_worker_stats w;
    struct mempool_stats s;
    mempool_dref r;
    char buf[3 * 4096];

    s = t_stats(t_pool);
    ck_assert_uint_eq(s.largest_free_bytes, s.data_bytes);
    ck_assert_str_eq(s.name, t_name);
    ck_assert_uint_eq(s.workers_alive, 1);
    ASSERT_RC(mempool_put(t_pool, buf, sizeof buf, &r), 0);
    s = t_stats(t_pool);
    ck_assert_uint_eq(s.largest_free_bytes, s.data_bytes - sizeof buf);
    ck_assert_uint_eq(s.mem_objects, 1);
    ASSERT_RC(mempool_worker_stats_get(t_pool, 0, &w), -EINVAL);
    ASSERT_RC(mempool_worker_stats_get(t_pool, MEMPOOL_MAX_WORKERS + 1, &w),
              -EINVAL);
    ASSERT_RC(mempool_worker_stats_get(t_pool, 1, NULL), -EINVAL);
    ASSERT_RC(mempool_worker_stats_get(t_pool, mempool_worker_id(t_pool), &w), 0);
    ck_assert_uint_eq(w.size, sizeof w);
    ck_assert_uint_eq(w.state, MEMPOOL_WORKER_ALIVE);
    ck_assert_uint_eq(w.sets, 1);
    ck_assert_uint_eq(w.resident_bytes, sizeof buf);
    ASSERT_RC(mempool_worker_stats_get(t_pool, MEMPOOL_MAX_WORKERS, &w), 0);
    ck_assert_uint_eq(w.state, MEMPOOL_WORKER_FREE);
    ck_assert_uint_eq(w.sets, 0);
    ASSERT_RC(mempool_stats_get(t_pool, NULL), -EINVAL);
}
END_TEST

/* An observer changes nothing: every mutating call is -EPERM. */
START_TEST(test_observer_refuses)
{
    mempool_options o;
    mempool_dref r;
    mempool_view v = { 0 };
    mempool_info in;
    mempool_fileref f;
    void *buf;
    mempool *obs;
    char path[256];

    ASSERT_RC(mempool_put(t_pool, "abc", 3, &r), 0);
    t_options(&o, T_ARENA_BYTES);
    o.flags = MEMPOOL_OPEN_OBSERVE | MEMPOOL_OPEN_CREATE;
    ASSERT_RC(mempool_open(t_name, &o, &obs), -EINVAL);
    o.flags = MEMPOOL_OPEN_OBSERVE;
    ASSERT_RC(mempool_open("t-stats-no-such-pool", &o, &obs), -ENOENT);
    obs = t_observe(t_name);
    ck_assert_uint_eq(t_stats(t_pool).workers, 1);
    ck_assert_int_eq(mempool_worker_id(obs), 0);
    ASSERT_RC(mempool_put(obs, "x", 1, &r), -EPERM);
    ASSERT_RC(mempool_reserve(obs, 10, NULL, &buf, &r), -EPERM);
    ASSERT_RC(mempool_publish(obs, r), -EPERM);
    ASSERT_RC(mempool_abort(obs, r), -EPERM);
    ASSERT_RC(mempool_get(obs, r, &v), -EPERM);
    ASSERT_RC(mempool_release(obs, &v), -EPERM);
    ASSERT_RC(mempool_delete(obs, r), -EPERM);
    ASSERT_RC(mempool_ref(obs, r), -EPERM);
    ASSERT_RC(mempool_unref(obs, r), -EPERM);
    ASSERT_RC(mempool_move_to_disk(obs, r, &f), -EPERM);
    ASSERT_RC(mempool_copy_to_disk(obs, r, &f), -EPERM);
    snprintf(path, sizeof path, "/tmp/t-stats-save-%d", (int)getpid());
    ASSERT_RC(mempool_save_to_disk(obs, r, path, &f), -EPERM);
    ck_assert_int_ne(access(path, F_OK), 0);
    ASSERT_RC(mempool_get_file(obs, &f, &v), -EPERM);
    ASSERT_RC(mempool_limit_set(obs, MEMPOOL_LIMIT_MEMSIZE, 1), -EPERM);
    ASSERT_RC(mempool_limit_set(obs, MEMPOOL_LIMIT_DISKSIZE, 1), -EPERM);
    ASSERT_RC(mempool_reap(obs), -EPERM);
    ASSERT_RC(mempool_trim(obs), -EPERM);
    ASSERT_RC(mempool_flush(obs), 0);
    /* reading works */
    ASSERT_RC(mempool_put(t_pool, "abc", 3, &r), 0);
    ASSERT_RC(mempool_info_get(obs, r, &in), 0);
    ck_assert_uint_eq(in.len, 3);
    ASSERT_RC(mempool_check(obs, NULL, 0), 0);
    ck_assert_uint_eq(t_stats(obs).objects, 2);
    ck_assert_uint_eq(t_stats(obs).workers, 1);
    ASSERT_RC(mempool_close(obs), 0);
    ck_assert_uint_eq(t_stats(t_pool).workers, 1);
    t_assert_healthy(t_pool);
}
END_TEST

/* All workers killed: the observer sees them dead and reaps nothing. */
static int die_holding(void *arg)
{
    mempool *p;
    mempool_dref r;
    mempool_view v;
    int fd = *(int *)arg;
    T_CHILD_EQ(t_attach(t_name, &p), 0);
    T_CHILD_EQ(mempool_put(p, "held", 4, &r), 0);
    T_CHILD_EQ(mempool_get(p, r, &v), 0);
    T_CHILD_EQ(t_send_u64(fd, 1), 0);
    pause();
    return 0;
}

START_TEST(test_dead_pool)
{
    int fds[2];
    uint64_t one;
    pid_t pid;
    mempool *obs;
    struct mempool_stats s;
    cJSON *d, *w;

    t_pipe(fds);
    pid = t_fork(die_holding, &fds[1]);
    ASSERT_RC(t_recv_u64(fds[0], &one, T_WAIT_S), 0);
    mempool_close(t_pool);                    /* nobody alive is left */
    t_pool = NULL;
    t_kill(pid);
    obs = t_observe(t_name);
    s = t_stats(obs);
    ck_assert_uint_eq(s.workers, 1);
    ck_assert_uint_eq(s.workers_dead, 1);
    ck_assert_uint_eq(s.workers_alive, 0);
    ck_assert_uint_eq(s.pins, 1);
    d = doc_of(obs);
    cJSON_ArrayForEach(w, cJSON_GetObjectItem(d, "workers"))
        if (!strcmp(str(w, "state"), "dead"))
            ASSERT_NUM(w, "pid", pid);
    cJSON_Delete(d);
    ASSERT_RC(mempool_check(obs, NULL, 0), MEMPOOL_ECORRUPT);
    ASSERT_RC(mempool_close(obs), 0);
    obs = t_observe(t_name);                    /* opening did not reap */
    ck_assert_uint_eq(t_stats(obs).workers_dead, 1);
    ck_assert_uint_eq(t_stats(obs).reaped_workers, 0);
    ASSERT_RC(mempool_close(obs), 0);
    close(fds[0]);
    close(fds[1]);
}
END_TEST

/* Workers hammer the pool while an observer reads documents. They stop
 * when the observer is done (end of file on the pipe), not at a time: on a
 * loaded machine the observer may need longer for its documents. */
static bool told_to_stop(int fd)
{
    struct pollfd pf = { .fd = fd, .events = POLLIN };
    return poll(&pf, 1, 0) > 0;
}

static int hammer(void *arg)
{
    mempool *p;
    const int *fds = arg;           /* { read end, write end } */
    uint64_t i = 0;
    char buf[700];
    close(fds[1]);
    T_CHILD_EQ(t_attach(t_name, &p), 0);
    while (!told_to_stop(fds[0])) {
        mempool_dref r;
        mempool_view v;
        T_CHILD_EQ(mempool_put(p, buf, 1 + i++ % sizeof buf, &r), 0);
        T_CHILD_EQ(mempool_get(p, r, &v), 0);
        T_CHILD_EQ(mempool_release(p, &v), 0);
        T_CHILD_EQ(mempool_delete(p, r), 0);
    }
    mempool_close(p);
    return 0;
}

/* At least 2 s, 4 documents and 100 sets under load (a minute at most:
 * then the assertions below say what was missing). */
START_TEST(test_observe_under_load)
{
    uint64_t start = (uint64_t)time(NULL);
    pid_t kids[3];
    mempool *obs = t_observe(t_name);
    uint64_t last_sets = 0;
    int docs = 0, fds[2];

    t_pipe(fds);
    for (int i = 0; i < 3; i++)
        kids[i] = t_fork(hammer, fds);
    close(fds[0]);
    while ((uint64_t)time(NULL) < start + 60 &&
           ((uint64_t)time(NULL) < start + 2 || docs <= 3 ||
            last_sets <= 100)) {
        cJSON *d = doc_of(obs);
        uint64_t sets = num(d, "totals.sets");
        ck_assert_uint_ge(sets, last_sets);    /* totals never go back */
        last_sets = sets;
        ck_assert_uint_le(num(d, "pool.workers.attached"), 4);
        cJSON_Delete(d);
        ASSERT_RC(mempool_check(obs, NULL, 0), 0);
        docs++;
    }
    close(fds[1]);                             /* the hammers stop */
    for (int i = 0; i < 3; i++)
        t_wait_ok(kids[i]);
    ck_assert_int_gt(docs, 3);
    ck_assert_uint_gt(t_stats(obs).sets, 100);
    ASSERT_RC(mempool_close(obs), 0);
    t_assert_healthy(t_pool);
}
END_TEST

/* With read permission only, an observer maps the arena read-only. */
static int readonly_child(void *arg)
{
    const char *name = arg;
    mempool_options o;
    mempool *p;
    struct mempool_stats s;
    char *doc;

    if (setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0)
        return 77;
    t_options(&o, T_ARENA_BYTES);
    o.flags = 0;
    if (mempool_open(name, &o, &p) != -EACCES)
        return 77;                       /* capabilities bypass the mode */
    o.flags = MEMPOOL_OPEN_OBSERVE;
    T_CHILD_EQ(mempool_open(name, &o, &p), 0);
    T_CHILD_EQ(mempool_stats_get(p, &s), 0);
    T_CHILD_EQ(s.objects, 1);
    T_CHILD_EQ(s.workers_alive, 1);  /* no lock file access: counted alive */
    T_CHILD_ASSERT(mempool_stats_json(p, &doc) > 0);
    free(doc);
    T_CHILD_EQ(mempool_check(p, NULL, 0), -EACCES);
    T_CHILD_EQ(mempool_put(p, "x", 1, &(mempool_dref){ 0, 0 }), -EPERM);
    T_CHILD_EQ(mempool_close(p), 0);
    return 0;
}

START_TEST(test_observe_readonly)
{
    mempool_dref r;
    char path[300];
    int st;

    if (geteuid() != 0)
        return;              /* cannot become another user: nothing to see */
    t_shm_path(path, sizeof path, t_name);
    ck_assert_int_eq(chmod(path, 0644), 0);
    ASSERT_RC(mempool_put(t_pool, "abc", 3, &r), 0);
    st = t_wait(t_fork(readonly_child, t_name), T_WAIT_S);
    ck_assert_msg(st == 0 || st == 77, "read-only observer child: %d", st);
    if (st == 77)
        fprintf(stderr, "note: read-only observer not tested (cannot lose "
                        "write access here)\n");
    t_assert_healthy(t_pool);
}
END_TEST

/* failed sets and corrupt files are counted per worker and in totals */
START_TEST(test_error_counters)
{
    mempool_dref a, b, c;
    mempool_view v;
    mempool_fileref f;
    struct mempool_worker_stats w;
    struct mempool_stats s;
    char buf[60] = { 1 };
    int fd;

    ASSERT_RC(mempool_limit_set(t_pool, MEMPOOL_LIMIT_MEMSIZE, 100), 0);
    ASSERT_RC(mempool_put(t_pool, buf, sizeof buf, &a), 0);
    ASSERT_RC(mempool_get(t_pool, a, &v), 0);           /* cannot spill a */
    ASSERT_RC(mempool_put(t_pool, buf, sizeof buf, &b), -ENOMEM);
    ASSERT_RC(mempool_release(t_pool, &v), 0);
    ASSERT_RC(mempool_put(t_pool, buf, sizeof buf, &c), 0);  /* a spilled */
    ASSERT_RC(mempool_move_to_disk(t_pool, c, &f), 0);
    fd = open(f.path, O_WRONLY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pwrite(fd, "X", 1, 4096 + 7), 1);  /* payload byte */
    close(fd);
    ASSERT_RC(mempool_get(t_pool, c, &v), MEMPOOL_ECORRUPT);
    ASSERT_RC(mempool_worker_stats_get(t_pool, mempool_worker_id(t_pool), &w), 0);
    ck_assert_uint_eq(w.set_errors, 1);
    ck_assert_uint_eq(w.corrupt_files, 1);
    ck_assert_uint_eq(w.spill_errors, 0);
    ck_assert_uint_eq(w.errors, 2);
    ck_assert_uint_eq(w.spills, 2);
    ck_assert_str_ne(w.io_backend, "");
    s = t_stats(t_pool);
    ck_assert_uint_eq(s.set_errors, 1);
    ck_assert_uint_eq(s.corrupt_files, 1);
    ck_assert_uint_eq(s.disk_only_objects, 2);
    ck_assert_str_eq(s.pool_io_backend, w.io_backend);
}
END_TEST

int main(void)
{
    const struct t_case cases[] = {
        { "document", 60, true, {
              test_json_schema, test_struct_api, test_scripted_workload,
              test_error_counters } },
        { "observer", 60, true, {
              test_observer_refuses, test_dead_pool, test_observe_under_load,
              test_observe_readonly } },
        { .name = NULL }
    };
    return t_main("stats", cases);
}
