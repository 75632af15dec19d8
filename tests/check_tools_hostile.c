/* SPDX-License-Identifier: MIT */
/*
 * check_tools_hostile.c - the tools and the fsck against what a careless
 * operator or another local user can put in front of them (issue 15 items
 * 10, 11, 12 and the mempool-top part of 13).
 *
 * names: entries /dev/shm/mempool.<name> planted with quotes, backslashes,
 * newlines, terminal escape sequences, invalid UTF-8 and a name crafted to
 * inject a forged pool into the JSON. `mempool ls --json` and
 * `mempool-top --json` must always parse (cJSON), list each entry once
 * under its real name and nothing forged; the text listings must carry no
 * control byte but the newlines that end their lines.
 *
 * put: an endless input (/dev/zero as a file and as stdin) stops at once
 * with a clear error and bounded memory (peak RSS from wait4); a /proc file
 * (size 0 in stat) is read as a stream and stored whole.
 *
 * fsck: spill files deleted or damaged under the pool: mempool_check() and
 * `mempool fsck` report them; `mempool fsck --repair` (mempool_repair())
 * drops the objects whose only copy is gone and forgets a damaged clean
 * copy, counted; the pool is healthy after.
 *
 * top: `mempool-top NAME` of a pool destroyed (and re-created) while it
 * watches shows it as destroyed; its --json stream ends with an error.
 */
#include "helpers.h"
#include "t_cli.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MP  MEMPOOL_BIN
#define TOP MEMPOOL_TOP_BIN

static struct t_cli_out R;

static int run(const char *in, const char *prog, ...)
{
    char *argv[16];
    int n = 0;
    va_list ap;
    argv[n++] = (char *)prog;
    va_start(ap, prog);
    while (n < 15 && (argv[n] = va_arg(ap, char *)))
        n++;
    va_end(ap);
    argv[n] = NULL;
    t_cli_free(&R);
    return t_cli_run(&R, 8u << 20, in, argv);
}

/* ---- names ------------------------------------------------------------- */

static const char *const hostile[] = {
    "-q\"uote",
    "-back\\slash",
    "-new\nline",
    "-esc\033[2J\033]0;pwned\007",
    "-tab\tbell\007del\177",
    "-bad\xff\xfeutf8\xc0\xaf",
    "-x\",\"error\":\"none\"},{\"name\":\"forged",
};
#define NH (sizeof hostile / sizeof hostile[0])

static char base[T_NAME_LEN];

static void plant(bool on)
{
    for (size_t i = 0; i < NH; i++) {
        char path[512];
        snprintf(path, sizeof path, "/dev/shm/mempool.%s%s", base,
                 hostile[i]);
        if (on) {
            int fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0644);
            ck_assert_msg(fd >= 0, "plant %zu: %s", i, strerror(errno));
            close(fd);
        } else {
            unlink(path);
        }
    }
}

/* The JSON listing parses; each planted entry appears exactly once under
 * its name (invalid UTF-8 as U+FFFD), no entry is named "forged". */
static void check_json_list(const char *what)
{
    cJSON *doc = cJSON_Parse(R.out), *pools, *it;
    int found[NH] = { 0 };
    ck_assert_msg(doc != NULL, "%s: output does not parse as JSON: %.300s",
                  what, R.out);
    pools = cJSON_GetObjectItemCaseSensitive(doc, "pools");
    ck_assert_msg(cJSON_IsArray(pools), "%s: no pools array", what);
    cJSON_ArrayForEach(it, pools) {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(it, "name");
        if (!n)      /* a pool's own document: {"pool":{"name":...}} */
            n = cJSON_GetObjectItemCaseSensitive(
                cJSON_GetObjectItemCaseSensitive(it, "pool"), "name");
        ck_assert_msg(cJSON_IsString(n), "%s: an entry without a name",
                      what);
        ck_assert_msg(strcmp(n->valuestring, "forged") != 0,
                      "%s: a forged pool entry", what);
        for (size_t i = 0; i < NH; i++) {
            char want[512];
            snprintf(want, sizeof want, "%s%s", base, hostile[i]);
            if (i == 5)   /* invalid UTF-8 bytes became U+FFFD each */
                snprintf(want, sizeof want, "%s-bad\xef\xbf\xbd\xef\xbf\xbd"
                         "utf8\xef\xbf\xbd\xef\xbf\xbd", base);
            found[i] += strcmp(n->valuestring, want) == 0;
        }
    }
    for (size_t i = 0; i < NH; i++)
        ck_assert_msg(found[i] == 1, "%s: planted name %zu listed %d times",
                      what, i, found[i]);
    cJSON_Delete(doc);
}

/* Text output: printable ASCII and line ends only. */
static void check_text(const char *what)
{
    ck_assert_msg(strstr(R.out, base) != NULL, "%s: planted names missing",
                  what);
    for (size_t i = 0; i < R.out_len; i++) {
        unsigned char c = (unsigned char)R.out[i];
        ck_assert_msg(c == '\n' || (c >= 0x20 && c < 0x7f),
                      "%s: byte %#x at %zu of the listing", what, c, i);
    }
}

START_TEST(test_hostile_names)
{
    t_pool_name(base, "hostile");
    ASSERT_RC(t_open(base, T_ARENA_BYTES, &t_pool), 0);
    plant(true);
    ck_assert_int_eq(run(NULL, MP, "ls", "--json", NULL), 0);
    check_json_list("mempool ls --json");
    ck_assert_int_eq(run(NULL, TOP, "--json", NULL), 0);
    check_json_list("mempool-top --json");
    ck_assert_int_eq(run(NULL, MP, "ls", NULL), 0);
    check_text("mempool ls");
    ck_assert_msg(strstr(R.out, "-esc\\x1b[2J\\x1b]0;pwned\\x07") != NULL,
                  "escape sequence not shown as \\x1b: %s", R.out);
    ck_assert_int_eq(run(NULL, TOP, NULL), 0);
    check_text("mempool-top");
    plant(false);
    ASSERT_RC(mempool_close(t_pool), 0);
    t_pool = NULL;
    ASSERT_RC(mempool_destroy(base), 0);
}
END_TEST

/* `mempool name ls` and `mempool chan ls` print names that whoever uses
 * the pool chose: one forged to end its line and add a binding
 * ("evil<TAB>DREF<NL>ok"), escape sequences, a tab, invalid UTF-8. Each
 * listing has one line per entry, printable ASCII and its own tabs only,
 * and shows the escape sequence as \x1b. */
static void check_listing(const char *what, size_t lines, bool tabs)
{
    size_t nl = 0;
    for (size_t i = 0; i < R.out_len; i++) {
        unsigned char c = (unsigned char)R.out[i];
        nl += c == '\n';
        ck_assert_msg(c == '\n' || (tabs && c == '\t') ||
                      (c >= 0x20 && c < 0x7f),
                      "%s: byte %#x at %zu of the listing", what, c, i);
    }
    ck_assert_msg(nl == lines, "%s: %zu lines, want %zu: %s", what, nl, lines,
                  R.out);
    ck_assert_msg(strstr(R.out, "esc\\x1b[2J\\x1b]0;pwned\\x07") != NULL,
                  "%s: escape sequence not shown as \\x1b: %s", what, R.out);
}

START_TEST(test_hostile_bound_names)
{
    static const char *const bad[] = {
        "esc\033[2J\033]0;pwned\007",
        "x\t0000000000000000:0000000000000001\nforged",
        "tab\tbell\007",
        "bad\xff\xfeutf8",
        "back\\slash",
    };
    const size_t n = sizeof bad / sizeof bad[0];
    mempool_dref r;
    t_pool_name(base, "hnames");
    ASSERT_RC(t_open(base, T_ARENA_BYTES, &t_pool), 0);
    ASSERT_RC(mempool_put(t_pool, "v", 1, &r), 0);
    for (size_t i = 0; i < n; i++) {
        mempool_chan *c;
        ASSERT_RC(mempool_name_put(t_pool, bad[i], r, 0), 0);
        ASSERT_RC(mempool_chan_open(t_pool, bad[i], 2, MEMPOOL_CHAN_CREATE,
                                    &c), 0);
        ASSERT_RC(mempool_chan_close(c), 0);
    }
    ck_assert_int_eq(run(NULL, MP, "name", "ls", base, NULL), 0);
    check_listing("mempool name ls", n, true);
    ck_assert_int_eq(run(NULL, MP, "chan", "ls", base, NULL), 0);
    check_listing("mempool chan ls", n + 1 /* header */, false);
    ASSERT_RC(mempool_close(t_pool), 0);
    t_pool = NULL;
    ASSERT_RC(mempool_destroy(base), 0);
}
END_TEST

/* ---- put ----------------------------------------------------------------- */

START_TEST(test_put_endless)
{
    const uint64_t arena = 8u << 20;
    double t0;
    t_pool_name(base, "hostile");
    ASSERT_RC(t_open(base, arena, &t_pool), 0);
    for (int stdin_too = 0; stdin_too < 2; stdin_too++) {
        t0 = t_now_s();
        if (stdin_too)
            run("/dev/zero", MP, "put", base, "-", NULL);
        else
            run(NULL, MP, "put", base, "/dev/zero", NULL);
        fprintf(stderr, "  put %s: status %d in %.2f s, peak RSS %ld KiB: "
                "%s", stdin_too ? "- < /dev/zero" : "/dev/zero", R.status,
                t_now_s() - t0, R.maxrss_kb, R.err);
        ck_assert_int_eq(R.status, 1);
        ck_assert_msg(strstr(R.err, "larger than one object"), "%s", R.err);
        /* Bounded: the input buffer never passes the pool's data space. */
        ck_assert_int_lt(R.maxrss_kb, (long)(arena / 1024) + 24 * 1024);
        ck_assert_uint_eq(t_stats(t_pool).objects, 0);
    }
    ASSERT_RC(mempool_close(t_pool), 0);
    t_pool = NULL;
    ASSERT_RC(mempool_destroy(base), 0);
}
END_TEST

/* /proc/version says 0 bytes in stat(); its content is stored. */
START_TEST(test_put_proc_file)
{
    char want[4096], dref[64];
    ssize_t n;
    int fd = open("/proc/version", O_RDONLY);
    struct stat st;

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(fstat(fd, &st), 0);
    ck_assert_int_eq(st.st_size, 0);
    n = read(fd, want, sizeof want);
    close(fd);
    ck_assert_int_gt(n, 0);
    t_pool_name(base, "hostile");
    ASSERT_RC(t_open(base, T_ARENA_BYTES, &t_pool), 0);
    ck_assert_int_eq(run(NULL, MP, "put", base, "/proc/version", NULL), 0);
    snprintf(dref, sizeof dref, "%.*s", (int)strcspn(R.out, "\n"), R.out);
    ck_assert_int_eq(run(NULL, MP, "get", base, dref, NULL), 0);
    ck_assert_uint_eq(R.out_len, (size_t)n);
    ck_assert(memcmp(R.out, want, (size_t)n) == 0);
    ASSERT_RC(mempool_close(t_pool), 0);
    t_pool = NULL;
    ASSERT_RC(mempool_destroy(base), 0);
}
END_TEST

/* ---- fsck and lost spill files ---------------------------------------- */

static void flip_byte(const char *path, off_t at)
{
    int fd = open(path, O_RDWR);
    unsigned char c;
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pread(fd, &c, 1, at), 1);
    c ^= 0x40;
    ck_assert_int_eq(pwrite(fd, &c, 1, at), 1);
    close(fd);
}

START_TEST(test_fsck_lost_spill_files)
{
    mempool_fileref fa, fb, fc;
    mempool_dref a, b, c, d;
    mempool_view v;
    uint64_t dropped = 9, forgotten = 9;
    char why[512];

    t_pool_name(base, "hostile");
    ASSERT_RC(t_open(base, T_ARENA_BYTES, &t_pool), 0);
    a = t_put_fill(t_pool, 50000, 1);
    b = t_put_fill(t_pool, 50000, 2);
    c = t_put_fill(t_pool, 50000, 3);
    d = t_put_fill(t_pool, 50000, 4);
    ASSERT_RC(mempool_move_to_disk(t_pool, a, &fa), 0);
    ASSERT_RC(mempool_move_to_disk(t_pool, b, &fb), 0);
    ASSERT_RC(mempool_copy_to_disk(t_pool, c, &fc), 0);
    ASSERT_RC(mempool_move_to_disk(t_pool, d, NULL), 0);  /* stays intact */
    t_assert_healthy(t_pool);
    ck_assert_int_eq(run(NULL, MP, "fsck", base, NULL), 0);

    ck_assert_int_eq(unlink(fa.path), 0);       /* a: only copy gone */
    flip_byte(fb.path, 4096 + 1000);            /* b: only copy damaged */
    flip_byte(fc.path, 4096 + 7);               /* c: clean copy damaged */
    ck_assert_int_eq(mempool_check(t_pool, why, sizeof why),
                     MEMPOOL_ECORRUPT);
    ck_assert_msg(strstr(why, "3 objects' spill files are missing or "
                               "damaged"), "why: %s", why);
    ck_assert_int_eq(run(NULL, MP, "fsck", base, NULL), 1);
    ck_assert_msg(strstr(R.out, "spill files are missing or damaged"),
                  "%s", R.out);
    ck_assert_int_eq(run(NULL, MP, "fsck", base, "--repair", NULL), 0);
    ck_assert_msg(strstr(R.out, "dropped 2 object(s)") &&
                  strstr(R.out, "forgot 1 damaged"), "%s", R.out);
    t_assert_healthy(t_pool);
    ASSERT_RC(mempool_get(t_pool, a, &v), -ENOENT);
    ASSERT_RC(mempool_get(t_pool, b, &v), -ENOENT);
    ASSERT_RC(mempool_get(t_pool, c, &v), 0);   /* from memory */
    ck_assert(t_check_fill(v.data, 50000, 3));
    ASSERT_RC(mempool_release(t_pool, &v), 0);
    ASSERT_RC(mempool_move_to_disk(t_pool, c, NULL), 0);  /* a new file */
    ASSERT_RC(mempool_get(t_pool, c, &v), 0);
    ck_assert(t_check_fill(v.data, 50000, 3));
    ASSERT_RC(mempool_release(t_pool, &v), 0);
    ASSERT_RC(mempool_get(t_pool, d, &v), 0);
    ck_assert(t_check_fill(v.data, 50000, 4));
    ASSERT_RC(mempool_release(t_pool, &v), 0);
    ASSERT_RC(mempool_repair(t_pool, &dropped, &forgotten), 0);
    ck_assert_uint_eq(dropped, 0);
    ck_assert_uint_eq(forgotten, 0);
    ck_assert_uint_eq(t_stats(t_pool).objects, 2);
    t_assert_healthy(t_pool);
    ASSERT_RC(mempool_close(t_pool), 0);
    t_pool = NULL;
    ASSERT_RC(mempool_destroy(base), 0);
}
END_TEST

/* ---- mempool-top of a destroyed pool ---------------------------------- */

/* Does process @p pid run mempool-top with pool @p shm (its shm object's
 * path) mapped? */
static bool top_maps(int pid, const char *shm)
{
    char path[64], line[512];
    size_t n = strlen(shm);
    bool found = false;
    FILE *f;
    snprintf(path, sizeof path, "/proc/%d/comm", pid);
    if (!(f = fopen(path, "r")))
        return false;
    found = fgets(line, sizeof line, f) && strncmp(line, "mempool-top", 11) == 0;
    fclose(f);
    snprintf(path, sizeof path, "/proc/%d/maps", pid);
    if (!found || !(f = fopen(path, "r")))
        return false;
    found = false;
    while (!found && fgets(line, sizeof line, f)) {
        const char *at = strstr(line, shm);
        found = at && (at[n] == '\n' || at[n] == ' ');
    }
    fclose(f);
    return found;
}

/* In a child: wait (at most T_WAIT_S) until a mempool-top has pool @p name
 * open, then destroy it; with @p again create it anew. Exit status 0. */
static void destroy_under_top(const char *name, bool again)
{
    char shm[300];
    bool seen = false;
    mempool *q;
    t_shm_path(shm, sizeof shm, name);
    for (double t0 = t_now_s(); !seen && t_now_s() - t0 < T_WAIT_S;) {
        DIR *d = opendir("/proc");
        struct dirent *e;
        while (d && !seen && (e = readdir(d)))
            seen = atoi(e->d_name) > 0 && top_maps(atoi(e->d_name), shm);
        if (d)
            closedir(d);
        if (!seen)
            usleep(20000);
    }
    if (!seen || mempool_destroy(name) != 0)
        _exit(1);
    _exit(!again || t_open(name, T_ARENA_BYTES, &q) == 0 ? 0 : 1);
}

START_TEST(test_top_destroyed)
{
    pid_t pid;
    mempool *q;

    t_pool_name(base, "hostile");
    ASSERT_RC(t_open(base, T_ARENA_BYTES, &t_pool), 0);
    /* batch frames every 0.15 s; destroyed and re-created once top has
     * it open (it may see that frames later on a loaded machine) */
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0)
        destroy_under_top(base, true);
    ck_assert_int_eq(run(NULL, TOP, base, "-b", "-n", "20", "-d", "0.15",
                         NULL), 0);
    t_wait_ok(pid);
    ck_assert_msg(strstr(R.out, "[destroyed]") != NULL,
                  "a destroyed pool shown as alive: %s", R.out);
    /* --json stream: ends with an error once the pool is gone */
    ASSERT_RC(mempool_destroy(base), 0);
    ASSERT_RC(t_open(base, T_ARENA_BYTES, &q), 0);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0)
        destroy_under_top(base, false);
    run(NULL, TOP, base, "--json", "--interval", "0.2", "--count", "50",
        NULL);
    t_wait_ok(pid);
    ck_assert_int_eq(R.status, 1);
    ck_assert_msg(strstr(R.err, "destroyed"), "%s", R.err);
    ASSERT_RC(mempool_close(q), 0);
    ASSERT_RC(mempool_close(t_pool), 0);
    t_pool = NULL;
}
END_TEST

static Suite *hostile_suite(void)
{
    Suite *s = suite_create("tools_hostile");
    TCase *tc = tcase_create("tools");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_hostile_names);
    tcase_add_test(tc, test_hostile_bound_names);
    tcase_add_test(tc, test_put_endless);
    tcase_add_test(tc, test_put_proc_file);
    tcase_add_test(tc, test_fsck_lost_spill_files);
    tcase_add_test(tc, test_top_destroyed);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    int rc = t_run(hostile_suite(), "hostile");
    t_cli_free(&R);
    return rc;
}
