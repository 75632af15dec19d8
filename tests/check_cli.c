/* SPDX-License-Identifier: MIT */
/*
 * check_cli.c - the `mempool` command and `mempool-top`, run as programs.
 *
 * Every subcommand's exit codes (0 ok, 1 failure, 2 usage) and --help; the
 * message on stderr naming what failed; a put/get/rm round trip; `fsck`
 * finding a deliberately corrupted arena (and changing nothing) and passing
 * a healthy one under load; `fsck --repair` reaping a killed worker;
 * `mempool-top --json` (also NDJSON) and `--prometheus` from another
 * process while workers run, and on a pool whose workers all died.
 *
 * `check_cli tmux` runs the interactive screen of mempool-top inside a
 * detached tmux session, captures the pane and quits with 'q'; it exits 77
 * (skipped) when tmux is not installed.
 */
#include "helpers.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "layout.h"      /* white box: where the page bitmap is */
#include "t_cli.h"

#define OUT_MAX (8 << 20)

static struct t_cli_out R;

/* Run argv (NULL-terminated) with @p in as stdin (NULL: /dev/null). */
static int runv(const char *in, char *const argv[])
{
    t_cli_free(&R);
    return t_cli_run(&R, OUT_MAX, in, argv);
}

/* run(stdin, prog, args..., NULL) */
static int run(const char *in, const char *prog, ...)
{
    char *argv[32];
    int n = 0;
    va_list ap;
    argv[n++] = (char *)prog;
    va_start(ap, prog);
    while (n < 31 && (argv[n] = va_arg(ap, char *)))
        n++;
    va_end(ap);
    argv[n] = NULL;
    return runv(in, argv);
}

#define MP  MEMPOOL_BIN
#define TOP MEMPOOL_TOP_BIN

#define ASSERT_EXIT(call, want) \
    do { \
        int st_ = (call); \
        ck_assert_msg(st_ == (want), "%s: exit %d, want %d\nstdout: %.400s\n" \
                      "stderr: %.400s", #call, st_, (want), R.out, R.err); \
    } while (0)

static cJSON *parse(const char *txt)
{
    const char *end = NULL;
    cJSON *d = cJSON_ParseWithLengthOpts(txt, strlen(txt) + 1, &end, false);
    ck_assert_msg(d != NULL, "not JSON: %.200s", txt);
    return d;
}

static uint64_t jnum(cJSON *o, const char *a, const char *b, const char *c)
{
    cJSON *x = cJSON_GetObjectItem(o, a);
    if (b)
        x = cJSON_GetObjectItem(x, b);
    if (c)
        x = cJSON_GetObjectItem(x, c);
    ck_assert_msg(cJSON_IsNumber(x), "%s.%s.%s not a number", a, b ? b : "",
                  c ? c : "");
    return (uint64_t)x->valuedouble;
}

static const char *spill_dir(void)
{
    static mempool_options o;
    t_options(&o, T_ARENA_BYTES);
    return o.spill_dir ? o.spill_dir : "/tmp";
}

/* Create pool @p name through the command (small arena). */
static void cli_create(const char *name)
{
    ASSERT_EXIT(run(NULL, MP, "create", name, "--size", "16M", "--spill-dir",
                    spill_dir(), NULL), 0);
}

/* ---- usage, help and failures ------------------------------------------- */

START_TEST(test_usage_and_help)
{
    static const char *const cmds[] = { "create", "destroy", "ls", "info",
                                        "put", "get", "rm", "fsck", "demo" };
    ASSERT_EXIT(run(NULL, MP, NULL), 2);
    ASSERT_EXIT(run(NULL, MP, "bogus", NULL), 2);
    ck_assert_ptr_nonnull(strstr(R.err, "bogus"));
    ASSERT_EXIT(run(NULL, MP, "--help", NULL), 0);
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        ck_assert_msg(strstr(R.out, cmds[i]), "help lacks %s", cmds[i]);
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        ASSERT_EXIT(run(NULL, MP, cmds[i], "--help", NULL), 0);
        ck_assert_msg(!strncmp(R.out, "Usage: mempool ", 15),
                      "%s --help: %.80s", cmds[i], R.out);
    }
    ASSERT_EXIT(run(NULL, MP, "--version", NULL), 0);
    ASSERT_EXIT(run(NULL, MP, "create", NULL), 2);
    ASSERT_EXIT(run(NULL, MP, "create", "x", "--size", "lots", NULL), 2);
    ASSERT_EXIT(run(NULL, MP, "create", "bad/name", NULL), 2);
    ASSERT_EXIT(run(NULL, MP, "destroy", NULL), 2);
    ASSERT_EXIT(run(NULL, MP, "ls", "extra", NULL), 2);
    ASSERT_EXIT(run(NULL, MP, "info", NULL), 2);
    ASSERT_EXIT(run(NULL, MP, "info", "a", "b", NULL), 2);
    ASSERT_EXIT(run(NULL, MP, "put", "a", NULL), 2);
    ASSERT_EXIT(run(NULL, MP, "get", "a", "not-a-dref", NULL), 2);
    ASSERT_EXIT(run(NULL, MP, "rm", "a", "zz", NULL), 2);
    ASSERT_EXIT(run(NULL, MP, "fsck", NULL), 2);
    ASSERT_EXIT(run(NULL, MP, "fsck", "a", "--fix", NULL), 2);
    ASSERT_EXIT(run(NULL, MP, "demo", "--consumers", "0", NULL), 2);
    ASSERT_EXIT(run(NULL, TOP, "--help", NULL), 0);
    ASSERT_EXIT(run(NULL, TOP, "--version", NULL), 0);
    ASSERT_EXIT(run(NULL, TOP, "--bogus", NULL), 2);
    ASSERT_EXIT(run(NULL, TOP, "a", "b", NULL), 2);
    ASSERT_EXIT(run(NULL, TOP, "a", "--interval", "0", NULL), 2);
    ASSERT_EXIT(run(NULL, TOP, "a", "--json", "--prometheus", NULL), 2);
    ASSERT_EXIT(run(NULL, TOP, "a", "--sort", "colour", NULL), 2);
}
END_TEST

START_TEST(test_failures_name_what_failed)
{
    char name[T_NAME_LEN], dref[64];
    t_pool_name(name, "cli");
    ASSERT_EXIT(run(NULL, MP, "info", name, NULL), 1);
    ck_assert_msg(strstr(R.err, name) && strstr(R.err, "No such file"),
                  "stderr: %s", R.err);
    ASSERT_EXIT(run(NULL, MP, "destroy", name, NULL), 1);
    ASSERT_EXIT(run(NULL, MP, "fsck", name, NULL), 1);
    ASSERT_EXIT(run(NULL, TOP, name, "--json", NULL), 1);
    ck_assert_ptr_nonnull(strstr(R.err, "mempool-top: pool '"));
    cli_create(name);
    ASSERT_EXIT(run(NULL, MP, "create", name, NULL), 1);  /* exists */
    ck_assert_ptr_nonnull(strstr(R.err, "File exists"));
    ASSERT_EXIT(run(NULL, MP, "put", name, "/no/such/file", NULL), 1);
    ck_assert_ptr_nonnull(strstr(R.err, "/no/such/file"));
    snprintf(dref, sizeof dref, "%016x:%016x", 0, 1);
    ASSERT_EXIT(run(NULL, MP, "get", name, dref, NULL), 1);
    ck_assert_ptr_nonnull(strstr(R.err, dref));
    ASSERT_EXIT(run(NULL, MP, "destroy", name, NULL), 0);
}
END_TEST

/* ---- round trip --------------------------------------------------------- */

START_TEST(test_put_get_rm_info_ls)
{
    char name[T_NAME_LEN], file[128], dref[64];
    char *data = malloc(3 << 20);
    cJSON *d;
    FILE *f;

    t_pool_name(name, "cli");
    cli_create(name);
    snprintf(file, sizeof file, "/tmp/t-cli-%d.bin", (int)getpid());
    t_fill(data, 3 << 20, 7);
    f = fopen(file, "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, 3 << 20, f), 3 << 20);
    fclose(f);
    ASSERT_EXIT(run(NULL, MP, "put", name, file, NULL), 0);
    ck_assert_str_eq(R.err, "");                 /* no progress: not a tty */
    ck_assert_uint_eq(strlen(R.out), MEMPOOL_DREF_STRLEN);   /* + '\n' */
    memcpy(dref, R.out, MEMPOOL_DREF_STRLEN - 1);
    dref[MEMPOOL_DREF_STRLEN - 1] = '\0';
    ASSERT_EXIT(run(NULL, MP, "get", name, dref, NULL), 0);
    ck_assert_str_eq(R.err, "");
    ck_assert(t_check_fill(R.out, 3 << 20, 7));
    ASSERT_EXIT(run(file, MP, "put", name, "-", NULL), 0);   /* from stdin */
    ASSERT_EXIT(run(NULL, MP, "info", name, NULL), 0);
    ck_assert_ptr_nonnull(strstr(R.out, "objects     2 of"));
    ASSERT_EXIT(run(NULL, MP, "info", name, "--json", NULL), 0);
    d = parse(R.out);
    ck_assert_uint_eq(jnum(d, "schema", NULL, NULL), MEMPOOL_STATS_SCHEMA);
    ck_assert_uint_eq(jnum(d, "pool", "objects", "used"), 2);
    ck_assert_uint_eq(jnum(d, "pool", "workers", "attached"), 0);
    cJSON_Delete(d);
    ASSERT_EXIT(run(NULL, MP, "ls", NULL), 0);
    ck_assert_ptr_nonnull(strstr(R.out, name));
    ASSERT_EXIT(run(NULL, MP, "ls", "--json", NULL), 0);
    d = parse(R.out);
    ck_assert(cJSON_IsArray(cJSON_GetObjectItem(d, "pools")));
    cJSON_Delete(d);
    ASSERT_EXIT(run(NULL, MP, "fsck", name, NULL), 0);
    ASSERT_EXIT(run(NULL, MP, "rm", name, dref, NULL), 0);
    ASSERT_EXIT(run(NULL, MP, "rm", name, dref, NULL), 1);  /* gone */
    ASSERT_EXIT(run(NULL, MP, "get", name, dref, NULL), 1);
    ASSERT_EXIT(run(NULL, MP, "destroy", name, NULL), 0);
    unlink(file);
    free(data);
}
END_TEST

/* ---- fsck --------------------------------------------------------------- */

/* Flip the free-bitmap bit of the first data page (in use), returning the
 * file offset of its word. */
static off_t corrupt_bitmap(const char *name)
{
    char path[300];
    mp_header h;
    uint64_t w;
    int fd;

    t_shm_path(path, sizeof path, name);
    fd = open(path, O_RDWR);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pread(fd, &h, sizeof h, 0), (ssize_t)sizeof h);
    ck_assert_int_eq(pread(fd, &w, 8, (off_t)h.bitmap_off), 8);
    ck_assert_msg(!(w & 1), "page 0 should be in use");
    w |= 1;
    ck_assert_int_eq(pwrite(fd, &w, 8, (off_t)h.bitmap_off), 8);
    close(fd);
    return (off_t)h.bitmap_off;
}

START_TEST(test_fsck_finds_corruption)
{
    char name[T_NAME_LEN], path[300];
    uint64_t w;
    off_t off;
    int fd;

    t_pool_name(name, "cli");
    cli_create(name);
    ASSERT_EXIT(run(MEMPOOL_TOP_BIN, MP, "put", name, "-", NULL), 0);
    ASSERT_EXIT(run(NULL, MP, "fsck", name, NULL), 0);
    off = corrupt_bitmap(name);
    ASSERT_EXIT(run(NULL, MP, "fsck", name, NULL), 1);
    ck_assert_msg(strstr(R.out, "problem") && strstr(R.out, "bitmap"),
                  "fsck said: %s", R.out);
    ck_assert_ptr_nonnull(strstr(R.err, "nothing was changed"));
    t_shm_path(path, sizeof path, name);
    fd = open(path, O_RDONLY);
    ck_assert_int_eq(pread(fd, &w, 8, off), 8);      /* still corrupt */
    close(fd);
    ck_assert(w & 1);
    ASSERT_EXIT(run(NULL, MP, "fsck", name, "--repair", NULL), 1);
    ASSERT_EXIT(run(NULL, MP, "destroy", name, NULL), 0);
}
END_TEST

/* What a forked worker gets: the pool and its end of a pipe. */
struct kid_arg {
    const char *name;
    int         fd;       /* load: read end (EOF = stop); pin: write end */
    int         other;    /* the end the child closes */
    int         ready;    /* load: a byte here once attached */
};

/* A worker that sets, gets and deletes until its pipe closes. */
static int load_child(void *arg)
{
    struct kid_arg *a = arg;
    mempool *p;
    char buf[3000];
    uint64_t i = 0;
    struct pollfd pf = { .fd = a->fd, .events = POLLIN };

    close(a->other);
    T_CHILD_EQ(t_attach(a->name, &p), 0);
    T_CHILD_EQ(t_send_u64(a->ready, 1), 0);
    while (poll(&pf, 1, 0) == 0) {
        mempool_dref r;
        mempool_view v;
        T_CHILD_EQ(mempool_put(p, buf, 1 + i++ % sizeof buf, &r), 0);
        T_CHILD_EQ(mempool_get(p, r, &v), 0);
        T_CHILD_EQ(mempool_release(p, &v), 0);
        T_CHILD_EQ(mempool_delete(p, r), 0);
        if (i % 1024 == 0)
            usleep(1000);
    }
    mempool_close(p);
    return 0;
}

struct load {
    pid_t pid[3];
    int   stop[2];
    struct kid_arg arg;
};

/* Start 3 load workers and wait until each has attached. */
static void load_start(struct load *l, const char *name)
{
    int ready[2];
    uint64_t one;
    t_pipe(l->stop);
    t_pipe(ready);
    l->arg.name = name;
    l->arg.fd = l->stop[0];
    l->arg.other = l->stop[1];
    l->arg.ready = ready[1];
    for (int i = 0; i < 3; i++)
        l->pid[i] = t_fork(load_child, &l->arg);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(t_recv_u64(ready[0], &one, T_WAIT_S), 0);
    close(ready[0]);
    close(ready[1]);
}

static void load_stop(struct load *l)
{
    close(l->stop[1]);
    for (int i = 0; i < 3; i++)
        t_wait_ok(l->pid[i]);
    close(l->stop[0]);
}

START_TEST(test_fsck_and_top_under_load)
{
    char name[T_NAME_LEN];
    struct load l;
    cJSON *d;
    char *line, *save = NULL;
    int n = 0;

    t_pool_name(name, "cli");
    cli_create(name);
    load_start(&l, name);
    usleep(200000);
    for (int i = 0; i < 5; i++)
        ASSERT_EXIT(run(NULL, MP, "fsck", name, NULL), 0);
    ASSERT_EXIT(run(NULL, TOP, name, "--json", NULL), 0);
    d = parse(R.out);
    ck_assert_uint_eq(jnum(d, "schema", NULL, NULL), MEMPOOL_STATS_SCHEMA);
    ck_assert_uint_eq(jnum(d, "pool", "workers", "alive"), 3);
    ck_assert_uint_gt(jnum(d, "totals", "sets", NULL), 0);
    cJSON_Delete(d);
    ASSERT_EXIT(run(NULL, TOP, name, "--json", "--interval", "0.1", "--count",
                    "3", NULL), 0);
    for (line = strtok_r(R.out, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save), n++)
        cJSON_Delete(parse(line));
    ck_assert_int_eq(n, 3);
    ASSERT_EXIT(run(NULL, TOP, name, "--prometheus", NULL), 0);
    ck_assert_ptr_nonnull(strstr(R.out, "# TYPE mempool_arena_bytes gauge"));
    ck_assert_ptr_nonnull(strstr(R.out, "# TYPE mempool_sets_total counter"));
    {
        char want[300];
        snprintf(want, sizeof want, "mempool_workers_alive{pool=\"%s\"} 3\n",
                 name);
        ck_assert_msg(strstr(R.out, want), "no '%s' in:\n%.2000s", want,
                      R.out);
    }
    save = NULL;
    for (line = strtok_r(R.out, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        char *sp = strrchr(line, ' ');
        if (line[0] == '#')
            continue;
        ck_assert_msg(sp && strchr(line, '{') && strchr(line, '}') < sp &&
                      strspn(sp + 1, "0123456789.") == strlen(sp + 1),
                      "bad exposition line: %s", line);
    }
    ASSERT_EXIT(run(NULL, TOP, name, "-b", "-n", "2", "-d", "0.1", NULL), 0);
    ck_assert_ptr_nonnull(strstr(R.out, "alive"));
    ck_assert_ptr_nonnull(strstr(R.out, "Arena"));
    ASSERT_EXIT(run(NULL, TOP, NULL), 0);            /* the pool list */
    ck_assert_ptr_nonnull(strstr(R.out, name));
    load_stop(&l);
    ASSERT_EXIT(run(NULL, MP, "fsck", name, NULL), 0);
    ASSERT_EXIT(run(NULL, MP, "destroy", name, NULL), 0);
}
END_TEST

/* A worker that pins an object and waits to be killed. */
static int pin_and_wait(void *arg)
{
    struct kid_arg *a = arg;
    mempool *p;
    mempool_dref r;
    mempool_view v;
    T_CHILD_EQ(t_attach(a->name, &p), 0);
    T_CHILD_EQ(mempool_put(p, "pinned", 6, &r), 0);
    T_CHILD_EQ(mempool_get(p, r, &v), 0);
    T_CHILD_EQ(t_send_u64(a->fd, 1), 0);
    pause();
    return 0;
}

START_TEST(test_dead_workers)
{
    char name[T_NAME_LEN];
    int fds[2];
    uint64_t one;
    pid_t pid;
    cJSON *d, *w;

    t_pool_name(name, "cli");
    cli_create(name);
    struct kid_arg ka;
    t_pipe(fds);
    ka.name = name;
    ka.fd = fds[1];
    ka.other = fds[0];
    pid = t_fork(pin_and_wait, &ka);
    ck_assert_int_eq(t_recv_u64(fds[0], &one, T_WAIT_S), 0);
    t_kill(pid);
    /* every worker is dead: top shows it and changes nothing */
    ASSERT_EXIT(run(NULL, TOP, name, "--json", NULL), 0);
    d = parse(R.out);
    ck_assert_uint_eq(jnum(d, "pool", "workers", "dead"), 1);
    ck_assert_uint_eq(jnum(d, "pool", "workers", "alive"), 0);
    w = cJSON_GetArrayItem(cJSON_GetObjectItem(d, "workers"), 0);
    ck_assert_str_eq(cJSON_GetObjectItem(w, "state")->valuestring, "dead");
    ck_assert_uint_eq(jnum(w, "pid", NULL, NULL), (uint64_t)pid);
    cJSON_Delete(d);
    ASSERT_EXIT(run(NULL, TOP, name, "-b", NULL), 0);
    ck_assert_ptr_nonnull(strstr(R.out, "DEAD"));
    ASSERT_EXIT(run(NULL, TOP, name, "--prometheus", NULL), 0);
    ck_assert_ptr_nonnull(strstr(R.out, "mempool_worker_alive{pool="));
    ASSERT_EXIT(run(NULL, MP, "info", name, NULL), 0);
    ASSERT_EXIT(run(NULL, MP, "ls", NULL), 0);
    ASSERT_EXIT(run(NULL, MP, "fsck", name, NULL), 1);
    ck_assert_ptr_nonnull(strstr(R.out, "dead and not reaped"));
    ASSERT_EXIT(run(NULL, MP, "fsck", name, NULL), 1);  /* still there */
    ASSERT_EXIT(run(NULL, MP, "fsck", name, "--repair", NULL), 0);
    ck_assert_ptr_nonnull(strstr(R.out, "reaped 1 dead worker"));
    ASSERT_EXIT(run(NULL, MP, "fsck", name, NULL), 0);
    ASSERT_EXIT(run(NULL, TOP, name, "--json", NULL), 0);
    d = parse(R.out);
    ck_assert_uint_eq(jnum(d, "totals", "reaped_workers", NULL), 1);
    ck_assert_uint_eq(jnum(d, "totals", "recovered_pins", NULL), 1);
    cJSON_Delete(d);
    ASSERT_EXIT(run(NULL, MP, "destroy", name, NULL), 0);
    close(fds[0]);
    close(fds[1]);
}
END_TEST

/* ---- the interactive screen under tmux ---------------------------------- */

static bool have_tmux(void)
{
    return system("tmux -V >/dev/null 2>&1") == 0;
}

/* Capture tmux server @p sock's pane into R until it shows every string
 * of @p want (NULL-terminated), at most T_WAIT_S: mempool-top's first
 * frame, or its answer to a key, comes when the machine lets it. */
static bool pane_shows(const char *sock, const char *const want[])
{
    char cmd[256];
    double t0 = t_now_s();
    snprintf(cmd, sizeof cmd, "tmux -L %s capture-pane -p", sock);
    for (;;) {
        bool all = true;
        ASSERT_EXIT(run(NULL, "/bin/sh", "-c", cmd, NULL), 0);
        for (int i = 0; want[i] && all; i++)
            all = strstr(R.out, want[i]) != NULL;
        if (all || t_now_s() - t0 > T_WAIT_S)
            return all;
        usleep(100000);
    }
}

START_TEST(test_top_in_tmux)
{
    char name[T_NAME_LEN], sock[64], cmd[1024];
    struct load l;
    bool gone = false;

    t_pool_name(name, "cli");
    cli_create(name);
    load_start(&l, name);
    snprintf(sock, sizeof sock, "t-cli-%d", (int)getpid());
    snprintf(cmd, sizeof cmd, "tmux -L %s -f /dev/null new-session -d -x 140 "
             "-y 40 '%s %s -d 0.2'", sock, TOP, name);
    ck_assert_int_eq(system(cmd), 0);
    ck_assert_msg(pane_shows(sock, (const char *const[]){
                      "mempool-top - pool", name, "Arena", "alive", "q quit",
                      NULL }), "pane:\n%s", R.out);
    snprintf(cmd, sizeof cmd, "tmux -L %s send-keys s", sock);
    ck_assert_int_eq(system(cmd), 0);
    ck_assert_msg(pane_shows(sock, (const char *const[]){ "sort pid", NULL }),
                  "pane after 's':\n%s", R.out);
    snprintf(cmd, sizeof cmd, "tmux -L %s send-keys q", sock);
    ck_assert_int_eq(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "tmux -L %s has-session 2>/dev/null", sock);
    for (int i = 0; i < 50 && !gone; i++) {
        usleep(100000);
        gone = system(cmd) != 0;         /* q ended it: the session closed */
    }
    if (!gone) {
        snprintf(cmd, sizeof cmd, "tmux -L %s kill-server", sock);
        (void)!system(cmd);
    }
    ck_assert_msg(gone, "mempool-top did not quit on 'q'");
    load_stop(&l);
    ASSERT_EXIT(run(NULL, MP, "destroy", name, NULL), 0);
}
END_TEST

static Suite *cli_suite(bool tmux)
{
    Suite *s = suite_create(tmux ? "cli-tmux" : "cli");
    TCase *tc = tcase_create("cli");
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    if (tmux) {
        tcase_add_test(tc, test_top_in_tmux);
        return s;
    }
    tcase_add_test(tc, test_usage_and_help);
    tcase_add_test(tc, test_failures_name_what_failed);
    tcase_add_test(tc, test_put_get_rm_info_ls);
    tcase_add_test(tc, test_fsck_finds_corruption);
    tcase_add_test(tc, test_fsck_and_top_under_load);
    tcase_add_test(tc, test_dead_workers);
    return s;
}

int main(int argc, char **argv)
{
    bool tmux = argc > 1 && strcmp(argv[1], "tmux") == 0;
    if (tmux && !have_tmux()) {
        fprintf(stderr, "SKIP: tmux is not installed\n");
        return 77;
    }
    return t_run(cli_suite(tmux), "cli");
}
