/* SPDX-License-Identifier: MIT */
/*
 * check_backahead.c - a large put into new memory backs its block on a
 * helper thread while it copies (src/core/backahead.c, issue 11 target 3):
 *
 *   content    puts of 4 MiB (the threshold) to 40 MiB, odd lengths, into
 *              a new pool: default (a helper if a CPU looks free), always
 *              (MEMPOOL_OPEN_BACK_AHEAD) and never a helper
 *              (MEMPOOL_OPEN_BACK_INLINE): every byte reads back in a new
 *              process, which maps the object by huge pages where the
 *              kernel allows, and the pool checks clean
 *   trimmed    the same into pages trimmed since (flagged as holes again)
 *              and into blocks partly backed, partly trimmed
 *   no thread  a process whose thread creation fails (a seccomp filter,
 *              clone/clone3 -> EAGAIN) still puts: the caller backs alone
 *   anytime    a 48 MiB put SIGKILLed 0 .. 8 ms after it began, again
 *              and again in one pool: each time reaped, the pool checks
 *              clean and holds what it held; then 48 and 100 MiB puts
 *              into those pages read back
 *   option     INLINE with AHEAD, and unknown open flags, are refused
 * The writers below open with MEMPOOL_OPEN_BACK_AHEAD: under ctest -j2 a
 * CPU rarely looks free.
 * With failpoints:
 *   killed     the process SIGKILLed at the helper's point (back.ahead),
 *              and at the first hits of back.chunk (the caller's chunk or
 *              the helper's rest): reaped, the pool checks clean, the
 *              block is free and still known to be holes (a put with
 *              backing refused is -ENOSPC), and a put into it works
 *   refused    the helper's backing refused (back.ahead=enospc): the put
 *              is -ENOSPC, nothing leaks, the next put works
 *   stopped    the process stopped at back.ahead holds no lock: others
 *              put, get and delete meanwhile; resumed, the put completes
 */
#include "helpers.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "t_seccomp.h"

#define MiB (1ull << 20)
#define ARENA (128 * MiB)
#define BIG (24 * MiB + 12345)

static int open_pool(const char *name, bool create, uint32_t flags,
                     mempool **p)
{
    mempool_options o;
    t_options(&o, ARENA);
    o.flags = flags | (create ? MEMPOOL_OPEN_CREATE | MEMPOOL_OPEN_EXCL : 0);
    o.huge = MEMPOOL_HUGE_AUTO;
    return mempool_open(name, &o, p);
}

/* A new process checks object @p r: every byte, and huge mappings. */
struct reader {
    const char *name;
    mempool_dref r;
    size_t len;
    uint64_t seed;
    bool huge;     /* expect huge mappings (new pages, no crash before) */
};

static int reader_child(void *arg)
{
    const struct reader *a = arg;
    mempool *p;
    mempool_view v;
    T_CHILD_EQ(t_attach(a->name, &p), 0);
    T_CHILD_EQ(mempool_get(p, a->r, &v), 0);
    T_CHILD_EQ(v.len, a->len);
    T_CHILD_ASSERT(t_check_fill(v.data, v.len, a->seed));
    /* Its whole chunks are huge pages: all but the two partial ones. */
    if (a->huge && a->len >= 6 * MiB && t_huge_possible())
        T_CHILD_ASSERT(t_pmd_mapped(a->name) >= a->len - 4 * MiB);
    T_CHILD_EQ(mempool_release(p, &v), 0);
    T_CHILD_EQ(mempool_close(p), 0);
    return 0;
}

static void put_check_delete(mempool *p, const char *name, size_t len,
                             uint64_t seed)
{
    uint64_t used = t_stats(p).used_bytes;
    mempool_dref r = t_put_fill(p, len, seed);
    struct reader a = { name, r, len, seed, false };
    t_wait_ok(t_fork(reader_child, &a));
    ASSERT_RC(mempool_delete(p, r), 0);
    ck_assert_uint_eq(t_stats(p).used_bytes, used);
}

static void content_case(uint32_t flags)
{
    static const size_t sizes[] = { 4 * MiB, 4 * MiB + 4097, 13 * MiB + 1,
                                    40 * MiB };
    char name[T_NAME_LEN];
    mempool *p;
    t_pool_name(name, "backahead");
    ASSERT_RC(open_pool(name, true, flags, &p), 0);
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        uint64_t held = t_shm_bytes(name);
        mempool_dref r = t_put_fill(p, sizes[i], i + 1);
        ck_assert_uint_ge(t_shm_bytes(name), held + sizes[i] - 4 * MiB);
        struct reader a = { name, r, sizes[i], i + 1, true };
        t_wait_ok(t_fork(reader_child, &a));
        t_assert_healthy(p);
        /* kept: the next put gets new pages again */
    }
    t_assert_healthy(p);
    ASSERT_RC(mempool_close(p), 0);
    ASSERT_RC(mempool_destroy(name), 0);
}

START_TEST(test_content)
{
    content_case(0);
}
END_TEST

START_TEST(test_content_inline)
{
    content_case(MEMPOOL_OPEN_BACK_INLINE);
}
END_TEST

START_TEST(test_content_ahead)
{
    content_case(MEMPOOL_OPEN_BACK_AHEAD);
}
END_TEST

START_TEST(test_trimmed)
{
    char name[T_NAME_LEN];
    mempool *p;
    t_pool_name(name, "backahead");
    ASSERT_RC(open_pool(name, true, MEMPOOL_OPEN_BACK_AHEAD, &p), 0);
    mempool_dref a = t_put_fill(p, 16 * MiB, 1);
    mempool_dref b = t_put_fill(p, 16 * MiB, 2);
    ASSERT_RC(mempool_delete(p, a), 0);
    ck_assert_int_ge(mempool_trim(p), (int64_t)(12 * MiB));
    /* a's pages are holes again (flagged), b's are backed: a put of 16
     * MiB lands on the first, one of 30 MiB on a's and new ones */
    put_check_delete(p, name, 16 * MiB, 3);
    put_check_delete(p, name, 30 * MiB, 4);
    ASSERT_RC(mempool_delete(p, b), 0);
    put_check_delete(p, name, 50 * MiB + 1, 5);  /* backed and not */
    ck_assert_int_ge(mempool_trim(p), 0);
    put_check_delete(p, name, 50 * MiB + 1, 6);
    t_assert_healthy(p);
    ASSERT_RC(mempool_close(p), 0);
    ASSERT_RC(mempool_destroy(name), 0);
}
END_TEST

#ifdef T_HAVE_SECCOMP
/* Refuse every new thread (clone, clone3) with EAGAIN from now on; fork()
 * is clone too, so this process forks nothing after. */
static int deny_threads(void)
{
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone, 1, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone3, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EAGAIN),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = { sizeof f / sizeof f[0], f };
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0)
        return -errno;
    return 0;
}

static int nothread_child(void *arg)
{
    const char *name = arg;
    size_t len = 20 * MiB + 3;
    void *buf = malloc(len);
    mempool *p;
    mempool_dref r;
    mempool_view v;
    T_CHILD_ASSERT(buf != NULL);
    t_fill(buf, len, 9);
    T_CHILD_EQ(open_pool(name, false, MEMPOOL_OPEN_BACK_AHEAD, &p), 0);
    T_CHILD_EQ(deny_threads(), 0);
    T_CHILD_EQ(mempool_put(p, buf, len, &r), 0);
    T_CHILD_EQ(mempool_get(p, r, &v), 0);
    T_CHILD_ASSERT(v.len == len && t_check_fill(v.data, len, 9));
    T_CHILD_EQ(mempool_release(p, &v), 0);
    T_CHILD_EQ(mempool_delete(p, r), 0);
    T_CHILD_EQ(mempool_check(p, NULL, 0), 0);
    T_CHILD_EQ(mempool_close(p), 0);
    free(buf);
    return 0;
}
#endif

START_TEST(test_no_thread)
{
#ifdef T_HAVE_SECCOMP
    char name[T_NAME_LEN];
    mempool *p;
    t_pool_name(name, "backahead");
    ASSERT_RC(open_pool(name, true, 0, &p), 0);
    t_wait_ok(t_fork(nothread_child, name));
    t_assert_healthy(p);
    ASSERT_RC(mempool_close(p), 0);
    ASSERT_RC(mempool_destroy(name), 0);
#endif
}
END_TEST

/* Put 48 MiB, saying "now" on a pipe just before and its DRef after;
 * delete it. */
struct timed {
    const char *name;
    int fd;
};

static int timed_writer(void *arg)
{
    const struct timed *t = arg;
    size_t len = 48 * MiB;
    void *buf = malloc(len);
    mempool *p;
    mempool_dref r;
    T_CHILD_ASSERT(buf != NULL);
    t_fill(buf, len, 31);
    T_CHILD_EQ(open_pool(t->name, false, MEMPOOL_OPEN_BACK_AHEAD, &p), 0);
    T_CHILD_EQ(t_send(t->fd, "n", 1), 0);
    T_CHILD_EQ(mempool_put(p, buf, len, &r), 0);
    T_CHILD_EQ(t_send_dref(t->fd, r), 0);
    T_CHILD_EQ(mempool_delete(p, r), 0);
    T_CHILD_EQ(mempool_close(p), 0);
    free(buf);
    return 0;
}

/* SIGKILL a 48 MiB put at whatever it is doing 0 .. 8 ms in - backing
 * its first chunk, the helper collapsing the rest, copying, or done -
 * into new pages and into pages earlier victims left half backed. */
START_TEST(test_killed_anytime)
{
    static const long us[] = { 0, 100, 300, 700, 1500, 3000, 5000, 8000 };
    char name[T_NAME_LEN];
    mempool *p;
    t_pool_name(name, "backahead");
    ASSERT_RC(open_pool(name, true, 0, &p), 0);
    uint64_t used = t_stats(p).used_bytes;
    for (size_t i = 0; i < sizeof us / sizeof us[0]; i++) {
        int fds[2];
        char c;
        t_pipe(fds);
        struct timed t = { name, fds[1] };
        pid_t pid = t_fork(timed_writer, &t);
        close(fds[1]);
        mempool_dref r;
        ASSERT_RC(t_recv(fds[0], &c, 1, T_WAIT_S), 0);
        nanosleep(&(struct timespec){ 0, us[i] * 1000 }, NULL);
        (void)t_kill(pid);                     /* or it had finished */
        ck_assert_int_le(mempool_reap(p), 1);
        t_assert_healthy(p);
        /* published before the kill: now the pool's */
        if (t_recv_dref(fds[0], &r, 0.1) == 0) {
            int rc = mempool_delete(p, r);
            ck_assert(rc == 0 || rc == -ENOENT);
        }
        close(fds[0]);
        ck_assert_uint_eq(t_stats(p).used_bytes, used);
    }
    put_check_delete(p, name, 48 * MiB, 32);
    put_check_delete(p, name, 100 * MiB, 33);
    t_assert_healthy(p);
    ASSERT_RC(mempool_close(p), 0);
    ASSERT_RC(mempool_destroy(name), 0);
}
END_TEST

START_TEST(test_option)
{
    char name[T_NAME_LEN];
    mempool *p = NULL;
    t_pool_name(name, "backahead");
    ASSERT_RC(open_pool(name, true, 0x80000000u, &p), -EINVAL);
    ASSERT_RC(open_pool(name, true, MEMPOOL_OPEN_BACK_INLINE |
                                    MEMPOOL_OPEN_BACK_AHEAD, &p), -EINVAL);
    ck_assert_ptr_null(p);
    ASSERT_RC(open_pool(name, true, MEMPOOL_OPEN_BACK_INLINE, &p), 0);
    ASSERT_RC(mempool_close(p), 0);
    ASSERT_RC(mempool_destroy(name), 0);
}
END_TEST

#ifdef T_FAILPOINTS
#define W_NOSPC 2         /* writer: the put answered -ENOSPC */
#define W_STOPPED 1000    /* writer_case: it stopped (then completed) */

struct writer {
    const char *name, *spec;
    uint64_t seed;
};

/* Put BIG under failpoint spec: exit 0 (the put succeeded and reads back)
 * or W_NOSPC (it answered -ENOSPC, the pool checks clean). */
static int writer_child(void *arg)
{
    const struct writer *w = arg;
    mempool *p;
    mempool_dref r;
    mempool_view v;
    void *buf = malloc(BIG);
    int rc;
    T_CHILD_ASSERT(buf != NULL);
    t_fill(buf, BIG, w->seed);
    setenv("MEMPOOL_FAILPOINT", w->spec, 1);
    T_CHILD_EQ(open_pool(w->name, false, MEMPOOL_OPEN_BACK_AHEAD, &p), 0);
    rc = mempool_put(p, buf, BIG, &r);
    T_CHILD_ASSERT(rc == 0 || rc == -ENOSPC);
    if (rc == 0) {
        T_CHILD_EQ(mempool_get(p, r, &v), 0);
        T_CHILD_ASSERT(t_check_fill(v.data, BIG, w->seed));
        T_CHILD_EQ(mempool_release(p, &v), 0);
        T_CHILD_EQ(mempool_delete(p, r), 0);
    }
    T_CHILD_EQ(mempool_check(p, NULL, 0), 0);
    T_CHILD_EQ(mempool_close(p), 0);
    free(buf);
    return rc ? W_NOSPC : 0;
}

/* Wait until @p pid stops (1) or exits (0). Watchdog only. */
static int stopped_or_exited(pid_t pid)
{
    for (int i = 0; i < 60000; i++) {
        int st;
        pid_t got = waitpid(pid, &st, WUNTRACED | WNOHANG);
        ck_assert_int_ne(got, -1);
        if (got == pid && WIFSTOPPED(st))
            return 1;
        if (got == pid) {
            ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
                          "writer ended with %#x", st);
            return 0;
        }
        nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
    }
    ck_abort_msg("writer neither stopped nor ended");
    return 0;
}

/* The writer is stopped (by its helper, at back.ahead): it holds no
 * lock, so all of this proceeds (a hang is the failure); resumed, it
 * completes and verifies its put. */
static void while_stopped(mempool *p, const char *name, pid_t pid)
{
    put_check_delete(p, name, 64, 1);
    put_check_delete(p, name, 100000, 2);
    put_check_delete(p, name, 8 * MiB, 3);
    ck_assert_int_eq(mempool_reap(p), 0);          /* stopped, not dead */
    ck_assert_int_eq(kill(pid, SIGCONT), 0);
    t_wait_ok(pid);
}

/*
 * A writer under @p spec in a new pool, then: reaped if it died, the pool
 * checks clean and holds what it held before; if the writer did not
 * complete, its pages are still known to be holes (a put with backing
 * refused is -ENOSPC); and a put into them works. @return how the writer
 * ended: 128 + SIGKILL, 0, W_NOSPC or W_STOPPED.
 */
static int writer_case(const char *spec, bool stops)
{
    char name[T_NAME_LEN];
    struct writer w = { name, spec, 12 };
    struct writer refused = { name, "back.chunk=enospc,back.pages=enospc",
                              0 };
    mempool *p;
    int st;
    t_pool_name(name, "backahead");
    ASSERT_RC(open_pool(name, true, 0, &p), 0);
    uint64_t used = t_stats(p).used_bytes;
    pid_t pid = t_fork(writer_child, &w);
    if (stops && stopped_or_exited(pid)) {
        while_stopped(p, name, pid);
        st = W_STOPPED;
    } else {
        st = stops ? 0 : t_wait(pid, T_WAIT_S);
    }
    ck_assert_msg(st == 128 + SIGKILL || st == 0 || st == W_NOSPC ||
                  st == W_STOPPED, "%s: writer ended with %d", spec, st);
    ck_assert_int_eq(mempool_reap(p), st == 128 + SIGKILL);
    t_assert_healthy(p);
    ck_assert_uint_eq(t_stats(p).used_bytes, used);
    /* A put into its pages with backing refused is -ENOSPC: they are
     * still known to be holes. But a kill at back.ahead comes as the
     * helper starts, before it takes anything: a slow start (ASan, load)
     * finds the caller has backed the whole block alone, and then a put
     * there needs no backing (0). */
    if (st == 128 + SIGKILL || st == W_NOSPC) {
        int rst = t_wait(t_fork(writer_child, &refused), T_WAIT_S);
        ck_assert_msg(rst == W_NOSPC ||
                      (rst == 0 && strcmp(spec, "back.ahead=kill") == 0),
                      "%s: a put with backing refused ended with %d", spec,
                      rst);
    }
    t_assert_healthy(p);
    put_check_delete(p, name, BIG, 21);
    t_assert_healthy(p);
    ASSERT_RC(mempool_close(p), 0);
    ASSERT_RC(mempool_destroy(name), 0);
    return st;
}

/* Run @p spec until it takes effect (@p want). The helper takes the rest
 * of the block only if it starts before its caller has backed a few
 * chunks alone, which on a loaded machine is not every time. */
static void until_hit(const char *spec, int want)
{
    for (int i = 0; i < 20; i++)
        if (writer_case(spec, want == W_STOPPED) == want)
            return;
    ck_abort_msg("%s never took effect in 20 puts", spec);
}

START_TEST(test_killed_helper)
{
    until_hit("back.ahead=kill", 128 + SIGKILL);
}
END_TEST

START_TEST(test_killed_chunks)
{
    /* @1: the caller's first chunk, or the whole block if the helper
     * took it all first; @2: the helper's rest, or the caller's next
     * chunk if the helper had not started; @3 the rest then */
    until_hit("back.chunk=kill@1", 128 + SIGKILL);
    until_hit("back.chunk=kill@2", 128 + SIGKILL);
    (void)writer_case("back.chunk=kill@3", false);
    /* 4 KiB pages (huge refused) */
    until_hit("back.chunk=enospc,back.pages=kill@1", 128 + SIGKILL);
    until_hit("back.chunk=enospc,back.pages=kill@2", 128 + SIGKILL);
}
END_TEST

START_TEST(test_refused)
{
    until_hit("back.ahead=enospc", W_NOSPC);
}
END_TEST

START_TEST(test_stopped)
{
    until_hit("back.ahead=stop@1", W_STOPPED);
}
END_TEST
#endif

int main(void)
{
    const struct t_case cases[] = {
        { "backahead", 240, false, {
              test_content, test_content_inline, test_content_ahead,
              test_trimmed, test_no_thread, test_killed_anytime, test_option,
#ifdef T_FAILPOINTS
              test_killed_helper, test_killed_chunks, test_refused,
              test_stopped,
#endif
          } },
        { .name = NULL }
    };
    return t_main("backahead", cases);
}
