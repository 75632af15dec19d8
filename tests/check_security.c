/* SPDX-License-Identifier: MIT */
/*
 * check_security.c - a pool trusts nothing it did not create (issue 15,
 * items 1-6 and 9): what another local user can plant, and what a killed
 * destroy or save leaves behind.
 *
 * The "other user" is real: a forked child that drops to uid/gid 65534
 * (CI runs as root). Where this process cannot become another user (not
 * root, or a user namespace without that uid) the cross-user cases print
 * "SKIP: ..." and pass; everything else always runs. Planted things are
 * real too: FIFOs in /dev/shm, symlinks and directories owned by 65534 in
 * the spill path, a SIGKILL in the middle of destroy (failpoint
 * destroy.wipe, only in -DMEMPOOL_FAILPOINTS=ON builds).
 */
#include "helpers.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "layout.h"      /* white box: the header a forger rewrites */

#define NOBODY T_NOBODY

/* ------------------------------------------------------------- helpers */

static bool g_can_switch = false;   /* probed once in main() */

static int probe_child(void *arg)
{
    (void)arg;
    return t_become_nobody() == 0 && access("/root", W_OK) != 0 ? 0 : 77;
}

static bool need_second_user(const char *what)
{
    if (!g_can_switch)
        fprintf(stderr, "SKIP: %s: cannot become uid %d here (not root, "
                "or no such uid in this user namespace)\n", what, NOBODY);
    return g_can_switch;
}

/* Attach (never create) @p name with @p flags and no spiller thread. */
static int attach_as(const char *name, unsigned flags, mempool **p)
{
    mempool_options o;
    mempool_options_init(&o);
    o.flags = flags;
    o.spiller = 0;
    return mempool_open(name, &o, p);
}

typedef int (*as_fn)(void *arg);
struct as_call {
    as_fn fn;
    void *arg;
};

static int as_nobody_main(void *arg)
{
    struct as_call *c = arg;
    if (t_become_nobody() != 0)
        return 99;
    return c->fn(c->arg);
}

/* Run fn(arg) as uid 65534 in a child; its exit status (-1 hung). */
static int as_nobody(as_fn fn, void *arg)
{
    struct as_call c = { fn, arg };
    return t_wait(t_fork(as_nobody_main, &c), T_WAIT_S);
}

/* A directory every test user can traverse: /tmp/t-sec-XXXXXX, 0755. */
static void pub_dir(char *buf, size_t len)
{
    snprintf(buf, len, "/tmp/t-sec-%d-XXXXXX", (int)getpid());
    ck_assert_ptr_nonnull(mkdtemp(buf));
    ck_assert_int_eq(chmod(buf, 0755), 0);
}

/* Run argv with a watchdog, as uid 65534 if @p nobody; exit status, or -1
 * if it had to be killed (hung). Output goes to /dev/null. */
static int run_tool(bool nobody, double timeout_s, char *const argv[])
{
    pid_t pid;
    fflush(stdout);
    fflush(stderr);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int fd = open("/dev/null", O_RDWR);
        if (nobody && t_become_nobody() != 0)
            _exit(99);
        dup2(fd, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        execv(argv[0], argv);
        _exit(127);
    }
    return t_wait(pid, timeout_s);
}

/* ---------------------------------------------------- 1: name squatting */

struct squat {
    char name[T_NAME_LEN];
    char dir[200];
    uint32_t mode;
    unsigned flags;
};

static int squat_create(void *arg)
{
    struct squat *q = arg;
    mempool_options o;
    mempool *p;
    mempool_dref r;
    mempool_options_init(&o);
    o.arena_bytes = T_ARENA_BYTES;
    o.spill_dir = q->dir;
    o.mode = q->mode;
    o.flags = q->flags;
    o.spiller = 0;
    if (mempool_open(q->name, &o, &p) != 0)
        return 2;
    if (mempool_put(p, "bait", 4, &r) != 0)
        return 3;
    mempool_close(p);
    return 0;
}

START_TEST(test_squatted_name_refused)
{
    struct squat q;
    mempool_options o;
    mempool *p = NULL;
    int rc;

    if (!need_second_user("squatting"))
        return;
    t_pool_name(q.name, NULL);
    pub_dir(q.dir, sizeof q.dir);
    q.mode = 0666;
    q.flags = MEMPOOL_OPEN_CREATE;
    ck_assert_int_eq(as_nobody(squat_create, &q), 0);

    /* Root's default open (create or attach) must not attach. */
    t_options(&o, T_ARENA_BYTES);
    rc = mempool_open(q.name, &o, &p);
    ck_assert_msg(rc == -EPERM, "open of a squatted pool = %d (%s), want "
                  "-EPERM", rc, mempool_strerror(rc));
    ck_assert_ptr_null(p);
    o.flags = 0;
    ck_assert_int_eq(mempool_open(q.name, &o, &p), -EPERM);
    /* Explicit opt-in attaches; an observer may always look. */
    o.flags = MEMPOOL_OPEN_ANY_OWNER;
    ck_assert_int_eq(mempool_open(q.name, &o, &p), 0);
    mempool_close(p);
    o.flags = MEMPOOL_OPEN_OBSERVE;
    ck_assert_int_eq(mempool_open(q.name, &o, &p), 0);
    mempool_close(p);
    ck_assert_int_eq(mempool_destroy(q.name), 0);
    t_rm_tree(q.dir);
}
END_TEST

static int attach_shared(void *arg)
{
    struct squat *q = arg;
    mempool *p;
    mempool_dref r;
    mempool_view v;
    int rc;
    if ((rc = attach_as(q->name, 0, &p)) != 0)
        return rc == -EPERM ? 10 : 11;
    if (mempool_put(p, "from nobody", 11, &r) != 0 ||
        mempool_get(p, r, &v) != 0)
        return 12;
    mempool_release(p, &v);
    mempool_close(p);
    return 0;
}

START_TEST(test_shared_root_pool_needs_no_flag)
{
    struct squat q;
    mempool_options o;
    mempool *p;

    if (!need_second_user("shared pool"))
        return;
    t_pool_name(q.name, NULL);
    pub_dir(q.dir, sizeof q.dir);
    t_options(&o, T_ARENA_BYTES);
    o.spill_dir = q.dir;
    o.mode = 0666;
    ck_assert_int_eq(mempool_open(q.name, &o, &p), 0);
    ck_assert_int_eq(as_nobody(attach_shared, &q), 0);
    mempool_close(p);
    ck_assert_int_eq(mempool_destroy(q.name), 0);
    t_rm_tree(q.dir);
}
END_TEST

/* Another non-root user's pool needs the flag even when shared by mode. */
static int attach_foreign(void *arg)
{
    struct squat *q = arg;
    mempool *p;
    int rc;
    if ((rc = attach_as(q->name, 0, &p)) != -EPERM)
        return 20;
    if ((rc = attach_as(q->name, MEMPOOL_OPEN_ANY_OWNER, &p)) != 0)
        return 21;
    mempool_close(p);
    return 0;
}

START_TEST(test_any_owner_flag_for_other_users)
{
    struct squat q;
    if (!need_second_user("foreign pool"))
        return;
    t_pool_name(q.name, NULL);
    pub_dir(q.dir, sizeof q.dir);
    q.mode = 0666;
    q.flags = MEMPOOL_OPEN_CREATE;
    ck_assert_int_eq(as_nobody(squat_create, &q), 0);
    /* Make the object and its lock file (lockfile.c: it must be the
     * pool owner's) some third user's, as seen by uid 65534. */
    {
        char path[300], pre[T_NAME_LEN + 16];
        struct dirent *e;
        DIR *d = opendir("/dev/shm");
        snprintf(pre, sizeof pre, "mempool.%s#lock.", q.name);
        while (d && (e = readdir(d)))
            if (!strncmp(e->d_name, pre, strlen(pre))) {
                snprintf(path, sizeof path, "/dev/shm/%s", e->d_name);
                ck_assert_int_eq(chown(path, 65533, 65533), 0);
            }
        if (d)
            closedir(d);
        t_shm_path(path, sizeof path, q.name);
        ck_assert_int_eq(chown(path, 65533, 65533), 0);
    }
    ck_assert_int_eq(as_nobody(attach_foreign, &q), 0);
    ck_assert_int_eq(mempool_destroy(q.name), 0);
    t_rm_tree(q.dir);
}
END_TEST

/* ------------------------------------------------- 9: a FIFO in /dev/shm */

static int observe_fifo(void *arg)
{
    const char *name = arg;
    mempool *p;
    int rc;
    rc = attach_as(name, MEMPOOL_OPEN_OBSERVE, &p);
    return rc == MEMPOOL_ECORRUPT ? 0 : 30;
}

START_TEST(test_fifo_pool_never_hangs)
{
    char name[T_NAME_LEN], path[300];
    mempool_options o;
    mempool *p;

    t_pool_name(name, NULL);
    t_shm_path(path, sizeof path, name);
    /* root's FIFO, 0644: another user may only open it for reading, which
     * blocks until a writer comes - forever */
    ck_assert_int_eq(mkfifo(path, 0644), 0);

    /* The library: observer, attach and create-or-attach all refuse. */
    ck_assert_int_eq(t_wait(t_fork(observe_fifo, name), 20), 0);
    if (g_can_switch)
        ck_assert_int_eq(as_nobody(observe_fifo, name), 0);
    t_options(&o, T_ARENA_BYTES);
    ck_assert_int_eq(mempool_open(name, &o, &p), MEMPOOL_ECORRUPT);

#ifdef MEMPOOL_BIN
    {
        char *ls[] = { MEMPOOL_BIN, "ls", NULL };
        char *lsj[] = { MEMPOOL_BIN, "ls", "--json", NULL };
        char *info[] = { MEMPOOL_BIN, "info", name, NULL };
        char *fsck[] = { MEMPOOL_BIN, "fsck", name, NULL };
        char *top[] = { MEMPOOL_TOP_BIN, "--json", "-n", "1", NULL };
        char *topn[] = { MEMPOOL_TOP_BIN, name, "--json", "-n", "1", NULL };
        char *destroy[] = { MEMPOOL_BIN, "destroy", name, NULL };
        bool who[2] = { false, true };
        for (int i = 0; i < (g_can_switch ? 2 : 1); i++) {
            ck_assert_int_ge(run_tool(who[i], 20, ls), 0);
            ck_assert_int_ge(run_tool(who[i], 20, lsj), 0);
            ck_assert_int_ge(run_tool(who[i], 20, info), 0);
            ck_assert_int_ge(run_tool(who[i], 20, fsck), 0);
            ck_assert_int_ge(run_tool(who[i], 20, top), 0);
            ck_assert_int_ge(run_tool(who[i], 20, topn), 0);
        }
        /* destroy as root: finishes, and removes what sat at the name */
        ck_assert_int_eq(run_tool(false, 20, destroy), 0);
        ck_assert_int_ne(access(path, F_OK), 0);
    }
#endif
    (void)unlink(path);
}
END_TEST

/* ------------------------------------------------- shared test helpers */

static int count_entries(const char *dir, bool spill_only)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    while (d && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        if (!spill_only || (e->d_name[0] >= '0' && e->d_name[0] <= '9'))
            n++;
    }
    if (d)
        closedir(d);
    return d ? n : -1;
}

static bool path_exists(const char *p)
{
    struct stat st;
    return lstat(p, &st) == 0;
}

static mempool *open_in(const char *name, const char *dir, uint32_t mode)
{
    mempool_options o;
    mempool *p = NULL;
    int rc;
    t_options(&o, T_ARENA_BYTES);
    o.spill_dir = dir;
    o.mode = mode;
    rc = mempool_open(name, &o, &p);
    ck_assert_msg(rc == 0, "open %s: %d (%s)", name, rc, mempool_strerror(rc));
    return p;
}

static bool reads_back(mempool *p, mempool_dref r, size_t len, uint64_t seed)
{
    mempool_view v;
    bool ok;
    if (mempool_get(p, r, &v) != 0)
        return false;
    ok = v.len == len && t_check_fill(v.data, len, seed);
    mempool_release(p, &v);
    return ok;
}

/* ------------------------------------------ 2: planted spill directory */

START_TEST(test_planted_spill_dir_refused)
{
    char name[T_NAME_LEN], base[200], pooldir[600], json_key[] =
        "\"spill_refused\":";
    mempool *p;
    mempool_dref r;
    mempool_info in;
    char *json = NULL;
    int rc;

    if (!need_second_user("planted spill directory"))
        return;
    t_pool_name(name, NULL);
    pub_dir(base, sizeof base);
    /* another user made <base>/<name> first, writable by everyone */
    snprintf(pooldir, sizeof pooldir, "%s/%s", base, name);
    ck_assert_int_eq(mkdir(pooldir, 0777), 0);
    ck_assert_int_eq(chmod(pooldir, 0777), 0);
    ck_assert_int_eq(chown(pooldir, NOBODY, NOBODY), 0);

    p = open_in(name, base, 0600);
    r = t_put_fill(p, 10000, 7);
    rc = mempool_move_to_disk(p, r, NULL);
    ck_assert_msg(rc == MEMPOOL_EUNSAFE, "move_to_disk into a planted "
                  "directory = %d (%s)", rc, mempool_strerror(rc));
    ck_assert_int_eq(count_entries(pooldir, false), 0);  /* nothing went in */
    ck_assert_int_eq(mempool_info_get(p, r, &in), 0);
    ck_assert(in.state & MEMPOOL_STATE_MEMORY);           /* kept in memory */
    ck_assert(reads_back(p, r, 10000, 7));
    ck_assert_uint_ge(t_stats(p).spill_refused, 1);
    ck_assert_int_gt(mempool_stats_json(p, &json), 0);
    ck_assert_ptr_nonnull(strstr(json, json_key));
    free(json);
    t_assert_healthy(p);
    mempool_close(p);
    ck_assert_int_eq(mempool_destroy(name), 0);
    ck_assert(path_exists(pooldir));                /* not ours: untouched */
    t_rm_tree(base);
}
END_TEST

START_TEST(test_symlink_in_spill_path_refused)
{
    char name[T_NAME_LEN], base[200], victim[300], link[300], vdir[700];
    mempool *p;
    mempool_dref r;
    int rc;

    t_pool_name(name, NULL);
    pub_dir(base, sizeof base);
    snprintf(victim, sizeof victim, "%s/victim", base);
    snprintf(link, sizeof link, "%s/link", base);
    ck_assert_int_eq(mkdir(victim, 0755), 0);
    ck_assert_int_eq(symlink(victim, link), 0);
    p = open_in(name, link, 0600);               /* base is a symlink */
    r = t_put_fill(p, 9000, 8);
    rc = mempool_move_to_disk(p, r, NULL);
    ck_assert_msg(rc == MEMPOOL_EUNSAFE, "move_to_disk through a symlinked "
                  "spill path = %d (%s)", rc, mempool_strerror(rc));
    snprintf(vdir, sizeof vdir, "%s/%s", victim, name);
    ck_assert(!path_exists(vdir));
    ck_assert(reads_back(p, r, 9000, 8));
    mempool_close(p);
    ck_assert_int_eq(mempool_destroy(name), 0);
    t_rm_tree(base);
}
END_TEST

/* Root's destroy never follows a spill path written into the arena by a
 * user who may write the (shared) pool. */
struct forge {
    char name[T_NAME_LEN];
    char path[1000];
};

static int forge_header(void *arg)
{
    struct forge *fg = arg;
    size_t len;
    mp_header *h = (mp_header *)(void *)t_map_arena_rw(fg->name, &len);
    if (!h)
        return 40;
    snprintf(h->spill_dir, sizeof h->spill_dir, "%s", fg->path);
    munmap(h, len);
    return 0;
}

START_TEST(test_destroy_never_follows_header_path)
{
    char base[200], victim[300], file[1100];
    struct forge fg;
    mempool *p;
    int fd;

    if (!need_second_user("forged header"))
        return;
    t_pool_name(fg.name, NULL);
    pub_dir(base, sizeof base);
    p = open_in(fg.name, base, 0666);
    mempool_close(p);
    /* root's own files in a directory that ends in the pool's name */
    snprintf(victim, sizeof victim, "%s/precious", base);
    ck_assert_int_eq(mkdir(victim, 0700), 0);
    snprintf(fg.path, sizeof fg.path, "%s/%s", victim, fg.name);
    ck_assert_int_eq(mkdir(fg.path, 0700), 0);
    snprintf(file, sizeof file, "%s/1-1", fg.path);
    fd = open(file, O_WRONLY | O_CREAT, 0600);
    ck_assert_int_ge(fd, 0);
    close(fd);
    ck_assert_int_eq(as_nobody(forge_header, &fg), 0);
    ck_assert_int_eq(mempool_destroy(fg.name), 0);
    ck_assert_msg(path_exists(file), "destroy deleted %s, named by a "
                  "forged header", file);
    t_rm_tree(base);
}
END_TEST

/* ------------------------------------------------ 3: cross-user pools */

struct xuser {
    char name[T_NAME_LEN];
    mempool_dref root_obj, other_obj;
    int fd;                   /* result pipe */
};

static int xuser_child(void *arg)
{
    struct xuser *x = arg;
    mempool *p;
    mempool_dref r;
    char buf[20000];
    int rc;
    umask(077);                           /* the mode must not depend on it */
    if ((rc = attach_as(x->name, 0, &p)))
        return 50;
    if (!reads_back(p, x->root_obj, 20000, 21))   /* root's spilled object */
        return 51;
    t_fill(buf, sizeof buf, 22);
    if (mempool_put(p, buf, sizeof buf, &r) ||
        mempool_move_to_disk(p, r, NULL))        /* this user's spill */
        return 52;
    if (t_send_dref(x->fd, r))
        return 53;
    mempool_close(p);
    return 0;
}

/* A reader of a shared pool: both users' spilled objects, from disk. */
static int xuser_reader(void *arg)
{
    struct xuser *x = arg;
    mempool *p;
    if (attach_as(x->name, 0, &p))
        return 60;
    if (!reads_back(p, x->root_obj, 20000, 21) ||
        !reads_back(p, x->other_obj, 20000, 22))
        return 61;
    mempool_close(p);
    return 0;
}

START_TEST(test_shared_pool_spills_readable_by_all)
{
    char base[200];
    struct xuser x;
    mempool *p;
    int fds[2];
    pid_t pid;
    mempool_info in;

    if (!need_second_user("cross-user spill"))
        return;
    t_pool_name(x.name, NULL);
    pub_dir(base, sizeof base);
    umask(077);
    p = open_in(x.name, base, 0666);
    umask(022);
    x.root_obj = t_put_fill(p, 20000, 21);
    ck_assert_int_eq(mempool_move_to_disk(p, x.root_obj, NULL), 0);
    t_pipe(fds);
    x.fd = fds[1];
    {
        struct as_call c = { xuser_child, &x };
        pid = t_fork(as_nobody_main, &c);
    }
    close(fds[1]);
    ck_assert_int_eq(t_recv_dref(fds[0], &x.other_obj, T_WAIT_S), 0);
    close(fds[0]);
    ck_assert_int_eq(t_wait(pid, T_WAIT_S), 0);
    ck_assert_int_eq(mempool_info_get(p, x.other_obj, &in), 0);
    ck_assert_uint_eq(in.state, MEMPOOL_STATE_DISK);
    ck_assert(reads_back(p, x.other_obj, 20000, 22));
    /* and a second non-root user reads both from disk too */
    {
        struct xuser y = x;
        y.fd = -1;
        ck_assert_int_eq(as_nobody(xuser_reader, &y), 0);
    }
    mempool_close(p);
    ck_assert_int_eq(mempool_destroy(x.name), 0);
    t_rm_tree(base);
}
END_TEST

/* A pool shared with a group (0660): two non-root members, neither the
 * owner, spill and read each other's objects; the files carry the pool's
 * group whatever the writer's primary group and umask. */
struct member {
    char name[T_NAME_LEN];
    uid_t uid;
    bool write;               /* set + spill, else read */
    mempool_dref r;
    int fd;
};

static int member_main(void *arg)
{
    struct member *m = arg;
    gid_t g0 = 0;
    mempool *p;
    char buf[30000];
    if (setgroups(1, &g0) != 0 || setresgid(m->uid, m->uid, m->uid) != 0 ||
        setresuid(m->uid, m->uid, m->uid) != 0)
        return 70;
    umask(077);
    if (attach_as(m->name, 0, &p))
        return 71;
    if (m->write) {
        t_fill(buf, sizeof buf, 77);
        if (mempool_put(p, buf, sizeof buf, &m->r) ||
            mempool_move_to_disk(p, m->r, NULL))
            return 72;
        if (t_send_dref(m->fd, m->r))
            return 73;
    } else if (!reads_back(p, m->r, 30000, 77)) {
        return 74;
    }
    mempool_close(p);
    return 0;
}

START_TEST(test_group_pool_members_share_spills)
{
    char base[200];
    struct member a, b;
    mempool *p;
    int fds[2];
    pid_t pid;

    if (!need_second_user("group-shared pool"))
        return;
    memset(&a, 0, sizeof a);
    t_pool_name(a.name, NULL);
    pub_dir(base, sizeof base);
    p = open_in(a.name, base, 0660);             /* group: root's gid 0 */
    a.uid = NOBODY;
    a.write = true;
    t_pipe(fds);
    a.fd = fds[1];
    pid = t_fork(member_main, &a);
    close(fds[1]);
    ck_assert_int_eq(t_recv_dref(fds[0], &a.r, T_WAIT_S), 0);
    close(fds[0]);
    ck_assert_int_eq(t_wait(pid, T_WAIT_S), 0);
    b = a;
    b.uid = NOBODY - 1;
    b.write = false;
    ck_assert_msg(t_wait(t_fork(member_main, &b), T_WAIT_S) == 0,
                  "a second group member could not read the first one's "
                  "spilled object");
    ck_assert(reads_back(p, a.r, 30000, 77));
    mempool_close(p);
    ck_assert_int_eq(mempool_destroy(a.name), 0);
    t_rm_tree(base);
}
END_TEST

/* ------------------------------ 4: a destroyed pool's handle is harmless */

START_TEST(test_old_handle_spares_new_pool)
{
    char name[T_NAME_LEN], base[200];
    mempool *old, *neu, *chk;
    mempool_dref x, y;

    t_pool_name(name, NULL);
    pub_dir(base, sizeof base);
    old = open_in(name, base, 0600);
    x = t_put_fill(old, 12000, 31);               /* never spilled yet */
    ck_assert_int_eq(mempool_destroy(name), 0);
    neu = open_in(name, base, 0600);
    y = t_put_fill(neu, 12000, 32);
    ck_assert_int_eq(mempool_move_to_disk(neu, y, NULL), 0);
    /* the old handle spills and deletes "its" entry (same index and
     * generation as y's file): the new pool's file must not be touched */
    (void)mempool_move_to_disk(old, x, NULL);
    ck_assert_int_eq(mempool_delete(old, x), 0);
    mempool_close(old);
    chk = open_in(name, base, 0600);            /* no cached mapping */
    ck_assert_msg(reads_back(chk, y, 12000, 32), "the re-created pool's "
                  "spilled object was damaged by the destroyed pool's "
                  "handle");
    t_assert_healthy(chk);
    mempool_close(chk);
    mempool_close(neu);
    ck_assert_int_eq(mempool_destroy(name), 0);
    t_rm_tree(base);
}
END_TEST

/* ------------------------------------- 5: destroy complete, restartable */

START_TEST(test_destroy_killed_midway_finishes)
{
#ifdef MEMPOOL_FAILPOINTS
    char name[T_NAME_LEN], base[200], pooldir[600], shm[300];
    mempool *p;
    int st, left;
    pid_t pid;

    t_pool_name(name, NULL);
    pub_dir(base, sizeof base);
    snprintf(pooldir, sizeof pooldir, "%s/%s", base, name);
    p = open_in(name, base, 0600);
    for (int i = 0; i < 400; i++) {
        mempool_dref r = t_put_fill(p, 100, (uint64_t)i);
        ck_assert_int_eq(mempool_copy_to_disk(p, r, NULL), 0);
    }
    mempool_close(p);
    ck_assert_int_eq(count_entries(pooldir, true), 400);
    fflush(stderr);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        setenv("MEMPOOL_FAILPOINT", "destroy.wipe@150", 1);
        _exit(mempool_destroy(name) == 0 ? 0 : 1);
    }
    st = t_wait(pid, T_WAIT_S);
    ck_assert_msg(st == 128 + SIGKILL, "destroy was not killed midway "
                  "(status %d)", st);
    left = count_entries(pooldir, true);
    ck_assert_msg(left > 0 && left < 400, "%d files left", left);
    t_shm_path(shm, sizeof shm, name);
    ck_assert(!path_exists(shm));               /* the name is free */
    /* a second destroy finishes, instead of answering -ENOENT */
    ck_assert_int_eq(mempool_destroy(name), 0);
    ck_assert_msg(!path_exists(pooldir), "%d files left after the second "
                  "destroy", count_entries(pooldir, false));
    ck_assert_int_eq(mempool_destroy(name), -ENOENT);
    t_rm_tree(base);
#else
    fprintf(stderr, "SKIP: test_destroy_killed_midway_finishes needs "
            "-DMEMPOOL_FAILPOINTS=ON\n");
#endif
}
END_TEST

START_TEST(test_writes_after_destroy_leave_nothing)
{
    char name[T_NAME_LEN], base[200], pooldir[600];
    mempool *p;
    mempool_dref a, b;

    t_pool_name(name, NULL);
    pub_dir(base, sizeof base);
    snprintf(pooldir, sizeof pooldir, "%s/%s", base, name);
    p = open_in(name, base, 0600);
    a = t_put_fill(p, 5000, 41);                  /* nothing spilled yet */
    ck_assert_int_eq(mempool_destroy(name), 0);
    /* the still-attached worker keeps working, and tries to spill */
    b = t_put_fill(p, 5000, 42);
    (void)mempool_copy_to_disk(p, a, NULL);
    (void)mempool_move_to_disk(p, b, NULL);
    ck_assert(reads_back(p, a, 5000, 41));
    ck_assert(reads_back(p, b, 5000, 42));
    mempool_close(p);
    ck_assert_msg(!path_exists(pooldir), "spill files of a destroyed pool "
                  "outlived its last handle: %d entries",
                  count_entries(pooldir, false));
    t_rm_tree(base);
}
END_TEST

START_TEST(test_destroy_removes_made_parent)
{
    char name[T_NAME_LEN], base[200], sub[300], mp[400];
    mempool *p;
    mempool_dref r;

    t_pool_name(name, NULL);
    pub_dir(base, sizeof base);
    snprintf(sub, sizeof sub, "%s/sub", base);
    ck_assert_int_eq(mkdir(sub, 0755), 0);
    snprintf(mp, sizeof mp, "%s/.mempool", sub);
    p = open_in(name, mp, 0600);                /* makes .mempool */
    r = t_put_fill(p, 3000, 5);
    ck_assert_int_eq(mempool_move_to_disk(p, r, NULL), 0);
    mempool_close(p);
    ck_assert_int_eq(mempool_destroy(name), 0);
    ck_assert_msg(!path_exists(mp), "destroy left the empty %s it made", mp);
    ck_assert(path_exists(sub));
    /* one the user made stays */
    ck_assert_int_eq(mkdir(mp, 0755), 0);
    p = open_in(name, mp, 0600);
    mempool_close(p);
    ck_assert_int_eq(mempool_destroy(name), 0);
    ck_assert(path_exists(mp));
    t_rm_tree(base);
}
END_TEST

/* ---------------------------------- 6: a stale save temp blocks nothing */

START_TEST(test_save_after_killed_save)
{
    char name[T_NAME_LEN], base[200], path[300], tmp[320];
    mempool *p;
    mempool_dref r;
    mempool_fileref f;
    int fd;

    t_pool_name(name, NULL);
    pub_dir(base, sizeof base);
    snprintf(path, sizeof path, "%s/saved.bin", base);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0600);   /* a killed save */
    ck_assert_int_ge(fd, 0);
    close(fd);
    p = open_in(name, base, 0600);
    r = t_put_fill(p, 7000, 61);
    ck_assert_int_eq(mempool_save_to_disk(p, r, path, &f), 0);
    ck_assert_int_eq(mempool_save_to_disk(p, r, path, &f), 0);  /* again */
    ck_assert_int_eq(mempool_get_file(p, &f, &(mempool_view){0}) , 0);
    /* nothing else appeared next to it */
    ck_assert_int_eq(count_entries(base, false), 3);  /* saved, .tmp, pool */
    mempool_close(p);
    ck_assert_int_eq(mempool_destroy(name), 0);
    ck_assert(path_exists(path));
    t_rm_tree(base);
}
END_TEST

/* ---------------------------------------------------------------- main */

static Suite *sec_suite(void)
{
    Suite *s = suite_create("security");
    TCase *tc = tcase_create("owner");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_squatted_name_refused);
    tcase_add_test(tc, test_shared_root_pool_needs_no_flag);
    tcase_add_test(tc, test_any_owner_flag_for_other_users);
    tcase_add_test(tc, test_fifo_pool_never_hangs);
    suite_add_tcase(s, tc);
    tc = tcase_create("spill_dir");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_planted_spill_dir_refused);
    tcase_add_test(tc, test_symlink_in_spill_path_refused);
    tcase_add_test(tc, test_destroy_never_follows_header_path);
    tcase_add_test(tc, test_shared_pool_spills_readable_by_all);
    tcase_add_test(tc, test_group_pool_members_share_spills);
    tcase_add_test(tc, test_old_handle_spares_new_pool);
    suite_add_tcase(s, tc);
    tc = tcase_create("destroy");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_destroy_killed_midway_finishes);
    tcase_add_test(tc, test_writes_after_destroy_leave_nothing);
    tcase_add_test(tc, test_destroy_removes_made_parent);
    tcase_add_test(tc, test_save_after_killed_save);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    int st = -1;
    if (geteuid() == 0) {
        pid_t pid = fork();
        if (pid == 0)
            _exit(probe_child(NULL));
        if (pid > 0)
            st = t_wait(pid, 30);
    }
    g_can_switch = st == 0;
    if (!g_can_switch)
        fprintf(stderr, "SKIP: cross-user cases of check_security: cannot "
                "become uid %d\n", NOBODY);
    return t_run(sec_suite(), "sec");
}
