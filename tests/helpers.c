/* SPDX-License-Identifier: MIT */
/*
 * helpers.c - unique pool names, the checked fixture, data patterns and
 * checksums, fork/wait with a watchdog, pipes carrying DRefs, and the suite
 * main with its /dev/shm sweep. See helpers.h.
 */
#include "helpers.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>

const char *t_area = "x";
pid_t t_runner;
mempool *t_pool;
char t_name[T_NAME_LEN];

static char t_spill_dir[128];
static unsigned t_counter;

/* ---------------------------------------------------------------- names */

char *t_pool_name_fn(char *buf, const char *area, const char *func)
{
    char fn[64];
    size_t i, j = 0;

    for (i = 0; func && func[i] && j + 1 < sizeof fn; i++) {
        char c = func[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  (c >= '0' && c <= '9') || c == '_';
        fn[j++] = ok ? c : '_';
    }
    fn[j] = '\0';
    snprintf(buf, T_NAME_LEN, "t-%s-r%d-p%d-%u-%s", area ? area : t_area,
             (int)(t_runner ? t_runner : getpid()), (int)getpid(),
             ++t_counter, fn);
    return buf;
}

void t_shm_path(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "/dev/shm/mempool.%s", name);
}

/* Pool @p name's whole arena, mapped shared; NULL if it cannot be. */
static void *map_shm(const char *name, size_t *len, bool rw)
{
    char path[512];
    struct stat st;
    void *a = MAP_FAILED;
    int fd;
    t_shm_path(path, sizeof path, name);
    fd = open(path, rw ? O_RDWR : O_RDONLY);
    if (fd < 0)
        return NULL;
    if (fstat(fd, &st) == 0) {
        *len = (size_t)st.st_size;
        a = mmap(NULL, *len, rw ? PROT_READ | PROT_WRITE : PROT_READ,
                 MAP_SHARED, fd, 0);
    }
    close(fd);
    return a == MAP_FAILED ? NULL : a;
}

const uint8_t *t_map_arena(const char *name, size_t *len)
{
    const uint8_t *a = map_shm(name, len, false);
    ck_assert_msg(a != NULL, "cannot map the arena of %s", name);
    return a;
}

uint8_t *t_map_arena_rw(const char *name, size_t *len)
{
    return map_shm(name, len, true);
}

/* ---------------------------------------------------------------- pools */

void t_options(mempool_options *o, uint64_t arena_bytes)
{
    mempool_options_init(o);
    o->arena_bytes = arena_bytes;
    if (t_spill_dir[0])
        o->spill_dir = t_spill_dir;
    /* Core tests want used_bytes to move only when they act: no background
     * spiller, and a short wait before -ENOMEM when victims are pinned. */
    o->spiller = 0;
    o->evict_wait_ms = 10;
}

int t_open(const char *name, uint64_t arena_bytes, mempool **out)
{
    mempool_options o;

    t_options(&o, arena_bytes);
    return mempool_open(name, &o, out);
}

int t_attach(const char *name, mempool **out)
{
    mempool_options o;

    t_options(&o, T_ARENA_BYTES);
    o.flags = 0;
    return mempool_open(name, &o, out);
}

mempool *t_observe(const char *name)
{
    mempool_options o;
    mempool *p = NULL;

    t_options(&o, T_ARENA_BYTES);
    o.flags = MEMPOOL_OPEN_OBSERVE;
    ASSERT_RC(mempool_open(name, &o, &p), 0);
    return p;
}

void t_setup(void)
{
    int rc;

    t_pool = NULL;
    t_pool_name_fn(t_name, t_area, "fx");
    rc = t_open(t_name, T_ARENA_BYTES, &t_pool);
    ck_assert_msg(rc == 0, "fixture: mempool_open(%s) = %d (%s)", t_name, rc,
                  mempool_strerror(rc));
    ck_assert_ptr_nonnull(t_pool);
}

void t_teardown(void)
{
    if (t_pool) {
        mempool_close(t_pool);
        t_pool = NULL;
    }
    if (t_name[0])
        (void)mempool_destroy(t_name);
}

int t_become_nobody(void)
{
    if (setgroups(0, NULL) != 0 ||
        setresgid(T_NOBODY, T_NOBODY, T_NOBODY) != 0 ||
        setresuid(T_NOBODY, T_NOBODY, T_NOBODY) != 0)
        return -1;
    return getuid() == T_NOBODY && geteuid() == T_NOBODY &&
                   getegid() == T_NOBODY
               ? 0
               : -1;
}

uint8_t *t_nobody_arena_rw(const char *name, size_t *len)
{
    return t_become_nobody() == 0 ? t_map_arena_rw(name, len) : NULL;
}

bool t_fixture_mode(const char *what, mode_t mode)
{
    mempool_options o;

    if (geteuid() != 0) {
        fprintf(stderr, "SKIP: %s: not root, cannot be another user\n", what);
        return false;
    }
    ck_assert_int_eq(mempool_close(t_pool), 0);
    t_pool = NULL;
    ck_assert_int_eq(mempool_destroy(t_name), 0);
    umask(0);
    t_options(&o, T_ARENA_BYTES);
    o.mode = mode;
    ck_assert_int_eq(mempool_open(t_name, &o, &t_pool), 0);
    return true;
}

bool t_fixture_shared(const char *what)
{
    return t_fixture_mode(what, 0666);
}

int t_child_send_killed(void *chan)
{
    static const mempool_put_options rc = { 0, 0, MEMPOOL_PUT_REFCOUNTED };
    mempool *p;
    mempool_chan *c;
    mempool_dref r;
    uint64_t x = 5;
    setenv("MEMPOOL_FAILPOINT", "send.committed=kill@1", 1);
    T_CHILD_EQ(t_attach(t_name, &p), 0);
    T_CHILD_EQ(mempool_chan_open(p, chan, 0, 0, &c), 0);
    T_CHILD_EQ(mempool_put_ex(p, &x, sizeof(x), &rc, &r), 0);
    mempool_chan_send(c, r, -1);
    return 3;                         /* not reached: killed */
}

TCase *t_tcase(Suite *s, const char *name, double timeout)
{
    TCase *tc = tcase_create(name);

    tcase_add_checked_fixture(tc, t_setup, t_teardown);
    tcase_set_timeout(tc, timeout);
    suite_add_tcase(s, tc);
    return tc;
}

struct mempool_stats t_stats(mempool *p)
{
    struct mempool_stats s;
    int rc;

    memset(&s, 0xa5, sizeof s);
    rc = mempool_stats_get(p, &s);
    ck_assert_msg(rc == 0, "mempool_stats = %d (%s)", rc, mempool_strerror(rc));
    ck_assert_uint_eq(s.size, sizeof s);
    return s;
}

uint64_t t_worker_objects(mempool *p, int wid)
{
    struct mempool_worker_stats ws;
    memset(&ws, 0, sizeof ws);
    ws.size = sizeof ws;
    ck_assert_int_eq(mempool_worker_stats_get(p, wid, &ws), 0);
    return ws.objects;
}

long t_pins(mempool *p, mempool_dref r)
{
    mempool_info in;

    return mempool_info_get(p, r, &in) == 0 ? (long)in.pins : -1;
}

static int chan_info_of(const mempool_chan_info *ci, void *arg)
{
    mempool_chan_info *out = arg;
    if (strcmp(ci->name, out->name) == 0) {
        *out = *ci;
        return 1;
    }
    return 0;
}

int t_dies(void *unused)
{
    mempool *p;
    (void)unused;
    T_CHILD_EQ(t_attach(t_name, &p), 0);
    _exit(0);                         /* dead, not closed: to be reaped */
}

int t_alloc_holder(void *unused)
{
    static char buf[64 * 1024];       /* a page run: the allocator lock */
    mempool *p;
    mempool_dref r;
    (void)unused;
    setenv("MEMPOOL_FAILPOINT", "alloc.locked=stop@1", 1);
    T_CHILD_EQ(t_attach(t_name, &p), 0);
    T_CHILD_EQ(mempool_put(p, buf, sizeof buf, &r), 0);   /* stops inside */
    T_CHILD_EQ(mempool_delete(p, r), 0);
    T_CHILD_EQ(mempool_close(p), 0);
    return 0;
}

int t_closer(void *arg)
{
    const struct t_closer *a = arg;
    char *buf = calloc(1, a->size);
    mempool *p;
    T_CHILD_ASSERT(buf != NULL);
    T_CHILD_EQ(t_attach(t_name, &p), 0);
    for (int i = 0; i < a->n; i++) {
        mempool_dref r;
        T_CHILD_EQ(mempool_put(p, buf, a->size, &r), 0);
        T_CHILD_EQ(t_send_dref(a->rep_fd, r), 0);
    }
    T_CHILD_EQ(t_send_u64(a->rep_fd, (uint64_t)mempool_worker_id(p)), 0);
    T_CHILD_EQ(t_wait_fd(a->go_fd, T_WAIT_S), 0);
    T_CHILD_EQ(t_send_u64(a->rep_fd, (uint64_t)(int64_t)mempool_close(p)),
               0);
    free(buf);
    return 0;
}

void t_assert_settled(mempool *p, uint64_t objects0, uint64_t used0)
{
    mempool_dref r;
    ASSERT_RC(mempool_put(p, "x", 1, &r), 0);
    ASSERT_RC(mempool_delete(p, r), 0);
    ck_assert_uint_eq(t_stats(p).objects, objects0);
    ck_assert_uint_eq(t_stats(p).used_bytes, used0);
    t_assert_healthy(p);
}

void t_note_bug(struct t_note *n, const char *what, long long rc)
{
    int z = 0;
    if (atomic_compare_exchange_strong(&n->failed, &z, 1))
        snprintf(n->why, sizeof n->why, "pid %d: %.250s (%lld)",
                 (int)getpid(), what, rc);
}

void *t_shared_map(size_t len)
{
    void *a = mmap(NULL, len, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ck_assert(a != MAP_FAILED);
    return a;
}

void t_storm_end(mempool *p, const struct t_note *n)
{
    ck_assert_msg(atomic_load(&n->failed) == 0, "%s", n->why);
    ck_assert_int_eq(mempool_reap(p), 0);
    t_assert_healthy(p);
    ck_assert_uint_eq(t_stats(p).objects, 0);
    mempool_close(p);
    mempool_destroy(t_name);
}

int t_stopped_receiver(void *chan_name)
{
    mempool *p;
    mempool_chan *c;
    mempool_dref r;
    setenv("MEMPOOL_FAILPOINT", "recv.taken=stop@1", 1);
    T_CHILD_EQ(t_attach(t_name, &p), 0);
    T_CHILD_EQ(mempool_chan_open(p, chan_name, 0, 0, &c), 0);
    T_CHILD_EQ(mempool_chan_recv(c, &r, -1), 0);
    T_CHILD_EQ(mempool_unref(p, r), 0);
    mempool_chan_close(c);
    mempool_close(p);
    return 0;
}

mempool_chan_info t_chan_info(mempool *p, const char *name, bool *found)
{
    mempool_chan_info in;
    int rc;
    memset(&in, 0, sizeof(in));
    snprintf(in.name, sizeof(in.name), "%s", name);
    rc = mempool_chan_list(p, chan_info_of, &in);
    ck_assert_int_ge(rc, 0);
    if (found)
        *found = rc == 1;
    else
        ck_assert_msg(rc == 1, "channel %s not listed", name);
    return in;
}

void t_await_receivers(const char *chan, uint32_t n)
{
    double t0 = t_now_s();
    while (t_chan_info(t_pool, chan, NULL).receivers_waiting < n) {
        ck_assert_msg(t_now_s() - t0 < T_WAIT_S, "receivers never slept");
        t_sleep_ms(1);
    }
    t_sleep_ms(20);
}

long t_refs(mempool *p, mempool_dref r)
{
    mempool_info in;

    return mempool_info_get(p, r, &in) == 0 ? (long)in.refs : -1;
}

void t_assert_healthy(mempool *p)
{
    char why[256] = "";
    int rc = mempool_check(p, why, sizeof why);

    ck_assert_msg(rc == 0, "mempool_check = %d (%s): %s", rc,
                  mempool_strerror(rc), why);
}

bool t_in_pool_mapping(const char *name, const void *ptr, size_t len)
{
    char path[300], line[512];
    struct stat st;
    FILE *f;
    bool found = false;
    uintptr_t a = (uintptr_t)ptr;

    t_shm_path(path, sizeof path, name);
    if (stat(path, &st) != 0)
        return false;
    f = fopen("/proc/self/maps", "r");
    if (!f)
        return false;
    while (!found && fgets(line, sizeof line, f)) {
        unsigned long lo, hi, ino;
        unsigned maj, mnr;

        if (sscanf(line, "%lx-%lx %*s %*s %x:%x %lu", &lo, &hi, &maj, &mnr,
                   &ino) != 5)
            continue;
        if (ino != (unsigned long)st.st_ino || maj != major(st.st_dev) ||
            mnr != minor(st.st_dev))
            continue;
        found = a >= lo && a <= hi && len <= hi - a;
    }
    fclose(f);
    return found;
}

/* ----------------------------------------------------------------- data */

uint64_t t_rand(uint64_t *s)
{
    uint64_t x = *s ? *s : 0x9e3779b97f4a7c15ull;

    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545f4914f6cdd1dull;
}

void t_fill(void *buf, size_t len, uint64_t seed)
{
    unsigned char *b = buf;
    uint64_t s = seed * 0x9e3779b97f4a7c15ull + 1, w = 0;
    size_t i;

    for (i = 0; i < len; i++) {
        if ((i & 7) == 0)
            w = t_rand(&s);
        b[i] = (unsigned char)(w >> ((i & 7) * 8));
    }
}

bool t_check_fill(const void *buf, size_t len, uint64_t seed)
{
    const unsigned char *b = buf;
    uint64_t s = seed * 0x9e3779b97f4a7c15ull + 1, w = 0;
    size_t i;

    for (i = 0; i < len; i++) {
        if ((i & 7) == 0)
            w = t_rand(&s);
        if (b[i] != (unsigned char)(w >> ((i & 7) * 8)))
            return false;
    }
    return true;
}

mempool_dref t_put_fill(mempool *p, size_t len, uint64_t seed)
{
    void *buf = malloc(len ? len : 1);
    mempool_dref r;
    ck_assert_ptr_nonnull(buf);
    t_fill(buf, len, seed);
    ASSERT_RC(mempool_put(p, buf, len, &r), 0);
    free(buf);
    return r;
}

void t_expect_fill(mempool *p, mempool_dref r, size_t len, uint64_t seed)
{
    mempool_view v;
    ASSERT_RC(mempool_get(p, r, &v), 0);
    ck_assert_uint_eq(v.len, len);
    ck_assert(t_check_fill(v.data, len, seed));
    ASSERT_RC(mempool_release(p, &v), 0);
}

uint64_t t_fnv1a(const void *buf, size_t len)
{
    const unsigned char *b = buf;
    uint64_t h = 0xcbf29ce484222325ull;
    size_t i;

    for (i = 0; i < len; i++) {
        h ^= b[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

uint32_t t_crc32(const void *buf, size_t len)
{
    const unsigned char *b = buf;
    uint32_t c = 0xffffffffu;
    size_t i;
    int k;

    for (i = 0; i < len; i++) {
        c ^= b[i];
        for (k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
    }
    return ~c;
}

/* ------------------------------------------------------------ processes */

static double t_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

pid_t t_fork(int (*fn)(void *arg), void *arg)
{
    pid_t pid;

    fflush(stdout);
    fflush(stderr);
    pid = fork();
    ck_assert_msg(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0)
        _exit(fn(arg));
    return pid;
}

static int t_status(int st)
{
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    if (WIFSIGNALED(st))
        return 128 + WTERMSIG(st);
    return -1;
}

int t_wait(pid_t pid, double timeout_s)
{
    double end = t_now() + timeout_s;
    int st;

    for (;;) {
        pid_t w = waitpid(pid, &st, WNOHANG);

        if (w == pid)
            return t_status(st);
        if (w < 0 && errno != EINTR)
            return -1;
        if (t_now() > end) {
            fprintf(stderr, "t_wait: child %d hung; killing it\n", (int)pid);
            kill(pid, SIGKILL);
            while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
                ;
            return -1;
        }
        usleep(1000);
    }
}

static char t_dog_what[512];
static size_t t_dog_len;

/* SIGALRM of t_watchdog(): name the step and end the test process. Only
 * async-signal-safe calls. */
static void t_dog_bark(int sig)
{
    static const char m[] = "\nt_watchdog: still running, hung: ";
    (void)sig;
    (void)!write(2, m, sizeof m - 1);
    (void)!write(2, t_dog_what, t_dog_len);
    (void)!write(2, "\n", 1);
    _exit(1);
}

void t_watchdog(unsigned seconds, const char *what)
{
    static bool handled;

    if (!seconds) {
        alarm(0);
        return;
    }
    if (!handled) {
        struct sigaction sa = { .sa_handler = t_dog_bark };
        sigemptyset(&sa.sa_mask);
        ck_assert_int_eq(sigaction(SIGALRM, &sa, NULL), 0);
        handled = true;
    }
    snprintf(t_dog_what, sizeof t_dog_what, "%s (over %u s)", what, seconds);
    t_dog_len = strlen(t_dog_what);
    alarm(seconds);
}

/* Thread @p tid's scheduler state letter (/proc: R, S, D, T, ...), or 0. */
static char task_state(pid_t tid)
{
    char path[64], buf[512];
    const char *rp;
    ssize_t n;
    int fd;
    snprintf(path, sizeof path, "/proc/%d/task/%d/stat", (int)tid, (int)tid);
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return 0;
    n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = 0;
    rp = strrchr(buf, ')');          /* the name may hold anything */
    return rp && rp[1] == ' ' ? rp[2] : 0;
}

bool t_await_sleeping(pid_t tid, double timeout_s)
{
    double end = t_now_s() + timeout_s;
    for (;;) {
        if (task_state(tid) == 'S')
            return true;
        if (t_now_s() > end)
            return false;
        usleep(100);                 /* it may need our CPU to get there */
    }
}

void t_await_stopped(pid_t pid, const char *where)
{
    double t0 = t_now_s();
    for (;;) {
        int st;
        pid_t w = waitpid(pid, &st, WUNTRACED | WNOHANG);
        if (w == pid) {
            ck_assert_msg(WIFSTOPPED(st), "child ended (%#x) instead of "
                          "stopping at %s", st, where);
            return;
        }
        ck_assert_msg(t_now_s() - t0 < T_WAIT_S, "child never stopped at %s",
                      where);
        t_sleep_ms(1);
    }
}

int t_kill(pid_t pid)
{
    int st;
    pid_t w;

    if (kill(pid, SIGKILL) != 0 && errno != ESRCH)
        return -1;
    do
        w = waitpid(pid, &st, 0);
    while (w < 0 && errno == EINTR);
    if (w != pid)
        return -1;
    return WIFSIGNALED(st) ? WTERMSIG(st) : -1;
}

/* ---------------------------------------------------------------- pipes */

void t_pipe(int fds[2])
{
    ck_assert_msg(pipe2(fds, O_CLOEXEC) == 0, "pipe2: %s", strerror(errno));
}

int t_send(int fd, const void *buf, size_t len)
{
    const char *b = buf;

    while (len) {
        ssize_t n = write(fd, b, len);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        b += n;
        len -= (size_t)n;
    }
    return 0;
}

int t_recv(int fd, void *buf, size_t len, double timeout_s)
{
    char *b = buf;
    double end = t_now() + timeout_s;

    while (len) {
        struct pollfd pf = { .fd = fd, .events = POLLIN };
        double left = end - t_now();
        ssize_t n;
        int pr;

        if (left <= 0)
            return -ETIMEDOUT;
        pr = poll(&pf, 1, (int)(left * 1000) + 1);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr < 0)
            return -errno;
        if (pr == 0)
            return -ETIMEDOUT;
        n = read(fd, b, len);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            return -errno;
        }
        if (n == 0)
            return -EPIPE;
        b += n;
        len -= (size_t)n;
    }
    return 0;
}

int t_send_dref(int fd, mempool_dref r)
{
    return t_send(fd, &r, sizeof r);
}

int t_recv_dref(int fd, mempool_dref *r, double timeout_s)
{
    return t_recv(fd, r, sizeof *r, timeout_s);
}

int t_send_u64(int fd, uint64_t v)
{
    return t_send(fd, &v, sizeof v);
}

int t_recv_u64(int fd, uint64_t *v, double timeout_s)
{
    return t_recv(fd, v, sizeof *v, timeout_s);
}

int t_wait_fd(int fd, double timeout_s)
{
    double end = t_now() + timeout_s;

    for (;;) {
        struct pollfd pf = { .fd = fd, .events = POLLIN };
        double left = end - t_now();
        int pr;

        if (left <= 0)
            return -ETIMEDOUT;
        pr = poll(&pf, 1, (int)(left * 1000) + 1);
        if (pr > 0)
            return 0;
        if (pr < 0 && errno != EINTR)
            return -errno;
    }
}

/* ------------------------------------------------------ remote workers */

struct t_remote_msg {
    int32_t op;
    int32_t pad;
    uint64_t arg;
    mempool_dref r;
};

struct t_remote_rep {
    int64_t rc;
    mempool_dref r;
};

#define T_REMOTE_VIEWS 4096

static int64_t t_remote_do(mempool *p, struct t_remote_msg *m,
                           mempool_view *views, int *nviews)
{
    int64_t n = 0;
    int rc = 0;
    uint64_t i;

    switch (m->op) {
    case T_R_WID:
        return mempool_worker_id(p);
    case T_R_SET:
    case T_R_SET_RC: {
        mempool_put_options o = { 0, 0, 0 };
        void *buf = malloc(m->arg ? m->arg : 1);

        if (!buf)
            return -ENOMEM;
        t_fill(buf, m->arg, m->arg);
        if (m->op == T_R_SET_RC)
            o.flags = MEMPOOL_PUT_REFCOUNTED;
        rc = mempool_put_ex(p, buf, m->arg, &o, &m->r);
        free(buf);
        return rc;
    }
    case T_R_GET:
        for (i = 0; i < m->arg; i++) {
            if (*nviews >= T_REMOTE_VIEWS)
                return -ENOBUFS;
            rc = mempool_get(p, m->r, &views[*nviews]);
            if (rc != 0)
                return rc;
            (*nviews)++;
        }
        return 0;
    case T_R_RELEASE_ALL:
        while (*nviews > 0) {
            rc = mempool_release(p, &views[--(*nviews)]);
            if (rc != 0)
                return rc;
            n++;
        }
        return n;
    case T_R_REF:
        for (i = 0; i < m->arg && rc == 0; i++)
            rc = mempool_ref(p, m->r);
        return rc;
    case T_R_UNREF:
        return mempool_unref(p, m->r);
    case T_R_DELETE:
        return mempool_delete(p, m->r);
    case T_R_RESERVE: {
        void *buf = NULL;

        rc = mempool_reserve(p, m->arg, NULL, &buf, &m->r);
        if (rc == 0)
            memset(buf, 0x5c, m->arg / 2);
        return rc;
    }
    case T_R_VERIFY:
        for (i = 0; i < (uint64_t)*nviews; i++)
            if (!views[i].data)
                return -EFAULT;
        return *nviews;
    default:
        return -EINVAL;
    }
}

static void t_remote_main(const char *name, int cmd, int rep)
{
    mempool_view *views = calloc(T_REMOTE_VIEWS, sizeof *views);
    mempool *p = NULL;
    struct t_remote_msg m;
    struct t_remote_rep r;
    int nviews = 0;

    T_CHILD_ASSERT(views != NULL);
    r.rc = t_attach(name, &p);
    memset(&r.r, 0, sizeof r.r);
    T_CHILD_ASSERT(t_send(rep, &r, sizeof r) == 0);
    if (r.rc != 0)
        _exit(3);
    for (;;) {
        if (t_recv(cmd, &m, sizeof m, 3600.0) != 0 || m.op == T_R_QUIT)
            break;
        r.rc = t_remote_do(p, &m, views, &nviews);
        r.r = m.r;
        T_CHILD_ASSERT(t_send(rep, &r, sizeof r) == 0);
    }
    while (nviews > 0)
        mempool_release(p, &views[--nviews]);
    T_CHILD_ASSERT(mempool_close(p) == 0);
    free(views);
    _exit(0);
}

void t_remote_start(struct t_remote *w, const char *name)
{
    int c[2], r[2];
    struct t_remote_rep hello;
    int rc;

    t_pipe(c);
    t_pipe(r);
    fflush(stdout);
    fflush(stderr);
    w->pid = fork();
    ck_assert_msg(w->pid >= 0, "fork: %s", strerror(errno));
    if (w->pid == 0) {
        close(c[1]);
        close(r[0]);
        t_remote_main(name, c[0], r[1]);
        _exit(0);
    }
    close(c[0]);
    close(r[1]);
    w->cmd = c[1];
    w->rep = r[0];
    rc = t_recv(w->rep, &hello, sizeof hello, T_WAIT_S);
    ck_assert_msg(rc == 0, "remote worker did not start: %d", rc);
    ck_assert_msg(hello.rc == 0, "remote worker: open = %d (%s)",
                  (int)hello.rc, mempool_strerror((int)hello.rc));
}

int64_t t_remote_call(struct t_remote *w, int op, mempool_dref *r,
                      uint64_t arg)
{
    struct t_remote_msg m;
    struct t_remote_rep rep;

    memset(&m, 0, sizeof m);
    m.op = op;
    m.arg = arg;
    if (r)
        m.r = *r;
    if (t_send(w->cmd, &m, sizeof m) != 0 ||
        t_recv(w->rep, &rep, sizeof rep, T_WAIT_S) != 0)
        return INT64_MIN;
    if (r)
        *r = rep.r;
    return rep.rc;
}

int t_remote_quit(struct t_remote *w)
{
    struct t_remote_msg m;
    int st;

    memset(&m, 0, sizeof m);
    m.op = T_R_QUIT;
    (void)t_send(w->cmd, &m, sizeof m);
    st = t_wait(w->pid, T_WAIT_S);
    close(w->cmd);
    close(w->rep);
    w->pid = 0;
    return st;
}

void t_remote_kill(struct t_remote *w)
{
    int sig = t_kill(w->pid);

    ck_assert_msg(sig == SIGKILL, "remote %d: killed by %d", (int)w->pid,
                  sig);
    close(w->cmd);
    close(w->rep);
    w->pid = 0;
}

/* ------------------------------------------------------------------ main */

/* Remove whatever this runner's tests left in /dev/shm (a test that failed
 * exits before its teardown). Matches the token in every name we made. */
static void t_sweep(void)
{
    char token[64];
    DIR *d = opendir("/dev/shm");
    struct dirent *e;
    int n = 0;

    snprintf(token, sizeof token, "t-%s-r%d-", t_area, (int)t_runner);
    while (d && (e = readdir(d))) {
        char path[512];

        if (!strstr(e->d_name, token))
            continue;
        snprintf(path, sizeof path, "/dev/shm/%s", e->d_name);
        if (unlink(path) == 0)
            n++;
    }
    if (d)
        closedir(d);
    if (n)
        fprintf(stderr, "t_run: swept %d leftover /dev/shm entr%s\n", n,
                n == 1 ? "y" : "ies");
    if (t_spill_dir[0])
        t_rm_tree(t_spill_dir);
}

int t_run(Suite *s, const char *area)
{
    SRunner *sr;
    int failed;

    if (access("/dev/shm", W_OK | X_OK) != 0) {
        fprintf(stderr, "SKIP: /dev/shm is not writable\n");
        return 77;
    }
    t_area = area;
    t_runner = getpid();
    snprintf(t_spill_dir, sizeof t_spill_dir, "/tmp/t-%s-spill.XXXXXX", area);
    if (!mkdtemp(t_spill_dir))
        t_spill_dir[0] = '\0';
    sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_FORK);
    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    t_sweep();
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* @p t's count of runs in @p loops, or 0 (a plain test). */
static int loop_runs(const struct t_loop *loops, const TTest *t)
{
    for (; loops && loops->test; loops++)
        if (loops->test == t)
            return loops->runs;
    return 0;
}

int t_main(const char *area, const struct t_case cases[])
{
    return t_main_loops(area, cases, NULL);
}

int t_main_loops(const char *area, const struct t_case cases[],
                 const struct t_loop loops[])
{
    Suite *s = suite_create(area);

    for (const struct t_case *c = cases; c->name; c++) {
        TCase *tc;
        if (c->fixture) {
            tc = t_tcase(s, c->name, c->timeout);
        } else {
            tc = tcase_create(c->name);
            tcase_set_timeout(tc, c->timeout);
            suite_add_tcase(s, tc);
        }
        for (size_t i = 0; i < T_CASE_TESTS && c->tests[i]; i++) {
            int runs = loop_runs(loops, c->tests[i]);
            if (runs)
                tcase_add_loop_test(tc, c->tests[i], 0, runs);
            else
                tcase_add_test(tc, c->tests[i]);
        }
    }
    return t_run(s, area);
}

/* ---------------------------------------------------- memory backing */

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25     /* Linux 6.1 */
#endif

/* Can this kernel put a huge page into a tmpfs file (MADV_COLLAPSE)? */
bool t_huge_possible(void)
{
    char path[] = "/dev/shm/t-huge-probe-XXXXXX";
    const size_t chunk = 2u << 20, len = 2 * chunk;
    bool ok = false;
    int fd = mkstemp(path);
    if (fd < 0)
        return false;
    unlink(path);
    if (ftruncate(fd, (off_t)len) == 0) {
        uint8_t *r = mmap(NULL, 2 * len, PROT_NONE,
                          MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (r != MAP_FAILED) {
            uint8_t *a = (uint8_t *)(((uintptr_t)r + chunk - 1) &
                                     ~(uintptr_t)(chunk - 1));
            if (mmap(a, chunk, PROT_READ | PROT_WRITE,
                     MAP_SHARED | MAP_FIXED, fd, 0) != MAP_FAILED) {
                a[0] = 1;
                ok = madvise(a, chunk, MADV_COLLAPSE) == 0;
            }
            munmap(r, 2 * len);
        }
    }
    close(fd);
    return ok;
}

/* Bytes of pool @p name's shm object mapped by PMDs in this process. */
uint64_t t_pmd_mapped(const char *name)
{
    char path[300], line[512];
    struct stat st;
    uint64_t kb = 0;
    bool in = false;
    FILE *f;

    t_shm_path(path, sizeof path, name);
    if (stat(path, &st) != 0 || !(f = fopen("/proc/self/smaps", "r")))
        return 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi, ino, v;
        if (sscanf(line, "%lx-%lx %*s %*s %*x:%*x %lu", &lo, &hi, &ino) == 3)
            in = ino == (unsigned long)st.st_ino;
        else if (in && sscanf(line, "ShmemPmdMapped: %lu kB", &v) == 1)
            kb += v;
    }
    fclose(f);
    return kb << 10;
}

/* Bytes of memory the pool's shm object holds. */
uint64_t t_shm_bytes(const char *name)
{
    char path[300];
    struct stat st;
    t_shm_path(path, sizeof path, name);
    return stat(path, &st) == 0 ? (uint64_t)st.st_blocks * 512 : 0;
}
