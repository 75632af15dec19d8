/* SPDX-License-Identifier: MIT */
/*
 * failpoint.c - the failpoint switchboard (see failpoint.h). Only built
 * into test builds; parsing happens at the first hit in each process.
 */
#ifdef MEMPOOL_FAILPOINTS
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "failpoint.h"

static const char *const fp_names[MP_FP_COUNT] = {
#define MP_FAILPOINT(id, name, what) name,
#include "failpoints.def"
#undef MP_FAILPOINT
};

enum { FP_OFF, FP_KILL, FP_STOP, FP_DELAY, FP_ERROR, FP_PARK };

struct fp_rule {
    int      action;
    int      arg;          /* delay ms, -errno, or the park fd */
    unsigned nth;          /* 0 = every hit */
};

static pthread_mutex_t fp_lock = PTHREAD_MUTEX_INITIALIZER;
static struct fp_rule fp_rules[MP_FP_COUNT];
static _Atomic unsigned fp_hits[MP_FP_COUNT];
static _Atomic pid_t fp_parsed_pid;

static void parse_action(struct fp_rule *r, const char *a, size_t n)
{
    r->action = FP_KILL;
    if (n == 4 && !strncmp(a, "stop", 4))
        r->action = FP_STOP;
    else if (n > 6 && !strncmp(a, "delay:", 6)) {
        r->action = FP_DELAY;
        r->arg = atoi(a + 6);
    } else if (n > 5 && !strncmp(a, "park:", 5)) {
        r->action = FP_PARK;
        r->arg = atoi(a + 5);
    } else if (n == 3 && !strncmp(a, "eio", 3)) {
        r->action = FP_ERROR;
        r->arg = -EIO;
    } else if (n == 6 && !strncmp(a, "enospc", 6)) {
        r->action = FP_ERROR;
        r->arg = -ENOSPC;
    }
}

/* One "name[=action][@n]" token of length @p n. */
static void parse_token(const char *t, size_t n)
{
    const char *eq = memchr(t, '=', n), *at = memchr(t, '@', n);
    size_t nl = (size_t)((eq ? eq : at ? at : t + n) - t);
    for (int i = 0; i < MP_FP_COUNT; i++) {
        struct fp_rule *r = &fp_rules[i];
        if (strlen(fp_names[i]) != nl || strncmp(fp_names[i], t, nl) != 0)
            continue;
        memset(r, 0, sizeof(*r));
        r->action = FP_KILL;
        if (eq)
            parse_action(r, eq + 1, (size_t)((at ? at : t + n) - eq - 1));
        if (at)
            r->nth = (unsigned)atoi(at + 1);
    }
}

static void parse_env(void)
{
    const char *s = getenv("MEMPOOL_FAILPOINT");
    memset(fp_rules, 0, sizeof(fp_rules));
    for (int i = 0; i < MP_FP_COUNT; i++)
        atomic_store(&fp_hits[i], 0);
    while (s && *s) {
        size_t n = strcspn(s, ", ");
        if (n)
            parse_token(s, n);
        s += n;
        s += strspn(s, ", ");
    }
}

/* Park the calling thread (only it: the rest of the process runs on) on
 * socket @p fd: say so with one byte, then wait for one byte back. A
 * closed or broken socket (the test gone) lets it go on. */
static void park(int fd)
{
    char c = 'P';
    ssize_t n;
    do
        n = write(fd, &c, 1);
    while (n < 0 && errno == EINTR);
    if (n != 1)
        return;
    do
        n = read(fd, &c, 1);
    while (n < 0 && errno == EINTR);
}

int mempool__fp(enum mp_fp_id id)
{
    struct fp_rule r;
    unsigned hit;
    if (atomic_load(&fp_parsed_pid) != getpid()) {
        pthread_mutex_lock(&fp_lock);
        if (atomic_load(&fp_parsed_pid) != getpid()) {
            parse_env();
            atomic_store(&fp_parsed_pid, getpid());
        }
        pthread_mutex_unlock(&fp_lock);
    }
    r = fp_rules[id];
    if (r.action == FP_OFF)
        return 0;
    hit = atomic_fetch_add(&fp_hits[id], 1) + 1;
    if (r.nth && hit != r.nth)
        return 0;
    switch (r.action) {
    case FP_KILL:
        raise(SIGKILL);
        break;
    case FP_STOP:
        raise(SIGSTOP);
        break;
    case FP_DELAY:
        nanosleep(&(struct timespec){ r.arg / 1000,
                                      (long)(r.arg % 1000) * 1000000L }, NULL);
        break;
    case FP_PARK:
        park(r.arg);
        break;
    case FP_ERROR:
        return r.arg;
    }
    return 0;
}

#else
typedef int mempool__failpoints_off; /* ISO C: no empty translation unit */
#endif
