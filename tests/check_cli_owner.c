/* SPDX-License-Identifier: MIT */
/*
 * check_cli_owner.c - the `mempool` command's --any-owner flag
 * (MEMPOOL_OPEN_ANY_OWNER) with real second users.
 *
 * The pool's shm object is made uid 65534's (mode 0666). The command, run
 * as root and as uid 65533 (setpriv), refuses to attach as a worker without
 * the flag (exit 1, "Operation not permitted", nothing stored), and with it
 * - anywhere on the command line of put, get, rm, name and chan - does its
 * job; observers (info) need no flag; destroy, which does not attach,
 * rejects the flag as a usage error. Skipped (77) unless run as root.
 */
#include "helpers.h"
#include "t_cli.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define OWNER 65534
#define OTHER "--reuid=65533"
#define OUT_MAX (64 * 1024)

static struct t_cli_out R;
static char pool[T_NAME_LEN];
static char input[64];          /* a file holding "hello", for put's stdin */
static mempool *P;

/* Run `mempool ARGS...` (NULL-terminated), stdin from file @p in, as root or,
 * with @p as_other, as uid/gid 65533 through setpriv. Exit status. */
static int run(bool as_other, const char *in, ...)
{
    char *argv[40];
    int n = 0;
    va_list ap;
    if (as_other) {
        argv[n++] = "/usr/bin/setpriv";
        argv[n++] = OTHER;
        argv[n++] = "--regid=65533";
        argv[n++] = "--clear-groups";
    }
    argv[n++] = MEMPOOL_BIN;
    va_start(ap, in);
    while (n < 39 && (argv[n] = va_arg(ap, char *)))
        n++;
    va_end(ap);
    argv[n] = NULL;
    t_cli_free(&R);
    return t_cli_run(&R, OUT_MAX, in, argv);
}

static void setup(void)
{
    char path[256];
    mempool_options o;
    t_pool_name(pool, "cliowner");
    t_options(&o, T_ARENA_BYTES);
    o.mode = 0666;
    o.spill_dir = "/tmp";
    ck_assert_int_eq(mempool_open(pool, &o, &P), 0);
    t_shm_path(path, sizeof path, pool);
    ck_assert_int_eq(chown(path, OWNER, OWNER), 0);
    ck_assert_int_eq(chmod(path, 0666), 0);
    snprintf(input, sizeof input, "/tmp/check_cli_owner.%d", (int)getpid());
    {
        FILE *f = fopen(input, "w");
        ck_assert_ptr_nonnull(f);
        fputs("hello", f);
        fclose(f);
        ck_assert_int_eq(chmod(input, 0644), 0);
    }
}

static void teardown(void)
{
    unlink(input);
    t_cli_free(&R);
    mempool_close(P);
    mempool_destroy(pool);
}

static void expect_eperm(const char *what)
{
    ck_assert_msg(R.status == 1 && strstr(R.err, "Operation not permitted"),
                  "%s: status %d, stderr: %s", what, R.status, R.err);
}

/* The whole round: refused without the flag, done with it. */
static void round_trip(bool as_other)
{
    char dref[64];
    uint64_t objects = t_stats(P).objects;

    ck_assert_int_eq(run(as_other, input, "put", pool, "-", NULL), 1);
    expect_eperm("put");
    ck_assert_uint_eq(t_stats(P).objects, objects);      /* stored nothing */
    ck_assert_int_eq(run(as_other, NULL, "chan", "ls", pool, NULL), 1);
    expect_eperm("chan ls");
    ck_assert_int_eq(run(as_other, NULL, "name", "ls", pool, NULL), 1);
    expect_eperm("name ls");

    ck_assert_msg(run(as_other, input, "put", "--any-owner", pool, "-",
                      "--name", "greeting", NULL) == 0,
                  "put --any-owner: %d %s", R.status, R.err);
    ck_assert_uint_eq(t_stats(P).objects, objects + 1);
    snprintf(dref, sizeof dref, "%.*s", (int)strcspn(R.out, "\n"), R.out);
    ck_assert_int_eq(run(as_other, NULL, "get", pool, dref, NULL), 1);
    expect_eperm("get");
    ck_assert_msg(run(as_other, NULL, "get", pool, dref, "--any-owner",
                      NULL) == 0, "get: %d %s", R.status, R.err);
    ck_assert_uint_eq(R.out_len, 5);
    ck_assert(memcmp(R.out, "hello", 5) == 0);
    ck_assert_msg(run(as_other, NULL, "name", "get", pool, "greeting",
                      "--timeout", "0", "--any-owner", NULL) == 0,
                  "name get: %d %s", R.status, R.err);
    ck_assert(strncmp(R.out, dref, strlen(dref)) == 0);
    ck_assert_msg(run(as_other, NULL, "chan", "ls", "--any-owner", pool,
                      NULL) == 0, "chan ls: %d %s", R.status, R.err);
    ck_assert_msg(run(as_other, NULL, "name", "drop", pool, "greeting",
                      "--any-owner", NULL) == 0, "name drop: %d %s",
                  R.status, R.err);
    ck_assert_int_eq(run(as_other, NULL, "rm", pool, dref, NULL), 1);
    expect_eperm("rm");
    ck_assert_uint_eq(t_stats(P).objects, objects + 1);
    ck_assert_msg(run(as_other, NULL, "rm", "--any-owner", pool, dref,
                      NULL) == 0,
                  "rm: %d %s", R.status, R.err);
    ck_assert_uint_eq(t_stats(P).objects, objects);
    /* observers read a pool of any owner without the flag */
    ck_assert_msg(run(as_other, NULL, "info", pool, NULL) == 0,
                  "info: %d %s", R.status, R.err);
    t_assert_healthy(P);
}

START_TEST(test_root_attaches_to_another_users_pool)
{
    if (geteuid() != 0)
        return;
    setup();
    round_trip(false);
    teardown();
}
END_TEST

START_TEST(test_other_user_attaches_to_another_users_pool)
{
    if (geteuid() != 0 || access("/usr/bin/setpriv", X_OK) != 0)
        return;
    setup();
    round_trip(true);
    teardown();
}
END_TEST

START_TEST(test_flag_only_where_it_means_something)
{
    if (geteuid() != 0)
        return;
    setup();
    /* destroy does not attach as a worker: the flag is a usage error */
    {
        char path[256];
        t_shm_path(path, sizeof path, pool);
        ck_assert_int_eq(run(false, NULL, "destroy", "--any-owner", pool,
                             NULL), 2);
        ck_assert_int_eq(access(path, F_OK), 0);
    }
    /* --help of every attaching command documents it */
    {
        static const char *const cmds[] = { "put", "get", "rm", "name",
                                            "chan" };
        for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
            ck_assert_int_eq(run(false, NULL, cmds[i], "--help", NULL), 0);
            ck_assert_msg(strstr(R.out, "--any-owner"), "%s --help: %s",
                          cmds[i], R.out);
        }
    }
    teardown();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cli_owner");
    TCase *tc = tcase_create("cli_owner");
    if (geteuid() != 0) {
        fprintf(stderr, "check_cli_owner: needs root (a second uid)\n");
        return 77;
    }
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_root_attaches_to_another_users_pool);
    tcase_add_test(tc, test_other_user_attaches_to_another_users_pool);
    tcase_add_test(tc, test_flag_only_where_it_means_something);
    suite_add_tcase(s, tc);
    return t_run(s, "cli_owner");
}
