/* SPDX-License-Identifier: MIT */
/*
 * check_perm.c - permissions of the shm object (issue semantic 9).
 *
 * A pool created 0600 cannot be opened by another user: -EACCES, no crash,
 * and the pool is unaffected; with mode 0666 that user can attach and read.
 * CI runs as root, whose CAP_DAC_OVERRIDE ignores modes, so the "other user"
 * is a forked child that drops to uid/gid 65534. As non-root we cannot become
 * another user; the owner then loses access by chmod 000 instead. If neither
 * works here (a user namespace without that uid, capabilities kept), the
 * whole binary exits 77 and ctest reports it skipped: Check has no per-test
 * skip, which is why these cases have their own binary.
 */
#include "helpers.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>


static bool as_root;

/* Child: can we lose access to a 0600 (root) or 0000 (non-root) file? */
static int probe_child(void *arg)
{
    const char *path = arg;
    int fd;

    if (as_root && t_become_nobody() != 0)
        return 77;
    fd = open(path, O_RDWR);
    if (fd >= 0)
        return 77; /* capabilities still bypass the mode */
    return errno == EACCES ? 0 : 77;
}

static bool can_lose_access(void)
{
    char path[] = "/dev/shm/t-perm-probe.XXXXXX";
    int fd = mkstemp(path), st;
    pid_t pid;

    if (fd < 0)
        return false;
    fchmod(fd, as_root ? 0600 : 0);
    close(fd);
    pid = fork();
    if (pid == 0)
        _exit(probe_child(path));
    st = pid > 0 ? t_wait(pid, 30) : -1;
    unlink(path);
    return st == 0;
}

struct attach_result {
    int rc, check;
    bool read_ok;
};

static mempool_dref g_obj;
static int g_fd = -1;

/* Child: become "someone else", then attach (and read g_obj if allowed). */
static int other_user(void *arg)
{
    struct attach_result res = { 1, 1, false };
    mempool_options o;
    mempool *p = NULL;
    unsigned flags = (unsigned)(uintptr_t)arg;

    if (as_root)
        T_CHILD_EQ(t_become_nobody(), 0);
    t_options(&o, T_ARENA_BYTES);
    o.spill_dir = "/tmp"; /* not the root-owned private spill dir */
    o.flags = flags;
    res.rc = mempool_open(t_name, &o, &p);
    if (res.rc == 0) {
        mempool_view v;

        res.check = mempool_check(p, NULL, 0);
        if (mempool_get(p, g_obj, &v) == 0) {
            res.read_ok = v.len == 5000 && t_check_fill(v.data, 5000, 3);
            mempool_release(p, &v);
        }
        mempool_close(p);
    }
    T_CHILD_EQ(t_send(g_fd, &res, sizeof res), 0);
    return 0;
}

static struct attach_result attach_as_other(unsigned flags)
{
    struct attach_result res;
    int fds[2];
    pid_t pid;

    t_pipe(fds);
    g_fd = fds[1];
    pid = t_fork(other_user, (void *)(uintptr_t)flags);
    close(fds[1]);
    ck_assert_int_eq(t_recv(fds[0], &res, sizeof res, T_WAIT_S), 0);
    close(fds[0]);
    t_wait_ok(pid);
    return res;
}

static void set_object(void)
{
    char buf[5000];

    t_fill(buf, sizeof buf, 3);
    ck_assert_int_eq(mempool_put(t_pool, buf, sizeof buf, &g_obj), 0);
}

START_TEST(test_eacces)
{
    char path[300];
    struct attach_result res;

    set_object();
    t_shm_path(path, sizeof path, t_name);
    if (!as_root)
        ck_assert_int_eq(chmod(path, 0), 0);
    res = attach_as_other(0);
    ck_assert_msg(res.rc == -EACCES, "attach = %d (%s), want -EACCES",
                  res.rc, mempool_strerror(res.rc));
    res = attach_as_other(MEMPOOL_OPEN_CREATE);
    ck_assert_msg(res.rc == -EACCES, "open(CREATE) = %d (%s), want -EACCES",
                  res.rc, mempool_strerror(res.rc));
    if (!as_root)
        ck_assert_int_eq(chmod(path, 0600), 0);
    /* the pool did not notice */
    ck_assert_uint_eq(t_stats(t_pool).workers, 1);
    ck_assert_uint_eq(t_stats(t_pool).objects, 1);
    ck_assert_int_eq(mempool_reap(t_pool), 0);
    t_assert_healthy(t_pool);
}
END_TEST

START_TEST(test_mode_0666_allows_other_user)
{
    struct attach_result res;
    struct stat st;
    char path[300];

    if (!t_fixture_shared("mode 0666 case"))
        return;
    t_shm_path(path, sizeof path, t_name);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_uint_eq(st.st_mode & 0777, 0666);
    set_object();
    res = attach_as_other(0);
    ck_assert_msg(res.rc == 0, "attach with mode 0666 = %d (%s)", res.rc,
                  mempool_strerror(res.rc));
    ck_assert_int_eq(res.check, 0);
    ck_assert_msg(res.read_ok, "the other user could not read the object");
    ck_assert_uint_eq(t_stats(t_pool).workers, 1);
    t_assert_healthy(t_pool);
}
END_TEST

static Suite *perm_suite(void)
{
    Suite *s = suite_create("perm");
    TCase *tc = t_tcase(s, "perm", 60);

    tcase_add_test(tc, test_eacces);
    tcase_add_test(tc, test_mode_0666_allows_other_user);
    return s;
}

int main(void)
{
    as_root = geteuid() == 0;
    if (!can_lose_access()) {
        fprintf(stderr, "SKIP: cannot drop privileges or lose access to a "
                        "file here\n");
        return 77;
    }
    return t_run(perm_suite(), "perm");
}
